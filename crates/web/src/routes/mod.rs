//! The REST API under `/api/v1`, plus health, readiness and metrics.

mod accounts;
mod allocations;
mod billing;
mod budgets;
mod domains;
mod export;
mod jobs;
mod money;
mod monitors;
mod projects;
mod query;

use std::fmt::Write as _;

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::{ApiError, AppState};

/// Every `/api/v1` route.
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .merge(domains::router())
        .merge(billing::router())
        .merge(projects::router())
        .merge(accounts::router())
        .merge(jobs::router())
        .merge(query::router())
        .merge(budgets::router())
        .merge(monitors::router())
        .merge(allocations::router())
        .merge(money::router())
        .merge(money::invoice_router())
        .merge(money::period_router())
}

/// `/healthz`, `/readyz`, `/metrics`.
pub(crate) fn system_router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route(
            "/api/openapi.json",
            get(|State(state): State<AppState>| async move {
                let providers = state.tenants.default_domain().provider_specs();
                axum::Json(crate::openapi::document(&providers))
            }),
        )
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    if !state.ready.load(std::sync::atomic::Ordering::Acquire) {
        return (StatusCode::SERVICE_UNAVAILABLE, "warming up").into_response();
    }
    match state.tenants.default_domain().domain().await {
        Ok(_) => (StatusCode::OK, "ready").into_response(),
        Err(e) => {
            tracing::error!(error = %e, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unreachable").into_response()
        }
    }
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let mut text = state.metrics.render();
    // The outbox of every domain, as the store holds it (every replica reports the same
    // numbers).
    match state.tenants.delivery_counts().await {
        Ok(c) => {
            text.push_str("# HELP cloudbill_notification_deliveries Notification deliveries in the outbox by state.\n# TYPE cloudbill_notification_deliveries gauge\n");
            for (state, n) in [
                ("pending", c.pending),
                ("sent", c.sent),
                ("failed", c.failed),
            ] {
                let _ = writeln!(
                    text,
                    "cloudbill_notification_deliveries{{state=\"{state}\"}} {n}"
                );
            }
        }
        Err(e) => tracing::warn!(error = %e, "delivery counts unavailable"),
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}

/// A body's `{"KEY": ["a", "b"]}` filters as `KEY=VALUE` pairs (budgets, monitors).
pub(crate) fn filter_pairs(
    filters: std::collections::BTreeMap<String, Vec<String>>,
) -> Vec<(String, String)> {
    filters
        .into_iter()
        .flat_map(|(k, vs)| vs.into_iter().map(move |v| (k.clone(), v)))
        .collect()
}

/// The value of the last `name` parameter of a query (a repeated parameter: the last counts).
pub(crate) fn last_param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .rev()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// A JSON body whose every rejection (syntax, unknown field, wrong type) is our 400 shape.
pub(crate) struct ApiJson<T>(pub(crate) T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(JsonRejection::BytesRejection(e)) => Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("request body rejected: {e}"),
            )),
            Err(e) => Err(ApiError::bad_request(e.body_text())),
        }
    }
}

/// `?limit=&cursor=` on lists.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Page {
    limit: Option<usize>,
    cursor: Option<String>,
}

/// One page of `items` and the cursor of the next, if any.
pub(crate) fn paginate<T: serde::Serialize>(
    items: Vec<T>,
    page: &Page,
) -> Result<serde_json::Value, ApiError> {
    let limit = page.limit.unwrap_or(100);
    if limit == 0 || limit > 1000 {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            "limit must be between 1 and 1000",
        ));
    }
    let offset = match &page.cursor {
        None => 0,
        Some(c) => c
            .parse::<usize>()
            .map_err(|_| ApiError::bad_request(format!("invalid cursor {c:?}")))?,
    };
    let total = items.len();
    let items: Vec<T> = items.into_iter().skip(offset).take(limit).collect();
    let next = (offset + items.len() < total).then(|| (offset + items.len()).to_string());
    Ok(serde_json::json!({"items": items, "next_cursor": next, "total_count": total}))
}
