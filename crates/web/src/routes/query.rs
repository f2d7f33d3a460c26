//! `POST /billing/query` (and its GET form): the report query of DESIGN.md.

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use cloudbill_service::{Report, ReportRequest};
use serde::Deserialize;

use super::ApiJson;
use crate::auth::Auth;
use crate::{ApiError, AppState};

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/billing/query", post(query_post).get(query_get))
        .route("/billing/tags", axum::routing::get(tags))
        .route("/export/focus", axum::routing::get(export_focus))
        .route("/forecast", axum::routing::get(forecast))
        .route("/anomalies", axum::routing::get(anomalies))
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
    offset: Option<u32>,
    metric: Option<String>,
    currency: Option<String>,
    fx_policy: Option<String>,
    allocated: Option<bool>,
    #[serde(flatten)]
    rest: BTreeMap<String, String>,
}

/// A comma-separated parameter's values.
fn split(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The `filter.KEY=a,b` parameters of `params`; any other name not in `known` is a 400 that
/// lists what the route takes.
fn filter_params<'a>(
    params: impl IntoIterator<Item = (&'a String, &'a String)>,
    known: &[&str],
) -> Result<BTreeMap<String, Vec<String>>, ApiError> {
    let mut filters: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in params {
        if known.contains(&k.as_str()) {
            continue;
        }
        let key = k.strip_prefix("filter.").ok_or_else(|| {
            ApiError::bad_request(if known.is_empty() {
                format!("unknown query parameter {k:?} (filters are filter.KEY=a,b)")
            } else {
                format!(
                    "unknown query parameter {k:?} (expected {}, filter.KEY=a,b)",
                    known.join(", ")
                )
            })
        })?;
        filters.entry(key.to_owned()).or_default().extend(split(v));
    }
    Ok(filters)
}

fn invalid(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_query",
        e.to_string(),
    )
}

/// Turns the wire form into the service's query, with a specific message for every mistake.
pub(crate) fn to_query(body: &ReportRequest) -> Result<cloudbill_service::Query, ApiError> {
    body.to_query().map_err(invalid)
}

async fn query_post(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiJson(body): ApiJson<ReportRequest>,
) -> Result<Response, ApiError> {
    answer(&s, &p, &body).await
}

/// The report `body` asks for, converted to one currency when it says so, as JSON. An answer
/// over `AppState::max_answer_cells` amounts is refused (422 `answer_too_large`) before it is
/// built; the JSON is written on the CPU pool (`on_cpu`), as the scans run,
/// straight from the answer's sums (no report of strings built first).
async fn answer(
    s: &AppState,
    p: &crate::auth::Who,
    body: &ReportRequest,
) -> Result<Response, ApiError> {
    let mut query = to_query(body)?;
    query.max_cells = Some(s.max_answer_cells);
    let conversion = body.conversion().map_err(invalid)?;
    let render: Box<dyn FnOnce() -> Result<Vec<u8>, cloudbill_service::ServiceError> + Send> =
        match conversion {
            None => {
                let answer = p.billing.answer_shared(p, &query).await?;
                Box::new(move || {
                    let mut out = Vec::with_capacity(answer.amounts() * 56 + 256);
                    answer.write_json(&mut out)?;
                    Ok(out)
                })
            }
            Some((currency, policy)) => {
                let report: Report = p.billing.report_in(p, &query, currency, &policy).await?;
                Box::new(move || {
                    serde_json::to_vec(&report).map_err(|e| {
                        cloudbill_service::ServiceError::Internal(format!("rendering failed: {e}"))
                    })
                })
            }
        };
    let json = cloudbill_service::on_cpu(render).await??;
    Ok(([(header::CONTENT_TYPE, "application/json")], json).into_response())
}

async fn query_get(
    State(s): State<AppState>,
    Auth(p): Auth,
    Query(params): Query<QueryParams>,
) -> Result<Response, ApiError> {
    let filters = filter_params(&params.rest, &[])?;
    let body = ReportRequest {
        start: params.start,
        end: params.end,
        granularity: params.granularity,
        group_by: params.group_by.as_deref().map(split).unwrap_or_default(),
        filters,
        sort: params.sort,
        limit: params.limit,
        offset: params.offset,
        metric: params.metric,
        currency: params.currency,
        fx_policy: params.fx_policy,
        allocated: params.allocated,
    };
    answer(&s, &p, &body).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TagsParams {
    start: String,
    end: String,
    project: Option<String>,
}

/// `GET /billing/tags?start=&end=[&project=]`: the tag keys of the costs in the range (a
/// member's: of its projects), each with its values and record counts.
async fn tags(
    Auth(p): Auth,
    Query(params): Query<TagsParams>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let range = cloudbill_service::DateRange::parse(&params.start, &params.end).map_err(invalid)?;
    let tags = p.billing.tags(&p, range, params.project.as_deref()).await?;
    Ok(Json(serde_json::json!({ "tags": tags })))
}

/// `GET /export/focus?start=&end=[&project=][&format=csv|parquet][&filter.KEY=a,b]`: the
/// costs of the range as a FOCUS 1.2 file (CSV by default), optionally only the records that
/// pass report filters. A domain admin may export the domain; a member names one of its
/// projects.
async fn export_focus(
    State(state): State<AppState>,
    Auth(p): Auth,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let get = |k: &str| super::last_param(&params, k);
    let range = cloudbill_service::DateRange::parse(
        get("start").ok_or_else(|| ApiError::bad_request("start is required"))?,
        get("end").ok_or_else(|| ApiError::bad_request("end is required"))?,
    )
    .map_err(invalid)?;
    let (format, content_type, extension) = match get("format") {
        None | Some("csv") => (
            cloudbill_service::FocusFormat::Csv,
            "text/csv; charset=utf-8",
            "csv",
        ),
        Some("parquet") => (
            cloudbill_service::FocusFormat::Parquet,
            "application/vnd.apache.parquet",
            "parquet",
        ),
        Some(other) => {
            return Err(invalid(format!(
                "unknown format {other:?} (expected csv or parquet)"
            )))
        }
    };
    let projects: Vec<String> = params
        .iter()
        .filter(|(k, _)| k == "project")
        .map(|(_, v)| v.clone())
        .collect();
    let mut filters = cloudbill_service::ExportFilters::new();
    let raw = filter_params(
        params.iter().map(|(k, v)| (k, v)),
        &["start", "end", "format", "project"],
    )?;
    for (key, values) in raw {
        let key: cloudbill_service::GroupKey = key.parse().map_err(invalid)?;
        filters.entry(key).or_default().extend(values);
    }
    let deadline = std::time::Instant::now() + state.request_timeout;
    let body = super::export::stream(p.billing.clone(), p.principal.clone(), deadline, {
        move |billing, principal, out| async move {
            billing
                .export_focus_where(
                    &principal,
                    range,
                    &projects,
                    &filters,
                    format,
                    out,
                    Some(deadline),
                )
                .await
        }
    })
    .await?;
    let disposition = format!(
        "attachment; filename=\"focus-{}-{}.{extension}\"",
        range.start(),
        range.end()
    );
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, content_type.to_owned()),
            (axum::http::header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response())
}

