//! The sections pages are made of: cards, sync states, currency totals, budget bars,
//! anomaly lists.

#[allow(clippy::wildcard_imports)]
use super::*;

pub(super) async fn cards(p: &Who, filter: Option<&str>) -> Result<String, ApiError> {
    let (current, last) = month_bounds(p.billing.today());
    let mut out = String::from("<div class=\"cards\">");
    for (title, range) in [("This month so far", Some(current)), ("Last month", last)] {
        let Some(range) = range else { continue };
        let mut q = ReportQuery::new(range, Granularity::Yearly);
        if let Some(id) = filter {
            q.filters.insert(GroupKey::Project, vec![id.to_owned()]);
        }
        let r = p.billing.report(p, &q).await?;
        let v = View {
            range,
            granularity: Granularity::Monthly,
        };
        let api = api_link(
            &v,
            &[],
            &filter
                .map(|id| vec![("project", id.to_owned())])
                .unwrap_or_default(),
        );
        let totals = r.totals();
        let shown = if totals.is_empty() {
            money(Decimal::ZERO, "USD", &api)
        } else {
            totals
                .iter()
                .map(|t| money(t.cost, t.currency.as_str(), &api))
                .collect::<Vec<_>>()
                .join("<br>")
        };
        let _ = write!(
            out,
            "<div class=\"card\" data-card=\"{}\"><h3>{title}</h3>{shown}</div>",
            esc(title)
        );
    }
    out.push_str("</div>");
    Ok(out)
}

pub(super) async fn sync_states(
    p: &Who,
    project: Option<cloudbill_core::ProjectId>,
) -> Result<String, ApiError> {
    let accounts = p.billing.last_jobs(p).await?;
    let mut out = String::from("<h2>Last sync per account</h2><table><tr><th>Account</th><th>State</th><th>Finished</th><th>Error</th></tr>");
    for (a, last) in accounts
        .iter()
        .filter(|(a, _)| project.is_none_or(|p| a.project == p))
    {
        let last = last.as_ref();
        let (st, fin, err) = last.map_or(
            ("never synced".to_owned(), String::new(), String::new()),
            |j| {
                (
                    j.job.state.as_str().to_owned(),
                    j.job
                        .finished_at
                        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
                        .unwrap_or_default(),
                    j.job.error.clone().unwrap_or_default(),
                )
            },
        );
        let class = last.map_or("", |j| match j.job.state {
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Partial | JobState::Running => "partial",
        });
        let _ = write!(out, "<tr data-account=\"{}\"><td>{}</td><td class=\"{class}\">{}</td><td>{}</td><td class=\"failed\">{}</td></tr>", esc(a.name.as_str()), esc(a.name.as_str()), esc(&st), esc(&fin), esc(&err));
    }
    out.push_str("</table>");
    Ok(out)
}

pub(super) fn currency_totals(report: &Report, v: &View, filters: &[(&str, String)]) -> String {
    let api = api_link(v, &["currency"], filters);
    let mut out = String::from("<h2>Totals per currency</h2><table data-table=\"currency\"><tr><th>Currency</th><th class=\"r\">Total</th></tr>");
    for t in report.totals() {
        let _ = write!(
            out,
            "<tr data-key=\"{0}\"><td>{0}</td><td class=\"r\">{1}</td></tr>",
            t.currency,
            money(t.cost, t.currency.as_str(), &api)
        );
    }
    out.push_str("</table>");
    out
}

/// The width of a budget's progress bar, in pixels.
pub(super) const BAR_WIDTH: u32 = 420;

