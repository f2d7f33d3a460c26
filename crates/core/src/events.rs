//! What events say: the JSON body a webhook receives, typed. An [`crate::Event`] keeps the
//! exact bytes it was sent with (`payload`, signed); these are what they hold, for the
//! summaries, the CLI and the dashboard. Fields are declared in name order, which is the order
//! the JSON has always had.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::{BudgetId, Contributor, EventId};

/// A budget threshold crossed (`budget.threshold_crossed`) or cleared
/// (`budget.threshold_cleared`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetEvent {
    /// Spend over the period so far (the budget's metric).
    pub actual: Decimal,
    /// The budget's amount.
    pub amount: Decimal,
    /// The budget's name.
    pub budget: String,
    /// The budget's id.
    pub budget_id: BudgetId,
    /// The budget's currency.
    pub currency: String,
    /// The domain's name.
    pub domain: String,
    /// The period's forecast, for a forecast threshold.
    pub forecast: Option<Decimal>,
    /// The event's id.
    pub id: EventId,
    /// The threshold as an amount.
    pub limit: Decimal,
    /// The budget's page.
    pub link: String,
    /// `billed` or `effective`.
    pub metric: String,
    /// When.
    pub occurred_at: DateTime<Utc>,
    /// The budget period.
    pub period: PeriodSaid,
    /// The threshold.
    pub threshold: ThresholdSaid,
    /// `budget.threshold_crossed` or `budget.threshold_cleared`.
    #[serde(rename = "type")]
    pub kind: String,
}

/// A budget period as its status gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeriodSaid {
    /// The day after its last.
    pub end: NaiveDate,
    /// Its first day.
    pub start: NaiveDate,
}

/// A threshold as an event says it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThresholdSaid {
    /// `actual` or `forecast`.
    pub kind: String,
    /// `80%` or an amount.
    pub value: String,
}

/// An anomaly a monitor found or saw grow (`anomaly.detected`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnomalyEvent {
    /// The anomaly.
    pub anomaly: AnomalySaid,
    /// The split dimension.
    pub dimension: String,
    /// The domain's name.
    pub domain: String,
    /// The event's id.
    pub id: EventId,
    /// The explorer over its days.
    pub link: String,
    /// The monitor's name.
    pub monitor: String,
    /// When.
    pub occurred_at: DateTime<Utc>,
    /// Whether it was told before and grew since.
    pub severity_grew: bool,
    /// `anomaly.detected`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The dimension's value.
    pub value: String,
}

/// An anomaly as an event says it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnomalySaid {
    /// Spend over its days.
    pub actual: Decimal,
    /// The child values that moved most.
    #[serde(default)]
    pub contributors: Vec<Contributor>,
    /// Its currency.
    pub currency: String,
    /// Last day.
    pub end: NaiveDate,
    /// Expected spend over its days.
    pub expected: Decimal,
    /// The split dimension's value.
    pub group: BTreeMap<String, String>,
    /// Its id.
    pub id: String,
    /// `actual − expected`.
    pub impact: Decimal,
    /// `spike`, `drop` or `new`.
    pub kind: String,
    /// The largest robust z-score of its days.
    pub score: Decimal,
    /// First day.
    pub start: NaiveDate,
}

/// A channel's test message (`channel.test`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelTestEvent {
    /// The channel's name.
    pub channel: String,
    /// The domain's name.
    pub domain: String,
    /// The event's id.
    pub id: EventId,
    /// When.
    pub occurred_at: DateTime<Utc>,
    /// `channel.test`.
    #[serde(rename = "type")]
    pub kind: String,
}

/// What an event says, by its kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum EventPayload {
    /// A budget threshold crossed or cleared.
    Budget(Box<BudgetEvent>),
    /// An anomaly detected.
    Anomaly(Box<AnomalyEvent>),
    /// A channel test.
    ChannelTest(ChannelTestEvent),
}

