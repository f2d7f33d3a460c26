//! One function per command: parse flags into service calls, render the answer.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};

use clap::CommandFactory;
use cloudbill_core::{AccountState, ClientSecret, DateRange, ProviderState, ServiceAccount};
use cloudbill_service::{
    Billing, BillingConfig, CredentialsInput, GroupKey, NewAccount, Principal, Query,
    ReportRequest, ServiceError, SyncReport, SyncRequest,
};
use serde_json::json;

use crate::args::{
    AccountAction, AddAccount, BillingAction, Cli, Command, Format, GroupAction, KeyAction,
    ProjectAction, ProviderAction, ReportArgs, TokenAction,
};
use crate::render::{self, Grid};
use crate::CliError;

const ADMIN: Principal = Principal::Admin;

fn config() -> BillingConfig {
    BillingConfig {
        default_endpoint: cloudbill_compose::default_endpoint(),
        ..BillingConfig::default()
    }
}

pub(crate) async fn run(cli: Cli, out: &mut dyn Write) -> Result<(), CliError> {
    let format = cli.global.format;
    match cli.command {
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "cloudbill", out);
            return Ok(());
        }
        Command::Man => {
            return clap_mangen::Man::new(Cli::command())
                .render(out)
                .map_err(|e| CliError::Failure(e.to_string()));
        }
        Command::Demo(args) => return crate::demo::run(&cli.global, &args, out).await,
        _ => {}
    }
    let url = cloudbill_compose::database_url(cli.global.database_url.as_deref(), "cloudbill.db");
    if let Command::Key {
        action: KeyAction::Rotate { new_key_file },
    } = &cli.command
    {
        let rotated = cloudbill_store::rotate_key(
            &cloudbill_compose::open_options(&url, false),
            new_key_file.as_deref(),
        )
        .await
        .map_err(|e| CliError::Failure(cloudbill_compose::store_error(&url, e).to_string()))?;
        // The key itself is never printed: only where it is.
        writeln!(
            out,
            "re-sealed {} credentials with a new key, now in {}",
            rotated.credentials,
            rotated.key_file.display()
        )
        .map_err(|e| CliError::Failure(e.to_string()))?;
        return Ok(());
    }
    let billing = crate::open(
        &url,
        &cli.global.domain,
        config(),
        creates_database(&cli.command),
    )
    .await?;
    match cli.command {
        Command::Billing { action } => billing_cmd(&billing, action, format, out).await,
        Command::Provider { action } => provider_cmd(&billing, action, format, out).await,
        Command::Project { action } => project_cmd(&billing, action, format, out).await,
        Command::ProjectGroup { action } => group_cmd(&billing, action, format, out).await,
        Command::Account { action } => account_cmd(&billing, action, format, out).await,
        Command::Sync(args) => {
            let range = match (args.start, args.end) {
                (Some(s), Some(e)) => {
                    Some(DateRange::new(s, e).map_err(|e| CliError::Usage(e.to_string()))?)
                }
                _ => None,
            };
            let request = SyncRequest {
                accounts: args.accounts,
                range,
            };
            let bars = crate::progress::Bars::new();
            let report = billing.sync(&ADMIN, &request, &bars).await?;
            print_sync(out, format, &report)?;
            if report.all_succeeded() {
                Ok(())
            } else {
                Err(CliError::Partial)
            }
        }
        Command::Jobs(args) => {
            jobs_cmd(&billing, args.account.as_deref(), args.limit, format, out).await
        }
        Command::Report(args) => {
            let query = report_query(&args)?;
            let report = billing.report(&ADMIN, &query).await?;
            render::print_report(out, format, &report)
        }
        Command::Token { action } => token_cmd(&billing, action, format, out).await,
        Command::Import { format } => {
            crate::files::import(&billing, format, cli.global.format, out).await
        }
        Command::Export { format } => crate::files::export(&billing, format, out).await,
        Command::Completions { .. } | Command::Man | Command::Demo(_) | Command::Key { .. } => {
            Ok(())
        }
    }
}

/// Whether a command may create the database: every command that changes something does;
/// one that only reads fails on a missing database instead of leaving an empty one behind.
fn creates_database(command: &Command) -> bool {
    !matches!(
        command,
        Command::Report(_)
            | Command::Jobs(_)
            | Command::Export { .. }
            | Command::Billing {
                action: BillingAction::Status
            }
            | Command::Provider {
                action: ProviderAction::List
            }
            | Command::Project {
                action: ProjectAction::List | ProjectAction::Show { .. }
            }
            | Command::ProjectGroup {
                action: GroupAction::List
            }
            | Command::Account {
                action: AccountAction::List | AccountAction::Show { .. }
            }
            | Command::Token {
                action: TokenAction::List
            }
    )
}

async fn billing_cmd(
    b: &Billing,
    action: BillingAction,
    format: Format,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let domain = match action {
        BillingAction::Enable => b.set_billing(&ADMIN, true).await?,
        BillingAction::Disable => b.set_billing(&ADMIN, false).await?,
        BillingAction::Status => b.domain().await?,
    };
    let state = if domain.billing_enabled {
        "enabled"
    } else {
        "disabled"
    };
    let mut g = Grid::new(
        &["domain", "billing"],
        &[],
        json!({"domain": domain.name.as_str(), "billing_enabled": domain.billing_enabled}),
    );
    g.row(vec![domain.name.to_string(), state.into()]);
    render::print(out, format, &g)
}

