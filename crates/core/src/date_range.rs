//! Half-open ranges of UTC calendar days and the time buckets reports group them into.

use std::fmt;
use std::str::FromStr;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::ValidationError;

/// The longest range (in days, about ten years) a report, sync or import window may span;
/// longer ones are refused before any work (a sync of 0001-01-01..9999-12-31 would otherwise
/// burn a core).
pub const MAX_RANGE_DAYS: i64 = 3_700;

/// The first day cloudbill takes from a user, a file or a provider.
pub const FIRST_DAY: NaiveDate = match NaiveDate::from_ymd_opt(1970, 1, 1) {
    Some(d) => d,
    None => NaiveDate::MIN,
};
/// The last day cloudbill takes (a range may end the day after it).
pub const LAST_DAY: NaiveDate = match NaiveDate::from_ymd_opt(2099, 12, 31) {
    Some(d) => d,
    None => NaiveDate::MAX,
};

/// `day` if it lies between [`FIRST_DAY`] and [`LAST_DAY`]: a year like `+262142` or `0000`
/// is nobody's bill.
///
/// # Errors
/// [`ValidationError::DayOutOfRange`] otherwise.
pub fn check_day(day: NaiveDate) -> Result<NaiveDate, ValidationError> {
    if (FIRST_DAY..=LAST_DAY).contains(&day) {
        Ok(day)
    } else {
        Err(ValidationError::DayOutOfRange { day })
    }
}

/// Parses `YYYY-MM-DD` strictly (four-digit years, [`check_day`]).
pub fn parse_date(raw: &str) -> Result<NaiveDate, ValidationError> {
    check_day(parse_day_text(raw)?)
}

/// `YYYY-MM-DD` with a four-digit year, any such day.
fn parse_day_text(raw: &str) -> Result<NaiveDate, ValidationError> {
    let text = raw.trim();
    let bytes = text.as_bytes();
    if text.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return Err(ValidationError::Date {
            value: crate::cut(raw, 40).into_owned(),
        });
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| ValidationError::Date {
        value: crate::cut(raw, 40).into_owned(),
    })
}

/// UTC calendar days from `start` (inclusive) to `end` (exclusive); never empty.
///
/// ```
/// use cloudbill_core::DateRange;
/// let r = DateRange::parse("2025-01-01", "2025-02-01").unwrap();
/// assert_eq!(r.days(), 31);
/// assert!(DateRange::parse("2025-01-01", "2025-01-01").is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "RawRange")]
pub struct DateRange {
    start: NaiveDate,
    end: NaiveDate,
}

#[derive(Deserialize)]
struct RawRange {
    start: NaiveDate,
    end: NaiveDate,
}

impl TryFrom<RawRange> for DateRange {
    type Error = ValidationError;

    fn try_from(raw: RawRange) -> Result<Self, Self::Error> {
        Self::new(raw.start, raw.end)
    }
}

impl DateRange {
    /// A range; `end` must be after `start`.
    /// A range; `end` must be after `start`, and its days between [`FIRST_DAY`] and
    /// [`LAST_DAY`].
    pub fn new(start: NaiveDate, end: NaiveDate) -> Result<Self, ValidationError> {
        check_day(start)?;
        if end.pred_opt().is_none_or(|last| check_day(last).is_err()) {
            return Err(ValidationError::DayOutOfRange { day: end });
        }
        if end <= start {
            return Err(ValidationError::EmptyRange { start, end });
        }
        Ok(Self { start, end })
    }

    /// Parses two `YYYY-MM-DD` dates (the end, exclusive, may be the day after [`LAST_DAY`]).
    pub fn parse(start: &str, end: &str) -> Result<Self, ValidationError> {
        Self::new(parse_day_text(start)?, parse_day_text(end)?)
    }

    /// A single day.
    pub fn day(day: NaiveDate) -> Self {
        Self {
            start: day,
            end: day.succ_opt().unwrap_or(day),
        }
    }

    /// First day in the range.
    pub fn start(&self) -> NaiveDate {
        self.start
    }

    /// First day after the range.
    pub fn end(&self) -> NaiveDate {
        self.end
    }

    /// Last day in the range (inclusive), as providers with an inclusive end want it.
    pub fn last_day(&self) -> NaiveDate {
        self.end.pred_opt().unwrap_or(self.start)
    }

    /// Number of days.
    pub fn days(&self) -> i64 {
        (self.end - self.start).num_days()
    }

    /// Whether `day` lies in the range.
    pub fn contains(&self, day: NaiveDate) -> bool {
        self.start <= day && day < self.end
    }

    /// The overlap of two ranges, if any.
    pub fn intersect(&self, other: &DateRange) -> Option<DateRange> {
        DateRange::new(self.start.max(other.start), self.end.min(other.end)).ok()
    }

    /// Splits the range into consecutive windows of at most `max_days` days (at least 1) that
    /// together cover it exactly once.
    pub fn windows(&self, max_days: u32) -> Vec<DateRange> {
        let step = chrono::Days::new(u64::from(max_days.max(1)));
        let mut out = Vec::new();
        let mut cursor = self.start;
        while cursor < self.end {
            let next = cursor
                .checked_add_days(step)
                .map_or(self.end, |d| d.min(self.end));
            out.push(DateRange {
                start: cursor,
                end: next,
            });
            cursor = next;
        }
        out
    }

