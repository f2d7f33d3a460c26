//! One row's cells mapped to a record: timestamps, amounts, categories, tags, and the checks a
//! value must pass (days, text).

use std::borrow::Cow;
use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Utc};
use cloudbill_columnar::RecordFields;
use cloudbill_core::{
    parse_decimal, AccountId, Attribute, ChargeCategory, CostRecord, Currency, DateRange, Decimal,
    DomainId, Measure, Money, ProviderKind, Tags,
};

use super::layout::{cell, first_cell, layout, Columns, Layout, Positions};
use super::{BillFormat, ImportOptions, BILLING_PERIOD_SLACK_DAYS, SPAN_TAG};
use crate::limits::MAX_VALUE_CHARS;
use crate::RowError;

/// `YYYY-MM-DDTHH:MM:SSZ` (or a bare `YYYY-MM-DD`) without allocating: nearly every timestamp
/// of a real bill, parsed many times faster than the general path.
pub(super) fn fast_timestamp(raw: &str) -> Option<DateTime<Utc>> {
    let b = raw.as_bytes();
    let digits = |r: std::ops::Range<usize>| -> Option<u32> {
        b.get(r)?.iter().try_fold(0u32, |acc, c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    let date_only = b.len() == 10;
    if !(date_only || (b.len() == 20 && b[10] == b'T' && b[19] == b'Z'))
        || b[4] != b'-'
        || b[7] != b'-'
    {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(
        i32::try_from(digits(0..4)?).ok()?,
        digits(5..7)?,
        digits(8..10)?,
    )?;
    if date_only {
        return Some(date.and_hms_opt(0, 0, 0)?.and_utc());
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    Some(
        date.and_hms_opt(digits(11..13)?, digits(14..16)?, digits(17..19)?)?
            .and_utc(),
    )
}

/// Parses a FOCUS/CUR timestamp to UTC: RFC 3339 with `Z` or an offset, the same without an
/// offset (taken as UTC), with a space instead of `T`, or a bare date.
pub(super) fn parse_timestamp(raw: &str) -> Option<DateTime<Utc>> {
    if let Some(t) = fast_timestamp(raw) {
        return Some(t);
    }
    let text = raw.trim().replacen(' ', "T", 1);
    if let Ok(t) = DateTime::parse_from_rfc3339(&text) {
        return Some(t.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(&text, fmt) {
            return Some(t.and_utc());
        }
    }
    // A day, ISO or as Azure's cost details write it (MM/DD/YYYY).
    NaiveDate::parse_from_str(&text, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(&text, "%m/%d/%Y"))
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}

pub(super) fn cur_category(raw: &str) -> ChargeCategory {
    match raw {
        "Tax" => ChargeCategory::Tax,
        "Credit"
        | "Refund"
        | "BundledDiscount"
        | "EdpDiscount"
        | "PrivateRateDiscount"
        | "DistributorDiscount" => ChargeCategory::Credit,
        "Fee" | "RIFee" | "SavingsPlanRecurringFee" | "SavingsPlanUpfrontFee" => {
            ChargeCategory::Purchase
        }
        "SavingsPlanNegation" => ChargeCategory::Adjustment,
        _ => ChargeCategory::Usage,
    }
}

/// An Azure cost details row's `ChargeType` as a FOCUS charge category (as Microsoft's FOCUS
/// conversion maps it: unused reservations and savings plans are usage of the commitment).
pub(super) fn azure_category(raw: &str) -> ChargeCategory {
    match raw.trim().to_ascii_lowercase().as_str() {
        "purchase" => ChargeCategory::Purchase,
        "refund" | "credit" => ChargeCategory::Credit,
        "roundingadjustment" | "adjustment" => ChargeCategory::Adjustment,
        "tax" => ChargeCategory::Tax,
        _ => ChargeCategory::Usage,
    }
}

/// A row's charge category: FOCUS spells it, a CUR's line item type maps to it; none is usage.
fn category(
    format: BillFormat,
    cell: Option<&str>,
) -> Result<ChargeCategory, cloudbill_core::ValidationError> {
    match (format, cell) {
        (_, None) => Ok(ChargeCategory::Usage),
        (BillFormat::Focus, Some(t)) => t.parse(),
        (BillFormat::Cur, Some(t)) => Ok(cur_category(t)),
        (BillFormat::AzureCost, Some(t)) => Ok(azure_category(t)),
    }
}

pub(super) struct RowContext<'a> {
    pub(super) layout: &'a Layout,
    pub(super) columns: &'a Columns,
    pub(super) at: Positions,
    pub(super) format: BillFormat,
    pub(super) window: Option<DateRange>,
}

pub(super) fn map_row(
    ctx: &RowContext<'_>,
    record: &csv::StringRecord,
    line: u64,
    (domain, account): (DomainId, AccountId),
) -> Result<CostRecord, RowError> {
    let mut tags = BTreeMap::new();
    let mut scratch = Scratch::default();
    let f = map_fields(ctx, record, line, &mut tags, &mut scratch)?;
    Ok(CostRecord {
        domain,
        service_account: account,
        provider: f.provider,
        cloud_account: f.cloud_account.to_owned(),
        date: f.date,
        region: f.region.to_owned(),
        service: f.service.to_owned(),
        usage_type: f.usage_type.to_owned(),
        instance_type: f.instance_type.map(str::to_owned),
        usage_quantity: f.usage_quantity,
        cost: Money::new(f.cost, f.currency),
        effective_cost: f.effective_cost,
        list_cost: f.list_cost,
        charge_category: f.charge_category,
        tags: f.tags.clone(),
        attributes: f
            .attributes
            .iter()
            .map(|(a, v)| (*a, v.clone().into_owned()))
            .collect(),
        measures: f.measures.iter().copied().collect(),
        extensions: f
            .extensions
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    })
}

/// A row's borrowed attribute, measure and `x_` values, in buffers reused from row to row.
#[derive(Default)]
pub(super) struct Scratch<'r> {
    attributes: Vec<(Attribute, Cow<'r, str>)>,
    measures: Vec<(Measure, Decimal)>,
    extensions: Vec<(&'r str, &'r str)>,
}

/// A JSON object's members in order, a repeated key kept twice (a map keeps only the last,
/// which would drop a tag without a word).
struct Members(Vec<(String, serde_json::Value)>);

impl<'de> serde::Deserialize<'de> for Members {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Members;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Members, A::Error> {
                let mut out = Vec::new();
                while let Some(member) = map.next_entry()? {
                    out.push(member);
                }
                Ok(Members(out))
            }
        }
        d.deserialize_map(Visit)
    }
}

/// The row's tags (the FOCUS `Tags` JSON object, CUR's `resourceTags/…` columns) into `tags`
/// (cleared first), each key and value checked.
pub(super) fn read_tags(
    ctx: &RowContext<'_>,
    record: &csv::StringRecord,
    line: u64,
    tags: &mut Tags,
    plain: bool,
) -> Result<(), RowError> {
    let err = |column: &str, message: String| RowError {
        line,
        column: column.to_owned(),
        message,
    };
    tags.clear();
    if let Some(name) = ctx.layout.tags_json {
        if let Some(text) = cell(record, ctx.at.tags_json) {
            // EA cost details write the object's members without its braces.
            let braced;
            let text = if ctx.format == BillFormat::AzureCost && !text.starts_with('{') {
                braced = format!("{{{text}}}");
                braced.as_str()
            } else {
                text
            };
            let Members(members) = serde_json::from_str(text)
                .map_err(|e| err(name, format!("not a JSON object: {e}")))?;
            for (k, v) in members {
                let v = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                check_text(&k)
                    .and_then(|()| check_text(&v))
                    .map_err(|m| err(name, format!("tag {}: {m}", excerpt(&k))))?;
                if tags.contains_key(&k) {
                    return Err(err(
                        name,
                        format!("tag {} appears more than once", excerpt(&k)),
                    ));
                }
                tags.insert(k, v);
            }
        }
    }
    for (key, index) in &ctx.columns.tag_keys {
        if let Some(v) = cell(record, Some(*index)) {
            if !plain {
                check_text(v).map_err(|m| err(key, m))?;
            }
            tags.insert(key.clone(), v.to_owned());
        }
    }
    Ok(())
}

/// Checks a charge period's end against its start; the span tag's value when the charge covers
/// more than one day.
pub(super) fn charge_span(
    start: DateTime<Utc>,
    start_text: &str,
    end_text: &str,
) -> Result<Option<String>, String> {
    let end = parse_timestamp(end_text)
        .ok_or_else(|| format!("{} is not a timestamp", excerpt(end_text)))?;
    if end < start {
        return Err(format!(
            "{} is before the charge period's start {start_text}",
            excerpt(end_text)
        ));
    }
    Ok((end - start > chrono::Duration::days(1)).then(|| {
        format!(
            "{}/{}",
            start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            end.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )
    }))
}

/// Maps one row to borrowed record fields; `tags` is the caller's map, cleared and refilled
/// (no allocation for rows without tags).
/// An amount of a bill: exact, and below 10^18 in magnitude.
fn bill_amount(text: &str) -> Result<Decimal, String> {
    parse_decimal(text)
        .map_err(|e| e.to_string())
        .and_then(cloudbill_core::check_bill_amount)
}

pub(super) fn map_fields<'r: 'b, 'b>(
    ctx: &'r RowContext<'_>,
    record: &'r csv::StringRecord,
    line: u64,
    tags: &'b mut Tags,
    scratch: &'b mut Scratch<'r>,
) -> Result<RecordFields<'b>, RowError> {
    let layout = ctx.layout;
    let err = |column: &str, message: String| RowError {
        line,
        column: column.to_owned(),
        message,
    };
    let at = &ctx.at;
    let required = |name: &'static str, index: Option<usize>| {
        cell(record, index).ok_or_else(|| err(name, "empty (a value is required)".into()))
    };
    let amount = |name: &str, text: &str| bill_amount(text).map_err(|e| err(name, e));
    let start_text = required(layout.start, at.start)?;
    let start = parse_timestamp(start_text).ok_or_else(|| {
        err(
            layout.start,
            format!("{} is not a timestamp", excerpt(start_text)),
        )
    })?;
    check_day(ctx, record, start.date_naive()).map_err(|m| err(layout.start, m))?;
    let cost_text = required(layout.cost, at.cost)?;
    let cost = amount(layout.cost, cost_text)?;
    // Most bills repeat BilledCost in EffectiveCost, ListCost, ContractedCost: the same text
    // is the same decimal, parsed once.
    let amount = |name: &str, text: &str| {
        if text == cost_text {
            Ok(cost)
        } else {
            amount(name, text)
        }
    };
    let currency_text = required(layout.currency, at.currency)?;
    let currency =
        Currency::parse(currency_text).map_err(|e| err(layout.currency, e.to_string()))?;
    let optional_amount = |name: Option<&str>, index: Option<usize>| {
        name.zip(cell(record, index))
            .map(|(n, t)| amount(n, t))
            .transpose()
    };
    let effective_cost = optional_amount(layout.effective, at.effective)?;
    let list_cost = optional_amount(layout.list, at.list)?;
    let quantity_text = cell(record, at.quantity);
    let usage_quantity = match quantity_text {
        Some(t) => amount(layout.quantity, t)?,
        None => Decimal::ZERO,
    };
    let charge_category = category(ctx.format, cell(record, at.category))
        .map_err(|e| err(layout.category, e.to_string()))?;
    // One pass over the raw row decides whether its cells need checking one by one: nearly
    // every row is short and plain (see `plain_row`).
    let plain = plain_row(record);
    read_tags(ctx, record, line, tags, plain)?;
    if let Some(end_text) = cell(record, at.end) {
        if let Some(span) =
            charge_span(start, start_text, end_text).map_err(|m| err(layout.end, m))?
        {
            tags.insert(SPAN_TAG.to_owned(), span);
        }
    }
    let text = |name: &str, value: Option<&'r str>| -> Result<Option<&'r str>, RowError> {
        if let Some(v) = value.filter(|_| !plain) {
            check_text(v).map_err(|m| err(name, m))?;
        }
        Ok(value)
    };
    let cloud_account = text(layout.account[0], first_cell(record, at.account))?;
    let region = text(layout.region[0], first_cell(record, at.region))?;
    let service = text(layout.service[0], first_cell(record, at.service))?;
    let usage_type = text(layout.usage_type[0], first_cell(record, at.usage_type))?;
    let instance_type = text(
        layout.instance_type.unwrap_or(""),
        cell(record, at.instance_type),
    )?;
    // PricingQuantity mostly repeats ConsumedQuantity: parsed once too.
    scratch.fill(ctx, record, &text, &|name, t| {
        if Some(t) == quantity_text {
            Ok(usage_quantity)
        } else {
            amount(name, t)
        }
    })?;
    let Scratch {
        attributes,
        measures,
        extensions,
    } = scratch;
    Ok(RecordFields {
        date: start.date_naive(),
        provider: ProviderKind::File,
        cloud_account: cloud_account.unwrap_or_default(),
        region: region.unwrap_or_default(),
        service: service.unwrap_or_default(),
        usage_type: usage_type.unwrap_or_default(),
        instance_type,
        usage_quantity,
        cost,
        currency,
        effective_cost,
        list_cost,
        charge_category,
        tags,
        attributes,
        measures,
        extensions,
    })
}

