//! Budgets, notification channels and the delivery log.

use std::collections::BTreeMap;

use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use cloudbill_core::{Channel, ClientSecret};
use cloudbill_service::{ChannelSpec, NewBudget, NewChannel, NewNotification};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{paginate, ApiJson, Page};
use crate::auth::Auth;
use crate::{ApiError, AppState};

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/budgets", get(list_budgets).post(create_budget))
        .route("/budgets/status", get(all_status))
        .route(
            "/budgets/{id}",
            get(get_budget).put(update_budget).delete(delete_budget),
        )
        .route("/budgets/{id}/status", get(budget_status))
        .route("/budgets/{id}/events", get(budget_events))
        .route("/budget-events", get(all_events))
        .route("/channels", get(list_channels).post(create_channel))
        .route("/channels/{id}", get(get_channel).delete(delete_channel))
        .route("/channels/{id}/test", post(test_channel))
        .route("/notifications", get(delivery_log))
        .route("/notifications/flush", post(flush))
}

/// A notification of a new budget: a threshold, and channels (none: the budget's).
#[derive(Deserialize)]
#[serde(deny_unknown_fields, untagged)]
enum NotificationBody {
    /// `"actual:80%"`.
    Threshold(String),
    /// `{"threshold": "actual:80%", "channels": ["ops"]}`.
    Full {
        threshold: String,
        #[serde(default)]
        channels: Vec<String>,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BudgetBody {
    name: String,
    /// A decimal string ("1000.00"); a JSON number is refused (amounts are strings).
    amount: String,
    currency: String,
    period: Option<String>,
    project: Option<String>,
    project_group: Option<String>,
    account: Option<String>,
    #[serde(default)]
    filters: BTreeMap<String, Vec<String>>,
    metric: Option<String>,
    notifications: Vec<NotificationBody>,
    #[serde(default)]
    channels: Vec<String>,
}

async fn list_budgets(Auth(p): Auth, Query(page): Query<Page>) -> Result<Json<Value>, ApiError> {
    Ok(Json(paginate(p.billing.budgets(&p).await?, &page)?))
}

async fn create_budget(
    Auth(p): Auth,
    ApiJson(body): ApiJson<BudgetBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let view = p.billing.create_budget(&p, new_budget(body)).await?;
    Ok((StatusCode::CREATED, Json(json!(view))))
}

async fn update_budget(
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<BudgetBody>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!(
        p.billing.update_budget(&p, &id, new_budget(body)).await?
    )))
}

fn new_budget(body: BudgetBody) -> NewBudget {
    NewBudget {
        name: body.name,
        amount: body.amount,
        currency: body.currency,
        period: body.period,
        project: body.project,
        project_group: body.project_group,
        account: body.account,
        filters: super::filter_pairs(body.filters),
        metric: body.metric,
        notifications: body
            .notifications
            .into_iter()
            .map(|n| match n {
                NotificationBody::Threshold(threshold) => NewNotification {
                    threshold,
                    channels: Vec::new(),
                },
                NotificationBody::Full {
                    threshold,
                    channels,
                } => NewNotification {
                    threshold,
                    channels,
                },
            })
            .collect(),
        channels: body.channels,
    }
}

async fn get_budget(Auth(p): Auth, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!(p.billing.budget(&p, &id).await?)))
}

