//! The billing dashboard: server-rendered HTML with inline CSS and SVG charts, so the numbers
//! show with JavaScript off and nothing is fetched from the internet.
//!
//! The pages (consolidated, project, reconcile, login) and their sections (cards, budget bars,
//! anomaly lists, tables) share one style sheet, one page frame and one escaping rule, which is
//! why they stay together; the explorer, with its own view state, is `explore/`. A split into a
//! module per page is the next step when another page joins.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use axum::extract::{Form, Path, Query, State};
use axum::http::header;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use chrono::{Datelike, Months, NaiveDate, Utc};
use cloudbill_core::{DateRange, Decimal, Granularity, JobState};
use cloudbill_service::{GroupKey, Principal, Query as ReportQuery, Report};
use serde::Deserialize;

use crate::auth::Who;
use crate::auth::{PageAuth, COOKIE};
use crate::{ApiError, AppState};

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/projects/{id}", get(project_page))
        .route("/explore", get(crate::explore::explore))
        .route("/reconcile", get(reconcile_page))
        .route("/login", get(login_form).post(login))
        .route("/logout", axum::routing::post(logout))
}

#[derive(Debug, Deserialize, Default)]
pub(crate) struct RangeParams {
    start: Option<String>,
    end: Option<String>,
    granularity: Option<String>,
}

struct View {
    range: DateRange,
    granularity: Granularity,
}

fn view(params: &RangeParams) -> Result<View, ApiError> {
    let today = Utc::now().date_naive();
    let default_start = today
        .checked_sub_months(Months::new(2))
        .and_then(|d| d.with_day(1))
        .unwrap_or(today);
    let start = params
        .start
        .clone()
        .unwrap_or_else(|| default_start.to_string());
    let end = params
        .end
        .clone()
        .unwrap_or_else(|| today.succ_opt().unwrap_or(today).to_string());
    let invalid = |e: cloudbill_core::ValidationError| {
        ApiError::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_query",
            e.to_string(),
        )
    };
    Ok(View {
        range: DateRange::parse(&start, &end).map_err(invalid)?,
        granularity: params
            .granularity
            .as_deref()
            .unwrap_or("MONTHLY")
            .parse()
            .map_err(invalid)?,
    })
}

/// HTML-escapes text.
pub(crate) fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// A rounded amount for display, with the exact value in `data-cost` and linked to the API.
fn money(cost: Decimal, currency: &str, api: &str) -> String {
    format!(
        "<a class=\"num\" href=\"{}\" data-cost=\"{cost}\" data-currency=\"{currency}\" title=\"{cost} {currency}\">{} {currency}</a>",
        esc(api),
        cost.round_dp(2)
    )
}