async fn provider_cmd(
    b: &Billing,
    action: ProviderAction,
    format: Format,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let entries = match action {
        ProviderAction::List => b.providers(&ADMIN).await?,
        ProviderAction::Enable { name } => vec![
            b.set_provider_state(&ADMIN, &name, ProviderState::Enabled)
                .await?,
        ],
        ProviderAction::Disable { name } => vec![
            b.set_provider_state(&ADMIN, &name, ProviderState::Disabled)
                .await?,
        ],
    };
    let json = entries
        .iter()
        .map(|e| json!({"name": e.kind.as_str(), "display_name": e.kind.display_name(), "state": e.state.as_str()}))
        .collect();
    let mut g = Grid::new(
        &["name", "display name", "state"],
        &[],
        serde_json::Value::Array(json),
    );
    for e in &entries {
        g.row(vec![
            e.kind.as_str().into(),
            e.kind.display_name().into(),
            e.state.as_str().into(),
        ]);
    }
    render::print(out, format, &g)
}

async fn project_cmd(
    b: &Billing,
    action: ProjectAction,
    format: Format,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let groups = b.groups(&ADMIN).await?;
    let group_name = |id: Option<cloudbill_core::GroupId>| {
        id.and_then(|id| groups.iter().find(|g| g.id == id))
            .map(|g| g.name.to_string())
    };
    let (projects, accounts) = match action {
        ProjectAction::Create { name, group } => (
            vec![b.create_project(&ADMIN, &name, group.as_deref()).await?],
            None,
        ),
        ProjectAction::List => (b.projects(&ADMIN).await?, None),
        ProjectAction::Show { name } => {
            let p = b.project(&ADMIN, &name).await?;
            let accounts: Vec<ServiceAccount> = b
                .accounts(&ADMIN)
                .await?
                .into_iter()
                .filter(|a| a.project == p.id)
                .collect();
            (vec![p], Some(accounts))
        }
    };
    let json: Vec<_> = projects
        .iter()
        .map(|p| {
            let mut v = json!({"id": p.id.to_string(), "name": p.name.as_str(), "group": group_name(p.group)});
            if let Some(accounts) = &accounts {
                v["accounts"] = accounts.iter().map(|a| json!(a.name.as_str())).collect();
            }
            v
        })
        .collect();
    let json = if accounts.is_some() {
        json.into_iter().next().unwrap_or_default()
    } else {
        serde_json::Value::Array(json)
    };
    let mut g = Grid::new(&["name", "group", "accounts", "id"], &[], json);
    for p in &projects {
        let acc = accounts
            .as_ref()
            .map(|a| {
                a.iter()
                    .map(|x| x.name.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        g.row(vec![
            p.name.to_string(),
            group_name(p.group).unwrap_or_default(),
            acc,
            p.id.to_string(),
        ]);
    }
    if accounts.is_none() {
        g.headers.remove(2);
        g.numeric.remove(2);
        for r in &mut g.rows {
            r.remove(2);
        }
    }
    render::print(out, format, &g)
}

async fn group_cmd(
    b: &Billing,
    action: GroupAction,
    format: Format,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let created = match action {
        GroupAction::Create { name, parent } => {
            Some(b.create_group(&ADMIN, &name, parent.as_deref()).await?)
        }
        GroupAction::List => None,
    };
    // One read serves both the listing and the parents' names.
    let parents = b.groups(&ADMIN).await?;
    let all = match created {
        Some(group) => vec![group],
        None => parents.clone(),
    };
    let parent_name = |id: Option<cloudbill_core::GroupId>| {
        id.and_then(|id| parents.iter().find(|g| g.id == id))
            .map(|g| g.name.to_string())
    };
    let json = all
        .iter()
        .map(|g| json!({"id": g.id.to_string(), "name": g.name.as_str(), "parent": parent_name(g.parent)}))
        .collect();
    let mut grid = Grid::new(
        &["name", "parent", "id"],
        &[],
        serde_json::Value::Array(json),
    );
    for g in &all {
        grid.row(vec![
            g.name.to_string(),
            parent_name(g.parent).unwrap_or_default(),
            g.id.to_string(),
        ]);
    }
    render::print(out, format, &grid)
}

fn account_json(a: &ServiceAccount, project: &str) -> serde_json::Value {
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
async fn account_cmd(
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

async fn add_account(b: &Billing, args: AddAccount) -> Result<ServiceAccount, CliError> {
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

async fn jobs_cmd(
    b: &Billing,
    account: Option<&str>,
    limit: u32,
    format: Format,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    if limit == 0 {
        return Err(CliError::Usage("--limit must be at least 1".into()));
    }
    let jobs = b.jobs(&ADMIN, account, limit).await?;
    let json = jobs
        .iter()
        .map(|v| {
            let j = &v.job;
            json!({
                "id": j.id.to_string(), "account": v.account_name, "kind": j.kind.as_str(), "state": j.state.as_str(),
                "start": j.window.start().to_string(), "end": j.window.end().to_string(), "rows": j.rows,
                "changed_days": j.changed_days.iter().map(|c| json!({
                    "date": c.date.to_string(), "currency": c.currency.as_str(),
                    "old_total": c.old_total.to_string(), "new_total": c.new_total.to_string()})).collect::<Vec<_>>(),
                "error": j.error, "started_at": j.started_at.to_rfc3339(),
                "finished_at": j.finished_at.map(|t| t.to_rfc3339()),
            })
        })
        .collect();
    let mut g = Grid::new(
        &[
            "started",
            "account",
            "kind",
            "state",
            "range",
            "rows",
            "changed days",
            "error",
        ],
        &["rows", "changed days"],
        serde_json::Value::Array(json),
    );
    for v in &jobs {
        let j = &v.job;
        let restated: Vec<String> = j
            .changed_days
            .iter()
            .filter(|c| !c.old_total.is_zero())
            .take(5)
            .map(|c| {
                format!(
                    "{} {}→{}",
                    c.date,
                    c.old_total.normalize(),
                    c.new_total.normalize()
                )
            })
            .collect();
        let changed = if restated.is_empty() {
            j.changed_days.len().to_string()
        } else {
            format!(
                "{} (restated: {})",
                j.changed_days.len(),
                restated.join("; ")
            )
        };
        g.row(vec![
            j.started_at.format("%Y-%m-%d %H:%M:%S").to_string(),
            v.account_name.clone(),
            j.kind.as_str().into(),
            j.state.as_str().into(),
            format!("{} .. {}", j.window.start(), j.window.end()),
            j.rows.to_string(),
            changed,
            j.error.clone().unwrap_or_default(),
        ]);
    }
    render::print(out, format, &g)
}

/// The report flags as the service's [`ReportRequest`] (the API's parser, so both refuse the
/// same mistakes with the same words).
pub(crate) fn report_query(args: &ReportArgs) -> Result<Query, CliError> {
    let mut filters = BTreeMap::new();
    for (key, values) in [
        (GroupKey::Project, &args.project),
        (GroupKey::ProjectGroup, &args.project_group),
        (GroupKey::ServiceAccount, &args.account),
        (GroupKey::Provider, &args.provider),
        (GroupKey::Region, &args.region),
        (GroupKey::Service, &args.service),
    ] {
        if !values.is_empty() {
            filters.insert(key.as_str().to_owned(), values.clone());
        }
    }
    let request = ReportRequest {
        start: args.start.to_string(),
        end: args.end.to_string(),
        granularity: Some(args.granularity.clone()),
        group_by: args.group_by.clone(),
        filters,
        sort: Some(args.sort.clone()),
        limit: args.limit,
    };
    request.to_query().map_err(|e| match e {
        ServiceError::Query(cloudbill_service::QueryError::ZeroLimit) => {
            CliError::Usage("--limit must be at least 1".into())
        }
        other => CliError::Usage(other.to_string()),
    })
}

async fn token_cmd(
    b: &Billing,
    action: TokenAction,
    format: Format,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let io = |e: std::io::Error| CliError::Failure(e.to_string());
    match action {
        TokenAction::Create {
            role,
            project,
            label,
        } => {
            let role: cloudbill_core::TokenRole = role.parse()?;
            let (_, secret) = b
                .create_token(&ADMIN, role, project.as_deref(), &label)
                .await?;
            writeln!(out, "{secret}").map_err(io)
        }
        TokenAction::Revoke { id } => {
            b.revoke_token(&ADMIN, &id).await?;
            let mut g = Grid::new(&["revoked"], &[], json!({"revoked": id}));
            g.row(vec![id]);
            render::print(out, format, &g)
        }
        TokenAction::List => {
            let tokens = b.tokens(&ADMIN).await?;
            let projects = b.projects(&ADMIN).await?;
            let project_name = |id: Option<cloudbill_core::ProjectId>| {
                id.and_then(|id| projects.iter().find(|p| p.id == id))
                    .map(|p| p.name.to_string())
            };
            let json = tokens
                .iter()
                .map(|t| json!({
                    "id": t.id.to_string(), "role": t.role.as_str(), "project": project_name(t.project),
                    "label": t.label, "created_at": t.created_at.to_rfc3339(),
                    "revoked_at": t.revoked_at.map(|r| r.to_rfc3339()),
                }))
                .collect();
            let mut g = Grid::new(
                &["id", "role", "project", "label", "created", "revoked"],
                &[],
                serde_json::Value::Array(json),
            );
            for t in &tokens {
                g.row(vec![
                    t.id.to_string(),
                    t.role.as_str().into(),
                    project_name(t.project).unwrap_or_default(),
                    t.label.clone(),
                    t.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                    t.revoked_at
                        .map(|r| r.format("%Y-%m-%d %H:%M:%S").to_string())
                        .unwrap_or_default(),
                ]);
            }
            render::print(out, format, &g)
        }
    }
}
