//! Project groups and projects.

use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use cloudbill_core::{Project, ProjectGroup};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{paginate, ApiJson, Page};
use crate::auth::Auth;
use crate::{ApiError, AppState};

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/project-groups", get(list_groups).post(create_group))
        .route("/projects", get(list_projects).post(create_project))
        .route("/projects/{id}", get(get_project).delete(delete_project))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewGroup {
    name: String,
    parent: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewProject {
    name: String,
    group: Option<String>,
}

fn group_json(g: &ProjectGroup) -> Value {
    json!({"id": g.id.to_string(), "name": g.name.as_str(), "parent_id": g.parent.map(|p| p.to_string()), "created_at": g.created_at.to_rfc3339()})
}

pub(crate) fn project_json(p: &Project) -> Value {
    json!({"id": p.id.to_string(), "name": p.name.as_str(), "group_id": p.group.map(|g| g.to_string()), "created_at": p.created_at.to_rfc3339()})
}

async fn list_groups(Auth(p): Auth, Query(page): Query<Page>) -> Result<Json<Value>, ApiError> {
    let groups: Vec<Value> = p.billing.groups(&p).await?.iter().map(group_json).collect();
    Ok(Json(paginate(groups, &page)?))
}

async fn create_group(
    Auth(p): Auth,
    ApiJson(body): ApiJson<NewGroup>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let g = p
        .billing
        .create_group(&p, &body.name, body.parent.as_deref())
        .await?;
    Ok((StatusCode::CREATED, Json(group_json(&g))))
}

async fn list_projects(Auth(p): Auth, Query(page): Query<Page>) -> Result<Json<Value>, ApiError> {
    let projects: Vec<Value> = p
        .billing
        .projects(&p)
        .await?
        .iter()
        .map(project_json)
        .collect();
    Ok(Json(paginate(projects, &page)?))
}

async fn create_project(
    Auth(p): Auth,
    ApiJson(body): ApiJson<NewProject>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let project = p
        .billing
        .create_project(&p, &body.name, body.group.as_deref())
        .await?;
    Ok((StatusCode::CREATED, Json(project_json(&project))))
}

async fn get_project(Auth(p): Auth, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    Ok(Json(project_json(&p.billing.project(&p, &id).await?)))
}

async fn delete_project(Auth(p): Auth, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    p.billing.delete_project(&p, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
