//! The date ranges the product offers by name, as of the service's clock
//! ([`Billing::today`](crate::Billing::today)): the default report range, the explorer's
//! presets, the current and last month, and the range a period is compared with. The API, the
//! dashboard and the explorer all ask here, so "last three months" means one thing.

use chrono::{Datelike, Months, NaiveDate};
use cloudbill_core::DateRange;

/// A named range: its key (as in a URL) and its label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preset {
    /// The key (`last_3_months`).
    pub key: &'static str,
    /// The label people read (`Last 3 months`).
    pub label: &'static str,
}

/// The presets, in the order they are offered.
pub const PRESETS: [Preset; 6] = [
    Preset {
        key: "this_month",
        label: "This month",
    },
    Preset {
        key: "last_month",
        label: "Last month",
    },
    Preset {
        key: "last_3_months",
        label: "Last 3 months",
    },
    Preset {
        key: "last_6_months",
        label: "Last 6 months",
    },
    Preset {
        key: "last_12_months",
        label: "Last 12 months",
    },
    Preset {
        key: "year_to_date",
        label: "Year to date",
    },
];

/// The preset a report shows when no range is given.
pub const DEFAULT_PRESET: &str = "last_3_months";

/// The range of preset `key` as of `today` (`[start, end)`, through today), or `None` for a
/// key that is no preset.
pub fn preset(key: &str, today: NaiveDate) -> Option<DateRange> {
    let month = first_of_month(today);
    let tomorrow = today.succ_opt().unwrap_or(today);
    let back = |m: u32| month.checked_sub_months(Months::new(m)).unwrap_or(month);
    let (start, end) = match key {
        "this_month" => (month, tomorrow),
        "last_month" => (back(1), month),
        "last_3_months" => (back(2), tomorrow),
        "last_6_months" => (back(5), tomorrow),
        "last_12_months" => (back(11), tomorrow),
        "year_to_date" => (
            NaiveDate::from_ymd_opt(today.year(), 1, 1).unwrap_or(month),
            tomorrow,
        ),
        _ => return None,
    };
    DateRange::new(start, end).ok()
}

/// The range a report shows when none is given: [`DEFAULT_PRESET`] as of `today`.
pub fn default_range(today: NaiveDate) -> DateRange {
    preset(DEFAULT_PRESET, today).unwrap_or_else(|| DateRange::day(today))
}

/// This month through `today`, and the whole previous month (`None` before 1970's).
pub fn month_bounds(today: NaiveDate) -> (DateRange, Option<DateRange>) {
    let this = first_of_month(today);
    let tomorrow = today.succ_opt().unwrap_or(today);
    let current = DateRange::new(this, tomorrow).unwrap_or_else(|_| DateRange::day(today));
    let last = this
        .checked_sub_months(Months::new(1))
        .and_then(|s| DateRange::new(s, this).ok());
    (current, last)
}

/// The range of the same length that ends where `range` starts: what a period is compared
/// with.
pub fn previous_range(range: DateRange) -> DateRange {
    let days = range.end().signed_duration_since(range.start());
    DateRange::new(range.start() - days, range.start()).unwrap_or(range)
}

fn first_of_month(day: NaiveDate) -> NaiveDate {
    day.with_day(1).unwrap_or(day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn presets_end_today_and_start_on_month_boundaries() {
        let today = d("2025-03-15");
        let r = |k| {
            let r = preset(k, today).unwrap();
            (r.start().to_string(), r.end().to_string())
        };
        assert_eq!(r("this_month"), ("2025-03-01".into(), "2025-03-16".into()));
        assert_eq!(r("last_month"), ("2025-02-01".into(), "2025-03-01".into()));
        assert_eq!(
            r("last_3_months"),
            ("2025-01-01".into(), "2025-03-16".into())
        );
        assert_eq!(
            r("last_12_months"),
            ("2024-04-01".into(), "2025-03-16".into())
        );
        assert_eq!(
            r("year_to_date"),
            ("2025-01-01".into(), "2025-03-16".into())
        );
        assert_eq!(preset("next_week", today), None);
        assert_eq!(
            default_range(today),
            preset("last_3_months", today).unwrap()
        );
        for p in PRESETS {
            assert!(preset(p.key, today).is_some(), "{}", p.key);
        }
        // On the first of a month, last month is whole and this month is one day.
        let first = d("2025-01-01");
        assert_eq!(preset("this_month", first).unwrap().days(), 1);
        assert_eq!(
            preset("last_month", first).unwrap().start(),
            d("2024-12-01")
        );
    }

    #[test]
    fn the_previous_range_has_the_same_length() {
        let march = DateRange::new(d("2025-03-01"), d("2025-04-01")).unwrap();
        let before = previous_range(march);
        assert_eq!(
            (before.start(), before.end()),
            (d("2025-01-29"), d("2025-03-01"))
        );
        let (current, last) = month_bounds(d("2025-03-15"));
        assert_eq!(current.start(), d("2025-03-01"));
        assert_eq!(last.unwrap().start(), d("2025-02-01"));
    }
}
