//! `/api/openapi.json`: the OpenAPI 3.1 document, built from [`ROUTES`] — the same table the
//! server tests walk, so a route missing from the document (or documented but not served)
//! fails the build's tests. The table is `routes.rs` (data, one entry per route), the request
//! schemas and value formats `schemas.rs`; the builder is here.

use cloudbill_core::ProviderSpec;
use serde_json::{json, Map, Value};

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Any valid token (members see only their projects).
    Any,
    /// Admin tokens only.
    Admin,
    /// System-admin tokens only (domains; no billing data).
    System,
}

/// One documented route: method, path, summary, request body schema (if any), success status.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    /// HTTP method, lower case.
    pub method: &'static str,
    /// Path under the server root, with `{id}`-style parameters.
    pub path: &'static str,
    /// One-line summary.
    pub summary: &'static str,
    /// Name of the request body schema in `components.schemas`, if the route takes one.
    pub body: Option<&'static str>,
    /// Status of a successful answer.
    pub ok: u16,
    /// Who may call it.
    pub access: Access,
}

pub(super) const fn r(
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    body: Option<&'static str>,
    ok: u16,
    access: Access,
) -> Route {
    Route {
        method,
        path,
        summary,
        body,
        ok,
        access,
    }
}

mod routes;
mod schemas;

pub use routes::ROUTES;
use schemas::{formats, schemas};

