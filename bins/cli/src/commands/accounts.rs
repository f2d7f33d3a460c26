//! `account`: billing accounts (add, list, show, move, enable/disable, delete) and sync output.

use std::io::{Read, Write};

use cloudbill_core::{AccountState, ClientSecret, ServiceAccount, Settings};
use cloudbill_service::{Billing, NewAccount, SyncReport};
use serde_json::json;

use crate::args::{AccountAction, AddAccount, Format, SettingArgs};
use crate::render::{self, Grid};
use crate::CliError;

use super::ADMIN;

pub(super) fn account_json(a: &ServiceAccount, project: &str) -> serde_json::Value {
    // Secrets are write-only: their names are shown, never their values.
    json!({
        "id": a.id.to_string(), "name": a.name.as_str(), "provider": a.provider.as_str(),
        "project": project, "state": a.state.as_str(),
        "settings": a.settings.values(),
        "secrets": a.settings.secret_names().collect::<Vec<_>>(),
    })
}

#[allow(clippy::too_many_lines)] // One arm per `account` subcommand.
pub(super) async fn account_cmd(
    b: &Billing,
    action: AccountAction,
    format: Format,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let projects = b.projects(&ADMIN).await?;
    let project_name = |id| {
        projects
            .iter()
            .find(|p| p.id == id)
            .map(|p| p.name.to_string())
            .unwrap_or_default()
    };
    let accounts = match action {
        AccountAction::Add(args) => vec![add_account(b, args).await?],
        AccountAction::List => b.accounts(&ADMIN).await?,
        AccountAction::Show { name } => {
            let a = b.account(&ADMIN, &name).await?;
            let history = b.assignments(&ADMIN, &name).await?;
            let mut v = account_json(&a, &project_name(a.project));
            v["history"] = history
                .iter()
                .map(|h| json!({"project": project_name(h.project), "from": h.from.map(|d| d.to_string())}))
                .collect();
            let mut g = Grid::new(&["field", "value"], &[], v);
            g.row(vec!["name".into(), a.name.to_string()]);
            g.row(vec!["id".into(), a.id.to_string()]);
            g.row(vec!["provider".into(), a.provider.to_string()]);
            g.row(vec!["project".into(), project_name(a.project)]);
            g.row(vec!["state".into(), a.state.as_str().into()]);
            for (k, v) in a.settings.values() {
                g.row(vec![k.clone(), v.clone()]);
            }
            for k in a.settings.secret_names() {
                g.row(vec![k.to_owned(), "*** (write-only)".into()]);
            }
            for h in &history {
                let from = h
                    .from
                    .map_or_else(|| "the beginning".to_owned(), |d| d.to_string());
                g.row(vec![
                    "assigned".into(),
                    format!("{} from {from}", project_name(h.project)),
                ]);
            }
            return render::print(out, format, &g);
        }
        AccountAction::Verify { name } => {
            let linked = b.verify_account(&ADMIN, &name).await?;
            let mut g = Grid::new(
                &["account", "credentials", "linked accounts"],
                &[],
                json!({"account": name, "valid": true, "linked_accounts": linked}),
            );
            g.row(vec![name, "valid".into(), linked.join(", ")]);
            return render::print(out, format, &g);
        }
        AccountAction::Move {
            name,
            project,
            from,
        } => {
            b.move_account(&ADMIN, &name, &project, from).await?;
            vec![b.account(&ADMIN, &name).await?]
        }
        AccountAction::Update {
            name,
            settings,
            verify,
        } => {
            let account = b.account(&ADMIN, &name).await?;
            let update = settings_of(b, account.provider.as_str(), settings).await?;
            vec![b.update_account(&ADMIN, &name, &update, verify).await?]
        }
        AccountAction::Enable { name } => vec![
            b.set_account_state(&ADMIN, &name, AccountState::Enabled)
                .await?,
        ],
        AccountAction::Disable { name } => vec![
            b.set_account_state(&ADMIN, &name, AccountState::Disabled)
                .await?,
        ],
        AccountAction::Remove { name } => {
            let a = b.account(&ADMIN, &name).await?;
            b.remove_account(&ADMIN, &name).await?;
            let mut g = Grid::new(&["removed"], &[], json!({"removed": a.name.as_str()}));
            g.row(vec![a.name.to_string()]);
            return render::print(out, format, &g);
        }
    };
    let json = accounts
        .iter()
        .map(|a| account_json(a, &project_name(a.project)))
        .collect();
    let mut g = Grid::new(
        &["name", "provider", "project", "state", "settings"],
        &[],
        serde_json::Value::Array(json),
    );
    for a in &accounts {
        let settings: Vec<String> = a
            .settings
            .values()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .chain(a.settings.secret_names().map(|k| format!("{k}=***")))
            .collect();
        g.row(vec![
            a.name.to_string(),
            a.provider.to_string(),
            project_name(a.project),
            a.state.as_str().into(),
            settings.join(" "),
        ]);
    }
    render::print(out, format, &g)
}