impl EventPayload {
    /// The JSON body (what is signed and sent).
    pub fn to_json(&self) -> String {
        // Plain structs of strings, numbers and maps with string keys: serializing cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The payload of an event of `kind` from its JSON body.
    ///
    /// # Errors
    /// A body that is not this kind's shape, or a kind no event has.
    pub fn parse(kind: &str, json: &str) -> Result<Self, String> {
        let err = |e: serde_json::Error| format!("a {kind} event's payload: {e}");
        match kind {
            "budget.threshold_crossed" | "budget.threshold_cleared" => serde_json::from_str(json)
                .map(|b| Self::Budget(Box::new(b)))
                .map_err(err),
            "anomaly.detected" => serde_json::from_str(json)
                .map(|a| Self::Anomaly(Box::new(a)))
                .map_err(err),
            "channel.test" => serde_json::from_str(json)
                .map(Self::ChannelTest)
                .map_err(err),
            other => Err(format!("no event is of kind {other:?}")),
        }
    }
}

impl crate::Event {
    /// The link the event carries, read on its own (any kind's payload that has one, whole
    /// or not).
    pub fn link(&self) -> Option<String> {
        #[derive(Deserialize)]
        struct Linked {
            link: Option<String>,
        }
        serde_json::from_str::<Linked>(&self.payload)
            .ok()
            .and_then(|l| l.link)
    }

    /// What the event says ([`EventPayload::parse`] of its kind and payload).
    ///
    /// # Errors
    /// A payload that is not its kind's shape.
    pub fn said(&self) -> Result<EventPayload, String> {
        EventPayload::parse(&self.kind, &self.payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A budget event as earlier versions stored and signed it (keys in name order, amounts as
    /// strings) reads back typed and writes back byte for byte.
    #[test]
    fn stored_payloads_read_back_and_write_the_same_bytes() {
        let stored = r#"{"actual":"812.5000000001","amount":"1000","budget":"web","budget_id":"01a2b3c4-0000-7000-8000-000000000001","currency":"USD","domain":"default","forecast":null,"id":"01a2b3c4-0000-7000-8000-000000000002","limit":"800.00","link":"http://127.0.0.1:8080/projects/p","metric":"billed","occurred_at":"2025-03-04T05:06:07Z","period":{"end":"2025-04-01","start":"2025-03-01"},"threshold":{"kind":"actual","value":"80%"},"type":"budget.threshold_crossed"}"#;
        let said = EventPayload::parse("budget.threshold_crossed", stored).unwrap();
        let EventPayload::Budget(b) = &said else {
            panic!("a budget event: {said:?}");
        };
        assert_eq!(b.actual, "812.5000000001".parse::<Decimal>().unwrap());
        assert_eq!(b.threshold.value, "80%");
        assert_eq!(b.link, "http://127.0.0.1:8080/projects/p");
        assert_eq!(said.to_json(), stored);
        assert!(EventPayload::parse("anomaly.detected", stored).is_err());
        assert!(EventPayload::parse("budget.renamed", stored).is_err());
    }

    #[test]
    fn anomaly_payloads_keep_their_contributors() {
        let stored = r#"{"anomaly":{"actual":"12","contributors":[{"actual":"9","expected":"1","group":{"region":"us-east-1"},"impact":"8"}],"currency":"USD","end":"2025-03-04","expected":"2","group":{"service":"AmazonEC2"},"id":"a1","impact":"10","kind":"spike","score":"7.5","start":"2025-03-04"},"dimension":"service","domain":"default","id":"01a2b3c4-0000-7000-8000-000000000003","link":"/explore","monitor":"daily","occurred_at":"2025-03-05T00:00:00Z","severity_grew":false,"type":"anomaly.detected","value":"AmazonEC2"}"#;
        let said = EventPayload::parse("anomaly.detected", stored).unwrap();
        let EventPayload::Anomaly(a) = &said else {
            panic!("an anomaly event: {said:?}");
        };
        assert_eq!(a.anomaly.contributors[0].label("="), "region=us-east-1");
        assert_eq!(said.to_json(), stored);
    }
}
