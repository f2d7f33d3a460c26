//! Billing on/off and the provider registry.

use axum::extract::Path;
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
            post(|a, name| set_provider(a, name, ProviderState::Enabled)),
        )
        .route(
            "/providers/{name}/disable",
            post(|a, name| set_provider(a, name, ProviderState::Disabled)),
        )
}

fn domain_json(d: &cloudbill_core::Domain) -> Value {
    json!({"domain": d.name.as_str(), "billing_enabled": d.billing_enabled})
}

async fn status(Auth(p): Auth) -> Result<Json<Value>, ApiError> {
    Ok(Json(domain_json(&p.billing.domain().await?)))
}

async fn enable(Auth(p): Auth) -> Result<Json<Value>, ApiError> {
    Ok(Json(domain_json(&p.billing.set_billing(&p, true).await?)))
}

async fn disable(Auth(p): Auth) -> Result<Json<Value>, ApiError> {
    Ok(Json(domain_json(&p.billing.set_billing(&p, false).await?)))
}

fn provider_json(e: cloudbill_core::ProviderEntry) -> Value {
    json!({"name": e.kind.as_str(), "display_name": e.kind.display_name(), "state": e.state.as_str()})
}

async fn providers(Auth(p): Auth) -> Result<Json<Value>, ApiError> {
    let list = p.billing.providers(&p).await?;
    Ok(Json(
        json!({"items": list.into_iter().map(provider_json).collect::<Vec<_>>()}),
    ))
}

/// `POST /providers/{name}/enable` and `…/disable`: one handler, the state from the route.
async fn set_provider(
    Auth(p): Auth,
    Path(name): Path<String>,
    state: ProviderState,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(provider_json(
        p.billing.set_provider_state(&p, &name, state).await?,
    )))
}
