//! `channel`, `budget` and `notify`: budgets and their notifications.

use std::io::{BufRead, Write};

use cloudbill_core::{ClientSecret, Currency};
use cloudbill_service::{
    Billing, BudgetStatus, BudgetView, ChannelSpec, NewBudget, NewChannel, NewNotification,
};
use serde_json::json;

use crate::args::{
    BudgetAction, BudgetCreateArgs, ChannelAction, ChannelAddArgs, Format, NotifyAction,
};
use crate::render::{self, Grid};
use crate::CliError;

use super::ADMIN;

/// The first line of stdin, as a secret (`what` names it in errors).
fn secret_from_stdin(what: &str) -> Result<ClientSecret, CliError> {
    let mut line = zeroize::Zeroizing::new(String::new());
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| CliError::Failure(format!("cannot read the {what} from stdin: {e}")))?;
    ClientSecret::new(line.trim_end_matches(['\r', '\n']))
        .map_err(|e| CliError::Usage(format!("the {what} read from stdin is not valid: {e}")))
}

fn channel_spec(args: &ChannelAddArgs) -> Result<ChannelSpec, CliError> {
    if let Some(url) = &args.webhook {
        return Ok(ChannelSpec::Webhook {
            url: url.clone(),
            secret: secret_from_stdin("webhook signing secret")?,
        });
    }
    if args.secret_stdin {
        return Err(CliError::Usage(
            "--secret-stdin is the signing secret of a --webhook channel".into(),
        ));
    }
    if let Some(url) = &args.slack {
        return Ok(ChannelSpec::Slack {
            url: ClientSecret::new(url)?,
        });
    }
    if let Some(to) = &args.email {
        let starttls = match args.smtp_security.to_ascii_lowercase().as_str() {
            "starttls" => true,
            "none" => false,
            other => {
                return Err(CliError::Usage(format!(
                    "--smtp-security {other:?}: expected starttls or none"
                )))
            }
        };
        let password = if args.smtp_password_stdin {
            Some(secret_from_stdin("SMTP password")?)
        } else {
            None
        };
        return Ok(ChannelSpec::Email {
            to: to.clone(),
            smtp: args.smtp.clone().unwrap_or_default(),
            starttls,
            user: args.smtp_user.clone(),
            password,
        });
    }
    Err(CliError::Usage(
        "give --webhook URL --secret-stdin, --slack URL, or --email ADDR --smtp HOST:PORT".into(),
    ))
}

pub(super) async fn channel_cmd(
    b: &Billing,
    action: ChannelAction,
    format: Format,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    match action {
        ChannelAction::Add(args) => {
            let spec = channel_spec(&args)?;
            let c = b
                .add_channel(
                    &ADMIN,
                    NewChannel {
                        name: args.name.clone(),
                        spec,
                    },
                )
                .await?;
            let mut g = Grid::new(
                &["channel", "kind", "target"],
                &[],
                json!({"id": c.id, "name": c.name.as_str(), "kind": c.kind.as_str(), "target": c.target}),
            );
            g.row(vec![c.name.to_string(), c.kind.as_str().into(), c.target]);
            render::print(out, format, &g)
        }
        ChannelAction::List => {
            let channels = b.channels(&ADMIN).await?;
            let json = channels
                .iter()
                .map(|c| {
                    json!({"id": c.id, "name": c.name.as_str(), "kind": c.kind.as_str(),
                    "target": c.target, "smtp": c.smtp, "created_at": c.created_at})
                })
                .collect();
            let mut g = Grid::new(
                &["name", "kind", "target", "created"],
                &[],
                serde_json::Value::Array(json),
            );
            for c in &channels {
                let target = match &c.smtp {
                    Some(s) => format!(
                        "{} via {}:{}{}",
                        c.target,
                        s.host,
                        s.port,
                        if s.starttls { " (STARTTLS)" } else { "" }
                    ),
                    None => c.target.clone(),
                };
                g.row(vec![
                    c.name.to_string(),
                    c.kind.as_str().into(),
                    target,
                    c.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                ]);
            }
            render::print(out, format, &g)
        }
        ChannelAction::Remove { name } => {
            b.remove_channel(&ADMIN, &name).await?;
            let mut g = Grid::new(&["removed"], &[], json!({"removed": name}));
            g.row(vec![name]);
            render::print(out, format, &g)
        }
        ChannelAction::Test { name } => {
            let event = b.test_channel(&ADMIN, &name).await?;
            let mut g = Grid::new(
                &["channel", "sent", "event"],
                &[],
                json!({"channel": name, "sent": true, "event": event.id}),
            );
            g.row(vec![name, "yes".into(), event.id.to_string()]);
            render::print(out, format, &g)
        }
    }
}