/// Checks a text cell (see [`check_text`]), passing it through.
type TextCheck<'r, 'f> = dyn Fn(&str, Option<&'r str>) -> Result<Option<&'r str>, RowError> + 'f;

impl<'r> Scratch<'r> {
    /// Fills the buffers from the row: its FOCUS attributes (with the format's constants and
    /// derived values), measures and `x_` columns; `text` checks a cell, `amount` parses one.
    fn fill(
        &mut self,
        ctx: &'r RowContext<'_>,
        record: &'r csv::StringRecord,
        text: &TextCheck<'r, '_>,
        amount: &(dyn Fn(&str, &str) -> Result<Decimal, RowError> + '_),
    ) -> Result<(), RowError> {
        let Scratch {
            attributes,
            measures,
            extensions,
        } = self;
        let (layout, at) = (ctx.layout, &ctx.at);
        attributes.clear();
        for (attribute, index) in &at.attributes {
            if let Some(v) = text(attribute.focus_name(), cell(record, Some(*index)))? {
                let v = match (ctx.format, attribute) {
                    (BillFormat::Cur, Attribute::PricingUnit) => cloudbill_core::aws::focus_unit(v),
                    _ => Cow::Borrowed(v),
                };
                attributes.push((*attribute, v));
            }
        }
        for (attribute, value) in layout.constants {
            if !attributes.iter().any(|(a, _)| a == attribute) {
                attributes.push((*attribute, Cow::Borrowed(value)));
            }
        }
        if let Some(code) = cell(record, at.aws_service_code) {
            if !attributes
                .iter()
                .any(|(a, _)| *a == Attribute::ServiceCategory)
            {
                attributes.push((
                    Attribute::ServiceCategory,
                    Cow::Borrowed(cloudbill_core::aws::service_category(code)),
                ));
            }
        }
        measures.clear();
        for (measure, index) in &at.measures {
            if let Some(t) = cell(record, Some(*index)) {
                measures.push((*measure, amount(measure.focus_name(), t)?));
            }
        }
        extensions.clear();
        for (name, index) in &ctx.columns.extensions {
            if let Some(v) = text(name, cell(record, Some(*index)))? {
                extensions.push((name.as_str(), v));
            }
        }
        Ok(())
    }
}

/// Checks a row's charge day against `--window` (it must lie inside) or, without one,
/// against the row's own billing period (at most [`BILLING_PERIOD_SLACK_DAYS`] outside).
pub(super) fn check_day(
    ctx: &RowContext<'_>,
    record: &csv::StringRecord,
    day: NaiveDate,
) -> Result<(), String> {
    let earliest = NaiveDate::from_ymd_opt(EARLIEST_DAY.0, EARLIEST_DAY.1, EARLIEST_DAY.2);
    if earliest.is_some_and(|e| day < e) || day.year() > LATEST_YEAR {
        return Err(format!(
            "{day} is outside the days a bill may cover ({}-01-01 to {LATEST_YEAR}-12-31)",
            EARLIEST_DAY.0
        ));
    }
    if let Some(w) = ctx.window {
        if !w.contains(day) {
            return Err(format!(
                "{day} lies outside --window {}..{}",
                w.start(),
                w.end()
            ));
        }
        return Ok(());
    }
    let bound = |i: usize| cell(record, ctx.at.billing_period[i]).and_then(parse_timestamp);
    let (Some(period_start), Some(period_end)) = (bound(0), bound(1)) else {
        return Ok(());
    };
    let slack = chrono::Duration::days(BILLING_PERIOD_SLACK_DAYS);
    let (lo, hi) = (
        period_start.date_naive() - slack,
        period_end.date_naive() + slack,
    );
    if day < lo || day >= hi {
        return Err(format!(
            "{day} lies more than {BILLING_PERIOD_SLACK_DAYS} days outside the row's billing \
             period {}..{} (a mistyped year?); pass --window START..END covering it to import \
             it anyway",
            period_start.date_naive(),
            period_end.date_naive()
        ));
    }
    Ok(())
}

/// A short, escaped excerpt of a cell for an error message: at most 64 characters, control
/// characters and quotes escaped (an error never carries a whole hostile cell, nor a raw ESC).
pub(super) fn excerpt(value: &str) -> String {
    format!("{:?}", cloudbill_core::cut(value, 64))
}

/// Whether a whole row is short enough that no cell can pass [`MAX_VALUE_CHARS`] and holds no
/// byte that could start a control character (C0, DEL, or 0xC2, the lead byte of every C1):
/// then its cells need no [`check_text`]. One branch-free pass the compiler vectorises. (JSON
/// tag values are checked after decoding all the same: an escape like `\u001b` is plain
/// bytes in the row.)
#[allow(clippy::needless_bitwise_bool)] // Branch-free on purpose: the loop vectorises.
pub(super) fn plain_row(record: &csv::StringRecord) -> bool {
    let bytes = record.as_slice().as_bytes();
    bytes.len() <= MAX_VALUE_CHARS
        && !bytes.iter().fold(false, |seen, &b| {
            seen | (b < 0x20) | (b == 0x7f) | (b == 0xc2)
        })
}

/// Refuses a text value a report could not show safely: longer than [`MAX_VALUE_CHARS`], or
/// holding a control character (C0, DEL or C1: a terminal escape sequence starts with one).
pub(super) fn check_text(value: &str) -> Result<(), String> {
    if value.len() > MAX_VALUE_CHARS && value.chars().count() > MAX_VALUE_CHARS {
        return Err(format!(
            "a value of {} characters (at most {MAX_VALUE_CHARS})",
            value.chars().count()
        ));
    }
    let bytes = value.as_bytes();
    let control = bytes.iter().enumerate().any(|(i, b)| {
        *b < 0x20
            || *b == 0x7f
            || (*b == 0xc2 && bytes.get(i + 1).is_some_and(|n| (0x80..0xa0).contains(n)))
    });
    if control {
        return Err(format!("{} holds a control character", excerpt(value)));
    }
    Ok(())
}

/// The first day a charge may fall on, and the last year (a year 0000 or 9999 is a broken
/// bill, not a cost).
pub(super) const EARLIEST_DAY: (i32, u32, u32) = (2000, 1, 1);
pub(super) const LATEST_YEAR: i32 = 2099;

pub(super) fn context(
    format: BillFormat,
    columns: &Columns,
    options: ImportOptions,
) -> RowContext<'_> {
    let layout = layout(format);
    RowContext {
        layout,
        at: Positions::new(layout, columns),
        columns,
        format,
        window: options.window,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fast_timestamp_path_agrees_with_the_general_one() {
        let general = |raw: &str| {
            DateTime::parse_from_rfc3339(raw)
                .map(|t| t.with_timezone(&Utc))
                .ok()
                .or_else(|| {
                    NaiveDate::parse_from_str(raw, "%Y-%m-%d")
                        .ok()
                        .and_then(|d| d.and_hms_opt(0, 0, 0))
                        .map(|t| t.and_utc())
                })
        };
        for raw in [
            "2025-08-25T00:00:00Z",
            "2024-02-29T23:59:59Z",
            "2025-12-31",
            "2025-02-29T00:00:00Z",
            "2025-13-01",
            "2025-01-01T24:00:00Z",
            "2025-01-01T10:61:00Z",
            "2025-1-01T00:00:00Z",
            "2025-01-01T00:00:00+02:00",
            "2025-01-01 00:00:00Z",
            "2025-01-0aT00:00:00Z",
        ] {
            if let Some(fast) = fast_timestamp(raw) {
                assert_eq!(Some(fast), general(raw), "{raw}");
            }
            assert_eq!(
                parse_timestamp(raw).is_some(),
                general(raw.replacen(' ', "T", 1).as_str()).is_some(),
                "{raw}"
            );
        }
        assert!(fast_timestamp("2025-08-25T00:00:00Z").is_some());
        assert!(fast_timestamp("2025-12-31").is_some());
    }
}
