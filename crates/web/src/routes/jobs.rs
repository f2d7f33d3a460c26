//! Sync and import jobs.

use axum::extract::{Path, Query};
use axum::routing::get;
use axum::{Json, Router};
use cloudbill_service::JobView;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::Auth;
use crate::{ApiError, AppState};

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/jobs", get(list))
        .route("/jobs/{id}", get(show))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JobsQuery {
    account: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

pub(crate) fn job_json(v: &JobView) -> Value {
    let j = &v.job;
    json!({
        "id": j.id.to_string(), "account": v.account_name, "account_id": j.account.to_string(),
        "kind": j.kind.as_str(), "state": j.state.as_str(),
        "start": j.window.start().to_string(), "end": j.window.end().to_string(), "rows": v.rows,
        "changed_days": j.changed_days.iter().map(|c| json!({"date": c.date.to_string(), "currency": c.currency.as_str(),
            "old_total": c.old_total.to_string(), "new_total": c.new_total.to_string()})).collect::<Vec<_>>(),
        "error": j.error, "started_at": j.started_at.to_rfc3339(), "finished_at": j.finished_at.map(|t| t.to_rfc3339()),
    })
}

async fn list(Auth(p): Auth, Query(q): Query<JobsQuery>) -> Result<Json<Value>, ApiError> {
    let jobs = p.billing.jobs(&p, q.account.as_deref(), 10_000).await?;
    let items: Vec<Value> = jobs.iter().map(job_json).collect();
    let page = super::Page {
        limit: q.limit,
        cursor: q.cursor,
    };
    Ok(Json(super::paginate(items, &page)?))
}

async fn show(Auth(p): Auth, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    Ok(Json(job_json(&p.billing.job(&p, &id).await?)))
}
