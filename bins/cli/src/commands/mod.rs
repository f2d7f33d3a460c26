//! One function per command: parse flags into service calls, render the answer. `run`
//! dispatches; one module per group of commands.

mod accounts;
mod allocations;
mod budgets;
mod catalog;
mod domains;
mod jobs;
mod money;
mod monitors;
mod tokens;

use accounts::account_cmd;
pub(crate) use accounts::print_sync;
use allocations::allocation_cmd;
use budgets::{budget_cmd, channel_cmd, notify_cmd};
use catalog::{group_cmd, project_cmd};
use domains::domain_cmd;
use jobs::jobs_cmd;
pub(crate) use jobs::report_query;
use money::{fx_cmd, invoice_cmd, period_cmd, reconcile_cmd};
use monitors::anomaly_cmd;
use tokens::token_cmd;

use std::io::Write;

use clap::CommandFactory;
use cloudbill_core::{DateRange, ProviderState};
use cloudbill_service::{Billing, BillingConfig, Principal, SyncRequest};
use serde_json::json;

use crate::args::{
    AccountAction, AllocationAction, AnomalyAction, BillingAction, BudgetAction, ChannelAction,
    Cli, Command, DomainAction, Format, FxAction, GroupAction, InvoiceAction, KeyAction,
    MonitorAction, NotifyAction, PeriodAction, ProjectAction, ProviderAction, TokenAction,
};
use crate::render::{self, Grid};
use crate::CliError;

const ADMIN: Principal = Principal::Admin;

fn config() -> BillingConfig {
    BillingConfig::default()
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
        Command::Sync(args) => sync_cmd(&billing, args, format, out).await,
        Command::Jobs(args) => {
            jobs_cmd(&billing, args.account.as_deref(), args.limit, format, out).await
        }
        Command::Report(args) => report_cmd(&billing, &args, format, out).await,
        Command::Fx { action } => fx_cmd(&billing, action, format, out).await,
        Command::Invoice { action } => invoice_cmd(&billing, action, format, out).await,
        Command::Reconcile { period } => reconcile_cmd(&billing, &period, format, out).await,
        Command::Period { action } => period_cmd(&billing, action, format, out).await,
        command @ (Command::Anomalies(_) | Command::Forecast(_)) => {
            analysis(&billing, command, format, out).await
        }
        Command::Tags(args) => {
            let range =
                DateRange::new(args.start, args.end).map_err(|e| CliError::Usage(e.to_string()))?;
            let tags = billing.tags(&ADMIN, range, args.project.as_deref()).await?;
            render::print_tags(out, format, &tags)
        }
        Command::Token { action } => token_cmd(&billing, action, format, out).await,
        Command::Domain { action } => domain_cmd(&billing, action, format, out).await,
        Command::Channel { action } => channel_cmd(&billing, action, format, out).await,
        Command::Anomaly { action } => anomaly_cmd(&billing, action, format, out).await,
        Command::Allocation { action } => allocation_cmd(&billing, action, format, out).await,
        Command::Budget { action } => budget_cmd(&billing, action, format, out).await,
        Command::Notify { action } => notify_cmd(&billing, action, format, out).await,
        Command::Import { format } => {
            crate::files::import(&billing, format, cli.global.format, out).await
        }
        Command::Export { format } => crate::files::export(&billing, format, out).await,
        Command::Completions { .. } | Command::Man | Command::Demo(_) | Command::Key { .. } => {
            Ok(())
        }
    }
}

