//! `/api/openapi.json`: the OpenAPI 3.1 document, built from [`ROUTES`] — the same table the
//! server tests walk, so a route missing from the document (or documented but not served)
//! fails the build's tests. One file on purpose: most of it is that table (data, one entry per
//! route), and the schemas and the builder beside it are read with it when a route changes.

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

const fn r(
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

/// Every API route.
pub const ROUTES: &[Route] = &[
    r(
        "get",
        "/api/v1/domains",
        "List domains (system admin)",
        None,
        200,
        Access::System,
    ),
    r(
        "post",
        "/api/v1/domains",
        "Create a domain and its first admin token (system admin)",
        Some("NewDomain"),
        201,
        Access::System,
    ),
    r(
        "post",
        "/api/v1/domains/{id}/disable",
        "Disable a domain: its tokens are refused, its data kept (system admin)",
        None,
        200,
        Access::System,
    ),
    r(
        "post",
        "/api/v1/domains/{id}/enable",
        "Enable a disabled domain (system admin)",
        None,
        200,
        Access::System,
    ),
    r(
        "get",
        "/api/v1/billing",
        "Billing status of the domain",
        None,
        200,
        Access::Any,
    ),
    r(
        "post",
        "/api/v1/billing/enable",
        "Turn billing on",
        None,
        200,
        Access::Admin,
    ),
    r(
        "post",
        "/api/v1/billing/disable",
        "Turn billing off (data is kept)",
        None,
        200,
        Access::Admin,
    ),
    r(
        "get",
        "/api/v1/providers",
        "List providers",
        None,
        200,
        Access::Admin,
    ),
    r(
        "post",
        "/api/v1/providers/{name}/enable",
        "Enable a provider",
        None,
        200,
        Access::Admin,
    ),
    r(
        "post",
        "/api/v1/providers/{name}/disable",
        "Disable a provider",
        None,
        200,
        Access::Admin,
    ),
    r(
        "get",
        "/api/v1/project-groups",
        "List project groups",
        None,
        200,
        Access::Admin,
    ),
    r(
        "post",
        "/api/v1/project-groups",
        "Create a project group",
        Some("NewGroup"),
        201,
        Access::Admin,
    ),
    r(
        "get",
        "/api/v1/projects",
        "List the projects the caller may see",
        None,
        200,
        Access::Any,
    ),
    r(
        "post",
        "/api/v1/projects",
        "Create a project",
        Some("NewProject"),
        201,
        Access::Admin,
    ),
    r(
        "get",
        "/api/v1/projects/{id}",
        "Get a project",
        None,
        200,
        Access::Any,
    ),
    r(
        "delete",
        "/api/v1/projects/{id}",
        "Delete a project no account was ever assigned to",
        None,
        204,
        Access::Admin,
    ),
    r(
        "get",
        "/api/v1/service-accounts",
        "List billing accounts (credentials are never returned)",
        None,
        200,
        Access::Any,
    ),
    r(
        "post",
        "/api/v1/service-accounts",
        "Register a billing account (credentials are write-only)",
        Some("NewServiceAccount"),
        201,
        Access::Admin,
    ),
    r(
        "get",
        "/api/v1/service-accounts/{id}",
        "Get a billing account with its project history",
        None,
        200,
        Access::Any,
    ),
    r(
        "delete",
        "/api/v1/service-accounts/{id}",
        "Remove a billing account and its cost data",
        None,
        204,
        Access::Admin,
    ),
    r(
        "post",
        "/api/v1/service-accounts/{id}/move",
        "Move an account to another project (from a date, or its whole history)",
        Some("MoveAccount"),
        200,
        Access::Admin,
    ),
    r(
        "post",
        "/api/v1/service-accounts/{id}/enable",
        "Enable an account",
        None,
        200,
        Access::Admin,
    ),
    r(
        "post",
        "/api/v1/service-accounts/{id}/disable",
        "Disable an account",
        None,
        200,
        Access::Admin,
    ),
    r(
        "post",
        "/api/v1/service-accounts/{id}/verify",
        "Check the account's credentials with the provider",
        None,
        200,
        Access::Admin,
    ),
    r(
        "post",
        "/api/v1/service-accounts/{id}/sync",
        "Start syncing one account; returns its job id at once",
        Some("SyncRequest"),
        202,
        Access::Admin,
    ),
    r(
        "post",
        "/api/v1/sync",
        "Start syncing every enabled account (or the listed ones); returns job ids at once",
        Some("SyncRequest"),
        202,
        Access::Admin,
    ),
    r(
        "get",
        "/api/v1/jobs",
        "Sync and import jobs, newest first",
        None,
        200,
        Access::Any,
    ),
    r(
        "get",
        "/api/v1/jobs/{id}",
        "One job with its restatement audit",
        None,
        200,
        Access::Any,
    ),
    r(
        "post",
        "/api/v1/billing/query",
        "Report query: exact sums by time bucket and group",
        Some("BillingQuery"),
        200,
        Access::Any,
    ),
    r(
        "get",
        "/api/v1/billing/query",
        "Report query with query parameters (filter.KEY=a,b)",
        None,
        200,
        Access::Any,
    ),
    r(
        "get",
        "/api/v1/billing/tags",
        "Tag keys of the costs in a range, with their values and record counts",
        None,
        200,
        Access::Any,
    ),
    r(
        "get",
        "/api/v1/anomalies",
        "Cost anomalies of a range split by one dimension, each with its top contributors (docs/ANOMALIES.md)",
        None,
        200,
        Access::Any,
    ),
    r(
        "get",
        "/api/v1/forecast",
        "Period-end spend forecast per currency with an 80% interval (docs/FORECAST.md); filter.KEY=a,b scopes it",
        None,
        200,
        Access::Any,
    ),
    r(
        "get",
        "/api/v1/export/focus",
        "The costs of a range as a FOCUS 1.2 file: CSV, or Parquet with format=parquet (a member names one of its projects)",
        None,
        200,
        Access::Any,
    ),
    r(
        "get",
        "/api/v1/budgets",
        "List the budgets the caller may see (members: their projects' budgets)",
        None,
        200,
        Access::Any,
    ),
    r(
        "post",
        "/api/v1/budgets",
        "Create a budget (members: of their own projects); evaluated at once",
        Some("NewBudget"),
        201,
        Access::Any,
    ),
    r(
        "get",
        "/api/v1/budgets/status",
        "Every visible budget's status for the current period (or ?period=YYYY-MM)",
        None,
        200,
        Access::Any,
    ),
    r(
        "get",
        "/api/v1/budgets/{id}",
        "One budget",
        None,
        200,
        Access::Any,
    ),
    r(
        "put",
        "/api/v1/budgets/{id}",
        "Replace a budget's definition (same id); its thresholds are judged afresh",
        Some("NewBudget"),
        200,
        Access::Any,
    ),
    r(
        "delete",
        "/api/v1/budgets/{id}",
        "Delete a budget (its events are kept)",
        None,
        204,
        Access::Any,
    ),
    r(
        "get",
        "/api/v1/budgets/{id}/status",
        "A budget's actual, forecast and notification states for the current period (or ?period=YYYY-MM)",
        None,
        200,
        Access::Any,
    ),
    r(
        "get",
        "/api/v1/budgets/{id}/events",
        "A budget's threshold crossings and clearings, newest first",
        None,
        200,
        Access::Any,
    ),
    r(
        "get",
        "/api/v1/budget-events",
        "Every visible budget's events, newest first",
        None,
        200,
        Access::Any,
    ),
    r(
        "get",
        "/api/v1/channels",
        "List notification channels (members: names and kinds only)",
        None,
        200,
        Access::Any,
    ),
    r(
        "post",
        "/api/v1/channels",
        "Add a notification channel: webhook (signed), Slack or e-mail",
        Some("NewChannel"),
        201,
        Access::Admin,
    ),
    r(
        "get",
        "/api/v1/channels/{id}",
        "One channel (its secret is never returned)",
        None,
        200,
        Access::Any,
    ),
    r(
        "delete",
        "/api/v1/channels/{id}",
        "Remove a channel no budget uses",
        None,
        204,
        Access::Admin,
    ),
    r(
        "post",
        "/api/v1/channels/{id}/test",
        "Send a test message to a channel now",
        None,
        200,
        Access::Admin,
    ),
    r(
        "get",
        "/api/v1/notifications",
        "The delivery log (outbox), newest first",
        None,
        200,
        Access::Admin,
    ),
    r(
        "post",
        "/api/v1/notifications/flush",
        "Deliver every due notification now",
        None,
        200,
        Access::Admin,
    ),
    r(
        "get",
        "/api/v1/anomaly-monitors",
        "List anomaly monitors (members: their projects')",
        None,
        200,
        Access::Any,
    ),
    r(
        "post",
        "/api/v1/anomaly-monitors",
        "Create an anomaly monitor (run at once)",
        Some("NewMonitor"),
        201,
        Access::Any,
    ),
    r(
        "post",
        "/api/v1/anomaly-monitors/run",
        "Run every monitor now",
        None,
        200,
        Access::Admin,
    ),
    r(
        "get",
        "/api/v1/anomaly-monitors/{id}",
        "One monitor",
        None,
        200,
        Access::Any,
    ),
    r(
        "delete",
        "/api/v1/anomaly-monitors/{id}",
        "Delete a monitor and its anomalies (their events are kept)",
        None,
        204,
        Access::Any,
    ),
    r(
        "get",
        "/api/v1/anomaly-monitors/{id}/anomalies",
        "The anomalies a monitor keeps (?state=open|all), explained",
        None,
        200,
        Access::Any,
    ),
    r(
        "post",
        "/api/v1/anomalies/{id}/ack",
        "Acknowledge an anomaly",
        None,
        200,
        Access::Any,
    ),
    r(
        "post",
        "/api/v1/anomalies/{id}/ignore",
        "Ignore an anomaly",
        None,
        200,
        Access::Any,
    ),
    r(
        "get",
        "/api/v1/fx/rates",
        "Stored exchange rates (?source=NAME)",
        None,
        200,
        Access::Any,
    ),
    r(
        "post",
        "/api/v1/fx/rates",
        "Set one exchange rate (admin)",
        Some("NewRate"),
        201,
        Access::Admin,
    ),
    r(
        "get",
        "/api/v1/invoices",
        "Provider invoices (?period=YYYY-MM)",
        None,
        200,
        Access::Admin,
    ),
    r(
        "post",
        "/api/v1/invoices",
        "Add one provider invoice",
        Some("NewInvoice"),
        201,
        Access::Admin,
    ),
    r(
        "delete",
        "/api/v1/invoices/{account}/{period}/{currency}",
        "Delete one provider invoice (account name or id, YYYY-MM, currency); returns it",
        None,
        200,
        Access::Admin,
    ),
    r(
        "get",
        "/api/v1/reconcile",
        "A month's invoices against the stored BilledCost per account and currency (?period=YYYY-MM)",
        None,
        200,
        Access::Admin,
    ),
    r(
        "get",
        "/api/v1/periods",
        "The closed billing months",
        None,
        200,
        Access::Admin,
    ),
    r(
        "get",
        "/api/v1/periods/{period}",
        "A month (YYYY-MM): open or closed, its log, the restatements held off it",
        None,
        200,
        Access::Admin,
    ),
    r(
        "post",
        "/api/v1/periods/{period}/close",
        "Close a month: syncs and imports keep its records and hold their restatements",
        None,
        200,
        Access::Admin,
    ),
    r(
        "post",
        "/api/v1/periods/{period}/reopen",
        "Reopen a closed month with a reason; the next sync applies what was held",
        Some("Reopen"),
        200,
        Access::Admin,
    ),
];

fn schemas() -> Value {
    let string = json!({"type": "string"});
    let date = json!({"type": "string", "format": "date"});
    let amount = json!({"type": "string", "pattern": "^-?[0-9]+(\\.[0-9]+)?$", "description": "exact decimal amount"});
    let mut all = json!({
        "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "object",
            "required": ["code", "message"], "properties": {"code": string, "message": string, "details": {}}}}},
        "NewGroup": {"type": "object", "required": ["name"], "additionalProperties": false,
            "properties": {"name": string, "parent": string}},
        "NewProject": {"type": "object", "required": ["name"], "additionalProperties": false,
            "properties": {"name": string, "group": string}},
        "NewServiceAccount": {"type": "object", "required": ["name", "project"], "additionalProperties": false,
            "properties": {"name": string, "provider": {"type": "string", "enum": ["hyperbilling-aws", "file"]},
                "project": string, "verify": {"type": "boolean"},
                "credentials": {"type": "object", "required": ["email", "key"], "additionalProperties": false,
                    "properties": {"account": string, "email": string, "key": {"type": "string", "writeOnly": true}, "endpoint": string}}}},
        "MoveAccount": {"type": "object", "required": ["project"], "additionalProperties": false,
            "properties": {"project": string, "from": date}},
        "SyncRequest": {"type": "object", "additionalProperties": false,
            "properties": {"accounts": {"type": "array", "items": string}, "start": date, "end": date}},
        "BillingQuery": {"type": "object", "required": ["start", "end"], "additionalProperties": false,
            "properties": {"start": date, "end": {"type": "string", "format": "date", "description": "exclusive"},
                "granularity": {"type": "string", "enum": ["DAILY", "MONTHLY", "YEARLY", "daily", "monthly", "yearly"]},
                "group_by": {"type": "array", "items": string},
                "filters": {"type": "object", "additionalProperties": {"type": "array", "items": string}},
                "sort": {"type": "string", "enum": ["total", "key"]}, "limit": {"type": "integer", "minimum": 1},
                "offset": {"type": "integer", "minimum": 0},
                "metric": {"type": "string", "enum": ["billed", "effective"]},
                "currency": {"type": "string", "pattern": "^[A-Za-z]{3}$", "description": "convert every amount to this currency (stated rates)"},
                "fx_policy": {"type": "string", "pattern": "^(daily|period-end|fixed:.+)$"}}},
        "NewInvoice": {"type": "object", "required": ["account", "period", "currency", "invoice_id", "total"], "additionalProperties": false,
            "properties": {"account": string, "period": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}$"}, "currency": string,
                "invoice_id": string, "total": amount, "issuer": string, "tax": amount}},
        "Reopen": {"type": "object", "required": ["reason"], "additionalProperties": false,
            "properties": {"reason": {"type": "string", "minLength": 1, "maxLength": 500}}},
        "NewRate": {"type": "object", "required": ["date", "base", "quote", "rate"], "additionalProperties": false,
            "properties": {"date": date, "base": string, "quote": string, "rate": amount, "source": string}},
        "NewBudget": {"type": "object", "required": ["name", "amount", "currency", "notifications"], "additionalProperties": false,
            "properties": {"name": string, "amount": amount, "currency": {"type": "string", "pattern": "^[A-Za-z]{3}$"},
                "period": {"type": "string", "enum": ["monthly", "quarterly", "yearly"]},
                "project": string, "project_group": string, "account": string,
                "filters": {"type": "object", "additionalProperties": {"type": "array", "items": string}},
                "metric": {"type": "string", "enum": ["billed", "effective"]},
                "notifications": {"type": "array", "maxItems": 10, "items": {"oneOf": [
                    {"type": "string", "description": "actual:P%, forecast:P%, actual:AMOUNT or forecast:AMOUNT"},
                    {"type": "object", "required": ["threshold"], "additionalProperties": false,
                        "properties": {"threshold": string, "channels": {"type": "array", "items": string}}}]}},
                "channels": {"type": "array", "items": string, "description": "channels of the notifications that name none"}}},
        "NewMonitor": {"type": "object", "required": ["name"], "additionalProperties": false,
            "properties": {"name": string, "project": string, "project_group": string, "account": string,
                "filters": {"type": "object", "additionalProperties": {"type": "array", "items": string}},
                "dimension": string, "z": amount, "min_amount": amount, "min_percent": amount,
                "direction": {"type": "string", "enum": ["spikes", "both"]},
                "channels": {"type": "array", "items": string}}},
        "NewChannel": {"type": "object", "required": ["name"], "additionalProperties": false,
            "description": "exactly one of webhook, slack, email",
            "properties": {"name": string, "webhook": {"type": "string", "format": "uri"},
                "secret": {"type": "string", "writeOnly": true, "minLength": 16},
                "slack": {"type": "string", "format": "uri", "writeOnly": true},
                "email": {"type": "string", "format": "email"}, "smtp": {"type": "string", "description": "HOST:PORT"},
                "smtp_security": {"type": "string", "enum": ["starttls", "none"]},
                "smtp_user": string, "smtp_password": {"type": "string", "writeOnly": true}}},
        "Report": {"type": "object", "required": ["start", "end", "granularity", "group_by", "results", "total_count"],
            "properties": {"start": date, "end": date, "granularity": string, "group_by": {"type": "array", "items": string},
                "total_count": {"type": "integer"},
                "results": {"type": "array", "items": {"type": "object", "properties": {
                    "group": {"type": "object", "additionalProperties": string},
                    "billing_data": {"type": "array", "items": {"type": "object", "properties": {"date": string, "cost": amount, "currency": string}}},
                    "total": {"type": "array", "items": {"type": "object", "properties": {"cost": amount, "currency": string}}}}}}}},
    });
    all["NewDomain"] = json!({"type": "object", "required": ["name"], "additionalProperties": false,
        "properties": {"name": string, "label": string}});
    all
}

