//! `anomaly`: monitors and the anomalies they keep.

use std::io::Write;

use cloudbill_core::AnomalyState;
use cloudbill_service::{AnomalyView, Billing, MonitorView, NewMonitor};
use serde_json::json;

use crate::args::{AnomalyAction, Format, MonitorAction, MonitorCreateArgs};
use crate::render::{self, Grid};
use crate::CliError;

use super::ADMIN;

fn new_monitor(args: MonitorCreateArgs) -> Result<NewMonitor, CliError> {
    let filters = super::budgets::filter_pairs(&args.filter)?;
    Ok(NewMonitor {
        name: args.name,
        project: args.project,
        project_group: args.project_group,
        account: args.account,
        filters,
        dimension: Some(args.dimension),
        z: args.z,
        min_amount: args.min_amount,
        min_percent: args.min_percent,
        direction: Some(args.direction),
        channels: args.channel,
    })
}

fn monitors_grid(monitors: &[MonitorView]) -> Grid {
    let mut g = Grid::new(
        &[
            "name",
            "scope",
            "split by",
            "thresholds",
            "direction",
            "channels",
        ],
        &[],
        serde_json::to_value(monitors).unwrap_or_default(),
    );
    for m in monitors {
        g.row(vec![
            m.name.clone(),
            super::budgets::scope_label(&m.scope, &m.filters),
            m.dimension.clone(),
            format!("z ≥ {}, ≥ {}, ≥ {}%", m.z, m.min_amount, m.min_percent),
            m.direction.into(),
            m.channels.join(", "),
        ]);
    }
    g
}

fn anomalies_grid(anomalies: &[AnomalyView]) -> Grid {
    let mut g = Grid::new(
        &[
            "id",
            "monitor",
            "state",
            "kind",
            "group",
            "days",
            "expected",
            "actual",
            "impact",
            "top contributor",
        ],
        &["expected", "actual", "impact"],
        serde_json::to_value(anomalies).unwrap_or_default(),
    );
    for v in anomalies {
        let a = &v.anomaly;
        let money =
            |x: cloudbill_core::Decimal| format!("{} {}", a.currency.display(x), a.currency);
        let group: Vec<String> = a.group.iter().map(|(k, x)| format!("{k}={x}")).collect();
        let top = a
            .contributors
            .first()
            .map(|c| {
                let group: Vec<String> = c.group.iter().map(|(k, x)| format!("{k}={x}")).collect();
                format!("{} ({})", group.join(","), c.impact)
            })
            .unwrap_or_default();
        let state = match &a.closed_reason {
            Some(r) if a.state == AnomalyState::Closed => format!("closed ({r})"),
            _ => a.state.as_str().to_owned(),
        };
        g.row(vec![
            a.id.clone(),
            v.monitor.clone(),
            state,
            a.kind.clone(),
            group.join(", "),
            if a.start == a.end {
                a.start.to_string()
            } else {
                format!("{} to {}", a.start, a.end)
            },
            money(a.expected),
            money(a.actual),
            money(a.impact),
            top,
        ]);
    }
    g
}

pub(super) async fn anomaly_cmd(
    b: &Billing,
    action: AnomalyAction,
    format: Format,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    match action {
        AnomalyAction::Monitor { action } => match action {
            MonitorAction::Create(args) => {
                let view = b.create_monitor(&ADMIN, new_monitor(*args)?).await?;
                let mut g = monitors_grid(std::slice::from_ref(&view));
                g.json = serde_json::to_value(&view).unwrap_or_default();
                render::print(out, format, &g)
            }
            MonitorAction::List => {
                render::print(out, format, &monitors_grid(&b.monitors(&ADMIN).await?))
            }
            MonitorAction::Delete { name } => {
                b.delete_monitor(&ADMIN, &name).await?;
                let mut g = Grid::new(&["deleted"], &[], json!({"deleted": name}));
                g.row(vec![name]);
                render::print(out, format, &g)
            }
        },
        AnomalyAction::List { monitor, state } => {
            let all = match state.as_str() {
                "open" => false,
                "all" => true,
                other => return Err(CliError::Usage(format!("--state {other:?}: open or all"))),
            };
            let kept = b.kept_anomalies(&ADMIN, monitor.as_deref(), all).await?;
            render::print(out, format, &anomalies_grid(&kept))
        }
        AnomalyAction::Ack { id } | AnomalyAction::Ignore { id } if id.trim().is_empty() => {
            Err(CliError::Usage("an anomaly id is required".into()))
        }
        AnomalyAction::Ack { id } => {
            set_state(b, &id, AnomalyState::Acknowledged, format, out).await
        }
        AnomalyAction::Ignore { id } => set_state(b, &id, AnomalyState::Ignored, format, out).await,
        AnomalyAction::Detect => {
            let d = b.run_all_monitors(&ADMIN).await?;
            let mut g = Grid::new(
                &["monitors", "opened", "closed", "events", "errors"],
                &["monitors", "opened", "closed", "events"],
                serde_json::to_value(&d).unwrap_or_default(),
            );
            g.row(vec![
                d.monitors.to_string(),
                d.opened.to_string(),
                d.closed.to_string(),
                d.events.len().to_string(),
                d.errors.join("; "),
            ]);
            render::print(out, format, &g)?;
            if d.errors.is_empty() {
                Ok(())
            } else {
                Err(CliError::Partial)
            }
        }
    }
}

async fn set_state(
    b: &Billing,
    id: &str,
    state: AnomalyState,
    format: Format,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    b.set_anomaly_state(&ADMIN, id, state).await?;
    let mut g = Grid::new(
        &["anomaly", "state"],
        &[],
        json!({"id": id, "state": state.as_str()}),
    );
    g.row(vec![id.to_owned(), state.as_str().into()]);
    render::print(out, format, &g)
}
