//! `/api/openapi.json`: the OpenAPI 3.1 document, built from [`ROUTES`] — the same table the
//! server tests walk, so a route missing from the document (or documented but not served)
//! fails the build's tests. One file on purpose: most of it is that table (data, one entry per
//! route), and the schemas and the builder beside it are read with it when a route changes.

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
        "get",
        "/api/v1/providers/{name}",
        "One provider: its title, state and the settings an account gives it",
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
        "patch",
        "/api/v1/service-accounts/{id}",
        "Change an account's settings and secrets (each one given replaces the account's)",
        Some("UpdateServiceAccount"),
        200,
        Access::Admin,
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
        Some("SyncRange"),
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

/// The value formats the server accepts, said once for the schemas and the parameters: a
/// value that fits these is taken (or answered 404 when it names nothing, 409 when it
/// conflicts); the rules JSON Schema cannot say (a range's end after its start, base and
/// quote two currencies) are listed in `.ci/api-fuzz`.
mod formats {
    use serde_json::{json, Value};

    /// A day cloudbill takes: `YYYY-MM-DD`, 1970 to 2099.
    pub(super) fn day() -> Value {
        json!({"type": "string", "format": "date",
            "pattern": "^(19[7-9][0-9]|20[0-9][0-9])-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"})
    }

    /// A month: `YYYY-MM`, 1970-01 to 2099-12.
    pub(super) fn month() -> Value {
        json!({"type": "string", "pattern": "^(19[7-9][0-9]|20[0-9][0-9])-(0[1-9]|1[0-2])$"})
    }

    /// A secret: any text with something besides spaces (it is trimmed), at least `min`
    /// characters once trimmed (a webhook's signing secret: 16).
    pub(super) fn secret(min: u32) -> Value {
        let pattern = if min <= 1 {
            "^\\s*\\S".to_owned()
        } else {
            format!("^\\s*\\S[\\s\\S]{{{}}}\\S", min - 2)
        };
        json!({"type": "string", "writeOnly": true, "pattern": pattern})
    }

    /// The format of a provider's setting, as [`cloudbill_core::SettingSpec::check`] takes it.
    pub(super) fn setting(spec: &cloudbill_core::SettingSpec) -> Value {
        use cloudbill_core::SettingKind;
        let url = cloudbill_core::net::URL_PATTERN
            .trim_start_matches('^')
            .trim_end_matches('$');
        let mut schema = match spec.kind {
            SettingKind::Text => text(1024),
            SettingKind::Url => json!({"type": "string", "maxLength": 2048,
                "pattern": format!("^\\s*{url}\\s*$")}),
            SettingKind::Digits => json!({"type": "string", "pattern": "^\\s*[0-9]{1,32}\\s*$"}),
            SettingKind::Email => json!({"type": "string", "maxLength": 254,
                "pattern": "^\\s*[^\\s@]*@[^\\s@]*\\s*$"}),
            SettingKind::Json => {
                json!({"type": "string", "maxLength": 65536, "description": "a JSON object"})
            }
            SettingKind::OneOf(words) => json!({"type": "string", "enum": words}),
        };
        if spec.secret {
            schema["writeOnly"] = json!(true);
        }
        schema["description"] = json!(spec.description);
        schema
    }

    /// A name: 1 to 128 characters once trimmed, no control characters.
    pub(super) fn name() -> Value {
        text(128)
    }

    /// Text of 1 to `max` characters once trimmed (surrounding space is dropped), no control
    /// characters.
    pub(super) fn text(max: u32) -> Value {
        let edge = "[^\\s\\u0000-\\u001f\\u007f-\\u009f]";
        let inner = "[^\\u0000-\\u001f\\u007f-\\u009f]";
        json!({"type": "string", "description": format!("1 to {max} characters (surrounding space dropped), no control characters"),
            "pattern": format!("^\\s*{edge}({inner}{{0,{}}}{edge})?\\s*$", max.saturating_sub(2))})
    }

    /// An ISO 4217 currency code.
    pub(super) fn currency() -> Value {
        json!({"type": "string", "enum": cloudbill_core::Currency::codes().collect::<Vec<_>>()})
    }