fn api_link(v: &View, group_by: &[&str], filters: &[(&str, String)]) -> String {
    let mut url = format!(
        "/api/v1/billing/query?start={}&end={}&granularity={}",
        v.range.start(),
        v.range.end(),
        v.granularity
    );
    if !group_by.is_empty() {
        let _ = write!(url, "&group_by={}", group_by.join(","));
    }
    for (k, val) in filters {
        let _ = write!(url, "&filter.{k}={val}");
    }
    url
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;color:#1d2430;background:#f5f7fa}\
header{background:#1d2430;color:#fff;padding:12px 24px;display:flex;gap:24px;align-items:center}\
header a{color:#cfe3ff}main{padding:16px 24px;max-width:1100px}\
.cards{display:flex;gap:16px;flex-wrap:wrap}.card{background:#fff;border-radius:8px;padding:12px 16px;box-shadow:0 1px 2px #0002;min-width:200px}\
.card h3{margin:0 0 6px;font-size:13px;color:#5a6577;font-weight:600}.card .num{font-size:22px}\
table{border-collapse:collapse;background:#fff;margin:8px 0 24px;min-width:480px;box-shadow:0 1px 2px #0002}\
th,td{padding:6px 12px;border-bottom:1px solid #e4e8ef;text-align:left}td.r,th.r{text-align:right}\
a.num{color:inherit;text-decoration:none;font-variant-numeric:tabular-nums}a.num:hover{text-decoration:underline}\
.failed{color:#b42318}.succeeded{color:#067647}.partial{color:#b54708}form.range{margin:8px 0 16px}\
svg text{font-size:10px;fill:#5a6577}line.grid{stroke:#e4e8ef}\
.legend span{margin-right:12px;font-size:13px}.legend i,i.dot{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:4px}\
.chip{background:#e8eefc;border-radius:12px;padding:2px 10px;text-decoration:none;color:#1d2430}.presets a{margin-right:10px}\
.movers{display:flex;gap:32px}.movers h3{font-size:14px;margin:8px 0}tr.total th,tr.total td{font-weight:600}\
caption{text-align:left;padding:6px 0;color:#5a6577}g.forecast line{stroke:#1d2430;stroke-width:2;stroke-dasharray:4 3}path.anomaly{fill:#d92d20}\
@media (prefers-color-scheme:dark){body{background:#10141b;color:#e6e9ef}a{color:#9cc3ff}table,.card{background:#1a2029}\
th,td{border-color:#2c3440}svg text{fill:#aab3c0}line.grid{stroke:#2c3440}.chip{background:#24324a;color:#e6e9ef}caption{color:#aab3c0}g.forecast line{stroke:#e6e9ef}}";

pub(crate) fn page(title: &str, principal: &Principal, body: &str) -> Html<String> {
    let nav = if *principal == Principal::Admin {
        "<a href=\"/\">Consolidated</a><a href=\"/explore\">Explore</a><a href=\"/reconcile\">Reconcile</a>"
    } else {
        "<a href=\"/explore\">Explore</a>"
    };
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t} · cloudbill</title>\
<meta name=\"viewport\" content=\"width=device-width\"><style>{STYLE}</style></head><body>\
<header><strong>cloudbill</strong>{nav}<form method=\"post\" action=\"/logout\" style=\"margin-left:auto\"><button>Log out</button></form></header>\
<main><h1>{t}</h1>{body}</main></body></html>",
        t = esc(title)
    ))
}

fn range_form(v: &View, action: &str) -> String {
    let option = |g: Granularity| {
        format!(
            "<option value=\"{0}\"{1}>{0}</option>",
            g.as_str(),
            if g == v.granularity { " selected" } else { "" }
        )
    };
    format!(
        "<form class=\"range\" method=\"get\" action=\"{}\">From <input type=\"date\" name=\"start\" value=\"{}\"> \
to (exclusive) <input type=\"date\" name=\"end\" value=\"{}\"> <select name=\"granularity\">{}{}{}</select> \
<button>Show</button></form>",
        esc(action),
        v.range.start(),
        v.range.end(),
        option(Granularity::Daily),
        option(Granularity::Monthly),
        option(Granularity::Yearly)
    )
}

/// An SVG bar chart of the consolidated buckets, one series per currency.
fn chart(report: &Report) -> String {
    let Some(row) = report.results.first() else {
        return "<p>No costs in this range.</p>".into();
    };
    let mut by_currency: BTreeMap<String, Vec<(String, Decimal)>> = BTreeMap::new();
    for b in &row.billing_data {
        by_currency
            .entry(b.currency.to_string())
            .or_default()
            .push((b.date.clone(), b.cost));
    }
    let mut out = String::new();
    for (currency, bars) in by_currency {
        let max = bars.iter().map(|b| b.1).fold(Decimal::ZERO, Decimal::max);
        let (w, h) = (720u32, 180u32);
        let n = u32::try_from(bars.len()).unwrap_or(1).max(1);
        let slot = w / n;
        let _ = write!(out, "<figure><figcaption>Trend ({currency})</figcaption><svg role=\"img\" width=\"{w}\" height=\"{}\" viewBox=\"0 0 {w} {}\">", h + 30, h + 30);
        for (i, (label, cost)) in bars.iter().enumerate() {
            let bar_h = scaled(*cost, max, h);
            let x = u32::try_from(i).unwrap_or(0) * slot + 2;
            let _ = write!(
                out,
                "<rect x=\"{x}\" y=\"{}\" width=\"{}\" height=\"{bar_h}\" fill=\"#3b82f6\" data-cost=\"{cost}\"><title>{} {cost} {currency}</title></rect>",
                h - bar_h,
                slot.saturating_sub(4).max(1),
                esc(label)
            );
            if n <= 16 || i % usize::try_from(n / 12).unwrap_or(1).max(1) == 0 {
                let _ = write!(
                    out,
                    "<text x=\"{x}\" y=\"{}\">{}</text>",
                    h + 14,
                    esc(label)
                );
            }
        }
        out.push_str("</svg></figure>");
    }
    out
}

fn table(
    title: &str,
    key: &str,
    report: &Report,
    link: impl Fn(&str) -> String,
    api: impl Fn(&str) -> String,
) -> String {
    let mut out = format!(
        "<h2>{}</h2><table data-table=\"{}\"><tr><th>{}</th><th class=\"r\">Total</th></tr>",
        esc(title),
        esc(key),
        esc(key)
    );
    for row in &report.results {
        let name = row.group.get(key).cloned().unwrap_or_default();
        for t in &row.total {
            let _ = write!(
                out,
                "<tr data-key=\"{}\"><td>{}</td><td class=\"r\">{}</td></tr>",
                esc(&name),
                link(&name),
                money(t.cost, t.currency.as_str(), &api(&name))
            );
        }
    }
    out.push_str("</table>");
    out
}

fn month_bounds(today: NaiveDate) -> (DateRange, Option<DateRange>) {
    let this = today.with_day(1).unwrap_or(today);
    let tomorrow = today.succ_opt().unwrap_or(today);
    let current = DateRange::new(this, tomorrow).unwrap_or_else(|_| DateRange::day(today));
    let last = this
        .checked_sub_months(Months::new(1))
        .and_then(|s| DateRange::new(s, this).ok());
    (current, last)
}

async fn cards(p: &Who, filter: Option<&str>) -> Result<String, ApiError> {
    let (current, last) = month_bounds(Utc::now().date_naive());
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

async fn sync_states(
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

fn currency_totals(report: &Report, v: &View, filters: &[(&str, String)]) -> String {
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
const BAR_WIDTH: u32 = 420;

/// Each budget's progress: actual and forecast against the amount, with its thresholds.
/// `project`: only the budgets of that project (its page); `None`: every visible budget.
async fn budget_bars(
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
fn anomaly_row(
    out: &mut String,
    id: &str,
    days: (NaiveDate, NaiveDate),
    group: &BTreeMap<String, String>,
    kind: &str,
    amounts: (Decimal, Decimal, Decimal, cloudbill_core::Currency),
    state: &str,
    contributors: &serde_json::Value,
) {
    let (expected, actual, impact, cur) = amounts;
    let money = |v: Decimal| esc(&format!("{} {cur}", cur.display(v)));
    let why: Vec<String> = contributors
        .as_array()
        .map(|list| {
            list.iter()
                .take(3)
                .map(|c| {
                    let who: Vec<String> = c["group"]
                        .as_object()
                        .map(|o| {
                            o.iter()
                                .map(|(k, v)| format!("{k} {}", v.as_str().unwrap_or_default()))
                                .collect()
                        })
                        .unwrap_or_default();
                    let delta = c["impact"]
                        .as_str()
                        .and_then(|x| x.parse::<Decimal>().ok())
                        .map(|x| {
                            format!(
                                "{}{}",
                                if x.is_sign_negative() { "" } else { "+" },
                                cur.display(x)
                            )
                        })
                        .unwrap_or_default();
                    esc(&format!("{} {delta}", who.join(", ")))
                })
                .collect()
        })
        .unwrap_or_default();
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

const ANOMALY_HEAD: &str = "<tr><th>Days</th><th>Where</th><th>Kind</th><th class=\"r\">Actual / expected</th><th class=\"r\">Impact</th><th>State</th><th>Why (top contributors)</th></tr>";

/// The anomalies the monitors keep (open and acknowledged), newest first, at most 10.
async fn kept_anomalies(p: &Who) -> Result<String, ApiError> {
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
async fn project_anomalies(p: &Who, project: &str) -> Result<String, ApiError> {
    let today = Utc::now().date_naive();
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
            &serde_json::to_value(&f.contributors).unwrap_or_default(),
        );
    }
    out.push_str("</table>");
    Ok(out)
}

#[derive(Deserialize, Default)]
struct ReconcileParams {
    /// `YYYY-MM` (default: last month).
    period: Option<String>,
}

/// A month's invoices against the stored records (admin), with the month to pick.
async fn reconcile_page(
    PageAuth(p): PageAuth,
    Query(params): Query<ReconcileParams>,
) -> Result<Response, ApiError> {
    let last_month = month_bounds(Utc::now().date_naive())
        .1
        .map(|r| r.start().format("%Y-%m").to_string())
        .unwrap_or_default();
    let period = params.period.unwrap_or(last_month);
    let r = p.billing.reconcile(&p, &period).await?;
    let mut body = format!(
        "<form class=\"range\" method=\"get\" action=\"/reconcile\">Month <input type=\"month\" name=\"period\" value=\"{}\"> <button>Show</button></form>",
        esc(&r.period)
    );
    if r.accounts.is_empty() {
        body.push_str("<p>No invoices and no records for this month. Import invoices with <code>cloudbill invoice import FILE</code>.</p>");
    } else {
        body.push_str("<table data-table=\"reconcile\"><tr><th>Account</th><th>Currency</th><th>Invoice</th><th class=\"r\">Invoice total</th><th class=\"r\">Billed</th><th class=\"r\">Difference</th><th>Status</th></tr>");
        let cell = |d: Option<Decimal>| d.map(|v| v.to_string()).unwrap_or_default();
        for a in &r.accounts {
            let class = match a.status {
                "matched" => "succeeded",
                "mismatched" => "failed",
                _ => "partial",
            };
            let _ = write!(
                body,
                "<tr data-status=\"{status}\"><td>{account}</td><td>{cur}</td><td>{inv}</td><td class=\"r\">{total}</td><td class=\"r\">{billed}</td><td class=\"r\">{diff}</td><td class=\"{class}\">{status}</td></tr>",
                status = a.status,
                account = esc(&a.account),
                cur = a.currency,
                inv = esc(a.invoice_id.as_deref().unwrap_or("")),
                total = cell(a.invoice_total),
                billed = cell(a.billed),
                diff = cell(a.difference),
            );
        }
        body.push_str("</table>");
    }
    Ok(page(&format!("Reconciliation · {}", r.period), &p, &body).into_response())
}

async fn home(
    PageAuth(p): PageAuth,
    Query(params): Query<RangeParams>,
) -> Result<Response, ApiError> {
    if let Principal::ProjectMember { projects } = &p.principal {
        // Members have no consolidated view: send them to their project.
        return Ok(match projects.first() {
            Some(id) => Redirect::to(&format!("/projects/{id}")).into_response(),
            None => ApiError::from(cloudbill_service::ServiceError::Forbidden(
                "no project".into(),
            ))
            .into_response(),
        });
    }
    let v = view(&params)?;
    let mut q = ReportQuery::new(v.range, v.granularity);
    let consolidated = p.billing.report(&p, &q).await?;
    q.group_by = vec![GroupKey::Project];
    let per_project = p.billing.report(&p, &q).await?;
    q.group_by = vec![GroupKey::ServiceAccount];
    let per_account = p.billing.report(&p, &q).await?;
    let projects = p.billing.projects(&p).await?;
    let domain = p.billing.domain().await?;
    let mut body = cards(&p, None).await?;
    body.push_str(&budget_bars(&p, None).await?);
    body.push_str(&kept_anomalies(&p).await?);
    body.push_str(&range_form(&v, "/"));
    body.push_str(&chart(&consolidated));
    body.push_str(&currency_totals(&consolidated, &v, &[]));
    body.push_str(&table(
        "Per project",
        "project",
        &per_project,
        |name| match projects.iter().find(|x| x.name.as_str() == name) {
            Some(x) => format!(
                "<a href=\"/projects/{}?start={}&end={}&granularity={}\">{}</a>",
                x.id,
                v.range.start(),
                v.range.end(),
                v.granularity,
                esc(name)
            ),
            None => esc(name),
        },
        |name| api_link(&v, &["project"], &[("project", name.to_owned())]),
    ));
    body.push_str(&table(
        "Per account",
        "service_account",
        &per_account,
        esc,
        |name| {
            api_link(
                &v,
                &["service_account"],
                &[("service_account", name.to_owned())],
            )
        },
    ));
    body.push_str(&sync_states(&p, None).await?);
    Ok(page(
        &format!("Consolidated billing · {}", domain.name),
        &p,
        &body,
    )
    .into_response())
}

async fn project_page(
    PageAuth(p): PageAuth,
    Path(id): Path<String>,
    Query(params): Query<RangeParams>,
) -> Result<Response, ApiError> {
    let project = p.billing.project(&p, &id).await?;
    let v = view(&params)?;
    let pid = project.id.to_string();
    let filters = [("project", pid.clone())];
    let mut q = ReportQuery::new(v.range, v.granularity);
    q.filters.insert(GroupKey::Project, vec![pid.clone()]);
    let total = p.billing.report(&p, &q).await?;
    q.group_by = vec![GroupKey::ServiceAccount];
    let per_account = p.billing.report(&p, &q).await?;
    q.group_by = vec![GroupKey::Service];
    let per_service = p.billing.report(&p, &q).await?;
    let mut body = cards(&p, Some(&pid)).await?;
    body.push_str(&budget_bars(&p, Some(project.id)).await?);
    body.push_str(&project_anomalies(&p, &pid).await?);
    body.push_str(&range_form(&v, &format!("/projects/{pid}")));
    let _ = write!(
        body,
        "<p><a href=\"/explore?start={}&amp;end={}&amp;group_by=service&amp;filter.project={pid}\">Explore this project</a></p>",
        v.range.start(),
        v.range.end()
    );
    body.push_str(&chart(&total));
    body.push_str(&currency_totals(&total, &v, &filters));
    body.push_str(&table(
        "Per account",
        "service_account",
        &per_account,
        esc,
        |name| {
            api_link(
                &v,
                &["service_account"],
                &[
                    ("project", pid.clone()),
                    ("service_account", name.to_owned()),
                ],
            )
        },
    ));
    body.push_str(&table(
        "Per service",
        "service",
        &per_service,
        esc,
        |name| {
            api_link(
                &v,
                &["service"],
                &[("project", pid.clone()), ("service", name.to_owned())],
            )
        },
    ));
    body.push_str(&sync_states(&p, Some(project.id)).await?);
    Ok(page(&format!("Project {}", project.name), &p, &body).into_response())
}

#[derive(Deserialize, Default)]
struct LoginQuery {
    error: Option<String>,
    next: Option<String>,
}

/// Percent-encodes everything but unreserved characters and `/`, for a `next=` parameter.
pub(crate) fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Only a path on this server may be a login target (no scheme, no `//host`, no backslash).
fn local_target(next: Option<&str>) -> Option<&str> {
    // A path on this site: one leading `/` (not `//`, a scheme-relative URL), no backslash
    // (browsers read `/\\` as `//`), and only visible ASCII: browsers strip tabs and line
    // breaks from a Location (`/\t/evil.com` becomes `//evil.com`), and control characters
    // are not a valid header value.
    next.filter(|n| {
        n.starts_with('/')
            && !n.starts_with("//")
            && !n.contains('\\')
            && n.bytes().all(|b| b.is_ascii_graphic())
    })
}

async fn login_form(Query(q): Query<LoginQuery>) -> Html<String> {
    let error = if q.error.is_some() {
        "<p class=\"failed\">That token is not valid.</p>"
    } else {
        ""
    };
    let next = local_target(q.next.as_deref()).map_or_else(String::new, |n| {
        format!("<input type=\"hidden\" name=\"next\" value=\"{}\">", esc(n))
    });
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Log in · cloudbill</title><style>{STYLE}</style></head>\
<body><main><h1>cloudbill</h1>{error}<form method=\"post\" action=\"/login\">{next}<label>API token <input type=\"password\" name=\"token\" autocomplete=\"off\" size=\"70\"></label> \
<button>Log in</button></form><p>Create a token with <code>cloudbill token create --role admin</code>.</p></main></body></html>"
    ))
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
    next: Option<String>,
}

async fn login(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    // Login CSRF: another site's form would log the browser in as the attacker's token.
    // Browsers name the source of a form post; a post naming another site is refused (a
    // client that names none, such as curl, is not a browser).
    if crate::guard::from_this_site(&headers) == Some(false) {
        return crate::ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            "cross_site_request",
            "a login must come from this site's login form",
        )
        .into_response();
    }
    match state.tenants.authenticate(&form.token).await {
        Ok(cloudbill_service::Caller::Domain { principal: p, .. }) => {
            let target = match (&p, local_target(form.next.as_deref())) {
                (_, Some(next)) => next.to_owned(),
                (p, None) => match p {
                    Principal::Admin => "/".to_owned(),
                    Principal::ProjectMember { projects } => projects
                        .first()
                        .map_or_else(|| "/".to_owned(), |id| format!("/projects/{id}")),
                },
            };
            let cookie = format!(
                "{COOKIE}={}; Path=/; HttpOnly; Secure; SameSite=Strict",
                form.token.trim()
            );
            ([(header::SET_COOKIE, cookie)], Redirect::to(&target)).into_response()
        }
        // A system-admin token has no dashboard: it reads no billing data.
        Ok(cloudbill_service::Caller::System(_)) | Err(_) => {
            let next = local_target(form.next.as_deref())
                .map_or_else(String::new, |n| format!("&next={}", percent_encode(n)));
            Redirect::to(&format!("/login?error=1{next}")).into_response()
        }
    }
}

async fn logout() -> Response {
    let cookie = format!("{COOKIE}=; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=0");
    ([(header::SET_COOKIE, cookie)], Redirect::to("/login")).into_response()
}
