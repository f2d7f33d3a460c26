//! Writing cost records as FOCUS 1.2 CSV.

use std::io::Write;

use cloudbill_core::{Attribute, CostRecord};

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

/// The columns written: FOCUS 1.2 columns the data supports (mandatory ones always present,
/// empty where cloudbill has no value), then cloudbill's own as `x_` columns, then the
/// FOCUS attributes not named above ([`extra_attributes`]).
pub const FOCUS_EXPORT_COLUMNS: [&str; 22] = [
    "BilledCost",
    "BillingAccountId",
    "BillingCurrency",
    "BillingPeriodStart",
    "BillingPeriodEnd",
    "ChargeCategory",
    "ChargeClass",
    "ChargeDescription",
    "ChargePeriodStart",
    "ChargePeriodEnd",
    "ConsumedQuantity",
    "EffectiveCost",
    "ListCost",
    "ProviderName",
    "RegionId",
    "ServiceName",
    "SubAccountId",
    "Tags",
    "x_ServiceAccount",
    "x_Project",
    "x_UsageType",
    "x_InstanceType",
];

/// The attributes [`FOCUS_EXPORT_COLUMNS`] places among its columns.
const PLACED: [Attribute; 3] = [
    Attribute::BillingAccountId,
    Attribute::ChargeClass,
    Attribute::ChargeDescription,
];

/// The attributes written after [`FOCUS_EXPORT_COLUMNS`], under their FOCUS names: every
/// [`Attribute`] not placed among those.
pub fn extra_attributes() -> impl Iterator<Item = Attribute> {
    Attribute::ALL.into_iter().filter(|a| !PLACED.contains(a))
}

/// Writes `rows` as FOCUS 1.2 CSV with a header. Amounts are written exactly as stored.
/// BillingAccountId is the record's attribute, or its sub-account when it has none (the
/// importer reads a BillingAccountId equal to the sub-account back as none).
pub fn write_focus<'a, W: Write>(
    out: W,
    rows: impl IntoIterator<Item = ExportRow<'a>>,
) -> Result<(), csv::Error> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record(
        FOCUS_EXPORT_COLUMNS
            .iter()
            .copied()
            .chain(extra_attributes().map(Attribute::focus_name)),
    )?;
    for row in rows {
        let r = row.record;
        let day = r.date;
        let next = day.succ_opt().unwrap_or(day);
        let month_start = day.format("%Y-%m-01T00:00:00Z").to_string();
        let month_end = chrono::Datelike::with_day(&day, 1)
            .and_then(|d| d.checked_add_months(chrono::Months::new(1)))
            .map_or_else(String::new, |d| d.format("%Y-%m-%dT00:00:00Z").to_string());
        let (start, end) = match r.tags.get(crate::SPAN_TAG).and_then(|s| s.split_once('/')) {
            Some((s, e)) => (s.to_owned(), e.to_owned()),
            None => (
                day.format("%Y-%m-%dT00:00:00Z").to_string(),
                next.format("%Y-%m-%dT00:00:00Z").to_string(),
            ),
        };
        let tags: serde_json::Map<String, serde_json::Value> = r
            .tags
            .iter()
            .filter(|(k, _)| k.as_str() != crate::SPAN_TAG)
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        let attribute = |a: Attribute| r.attributes.get(&a).cloned().unwrap_or_default();
        let fixed = [
            r.cost.amount().to_string(),
            r.attributes
                .get(&Attribute::BillingAccountId)
                .unwrap_or(&r.cloud_account)
                .clone(),
            r.currency().to_string(),
            month_start,
            month_end,
            r.charge_category.as_str().to_owned(),
            attribute(Attribute::ChargeClass),
            attribute(Attribute::ChargeDescription),
            start,
            end,
            r.usage_quantity.to_string(),
            r.effective_cost.unwrap_or(r.cost.amount()).to_string(),
            r.list_cost.map(|d| d.to_string()).unwrap_or_default(),
            r.provider.display_name().to_owned(),
            r.region.clone(),
            r.service.clone(),
            r.cloud_account.clone(),
            if tags.is_empty() {
                String::new()
            } else {
                serde_json::Value::Object(tags).to_string()
            },
            row.account_name.to_owned(),
            row.project_name.to_owned(),
            r.usage_type.clone(),
            r.instance_type.clone().unwrap_or_default(),
        ];
        w.write_record(fixed.into_iter().chain(extra_attributes().map(attribute)))?;
    }
    w.flush()?;
    Ok(())
}
