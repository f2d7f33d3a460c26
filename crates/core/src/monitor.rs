//! Anomaly monitors and the anomalies they keep: scope × one dimension, thresholds, channels;
//! each anomaly with its explanation and its life cycle.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::{BudgetScope, ChannelId, Currency, DomainId, MonitorId, Name};

/// Watches a scope's spend split by one dimension for anomalies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Monitor {
    /// Identifier.
    pub id: MonitorId,
    /// Owning domain.
    pub domain: DomainId,
    /// Unique in the domain (`default` is the domain × service monitor billing starts with).
    pub name: Name,
    /// Whose spend: the domain, a project, a project group, an account.
    pub scope: BudgetScope,
    /// Further report filters (`KEY=VALUE`, `tag:KEY` included).
    pub filters: Vec<(String, String)>,
    /// The report key spend is split by (`service` by default).
    pub dimension: String,
    /// Robust z-score at or above which a day is anomalous.
    pub z: Decimal,
    /// Least excess over expected (in the records' currency).
    pub min_amount: Decimal,
    /// Least excess over expected, in percent of expected.
    pub min_percent: Decimal,
    /// Drops are anomalies too (spikes only by default).
    pub both_directions: bool,
    /// Where `anomaly.detected` goes (none: events are kept, nothing is sent).
    pub channels: Vec<ChannelId>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// Where an anomaly stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AnomalyState {
    /// Found, nobody has looked.
    Open,
    /// Someone has looked and knows.
    Acknowledged,
    /// Someone has looked and does not care.
    Ignored,
    /// Over: 7 normal days followed it (`recovered`), or a restatement took it away
    /// (`restated`).
    Closed,
}

impl AnomalyState {
    /// `open`, `acknowledged`, `ignored` or `closed`.
    pub fn as_str(self) -> &'static str {
        match self {
            AnomalyState::Open => "open",
            AnomalyState::Acknowledged => "acknowledged",
            AnomalyState::Ignored => "ignored",
            AnomalyState::Closed => "closed",
        }
    }

    /// Parses [`AnomalyState::as_str`]'s text.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "open" => Some(AnomalyState::Open),
            "acknowledged" => Some(AnomalyState::Acknowledged),
            "ignored" => Some(AnomalyState::Ignored),
            "closed" => Some(AnomalyState::Closed),
            _ => None,
        }
    }
}

/// A child value's part in an anomaly (its explanation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contributor {
    // Fields in name order: the order its JSON (in signed event payloads) has always had.
    /// Its actual spend over the anomaly's days.
    pub actual: Decimal,
    /// Its expected spend over them.
    pub expected: Decimal,
    /// The child's dimension and value (`{"region": "us-east-1"}`).
    pub group: BTreeMap<String, String>,
    /// `actual − expected`.
    pub impact: Decimal,
}

impl Contributor {
    /// `dimension=value,…`, for one line.
    pub fn label(&self, separator: &str) -> String {
        self.group
            .iter()
            .map(|(k, v)| format!("{k}{separator}{v}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// An anomaly a monitor keeps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredAnomaly {
    /// Stable id (the same data gives the same id: dimension, value, currency, kind, start).
    pub id: String,
    /// Owning domain.
    pub domain: DomainId,
    /// The monitor that found it.
    pub monitor: MonitorId,
    /// `spike`, `drop` or `new`.
    pub kind: String,
    /// The dimension's value (`{"service": "AmazonRDS"}`).
    pub group: BTreeMap<String, String>,
    /// The currency judged.
    pub currency: Currency,
    /// First day.
    pub start: NaiveDate,
    /// Last day (inclusive).
    pub end: NaiveDate,
    /// Expected spend over its days.
    pub expected: Decimal,
    /// Actual spend over its days.
    pub actual: Decimal,
    /// `actual − expected`.
    pub impact: Decimal,
    /// The largest robust z-score of its days.
    pub score: Decimal,
    /// The child values that moved most, as shown.
    #[serde(default)]
    pub contributors: Vec<Contributor>,
    /// Where it stands.
    pub state: AnomalyState,
    /// Why it closed: `recovered` or `restated`.
    pub closed_reason: Option<String>,
    /// When it was first found.
    pub detected_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// The |impact| last notified (`None`: never notified).
    pub notified_impact: Option<Decimal>,
    /// Bumped by every write (compare-and-set).
    pub version: i64,
}
