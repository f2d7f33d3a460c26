//! The formats' columns: names per format, their positions in a file's header, cells, and
//! opening a CSV behind the limits reader.

use cloudbill_core::{Attribute, Measure, EXTENSION_PREFIX};
use std::collections::HashMap;
use std::io::Read;

use super::fields::{check_text, excerpt};
use super::BillFormat;
use crate::limits::{Bounded, MAX_COLUMNS};
use crate::{ImportError, RowError};
use cloudbill_columnar::MAX_EXTENSIONS;

pub(super) struct Columns {
    pub(super) index: HashMap<String, usize>,
    pub(super) tag_keys: Vec<(String, usize)>,
    /// The file's `x_` columns kept as the source's own (name, position).
    pub(super) extensions: Vec<(String, usize)>,
}

impl Columns {
    pub(super) fn get(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }
}

/// Column names per format: (date, end, cost, currency, effective, list, service, service
/// fallback, region, region fallback, account, account fallback, category, quantity, usage type,
/// usage type fallback, instance type, tags JSON).
pub(super) struct Layout {
    pub(super) start: &'static str,
    pub(super) end: &'static str,
    pub(super) cost: &'static str,
    pub(super) currency: &'static str,
    pub(super) effective: Option<&'static str>,
    pub(super) list: Option<&'static str>,
    pub(super) service: [&'static str; 2],
    pub(super) region: [&'static str; 2],
    pub(super) account: [&'static str; 2],
    pub(super) category: &'static str,
    pub(super) quantity: &'static str,
    pub(super) usage_type: [&'static str; 3],
    pub(super) instance_type: Option<&'static str>,
    pub(super) tags_json: Option<&'static str>,
    pub(super) tag_prefix: Option<&'static str>,
    pub(super) billing_period: [&'static str; 2],
    /// The source column of each FOCUS attribute the format carries.
    pub(super) attributes: &'static [(Attribute, &'static str)],
    /// Attributes a row of the format has when its cells give none (a CUR is AWS's).
    pub(super) constants: &'static [(Attribute, &'static str)],
    /// The AWS service code column a ServiceCategory is derived from when the row has none
    /// ([`cloudbill_core::aws::service_category`]).
    pub(super) aws_service_code: Option<&'static str>,
    /// The source column of each FOCUS measure the format carries.
    pub(super) measures: &'static [(Measure, &'static str)],
    /// Source columns kept as `x_` columns (source name, `x_` name); for FOCUS, every `x_`
    /// column the file has besides the ones read into fields.
    pub(super) extensions: &'static [(&'static str, &'static str)],
}

/// The `x_` columns a FOCUS import reads into a record's fields (or, for cloudbill's own
/// catalog columns, ignores), not kept as the source's own.
const FOCUS_FIELD_EXTENSIONS: [&str; 4] = [
    "x_ServiceAccount",
    "x_Project",
    "x_UsageType",
    "x_InstanceType",
];

/// FOCUS carries every measure under its own name.
const FOCUS_MEASURES: [(Measure, &str); Measure::ALL.len()] = {
    let mut out = [(Measure::ContractedCost, ""); Measure::ALL.len()];
    let mut i = 0;
    while i < Measure::ALL.len() {
        out[i] = (Measure::ALL[i], Measure::ALL[i].focus_name());
        i += 1;
    }
    out
};

/// The CUR columns that carry a FOCUS measure (as the FOCUS converters map them).
const CUR_MEASURES: [(Measure, &str); 3] = [
    (Measure::ListUnitPrice, "pricing/publicOnDemandRate"),
    (Measure::ContractedUnitPrice, "lineItem/UnblendedRate"),
    (Measure::PricingQuantity, "lineItem/UsageAmount"),
];

