//! `Billing::anomalies`: on-demand anomaly detection over a range, split by one dimension, each
//! anomaly explained by the child values that moved most (`cloudbill_aggregate::anomaly`).

use std::collections::BTreeMap;

use chrono::NaiveDate;
use cloudbill_aggregate::anomaly::{self, Anomaly, Settings};
use cloudbill_aggregate::{GroupKey, Query, Report};
use cloudbill_core::{Currency, DateRange, Decimal, Granularity};
use serde::Serialize;

use crate::{Billing, Principal, ServiceError};

/// What to look for.
#[derive(Debug, Clone)]
pub struct AnomalyRequest {
    /// The days judged.
    pub range: DateRange,
    /// The dimension split by (default `service`).
    pub group_by: GroupKey,
    /// The scope, as report filters.
    pub filters: BTreeMap<GroupKey, Vec<String>>,
    /// Thresholds and direction.
    pub settings: Settings,
    /// Whether to find each anomaly's contributors (three more reports).
    pub explain: bool,
    /// List every anomaly whatever its state; else only open ones (an anomaly a monitor of
    /// the same split and scope keeps has that monitor's state; the others are open).
    pub all_states: bool,
    /// Refuse a range that starts before the scope's data has `history_days` of history (the
    /// CLI and the API: the error says from when the range can start); else such days are
    /// skipped (the dashboards, the monitors).
    pub strict_history: bool,
}

impl AnomalyRequest {
    /// Spikes in `range` per service, default settings.
    pub fn new(range: DateRange) -> Self {
        Self {
            range,
            group_by: GroupKey::Service,
            filters: BTreeMap::new(),
            settings: Settings::default(),
            explain: true,
            all_states: false,
            strict_history: false,
        }
    }
}

pub use cloudbill_core::Contributor;

/// One anomaly, explained.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FoundAnomaly {
    /// A stable id: the same data gives the same id.
    pub id: String,
    /// `spike`, `drop` or `new`.
    pub kind: &'static str,
    /// The value of the split dimension (`{"service": "AmazonRDS"}`).
    pub group: BTreeMap<String, String>,
    /// First day.
    pub start: NaiveDate,
    /// Last day (inclusive).
    pub end: NaiveDate,
    /// Expected spend over the days.
    pub expected: Decimal,
    /// Actual spend over the days (exact).
    pub actual: Decimal,
    /// `actual − expected`.
    pub impact: Decimal,
    /// The largest robust z-score of its days.
    pub score: Decimal,
    /// The currency (currencies are judged apart).
    pub currency: Currency,
    /// The child values that moved most (at most 5, largest |impact| first).
    pub contributors: Vec<Contributor>,
    /// `open`, or the state a monitor of the same split and scope keeps it in
    /// (`acknowledged`, `ignored`, `closed`).
    pub state: &'static str,
}

/// The child dimensions an anomaly is explained by.
const CHILDREN: [GroupKey; 4] = [
    GroupKey::ServiceAccount,
    GroupKey::Region,
    GroupKey::UsageType,
    GroupKey::Service,
];

type Series = BTreeMap<NaiveDate, Decimal>;
/// Series per (group values, currency).
type SplitSeries = BTreeMap<(Vec<String>, Currency), Series>;

/// The error of a sum of amounts that leaves the decimal range.
fn out_of_range(what: impl Into<String>) -> ServiceError {
    ServiceError::Query(cloudbill_aggregate::QueryError::AmountOutOfRange { what: what.into() })
}

