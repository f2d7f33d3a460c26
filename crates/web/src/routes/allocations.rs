//! Shared-cost allocation rules (domain admins).

use std::collections::BTreeMap;

use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use cloudbill_core::{AllocationMethod, AllocationSpec, Decimal, NaiveDate};
use cloudbill_service::AllocationUpdate;
use serde::Deserialize;
use serde_json::{json, Value};

use super::ApiJson;
use crate::auth::Auth;
use crate::{ApiError, AppState};

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/allocations", get(list).post(create))
        .route("/allocations/{id}", get(one).patch(update).delete(delete))
}

/// `{"name", "source": {KEY: [VALUE]}, "target": KEY, "targets": [V], "method",
/// "weights": {V: "PERCENT"}, "priority", "start"}`.
/// A list or map that may be left out but, when given, is not `null` (the document's optional
/// scalars take `null` as absent; its lists and maps do not).
fn given<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleBody {
    name: String,
    source: BTreeMap<String, Vec<String>>,
    target: String,
    targets: Vec<String>,
    method: Option<AllocationMethod>,
    /// Target → percentage (decimal string).
    #[serde(default)]
    weights: BTreeMap<String, Decimal>,
    #[serde(default, deserialize_with = "cloudbill_service::integral")]
    priority: Option<u32>,
    start: Option<NaiveDate>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    name: Option<String>,
    source: Option<BTreeMap<String, Vec<String>>>,
    target: Option<String>,
    #[serde(default, deserialize_with = "given")]
    targets: Option<Vec<String>>,
    method: Option<AllocationMethod>,
    #[serde(default, deserialize_with = "given")]
    weights: Option<BTreeMap<String, Decimal>>,
    #[serde(default, deserialize_with = "cloudbill_service::integral")]
    priority: Option<u32>,
    start: Option<NaiveDate>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeleteParams {
    /// First day without the rule.
    start: Option<NaiveDate>,
}

fn invalid(message: String) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message)
}

/// The weights in the targets' order: one per target, none other.
fn ordered(
    mut weights: BTreeMap<String, Decimal>,
    targets: &[String],
) -> Result<Vec<Decimal>, ApiError> {
    let mut out = Vec::with_capacity(targets.len());
    for t in targets {
        out.push(
            weights
                .remove(t)
                .ok_or_else(|| invalid(format!("weights: no weight for target {t:?}")))?,
        );
    }
    if let Some(extra) = weights.keys().next() {
        return Err(invalid(format!(
            "weights: {extra:?} is not one of the targets"
        )));
    }
    Ok(out)
}

async fn list(Auth(p): Auth) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        json!({"allocations": p.billing.allocation_rules(&p).await?}),
    ))
}

async fn one(Auth(p): Auth, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!(p.billing.allocation_rule(&p, &id).await?)))
}

async fn create(
    Auth(p): Auth,
    ApiJson(body): ApiJson<RuleBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let method = body.method.unwrap_or(AllocationMethod::Proportional);
    let weights = if body.weights.is_empty() && method != AllocationMethod::Fixed {
        Vec::new()
    } else {
        ordered(body.weights, &body.targets)?
    };
    let spec = AllocationSpec {
        source: body.source,
        target: body.target,
        targets: body.targets,
        method,
        weights,
        priority: body.priority.unwrap_or(100),
    };
    let rule = p
        .billing
        .create_allocation(&p, &p.actor, &body.name, spec, body.start)
        .await?;
    Ok((StatusCode::CREATED, Json(json!(rule))))
}

async fn update(
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateBody>,
) -> Result<Json<Value>, ApiError> {
    let weights = match (body.weights, &body.targets) {
        (None, _) => None,
        (Some(w), Some(targets)) => Some(ordered(w, targets)?),
        (Some(_), None) => {
            return Err(invalid(
                "weights go with targets (the weights follow the targets' order)".into(),
            ))
        }
    };
    let change = AllocationUpdate {
        name: body.name,
        source: body.source,
        target: body.target,
        targets: body.targets,
        method: body.method,
        weights,
        priority: body.priority,
    };
    let rule = p
        .billing
        .update_allocation(&p, &p.actor, &id, change, body.start)
        .await?;
    Ok(Json(json!(rule)))
}

async fn delete(
    Auth(p): Auth,
    Path(id): Path<String>,
    Query(params): Query<DeleteParams>,
) -> Result<Json<Value>, ApiError> {
    let rule = p
        .billing
        .delete_allocation(&p, &p.actor, &id, params.start)
        .await?;
    Ok(Json(json!(rule)))
}
