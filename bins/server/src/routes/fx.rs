//! Exchange rates.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::ApiJson;
use crate::auth::Auth;
use crate::{ApiError, AppState};

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/fx/rates", get(list).post(set))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    source: Option<String>,
}

async fn list(
    State(s): State<AppState>,
    Auth(_p): Auth,
    Query(params): Query<ListParams>,
) -> Result<Json<Value>, ApiError> {
    // Rates are public knowledge within the domain: any token may read them.
    Ok(Json(
        json!({"rates": s.billing.fx_rates(params.source.as_deref()).await?}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewRate {
    date: String,
    base: String,
    quote: String,
    /// A decimal string.
    rate: String,
    source: Option<String>,
}

async fn set(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiJson(body): ApiJson<NewRate>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let rate = s
        .billing
        .set_rate(
            &p,
            &body.date,
            &body.base,
            &body.quote,
            &body.rate,
            body.source.as_deref(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(json!(rate))))
}
