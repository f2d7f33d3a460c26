//! Anomaly monitors and the anomalies they keep.

use std::collections::BTreeMap;

use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use cloudbill_core::AnomalyState;
use cloudbill_service::NewMonitor;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{paginate, ApiJson, Page};
use crate::auth::Auth;
use crate::{ApiError, AppState};

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/anomaly-monitors", get(list).post(create))
        .route("/anomaly-monitors/run", post(run))
        .route("/anomaly-monitors/{id}", get(one).delete(delete))
        .route("/anomaly-monitors/{id}/anomalies", get(kept))
        .route("/anomalies/{id}/ack", post(ack))
        .route("/anomalies/{id}/ignore", post(ignore))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MonitorBody {
    name: String,
    project: Option<String>,
    project_group: Option<String>,
    account: Option<String>,
    #[serde(default)]
    filters: BTreeMap<String, Vec<String>>,
    dimension: Option<String>,
    /// Decimal strings, as every amount.
    z: Option<String>,
    min_amount: Option<String>,
    min_percent: Option<String>,
    direction: Option<String>,
    #[serde(default)]
    channels: Vec<String>,
}

async fn list(Auth(p): Auth, Query(page): Query<Page>) -> Result<Json<Value>, ApiError> {
    Ok(Json(paginate(p.billing.monitors(&p).await?, &page)?))
}

async fn create(
    Auth(p): Auth,
    ApiJson(body): ApiJson<MonitorBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let new = NewMonitor {
        name: body.name,
        project: body.project,
        project_group: body.project_group,
        account: body.account,
        filters: super::filter_pairs(body.filters),
        dimension: body.dimension,
        z: body.z,
        min_amount: body.min_amount,
        min_percent: body.min_percent,
        direction: body.direction,
        channels: body.channels,
    };
    let view = p.billing.create_monitor(&p, new).await?;
    Ok((StatusCode::CREATED, Json(json!(view))))
}

async fn one(Auth(p): Auth, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!(p.billing.monitor(&p, &id).await?)))
}

async fn delete(Auth(p): Auth, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    p.billing.delete_monitor(&p, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeptParams {
    /// `open` (default) or `all`.
    state: Option<String>,
}

async fn kept(
    Auth(p): Auth,
    Path(id): Path<String>,
    Query(params): Query<KeptParams>,
) -> Result<Json<Value>, ApiError> {
    let all = match params.state.as_deref() {
        None | Some("open") => false,
        Some("all") => true,
        Some(_) => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                "state: open or all",
            ))
        }
    };
    let kept = p.billing.kept_anomalies(&p, Some(&id), all).await?;
    Ok(Json(json!({"anomalies": kept})))
}

async fn set(p: &crate::auth::Who, id: &str, state: AnomalyState) -> Result<Json<Value>, ApiError> {
    p.billing.set_anomaly_state(p, id, state).await?;
    Ok(Json(json!({"id": id, "state": state.as_str()})))
}

async fn ack(Auth(p): Auth, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    set(&p, &id, AnomalyState::Acknowledged).await
}

async fn ignore(Auth(p): Auth, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    set(&p, &id, AnomalyState::Ignored).await
}

async fn run(Auth(p): Auth) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!(p.billing.run_all_monitors(&p).await?)))
}