/// A request body's optional fields take `null` as well (absent): every one is an `Option`
/// in the server's body types; lists and objects, which default to empty, do not.
fn nullable_optionals(schema: &mut Value) {
    let required: Vec<String> = schema["required"]
        .as_array()
        .map(|r| {
            r.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let Some(properties) = schema.get_mut("properties").and_then(Value::as_object_mut) else {
        return;
    };
    for (name, property) in properties.iter_mut() {
        if property.get("properties").is_some() {
            nullable_optionals(property);
        }
        let container = matches!(property["type"].as_str(), Some("array" | "object"));
        if !required.contains(name) && !container {
            *property = json!({"anyOf": [property.take(), {"type": "null"}]});
        }
    }
}

fn error_response(description: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
}

/// The query parameters of a route that takes them.
fn query_params(method: &str, path: &str) -> Vec<Value> {
    use formats::{day, group_key, month, name, non_negative};
    let q = |name: &str, required: bool, schema: Value| json!({"name": name, "in": "query", "required": required, "schema": schema});
    let mut params = Vec::new();
    if method == "delete" && path == "/api/v1/allocations/{id}" {
        // The first day without the rule.
        params.push(q("start", false, day()));
    }
    if method != "get" {
        return params;
    }
    let range = [q("start", true, day()), q("end", true, day())];
    match path {
        "/api/v1/billing/tags" => {
            params.extend(range);
            params.push(q("project", false, name()));
        }
        "/api/v1/export/focus" => {
            params.extend(range);
            params.push(q("project", false, name()));
            params.push(q(
                "format",
                false,
                json!({"type": "string", "enum": ["csv", "parquet"]}),
            ));
        }
        "/api/v1/billing/query" => {
            params.extend(range);
            params.extend([
                q("granularity", false, json!({"type": "string", "enum": ["DAILY", "MONTHLY", "YEARLY", "daily", "monthly", "yearly"]})),
                q("group_by", false, json!({"type": "string", "description": "comma-separated report keys",
                    "pattern": "^[a-z_]{1,32}(,[a-z_]{1,32}){0,7}$"})),
                q("sort", false, json!({"type": "string", "enum": ["total", "key"]})),
                q("limit", false, json!({"type": "integer", "minimum": 1, "maximum": 1_000_000})),
                q("offset", false, json!({"type": "integer", "minimum": 0, "maximum": 1_000_000_000})),
                q("allocated", false, json!({"type": "boolean", "description": "shared costs moved to their targets by the allocation rules"})),
            ]);
        }
        "/api/v1/anomalies" => {
            params.extend(range);
            params.extend([
                q("group_by", false, group_key()),
                q(
                    "direction",
                    false,
                    json!({"type": "string", "enum": ["spikes", "both"]}),
                ),
                q(
                    "state",
                    false,
                    json!({"type": "string", "enum": ["open", "all"]}),
                ),
                q("min_amount", false, non_negative()),
            ]);
        }
        "/api/v1/forecast" => params.extend([
            q(
                "period",
                false,
                json!({"type": "string", "enum": ["monthly", "quarterly", "yearly"]}),
            ),
            q("as_of", false, day()),
            q(
                "restate_days",
                false,
                json!({"type": "integer", "minimum": 0, "maximum": 31}),
            ),
            q("allocated", false, json!({"type": "boolean", "description": "with the shares the allocation rules move"})),
        ]),
        "/api/v1/budgets/status" | "/api/v1/budgets/{id}/status" => {
            params.push(q("period", false, month()));
        }
        "/api/v1/budgets/{id}/events" | "/api/v1/budget-events" | "/api/v1/notifications" => {
            params.push(q(
                "limit",
                false,
                json!({"type": "integer", "minimum": 1, "maximum": 10000}),
            ));
        }
        "/api/v1/anomaly-monitors/{id}/anomalies" => {
            params.push(q(
                "state",
                false,
                json!({"type": "string", "enum": ["open", "all"]}),
            ));
        }
        "/api/v1/invoices" => params.push(q("period", false, month())),
        "/api/v1/reconcile" => params.push(q("period", true, month())),
        "/api/v1/fx/rates" => params.push(q(
            "source",
            false,
            json!({"type": "string",
            "description": "only this source's rates (one that has none lists none)"}),
        )),
        _ => {}
    }
    params
}

/// The schema of a path parameter, by its name.
fn path_param(name: &str) -> Value {
    match name {
        "period" => formats::month(),
        "currency" => formats::currency(),
        // Provider names: a provider that does not exist is 404.
        "name" => json!({"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{0,63}$"}),
        _ => json!({"type": "string", "minLength": 1, "maxLength": 128,
            "pattern": "^[^\\s/\\u0000-\\u001f\\u007f-\\u009f]([^/\\u0000-\\u001f\\u007f-\\u009f]{0,126}[^\\s/\\u0000-\\u001f\\u007f-\\u009f])?$"}),
    }
}

/// The OpenAPI document.
pub fn document(providers: &[&ProviderSpec]) -> Value {
    let mut paths: Map<String, Value> = Map::new();
    for route in ROUTES {
        let mut op = Map::new();
        op.insert("summary".into(), json!(route.summary));
        op.insert(
            "operationId".into(),
            json!(format!(
                "{}{}",
                route.method,
                route.path.replace(['/', '{', '}', '-'], "_")
            )),
        );
        let params: Vec<Value> = route
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": path_param(name)}))
            .collect();
        let mut params = params;
        params.extend(query_params(route.method, route.path));
        if !params.is_empty() {
            op.insert("parameters".into(), Value::Array(params));
        }
        if let Some(schema) = route.body {
            op.insert("requestBody".into(), json!({"required": route.ok != 202,
                "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}}));
        }
        let ok = if route.path == "/api/v1/billing/query" {
            json!({"description": "the report", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Report"}}}})
        } else if route.path == "/api/v1/export/focus" {
            json!({"description": "the FOCUS file", "content": {
                "text/csv; charset=utf-8": {"schema": {"type": "string"}},
                "application/vnd.apache.parquet": {"schema": {"type": "string", "format": "binary"}}}})
        } else {
            json!({"description": "success"})
        };
        let mut responses = Map::new();
        responses.insert(route.ok.to_string(), ok);
        for (code, what) in [
            ("400", "malformed request"),
            ("401", "missing or invalid token"),
            ("403", "forbidden for this token (a system-admin token on a domain route, a member on an admin route, or the reverse)"),
            ("404", "unknown id"),
            ("409", "conflict (duplicate name, billing disabled)"),
            ("422", "semantically invalid"),
            ("502", "the provider (or, testing a channel, its receiver) failed"),
        ] {
            responses.insert(code.into(), error_response(what));
        }
        op.insert("responses".into(), Value::Object(responses));
        op.insert("security".into(), json!([{"bearer": []}, {"cookie": []}]));
        let entry = paths
            .entry(route.path.to_owned())
            .or_insert_with(|| json!({}));
        if let Some(obj) = entry.as_object_mut() {
            obj.insert(route.method.to_owned(), Value::Object(op));
        }
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "cloudbill", "version": env!("CARGO_PKG_VERSION"),
                 "description": "Multi-cloud billing: billing accounts, projects, syncs and exact cost reports. Amounts are decimal strings; ranges are start-inclusive, end-exclusive UTC days."},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": schemas(providers),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "an API token from `cloudbill token create` (its domain and role decide what it reaches)"},
                "cookie": {"type": "apiKey", "in": "cookie", "name": "cloudbill_token"}
            }
        }
    })
}
