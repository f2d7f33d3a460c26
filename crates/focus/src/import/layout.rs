//! The formats' columns: names per format, their positions in a file's header, cells, and
//! opening a CSV behind the limits reader.

use cloudbill_core::Attribute;
use std::collections::HashMap;
use std::io::Read;

use super::fields::{check_text, excerpt};
use super::BillFormat;
use crate::limits::{Bounded, MAX_COLUMNS};
use crate::{ImportError, RowError};

pub(super) struct Columns {
    pub(super) index: HashMap<String, usize>,
    pub(super) tag_columns: Vec<(String, usize)>,
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
    pub(super) usage_type: [&'static str; 2],
    pub(super) instance_type: Option<&'static str>,
    pub(super) tags_json: Option<&'static str>,
    pub(super) tag_prefix: Option<&'static str>,
    pub(super) billing_period: [&'static str; 2],
    /// The source column of each FOCUS attribute the format carries.
    pub(super) attributes: &'static [(Attribute, &'static str)],
}

/// FOCUS carries every attribute under its own name.
const FOCUS_ATTRIBUTES: [(Attribute, &str); 20] = {
    let mut out = [(Attribute::BillingAccountId, ""); 20];
    let mut i = 0;
    while i < 20 {
        out[i] = (Attribute::ALL[i], Attribute::ALL[i].focus_name());
        i += 1;
    }
    out
};

/// The CUR columns that carry a FOCUS attribute (as the FOCUS converters map them).
const CUR_ATTRIBUTES: [(Attribute, &str); 8] = [
    (Attribute::BillingAccountId, "bill/PayerAccountId"),
    (Attribute::AvailabilityZone, "lineItem/AvailabilityZone"),
    (Attribute::SkuId, "product/sku"),
    (Attribute::ResourceId, "lineItem/ResourceId"),
    (Attribute::ChargeDescription, "lineItem/LineItemDescription"),
    (Attribute::PricingUnit, "pricing/unit"),
    (Attribute::InvoiceIssuerName, "bill/InvoicingEntity"),
    (Attribute::RegionName, "product/location"),
];

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
    usage_type: ["UsageType", "ChargeDescription"],
    instance_type: None,
    tags_json: Some("Tags"),
    tag_prefix: None,
    billing_period: ["BillingPeriodStart", "BillingPeriodEnd"],
    attributes: &FOCUS_ATTRIBUTES,
};

pub(super) const CUR: Layout = Layout {
    start: "lineItem/UsageStartDate",
    end: "lineItem/UsageEndDate",
    cost: "lineItem/UnblendedCost",
    currency: "lineItem/CurrencyCode",
    effective: None,
    list: None,
    service: ["product/ProductName", "lineItem/ProductCode"],
    region: ["product/region", "product/region"],
    account: ["lineItem/UsageAccountId", "bill/PayerAccountId"],
    category: "lineItem/LineItemType",
    quantity: "lineItem/UsageAmount",
    usage_type: ["lineItem/UsageType", "lineItem/UsageType"],
    instance_type: Some("product/instanceType"),
    tags_json: None,
    tag_prefix: Some("resourceTags/"),
    billing_period: ["bill/BillingPeriodStartDate", "bill/BillingPeriodEndDate"],
    attributes: &CUR_ATTRIBUTES,
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

pub(super) fn first_cell(record: &csv::StringRecord, indexes: [Option<usize>; 2]) -> Option<&str> {
    cell(record, indexes[0]).or_else(|| cell(record, indexes[1]))
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
    pub(super) usage_type: [Option<usize>; 2],
    pub(super) instance_type: Option<usize>,
    pub(super) tags_json: Option<usize>,
    pub(super) billing_period: [Option<usize>; 2],
    /// The attributes this file has, with their positions.
    pub(super) attributes: Vec<(Attribute, usize)>,
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
            usage_type: two(layout.usage_type),
            instance_type: one(layout.instance_type),
            tags_json: one(layout.tags_json),
            billing_period: two(layout.billing_period),
            attributes: layout
                .attributes
                .iter()
                .filter_map(|(a, name)| columns.get(name).map(|i| (*a, i)))
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
    let headers = reader.headers().map_err(|e| csv_error(file, &e))?.clone();
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
    let mut tag_columns = Vec::new();
    for (i, h) in headers.iter().enumerate() {
        let name = h.trim_start_matches('\u{feff}').trim();
        if let Some(key) = layout.tag_prefix.and_then(|p| name.strip_prefix(p)) {
            check_text(key)
                .map_err(|m| header_error(format!("tag column {}: {m}", excerpt(name))))?;
            tag_columns.push((key.to_owned(), i));
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
    let columns = Columns { index, tag_columns };
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

pub(super) fn layout(format: BillFormat) -> &'static Layout {
    match format {
        BillFormat::Focus => &FOCUS,
        BillFormat::Cur => &CUR,
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
