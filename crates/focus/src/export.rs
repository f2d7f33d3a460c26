//! Writing cost records as FOCUS 1.2 CSV.
//!
//! Every column is one entry of [`COLUMNS`]: its FOCUS name, whether every export has it, and
//! how a record gives its value (`None`: null, an empty cell). A value the source did not send
//! is null where FOCUS allows null; where FOCUS does not, the export writes the documented
//! derived value below, never an invented number:
//!
//! | column | without a source value |
//! |---|---|
//! | BillingAccountId | the sub-account (the cloud account), else the cloudbill account's name |
//! | ContractedCost, ListCost | BilledCost (a source without discount or list prices is billed at its contracted price) |
//! | EffectiveCost | BilledCost |
//! | ChargeDescription | the usage type, else the service |
//! | ChargeFrequency | `Usage-Based` for usage, `One-Time` for every other category |
//! | InvoiceId | a provisional invoice's id, `PROVISIONAL-<BillingAccountId>-<YYYY-MM>` (FOCUS: the id of an issued or a pre-generated provisional invoice) |
//! | InvoiceIssuerName, PublisherName, ProviderName | the provider's display name |
//! | PricingQuantity, PricingUnit | usage and purchase rows: the consumed quantity in `Units` when the source names no pricing unit; other rows null |
//! | ServiceCategory | `Other` |
//! | ServiceSubcategory | `Other (<ServiceCategory>)` |
//!
//! ConsumedQuantity and ConsumedUnit are written for usage rows only (FOCUS: null for every
//! other category); a source without a unit gets `Units`. Then cloudbill's own columns
//! (`x_ServiceAccount`, `x_Project`, `x_UsageType`, `x_InstanceType`), then the source's own
//! `x_` columns, by name.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::io::Write;

use cloudbill_core::{Attribute, ChargeCategory, CostRecord, Measure};

/// A record with the names the export shows next to it.
#[derive(Debug, Clone, Copy)]
pub struct ExportRow<'a> {
    /// The record.
    pub record: &'a CostRecord,
    /// Its billing account's name.
    pub account_name: &'a str,
    /// The project it belongs to on its day.
    pub project_name: &'a str,
}

/// Whether an export has a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// Always (FOCUS 1.2 mandatory and recommended columns, and cloudbill's own).
    Always,
    /// When at least one exported record has a value in it.
    WhenAny,
}

type Value = for<'r> fn(&ExportRow<'r>) -> Option<Cow<'r, str>>;

/// The unit written for a quantity whose source names none.
pub const DEFAULT_UNIT: &str = "Units";

fn attr<'r>(row: &ExportRow<'r>, a: Attribute) -> Option<Cow<'r, str>> {
    row.record
        .attributes
        .get(&a)
        .map(|v| Cow::Borrowed(v.as_str()))
}

fn measure<'r>(row: &ExportRow<'r>, m: Measure) -> Option<Cow<'r, str>> {
    row.record
        .measures
        .get(&m)
        .map(|v| Cow::Owned(v.to_string()))
}

fn text(s: &str) -> Option<Cow<'_, str>> {
    (!s.is_empty()).then_some(Cow::Borrowed(s))
}

fn timestamp(day: chrono::NaiveDate) -> Cow<'static, str> {
    Cow::Owned(day.format("%Y-%m-%dT00:00:00Z").to_string())
}

/// The charge period: the span the source gave (kept in [`crate::SPAN_TAG`]), else the day.
fn span<'r>(row: &ExportRow<'r>) -> Option<(&'r str, &'r str)> {
    row.record
        .tags
        .get(crate::SPAN_TAG)
        .and_then(|s| s.split_once('/'))
}

fn month_start(row: &ExportRow<'_>) -> chrono::NaiveDate {
    chrono::Datelike::with_day(&row.record.date, 1).unwrap_or(row.record.date)
}

/// Whether the row's category carries a pricing quantity (FOCUS: usage and purchases).
fn priced(r: &CostRecord) -> bool {
    matches!(
        r.charge_category,
        ChargeCategory::Usage | ChargeCategory::Purchase
    ) && r
        .attributes
        .get(&Attribute::ChargeClass)
        .map(String::as_str)
        != Some("Correction")
}

