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
        .route("/providers/{name}", get(provider))
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

/// A provider as the API shows it: kind, title, state, and the settings an account gives it
/// (the same shape as `cloudbill provider list --format json`).
pub(crate) fn provider_json(v: &cloudbill_service::ProviderView) -> Value {
    json!({
        "kind": v.spec.kind.as_str(),
        "title": v.spec.title,
        "enabled": v.enabled,
        "settings": v.spec.settings.iter().map(|s| json!({
            "name": s.name, "description": s.description, "required": s.required,
            "secret": s.secret, "format": s.kind.describe(),
        })).collect::<Vec<_>>(),
    })
}

async fn providers(Auth(p): Auth) -> Result<Json<Value>, ApiError> {
    let list = p.billing.provider_views(&p).await?;
    Ok(Json(
        json!({"providers": list.iter().map(provider_json).collect::<Vec<_>>()}),
    ))
}

async fn provider(Auth(p): Auth, Path(name): Path<String>) -> Result<Json<Value>, ApiError> {
    Ok(Json(provider_json(
        &p.billing.provider_view(&p, &name).await?,
    )))
}

/// `POST /providers/{name}/enable` and `…/disable`: one handler, the state from the route.
async fn set_provider(
    Auth(p): Auth,
    Path(name): Path<String>,
    state: ProviderState,
) -> Result<Json<Value>, ApiError> {
    let entry = p.billing.set_provider_state(&p, &name, state).await?;
    Ok(Json(provider_json(
        &p.billing.provider_view(&p, entry.kind.as_str()).await?,
    )))
}
