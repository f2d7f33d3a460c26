//! The request schemas (`components.schemas`) and the value formats they and the parameters
//! share.

use cloudbill_core::ProviderSpec;
use serde_json::{json, Map, Value};

use super::nullable_optionals;

/// The value formats the server accepts, said once for the schemas and the parameters: a
/// value that fits these is taken (or answered 404 when it names nothing, 409 when it
/// conflicts); the rules JSON Schema cannot say (a range's end after its start, base and
/// quote two currencies) are listed in `.ci/api-fuzz`.
pub(super) mod formats {
    use serde_json::{json, Value};

    /// A day cloudbill takes: `YYYY-MM-DD`, 1970 to 2099.
    pub(in crate::openapi) fn day() -> Value {
        json!({"type": "string", "format": "date",
            "pattern": "^(19[7-9][0-9]|20[0-9][0-9])-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"})
    }

    /// A month: `YYYY-MM`, 1970-01 to 2099-12.
    pub(in crate::openapi) fn month() -> Value {
        json!({"type": "string", "pattern": "^(19[7-9][0-9]|20[0-9][0-9])-(0[1-9]|1[0-2])$"})
    }

    /// A secret: any text with something besides spaces (it is trimmed), at least `min`
    /// characters once trimmed (a webhook's signing secret: 16).
    pub(in crate::openapi) fn secret(min: u32) -> Value {
        let pattern = if min <= 1 {
            "^\\s*\\S".to_owned()
        } else {
            format!("^\\s*\\S[\\s\\S]{{{}}}\\S", min - 2)
        };
        json!({"type": "string", "writeOnly": true, "pattern": pattern})
    }

