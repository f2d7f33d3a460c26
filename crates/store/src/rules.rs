//! The rules every adapter applies the same way: a record's checks before it is stored, the
//! days a window replace covers (`Scope`), daily totals and the days a replace changed.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use cloudbill_core::{
    AccountId, ChangedDay, CostRecord, Currency, DateRange, Decimal, DomainId, NaiveDate,
};

use crate::StoreError;

/// Milliseconds since the epoch (how the outbox orders due deliveries on every database).
#[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
pub(crate) fn epoch_ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// Per (day, currency) totals of `records`.
pub fn daily_totals<'a>(
    records: impl IntoIterator<Item = &'a CostRecord>,
) -> Result<BTreeMap<(NaiveDate, Currency), Decimal>, StoreError> {
    let mut totals: BTreeMap<(NaiveDate, Currency), Decimal> = BTreeMap::new();
    for r in records {
        let slot = totals.entry((r.date, r.currency())).or_default();
        *slot = slot.checked_add(r.cost.amount()).ok_or_else(|| {
            StoreError::RecordRejected(format!("daily total overflows on {}", r.date))
        })?;
    }
    Ok(totals)
}

/// The days whose totals differ between `before` and `after` (a missing entry counts as 0).
pub fn changed_days(
    before: &BTreeMap<(NaiveDate, Currency), Decimal>,
    after: &BTreeMap<(NaiveDate, Currency), Decimal>,
) -> Vec<ChangedDay> {
    let keys: BTreeSet<_> = before.keys().chain(after.keys()).collect();
    keys.into_iter()
        .filter_map(|key| {
            let old_total = before.get(key).copied().unwrap_or_default();
            let new_total = after.get(key).copied().unwrap_or_default();
            (old_total != new_total).then_some(ChangedDay {
                date: key.0,
                currency: key.1,
                old_total,
                new_total,
            })
        })
        .collect()
}

/// Checks that a record may be written into (`domain`, `account`, `window`); no window means
/// any day.
pub(crate) fn check_record(
    domain: DomainId,
    account: AccountId,
    window: Option<DateRange>,
    record: &CostRecord,
) -> Result<(), StoreError> {
    if record.domain != domain || record.service_account != account {
        return Err(StoreError::RecordRejected(format!(
            "record of account {} written through account {account}",
            record.service_account
        )));
    }
    if let Some(window) = window.filter(|w| !w.contains(record.date)) {
        return Err(StoreError::RecordRejected(format!(
            "record dated {} lies outside the window {window}",
            record.date
        )));
    }
    Ok(())
}

/// The error for an encoded partition a streamed replace will not store.
#[allow(clippy::needless_pass_by_value)] // Used as `map_err(refused)`.
pub(crate) fn refused(e: cloudbill_core::ValidationError) -> StoreError {
    StoreError::RecordRejected(format!("encoded partition refused: {e}"))
}

/// What [`check_partition`] learned of a partition.
#[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
pub(crate) struct CheckedPartition {
    /// Its rows.
    pub(crate) rows: usize,
    /// Its per-(day, currency) totals.
    pub(crate) totals: Vec<(NaiveDate, Currency, Decimal)>,
}

/// Checks an encoded partition handed to a streamed replace: structure, every column, days
/// inside `window`.
pub(crate) fn check_partition(
    window: Option<DateRange>,
    blob: &cloudbill_columnar::EncodedPartition,
) -> Result<CheckedPartition, StoreError> {
    let p = cloudbill_columnar::Partition::decode(blob.as_bytes()).map_err(refused)?;
    p.validate().map_err(refused)?;
    let totals = p.daily_totals().map_err(refused)?;
    if let Some(w) = window {
        if let Some((day, _, _)) = totals.iter().find(|(day, _, _)| !w.contains(*day)) {
            return Err(StoreError::RecordRejected(format!(
                "record dated {day} lies outside the window {w}"
            )));
        }
    }
    if (p.month, p.rows) != (blob.month(), blob.rows()) {
        return Err(StoreError::RecordRejected(
            "a partition's month or row count differs from its bytes".into(),
        ));
    }
    Ok(CheckedPartition {
        rows: p.rows,
        totals,
    })
}

/// The days a replace rewrites: a declared window (days in it without records become
/// empty), or exactly the days the records hold (a file import without `--window`: a file
/// with rows on 2025-03-15 and 2025-09-15 replaces those two days, not the six months between).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Scope {
    /// Every day of the range.
    Window(DateRange),
    /// These days only.
    Days(BTreeSet<NaiveDate>),
}

impl Scope {
    /// Whether `day` is replaced.
    pub(crate) fn contains(&self, day: NaiveDate) -> bool {
        match self {
            Scope::Window(w) => w.contains(day),
            Scope::Days(days) => days.contains(&day),
        }
    }

