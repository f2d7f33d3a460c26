//! Reading FOCUS and CUR CSV into cost records.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Utc};
use cloudbill_core::{
    parse_decimal, AccountId, ChargeCategory, CostRecord, Currency, DateRange, Decimal, DomainId,
    Money, PartitionEncoder, ProviderKind, RecordFields, Tags,
};

use crate::limits::{Bounded, MAX_COLUMNS, MAX_VALUE_CHARS};
use crate::{ImportError, RowError};

/// The tag that records the span of a charge covering more than one day.
pub const SPAN_TAG: &str = "cloudbill:charge-period";

/// How many row errors a `--skip-invalid` import reports.
const REPORTED_ERRORS: usize = 20;

/// Which kind of bill a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BillFormat {
    /// FinOps FOCUS 1.0–1.2.
    Focus,
    /// AWS Cost and Usage Report (legacy CUR, `lineItem/…` columns).
    Cur,
}

/// Import behaviour.
#[derive(Debug, Clone, Copy, Default)]
pub struct ImportOptions {
    /// Skip rows that cannot be mapped (counting them) instead of stopping.
    pub skip_invalid: bool,
    /// The days the import replaces, declared (`--window`): every row must lie in it, days
    /// in it without rows become empty, and rows far from their billing period are allowed.
    /// Without it an import replaces exactly the days its rows hold.
    pub window: Option<DateRange>,
}

/// How far (in days) a row's charge day may lie outside its own billing period before the
/// import refuses it as a likely typo (a year 2052 among 2025 rows), unless `window` covers it.
pub const BILLING_PERIOD_SLACK_DAYS: i64 = 31;

/// What a file held.
#[derive(Debug, Clone, Default)]
pub struct ImportedBill {
    /// The records, in file order.
    pub records: Vec<CostRecord>,
    /// The days the records cover (`None` when there are none).
    pub range: Option<DateRange>,
    /// Data rows read (skipped ones included).
    pub rows: u64,
    /// Rows skipped as invalid.
    pub skipped: u64,
    /// The first invalid rows (at most 20).
    pub first_errors: Vec<RowError>,
}

struct Columns {
    index: HashMap<String, usize>,
    tag_columns: Vec<(String, usize)>,
}

impl Columns {
    fn get(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }
}