pub(super) async fn add_account(b: &Billing, args: AddAccount) -> Result<ServiceAccount, CliError> {
    let settings = settings_of(b, &args.provider, args.settings).await?;
    let new = NewAccount {
        name: args.name,
        provider: args.provider,
        project: args.project,
        settings,
    };
    Ok(b.add_account(&ADMIN, new, args.verify).await?)
}

/// The most bytes of secrets read from stdin (a key file's JSON fits many times over).
const MAX_SECRET_INPUT: u64 = 256 * 1024;

/// The settings the flags give for `provider`: `--setting KEY=VALUE`, Hyperbilling's own
/// flags (its spelling of `account`, `email`, `key`, `endpoint`), and the secrets on stdin —
/// the provider's one secret as the input's text, several as a JSON object of them.
async fn settings_of(b: &Billing, provider: &str, args: SettingArgs) -> Result<Settings, CliError> {
    let mut settings = Settings::default();
    for pair in &args.settings {
        let (k, v) = pair.split_once('=').ok_or_else(|| {
            CliError::Usage(format!(
                "--setting {:?}: expected KEY=VALUE",
                cloudbill_core::cut(pair, 40)
            ))
        })?;
        settings = settings.with_value(k.trim(), v);
    }
    for (name, value) in [
        ("account", args.cloud_account),
        ("email", args.email),
        ("endpoint", args.endpoint),
    ] {
        if let Some(v) = value {
            settings = settings.with_value(name, &v);
        }
    }
    if let Some(key) = args.key {
        settings = settings.with_secret("key", ClientSecret::new(&key)?);
    }
    if args.secret_stdin {
        let view = b.provider_view(&ADMIN, provider).await?;
        let secrets: Vec<&str> = view.spec.secrets().map(|s| s.name).collect();
        let mut text = zeroize::Zeroizing::new(String::new());
        std::io::stdin()
            .lock()
            .take(MAX_SECRET_INPUT)
            .read_to_string(&mut text)
            .map_err(|e| CliError::Failure(format!("cannot read the secret from stdin: {e}")))?;
        match secrets.as_slice() {
            [] => {
                return Err(CliError::Usage(format!(
                    "provider {provider} has no secret setting: drop --secret-stdin"
                )))
            }
            [one] => settings = settings.with_secret(one, ClientSecret::new(&text)?),
            several => {
                let required: Vec<&str> = view
                    .spec
                    .secrets()
                    .filter(|s| s.required)
                    .map(|s| s.name)
                    .collect();
                match serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&text) {
                    Ok(object) => {
                        for (k, v) in object {
                            let v = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                            settings = settings.with_secret(&k, ClientSecret::new(&v)?);
                        }
                    }
                    // Not a JSON object, and one secret is required: the text is that one.
                    Err(_) if required.len() == 1 && !text.trim_start().starts_with('{') => {
                        settings = settings.with_secret(required[0], ClientSecret::new(&text)?);
                    }
                    Err(_) => {
                        return Err(CliError::Usage(format!(
                            "provider {provider} has several secrets ({}): give them on stdin as a JSON object",
                            several.join(", ")
                        )))
                    }
                }
            }
        }
    }
    Ok(settings)
}

impl From<cloudbill_core::ValidationError> for CliError {
    fn from(e: cloudbill_core::ValidationError) -> Self {
        CliError::Usage(e.to_string())
    }
}

pub(crate) fn print_sync(
    out: &mut dyn Write,
    format: Format,
    report: &SyncReport,
) -> Result<(), CliError> {
    let json = report
        .outcomes
        .iter()
        .map(|o| json!({
            "account": o.account, "state": o.state.as_str(), "job": o.job.map(|j| j.to_string()),
            "start": o.range.map(|r| r.start().to_string()), "end": o.range.map(|r| r.end().to_string()),
            "rows": o.rows, "changed_days": o.changed_days,
            "unchanged_windows": o.unchanged_windows, "error": o.error,
        }))
        .collect();
    let mut g = Grid::new(
        &[
            "account",
            "state",
            "range",
            "rows",
            "changed days",
            "unchanged",
            "error",
        ],
        &["rows", "changed days", "unchanged"],
        serde_json::Value::Array(json),
    );
    for o in &report.outcomes {
        g.row(vec![
            o.account.clone(),
            o.state.as_str().into(),
            o.range
                .map(|r| format!("{} .. {}", r.start(), r.end()))
                .unwrap_or_default(),
            o.rows.to_string(),
            o.changed_days.to_string(),
            o.unchanged_windows.to_string(),
            o.error.clone().unwrap_or_default(),
        ]);
    }
    render::print(out, format, &g)
}