    /// An exact amount a person enters: below 10^18 in magnitude, at most 10 decimals.
    pub(super) fn amount() -> Value {
        json!({"type": "string", "pattern": "^-?(0|[1-9][0-9]{0,17})(\\.[0-9]{1,10})?$",
            "description": "exact decimal amount"})
    }

    /// An amount of at least 0.01 (a budget's).
    pub(super) fn budget_amount() -> Value {
        json!({"type": "string", "description": "exact decimal, 0.01 to below 10^18, at most 10 decimals",
            "pattern": "^([1-9][0-9]{0,17}(\\.[0-9]{1,10})?|0\\.(0[1-9][0-9]{0,8}|[1-9][0-9]{0,9}))$"})
    }

    /// An amount of 0 or more.
    pub(super) fn non_negative() -> Value {
        json!({"type": "string", "pattern": "^(0|[1-9][0-9]{0,17})(\\.[0-9]{1,10})?$"})
    }

    /// A rate: above 0, below 10^18.
    pub(super) fn rate() -> Value {
        json!({"type": "string", "description": "units of quote per base, above 0",
            "pattern": "^(?!0+(\\.0*)?$)(0|[1-9][0-9]{0,17})(\\.[0-9]{1,20})?$"})
    }

    /// A budget threshold: `actual:P%` / `forecast:P%` (0.01 to 1000, two decimals) or an
    /// amount above 0.
    pub(super) fn threshold() -> Value {
        json!({"type": "string", "description": "actual:P%, forecast:P%, actual:AMOUNT or forecast:AMOUNT",
            "pattern": "^(actual|forecast):(([1-9][0-9]{0,2}(\\.[0-9]{1,2})?|1000|0\\.(0[1-9]|[1-9][0-9]?))%|[1-9][0-9]{0,17}(\\.[0-9]{1,10})?|0\\.(?!0+$)[0-9]{1,10})$"})
    }

    /// A report key: a dimension or `tag:KEY`.
    pub(super) fn group_key() -> Value {
        let keys: Vec<&str> = cloudbill_service::GroupKey::ALL
            .iter()
            .map(cloudbill_service::GroupKey::as_str)
            .collect();
        json!({"anyOf": [{"type": "string", "enum": keys},
            {"type": "string", "pattern": "^tag:[^\\u0000-\\u001f\\u007f-\\u009f]{1,256}$"}]})
    }

    /// Report filters: a key to the values (names or ids) it keeps.
    pub(super) fn filters() -> Value {
        json!({"type": "object", "maxProperties": 16, "propertyNames": {"anyOf": [
                {"enum": cloudbill_service::GroupKey::ALL.iter().map(cloudbill_service::GroupKey::as_str).collect::<Vec<_>>()},
                {"pattern": "^tag:[^\\u0000-\\u001f\\u007f-\\u009f]{1,256}$"}]},
            "additionalProperties": {"type": "array", "minItems": 1, "maxItems": 100, "items": text(256)}})
    }

    /// An http(s) URL.
    pub(super) fn url() -> Value {
        // No `format: uri`: the pattern is the rule (a `%` not followed by two hex digits is
        // taken as the text it is, as the server's URL parser does).
        json!({"type": "string", "maxLength": 2048,
            "description": "an http(s) URL: a host name (letters, digits, '.', '-'), a port, a path; no user, query or fragment",
            "pattern": cloudbill_core::net::URL_PATTERN})
    }

    /// An e-mail address as the server checks it: one `@` between non-empty parts, no
    /// spaces, controls or `<>,;"`.
    pub(super) fn email() -> Value {
        json!({"type": "string", "maxLength": 254,
            "pattern": "^[^@\\s\\u0000-\\u001f\\u007f-\\u009f<>,;\"]+@[^@\\s\\u0000-\\u001f\\u007f-\\u009f<>,;\"]+$"})
    }
}