/// Column names per format: (date, end, cost, currency, effective, list, service, service
/// fallback, region, region fallback, account, account fallback, category, quantity, usage type,
/// usage type fallback, instance type, tags JSON).
struct Layout {
    start: &'static str,
    end: &'static str,
    cost: &'static str,
    currency: &'static str,
    effective: Option<&'static str>,
    list: Option<&'static str>,
    service: [&'static str; 2],
    region: [&'static str; 2],
    account: [&'static str; 2],
    category: &'static str,
    quantity: &'static str,
    usage_type: [&'static str; 2],
    instance_type: Option<&'static str>,
    tags_json: Option<&'static str>,
    tag_prefix: Option<&'static str>,
    billing_period: [&'static str; 2],
}

const FOCUS: Layout = Layout {
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
};

const CUR: Layout = Layout {
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
};

/// A cell's text, `None` when empty or the `NULL` token.
fn cell(record: &csv::StringRecord, index: Option<usize>) -> Option<&str> {
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

fn first_cell(record: &csv::StringRecord, indexes: [Option<usize>; 2]) -> Option<&str> {
    cell(record, indexes[0]).or_else(|| cell(record, indexes[1]))
}

/// The layout's columns resolved to positions in this file's header, once per file.
struct Positions {
    start: Option<usize>,
    end: Option<usize>,
    cost: Option<usize>,
    currency: Option<usize>,
    effective: Option<usize>,
    list: Option<usize>,
    service: [Option<usize>; 2],
    region: [Option<usize>; 2],
    account: [Option<usize>; 2],
    category: Option<usize>,
    quantity: Option<usize>,
    usage_type: [Option<usize>; 2],
    instance_type: Option<usize>,
    tags_json: Option<usize>,
    billing_period: [Option<usize>; 2],
}

impl Positions {
    fn new(layout: &Layout, columns: &Columns) -> Self {
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
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` (or a bare `YYYY-MM-DD`) without allocating: nearly every timestamp
/// of a real bill, parsed many times faster than the general path.
fn fast_timestamp(raw: &str) -> Option<DateTime<Utc>> {
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
pub(crate) fn parse_timestamp(raw: &str) -> Option<DateTime<Utc>> {
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
    NaiveDate::parse_from_str(&text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}

fn cur_category(raw: &str) -> ChargeCategory {
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

struct RowContext<'a> {
    layout: &'a Layout,
    columns: &'a Columns,
    at: Positions,
    format: BillFormat,
    window: Option<DateRange>,
}

fn map_row(
    ctx: &RowContext<'_>,
    record: &csv::StringRecord,
    line: u64,
    (domain, account): (DomainId, AccountId),
) -> Result<CostRecord, RowError> {
    let mut tags = BTreeMap::new();
    let f = map_fields(ctx, record, line, &mut tags)?;
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
    })
}

/// The row's tags (the FOCUS `Tags` JSON object, CUR's `resourceTags/…` columns) into `tags`
/// (cleared first), each key and value checked.
fn read_tags(
    ctx: &RowContext<'_>,
    record: &csv::StringRecord,
    line: u64,
    tags: &mut Tags,
) -> Result<(), RowError> {
    let err = |column: &str, message: String| RowError {
        line,
        column: column.to_owned(),
        message,
    };
    tags.clear();
    if let Some(name) = ctx.layout.tags_json {
        if let Some(text) = cell(record, ctx.at.tags_json) {
            let value: serde_json::Value = serde_json::from_str(text)
                .map_err(|e| err(name, format!("not a JSON object: {e}")))?;
            let object = value
                .as_object()
                .ok_or_else(|| err(name, "not a JSON object".into()))?;
            for (k, v) in object {
                let v = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                check_text(k)
                    .and_then(|()| check_text(&v))
                    .map_err(|m| err(name, format!("tag {}: {m}", excerpt(k))))?;
                tags.insert(k.clone(), v);
            }
        }
    }
    for (key, index) in &ctx.columns.tag_columns {
        if let Some(v) = cell(record, Some(*index)) {
            check_text(v).map_err(|m| err(key, m))?;
            tags.insert(key.clone(), v.to_owned());
        }
    }
    Ok(())
}

/// Checks a charge period's end against its start; the span tag's value when the charge covers
/// more than one day.
fn charge_span(
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
fn map_fields<'r>(
    ctx: &RowContext<'_>,
    record: &'r csv::StringRecord,
    line: u64,
    tags: &'r mut Tags,
) -> Result<RecordFields<'r>, RowError> {
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
    let amount = |name: &str, text: &str| parse_decimal(text).map_err(|e| err(name, e.to_string()));
    let start_text = required(layout.start, at.start)?;
    let start = parse_timestamp(start_text).ok_or_else(|| {
        err(
            layout.start,
            format!("{} is not a timestamp", excerpt(start_text)),
        )
    })?;
    check_day(ctx, record, start.date_naive()).map_err(|m| err(layout.start, m))?;
    let cost = amount(layout.cost, required(layout.cost, at.cost)?)?;
    let currency_text = required(layout.currency, at.currency)?;
    let currency =
        Currency::parse(currency_text).map_err(|e| err(layout.currency, e.to_string()))?;
    let optional_amount =
        |name: Option<&str>, index: Option<usize>| -> Result<Option<Decimal>, RowError> {
            match name.zip(cell(record, index)) {
                Some((n, t)) => amount(n, t).map(Some),
                None => Ok(None),
            }
        };
    let effective_cost = optional_amount(layout.effective, at.effective)?;
    let list_cost = optional_amount(layout.list, at.list)?;
    let usage_quantity = match cell(record, at.quantity) {
        Some(t) => amount(layout.quantity, t)?,
        None => Decimal::ZERO,
    };
    let charge_category = match (ctx.format, cell(record, at.category)) {
        (_, None) => ChargeCategory::Usage,
        (BillFormat::Focus, Some(t)) => t
            .parse()
            .map_err(|e: cloudbill_core::ValidationError| err(layout.category, e.to_string()))?,
        (BillFormat::Cur, Some(t)) => cur_category(t),
    };
    read_tags(ctx, record, line, tags)?;
    if let Some(end_text) = cell(record, at.end) {
        if let Some(span) =
            charge_span(start, start_text, end_text).map_err(|m| err(layout.end, m))?
        {
            tags.insert(SPAN_TAG.to_owned(), span);
        }
    }
    let text = |name: &str, value: Option<&'r str>| -> Result<Option<&'r str>, RowError> {
        if let Some(v) = value {
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
    })
}

/// Checks a row's charge day against `--window` (it must lie inside) or, without one,
/// against the row's own billing period (at most [`BILLING_PERIOD_SLACK_DAYS`] outside).
fn check_day(
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
pub(crate) fn excerpt(value: &str) -> String {
    const MAX: usize = 64;
    let mut cut: String = value.chars().take(MAX).collect();
    if cut.len() < value.len() {
        cut.push('…');
    }
    format!("{cut:?}")
}

/// Reads a whole bill into memory. `file` names the source in errors. Stops at the first bad
/// row unless `options.skip_invalid`; a missing mandatory column or broken CSV always stops.
pub fn read<R: Read>(
    source: R,
    file: &str,
    format: BillFormat,
    domain: DomainId,
    account: AccountId,
    options: ImportOptions,
) -> Result<ImportedBill, ImportError> {
    let mut records = Vec::new();
    let mut bill = for_each_record(source, file, format, domain, account, options, |r| {
        records.push(r);
    })?;
    bill.records = records;
    Ok(bill)
}

/// Streams a bill: hands every mapped record to `sink` as it is read and returns the summary
/// (range, rows, skipped rows) with no records kept, so memory stays flat whatever the size.
/// Errors as [`read`].
pub fn for_each_record<R: Read>(
    source: R,
    file: &str,
    format: BillFormat,
    domain: DomainId,
    account: AccountId,
    options: ImportOptions,
    mut sink: impl FnMut(CostRecord),
) -> Result<ImportedBill, ImportError> {
    let (mut reader, columns, width) = open_csv(source, file, format)?;
    let ctx = context(format, &columns, options);
    let mut rows = Rows::new(options);
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => return Err(csv_error(file, &e)),
        }
        let line = rows.next_line(&record);
        let mapped = check_width(&record, width, line)
            .and_then(|()| map_row(&ctx, &record, line, (domain, account)));
        let kept = rows.outcome(mapped).map_err(|error| ImportError::Row {
            file: file.to_owned(),
            error,
        })?;
        if let Some(r) = kept {
            rows.saw(r.date);
            sink(r);
        }
    }
    rows.finish(file)
}

fn csv_error(file: &str, e: &csv::Error) -> ImportError {
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
fn open_csv<R: Read>(
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

/// Refuses a text value a report could not show safely: longer than [`MAX_VALUE_CHARS`], or
/// holding a control character (C0, DEL or C1: a terminal escape sequence starts with one).
fn check_text(value: &str) -> Result<(), String> {
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
const EARLIEST_DAY: (i32, u32, u32) = (2000, 1, 1);
const LATEST_YEAR: i32 = 2099;

fn layout(format: BillFormat) -> &'static Layout {
    match format {
        BillFormat::Focus => &FOCUS,
        BillFormat::Cur => &CUR,
    }
}

fn context(format: BillFormat, columns: &Columns, options: ImportOptions) -> RowContext<'_> {
    let layout = layout(format);
    RowContext {
        layout,
        at: Positions::new(layout, columns),
        columns,
        format,
        window: options.window,
    }
}

fn check_width(record: &csv::StringRecord, width: usize, line: u64) -> Result<(), RowError> {
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

/// The row bookkeeping both readers share: counts, skipped rows, the range of days.
#[derive(Default)]
struct Rows {
    options: ImportOptions,
    bill: ImportedBill,
    min: Option<NaiveDate>,
    max: Option<NaiveDate>,
}

impl Rows {
    fn new(options: ImportOptions) -> Self {
        Self {
            options,
            ..Self::default()
        }
    }

    /// Counts a row and returns its line.
    fn next_line(&mut self, record: &csv::StringRecord) -> u64 {
        self.bill.rows += 1;
        record
            .position()
            .map_or(self.bill.rows + 1, csv::Position::line)
    }

    /// A mapped row: `Some` to keep, `None` when skipped (`skip_invalid`), the row's error to
    /// stop.
    fn outcome<T>(&mut self, mapped: Result<T, RowError>) -> Result<Option<T>, RowError> {
        match mapped {
            Ok(v) => Ok(Some(v)),
            Err(error) if self.options.skip_invalid => {
                self.bill.skipped += 1;
                if self.bill.first_errors.len() < REPORTED_ERRORS {
                    self.bill.first_errors.push(error);
                }
                Ok(None)
            }
            Err(error) => Err(error),
        }
    }

    fn saw(&mut self, date: NaiveDate) {
        self.min = Some(self.min.map_or(date, |m| m.min(date)));
        self.max = Some(self.max.map_or(date, |m| m.max(date)));
    }

    /// Takes in what another reader of the same file saw (rows are counted by the caller).
    fn absorb(&mut self, other: Rows) {
        self.bill.skipped += other.bill.skipped;
        self.bill.first_errors.extend(other.bill.first_errors);
        self.bill.first_errors.sort_by_key(|e| e.line);
        self.bill.first_errors.truncate(REPORTED_ERRORS);
        self.min = self.min.into_iter().chain(other.min).min();
        self.max = self.max.into_iter().chain(other.max).max();
    }

    fn finish(mut self, file: &str) -> Result<ImportedBill, ImportError> {
        if self.bill.rows == 0 {
            return Err(ImportError::Empty {
                file: file.to_owned(),
            });
        }
        if self.bill.skipped == self.bill.rows {
            if let Some(first) = self.bill.first_errors.first() {
                return Err(ImportError::AllInvalid {
                    file: file.to_owned(),
                    rows: self.bill.rows,
                    first: first.clone(),
                });
            }
        }
        if let (Some(lo), Some(hi)) = (self.min, self.max) {
            self.bill.range = DateRange::new(lo, hi.succ_opt().unwrap_or(hi)).ok();
        }
        Ok(self.bill)
    }
}

/// Rows per batch handed from the CSV reader thread to a mapper.
const BATCH: usize = 1024;

/// What one mapper thread of [`encode_bill`] saw.
#[derive(Default)]
struct MapperOutcome {
    rows: Rows,
    /// The bad row that stopped this mapper (not with `skip_invalid`).
    bad: Option<RowError>,
    /// Stopped early: a bad row, or the receiver went away.
    stopped: bool,
}

/// Maps and encodes the batches it receives; finished partitions go to `out`.
#[allow(clippy::too_many_arguments)] // One worker's wiring, passed once.
fn mapper(
    ctx: &RowContext<'_>,
    width: usize,
    options: ImportOptions,
    spill_bytes: usize,
    batches: std::sync::mpsc::Receiver<Vec<csv::StringRecord>>,
    out: &std::sync::mpsc::SyncSender<Vec<u8>>,
    recycle: &std::sync::mpsc::Sender<Vec<csv::StringRecord>>,
    stop: &std::sync::atomic::AtomicBool,
) -> MapperOutcome {
    use std::sync::atomic::Ordering;
    let mut seen = MapperOutcome {
        rows: Rows::new(options),
        ..MapperOutcome::default()
    };
    let mut encoders: BTreeMap<NaiveDate, PartitionEncoder> = BTreeMap::new();
    let mut tags = Tags::new();
    let flush = |encoders: &mut BTreeMap<NaiveDate, PartitionEncoder>| {
        std::mem::take(encoders)
            .into_values()
            .all(|e| out.send(e.finish()).is_ok())
    };
    for batch in batches {
        if seen.stopped {
            continue; // drain, so the reader never blocks on this mapper
        }
        for record in &batch {
            let line = record.position().map_or(0, csv::Position::line);
            let mapped = check_width(record, width, line)
                .and_then(|()| map_fields(ctx, record, line, &mut tags));
            match seen.rows.outcome(mapped) {
                Ok(Some(f)) => {
                    let date = f.date;
                    let month = date.with_day(1).unwrap_or(date);
                    encoders
                        .entry(month)
                        .or_insert_with(|| PartitionEncoder::new(month))
                        .push_fields(&f);
                    seen.rows.saw(date);
                }
                Ok(None) => {}
                Err(error) => {
                    seen.bad = Some(error);
                    seen.stopped = true;
                    stop.store(true, Ordering::Relaxed);
                    break;
                }
            }
        }
        let _ = recycle.send(batch);
        if !seen.stopped
            && encoders
                .values()
                .map(PartitionEncoder::memory)
                .sum::<usize>()
                > spill_bytes
            && !flush(&mut encoders)
        {
            seen.stopped = true;
        }
    }
    if !seen.stopped {
        flush(&mut encoders);
    }
    seen
}

/// Streams a bill straight into columnar partitions (cloudbill-core's codec), for a store
/// that takes them ready-encoded. One thread splits the CSV into records (reusing their
/// buffers) and deals batches round-robin to one mapper per core, which map each row's cells
/// — no `CostRecord`, no per-row allocation — into their own encoder per month. `emit` (on
/// the calling thread) receives every finished partition; when a mapper's encoders hold more
/// than `spill_bytes` it finishes them early (a month then spans several partitions, which
/// come in no particular order), so memory stays bounded whatever the file's size. `emit`
/// returning `false` stops the read (the receiver is gone). Errors and summary as
/// [`for_each_record`]: the bad row reported is the first in the file; skipped rows are
/// reported in line order.
pub fn encode_bill<R: Read + Send>(
    source: R,
    file: &str,
    format: BillFormat,
    options: ImportOptions,
    spill_bytes: usize,
    mut emit: impl FnMut(Vec<u8>) -> bool,
) -> Result<ImportedBill, ImportError> {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::mpsc;
    let (mut reader, columns, width) = open_csv(source, file, format)?;
    let ctx = context(format, &columns, options);
    let workers = std::thread::available_parallelism()
        .map_or(1, std::num::NonZero::get)
        .clamp(1, 4);
    let stop = AtomicBool::new(false);
    let (out_tx, out_rx) = mpsc::sync_channel::<Vec<u8>>(workers * 2);
    let (recycle_tx, recycle_rx) = mpsc::channel::<Vec<csv::StringRecord>>();
    let (read, outcomes) = std::thread::scope(|scope| {
        let mut to_workers = Vec::with_capacity(workers);
        let mut handles = Vec::with_capacity(workers);
        for _ in 0..workers {
            let (tx, rx) = mpsc::sync_channel::<Vec<csv::StringRecord>>(2);
            to_workers.push(tx);
            let (ctx, out, recycle, stop) = (&ctx, out_tx.clone(), recycle_tx.clone(), &stop);
            handles.push(
                scope.spawn(move || {
                    mapper(ctx, width, options, spill_bytes, rx, &out, &recycle, stop)
                }),
            );
        }
        drop((out_tx, recycle_tx));
        let stop = &stop;
        let reader_thread = scope.spawn(move || -> Result<u64, ImportError> {
            let mut rows = 0u64;
            for turn in 0.. {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let mut batch = recycle_rx.try_recv().unwrap_or_default();
                batch.resize_with(BATCH, csv::StringRecord::new);
                let mut filled = 0;
                while filled < BATCH {
                    match reader.read_record(&mut batch[filled]) {
                        Ok(true) => filled += 1,
                        Ok(false) => break,
                        Err(e) => {
                            stop.store(true, Ordering::Relaxed);
                            return Err(csv_error(file, &e));
                        }
                    }
                }
                rows += filled as u64;
                let done = filled < BATCH;
                batch.truncate(filled);
                if (!batch.is_empty() && to_workers[turn % workers].send(batch).is_err()) || done {
                    break;
                }
            }
            Ok(rows)
        });
        for partition in out_rx {
            if !stop.load(Ordering::Relaxed) && !emit(partition) {
                stop.store(true, Ordering::Relaxed);
            }
        }
        let outcomes: Vec<MapperOutcome> = handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect();
        let read = reader_thread.join().unwrap_or(Ok(0));
        (read, outcomes)
    });
    merge(file, options, read, outcomes)
}

/// The summary of [`encode_bill`] from what the reader and the mappers saw: the first bad
/// row of the file wins (a mapper's, or the reader's broken CSV when that comes first).
fn merge(
    file: &str,
    options: ImportOptions,
    read: Result<u64, ImportError>,
    outcomes: Vec<MapperOutcome>,
) -> Result<ImportedBill, ImportError> {
    let mut rows = Rows::new(options);
    let mut first_bad: Option<RowError> = None;
    let mut stopped = false;
    for o in outcomes {
        rows.absorb(o.rows);
        stopped |= o.stopped;
        if let Some(bad) = o.bad {
            if first_bad.as_ref().is_none_or(|b| bad.line < b.line) {
                first_bad = Some(bad);
            }
        }
    }
    let row_error = |error| ImportError::Row {
        file: file.to_owned(),
        error,
    };
    match (read, first_bad) {
        (Err(ImportError::Csv { line, .. }), Some(error)) if error.line < line => {
            return Err(row_error(error))
        }
        (Err(e), _) => return Err(e),
        (Ok(_), Some(error)) => return Err(row_error(error)),
        (Ok(count), None) => rows.bill.rows = count,
    }
    if stopped {
        // The receiver went away: the caller reports why.
        return Ok(rows.bill);
    }
    rows.finish(file)
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