/// Each budget's progress: actual and forecast against the amount, with its thresholds.
/// `project`: only the budgets of that project (its page); `None`: every visible budget.
pub(super) async fn budget_bars(
    p: &Who,
    project: Option<cloudbill_core::ProjectId>,
) -> Result<String, ApiError> {
    let views = p.billing.budgets(p).await?;
    let ids: Vec<cloudbill_core::BudgetId> = views
        .iter()
        .filter(|v| match project {
            Some(pid) => v.scope.kind == "project" && v.scope.id == Some(pid.as_uuid()),
            None => true,
        })
        .map(|v| v.id)
        .collect();
    if ids.is_empty() {
        return Ok(String::new());
    }
    let statuses: Vec<_> = p
        .billing
        .budget_status(p, None, None)
        .await?
        .into_iter()
        .filter(|s| ids.contains(&s.id))
        .collect();
    let mut out = String::from("<h2>Budgets</h2><table data-table=\"budgets\"><tr><th>Budget</th><th>Period</th><th class=\"r\">Actual</th><th class=\"r\">Forecast</th><th class=\"r\">Budget</th><th>Progress</th></tr>");
    for s in &statuses {
        // The bar spans the largest of the amount, the spend, the forecast and every
        // threshold's limit (`actual:1000%` sits at ten times the amount, not at its end).
        let top = [Some(s.amount), Some(s.actual), s.forecast]
            .into_iter()
            .flatten()
            .chain(s.notifications.iter().map(|n| n.limit))
            .filter(|v| *v < Decimal::MAX)
            .max()
            .unwrap_or(s.amount)
            .max(Decimal::ONE);
        // Pixel positions only (never money).
        let x = |v: Decimal| -> u32 { scaled(v, top, BAR_WIDTH) };
        let over = s.actual > s.amount;
        let _ = write!(
            out,
            "<tr data-budget=\"{name}\" data-actual=\"{actual}\" data-forecast=\"{forecast}\" data-amount=\"{amount}\">\
<td>{name}</td><td>{start} to {end}</td><td class=\"r\">{a} ({pct}%)</td><td class=\"r\">{f}</td><td class=\"r\">{b}</td><td>\
<svg width=\"{BAR_WIDTH}\" height=\"18\" role=\"img\" aria-label=\"{name}: {pct}% of the budget used\">\
<rect x=\"0\" y=\"5\" width=\"{xa}\" height=\"8\" fill=\"#e4e8ef\"/>\
<rect class=\"actual\" x=\"0\" y=\"5\" width=\"{xu}\" height=\"8\" fill=\"{color}\"/>",
            name = esc(&s.name),
            actual = s.actual,
            forecast = s.forecast.map(|f| f.to_string()).unwrap_or_default(),
            amount = s.amount,
            start = s.period.start,
            end = s.period.end.pred_opt().unwrap_or(s.period.end),
            a = esc(&format!("{} {}", s.currency.display(s.actual), s.currency)),
            pct = s
                .percent_used
                .map_or_else(|| "more than any decimal".to_owned(), |p| p.to_string()),
            f = esc(&match s.forecast {
                Some(f) => format!("{} {}", s.currency.display(f), s.currency),
                None => s.forecast_status.replace('_', " "),
            }),
            b = esc(&format!("{} {}", s.currency.display(s.amount), s.currency)),
            xa = x(s.amount),
            xu = x(s.actual),
            color = if over { "#d92d20" } else { "#2e90fa" },
        );
        if let Some(f) = s.forecast {
            let _ = write!(
                out,
                "<line class=\"forecast\" x1=\"{0}\" x2=\"{0}\" y1=\"1\" y2=\"17\" stroke=\"#1d2430\" stroke-width=\"2\" stroke-dasharray=\"3 2\"><title>forecast {1}</title></line>",
                x(f).min(BAR_WIDTH - 1),
                esc(&f.to_string())
            );
        }
        for n in &s.notifications {
            let _ = write!(
                out,
                "<line class=\"threshold {state}\" x1=\"{0}\" x2=\"{0}\" y1=\"3\" y2=\"15\" stroke=\"{c}\" stroke-width=\"1\"><title>{t} ({state})</title></line>",
                x(n.limit).min(BAR_WIDTH - 1),
                t = esc(&n.threshold),
                state = n.state,
                c = if n.state == "fired" { "#d92d20" } else { "#98a2b3" },
            );
        }
        out.push_str("</svg>");
        if let Some(note) = &s.note {
            let _ = write!(out, "<br><small>{}</small>", esc(note));
        }
        out.push_str("</td></tr>");
    }
    out.push_str("</table>");
    Ok(out)
}

/// `width × v / top` in whole pixels, for a `v` of 0 to `top` (a negative `v` is 0, one past
/// `top` is `width`), computed without leaving the decimal range whatever the amounts.
pub(crate) fn scaled(v: Decimal, top: Decimal, width: u32) -> u32 {
    if top <= Decimal::ZERO || v <= Decimal::ZERO {
        return 0;
    }
    if v >= top {
        return width;
    }
    // 0 < v < top: the ratio is below 1 and the product below `width`.
    (v / top * Decimal::from(width))
        .round()
        .try_into()
        .unwrap_or(width)
}