/// `GET /forecast?[period=monthly][&as_of=DATE][&restate_days=2][&allocated=true]
/// [&filter.KEY=a,b]`: the period-end forecast per currency (a member's: of its projects).
async fn forecast(
    Auth(p): Auth,
    Query(params): Query<BTreeMap<String, String>>,
) -> Result<Json<cloudbill_service::ForecastReport>, ApiError> {
    let as_of = match params.get("as_of") {
        Some(d) => cloudbill_core::parse_date(d).map_err(|e| invalid(format!("as_of: {e}")))?,
        None => p.billing.today(),
    };
    let mut request = cloudbill_service::ForecastRequest::new(as_of);
    if let Some(v) = params.get("period") {
        request.period = v.parse().map_err(invalid)?;
    }
    if let Some(v) = params.get("restate_days") {
        request.restate_days = v
            .parse()
            .map_err(|_| invalid(format!("restate_days {v:?} is not a number")))?;
    }
    if let Some(v) = params.get("allocated") {
        request.allocated = v
            .parse()
            .map_err(|_| invalid(format!("allocated {v:?}: true or false")))?;
    }
    let filters = filter_params(&params, &["as_of", "period", "restate_days", "allocated"])?;
    let parsed = to_query(&ReportRequest {
        start: as_of.to_string(),
        end: as_of.succ_opt().unwrap_or(as_of).to_string(),
        filters,
        ..ReportRequest::default()
    })?;
    request.filters = parsed.filters;
    Ok(Json(p.billing.forecast(&p, &request).await?))
}

/// `GET /anomalies?start=&end=[&group_by=service][&direction=spikes|both][&min_amount=]
/// [&min_percent=][&state=open|all][&filter.KEY=a,b]`: the anomalies of the range, explained
/// (a member's: of its projects).
async fn anomalies(
    Auth(p): Auth,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let get = |k: &str| super::last_param(&params, k);
    let filters = filter_params(
        params.iter().map(|(k, v)| (k, v)),
        &[
            "start",
            "end",
            "group_by",
            "direction",
            "min_amount",
            "min_percent",
            "state",
        ],
    )?;
    let parsed = to_query(&ReportRequest {
        start: get("start").unwrap_or_default().to_owned(),
        end: get("end").unwrap_or_default().to_owned(),
        group_by: vec![get("group_by").unwrap_or("service").to_owned()],
        filters,
        ..ReportRequest::default()
    })?;
    let mut request = cloudbill_service::AnomalyRequest::new(parsed.range);
    request.group_by = parsed
        .group_by
        .first()
        .cloned()
        .unwrap_or(cloudbill_service::GroupKey::Service);
    request.filters = parsed.filters;
    request.settings.direction = match get("direction") {
        None | Some("spikes") => cloudbill_service::AnomalyDirection::Spikes,
        Some("both") => cloudbill_service::AnomalyDirection::Both,
        Some(other) => return Err(invalid(format!("direction {other:?}: spikes or both"))),
    };
    let decimal = |name: &str, raw: &str| {
        cloudbill_service::Decimal::from_str_exact(raw)
            .ok()
            .filter(|d| !d.is_sign_negative())
            .ok_or_else(|| invalid(format!("{name} {raw:?} is not a decimal >= 0")))
    };
    if let Some(raw) = get("min_amount") {
        request.settings.min_amount = decimal("min_amount", raw)?;
    }
    if let Some(raw) = get("min_percent") {
        request.settings.min_percent = decimal("min_percent", raw)?;
    }
    if !matches!(get("state"), None | Some("open" | "all")) {
        return Err(invalid("state: open or all"));
    }
    request.all_states = get("state") == Some("all");
    request.strict_history = true;
    let found = p.billing.anomalies(&p, &request).await?;
    Ok(Json(serde_json::json!({ "anomalies": found })))
}