/// CUR columns kept as `x_` columns.
const CUR_EXTENSIONS: [(&str, &str); 4] = [
    ("lineItem/LineItemType", "x_LineItemType"),
    ("lineItem/Operation", "x_Operation"),
    ("bill/BillType", "x_BillType"),
    ("product/productFamily", "x_ProductFamily"),
];

/// FOCUS carries every attribute under its own name.
const FOCUS_ATTRIBUTES: [(Attribute, &str); Attribute::ALL.len()] = {
    let mut out = [(Attribute::BillingAccountId, ""); Attribute::ALL.len()];
    let mut i = 0;
    while i < Attribute::ALL.len() {
        out[i] = (Attribute::ALL[i], Attribute::ALL[i].focus_name());
        i += 1;
    }
    out
};

/// The CUR columns that carry a FOCUS attribute (as the FOCUS converters map them).
const CUR_ATTRIBUTES: [(Attribute, &str); 13] = [
    (Attribute::BillingAccountId, "bill/PayerAccountId"),
    (Attribute::InvoiceId, "bill/InvoiceId"),
    (Attribute::PublisherName, "bill/BillingEntity"),
    (Attribute::SkuPriceId, "pricing/RateId"),
    (
        Attribute::CommitmentDiscountId,
        "savingsPlan/SavingsPlanARN",
    ),
    (Attribute::AvailabilityZone, "lineItem/AvailabilityZone"),
    (Attribute::SkuId, "product/sku"),
    (Attribute::ResourceId, "lineItem/ResourceId"),
    (Attribute::ChargeDescription, "lineItem/LineItemDescription"),
    (Attribute::PricingUnit, "pricing/unit"),
    (Attribute::InvoiceIssuerName, "bill/InvoicingEntity"),
    // The AWS entity that sells and invoices (FOCUS 1.2 reads a provider other than the
    // invoice issuer as a third party's sale, billed at 0).
    (Attribute::ProviderName, "bill/InvoicingEntity"),
    (Attribute::RegionName, "product/location"),
];

/// The Azure cost details columns that carry a FOCUS attribute (as Microsoft's FOCUS
/// conversion maps them).
const AZURE_ATTRIBUTES: [(Attribute, &str); 15] = [
    (Attribute::BillingAccountId, "BillingAccountId"),
    (Attribute::BillingAccountName, "BillingAccountName"),
    (Attribute::SubAccountName, "SubscriptionName"),
    (Attribute::AvailabilityZone, "AvailabilityZone"),
    (Attribute::SkuId, "ProductId"),
    (Attribute::SkuMeter, "MeterName"),
    (Attribute::ResourceId, "ResourceId"),
    (Attribute::ResourceName, "ResourceName"),
    (Attribute::ChargeDescription, "ProductName"),
    (Attribute::PricingUnit, "UnitOfMeasure"),
    (Attribute::CommitmentDiscountId, "BenefitId"),
    (Attribute::CommitmentDiscountName, "BenefitName"),
    (Attribute::PublisherName, "PublisherName"),
    (Attribute::RegionName, "ResourceLocation"),
    (Attribute::InvoiceId, "InvoiceId"),
];

/// The Azure cost details columns that carry a FOCUS measure.
const AZURE_MEASURES: [(Measure, &str); 3] = [
    (Measure::ListUnitPrice, "PayGPrice"),
    (Measure::ContractedUnitPrice, "UnitPrice"),
    (Measure::PricingQuantity, "Quantity"),
];

/// Azure cost details columns kept as `x_` columns.
const AZURE_EXTENSIONS: [(&str, &str); 6] = [
    ("ChargeType", "x_ChargeType"),
    ("PricingModel", "x_PricingModel"),
    ("MeterCategory", "x_MeterCategory"),
    ("MeterSubCategory", "x_MeterSubCategory"),
    ("ResourceGroup", "x_ResourceGroupName"),
    ("ConsumedService", "x_ConsumedService"),
];