fn pricing_quantity<'r>(row: &ExportRow<'r>) -> Option<Cow<'r, str>> {
    let r = row.record;
    if r.charge_category == ChargeCategory::Tax {
        return None;
    }
    measure(row, Measure::PricingQuantity)
        .or_else(|| priced(r).then(|| Cow::Owned(r.usage_quantity.to_string())))
}

fn provider_name<'r>(row: &ExportRow<'r>) -> Option<Cow<'r, str>> {
    attr(row, Attribute::ProviderName)
        .or_else(|| Some(Cow::Borrowed(row.record.provider.display_name())))
}

/// BillingAccountId: the source's, else the sub-account, else the cloudbill account's name.
fn billing_account<'r>(r: &ExportRow<'r>) -> Option<Cow<'r, str>> {
    attr(r, Attribute::BillingAccountId)
        .or_else(|| text(&r.record.cloud_account))
        .or_else(|| text(r.account_name))
}

fn service_category<'r>(row: &ExportRow<'r>) -> Option<Cow<'r, str>> {
    attr(row, Attribute::ServiceCategory).or(Some(Cow::Borrowed("Other")))
}

/// How a column's values are typed (in Parquet; CSV writes every value as text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    /// Text.
    Text,
    /// An exact decimal.
    Decimal,
    /// A UTC timestamp (`YYYY-MM-DDTHH:MM:SSZ` in CSV).
    Timestamp,
}

/// The kind of a column of [`export_columns`].
pub fn column_kind(name: &str) -> ValueKind {
    match name {
        "BilledCost"
        | "CommitmentDiscountQuantity"
        | "ConsumedQuantity"
        | "ContractedCost"
        | "ContractedUnitPrice"
        | "EffectiveCost"
        | "ListCost"
        | "ListUnitPrice"
        | "PricingQuantity" => ValueKind::Decimal,
        "BillingPeriodEnd" | "BillingPeriodStart" | "ChargePeriodEnd" | "ChargePeriodStart" => {
            ValueKind::Timestamp
        }
        _ => ValueKind::Text,
    }
}

