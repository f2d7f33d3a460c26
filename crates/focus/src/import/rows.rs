//! The row bookkeeping both readers share: counts, skipped rows and their first errors, the
//! range of days.

use chrono::NaiveDate;
use cloudbill_core::DateRange;

use super::{ImportOptions, ImportedBill, REPORTED_ERRORS};
use crate::{ImportError, RowError};

/// The row bookkeeping both readers share: counts, skipped rows, the range of days.
#[derive(Default)]
pub(super) struct Rows {
    pub(super) options: ImportOptions,
    pub(super) bill: ImportedBill,
    pub(super) min: Option<NaiveDate>,
    pub(super) max: Option<NaiveDate>,
}

impl Rows {
    pub(super) fn new(options: ImportOptions) -> Self {
        Self {
            options,
            ..Self::default()
        }
    }

    /// Counts a row and returns its line.
    pub(super) fn next_line(&mut self, record: &csv::StringRecord) -> u64 {
        self.bill.rows += 1;
        record
            .position()
            .map_or(self.bill.rows + 1, csv::Position::line)
    }

    /// A mapped row: `Some` to keep, `None` when skipped (`skip_invalid`), the row's error to
    /// stop.
    pub(super) fn outcome<T>(
        &mut self,
        mapped: Result<T, RowError>,
    ) -> Result<Option<T>, RowError> {
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

    pub(super) fn saw(&mut self, date: NaiveDate) {
        self.min = Some(self.min.map_or(date, |m| m.min(date)));
        self.max = Some(self.max.map_or(date, |m| m.max(date)));
    }

    /// Takes in what another reader of the same file saw (rows are counted by the caller).
    pub(super) fn absorb(&mut self, other: Rows) {
        self.bill.skipped += other.bill.skipped;
        self.bill.first_errors.extend(other.bill.first_errors);
        self.bill.first_errors.sort_by_key(|e| e.line);
        self.bill.first_errors.truncate(REPORTED_ERRORS);
        self.min = self.min.into_iter().chain(other.min).min();
        self.max = self.max.into_iter().chain(other.max).max();
    }

    pub(super) fn finish(mut self, file: &str) -> Result<ImportedBill, ImportError> {
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