/// Daily series per (group values, currency) of a daily report.
fn series_of(report: &Report) -> Result<SplitSeries, ServiceError> {
    let keys: Vec<String> = report
        .group_by
        .iter()
        .map(|k| k.as_str().to_owned())
        .collect();
    let mut out = SplitSeries::new();
    for row in &report.results {
        let values: Vec<String> = keys
            .iter()
            .map(|k| row.group.get(k).cloned().unwrap_or_default())
            .collect();
        for b in &row.billing_data {
            if let Ok(day) = b.date.parse::<NaiveDate>() {
                let slot = out
                    .entry((values.clone(), b.currency))
                    .or_default()
                    .entry(day)
                    .or_default();
                *slot = slot
                    .checked_add(b.cost)
                    .ok_or_else(|| out_of_range(format!("the spend of {day}")))?;
            }
        }
    }
    Ok(out)
}

/// Daily values per (group values, currency) as (day index from `start`, value) pairs in day
/// order — a day without spend is absent and counts 0: the children of an explanation, read by
/// index rather than by date, without a slot for every day of every child.
struct Dense {
    start: NaiveDate,
    days: usize,
    map: SplitSparse,
}

/// (day index, value) pairs in day order.
type Sparse = Vec<(u32, Decimal)>;
/// Sparse series per (group values, currency).
type SplitSparse = BTreeMap<(Vec<String>, Currency), Sparse>;

