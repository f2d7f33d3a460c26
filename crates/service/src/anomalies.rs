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
        }
    }
}

/// A child value's part in an anomaly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Contributor {
    /// The child's dimension and value (`{"region": "us-east-1"}`).
    pub group: BTreeMap<String, String>,
    /// Its expected spend over the anomaly's days.
    pub expected: Decimal,
    /// Its actual spend over them.
    pub actual: Decimal,
    /// `actual − expected`.
    pub impact: Decimal,
}

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

/// Daily series per (group values, currency) of a daily report.
fn series_of(report: &Report) -> SplitSeries {
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
                *out.entry((values.clone(), b.currency))
                    .or_default()
                    .entry(day)
                    .or_default() += b.cost;
            }
        }
    }
    out
}

/// A child's expected (the median of its previous days, per anomaly day) and actual spend.
fn child_part(series: &Series, a: &Anomaly, history: i64) -> (Decimal, Decimal) {
    let value = |d: NaiveDate| series.get(&d).copied().unwrap_or_default();
    let (mut expected, mut actual) = (Decimal::ZERO, Decimal::ZERO);
    let mut d = a.start;
    while d <= a.end {
        expected += anomaly::expected_on(series, d, history);
        actual += value(d);
        d = d.succ_opt().unwrap_or(a.end + chrono::Duration::days(1));
    }
    (expected, actual)
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
        let with_history = DateRange::new(from - chrono::Duration::days(s.history_days), to)?;
        let key = request.group_by.clone();
        let report_by = |keys: Vec<GroupKey>| {
            let mut q = Query::new(with_history, Granularity::Daily);
            q.group_by = keys;
            q.filters.clone_from(&request.filters);
            q
        };
        let parents = series_of(&self.report(p, &report_by(vec![key.clone()])).await?);
        let mut found = Vec::new();
        for ((values, currency), series) in &parents {
            let value = values.first().cloned().unwrap_or_default();
            for a in anomaly::detect(series, from, to, s) {
                found.push((value.clone(), *currency, a));
            }
        }
        if found.is_empty() {
            return Ok(Vec::new());
        }
        let children_keys: &[GroupKey] = if request.explain { &CHILDREN } else { &[] };
        // Contributors: the parent split by each child dimension, once per request.
        let mut children: Vec<(GroupKey, SplitSeries)> = Vec::new();
        for child in children_keys.iter().filter(|c| **c != key) {
            let report = self
                .report(p, &report_by(vec![key.clone(), child.clone()]))
                .await?;
            children.push((child.clone(), series_of(&report)));
        }
        let mut out = Vec::with_capacity(found.len());
        for (value, currency, a) in found {
            let mut contributors: Vec<Contributor> = Vec::new();
            for (child, split) in &children {
                // The parent's children are one run of the map (keys sort by parent first).
                let run = split
                    .range((vec![value.clone()], currency)..)
                    .take_while(|((values, _), _)| values.first() == Some(&value));
                for ((values, c), series) in run {
                    if *c != currency {
                        continue;
                    }
                    let (expected, actual) = child_part(series, &a, s.history_days);
                    if expected == actual {
                        continue;
                    }
                    contributors.push(Contributor {
                        group: BTreeMap::from([(
                            child.as_str().to_owned(),
                            values.get(1).cloned().unwrap_or_default(),
                        )]),
                        expected,
                        actual,
                        impact: actual - expected,
                    });
                }
            }
            contributors.sort_by(|x, y| {
                y.impact
                    .abs()
                    .cmp(&x.impact.abs())
                    .then_with(|| x.group.cmp(&y.group))
            });
            contributors.truncate(5);
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
