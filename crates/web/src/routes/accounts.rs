//! Billing (service) accounts: a provider's settings, its secrets write-only.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use cloudbill_core::{AccountState, ClientSecret, NaiveDate, ServiceAccount, Settings};
use cloudbill_service::{AccountOutcome, NewAccount, SyncRequest};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{paginate, ApiJson, Page};
use crate::auth::Auth;
use crate::{ApiError, AppState};

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/service-accounts", get(list).post(create))
        .route(
            "/service-accounts/{id}",
            get(show).delete(remove).patch(update),
        )
        .route("/service-accounts/{id}/move", post(move_account))
        .route(
            "/service-accounts/{id}/enable",
            post(|a, id| set_state(a, id, AccountState::Enabled)),
        )
        .route(
            "/service-accounts/{id}/disable",
            post(|a, id| set_state(a, id, AccountState::Disabled)),
        )
        .route("/service-accounts/{id}/verify", post(verify))
        .route("/service-accounts/{id}/sync", post(sync_one))
        .route("/sync", post(sync_all))
}

/// Hyperbilling's spelling of its settings (the API before providers declared theirs).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewCredentials {
    account: Option<String>,
    email: String,
    key: String,
    endpoint: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewAccountBody {
    name: String,
    /// `hyperbilling-aws` when absent (or null: every optional field takes null).
    provider: Option<String>,
    project: Option<String>,
    /// The provider's plain settings (`GET /providers/{kind}` lists them).
    #[serde(default)]
    settings: BTreeMap<String, String>,
    /// Its secret settings: write-only, never returned.
    #[serde(default)]
    secrets: BTreeMap<String, String>,
    /// Hyperbilling's `{account, email, key, endpoint}`, the same as its settings.
    credentials: Option<NewCredentials>,
    verify: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateAccountBody {
    #[serde(default)]
    settings: BTreeMap<String, String>,
    #[serde(default)]
    secrets: BTreeMap<String, String>,
    verify: Option<bool>,
}

/// Settings from a body's maps.
fn settings_of(
    values: BTreeMap<String, String>,
    secrets: BTreeMap<String, String>,
) -> Result<Settings, ApiError> {
    let mut s = Settings::default();
    for (k, v) in values {
        s = s.with_value(&k, &v);
    }
    for (k, v) in secrets {
        let secret = ClientSecret::new(&v).map_err(cloudbill_service::ServiceError::from)?;
        s = s.with_secret(&k, secret);
    }
    Ok(s)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MoveBody {
    project: String,
    from: Option<NaiveDate>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct SyncBody {
    #[serde(default)]
    accounts: Vec<String>,
    start: Option<NaiveDate>,
    end: Option<NaiveDate>,
}

/// An account as the API shows it: never the key.
/// An account as the API shows it: its plain settings, and its secrets by name only.
pub(crate) fn account_json(a: &ServiceAccount) -> Value {
    json!({
        "id": a.id.to_string(), "name": a.name.as_str(), "provider": a.provider.as_str(),
        "project_id": a.project.to_string(), "state": a.state.as_str(),
        "settings": a.settings.values(),
        "secrets": a.settings.secret_names().collect::<Vec<_>>(),
        "created_at": a.created_at.to_rfc3339(),
    })
}

fn outcome_json(o: &AccountOutcome) -> Value {
    json!({
        "account": o.account, "job_id": o.job.map(|j| j.to_string()), "state": o.state.as_str(),
        "start": o.range.map(|r| r.start().to_string()), "end": o.range.map(|r| r.end().to_string()),
        "error": o.error,
    })
}

async fn list(Auth(p): Auth, Query(page): Query<Page>) -> Result<Json<Value>, ApiError> {
    let accounts: Vec<Value> = p
        .billing
        .accounts(&p)
        .await?
        .iter()
        .map(account_json)
        .collect();
    Ok(Json(paginate(accounts, &page)?))
}

async fn create(
    Auth(p): Auth,
    ApiJson(body): ApiJson<NewAccountBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let mut settings = settings_of(body.settings, body.secrets)?;
    if let Some(c) = body.credentials {
        let legacy = legacy_credentials(c);
        settings = legacy.merged(&settings);
    }
    let new = NewAccount {
        name: body.name,
        provider: body
            .provider
            .unwrap_or_else(|| "hyperbilling-aws".to_owned()),
        project: body.project,
        settings,
    };
    let a = p
        .billing
        .add_account(&p, new, body.verify.unwrap_or(false))
        .await?;
    Ok((StatusCode::CREATED, Json(account_json(&a))))
}

/// Hyperbilling's `credentials` object as its settings (`key` the one secret).
fn legacy_credentials(c: NewCredentials) -> Settings {
    let mut s = Settings::default().with_value("email", &c.email);
    if let Some(a) = c.account.filter(|a| !a.trim().is_empty()) {
        s = s.with_value("account", &a);
    }
    if let Some(e) = c.endpoint {
        s = s.with_value("endpoint", &e);
    }
    match ClientSecret::new(&c.key) {
        Ok(key) => s.with_secret("key", key),
        Err(_) => s,
    }
}

/// `PATCH /service-accounts/{id}`: each setting or secret given replaces the account's.
async fn update(
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateAccountBody>,
) -> Result<Json<Value>, ApiError> {
    let update = settings_of(body.settings, body.secrets)?;
    let a = p
        .billing
        .update_account(&p, &id, &update, body.verify.unwrap_or(false))
        .await?;
    Ok(Json(account_json(&a)))
}

async fn show(Auth(p): Auth, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let a = p.billing.account(&p, &id).await?;
    let history = p.billing.assignments(&p, &id).await?;
    let mut v = account_json(&a);
    v["history"] = history
        .iter()
        .map(
            |h| json!({"project_id": h.project.to_string(), "from": h.from.map(|d| d.to_string())}),
        )
        .collect();
    Ok(Json(v))
}

async fn remove(Auth(p): Auth, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    p.billing.remove_account(&p, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn move_account(
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<MoveBody>,
) -> Result<Json<Value>, ApiError> {
    p.billing
        .move_account(&p, &id, &body.project, body.from)
        .await?;
    Ok(Json(account_json(&p.billing.account(&p, &id).await?)))
}

/// `POST …/enable` and `…/disable`: one handler, the state from the route.
async fn set_state(
    Auth(p): Auth,
    Path(id): Path<String>,
    state: AccountState,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(account_json(
        &p.billing.set_account_state(&p, &id, state).await?,
    )))
}

async fn verify(Auth(p): Auth, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let linked = p.billing.verify_account(&p, &id).await?;
    Ok(Json(json!({"valid": true, "linked_accounts": linked})))
}

async fn start(
    s: &AppState,
    p: &crate::auth::Who,
    accounts: Vec<String>,
    body: SyncBody,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let range = match (body.start, body.end) {
        (Some(a), Some(b)) => Some(
            cloudbill_core::DateRange::new(a, b).map_err(cloudbill_service::ServiceError::from)?,
        ),
        (None, None) => None,
        _ => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                "give both start and end, or neither",
            ))
        }
    };
    let request = SyncRequest { accounts, range };
    let started = p.billing.start_sync(p, &request, s.metrics.clone()).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"jobs": started.iter().map(outcome_json).collect::<Vec<_>>()})),
    ))
}

/// An optional JSON body: empty means defaults.
fn optional_body(bytes: &[u8]) -> Result<SyncBody, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(SyncBody::default());
    }
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}

async fn sync_one(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    bytes: axum::body::Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let body = optional_body(&bytes)?;
    if !body.accounts.is_empty() {
        return Err(ApiError::bad_request(
            "`accounts` is not accepted here: the account is in the path",
        ));
    }
    start(&s, &p, vec![id], body).await
}

async fn sync_all(
    State(s): State<AppState>,
    Auth(p): Auth,
    bytes: axum::body::Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let mut body = optional_body(&bytes)?;
    let accounts = std::mem::take(&mut body.accounts);
    start(&s, &p, accounts, body).await
}