    /// Splits the range at calendar-month boundaries: one window per month it touches, each
    /// the part of that month inside the range, together covering it exactly once. (Billing
    /// periods are months: a provider that reads whole periods reads each one once.)
    pub fn months(&self) -> Vec<DateRange> {
        let mut out = Vec::new();
        let mut cursor = self.start;
        while cursor < self.end {
            let first = cursor.with_day(1).unwrap_or(cursor);
            let next = first
                .checked_add_months(chrono::Months::new(1))
                .map_or(self.end, |d| d.min(self.end));
            out.push(DateRange {
                start: cursor,
                end: next,
            });
            cursor = next;
        }
        out
    }

    /// Every day of the range, in order.
    pub fn iter_days(&self) -> impl Iterator<Item = NaiveDate> + '_ {
        self.start.iter_days().take_while(move |d| *d < self.end)
    }
}

impl fmt::Display for DateRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}, {})", self.start, self.end)
    }
}

/// The time bucket of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE", try_from = "String")]
pub enum Granularity {
    /// One bucket per day, labelled `YYYY-MM-DD`.
    Daily,
    /// One bucket per calendar month, labelled `YYYY-MM`.
    Monthly,
    /// One bucket per calendar year, labelled `YYYY`.
    Yearly,
}

impl Granularity {
    /// The first day of the bucket holding `day`.
    pub fn bucket_start(self, day: NaiveDate) -> NaiveDate {
        match self {
            Granularity::Daily => day,
            Granularity::Monthly => day.with_day(1).unwrap_or(day),
            Granularity::Yearly => day.with_ordinal(1).unwrap_or(day),
        }
    }

    /// The label of the bucket holding `day` (`YYYY-MM-DD`, `YYYY-MM` or `YYYY`).
    pub fn label(self, day: NaiveDate) -> String {
        match self {
            Granularity::Daily => day.format("%Y-%m-%d").to_string(),
            Granularity::Monthly => day.format("%Y-%m").to_string(),
            Granularity::Yearly => day.format("%Y").to_string(),
        }
    }

    /// The canonical upper-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Granularity::Daily => "DAILY",
            Granularity::Monthly => "MONTHLY",
            Granularity::Yearly => "YEARLY",
        }
    }
}

impl FromStr for Granularity {
    type Err = ValidationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_uppercase().as_str() {
            "DAILY" => Ok(Granularity::Daily),
            "MONTHLY" => Ok(Granularity::Monthly),
            "YEARLY" => Ok(Granularity::Yearly),
            _ => Err(ValidationError::Granularity(s.to_owned())),
        }
    }
}

impl TryFrom<String> for Granularity {
    type Error = ValidationError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl fmt::Display for Granularity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn date(s: &str) -> NaiveDate {
        parse_date(s).unwrap()
    }

    #[test]
    fn rejects_empty_reversed_and_malformed() {
        assert!(DateRange::parse("2025-01-02", "2025-01-02").is_err());
        assert_eq!(
            DateRange::parse("2025-01-02", "2025-01-01")
                .unwrap_err()
                .to_string(),
            "end 2025-01-01 must be after start 2025-01-02 (ranges are start-inclusive, end-exclusive)"
        );
        for bad in ["2025-1-1", "2025-02-30", "20250101", "yesterday", ""] {
            assert!(DateRange::parse(bad, "2026-01-01").is_err(), "{bad:?}");
        }
    }

    #[test]
    fn last_day_is_the_inclusive_end() {
        let r = DateRange::parse("2025-01-01", "2025-02-01").unwrap();
        assert_eq!(r.last_day(), date("2025-01-31"));
        assert!(r.contains(date("2025-01-31")));
        assert!(!r.contains(date("2025-02-01")));
    }

    #[test]
    fn granularity_parses_case_insensitively_and_labels() {
        assert_eq!(
            "monthly".parse::<Granularity>().unwrap(),
            Granularity::Monthly
        );
        assert!("weekly".parse::<Granularity>().is_err());
        let d = date("2025-03-09");
        assert_eq!(Granularity::Daily.label(d), "2025-03-09");
        assert_eq!(Granularity::Monthly.label(d), "2025-03");
        assert_eq!(Granularity::Yearly.label(d), "2025");
        assert_eq!(Granularity::Yearly.bucket_start(d), date("2025-01-01"));
    }

    proptest! {
        #[test]
        fn months_cover_the_range_once_each_inside_one_month(start in 0i64..5000, len in 1i64..800) {
            let s = date("2015-01-01") + chrono::Duration::days(start);
            let r = DateRange::new(s, s + chrono::Duration::days(len)).unwrap();
            let months = r.months();
            prop_assert_eq!(months.first().unwrap().start(), r.start());
            prop_assert_eq!(months.last().unwrap().end(), r.end());
            for pair in months.windows(2) {
                prop_assert_eq!(pair[0].end(), pair[1].start());
                prop_assert_eq!(pair[1].start().day(), 1);
            }
            for m in &months {
                prop_assert_eq!((m.start().year(), m.start().month()), (m.last_day().year(), m.last_day().month()));
            }
        }
    }

    proptest! {
        #[test]
        fn windows_cover_the_range_exactly_once(start in 0i64..5000, len in 1i64..800, max in 1u32..60) {
            let s = date("2015-01-01") + chrono::Duration::days(start);
            let r = DateRange::new(s, s + chrono::Duration::days(len)).unwrap();
            let windows = r.windows(max);
            prop_assert_eq!(windows.first().unwrap().start(), r.start());
            prop_assert_eq!(windows.last().unwrap().end(), r.end());
            for pair in windows.windows(2) {
                prop_assert_eq!(pair[0].end(), pair[1].start());
            }
            for w in &windows {
                prop_assert!(w.days() >= 1 && w.days() <= i64::from(max));
            }
            prop_assert_eq!(windows.iter().map(DateRange::days).sum::<i64>(), len);
        }
    }
}
