//! The report query as callers spell it (JSON body, query string, CLI flags), parsed once into
//! the engine's [`Query`] — the one place that turns names into keys for the CLI and the API.

use std::collections::BTreeMap;

use cloudbill_aggregate::{GroupKey, Query, Sort};
use cloudbill_core::{DateRange, Granularity};
use serde::Deserialize;

use crate::ServiceError;

/// `{start, end, granularity, group_by, filters, sort, limit, metric, currency, fx_policy}` (DESIGN.md's report query).
///
/// ```
/// use cloudbill_service::ReportRequest;
/// let request: ReportRequest = serde_json::from_str(
///     r#"{"start": "2025-01-01", "end": "2025-04-01", "group_by": ["project"],
///         "filters": {"region": ["us-east-1"]}}"#,
/// ).unwrap();
/// let query = request.to_query().unwrap();
/// assert_eq!(query.group_by.len(), 1);
/// assert!(ReportRequest { limit: Some(0), ..request }.to_query().is_err());
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportRequest {
    /// First day, `YYYY-MM-DD`.
    pub start: String,
    /// Day after the last, `YYYY-MM-DD`.
    pub end: String,
    /// `DAILY`, `MONTHLY` (default) or `YEARLY`, any case.
    pub granularity: Option<String>,
    /// Keys to group by (duplicates are ignored).
    #[serde(default)]
    pub group_by: Vec<String>,
    /// Key → accepted values.
    #[serde(default)]
    pub filters: BTreeMap<String, Vec<String>>,
    /// `total` (default) or `key`.
    pub sort: Option<String>,
    /// At most this many result rows (at least 1).
    #[serde(default, deserialize_with = "integral")]
    pub limit: Option<u32>,
    /// Result rows skipped first (paging with `limit`; `total_count` is the whole answer's).
    #[serde(default, deserialize_with = "integral")]
    pub offset: Option<u32>,
    /// `billed` (default) or `effective` (FOCUS EffectiveCost; billed where a record has none).
    pub metric: Option<String>,
    /// Convert every amount to this currency (ISO 4217), with stated rates.
    pub currency: Option<String>,
    /// `daily` (default), `period-end` or `fixed:NAME` (with `currency`).
    pub fx_policy: Option<String>,
    /// Shared costs moved to their targets by the domain's allocation rules.
    #[serde(default)]
    pub allocated: Option<bool>,
}

impl ReportRequest {
    /// The currency to convert to and the policy, when one is asked for.
    pub fn conversion(
        &self,
    ) -> Result<Option<(cloudbill_core::Currency, crate::FxPolicy)>, ServiceError> {
        match (&self.currency, &self.fx_policy) {
            (None, None) => Ok(None),
            (None, Some(_)) => Err(ServiceError::Invalid(
                "an fx policy goes with a currency to convert to".into(),
            )),
            (Some(c), policy) => Ok(Some((
                cloudbill_core::Currency::parse(c)?,
                policy.as_deref().unwrap_or("daily").parse()?,
            ))),
        }
    }

    /// The engine's query, with a specific error for every mistake.
    pub fn to_query(&self) -> Result<Query, ServiceError> {
        let range = DateRange::parse(&self.start, &self.end)?;
        let granularity: Granularity = self.granularity.as_deref().unwrap_or("MONTHLY").parse()?;
        let mut q = Query::new(range, granularity);
        for k in &self.group_by {
            let key: GroupKey = k.parse()?;
            if !q.group_by.contains(&key) {
                q.group_by.push(key);
            }
        }
        for (k, values) in &self.filters {
            let key: GroupKey = k.parse()?;
            q.filters
                .entry(key)
                .or_default()
                .extend(values.iter().cloned());
        }
        q.sort = match self.sort.as_deref() {
            None => Sort::Total,
            Some(s) => s.parse()?,
        };
        if self.limit == Some(0) {
            return Err(cloudbill_aggregate::QueryError::ZeroLimit.into());
        }
        q.limit = self.limit;
        q.offset = self.offset.unwrap_or(0);
        if let Some(m) = &self.metric {
            q.metric = m.parse()?;
        }
        q.allocated = self.allocated.unwrap_or(false);
        Ok(q)
    }
}

/// A count as JSON numbers spell it: `25`, or `25.0` (JSON, and JSON Schema's `integer`, do
/// not tell them apart); a fraction, a negative or one past `u32` is refused. For
/// `#[serde(default, deserialize_with = "cloudbill_service::integral")]` on an `Option<u32>`.
///
/// # Errors
/// A fraction, a negative, or a count past `u32`.
pub fn integral<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    use serde::de::Error as _;
    let Some(v) = Option::<serde_json::Number>::deserialize(d)? else {
        return Ok(None);
    };
    if let Some(n) = v.as_u64() {
        return u32::try_from(n)
            .map(Some)
            .map_err(|_| D::Error::custom(format!("{n} is too large")));
    }
    // `25.0`: exact as a decimal, then whole (never through a float).
    cloudbill_core::parse_decimal(&v.to_string())
        .ok()
        .filter(|d| d.fract().is_zero() && !d.is_sign_negative())
        .and_then(|d| u32::try_from(d.trunc().mantissa() / 10_i128.pow(d.scale())).ok())
        .map(Some)
        .ok_or_else(|| D::Error::custom(format!("{v} is not a count (a whole number, 0 or more)")))
}