fn error_response(description: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
}

/// The query parameters of a GET route that takes them.
fn query_params(path: &str) -> Vec<Value> {
    let mut params = Vec::new();
    if path == "/api/v1/billing/tags" || path == "/api/v1/export/focus" {
        let date = json!({"type": "string", "format": "date"});
        params.extend([
            json!({"name": "start", "in": "query", "required": true, "schema": date}),
            json!({"name": "end", "in": "query", "required": true, "schema": date}),
            json!({"name": "project", "in": "query", "required": false, "schema": {"type": "string"}}),
        ]);
    }
    if path == "/api/v1/anomalies" {
        let date = json!({"type": "string", "format": "date"});
        params.extend([
            json!({"name": "start", "in": "query", "required": true, "schema": date}),
            json!({"name": "end", "in": "query", "required": true, "schema": date}),
            json!({"name": "group_by", "in": "query", "required": false, "schema": {"type": "string"}}),
            json!({"name": "direction", "in": "query", "required": false,
                "schema": {"type": "string", "enum": ["spikes", "both"]}}),
            json!({"name": "state", "in": "query", "required": false,
                "schema": {"type": "string", "enum": ["open", "all"]}}),
        ]);
    }
    if path == "/api/v1/forecast" {
        params.extend([
            json!({"name": "period", "in": "query", "required": false,
                "schema": {"type": "string", "enum": ["monthly", "quarterly", "yearly"]}}),
            json!({"name": "as_of", "in": "query", "required": false,
                "schema": {"type": "string", "format": "date"}}),
            json!({"name": "restate_days", "in": "query", "required": false,
                "schema": {"type": "integer", "minimum": 0, "maximum": 31}}),
        ]);
    }
    if path.starts_with("/api/v1/budgets") && path.ends_with("/status") {
        params.push(json!({"name": "period", "in": "query", "required": false,
            "schema": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}$"}}));
    }
    if path.ends_with("/events")
        || path == "/api/v1/budget-events"
        || path == "/api/v1/notifications"
    {
        params.push(json!({"name": "limit", "in": "query", "required": false,
            "schema": {"type": "integer", "minimum": 1, "maximum": 10000}}));
    }
    if path == "/api/v1/anomaly-monitors/{id}/anomalies" {
        params.push(json!({"name": "state", "in": "query", "required": false,
            "schema": {"type": "string", "enum": ["open", "all"]}}));
    }
    if path == "/api/v1/invoices" || path == "/api/v1/reconcile" {
        params.push(
            json!({"name": "period", "in": "query", "required": path == "/api/v1/reconcile",
            "schema": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}$"}}),
        );
    }
    if path == "/api/v1/fx/rates" {
        params.push(json!({"name": "source", "in": "query", "required": false, "schema": {"type": "string"}}));
    }
    if path == "/api/v1/export/focus" {
        params.push(json!({"name": "format", "in": "query", "required": false,
            "schema": {"type": "string", "enum": ["csv", "parquet"]}}));
    }
    params
}

/// The OpenAPI document.
pub fn document() -> Value {
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
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        let mut params = params;
        params.extend(query_params(route.path));
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
            ("502", "the provider failed"),
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
            "schemas": schemas(),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "an API token from `cloudbill token create` (its domain and role decide what it reaches)"},
                "cookie": {"type": "apiKey", "in": "cookie", "name": "cloudbill_token"}
            }
        }
    })
}