#[allow(clippy::too_many_lines)] // Data: one entry per request schema, read with the route table.
fn schemas(providers: &[&ProviderSpec]) -> Value {
    use formats::secret;
    use formats::{
        amount, budget_amount, currency, day, email, filters, group_key, month, name, non_negative,
        rate, text, threshold, url,
    };
    let string = json!({"type": "string"});
    let shown_amount = json!({"type": "string", "pattern": "^-?[0-9]+(\\.[0-9]+)?$", "description": "exact decimal amount"});
    let at_most_one_scope = json!({"anyOf": [
        {"required": ["project", "project_group"]}, {"required": ["project", "account"]},
        {"required": ["project_group", "account"]}]});
    let mut all = serde_json::Map::new();
    all.insert("Error".into(), json!({"type": "object", "required": ["error"], "properties": {"error": {"type": "object",
            "required": ["code", "message"], "properties": {"code": string, "message": string, "details": {}}}}}));
    all.insert(
        "NewGroup".into(),
        json!({"type": "object", "required": ["name"], "additionalProperties": false,
            "properties": {"name": name(), "parent": name()}}),
    );
    all.insert(
        "NewProject".into(),
        json!({"type": "object", "required": ["name"], "additionalProperties": false,
            "properties": {"name": name(), "group": name()}}),
    );
    all.insert("NewServiceAccount".into(), account_schema(providers));
    all.insert(
        "UpdateServiceAccount".into(),
        json!({"type": "object", "additionalProperties": false,
            "description": "each setting or secret given replaces the account's; the result is checked as the provider declares",
            "properties": {
                "settings": {"type": "object", "additionalProperties": text(1024)},
                "secrets": {"type": "object", "additionalProperties": secret(1), "writeOnly": true},
                "verify": {"type": "boolean"}}}),
    );
    all.insert(
        "MoveAccount".into(),
        json!({"type": "object", "required": ["project"], "additionalProperties": false,
            "properties": {"project": name(), "from": day()}}),
    );
    all.insert("SyncRequest".into(), json!({"type": "object", "additionalProperties": false,
            "properties": {"accounts": {"type": "array", "maxItems": 100, "items": name()}, "start": day(), "end": day()},
            "dependentRequired": {"start": ["end"], "end": ["start"]}}));
    all.insert("BillingQuery".into(), json!({"type": "object", "required": ["start", "end"], "additionalProperties": false,
            "properties": {"start": day(), "end": {"allOf": [day()], "description": "exclusive"},
                "granularity": {"type": "string", "enum": ["DAILY", "MONTHLY", "YEARLY", "daily", "monthly", "yearly"]},
                "group_by": {"type": "array", "maxItems": 8, "items": group_key()},
                "filters": filters(),
                "sort": {"type": "string", "enum": ["total", "key"]}, "limit": {"type": "integer", "minimum": 1, "maximum": 1_000_000},
                "offset": {"type": "integer", "minimum": 0, "maximum": 1_000_000_000},
                "metric": {"type": "string", "enum": ["billed", "effective"]},
                "currency": {"allOf": [currency()], "description": "convert every amount to this currency (stated rates)"},
                "fx_policy": {"type": "string", "pattern": "^(daily|period-end|fixed:[^,\\u0000-\\u001f]{1,64})$"}}}));
    all.insert("NewInvoice".into(), json!({"type": "object", "required": ["account", "period", "currency", "invoice_id", "total"], "additionalProperties": false,
            "properties": {"account": name(), "period": month(), "currency": currency(),
                "invoice_id": text(128), "total": amount(),
                "issuer": {"type": "string", "description": "empty: none"}, "tax": amount()}}));
    all.insert(
        "Reopen".into(),
        json!({"type": "object", "required": ["reason"], "additionalProperties": false,
            "properties": {"reason": text(500)}}),
    );
    all.insert("NewRate".into(), json!({"type": "object", "required": ["date", "base", "quote", "rate"], "additionalProperties": false,
            "properties": {"date": day(), "base": currency(), "quote": currency(), "rate": rate(),
                "source": {"type": "string", "pattern": "^[^,\\u0000-\\u001f\\u007f-\\u009f]{1,64}$"}}}));
    all.insert("NewBudget".into(), json!({"type": "object", "required": ["name", "amount", "currency", "notifications"], "additionalProperties": false,
            "properties": {"name": name(), "amount": budget_amount(), "currency": currency(),
                "period": {"type": "string", "enum": ["monthly", "quarterly", "yearly"]},
                "project": name(), "project_group": name(), "account": name(),
                "filters": filters(),
                "metric": {"type": "string", "enum": ["billed", "effective"]},
                "notifications": {"type": "array", "maxItems": 10, "uniqueItems": true, "items": {"oneOf": [
                    threshold(),
                    {"type": "object", "required": ["threshold", "channels"], "additionalProperties": false,
                        "properties": {"threshold": threshold(), "channels": {"type": "array", "minItems": 1, "maxItems": 10, "items": name()}}}]},
                    "description": "0 to 10 (none: a budget only watched)"},
                "channels": {"type": "array", "maxItems": 10, "items": name(), "description": "channels of the notifications that name none"}},
            "not": at_most_one_scope,
            "if": {"required": ["notifications"], "properties": {"notifications": {"contains": {"type": "string"}}}},
            "then": {"required": ["channels"], "properties": {"channels": {"type": "array", "minItems": 1}}}}));
    all.insert("NewMonitor".into(), json!({"type": "object", "required": ["name"], "additionalProperties": false,
            "properties": {"name": name(), "project": name(), "project_group": name(), "account": name(),
                "filters": filters(),
                "dimension": group_key(),
                "z": {"type": "string", "description": "above 0, at most 100",
                    "pattern": "^(?!0+(\\.0*)?$)(100(\\.0{1,10})?|[1-9]?[0-9](\\.[0-9]{1,10})?)$"},
                "min_amount": non_negative(),
                "min_percent": {"type": "string", "description": "0 to 10000",
                    "pattern": "^(10000(\\.0{1,10})?|([1-9][0-9]{0,3}|0)(\\.[0-9]{1,10})?)$"},
                "direction": {"type": "string", "enum": ["spikes", "both"]},
                "channels": {"type": "array", "maxItems": 10, "items": name()}},
            "not": at_most_one_scope}));
    all.insert("NewChannel".into(), json!({"type": "object", "required": ["name"], "additionalProperties": false,
            "description": "exactly one of webhook (with its secret), slack, email (with smtp)",
            "properties": {"name": name(), "webhook": url(),
                "secret": secret(16),
                "slack": {"allOf": [url()], "writeOnly": true},
                "email": email(),
                "smtp": {"type": "string", "description": "HOST:PORT", "pattern": "^[A-Za-z0-9.-]{1,253}:([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])$"},
                "smtp_security": {"type": "string", "const": "starttls",
                    "description": "starttls (the default); `none` is taken for a loopback server only"},
                "smtp_user": {"type": "string", "pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f]{1,256}$"},
                "smtp_password": secret(1)},
            "oneOf": [
                {"required": ["webhook", "secret"], "properties": {"webhook": {"type": "string"}, "secret": {"type": "string"},
                    "slack": {"type": "null"}, "email": {"type": "null"}, "smtp": {"type": "null"}, "smtp_security": {"type": "null"},
                    "smtp_user": {"type": "null"}, "smtp_password": {"type": "null"}}},
                {"required": ["slack"], "properties": {"slack": {"type": "string"}, "webhook": {"type": "null"}, "secret": {"type": "null"},
                    "email": {"type": "null"}, "smtp": {"type": "null"}, "smtp_security": {"type": "null"},
                    "smtp_user": {"type": "null"}, "smtp_password": {"type": "null"}}},
                {"required": ["email", "smtp"], "properties": {"email": {"type": "string"}, "smtp": {"type": "string"},
                    "webhook": {"type": "null"}, "slack": {"type": "null"}, "secret": {"type": "null"}},
                    "description": "an SMTP user and password go together",
                    "anyOf": [
                        {"required": ["smtp_user", "smtp_password"], "properties": {"smtp_user": {"type": "string"}, "smtp_password": {"type": "string"}}},
                        {"properties": {"smtp_user": {"type": "null"}, "smtp_password": {"type": "null"}}}]}]}));
    all.insert("Report".into(), json!({"type": "object", "required": ["start", "end", "granularity", "group_by", "results", "total_count"],
            "properties": {"start": string, "end": string, "granularity": string, "group_by": {"type": "array", "items": string},
                "total_count": {"type": "integer"},
                "results": {"type": "array", "items": {"type": "object", "properties": {
                    "group": {"type": "object", "additionalProperties": string},
                    "billing_data": {"type": "array", "items": {"type": "object", "properties": {"date": string, "cost": shown_amount, "currency": string}}},
                    "total": {"type": "array", "items": {"type": "object", "properties": {"cost": shown_amount, "currency": string}}}}}}}}));
    all.insert(
        "SyncRange".into(),
        json!({"type": "object", "additionalProperties": false,
        "properties": {"start": day(), "end": day()},
        "dependentRequired": {"start": ["end"], "end": ["start"]}}),
    );
    all.insert(
        "NewDomain".into(),
        json!({"type": "object", "required": ["name"], "additionalProperties": false,
        "properties": {"name": {"type": "string", "pattern": "^[a-z0-9][a-z0-9._-]{0,62}$",
            "description": "a slug: letters a-z, digits, '.', '-', '_'"}, "label": text(128)}}),
    );
    for (name, schema) in &mut all {
        if name.starts_with("New")
            || [
                "UpdateServiceAccount",
                "MoveAccount",
                "SyncRequest",
                "SyncRange",
                "BillingQuery",
                "Reopen",
            ]
            .contains(&name.as_str())
        {
            nullable_optionals(schema);
        }
    }
    Value::Object(all)
}