/// Every column an export may have, in order.
pub const COLUMNS: &[(&str, Presence, Value)] = &[
    ("AvailabilityZone", Presence::WhenAny, |r| {
        attr(r, Attribute::AvailabilityZone)
    }),
    ("BilledCost", Presence::Always, |r| {
        Some(Cow::Owned(r.record.cost.amount().to_string()))
    }),
    ("BillingAccountId", Presence::Always, billing_account),
    ("BillingAccountName", Presence::Always, |r| {
        attr(r, Attribute::BillingAccountName)
    }),
    ("BillingAccountType", Presence::WhenAny, |r| {
        attr(r, Attribute::BillingAccountType)
    }),
    ("BillingCurrency", Presence::Always, |r| {
        Some(Cow::Owned(r.record.currency().as_str().to_owned()))
    }),
    ("BillingPeriodEnd", Presence::Always, |r| {
        month_start(r)
            .checked_add_months(chrono::Months::new(1))
            .map(timestamp)
    }),
    ("BillingPeriodStart", Presence::Always, |r| {
        Some(timestamp(month_start(r)))
    }),
    ("CapacityReservationId", Presence::WhenAny, |r| {
        attr(r, Attribute::CapacityReservationId)
    }),
    ("CapacityReservationStatus", Presence::WhenAny, |r| {
        attr(r, Attribute::CapacityReservationStatus)
    }),
    ("ChargeCategory", Presence::Always, |r| {
        Some(Cow::Borrowed(r.record.charge_category.as_str()))
    }),
    ("ChargeClass", Presence::Always, |r| {
        attr(r, Attribute::ChargeClass)
    }),
    ("ChargeDescription", Presence::Always, |r| {
        attr(r, Attribute::ChargeDescription)
            .or_else(|| text(&r.record.usage_type))
            .or_else(|| text(&r.record.service))
    }),
    ("ChargeFrequency", Presence::Always, |r| {
        attr(r, Attribute::ChargeFrequency).or(Some(Cow::Borrowed(
            match r.record.charge_category {
                ChargeCategory::Usage => "Usage-Based",
                _ => "One-Time",
            },
        )))
    }),
    ("ChargePeriodEnd", Presence::Always, |r| match span(r) {
        Some((_, end)) => Some(Cow::Borrowed(end)),
        None => r.record.date.succ_opt().map(timestamp),
    }),
    ("ChargePeriodStart", Presence::Always, |r| match span(r) {
        Some((start, _)) => Some(Cow::Borrowed(start)),
        None => Some(timestamp(r.record.date)),
    }),
    ("CommitmentDiscountCategory", Presence::WhenAny, |r| {
        attr(r, Attribute::CommitmentDiscountCategory)
    }),
    ("CommitmentDiscountId", Presence::WhenAny, |r| {
        attr(r, Attribute::CommitmentDiscountId)
    }),
    ("CommitmentDiscountName", Presence::WhenAny, |r| {
        attr(r, Attribute::CommitmentDiscountName)
    }),
    ("CommitmentDiscountQuantity", Presence::WhenAny, |r| {
        measure(r, Measure::CommitmentDiscountQuantity)
    }),
    ("CommitmentDiscountStatus", Presence::WhenAny, |r| {
        attr(r, Attribute::CommitmentDiscountStatus)
    }),
    ("CommitmentDiscountType", Presence::WhenAny, |r| {
        attr(r, Attribute::CommitmentDiscountType)
    }),
    ("CommitmentDiscountUnit", Presence::WhenAny, |r| {
        attr(r, Attribute::CommitmentDiscountUnit)
    }),
    ("ConsumedQuantity", Presence::Always, |r| {
        (r.record.charge_category == ChargeCategory::Usage)
            .then(|| Cow::Owned(r.record.usage_quantity.to_string()))
    }),
    ("ConsumedUnit", Presence::Always, |r| {
        (r.record.charge_category == ChargeCategory::Usage).then(|| {
            attr(r, Attribute::ConsumedUnit)
                .or_else(|| attr(r, Attribute::PricingUnit))
                .unwrap_or(Cow::Borrowed(DEFAULT_UNIT))
        })
    }),
    ("ContractedCost", Presence::Always, |r| {
        measure(r, Measure::ContractedCost)
            .or_else(|| Some(Cow::Owned(r.record.cost.amount().to_string())))
    }),
    ("ContractedUnitPrice", Presence::WhenAny, |r| {
        measure(r, Measure::ContractedUnitPrice)
    }),
    ("EffectiveCost", Presence::Always, |r| {
        Some(Cow::Owned(
            r.record
                .effective_cost
                .unwrap_or(r.record.cost.amount())
                .to_string(),
        ))
    }),
    ("InvoiceId", Presence::Always, |r| {
        attr(r, Attribute::InvoiceId).or_else(|| {
            let account = billing_account(r).unwrap_or_default();
            Some(Cow::Owned(format!(
                "PROVISIONAL-{account}-{}",
                r.record.date.format("%Y-%m")
            )))
        })
    }),
    ("InvoiceIssuerName", Presence::Always, |r| {
        attr(r, Attribute::InvoiceIssuerName).or_else(|| provider_name(r))
    }),
    ("ListCost", Presence::Always, |r| {
        Some(Cow::Owned(
            r.record
                .list_cost
                .unwrap_or(r.record.cost.amount())
                .to_string(),
        ))
    }),
    ("ListUnitPrice", Presence::WhenAny, |r| {
        measure(r, Measure::ListUnitPrice)
    }),
    ("PricingCategory", Presence::WhenAny, |r| {
        attr(r, Attribute::PricingCategory)
    }),
    ("PricingCurrency", Presence::WhenAny, |r| {
        attr(r, Attribute::PricingCurrency)
    }),
    ("PricingQuantity", Presence::Always, pricing_quantity),
    ("PricingUnit", Presence::Always, |r| {
        pricing_quantity(r)?;
        attr(r, Attribute::PricingUnit).or(Some(Cow::Borrowed(DEFAULT_UNIT)))
    }),
    ("ProviderName", Presence::Always, provider_name),
    ("PublisherName", Presence::Always, |r| {
        attr(r, Attribute::PublisherName).or_else(|| provider_name(r))
    }),
    ("RegionId", Presence::Always, |r| text(&r.record.region)),
    ("RegionName", Presence::WhenAny, |r| {
        attr(r, Attribute::RegionName)
    }),
    ("ResourceId", Presence::WhenAny, |r| {
        attr(r, Attribute::ResourceId)
    }),
    ("ResourceName", Presence::WhenAny, |r| {
        attr(r, Attribute::ResourceName)
    }),
    ("ResourceType", Presence::WhenAny, |r| {
        attr(r, Attribute::ResourceType)
    }),
    ("ServiceCategory", Presence::Always, service_category),
    ("ServiceName", Presence::Always, |r| text(&r.record.service)),
    ("ServiceSubcategory", Presence::Always, |r| {
        attr(r, Attribute::ServiceSubcategory).or_else(|| {
            Some(Cow::Owned(format!(
                "Other ({})",
                service_category(r).unwrap_or_default()
            )))
        })
    }),
    ("SkuId", Presence::WhenAny, |r| attr(r, Attribute::SkuId)),
    ("SkuMeter", Presence::WhenAny, |r| {
        attr(r, Attribute::SkuMeter)
    }),
    ("SkuPriceId", Presence::WhenAny, |r| {
        attr(r, Attribute::SkuPriceId)
    }),
    ("SubAccountId", Presence::Always, |r| {
        text(&r.record.cloud_account)
    }),
    ("SubAccountName", Presence::WhenAny, |r| {
        attr(r, Attribute::SubAccountName)
    }),
    ("SubAccountType", Presence::WhenAny, |r| {
        attr(r, Attribute::SubAccountType)
    }),
    ("Tags", Presence::Always, |r| {
        let tags: serde_json::Map<String, serde_json::Value> = r
            .record
            .tags
            .iter()
            .filter(|(k, _)| k.as_str() != crate::SPAN_TAG)
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        (!tags.is_empty()).then(|| Cow::Owned(serde_json::Value::Object(tags).to_string()))
    }),
    ("x_ServiceAccount", Presence::Always, |r| {
        text(r.account_name)
    }),
    ("x_Project", Presence::Always, |r| text(r.project_name)),
    ("x_UsageType", Presence::Always, |r| {
        text(&r.record.usage_type)
    }),
    ("x_InstanceType", Presence::Always, |r| {
        r.record.instance_type.as_deref().and_then(text)
    }),
];

