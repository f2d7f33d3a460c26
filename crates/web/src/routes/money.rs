//! Money across currencies and months: exchange rates, provider invoices and reconciliation,
//! closed billing periods.

use axum::extract::Query;
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

async fn list(Auth(p): Auth, Query(params): Query<ListParams>) -> Result<Json<Value>, ApiError> {
    // Rates are public knowledge within the domain: any token may read them.
    Ok(Json(
        json!({"rates": p.billing.fx_rates(params.source.as_deref()).await?}),
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
    Auth(p): Auth,
    ApiJson(body): ApiJson<NewRate>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let rate = p
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

/// `/invoices` (GET ?period=YYYY-MM, POST one) and `/reconcile?period=YYYY-MM` (admin).
pub(crate) fn invoice_router() -> Router<AppState> {
    Router::new()
        .route("/invoices", get(list_invoices).post(add_invoice))
        .route(
            "/invoices/{account}/{period}/{currency}",
            axum::routing::delete(delete_invoice),
        )
        .route("/reconcile", get(reconcile))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PeriodParams {
    period: Option<String>,
}

async fn list_invoices(
    Auth(p): Auth,
    Query(params): Query<PeriodParams>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        json!({"invoices": p.billing.invoices(&p, params.period.as_deref()).await?}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewInvoiceBody {
    account: String,
    period: String,
    currency: String,
    invoice_id: String,
    /// A decimal string.
    total: String,
    issuer: Option<String>,
    tax: Option<String>,
}

async fn add_invoice(
    Auth(p): Auth,
    ApiJson(b): ApiJson<NewInvoiceBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let invoice = p
        .billing
        .add_invoice(
            &p,
            &cloudbill_service::NewInvoice {
                account: b.account,
                period: b.period,
                currency: b.currency,
                invoice_id: b.invoice_id,
                total: b.total,
                issuer: b.issuer,
                tax: b.tax,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(json!(invoice))))
}

/// `DELETE /invoices/{account}/{period}/{currency}`: the deleted invoice.
async fn delete_invoice(
    Auth(p): Auth,
    axum::extract::Path((account, period, currency)): axum::extract::Path<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!(
        p.billing
            .delete_invoice(&p, &account, &period, &currency)
            .await?
    )))
}

async fn reconcile(
    Auth(p): Auth,
    Query(params): Query<PeriodParams>,
) -> Result<Json<Value>, ApiError> {
    let period = params.period.ok_or_else(|| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            "period (YYYY-MM) is required",
        )
    })?;
    Ok(Json(json!(p.billing.reconcile(&p, &period).await?)))
}

/// `/periods` (closed months), `/periods/{period}` (a month: state, log, held),
/// `/periods/{period}/close`, `/periods/{period}/reopen` (`{"reason"}`), admin only.
pub(crate) fn period_router() -> Router<AppState> {
    Router::new()
        .route("/periods", get(closed_periods))
        .route("/periods/{period}", get(period))
        .route("/periods/{period}/close", axum::routing::post(close))
        .route("/periods/{period}/reopen", axum::routing::post(reopen))
}

async fn closed_periods(Auth(p): Auth) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({"closed": p.billing.closed_periods(&p).await?})))
}

async fn period(
    Auth(p): Auth,
    axum::extract::Path(period): axum::extract::Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!(p.billing.period(&p, &period).await?)))
}

async fn close(
    Auth(p): Auth,
    axum::extract::Path(period): axum::extract::Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!(p.billing.close_period(&p, &period).await?)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReopenBody {
    reason: String,
}

async fn reopen(
    Auth(p): Auth,
    axum::extract::Path(period): axum::extract::Path<String>,
    ApiJson(body): ApiJson<ReopenBody>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!(
        p.billing.reopen_period(&p, &period, &body.reason).await?
    )))
}
