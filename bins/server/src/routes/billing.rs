//! Billing on/off and the provider registry.

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use cloudbill_core::ProviderState;
use serde_json::{json, Value};

use crate::auth::Auth;
use crate::{ApiError, AppState};

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/billing", get(status))
        .route("/billing/enable", post(enable))
        .route("/billing/disable", post(disable))
        .route("/providers", get(providers))
        .route(
            "/providers/{name}/enable",
            post(|s, a, name| set_provider(s, a, name, ProviderState::Enabled)),
        )
        .route(
            "/providers/{name}/disable",
            post(|s, a, name| set_provider(s, a, name, ProviderState::Disabled)),
        )
}

fn domain_json(d: &cloudbill_core::Domain) -> Value {
    json!({"domain": d.name.as_str(), "billing_enabled": d.billing_enabled})
}

async fn status(State(s): State<AppState>, Auth(_): Auth) -> Result<Json<Value>, ApiError> {
    Ok(Json(domain_json(&s.billing.domain().await?)))
}

async fn enable(State(s): State<AppState>, Auth(p): Auth) -> Result<Json<Value>, ApiError> {
    Ok(Json(domain_json(&s.billing.set_billing(&p, true).await?)))
}

async fn disable(State(s): State<AppState>, Auth(p): Auth) -> Result<Json<Value>, ApiError> {
    Ok(Json(domain_json(&s.billing.set_billing(&p, false).await?)))
}

fn provider_json(e: cloudbill_core::ProviderEntry) -> Value {
    json!({"name": e.kind.as_str(), "display_name": e.kind.display_name(), "state": e.state.as_str()})
}

async fn providers(State(s): State<AppState>, Auth(p): Auth) -> Result<Json<Value>, ApiError> {
    let list = s.billing.providers(&p).await?;
    Ok(Json(
        json!({"items": list.into_iter().map(provider_json).collect::<Vec<_>>()}),
    ))
}

/// `POST /providers/{name}/enable` and `…/disable`: one handler, the state from the route.
async fn set_provider(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(name): Path<String>,
    state: ProviderState,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(provider_json(
        s.billing.set_provider_state(&p, &name, state).await?,
    )))
}