/// A new account: its provider (one this build has), its project, and the settings and
/// secrets the provider declares — one branch per provider, so the document says each
/// provider's settings (`GET /api/v1/providers/{kind}` lists them too).
fn account_schema(providers: &[&ProviderSpec]) -> Value {
    use formats::{name, setting};
    let kinds: Vec<&str> = providers.iter().map(|p| p.kind.as_str()).collect();
    let branches: Vec<Value> = providers
        .iter()
        .map(|spec| {
            let part = |secret: bool| {
                let properties: Map<String, Value> = spec
                    .settings
                    .iter()
                    .filter(|s| s.secret == secret)
                    .map(|s| (s.name.to_owned(), setting(s)))
                    .collect();
                let required: Vec<&str> = spec
                    .settings
                    .iter()
                    .filter(|s| s.secret == secret && s.required)
                    .map(|s| s.name)
                    .collect();
                (
                    json!({"type": "object", "additionalProperties": false, "properties": properties}),
                    required,
                )
            };
            let ((values, required_values), (secrets, required_secrets)) = (part(false), part(true));
            let mut given = json!({"properties": {"settings": values, "secrets": secrets}});
            if !required_values.is_empty() || !required_secrets.is_empty() {
                given["required"] = json!(["settings", "secrets"]);
                given["properties"]["settings"]["required"] = json!(required_values);
                given["properties"]["secrets"]["required"] = json!(required_secrets);
            }
            let is_this = if spec.kind.as_str() == "hyperbilling-aws" {
                // The default provider: also when the field is absent or null.
                json!({"anyOf": [{"not": {"required": ["provider"]}},
                    {"properties": {"provider": {"anyOf": [{"const": spec.kind.as_str()}, {"type": "null"}]}}}]})
            } else {
                json!({"required": ["provider"], "properties": {"provider": {"const": spec.kind.as_str()}}})
            };
            let then = if spec.kind.as_str() == "hyperbilling-aws" {
                // Its settings, or its `credentials` (the same settings, spelled the old way).
                json!({"anyOf": [given, {"required": ["credentials"],
                    "properties": {"credentials": {"type": "object"}, "settings": {"type": "object", "maxProperties": 0},
                        "secrets": {"type": "object", "maxProperties": 0}}}]})
            } else {
                json!({"allOf": [given, {"properties": {"credentials": {"type": "null"}}}]})
            };
            json!({"if": is_this, "then": then})
        })
        .collect();
    json!({"type": "object", "required": ["name", "project"], "additionalProperties": false,
        "description": "the settings and secrets of the provider (hyperbilling-aws when none is named); Hyperbilling's `credentials` {account, email, key, endpoint} are its settings spelled the old way",
        "properties": {"name": name(), "provider": {"type": "string", "enum": kinds},
            "project": name(), "verify": {"type": "boolean", "description": "true calls the provider (502 when it fails)"},
            "settings": {"type": "object"},
            "secrets": {"type": "object", "writeOnly": true},
            "credentials": {"anyOf": [{"type": "null"}, {"type": "object", "required": ["email", "key"], "additionalProperties": false,
                "properties": {"account": {"type": "string", "pattern": "^\\s*[0-9]{0,32}\\s*$"},
                    "email": {"type": "string", "pattern": "^\\s*[^\\s@]*@[^\\s@]*\\s*$"},
                    "key": formats::secret(1), "endpoint": formats::url()}}]}},
        "allOf": branches})
}

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
