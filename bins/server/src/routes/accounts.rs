//! Billing (service) accounts: credentials are write-only.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use cloudbill_core::{AccountState, ClientSecret, NaiveDate, ServiceAccount};
use cloudbill_service::{AccountOutcome, CredentialsInput, NewAccount, SyncRequest};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{paginate, ApiJson, Page};
use crate::auth::Auth;
use crate::{ApiError, AppState};

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/service-accounts", get(list).post(create))
        .route("/service-accounts/{id}", get(show).delete(remove))
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
    credentials: Option<NewCredentials>,
    verify: Option<bool>,
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
pub(crate) fn account_json(a: &ServiceAccount) -> Value {
    json!({
        "id": a.id.to_string(), "name": a.name.as_str(), "provider": a.provider.as_str(),
        "project_id": a.project.to_string(), "state": a.state.as_str(),
        "credentials": a.credentials.as_ref().map(|c| json!({"account": c.account(), "email": c.email(), "endpoint": c.endpoint()})),
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
    let credentials = match body.credentials {
        Some(c) => Some(CredentialsInput {
            account: c.account.unwrap_or_default(),
            email: c.email,
            key: ClientSecret::new(&c.key).map_err(cloudbill_service::ServiceError::from)?,
            endpoint: c.endpoint,
        }),
        None => None,
    };
    let new = NewAccount {
        name: body.name,
        provider: body
            .provider
            .unwrap_or_else(|| "hyperbilling-aws".to_owned()),
        project: body.project,
        credentials,
    };
    let a = p
        .billing
        .add_account(&p, new, body.verify.unwrap_or(false))
        .await?;
    Ok((StatusCode::CREATED, Json(account_json(&a))))
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
