//! The billing dashboard: server-rendered HTML with inline CSS and SVG charts, so the numbers
//! show with JavaScript off and nothing is fetched from the internet.
//!
//! The pages (`pages.rs`: consolidated, project, reconcile; `login.rs`) and their sections
//! (`sections.rs`: cards, budget bars, anomaly lists) share the style sheet, the page frame,
//! the escaping rule, the range form, the chart and the table here; the explorer, with its own
//! view state, is `explore/`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use axum::extract::{Form, Path, Query, State};
use axum::http::header;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use chrono::NaiveDate;
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

/// The range and granularity a page shows: the parameters given, else the default report
/// range as of the service's clock (`today`).
fn view(params: &RangeParams, today: NaiveDate) -> Result<View, ApiError> {
    let default = cloudbill_service::ranges::default_range(today);
    let start = params
        .start
        .clone()
        .unwrap_or_else(|| default.start().to_string());
    let end = params
        .end
        .clone()
        .unwrap_or_else(|| default.end().to_string());
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

use cloudbill_service::ranges::month_bounds;

mod login;
mod pages;
mod sections;

pub(crate) use login::percent_encode;
#[allow(clippy::wildcard_imports)]
use login::*;
#[allow(clippy::wildcard_imports)]
use pages::*;
#[allow(clippy::wildcard_imports)]
use sections::*;
