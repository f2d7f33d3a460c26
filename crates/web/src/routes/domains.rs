//! Domains (tenants): the system admin's routes. A system-admin token reaches only these;
//! a domain token never does.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use cloudbill_core::Domain;
use cloudbill_service::DomainView;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{paginate, ApiJson, Page};
use crate::auth::SystemAuth;
use crate::{ApiError, AppState};

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/domains", get(list).post(create))
        .route("/domains/{id}/disable", post(disable))
        .route("/domains/{id}/enable", post(enable))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewDomain {
    name: String,
    /// The label of the first domain-admin token.
    label: Option<String>,
}

pub(crate) fn domain_json(d: &Domain) -> Value {
    json!({
        "id": d.id.to_string(),
        "name": d.name.as_str(),
        "billing_enabled": d.billing_enabled,
        "created_at": d.created_at.to_rfc3339(),
        "disabled_at": d.disabled_at.map(|t| t.to_rfc3339()),
    })
}

fn view_json(v: &DomainView) -> Value {
    let mut j = domain_json(&v.domain);
    j["accounts"] = json!(v.accounts);
    j["engine_bytes"] = json!(v.engine_bytes);
    j
}

async fn list(
    State(s): State<AppState>,
    SystemAuth(who): SystemAuth,
    Query(page): Query<Page>,
) -> Result<Json<Value>, ApiError> {
    let views: Vec<Value> = s
        .tenants
        .domains(&who)
        .await?
        .iter()
        .map(view_json)
        .collect();
    Ok(Json(paginate(views, &page)?))
}

async fn create(
    State(s): State<AppState>,
    SystemAuth(who): SystemAuth,
    ApiJson(body): ApiJson<NewDomain>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (domain, token, secret) = s
        .tenants
        .create_domain(&who, &body.name, body.label.as_deref().unwrap_or(""))
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "domain": domain_json(&domain),
            "admin_token": {"id": token.id.to_string(), "secret": secret, "label": token.label},
        })),
    ))
}

async fn disable(
    State(s): State<AppState>,
    SystemAuth(who): SystemAuth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(domain_json(
        &s.tenants.set_disabled(&who, &id, true).await?,
    )))
}

async fn enable(
    State(s): State<AppState>,
    SystemAuth(who): SystemAuth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(domain_json(
        &s.tenants.set_disabled(&who, &id, false).await?,
    )))
}