/// The day index of an ISO `YYYY-MM-DD` label from `start` (`None`: not such a date).
fn day_index(label: &str, start: NaiveDate) -> Option<i64> {
    let b = label.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| {
        b[r].iter().try_fold(0u32, |acc, c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    let day = NaiveDate::from_ymd_opt(i32::try_from(num(0..4)?).ok()?, num(5..7)?, num(8..10)?)?;
    Some((day - start).num_days())
}

impl Dense {
    /// The daily report's buckets over `range`.
    fn of(report: &Report, range: DateRange) -> Self {
        let start = range.start();
        let days = usize::try_from(range.days()).unwrap_or(0);
        let keys: Vec<String> = report
            .group_by
            .iter()
            .map(|k| k.as_str().to_owned())
            .collect();
        let mut map = SplitSparse::new();
        for row in &report.results {
            // A row's series per currency (almost always one), filed once the row is read.
            let mut per_currency: Vec<(Currency, Sparse)> = Vec::new();
            for b in &row.billing_data {
                let Some(i) = day_index(&b.date, start)
                    .and_then(|i| u32::try_from(i).ok())
                    .filter(|i| (*i as usize) < days)
                else {
                    continue;
                };
                let at = match per_currency.iter().position(|(c, _)| *c == b.currency) {
                    Some(at) => at,
                    None => {
                        per_currency.push((b.currency, Vec::new()));
                        per_currency.len() - 1
                    }
                };
                let series = &mut per_currency[at].1;
                match series.last_mut() {
                    // Saturating: one day's two cells (never for real data) only rank an
                    // explanation; the anomaly's own sums are checked.
                    Some((last, v)) if *last == i => {
                        *v = v
                            .checked_add(b.cost)
                            .unwrap_or(if b.cost.is_sign_negative() {
                                Decimal::MIN
                            } else {
                                Decimal::MAX
                            });
                    }
                    _ => series.push((i, b.cost)),
                }
            }
            let values: Vec<String> = keys
                .iter()
                .map(|k| row.group.get(k).cloned().unwrap_or_default())
                .collect();
            for (currency, series) in per_currency {
                map.insert((values.clone(), currency), series);
            }
        }
        Self { start, days, map }
    }

    fn index(&self, day: NaiveDate) -> Option<usize> {
        usize::try_from((day - self.start).num_days())
            .ok()
            .filter(|i| *i < self.days)
    }
}

/// A child's expected (per anomaly day, the median of the `history` days before it, a day
/// without spend or before the data counting 0: `anomaly::expected_on`'s rule) and actual
/// spend over the anomaly's days.
fn child_part(
    values: &[(u32, Decimal)],
    dense: &Dense,
    a: &Anomaly,
    history: i64,
) -> Result<(Decimal, Decimal), ServiceError> {
    let h = usize::try_from(history).unwrap_or(0);
    let (Some(first), Some(last)) = (dense.index(a.start), dense.index(a.end)) else {
        return Ok((Decimal::ZERO, Decimal::ZERO));
    };
    let at = |i: usize| values.partition_point(|(d, _)| (*d as usize) < i);
    // The child's days from `first − h` through `last`; none: it contributes nothing.
    let around = &values[at(first.saturating_sub(h))..at(last + 1)];
    if around.iter().all(|(_, v)| v.is_zero()) {
        return Ok((Decimal::ZERO, Decimal::ZERO));
    }
    let too_large = || out_of_range(format!("an explanation of the anomaly of {}", a.start));
    let (mut expected, mut actual) = (Decimal::ZERO, Decimal::ZERO);
    let mut window: Vec<Decimal> = Vec::with_capacity(h);
    for i in first..=last {
        window.clear();
        let lo = i.saturating_sub(h);
        window.extend(
            around
                .iter()
                .filter(|(d, _)| (*d as usize) >= lo && (*d as usize) < i)
                .map(|(_, v)| *v),
        );
        window.resize(h, Decimal::ZERO);
        expected = expected
            .checked_add(anomaly::median(&mut window))
            .ok_or_else(too_large)?;
        actual = actual
            .checked_add(
                around
                    .iter()
                    .find(|(d, _)| *d as usize == i)
                    .map_or(Decimal::ZERO, |(_, v)| *v),
            )
            .ok_or_else(too_large)?;
    }
    Ok((expected, actual))
}

/// The top 5 children of `value`'s anomaly `a` (largest |impact| first) over every split.
fn contributors(
    children: &[(GroupKey, Dense)],
    value: &str,
    currency: Currency,
    a: &Anomaly,
    history: i64,
) -> Result<Vec<Contributor>, ServiceError> {
    let mut out: Vec<Contributor> = Vec::new();
    for (child, split) in children {
        // The parent's children are one run of the map (keys sort by parent first).
        let run = split
            .map
            .range((vec![value.to_owned()], currency)..)
            .take_while(|((values, _), _)| values.first().map(String::as_str) == Some(value));
        for ((values, c), series) in run {
            if *c != currency {
                continue;
            }
            let (expected, actual) = child_part(series, split, a, history)?;
            if expected == actual {
                continue;
            }
            out.push(Contributor {
                group: BTreeMap::from([(
                    child.as_str().to_owned(),
                    values.get(1).cloned().unwrap_or_default(),
                )]),
                expected,
                actual,
                impact: actual.checked_sub(expected).ok_or_else(|| {
                    out_of_range(format!("an explanation of the anomaly of {}", a.start))
                })?,
            });
        }
    }
    out.sort_by(|x, y| {
        y.impact
            .abs()
            .cmp(&x.impact.abs())
            .then_with(|| x.group.cmp(&y.group))
    });
    out.truncate(5);
    Ok(out)
}

fn id_of(key: &str, value: &str, currency: Currency, a: &Anomaly) -> String {
    let text = format!(
        "{key}\u{0}{value}\u{0}{currency}\u{0}{}\u{0}{}",
        a.kind.as_str(),
        a.start
    );
    let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("an_{hash:016x}")
}

/// The most history a request may need (days before its start).
pub const MAX_ANOMALY_HISTORY_DAYS: i64 = 90;

impl Billing {
    /// The anomalies of `request.range`, split by `request.group_by`, each with its top
    /// contributors; a member's of its projects only (the report's rules).
    pub async fn anomalies(
        &self,
        p: &Principal,
        request: &AnomalyRequest,
    ) -> Result<Vec<FoundAnomaly>, ServiceError> {
        let mut found = self.detect(p, request).await?;
        self.with_kept_states(request, &mut found).await?;
        if !request.all_states {
            found.retain(|f| f.state == "open");
        }
        Ok(found)
    }

    /// [`Billing::anomalies`] without states: what the data says.
    pub(crate) async fn detect(
        &self,
        p: &Principal,
        request: &AnomalyRequest,
    ) -> Result<Vec<FoundAnomaly>, ServiceError> {
        let s = &request.settings;
        if !(7..=MAX_ANOMALY_HISTORY_DAYS).contains(&s.history_days) {
            return Err(ServiceError::Invalid(format!(
                "history must be 7 to {MAX_ANOMALY_HISTORY_DAYS} days"
            )));
        }
        if s.z <= Decimal::ZERO || s.min_amount < Decimal::ZERO || s.min_percent < Decimal::ZERO {
            return Err(ServiceError::Invalid(
                "thresholds must be positive (z > 0, amount and percent >= 0)".into(),
            ));
        }
        let (from, to) = (request.range.start(), request.range.end());
        // The history before the first day cloudbill takes is empty anyway.
        let history_start =
            (from - chrono::Duration::days(s.history_days)).max(cloudbill_core::FIRST_DAY);
        let with_history = DateRange::new(history_start, to)?;
        let key = request.group_by.clone();
        let report_by = |keys: Vec<GroupKey>| {
            let mut q = Query::new(with_history, Granularity::Daily);
            q.group_by = keys;
            q.filters.clone_from(&request.filters);
            q
        };
        let parents = series_of(&self.report(p, &report_by(vec![key.clone()])).await?)?;
        // A day is judged against the `history_days` before it: the first days of the data
        // have none.
        let first_data = parents
            .values()
            .filter_map(|series| series.keys().next().copied())
            .min();
        let judged_from = first_data.map(|f| f + chrono::Duration::days(s.history_days));
        let from = match judged_from {
            Some(earliest) if earliest > from && request.strict_history => {
                return Err(ServiceError::Invalid(format!(
                    "anomaly detection needs {} days of history before each judged day: the data \
                     starts on {}, so the range can start on {earliest} at the earliest",
                    s.history_days,
                    first_data.unwrap_or(earliest)
                )));
            }
            Some(earliest) => from.max(earliest),
            None => from,
        };
        if from >= to {
            return Ok(Vec::new());
        }
        let mut found = Vec::new();
        for ((values, currency), series) in &parents {
            let value = values.first().cloned().unwrap_or_default();
            for a in anomaly::detect(series, from, to, s)? {
                found.push((value.clone(), *currency, a));
            }
        }
        if found.is_empty() {
            return Ok(Vec::new());
        }
        let children_keys: &[GroupKey] = if request.explain { &CHILDREN } else { &[] };
        // Contributors: the parent split by each child dimension, once per request, the
        // splits computed at once (each scan runs on the CPU pool).
        let splits: Vec<(GroupKey, Query)> = children_keys
            .iter()
            .filter(|c| **c != key)
            .map(|child| (child.clone(), report_by(vec![key.clone(), child.clone()])))
            .collect();
        let reports =
            futures::future::try_join_all(splits.iter().map(|(_, q)| self.report(p, q))).await?;
        let children: Vec<(GroupKey, Dense)> = splits
            .into_iter()
            .zip(reports)
            .map(|((child, _), report)| (child, Dense::of(&report, with_history)))
            .collect();
        let mut out = Vec::with_capacity(found.len());
        for (value, currency, a) in found {
            let contributors = contributors(&children, &value, currency, &a, s.history_days)?;
            out.push(FoundAnomaly {
                id: id_of(key.as_str(), &value, currency, &a),
                kind: a.kind.as_str(),
                group: BTreeMap::from([(key.as_str().to_owned(), value)]),
                start: a.start,
                end: a.end,
                expected: a.expected,
                actual: a.actual,
                impact: a.impact,
                score: a.score,
                currency,
                contributors,
                state: "open",
            });
        }
        out.sort_by(|x, y| {
            y.impact
                .abs()
                .cmp(&x.impact.abs())
                .then_with(|| x.start.cmp(&y.start))
        });
        Ok(out)
    }
}