fn new_budget(args: BudgetCreateArgs) -> Result<NewBudget, CliError> {
    let filters = filter_pairs(&args.filter)?;
    Ok(NewBudget {
        name: args.name,
        amount: args.amount,
        currency: args.currency,
        period: Some(args.period),
        project: args.project,
        project_group: args.project_group,
        account: args.account,
        filters,
        metric: Some(args.metric),
        notifications: args
            .notify
            .into_iter()
            .map(|threshold| NewNotification {
                threshold,
                channels: Vec::new(),
            })
            .collect(),
        channels: args.channel,
    })
}

fn budgets_grid(budgets: &[BudgetView]) -> Grid {
    let mut g = Grid::new(
        &[
            "name",
            "scope",
            "period",
            "amount",
            "metric",
            "notifications",
        ],
        &["amount"],
        serde_json::to_value(budgets).unwrap_or_default(),
    );
    for v in budgets {
        g.row(vec![
            v.name.clone(),
            scope_label(&v.scope, &v.filters),
            v.period.as_str().into(),
            format!("{} {}", v.currency.display(v.amount), v.currency),
            v.metric.as_str().into(),
            v.notifications
                .iter()
                .map(|n| format!("{} → {}", n.threshold, n.channels.join(",")))
                .collect::<Vec<_>>()
                .join("; "),
        ]);
    }
    g
}

fn money(amount: cloudbill_core::Decimal, currency: Currency) -> String {
    format!("{} {currency}", currency.display(amount))
}

fn status_grid(statuses: &[BudgetStatus]) -> Grid {
    let mut g = Grid::new(
        &[
            "budget",
            "period",
            "amount",
            "actual",
            "used",
            "forecast",
            "notifications",
        ],
        &["amount", "actual", "used", "forecast"],
        serde_json::to_value(statuses).unwrap_or_default(),
    );
    for s in statuses {
        let forecast = match s.forecast {
            Some(f) => format!("{} ({})", money(f, s.currency), percent(s.forecast_percent)),
            None => s.forecast_status.replace('_', " "),
        };
        let mut notes: Vec<String> = s
            .notifications
            .iter()
            .map(|n| format!("{} {}", n.threshold, n.state.replace('_', " ")))
            .collect();
        if let Some(note) = &s.note {
            notes.push(note.clone());
        }
        g.row(vec![
            s.name.clone(),
            format!(
                "{} to {}",
                s.period.start,
                s.period.end.pred_opt().unwrap_or(s.period.end)
            ),
            money(s.amount, s.currency),
            money(s.actual, s.currency),
            percent(s.percent_used),
            forecast,
            notes.join("; "),
        ]);
    }
    g
}

/// A percentage as shown: `80.5%`, or `—` when it does not fit a decimal.
fn percent(p: Option<cloudbill_core::Decimal>) -> String {
    p.map_or_else(|| "—".to_owned(), |p| format!("{p}%"))
}

/// `--period YYYY-MM` as the first day of that month.
fn period_day(raw: &str) -> Result<cloudbill_core::NaiveDate, CliError> {
    Ok(cloudbill_service::parse_period(raw)?)
}

/// `--filter KEY=VALUE` flags as pairs (budgets, monitors).
pub(super) fn filter_pairs(flags: &[String]) -> Result<Vec<(String, String)>, CliError> {
    flags
        .iter()
        .map(|f| {
            f.split_once('=')
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .ok_or_else(|| CliError::Usage(format!("--filter {f:?}: expected KEY=VALUE")))
        })
        .collect()
}

/// A scope and its filters as a table shows them: `project web [service=AmazonEC2]`.
pub(super) fn scope_label(
    scope: &cloudbill_service::ScopeView,
    filters: &std::collections::BTreeMap<String, Vec<String>>,
) -> String {
    let scope = match &scope.name {
        Some(n) => format!("{} {n}", scope.kind),
        None => scope.kind.to_owned(),
    };
    let filters: Vec<String> = filters
        .iter()
        .map(|(k, vs)| format!("{k}={}", vs.join("|")))
        .collect();
    if filters.is_empty() {
        scope
    } else {
        format!("{scope} [{}]", filters.join(", "))
    }
}