    /// The first days of the months holding a replaced day, ascending.
    #[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
    pub(crate) fn months(&self) -> Vec<NaiveDate> {
        use chrono::Datelike;
        match self {
            Scope::Window(w) => months(*w),
            Scope::Days(days) => {
                let set: BTreeSet<NaiveDate> =
                    days.iter().map(|d| d.with_day(1).unwrap_or(*d)).collect();
                set.into_iter().collect()
            }
        }
    }

    /// Whether every day of `month` (its range) is replaced.
    #[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
    pub(crate) fn covers(&self, month: DateRange) -> bool {
        match self {
            Scope::Window(w) => w.start() <= month.start() && month.end() <= w.end(),
            Scope::Days(days) => usize::try_from(month.days())
                .is_ok_and(|n| days.range(month.start()..month.end()).count() == n),
        }
    }

    /// First day to the day after the last (what a job shows as its window).
    pub(crate) fn span(&self) -> Option<DateRange> {
        match self {
            Scope::Window(w) => Some(*w),
            Scope::Days(days) => {
                let (first, last) = (days.first()?, days.last()?);
                DateRange::new(*first, last.succ_opt()?).ok()
            }
        }
    }

    /// How many days are replaced.
    pub(crate) fn day_count(&self) -> u64 {
        match self {
            Scope::Window(w) => u64::try_from(w.days()).unwrap_or(0),
            Scope::Days(days) => days.len() as u64,
        }
    }
}

/// The error for a record outside the days a replace may write.
pub(crate) fn outside(day: NaiveDate, scope: &Scope) -> StoreError {
    match scope.span() {
        Some(w) => {
            StoreError::RecordRejected(format!("record dated {day} lies outside the window {w}"))
        }
        None => StoreError::RecordRejected(format!("record dated {day} lies outside the replace")),
    }
}

/// The days the records of a streamed replace hold, for a replace without a window.
#[derive(Debug, Clone, Default)]
pub(crate) struct SeenDays(BTreeSet<NaiveDate>);

impl SeenDays {
    pub(crate) fn add(&mut self, date: NaiveDate) {
        self.0.insert(date);
    }

    /// The scope: the window given, else the days seen (`None`: no window and no record).
    pub(crate) fn scope(self, given: Option<DateRange>) -> Option<Scope> {
        match given {
            Some(w) => Some(Scope::Window(w)),
            None if self.0.is_empty() => None,
            None => Some(Scope::Days(self.0)),
        }
    }
}

/// The first days of the months overlapping `range`.
pub(crate) fn months(range: DateRange) -> Vec<NaiveDate> {
    use chrono::Datelike;
    let mut out = Vec::new();
    let mut m = range.start().with_day(1).unwrap_or(range.start());
    while m < range.end() {
        out.push(m);
        m = match m.checked_add_months(chrono::Months::new(1)) {
            Some(next) => next,
            None => break,
        };
    }
    out
}

/// The days of the month starting at `month`.
#[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
pub(crate) fn month_range(month: NaiveDate) -> DateRange {
    let next = month
        .checked_add_months(chrono::Months::new(1))
        .unwrap_or(month);
    DateRange::new(month, next).unwrap_or_else(|_| DateRange::day(month))
}

/// Whether `rule` may follow `latest`, the rule's latest stored version (`None`: no version):
/// version 1 creates it, version n + 1 follows version n; any other is a `Conflict` (or
/// `NotFound` for a change of no rule), as `AllocationStore::add_allocation_version` says.
pub(crate) fn check_allocation_version(
    rule: &cloudbill_core::AllocationRule,
    latest: Option<&cloudbill_core::AllocationRule>,
) -> Result<(), StoreError> {
    match (rule.version, latest) {
        (1, Some(_)) => Err(StoreError::Conflict(format!(
            "allocation rule {} exists already",
            rule.id
        ))),
        (1, None) => Ok(()),
        (_, None) => Err(StoreError::NotFound {
            what: "allocation rule",
            key: rule.id.to_string(),
        }),
        (v, Some(last)) if last.version + 1 != v => Err(StoreError::Conflict(format!(
            "allocation rule {:?} was changed meanwhile (it is at version {}): nothing was written",
            last.name.as_str(),
            last.version
        ))),
        _ => Ok(()),
    }
}

/// The conflict of a rule taking the name of another that is not deleted.
pub(crate) fn allocation_name_taken(name: &cloudbill_core::Name) -> StoreError {
    StoreError::Conflict(format!(
        "an allocation rule named {:?} exists already",
        name.as_str()
    ))
}