/// `sync`: pull the accounts' costs; one failing account fails the command (`CliError::Partial`), the others kept.
async fn sync_cmd(
    billing: &Billing,
    args: crate::args::SyncArgs,
    format: Format,
    out: &mut dyn Write,
) -> Result<(), CliError> {
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

/// Whether a command may create the database: every command that changes something does;
/// one that only reads fails on a missing database instead of leaving an empty one behind.
fn creates_database(command: &Command) -> bool {
    !matches!(
        command,
        Command::Report(_)
            | Command::Tags(_)
            | Command::Forecast(_)
            | Command::Anomalies(_)
            | Command::Jobs(_)
            | Command::Export { .. }
            | Command::Billing {
                action: BillingAction::Status
            }
            | Command::Provider {
                action: ProviderAction::List | ProviderAction::Show { .. }
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
            | Command::Domain {
                action: DomainAction::List
            }
            | Command::Fx {
                action: FxAction::List { .. }
            }
            | Command::Invoice {
                action: InvoiceAction::List { .. }
            }
            | Command::Reconcile { .. }
            | Command::Period {
                action: PeriodAction::List | PeriodAction::Show { .. }
            }
            | Command::Channel {
                action: ChannelAction::List
            }
            | Command::Budget {
                action: BudgetAction::List
                    | BudgetAction::Show { .. }
                    | BudgetAction::Status { .. }
                    | BudgetAction::Events { .. }
            }
            | Command::Notify {
                action: NotifyAction::Log { .. }
            }
            | Command::Allocation {
                action: AllocationAction::List | AllocationAction::Show { .. }
            }
            | Command::Anomaly {
                action: AnomalyAction::List { .. }
                    | AnomalyAction::Monitor {
                        action: MonitorAction::List
                    }
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
    let views = match action {
        ProviderAction::List => b.provider_views(&ADMIN).await?,
        ProviderAction::Show { name } => {
            // One provider: its settings, one row each (JSON: the provider's object).
            let v = b.provider_view(&ADMIN, &name).await?;
            let mut g = Grid::new(
                &["setting", "required", "secret", "format", "description"],
                &[],
                provider_json(&v),
            );
            for s in v.spec.settings {
                g.row(vec![
                    s.name.into(),
                    if s.required { "yes" } else { "no" }.into(),
                    if s.secret { "yes" } else { "no" }.into(),
                    s.kind.describe(),
                    s.description.into(),
                ]);
            }
            if format == Format::Table {
                writeln!(
                    out,
                    "{} ({}), {}",
                    v.spec.title,
                    v.spec.kind,
                    if v.enabled { "enabled" } else { "disabled" }
                )
                .map_err(|e| CliError::Failure(format!("cannot write the output: {e}")))?;
            }
            return render::print(out, format, &g);
        }
        ProviderAction::Enable { name } => {
            let e = b
                .set_provider_state(&ADMIN, &name, ProviderState::Enabled)
                .await?;
            vec![b.provider_view(&ADMIN, e.kind.as_str()).await?]
        }
        ProviderAction::Disable { name } => {
            let e = b
                .set_provider_state(&ADMIN, &name, ProviderState::Disabled)
                .await?;
            vec![b.provider_view(&ADMIN, e.kind.as_str()).await?]
        }
    };
    let json = json!({"providers": views.iter().map(provider_json).collect::<Vec<_>>()});
    let mut g = Grid::new(&["kind", "title", "state", "settings"], &[], json);
    for v in &views {
        let settings: Vec<String> = v
            .spec
            .settings
            .iter()
            .map(|s| {
                format!(
                    "{}{}{}",
                    s.name,
                    if s.required { "*" } else { "" },
                    if s.secret { " (secret)" } else { "" }
                )
            })
            .collect();
        g.row(vec![
            v.spec.kind.as_str().into(),
            v.spec.title.into(),
            if v.enabled { "ENABLED" } else { "DISABLED" }.into(),
            if settings.is_empty() {
                "none".into()
            } else {
                settings.join(", ")
            },
        ]);
    }
    render::print(out, format, &g)
}

/// A provider as `provider list --format json` shows it (the API's shape).
pub(crate) fn provider_json(v: &cloudbill_service::ProviderView) -> serde_json::Value {
    json!({
        "kind": v.spec.kind.as_str(),
        "title": v.spec.title,
        "enabled": v.enabled,
        "settings": v.spec.settings.iter().map(|s| json!({
            "name": s.name, "description": s.description, "required": s.required,
            "secret": s.secret, "format": s.kind.describe(),
        })).collect::<Vec<_>>(),
    })
}

/// `forecast` and `anomalies`: analyses over the report engine.
async fn analysis(
    billing: &Billing,
    command: Command,
    format: Format,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    match command {
        Command::Anomalies(args) => {
            let request = jobs::anomaly_request(&args)?;
            let found = billing.anomalies(&ADMIN, &request).await?;
            render::print_anomalies(out, format, &found)
        }
        Command::Forecast(args) => {
            let request = jobs::forecast_request(&args, billing.today())?;
            let forecast = billing.forecast(&ADMIN, &request).await?;
            render::print_forecast(out, format, &forecast)
        }
        _ => Ok(()),
    }
}

async fn report_cmd(
    billing: &Billing,
    args: &crate::args::ReportArgs,
    format: Format,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let query = report_query(args)?;
    let conversion = match &args.currency {
        None => None,
        Some(code) => Some((
            cloudbill_core::Currency::parse(code)?,
            args.fx_policy
                .as_deref()
                .unwrap_or("daily")
                .parse::<cloudbill_service::FxPolicy>()?,
        )),
    };
    let report = match conversion {
        None => billing.report(&ADMIN, &query).await?,
        Some((currency, policy)) => {
            let report = billing.report_in(&ADMIN, &query, currency, &policy).await?;
            if format != crate::args::Format::Json {
                // The rates used, for the reader; JSON carries them as `conversion`.
                if let Some(c) = &report.conversion {
                    for r in &c.rates {
                        eprintln!(
                            "converted {} to {} ({}): rates of {} to {} from {}",
                            r.from,
                            c.currency,
                            c.policy,
                            r.first_rate_date,
                            r.last_rate_date,
                            r.sources.join(", ")
                        );
                    }
                }
            }
            report
        }
    };
    render::print_report(out, format, &report, args.exact)
}
