//! `account`: billing accounts (add, list, show, move, enable/disable, delete) and sync output.

use std::io::{BufRead, Write};

use cloudbill_core::{AccountState, ClientSecret, ServiceAccount};
use cloudbill_service::{Billing, CredentialsInput, NewAccount, SyncReport};
use serde_json::json;

use crate::args::{AccountAction, AddAccount, Format};
use crate::render::{self, Grid};
use crate::CliError;

use super::ADMIN;

pub(super) fn account_json(a: &ServiceAccount, project: &str) -> serde_json::Value {
    // Credentials are write-only: the key is never printed; account, email and endpoint are.
    let creds = a
        .credentials
        .as_ref()
        .map(|c| json!({"account": c.account(), "email": c.email(), "endpoint": c.endpoint()}));
    json!({
        "id": a.id.to_string(), "name": a.name.as_str(), "provider": a.provider.as_str(),
        "project": project, "state": a.state.as_str(), "credentials": creds,
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
            if let Some(c) = &a.credentials {
                g.row(vec![
                    "cloud account".into(),
                    if c.account().is_empty() {
                        "(all linked)".into()
                    } else {
                        c.account().into()
                    },
                ]);
                g.row(vec!["email".into(), c.email().into()]);
                g.row(vec!["key".into(), "*** (write-only)".into()]);
                g.row(vec!["endpoint".into(), c.endpoint().into()]);
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
        &[
            "name",
            "provider",
            "project",
            "state",
            "cloud account",
            "email",
        ],
        &[],
        serde_json::Value::Array(json),
    );
    for a in &accounts {
        let (acc, email) = a
            .credentials
            .as_ref()
            .map_or((String::new(), String::new()), |c| {
                (
                    if c.account().is_empty() {
                        "(all linked)".into()
                    } else {
                        c.account().to_owned()
                    },
                    c.email().to_owned(),
                )
            });
        g.row(vec![
            a.name.to_string(),
            a.provider.to_string(),
            project_name(a.project),
            a.state.as_str().into(),
            acc,
            email,
        ]);
    }
    render::print(out, format, &g)
}

pub(super) async fn add_account(b: &Billing, args: AddAccount) -> Result<ServiceAccount, CliError> {
    let key = if args.key_stdin {
        let mut line = zeroize::Zeroizing::new(String::new());
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| CliError::Failure(format!("cannot read the key from stdin: {e}")))?;
        Some(ClientSecret::new(&line)?)
    } else {
        args.key.as_deref().map(ClientSecret::new).transpose()?
    };
    let has_creds = key.is_some()
        || args.email.is_some()
        || args.cloud_account.is_some()
        || args.endpoint.is_some();
    let credentials = if has_creds {
        let key = key.ok_or_else(|| {
            CliError::Usage("a key is required: give --key-stdin (or --key)".into())
        })?;
        let email = args
            .email
            .ok_or_else(|| CliError::Usage("an email is required: give --email".into()))?;
        Some(CredentialsInput {
            account: args.cloud_account.unwrap_or_default(),
            email,
            key,
            endpoint: args.endpoint,
        })
    } else {
        None
    };
    let new = NewAccount {
        name: args.name,
        provider: args.provider,
        project: args.project,
        credentials,
    };
    Ok(b.add_account(&ADMIN, new, args.verify).await?)
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
            "rows": o.rows, "changed_days": o.changed_days, "error": o.error,
        }))
        .collect();
    let mut g = Grid::new(
        &["account", "state", "range", "rows", "changed days", "error"],
        &["rows", "changed days"],
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
            o.error.clone().unwrap_or_default(),
        ]);
    }
    render::print(out, format, &g)
}