/// Azure Cost Management cost details (ActualCost), EA and MCA, under the names
/// [`super::source`] gives them (its header is normalized: case, older names).
pub(super) const AZURE: Layout = Layout {
    start: "Date",
    // One row is one day: no end column.
    end: "ChargePeriodEnd",
    cost: "CostInBillingCurrency",
    currency: "BillingCurrencyCode",
    effective: None,
    list: Some("PaygCostInBillingCurrency"),
    service: ["MeterCategory", "ConsumedService"],
    region: ["ResourceLocation", "MeterRegion"],
    account: ["SubscriptionId", "BillingAccountId"],
    category: "ChargeType",
    quantity: "Quantity",
    usage_type: ["MeterName", "MeterSubCategory", "ProductName"],
    instance_type: None,
    tags_json: Some("Tags"),
    tag_prefix: None,
    billing_period: ["BillingPeriodStartDate", "BillingPeriodEndDate"],
    attributes: &AZURE_ATTRIBUTES,
    constants: &[
        (Attribute::ProviderName, "Microsoft"),
        (Attribute::InvoiceIssuerName, "Microsoft"),
    ],
    aws_service_code: None,
    measures: &AZURE_MEASURES,
    extensions: &AZURE_EXTENSIONS,
};

pub(super) const FOCUS: Layout = Layout {
    start: "ChargePeriodStart",
    end: "ChargePeriodEnd",
    cost: "BilledCost",
    currency: "BillingCurrency",
    effective: Some("EffectiveCost"),
    list: Some("ListCost"),
    service: ["ServiceName", "ServiceName"],
    region: ["RegionId", "Region"],
    account: ["SubAccountId", "BillingAccountId"],
    category: "ChargeCategory",
    quantity: "ConsumedQuantity",
    usage_type: ["x_UsageType", "UsageType", "ChargeDescription"],
    instance_type: Some("x_InstanceType"),
    tags_json: Some("Tags"),
    tag_prefix: None,
    billing_period: ["BillingPeriodStart", "BillingPeriodEnd"],
    attributes: &FOCUS_ATTRIBUTES,
    constants: &[],
    aws_service_code: None,
    measures: &FOCUS_MEASURES,
    extensions: &[],
};

pub(super) const CUR: Layout = Layout {
    start: "lineItem/UsageStartDate",
    end: "lineItem/UsageEndDate",
    cost: "lineItem/UnblendedCost",
    currency: "lineItem/CurrencyCode",
    effective: None,
    list: Some("pricing/publicOnDemandCost"),
    service: ["product/ProductName", "lineItem/ProductCode"],
    region: ["product/region", "product/region"],
    account: ["lineItem/UsageAccountId", "bill/PayerAccountId"],
    category: "lineItem/LineItemType",
    quantity: "lineItem/UsageAmount",
    usage_type: [
        "lineItem/UsageType",
        "lineItem/UsageType",
        "lineItem/UsageType",
    ],
    instance_type: Some("product/instanceType"),
    // CUR 2.0's `resource_tags` map, as JSON text (read under its legacy name, see `source`).
    tags_json: Some("resourceTags"),
    tag_prefix: Some("resourceTags/"),
    billing_period: ["bill/BillingPeriodStartDate", "bill/BillingPeriodEndDate"],
    attributes: &CUR_ATTRIBUTES,
    constants: &[(Attribute::ProviderName, "AWS")],
    aws_service_code: Some("lineItem/ProductCode"),
    measures: &CUR_MEASURES,
    extensions: &CUR_EXTENSIONS,
};

/// A cell's text, `None` when empty or the `NULL` token.
pub(super) fn cell(record: &csv::StringRecord, index: Option<usize>) -> Option<&str> {
    let raw = record.get(index?)?;
    // Most cells have no surrounding space: skip the trim's scan for them.
    let padded = |b: Option<&u8>| b.is_some_and(|c| !c.is_ascii_alphanumeric());
    let v = if padded(raw.as_bytes().first()) || padded(raw.as_bytes().last()) {
        raw.trim()
    } else {
        raw
    };
    (!v.is_empty() && v != "NULL").then_some(v)
}