/// One anomaly row: days, group, kind, actual against expected, impact, state, and its
/// explanation (the contributors that moved most).
#[allow(clippy::too_many_arguments)] // One table row's cells.
pub(super) fn anomaly_row(
    out: &mut String,
    id: &str,
    days: (NaiveDate, NaiveDate),
    group: &BTreeMap<String, String>,
    kind: &str,
    amounts: (Decimal, Decimal, Decimal, cloudbill_core::Currency),
    state: &str,
    contributors: &[cloudbill_core::Contributor],
) {
    let (expected, actual, impact, cur) = amounts;
    let money = |v: Decimal| esc(&format!("{} {cur}", cur.display(v)));
    let why: Vec<String> = contributors
        .iter()
        .take(3)
        .map(|c| {
            let sign = if c.impact.is_sign_negative() { "" } else { "+" };
            esc(&format!("{} {sign}{}", c.label(" "), cur.display(c.impact)))
        })
        .collect();
    let span = if days.0 == days.1 {
        days.0.to_string()
    } else {
        format!("{} to {}", days.0, days.1)
    };
    let group: Vec<String> = group.iter().map(|(k, v)| format!("{k} {v}")).collect();
    let _ = write!(
        out,
        "<tr data-anomaly=\"{id}\" data-impact=\"{impact}\"><td>{span}</td><td>{g}</td><td>{kind}</td><td class=\"r\">{a} / {e}</td><td class=\"r\">{i}</td><td>{state}</td><td>{why}</td></tr>",
        id = esc(id),
        g = esc(&group.join(", ")),
        kind = esc(kind),
        a = money(actual),
        e = money(expected),
        i = money(impact),
        state = esc(state),
        why = why.join("<br>"),
    );
}

pub(super) const ANOMALY_HEAD: &str = "<tr><th>Days</th><th>Where</th><th>Kind</th><th class=\"r\">Actual / expected</th><th class=\"r\">Impact</th><th>State</th><th>Why (top contributors)</th></tr>";

/// The anomalies the monitors keep (open and acknowledged), newest first, at most 10.
pub(super) async fn kept_anomalies(p: &Who) -> Result<String, ApiError> {
    let kept: Vec<_> = p
        .billing
        .kept_anomalies(p, None, true)
        .await?
        .into_iter()
        .filter(|v| {
            matches!(
                v.anomaly.state,
                cloudbill_core::AnomalyState::Open | cloudbill_core::AnomalyState::Acknowledged
            )
        })
        .take(10)
        .collect();
    if kept.is_empty() {
        return Ok(String::new());
    }
    let mut out = format!("<h2>Anomalies</h2><table data-table=\"anomalies\">{ANOMALY_HEAD}");
    for v in &kept {
        let a = &v.anomaly;
        anomaly_row(
            &mut out,
            &a.id,
            (a.start, a.end),
            &a.group,
            &a.kind,
            (a.expected, a.actual, a.impact, a.currency),
            &format!("{} · {}", a.state.as_str(), v.monitor),
            &a.contributors,
        );
    }
    out.push_str("</table>");
    Ok(out)
}

/// A project's anomalies of the last complete days, split by service, explained (on demand).
pub(super) async fn project_anomalies(p: &Who, project: &str) -> Result<String, ApiError> {
    let today = p.billing.today();
    let Ok(range) = DateRange::new(
        today - chrono::Duration::days(cloudbill_service::MONITOR_WINDOW_DAYS),
        today,
    ) else {
        return Ok(String::new());
    };
    let mut request = cloudbill_service::AnomalyRequest::new(range);
    request
        .filters
        .insert(GroupKey::Project, vec![project.to_owned()]);
    let found = p.billing.anomalies(p, &request).await?;
    if found.is_empty() {
        return Ok(String::new());
    }
    let mut out = format!("<h2>Anomalies (last {} days, by service)</h2><table data-table=\"anomalies\">{ANOMALY_HEAD}", cloudbill_service::MONITOR_WINDOW_DAYS);
    for f in found.iter().take(10) {
        anomaly_row(
            &mut out,
            &f.id,
            (f.start, f.end),
            &f.group,
            f.kind,
            (f.expected, f.actual, f.impact, f.currency),
            f.state,
            &f.contributors,
        );
    }
    out.push_str("</table>");
    Ok(out)
}
