//! The Hyperbilling JSON shapes, private to this crate.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// Columns we group by, in the order the API documents.
pub(crate) const GROUP_BY: [&str; 5] = [
    "USAGE_DATE",
    "REGION",
    "SERVICE_CODE",
    "USAGE_TYPE",
    "INSTANCE_TYPE",
];
/// Values we ask for.
pub(crate) const RESULT: [&str; 2] = ["USAGE_COST", "USAGE_QUANTITY"];

/// `POST /v1/search/billing` body.
#[derive(Debug, Serialize)]
pub(crate) struct BillingRequest<'a> {
    #[serde(rename = "Filter")]
    pub(crate) filter: Filter<'a>,
    #[serde(rename = "GroupBy")]
    pub(crate) group_by: [&'static str; 5],
    #[serde(rename = "Result")]
    pub(crate) result: [&'static str; 2],
}

/// The request filter.
#[derive(Debug, Serialize)]
pub(crate) struct Filter<'a> {
    #[serde(rename = "LinkedAccount")]
    pub(crate) linked_account: [&'a str; 1],
    #[serde(rename = "Granularity")]
    pub(crate) granularity: &'static str,
    #[serde(rename = "TimePeriod")]
    pub(crate) time_period: TimePeriod,
    #[serde(rename = "NextDataToken", skip_serializing_if = "Option::is_none")]
    pub(crate) next_data_token: Option<&'a str>,
}

/// Start and **inclusive** end, `YYYY-MM-DD`.
#[derive(Debug, Serialize)]
pub(crate) struct TimePeriod {
    #[serde(rename = "Start")]
    pub(crate) start: String,
    #[serde(rename = "End")]
    pub(crate) end: String,
}

/// `GET /v1/search/linkedaccount` answer.
#[derive(Debug, Deserialize)]
pub(crate) struct LinkedAccounts {
    #[serde(rename = "Results", default)]
    pub(crate) results: Vec<serde_json::Value>,
}

/// One page of `POST /v1/search/billing`.
#[derive(Debug, Deserialize)]
pub(crate) struct BillingPage<'a> {
    #[serde(rename = "Results", borrow, default)]
    pub(crate) results: Vec<WireRow<'a>>,
    #[serde(rename = "NextDataToken", borrow, default)]
    pub(crate) next_data_token: Option<Cow<'a, str>>,
}

/// One result row.
#[derive(Debug, Deserialize)]
pub(crate) struct WireRow<'a> {
    #[serde(rename = "GroupBy", borrow)]
    pub(crate) group_by: GroupBy<'a>,
    #[serde(rename = "Value", borrow)]
    pub(crate) value: Values<'a>,
}

/// The row's dimensions.
#[derive(Debug, Deserialize)]
pub(crate) struct GroupBy<'a> {
    #[serde(rename = "USAGE_DATE", borrow)]
    pub(crate) usage_date: Cow<'a, str>,
    #[serde(rename = "REGION", borrow, default)]
    pub(crate) region: Option<Cow<'a, str>>,
    #[serde(rename = "SERVICE_CODE", borrow, default)]
    pub(crate) service_code: Option<Cow<'a, str>>,
    #[serde(rename = "USAGE_TYPE", borrow, default)]
    pub(crate) usage_type: Option<Cow<'a, str>>,
    #[serde(rename = "INSTANCE_TYPE", borrow, default)]
    pub(crate) instance_type: Option<Cow<'a, str>>,
}

/// The row's numbers, kept as raw JSON text so no digit goes through `f64`.
#[derive(Debug, Deserialize)]
pub(crate) struct Values<'a> {
    #[serde(rename = "USAGE_COST", borrow)]
    pub(crate) usage_cost: Option<&'a RawValue>,
    #[serde(rename = "USAGE_QUANTITY", borrow, default)]
    pub(crate) usage_quantity: Option<&'a RawValue>,
}