pub(super) async fn budget_cmd(
    b: &Billing,
    action: BudgetAction,
    format: Format,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    match action {
        BudgetAction::Create(args) => {
            let view = b.create_budget(&ADMIN, new_budget(*args)?).await?;
            let mut g = budgets_grid(std::slice::from_ref(&view));
            g.json = serde_json::to_value(&view).unwrap_or_default();
            render::print(out, format, &g)
        }
        BudgetAction::List => render::print(out, format, &budgets_grid(&b.budgets(&ADMIN).await?)),
        BudgetAction::Show { name } => {
            let view = b.budget(&ADMIN, &name).await?;
            let mut g = budgets_grid(std::slice::from_ref(&view));
            g.json = serde_json::to_value(&view).unwrap_or_default();
            render::print(out, format, &g)
        }
        BudgetAction::Delete { name } => {
            b.delete_budget(&ADMIN, &name).await?;
            let mut g = Grid::new(&["deleted"], &[], json!({"deleted": name}));
            g.row(vec![name]);
            render::print(out, format, &g)
        }
        BudgetAction::Status { name, period } => {
            let day = period.as_deref().map(period_day).transpose()?;
            let statuses = b.budget_status(&ADMIN, name.as_deref(), day).await?;
            render::print(out, format, &status_grid(&statuses))
        }
        BudgetAction::Events { name, limit } => {
            let events = b.budget_events(&ADMIN, name.as_deref(), limit).await?;
            let mut g = Grid::new(
                &[
                    "when",
                    "budget",
                    "event",
                    "threshold",
                    "period",
                    "actual",
                    "forecast",
                    "cause",
                    "id",
                ],
                &["actual", "forecast"],
                serde_json::to_value(&events).unwrap_or_default(),
            );
            for event in &events {
                let (threshold, period, actual, forecast) = match &event.payload {
                    Some(said) => {
                        let currency = Currency::parse(&said.currency).ok();
                        // Amounts shown like the status table's (JSON keeps every digit).
                        let shown = |value: cloudbill_core::Decimal| match currency {
                            Some(cur) => money(value, cur),
                            None => value.to_string(),
                        };
                        let last_day = said.period.end.pred_opt().unwrap_or(said.period.end);
                        (
                            format!("{}:{}", said.threshold.kind, said.threshold.value),
                            format!("{} to {last_day}", said.period.start),
                            shown(said.actual),
                            said.forecast.map(shown).unwrap_or_default(),
                        )
                    }
                    None => Default::default(),
                };
                g.row(vec![
                    event.occurred_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                    event.budget.clone(),
                    event.kind.trim_start_matches("budget.").to_owned(),
                    threshold,
                    period,
                    actual,
                    forecast,
                    event.cause.clone(),
                    event.id.to_string(),
                ]);
            }
            render::print(out, format, &g)
        }
        BudgetAction::Evaluate => {
            let e = b.evaluate_all_budgets(&ADMIN).await?;
            let mut g = Grid::new(
                &["budgets", "events", "errors"],
                &["budgets", "events"],
                serde_json::to_value(&e).unwrap_or_default(),
            );
            g.row(vec![
                e.budgets.to_string(),
                e.events.len().to_string(),
                e.errors.join("; "),
            ]);
            render::print(out, format, &g)?;
            if e.errors.is_empty() {
                Ok(())
            } else {
                Err(CliError::Partial)
            }
        }
    }
}

pub(super) async fn notify_cmd(
    b: &Billing,
    action: NotifyAction,
    format: Format,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    match action {
        NotifyAction::Flush => {
            let r = b.flush_notifications(&ADMIN).await?;
            let mut g = Grid::new(
                &["sent", "retrying", "failed"],
                &["sent", "retrying", "failed"],
                serde_json::to_value(&r).unwrap_or_default(),
            );
            g.row(vec![
                r.sent.to_string(),
                r.retrying.to_string(),
                r.failed.to_string(),
            ]);
            render::print(out, format, &g)?;
            if r.retrying == 0 && r.failed == 0 {
                Ok(())
            } else {
                Err(CliError::Partial)
            }
        }
        NotifyAction::Log { limit } => {
            let log = b.delivery_log(&ADMIN, limit).await?;
            let mut g = Grid::new(
                &[
                    "queued",
                    "event",
                    "channel",
                    "state",
                    "attempts",
                    "next attempt",
                    "last error",
                    "event id",
                ],
                &["attempts"],
                serde_json::to_value(&log).unwrap_or_default(),
            );
            for d in &log {
                let x = &d.delivery;
                g.row(vec![
                    x.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                    x.event_kind.clone(),
                    d.channel_name.clone(),
                    x.state.as_str().into(),
                    x.attempts.to_string(),
                    if x.state == cloudbill_core::DeliveryState::Pending {
                        x.next_attempt_at.format("%Y-%m-%d %H:%M:%S").to_string()
                    } else {
                        String::new()
                    },
                    x.last_error.clone().unwrap_or_default(),
                    x.event.to_string(),
                ]);
            }
            render::print(out, format, &g)
        }
    }
}
