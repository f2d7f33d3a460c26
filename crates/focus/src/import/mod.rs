//! Reading FOCUS and CUR CSV into cost records: the options and summary types, and the two
//! readers — records one at a time ([`for_each_record`], [`read`]) and columnar partitions
//! ([`encode_bill`], in `encode`). `layout` knows the formats' columns, `fields` maps one row,
//! `rows` keeps the bookkeeping both readers share.

mod encode;
mod fields;
mod layout;
mod rows;
mod source;

use std::io::Read;

use cloudbill_core::{AccountId, CostRecord, DateRange, DomainId};

pub use encode::encode_bill;
pub use source::{open_bill, parquet_to_csv, OpenedBill, MAX_HEADER_BYTES};

use fields::{context, map_row};
use layout::{check_width, csv_error, open_csv};
use rows::Rows;

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
    /// Azure Cost Management cost details (the ActualCost dataset of EA and MCA exports:
    /// `Date`, `CostInBillingCurrency`, `BillingCurrencyCode`, …).
    AzureCost,
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