async fn delete_budget(Auth(p): Auth, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    p.billing.delete_budget(&p, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusParams {
    /// `YYYY-MM`: the period holding that month.
    period: Option<String>,
}

fn period_day(params: &StatusParams) -> Result<Option<cloudbill_core::NaiveDate>, ApiError> {
    Ok(params
        .period
        .as_deref()
        .map(cloudbill_service::parse_period)
        .transpose()?)
}

async fn budget_status(
    Auth(p): Auth,
    Path(id): Path<String>,
    Query(params): Query<StatusParams>,
) -> Result<Json<Value>, ApiError> {
    let day = period_day(&params)?;
    let mut statuses = p.billing.budget_status(&p, Some(&id), day).await?;
    Ok(Json(json!(statuses.pop())))
}

async fn all_status(
    Auth(p): Auth,
    Query(params): Query<StatusParams>,
) -> Result<Json<Value>, ApiError> {
    let day = period_day(&params)?;
    Ok(Json(
        json!({"budgets": p.billing.budget_status(&p, None, day).await?}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventParams {
    limit: Option<u32>,
}

impl EventParams {
    /// `limit`: 1 to 10,000 (default 100).
    fn limit(&self) -> Result<u32, ApiError> {
        match self.limit {
            None => Ok(100),
            Some(n @ 1..=10_000) => Ok(n),
            Some(n) => Err(invalid(format!("limit {n} is out of range (1 to 10000)"))),
        }
    }
}

async fn budget_events(
    Auth(p): Auth,
    Path(id): Path<String>,
    Query(params): Query<EventParams>,
) -> Result<Json<Value>, ApiError> {
    let events = p
        .billing
        .budget_events(&p, Some(&id), params.limit()?)
        .await?;
    Ok(Json(json!({"events": events})))
}

async fn all_events(
    Auth(p): Auth,
    Query(params): Query<EventParams>,
) -> Result<Json<Value>, ApiError> {
    let events = p.billing.budget_events(&p, None, params.limit()?).await?;
    Ok(Json(json!({"events": events})))
}

/// A channel to add; exactly one of `webhook`, `slack`, `email`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChannelBody {
    name: String,
    webhook: Option<String>,
    /// The webhook's signing secret (write-only: never returned).
    secret: Option<String>,
    /// A Slack incoming-webhook URL (write-only: only its host is returned).
    slack: Option<String>,
    email: Option<String>,
    smtp: Option<String>,
    /// `starttls` (default) or `none`.
    smtp_security: Option<String>,
    smtp_user: Option<String>,
    /// Write-only.
    smtp_password: Option<String>,
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message.into())
}

fn channel_spec(body: ChannelBody) -> Result<(String, ChannelSpec), ApiError> {
    let secret = |s: Option<String>, what: &str| {
        s.map(|v| ClientSecret::new(&v))
            .transpose()
            .map_err(|e| invalid(format!("{what}: {e}")))
    };
    let kinds = [&body.webhook, &body.slack, &body.email]
        .iter()
        .filter(|k| k.is_some())
        .count();
    if kinds != 1 {
        return Err(invalid("give exactly one of webhook, slack or email"));
    }
    // Settings of another kind are refused, never silently ignored.
    if body.webhook.is_none() && body.secret.is_some() {
        return Err(invalid("secret is a webhook's signing secret"));
    }
    if body.email.is_none()
        && (body.smtp.is_some()
            || body.smtp_security.is_some()
            || body.smtp_user.is_some()
            || body.smtp_password.is_some())
    {
        return Err(invalid("smtp settings are an e-mail channel's"));
    }
    let spec = if let Some(url) = body.webhook {
        ChannelSpec::Webhook {
            url,
            secret: secret(body.secret, "secret")?
                .ok_or_else(|| invalid("a webhook needs a signing secret (secret)"))?,
        }
    } else if let Some(url) = body.slack {
        ChannelSpec::Slack {
            url: secret(Some(url), "slack")?.ok_or_else(|| invalid("slack URL missing"))?,
        }
    } else {
        let starttls = match body.smtp_security.as_deref().unwrap_or("starttls") {
            "starttls" => true,
            "none" => false,
            other => {
                return Err(invalid(format!(
                    "smtp_security {other:?}: expected starttls or none"
                )))
            }
        };
        ChannelSpec::Email {
            to: body.email.unwrap_or_default(),
            smtp: body
                .smtp
                .ok_or_else(|| invalid("an e-mail channel needs smtp (HOST:PORT)"))?,
            starttls,
            user: body.smtp_user,
            password: secret(body.smtp_password, "smtp_password")?,
        }
    };
    Ok((body.name, spec))
}

fn channel_json(c: &Channel) -> Value {
    json!({"id": c.id, "name": c.name.as_str(), "kind": c.kind.as_str(), "target": c.target,
        "smtp": c.smtp, "created_at": c.created_at})
}

async fn list_channels(Auth(p): Auth, Query(page): Query<Page>) -> Result<Json<Value>, ApiError> {
    let channels: Vec<Value> = p
        .billing
        .channels(&p)
        .await?
        .iter()
        .map(channel_json)
        .collect();
    Ok(Json(paginate(channels, &page)?))
}

async fn create_channel(
    Auth(p): Auth,
    ApiJson(body): ApiJson<ChannelBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (name, spec) = channel_spec(body)?;
    let c = p.billing.add_channel(&p, NewChannel { name, spec }).await?;
    Ok((StatusCode::CREATED, Json(channel_json(&c))))
}

async fn get_channel(Auth(p): Auth, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    Ok(Json(channel_json(&p.billing.channel(&p, &id).await?)))
}

async fn delete_channel(Auth(p): Auth, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    p.billing.remove_channel(&p, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn test_channel(Auth(p): Auth, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let event = p.billing.test_channel(&p, &id).await?;
    Ok(Json(json!({"sent": true, "event": event.id})))
}

async fn delivery_log(
    Auth(p): Auth,
    Query(params): Query<EventParams>,
) -> Result<Json<Value>, ApiError> {
    let log = p.billing.delivery_log(&p, params.limit()?).await?;
    Ok(Json(json!({"deliveries": log})))
}

async fn flush(Auth(p): Auth) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!(p.billing.flush_notifications(&p).await?)))
}