    /// The format of a provider's setting, as [`cloudbill_core::SettingSpec::check`] takes it.
    pub(in crate::openapi) fn setting(spec: &cloudbill_core::SettingSpec) -> Value {
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
    pub(in crate::openapi) fn name() -> Value {
        text(128)
    }

    /// Text of 1 to `max` characters once trimmed (surrounding space is dropped), no control
    /// characters.
    pub(in crate::openapi) fn text(max: u32) -> Value {
        let edge = "[^\\s\\u0000-\\u001f\\u007f-\\u009f]";
        let inner = "[^\\u0000-\\u001f\\u007f-\\u009f]";
        json!({"type": "string", "description": format!("1 to {max} characters (surrounding space dropped), no control characters"),
            "pattern": format!("^\\s*{edge}({inner}{{0,{}}}{edge})?\\s*$", max.saturating_sub(2))})
    }

    /// An ISO 4217 currency code.
    pub(in crate::openapi) fn currency() -> Value {
        json!({"type": "string", "enum": cloudbill_core::Currency::codes().collect::<Vec<_>>()})
    }

    /// An exact amount a person enters: below 10^18 in magnitude, at most 10 decimals.
    pub(in crate::openapi) fn amount() -> Value {
        json!({"type": "string", "pattern": "^-?(0|[1-9][0-9]{0,17})(\\.[0-9]{1,10})?$",
            "description": "exact decimal amount"})
    }

    /// An amount of at least 0.01 (a budget's).
    pub(in crate::openapi) fn budget_amount() -> Value {
        json!({"type": "string", "description": "exact decimal, 0.01 to below 10^18, at most 10 decimals",
            "pattern": "^([1-9][0-9]{0,17}(\\.[0-9]{1,10})?|0\\.(0[1-9][0-9]{0,8}|[1-9][0-9]{0,9}))$"})
    }

    /// An amount of 0 or more.
    pub(in crate::openapi) fn non_negative() -> Value {
        json!({"type": "string", "pattern": "^(0|[1-9][0-9]{0,17})(\\.[0-9]{1,10})?$"})
    }

    /// A rate: above 0, below 10^18.
    pub(in crate::openapi) fn rate() -> Value {
        json!({"type": "string", "description": "units of quote per base, above 0",
            "pattern": "^(?!0+(\\.0*)?$)(0|[1-9][0-9]{0,17})(\\.[0-9]{1,20})?$"})
    }

    /// A budget threshold: `actual:P%` / `forecast:P%` (0.01 to 1000, two decimals) or an
    /// amount above 0.
    pub(in crate::openapi) fn threshold() -> Value {
        json!({"type": "string", "description": "actual:P%, forecast:P%, actual:AMOUNT or forecast:AMOUNT",
            "pattern": "^(actual|forecast):(([1-9][0-9]{0,2}(\\.[0-9]{1,2})?|1000|0\\.(0[1-9]|[1-9][0-9]?))%|[1-9][0-9]{0,17}(\\.[0-9]{1,10})?|0\\.(?!0+$)[0-9]{1,10})$"})
    }

    /// A report key: a dimension or `tag:KEY`.
    pub(in crate::openapi) fn group_key() -> Value {
        let keys: Vec<&str> = cloudbill_service::GroupKey::ALL
            .iter()
            .map(cloudbill_service::GroupKey::as_str)
            .collect();
        json!({"anyOf": [{"type": "string", "enum": keys},
            {"type": "string", "pattern": "^tag:[^\\u0000-\\u001f\\u007f-\\u009f]{1,256}$"}]})
    }

    /// Report filters: a key to the values (names or ids) it keeps.
    pub(in crate::openapi) fn filters() -> Value {
        json!({"type": "object", "maxProperties": 16, "propertyNames": {"anyOf": [
                {"enum": cloudbill_service::GroupKey::ALL.iter().map(cloudbill_service::GroupKey::as_str).collect::<Vec<_>>()},
                {"pattern": "^tag:[^\\u0000-\\u001f\\u007f-\\u009f]{1,256}$"}]},
            "additionalProperties": {"type": "array", "minItems": 1, "maxItems": 100, "items": text(256)}})
    }

    /// An http(s) URL.
    pub(in crate::openapi) fn url() -> Value {
        // No `format: uri`: the pattern is the rule (a `%` not followed by two hex digits is
        // taken as the text it is, as the server's URL parser does).
        json!({"type": "string", "maxLength": 2048,
            "description": "an http(s) URL: a host name (letters, digits, '.', '-'), a port, a path; no user, query or fragment",
            "pattern": cloudbill_core::net::URL_PATTERN})
    }

    /// An e-mail address as the server checks it: one `@` between non-empty parts, no
    /// spaces, controls or `<>,;"`.
    pub(in crate::openapi) fn email() -> Value {
        json!({"type": "string", "maxLength": 254,
            "pattern": "^[^@\\s\\u0000-\\u001f\\u007f-\\u009f<>,;\"]+@[^@\\s\\u0000-\\u001f\\u007f-\\u009f<>,;\"]+$"})
    }
}

#[allow(clippy::too_many_lines)] // Data: one entry per request schema, read with the route table.
pub(in crate::openapi) fn schemas(providers: &[&ProviderSpec]) -> Value {
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
    all.insert("UpdateServiceAccount".into(), update_schema(providers));
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
                "fx_policy": {"type": "string", "pattern": "^(daily|period-end|fixed:[^,\\u0000-\\u001f]{1,64})$"},
                "allocated": {"type": "boolean", "description": "shared costs moved to their targets by the allocation rules (totals unchanged)"}}}));
    let allocation_props = || {
        let targets = json!({"type": "array", "minItems": 1, "maxItems": 100, "uniqueItems": true, "items": text(256)});
        let weight = json!({"type": "string", "description": "a percentage, 0 to 100, at most two decimals",
            "pattern": "^(100(\\.0{1,2})?|[1-9]?[0-9](\\.[0-9]{1,2})?)$"});
        let props = json!({"name": name(),
            "source": {"allOf": [filters()], "minProperties": 1, "maxProperties": 20, "description": "the records the rule takes: report filters, every key must match"},
            "target": {"allOf": [group_key()], "description": "project, project_group, service_account or tag:KEY"},
            "targets": targets,
            "method": {"type": "string", "enum": ["even", "proportional", "fixed"]},
            "weights": {"type": "object", "maxProperties": 100, "additionalProperties": weight,
                "description": "fixed: target → percentage; all sum to exactly 100"},
            "priority": {"type": "integer", "minimum": 1, "maximum": 1_000_000, "description": "1 applies first"},
            "start": {"allOf": [day()], "description": "first day the rule (or the change) applies; not in a closed month"}});
        props
    };
    all.insert(
        "NewAllocation".into(),
        json!({"type": "object", "required": ["name", "source", "target", "targets"],
        "additionalProperties": false, "properties": allocation_props()}),
    );
    all.insert(
        "UpdateAllocation".into(),
        json!({"type": "object", "additionalProperties": false,
        "properties": allocation_props()}),
    );
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

/// A change of an account's settings: the names any provider declares (the account's own
/// provider, named by the path, decides which of them it has: another's answers 422).
fn update_schema(providers: &[&ProviderSpec]) -> Value {
    use formats::{secret, text};
    let names = |want_secret: bool| {
        let mut names: Vec<&str> = providers
            .iter()
            .flat_map(|p| p.settings.iter())
            .filter(|s| s.secret == want_secret)
            .map(|s| s.name)
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    };
    json!({"type": "object", "additionalProperties": false,
        "description": "each setting or secret given replaces the account's; the result is checked as the account's provider declares (a setting it does not have answers 422)",
        "properties": {
            "settings": {"type": "object", "propertyNames": {"enum": names(false)}, "additionalProperties": text(1024)},
            "secrets": {"type": "object", "propertyNames": {"enum": names(true)}, "additionalProperties": secret(1), "writeOnly": true},
            "verify": {"type": "boolean"}}})
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
                "properties": {"account": {"anyOf": [{"type": "null"}, {"type": "string", "pattern": "^\\s*[0-9]{0,32}\\s*$"}]},
                    "email": {"type": "string", "pattern": "^\\s*[^\\s@]*@[^\\s@]*\\s*$"},
                    "key": formats::secret(1), "endpoint": {"anyOf": [{"type": "null"}, formats::url()]}}}]}},
        "allOf": branches})
}