pub(super) fn first_cell<const N: usize>(
    record: &csv::StringRecord,
    indexes: [Option<usize>; N],
) -> Option<&str> {
    indexes.into_iter().find_map(|i| cell(record, i))
}

/// The layout's columns resolved to positions in this file's header, once per file.
pub(super) struct Positions {
    pub(super) start: Option<usize>,
    pub(super) end: Option<usize>,
    pub(super) cost: Option<usize>,
    pub(super) currency: Option<usize>,
    pub(super) effective: Option<usize>,
    pub(super) list: Option<usize>,
    pub(super) service: [Option<usize>; 2],
    pub(super) region: [Option<usize>; 2],
    pub(super) account: [Option<usize>; 2],
    pub(super) category: Option<usize>,
    pub(super) quantity: Option<usize>,
    pub(super) usage_type: [Option<usize>; 3],
    pub(super) instance_type: Option<usize>,
    pub(super) tags_json: Option<usize>,
    pub(super) billing_period: [Option<usize>; 2],
    /// The attributes this file has, with their positions.
    pub(super) attributes: Vec<(Attribute, usize)>,
    /// The measures this file has, with their positions.
    pub(super) measures: Vec<(Measure, usize)>,
    pub(super) aws_service_code: Option<usize>,
}

impl Positions {
    pub(super) fn new(layout: &Layout, columns: &Columns) -> Self {
        let one = |name: Option<&str>| name.and_then(|n| columns.get(n));
        let two = |names: [&str; 2]| [columns.get(names[0]), columns.get(names[1])];
        Self {
            start: columns.get(layout.start),
            end: columns.get(layout.end),
            cost: columns.get(layout.cost),
            currency: columns.get(layout.currency),
            effective: one(layout.effective),
            list: one(layout.list),
            service: two(layout.service),
            region: two(layout.region),
            account: two(layout.account),
            category: columns.get(layout.category),
            quantity: columns.get(layout.quantity),
            // The first of the usage type's columns the file has, even where empty (a
            // cloudbill export's empty x_UsageType is no usage type, not the description).
            usage_type: {
                let first = layout.usage_type.iter().find_map(|n| columns.get(n));
                [first, None, None]
            },
            instance_type: one(layout.instance_type),
            tags_json: one(layout.tags_json),
            billing_period: two(layout.billing_period),
            attributes: layout
                .attributes
                .iter()
                .filter_map(|(a, name)| columns.get(name).map(|i| (*a, i)))
                .collect(),
            aws_service_code: one(layout.aws_service_code),
            measures: layout
                .measures
                .iter()
                .filter_map(|(m, name)| columns.get(name).map(|i| (*m, i)))
                .collect(),
        }
    }
}

pub(super) fn csv_error(file: &str, e: &csv::Error) -> ImportError {
    if let Some(limit) = crate::limits::limit_of(e) {
        return ImportError::Limit {
            file: file.to_owned(),
            line: limit.line,
            message: limit.message.clone(),
        };
    }
    ImportError::Csv {
        file: file.to_owned(),
        line: e.position().map_or(0, csv::Position::line),
        message: e.to_string(),
    }
}