/// cloudbill's own `x_` columns: written from the catalog on every export, never read back as
/// a source's columns.
pub const OWN_COLUMNS: [&str; 4] = [
    "x_ServiceAccount",
    "x_Project",
    "x_UsageType",
    "x_InstanceType",
];

/// The columns an export of `rows` has, in order: [`COLUMNS`] that are always present or have
/// a value in some row, then the rows' own `x_` columns by name.
pub fn export_columns(rows: &[ExportRow<'_>]) -> Vec<Cow<'static, str>> {
    let mut out: Vec<Cow<'static, str>> = COLUMNS
        .iter()
        .filter(|(_, presence, value)| {
            *presence == Presence::Always || rows.iter().any(|r| value(r).is_some())
        })
        .map(|(name, _, _)| Cow::Borrowed(*name))
        .collect();
    let extensions: BTreeSet<&str> = rows
        .iter()
        .flat_map(|r| r.record.extensions.keys())
        .map(String::as_str)
        .filter(|k| !OWN_COLUMNS.contains(k))
        .collect();
    out.extend(extensions.into_iter().map(|k| Cow::Owned(k.to_owned())));
    out
}

/// A column's value of a row (`None`: null).
pub(crate) fn cell<'r>(column: &str, row: &ExportRow<'r>) -> Option<Cow<'r, str>> {
    match COLUMNS.iter().find(|(n, _, _)| *n == column) {
        Some((_, _, value)) => value(row),
        None => row
            .record
            .extensions
            .get(column)
            .map(|v| Cow::Borrowed(v.as_str())),
    }
}

/// Writes `rows` as FOCUS 1.2 CSV with a header ([`export_columns`]). Amounts are written
/// exactly as stored; a null is an empty cell.
pub fn write_focus<W: Write + Send>(out: W, rows: &[ExportRow<'_>]) -> Result<(), csv::Error> {
    let mut plan = crate::ExportPlan::new();
    plan.observe(rows)?;
    let mut w = crate::FocusWriter::new(crate::ExportFormat::Csv, out, &plan)?;
    w.write(rows)?;
    w.finish()?;
    Ok(())
}
