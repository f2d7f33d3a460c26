//! `POST /billing/query` (and its GET form): the report query of DESIGN.md.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use cloudbill_core::{DateRange, Granularity};
use cloudbill_service::{GroupKey, Report, Sort};
use serde::Deserialize;

use super::ApiJson;
use crate::auth::Auth;
use crate::{ApiError, AppState};

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/billing/query", post(query_post).get(query_get))
}

/// The JSON body: `{start, end, granularity, group_by, filters, sort, limit}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct QueryBody {
    start: String,
    end: String,
    granularity: Option<String>,
    #[serde(default)]
    group_by: Vec<String>,
    #[serde(default)]
    filters: BTreeMap<String, Vec<String>>,
    sort: Option<String>,
    limit: Option<u32>,
}

/// The GET form: lists are comma separated; filters are `filter.KEY=a,b`.
#[derive(Debug, Deserialize)]
struct QueryParams {
    start: String,
    end: String,
    granularity: Option<String>,
    group_by: Option<String>,
    sort: Option<String>,
    limit: Option<u32>,
    #[serde(flatten)]
    rest: BTreeMap<String, String>,
}

fn invalid(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_query",
        e.to_string(),
    )
}

/// Turns the wire form into the service's query, with a specific message for every mistake.
pub(crate) fn to_query(body: QueryBody) -> Result<cloudbill_service::Query, ApiError> {
    let range = DateRange::parse(&body.start, &body.end).map_err(invalid)?;
    let granularity: Granularity = body
        .granularity
        .as_deref()
        .unwrap_or("MONTHLY")
        .parse()
        .map_err(invalid)?;
    let mut q = cloudbill_service::Query::new(range, granularity);
    for k in &body.group_by {
        let key: GroupKey = k.parse().map_err(invalid)?;
        if !q.group_by.contains(&key) {
            q.group_by.push(key);
        }
    }
    for (k, values) in body.filters {
        let key: GroupKey = k.parse().map_err(invalid)?;
        q.filters.insert(key, values);
    }
    q.sort = match body.sort.as_deref() {
        None => Sort::Total,
        Some(s) => s.parse().map_err(invalid)?,
    };
    q.limit = body.limit;
    Ok(q)
}

async fn query_post(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiJson(body): ApiJson<QueryBody>,
) -> Result<Json<Arc<Report>>, ApiError> {
    Ok(Json(s.billing.report_shared(&p, &to_query(body)?).await?))
}

async fn query_get(
    State(s): State<AppState>,
    Auth(p): Auth,
    Query(params): Query<QueryParams>,
) -> Result<Json<Arc<Report>>, ApiError> {
    let split = |v: &str| {
        v.split(',')
            .map(str::trim)
            .filter(|x| !x.is_empty())
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let mut filters = BTreeMap::new();
    for (k, v) in &params.rest {
        let key = k.strip_prefix("filter.").ok_or_else(|| {
            ApiError::bad_request(format!(
                "unknown query parameter {k:?} (filters are filter.KEY=a,b)"
            ))
        })?;
        filters.insert(key.to_owned(), split(v));
    }
    let body = QueryBody {
        start: params.start,
        end: params.end,
        granularity: params.granularity,
        group_by: params.group_by.as_deref().map(split).unwrap_or_default(),
        filters,
        sort: params.sort,
        limit: params.limit,
    };
    Ok(Json(s.billing.report_shared(&p, &to_query(body)?).await?))
}
