//! `jobs` and the report flags.

use std::collections::BTreeMap;
use std::io::Write;

use cloudbill_service::{Billing, GroupKey, Query, ReportRequest, ServiceError};
use serde_json::json;

use crate::args::{Format, ReportArgs};
use crate::render::{self, Grid};
use crate::CliError;

use super::ADMIN;

pub(super) async fn jobs_cmd(
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
    let mut filters = filter_flags("--tag", &args.tag, |k| format!("tag:{k}"))?;
    merge(
        &mut filters,
        filter_flags("--filter", &args.filter, str::to_owned)?,
    );
    named_filters(
        &mut filters,
        [
            (GroupKey::Project, &args.project),
            (GroupKey::ProjectGroup, &args.project_group),
            (GroupKey::ServiceAccount, &args.account),
            (GroupKey::Provider, &args.provider),
            (GroupKey::Region, &args.region),
            (GroupKey::Service, &args.service),
        ],
    );
    let request = ReportRequest {
        start: args.start.to_string(),
        end: args.end.to_string(),
        granularity: Some(args.granularity.clone()),
        group_by: args.group_by.clone(),
        filters,
        sort: Some(args.sort.clone()),
        limit: args.limit,
        offset: args.offset,
        metric: Some(args.metric.clone()),
        currency: args.currency.clone(),
        fx_policy: args.fx_policy.clone(),
        allocated: Some(args.allocated),
    };
    request.to_query().map_err(|e| match e {
        ServiceError::Query(cloudbill_service::QueryError::ZeroLimit) => {
            CliError::Usage("--limit must be at least 1".into())
        }
        other => CliError::Usage(other.to_string()),
    })
}

/// The forecast flags as the service's request (filters parsed as the report's).
pub(crate) fn forecast_request(
    args: &crate::args::ForecastArgs,
    today: chrono::NaiveDate,
) -> Result<cloudbill_service::ForecastRequest, CliError> {
    // The service's clock (CLOUDBILL_TODAY when set), as every default day.
    let as_of = args.as_of.unwrap_or(today);
    let mut filters = filter_flags("--filter", &args.filter, str::to_owned)?;
    named_filters(
        &mut filters,
        [
            (GroupKey::Project, &args.project),
            (GroupKey::ProjectGroup, &args.project_group),
            (GroupKey::ServiceAccount, &args.account),
        ],
    );
    // The report's parser checks the keys (one day's range: only the filters are kept).
    let parsed = ReportRequest {
        start: as_of.to_string(),
        end: as_of.succ_opt().unwrap_or(as_of).to_string(),
        filters,
        ..ReportRequest::default()
    }
    .to_query()
    .map_err(|e| CliError::Usage(e.to_string()))?;
    let mut request = cloudbill_service::ForecastRequest::new(as_of);
    request.filters = parsed.filters;
    request.period = args
        .period
        .parse()
        .map_err(|e: cloudbill_core::ValidationError| CliError::Usage(e.to_string()))?;
    request.restate_days = args.restate_days;
    request.allocated = args.allocated;
    Ok(request)
}

/// The anomaly flags as the service's request.
pub(crate) fn anomaly_request(
    args: &crate::args::AnomaliesArgs,
) -> Result<cloudbill_service::AnomalyRequest, CliError> {
    use cloudbill_service::AnomalyDirection as Direction;
    let usage = |e: &dyn std::fmt::Display| CliError::Usage(e.to_string());
    let mut filters = filter_flags("--filter", &args.filter, str::to_owned)?;
    named_filters(
        &mut filters,
        [
            (GroupKey::Project, &args.project),
            (GroupKey::ServiceAccount, &args.account),
        ],
    );
    let parsed = ReportRequest {
        start: args.start.to_string(),
        end: args.end.to_string(),
        group_by: vec![args.group_by.clone()],
        filters,
        ..ReportRequest::default()
    }
    .to_query()
    .map_err(|e| usage(&e))?;
    let mut request = cloudbill_service::AnomalyRequest::new(parsed.range);
    request.group_by = parsed
        .group_by
        .first()
        .cloned()
        .unwrap_or(GroupKey::Service);
    request.filters = parsed.filters;
    request.settings.direction = match args.direction.as_str() {
        "spikes" => Direction::Spikes,
        "both" => Direction::Both,
        other => return Err(usage(&format!("--direction {other:?}: spikes or both"))),
    };
    let decimal = |flag: &str, raw: &str| {
        cloudbill_core::parse_decimal(raw)
            .ok()
            .filter(|d| !d.is_sign_negative())
            .ok_or_else(|| usage(&format!("{flag} {raw:?} is not a decimal >= 0")))
    };
    if let Some(raw) = &args.min_amount {
        request.settings.min_amount = decimal("--min-amount", raw)?;
    }
    if let Some(raw) = &args.min_percent {
        request.settings.min_percent = decimal("--min-percent", raw)?;
    }
    if !["open", "all"].contains(&args.state.as_str()) {
        return Err(usage(&format!("--state {:?}: open or all", args.state)));
    }
    request.all_states = args.state == "all";
    request.strict_history = true;
    Ok(request)
}

/// `KEY=VALUE` flags (`--tag`, `--filter`) as filters, each key mapped by `key`.
fn filter_flags(
    flag: &str,
    raw: &[String],
    key: impl Fn(&str) -> String,
) -> Result<BTreeMap<String, Vec<String>>, CliError> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in raw {
        let (k, v) = r
            .split_once('=')
            .filter(|(k, _)| !k.trim().is_empty())
            .ok_or_else(|| {
                CliError::Usage(format!(
                    "{flag} expects KEY=VALUE, got {:?}",
                    cloudbill_core::cut(r, 60)
                ))
            })?;
        out.entry(key(k.trim())).or_default().push(v.to_owned());
    }
    Ok(out)
}

fn merge(into: &mut BTreeMap<String, Vec<String>>, more: BTreeMap<String, Vec<String>>) {
    for (k, v) in more {
        into.entry(k).or_default().extend(v);
    }
}

/// The named filter flags (`--project`, `--account`, …) added to `filters`.
fn named_filters<'a>(
    filters: &mut BTreeMap<String, Vec<String>>,
    named: impl IntoIterator<Item = (GroupKey, &'a Vec<String>)>,
) {
    for (key, values) in named {
        if !values.is_empty() {
            filters
                .entry(key.as_str().to_owned())
                .or_default()
                .extend(values.iter().cloned());
        }
    }
}