/// Opens the CSV (behind the [`crate::limits`] reader), reads the header and checks it: the
/// mandatory columns present, no column twice, at most [`MAX_COLUMNS`] columns.
pub(super) fn open_csv<R: Read>(
    source: R,
    file: &str,
    format: BillFormat,
) -> Result<(csv::Reader<Bounded<R>>, Columns, usize), ImportError> {
    let layout = layout(format);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(Bounded::new(source));
    let mut headers = reader.headers().map_err(|e| csv_error(file, &e))?.clone();
    if format == BillFormat::AzureCost {
        // Azure's exports differ in case and in older names: read them under one set.
        let names: Vec<String> = headers
            .iter()
            .map(|n| n.trim_start_matches('\u{feff}').trim().to_owned())
            .collect();
        headers = csv::StringRecord::from(super::source::azure_names(&names));
    }
    let header_error = |message: String| ImportError::Header {
        file: file.to_owned(),
        message,
    };
    if headers.len() > MAX_COLUMNS {
        return Err(header_error(format!(
            "{} columns (at most {MAX_COLUMNS})",
            headers.len()
        )));
    }
    let mut index = HashMap::new();
    let mut tag_keys = Vec::new();
    let mut extensions = Vec::new();
    for (i, h) in headers.iter().enumerate() {
        let name = h.trim_start_matches('\u{feff}').trim();
        if let Some(key) = layout.tag_prefix.and_then(|p| name.strip_prefix(p)) {
            check_text(key)
                .map_err(|m| header_error(format!("tag column {}: {m}", excerpt(name))))?;
            tag_keys.push((key.to_owned(), i));
        }
        let kept = match format {
            BillFormat::Focus => (name.starts_with(EXTENSION_PREFIX)
                && !FOCUS_FIELD_EXTENSIONS.contains(&name))
            .then_some(name),
            BillFormat::Cur | BillFormat::AzureCost => layout
                .extensions
                .iter()
                .find(|(source, _)| *source == name)
                .map(|(_, x)| *x),
        };
        if let Some(x) = kept {
            check_extension(x).map_err(|m| header_error(format!("column {}: {m}", excerpt(x))))?;
            extensions.push((x.to_owned(), i));
        }
        if let Some(first) = index.insert(name.to_owned(), i) {
            return Err(header_error(format!(
                "column {} appears twice (columns {} and {})",
                excerpt(name),
                first + 1,
                i + 1
            )));
        }
    }
    if extensions.len() > MAX_EXTENSIONS {
        return Err(header_error(format!(
            "{} x_ columns (at most {MAX_EXTENSIONS} of a source's own columns are kept)",
            extensions.len()
        )));
    }
    // FOCUS 0.5 named the charge category ChargeType (and had no ChargeClass); its rows
    // would be read wrongly, so such a file is refused by name.
    if format == BillFormat::Focus
        && index.contains_key("ChargeType")
        && !index.contains_key("ChargeCategory")
    {
        return Err(header_error(
            "a FOCUS 0.5 file (a ChargeType column, no ChargeCategory): cloudbill imports \
             FOCUS 1.0 to 1.2"
                .into(),
        ));
    }
    let columns = Columns {
        index,
        tag_keys,
        extensions,
    };
    for required in [layout.start, layout.cost, layout.currency] {
        if columns.get(required).is_none() {
            let found: Vec<String> = headers.iter().take(12).map(excerpt).collect();
            return Err(ImportError::MissingColumn {
                file: file.to_owned(),
                column: required,
                found: found.join(", "),
            });
        }
    }
    Ok((reader, columns, headers.len()))
}

/// Checks an `x_` column's name: printable text of at most 255 bytes (a partition's directory
/// keeps names that long).
fn check_extension(name: &str) -> Result<(), String> {
    check_text(name)?;
    if name.len() > 255 {
        return Err("names an x_ column longer than 255 bytes".into());
    }
    Ok(())
}

pub(super) fn layout(format: BillFormat) -> &'static Layout {
    match format {
        BillFormat::Focus => &FOCUS,
        BillFormat::Cur => &CUR,
        BillFormat::AzureCost => &AZURE,
    }
}

pub(super) fn check_width(
    record: &csv::StringRecord,
    width: usize,
    line: u64,
) -> Result<(), RowError> {
    if record.len() == width {
        return Ok(());
    }
    Err(RowError {
        line,
        column: "(row)".into(),
        message: format!(
            "{} fields where the header has {width} (truncated or extra fields)",
            record.len()
        ),
    })
}
