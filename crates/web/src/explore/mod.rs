//! `/explore`: the cost explorer. A range (with presets), a granularity, one group-by key and
//! any filters, all in the URL (the API's GET parameters: `start`, `end`, `granularity`,
//! `group_by`, `filter.KEY=VALUE`, `allocated=true` for the allocation rules' shares); a stacked bar chart of the top groups plus "others" per
//! currency, a table of every group per period with its change against the previous
//! equal-length range, and the top movers. Server-rendered, no JavaScript, no external assets;
//! `format=csv` downloads the table.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use axum::extract::Query;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use cloudbill_core::{Currency, DateRange, Decimal, Granularity};
use cloudbill_service::ranges;
use cloudbill_service::{GroupKey, Principal, Query as ReportQuery, Report};

use crate::auth::PageAuth;
use crate::auth::Who;
use crate::dashboard::{esc, page, percent_encode};
use crate::ApiError;

mod chart;
mod table;

use chart::{chart, AnomalyMark, ForecastMark};
use table::{movers, table};
/// The most group rows a table shows; the rest are one row (the CSV has them all).
pub(crate) const MAX_TABLE_ROWS: usize = 50;
/// Groups drawn by default; the rest are "others".
pub(crate) const DEFAULT_TOP: usize = 8;
/// The most groups a chart draws.
pub(crate) const MAX_TOP: usize = 20;

fn invalid(message: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_query",
        message.to_string(),
    )
}

/// The view, from the URL.
struct Explore {
    range: DateRange,
    granularity: Granularity,
    group_by: Option<GroupKey>,
    filters: Vec<(String, String)>,
    /// The report query of `range` the parameters make ([`cloudbill_service::ReportRequest`]).
    base: ReportQuery,
    top: usize,
    sort: String,
    csv: bool,
}

impl Explore {
    fn parse(params: &[(String, String)], today: NaiveDate) -> Result<Self, ApiError> {
        // A repeated parameter: the last one counts (filters may repeat: each is a value).
        let get = |k: &str| crate::routes::last_param(params, k);
        let (default_start, default_end) = preset(ranges::DEFAULT_PRESET, today);
        let start = get("start").map_or(Ok(default_start), parse_day)?;
        let end = get("end").map_or(Ok(default_end), parse_day)?;
        // The explorer's own limit: a daily or monthly chart.
        let granularity = get("granularity").unwrap_or("monthly");
        if !["daily", "monthly"]
            .iter()
            .any(|g| g.eq_ignore_ascii_case(granularity))
        {
            return Err(invalid(format!(
                "granularity {granularity:?}: daily or monthly"
            )));
        }
        // The rest is a report request, parsed by the one parser the API's is.
        let mut request = cloudbill_service::ReportRequest {
            start: start.to_string(),
            end: end.to_string(),
            granularity: Some(granularity.to_owned()),
            group_by: get("group_by")
                .filter(|g| !g.is_empty())
                .map(|g| vec![g.to_owned()])
                .unwrap_or_default(),
            ..cloudbill_service::ReportRequest::default()
        };
        let mut filters = Vec::new();
        for (k, v) in params {
            match k.as_str() {
                "start" | "end" | "granularity" | "group_by" | "top" | "sort" | "format" => {}
                "allocated" => {
                    request.allocated = Some(match v.as_str() {
                        "true" | "1" | "on" => true,
                        "false" | "0" | "" => false,
                        _ => return Err(invalid("allocated: true or false")),
                    });
                }
                _ => match k.strip_prefix("filter.") {
                    Some(key) if !v.is_empty() => {
                        request
                            .filters
                            .entry(key.to_owned())
                            .or_default()
                            .push(v.clone());
                        filters.push((key.to_owned(), v.clone()));
                    }
                    Some(_) => {}
                    None => {
                        return Err(ApiError::bad_request(format!(
                            "unknown parameter {:?}",
                            cloudbill_core::cut(k, 40)
                        )))
                    }
                },
            }
        }
        let base = request.to_query().map_err(invalid)?;
        let top = match get("top") {
            None => DEFAULT_TOP,
            Some(t) => t
                .parse::<usize>()
                .ok()
                .filter(|t| (1..=MAX_TOP).contains(t))
                .ok_or_else(|| invalid(format!("top must be 1 to {MAX_TOP}")))?,
        };
        let sort = get("sort").unwrap_or("total").to_owned();
        if !["total", "change", "name"].contains(&sort.as_str()) {
            return Err(invalid("sort: total, change or name"));
        }
        Ok(Self {
            range: base.range,
            granularity: base.granularity,
            group_by: base.group_by.first().cloned(),
            filters,
            base,
            top,
            sort,
            csv: get("format") == Some("csv"),
        })
    }

    /// The report query of `range`.
    fn query(&self, range: DateRange) -> ReportQuery {
        let mut q = self.base.clone();
        q.range = range;
        q
    }

    /// This view's URL with `changes` applied (`None` removes a parameter).
    fn url(&self, changes: &[(&str, Option<String>)]) -> String {
        let mut params: Vec<(String, String)> = vec![
            ("start".into(), self.range.start().to_string()),
            ("end".into(), self.range.end().to_string()),
            (
                "granularity".into(),
                match self.granularity {
                    Granularity::Daily => "daily",
                    _ => "monthly",
                }
                .into(),
            ),
        ];
        if let Some(g) = &self.group_by {
            params.push(("group_by".into(), g.to_string()));
        }
        for (k, v) in &self.filters {
            params.push((format!("filter.{k}"), v.clone()));
        }
        if self.top != DEFAULT_TOP {
            params.push(("top".into(), self.top.to_string()));
        }
        if self.sort != "total" {
            params.push(("sort".into(), self.sort.clone()));
        }
        if self.base.allocated {
            params.push(("allocated".into(), "true".into()));
        }
        for (name, value) in changes {
            params.retain(|(k, _)| k != name);
            if let Some(v) = value {
                params.push(((*name).to_owned(), v.clone()));
            }
        }
        let query: Vec<String> = params
            .iter()
            .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
            .collect();
        format!("/explore?{}", query.join("&"))
    }

    /// The API query behind a number: this view's range and filters plus `extra` filters.
    fn api(&self, range: DateRange, extra: Option<(&str, &str)>) -> String {
        let mut url = format!(
            "/api/v1/billing/query?start={}&end={}&granularity={}",
            range.start(),
            range.end(),
            self.granularity
        );
        if let Some(g) = &self.group_by {
            let _ = write!(url, "&group_by={}", percent_encode(&g.to_string()));
        }
        for (k, v) in self
            .filters
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain(extra)
        {
            let _ = write!(url, "&filter.{}={}", percent_encode(k), percent_encode(v));
        }
        if self.base.allocated {
            url.push_str("&allocated=true");
        }
        url
    }
}

fn parse_day(s: &str) -> Result<NaiveDate, ApiError> {
    cloudbill_core::parse_date(s).map_err(invalid)
}

/// A preset's range as of `today` (`[start, end)`); the default range for an unknown one.
fn preset(name: &str, today: NaiveDate) -> (NaiveDate, NaiveDate) {
    let r = ranges::preset(name, today).unwrap_or_else(|| ranges::default_range(today));
    (r.start(), r.end())
}

/// One group's spend in one currency: per bucket, total, previous range's total.
struct Line {
    name: String,
    buckets: BTreeMap<String, Decimal>,
    total: Decimal,
    previous: Decimal,
}

impl Line {
    fn new(name: String) -> Self {
        Self {
            name,
            buckets: BTreeMap::new(),
            total: Decimal::ZERO,
            previous: Decimal::ZERO,
        }
    }
}

/// The most a view's amounts of one currency may add up to, as magnitudes (every bucket, total
/// and previous total of every group): 10^26. Below it, every sum, difference, stack and axis
/// the page computes fits an exact decimal; past it the page is refused (422) and the API's
/// report, which has no such sums, answers exactly.
pub(crate) const MAX_CHARTED: Decimal =
    Decimal::from_parts(0xE400_0000, 0xDCC8_0CD2, 0x0052_B7D2, false, 0);

/// Per currency, every group's line (the group's name is its value of the key, or `total`).
///
/// # Errors
/// 422 when a currency's amounts add up, as magnitudes, to [`MAX_CHARTED`] or more.
fn lines(
    report: &Report,
    previous: &Report,
    key: Option<&str>,
) -> Result<BTreeMap<Currency, Vec<Line>>, ApiError> {
    let name_of = |group: &BTreeMap<String, String>| {
        key.map_or_else(
            || "total".to_owned(),
            |k| group.get(k).cloned().unwrap_or_default(),
        )
    };
    let mut out: BTreeMap<Currency, BTreeMap<String, Line>> = BTreeMap::new();
    for row in &report.results {
        let name = name_of(&row.group);
        for b in &row.billing_data {
            let line = out
                .entry(b.currency)
                .or_default()
                .entry(name.clone())
                .or_insert_with(|| Line::new(name.clone()));
            let bucket = line.buckets.entry(b.date.clone()).or_default();
            *bucket = bucket
                .checked_add(b.cost)
                .ok_or_else(|| too_large(b.currency))?;
            line.total = line
                .total
                .checked_add(b.cost)
                .ok_or_else(|| too_large(b.currency))?;
        }
    }
    for row in &previous.results {
        let name = name_of(&row.group);
        for t in &row.total {
            let line = out
                .entry(t.currency)
                .or_default()
                .entry(name.clone())
                .or_insert_with(|| Line::new(name.clone()));
            line.previous = line
                .previous
                .checked_add(t.cost)
                .ok_or_else(|| too_large(t.currency))?;
        }
    }
    for (currency, lines) in &out {
        let mut magnitude = Decimal::ZERO;
        for line in lines.values() {
            for v in line.buckets.values().chain([&line.total, &line.previous]) {
                magnitude = magnitude
                    .checked_add(v.abs())
                    .filter(|m| *m < MAX_CHARTED)
                    .ok_or_else(|| too_large(*currency))?;
            }
        }
    }
    Ok(out
        .into_iter()
        .map(|(c, m)| {
            let mut v: Vec<Line> = m.into_values().collect();
            v.sort_by(|a, b| b.total.cmp(&a.total).then_with(|| a.name.cmp(&b.name)));
            (c, v)
        })
        .collect())
}

fn too_large(currency: Currency) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "amount_out_of_range",
        format!(
            "this view's amounts in {currency} add up to 10^26 or more, too large to chart; \
             POST /api/v1/billing/query answers them exactly"
        ),
    )
}

/// The buckets of the range, in order.
fn bucket_labels(range: DateRange, granularity: Granularity) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for d in range.iter_days() {
        let label = granularity.label(d);
        if out.last() != Some(&label) {
            out.push(label);
        }
    }
    out
}

fn controls(v: &Explore, today: NaiveDate) -> String {
    let mut out = String::from("<nav class=\"presets\" aria-label=\"Date range presets\">");
    for ranges::Preset { key, label: text } in ranges::PRESETS {
        let (s, e) = preset(key, today);
        let _ = write!(
            out,
            "<a href=\"{}\">{text}</a> ",
            esc(&v.url(&[("start", Some(s.to_string())), ("end", Some(e.to_string()))]))
        );
    }
    out.push_str("</nav><form class=\"range\" method=\"get\" action=\"/explore\">");
    let _ = write!(
        out,
        "<label>From <input type=\"date\" name=\"start\" value=\"{}\"></label> <label>to (exclusive) <input type=\"date\" name=\"end\" value=\"{}\"></label> ",
        v.range.start(),
        v.range.end()
    );
    let _ = write!(
        out,
        "<label>Granularity <select name=\"granularity\"><option value=\"monthly\"{}>monthly</option><option value=\"daily\"{}>daily</option></select></label> ",
        if v.granularity == Granularity::Daily { "" } else { " selected" },
        if v.granularity == Granularity::Daily { " selected" } else { "" }
    );
    out.push_str("<label>Group by <select name=\"group_by\"><option value=\"\">(nothing)</option>");
    for key in GroupKey::ALL {
        let selected = v.group_by.as_ref() == Some(&key);
        let _ = write!(
            out,
            "<option value=\"{0}\"{1}>{0}</option>",
            key,
            if selected { " selected" } else { "" }
        );
    }
    if let Some(tag @ GroupKey::Tag(_)) = &v.group_by {
        let _ = write!(
            out,
            "<option value=\"{0}\" selected>{0}</option>",
            esc(&tag.to_string())
        );
    }
    out.push_str("</select></label> ");
    let _ = write!(
        out,
        "<label>Top <input type=\"number\" name=\"top\" min=\"1\" max=\"{MAX_TOP}\" value=\"{}\"></label> ",
        v.top
    );
    for (k, val) in &v.filters {
        let _ = write!(
            out,
            "<input type=\"hidden\" name=\"filter.{}\" value=\"{}\">",
            esc(k),
            esc(val)
        );
    }
    let _ = write!(
        out,
        "<label title=\"shared costs moved to their targets by the allocation rules\"><input type=\"checkbox\" name=\"allocated\" value=\"true\"{}> Allocated</label> ",
        if v.base.allocated { " checked" } else { "" }
    );
    out.push_str("<button>Show</button></form><p class=\"chips\">");
    for (k, val) in &v.filters {
        // Removing a chip: the URL without that filter.
        let rest: Vec<(String, String)> = v
            .filters
            .iter()
            .filter(|(k2, v2)| !(k2 == k && v2 == val))
            .cloned()
            .collect();
        let without = Explore {
            range: v.range,
            granularity: v.granularity,
            group_by: v.group_by.clone(),
            filters: rest,
            base: v.base.clone(),
            top: v.top,
            sort: v.sort.clone(),
            csv: false,
        };
        let _ = write!(
            out,
            "<a class=\"chip\" href=\"{}\" aria-label=\"Remove filter {key} = {value}\">{key}={value} ✕</a> ",
            esc(&without.url(&[])),
            key = esc(k),
            value = esc(val)
        );
    }
    out.push_str("</p>");
    out
}

fn csv(key: &str, data: &BTreeMap<Currency, Vec<Line>>, labels: &[String]) -> String {
    let mut out = format!("{key},currency");
    for l in labels {
        let _ = write!(out, ",{l}");
    }
    out.push_str(",total,previous,change\n");
    for (currency, lines) in data {
        for line in lines {
            // Quoted as CSV needs, and neutralised for spreadsheets (a group named
            // `=cmd|…` is text, not a formula: `cloudbill_core::formula_safe`).
            let cell = |s: &str| {
                let s = cloudbill_core::formula_safe(s);
                if s.contains([',', '"', '\n', '\r']) {
                    format!("\"{}\"", s.replace('"', "\"\""))
                } else {
                    s.into_owned()
                }
            };
            let _ = write!(out, "{},{currency}", cell(&line.name));
            for l in labels {
                let _ = write!(out, ",{}", line.buckets.get(l).copied().unwrap_or_default());
            }
            let _ = writeln!(
                out,
                ",{},{},{}",
                line.total,
                line.previous,
                line.total - line.previous
            );
        }
    }
    out
}

/// The anomalies of the groups drawn, per currency (on demand, unexplained: one more report
/// over those groups); none without a group-by key.
async fn anomaly_marks_of(
    p: &Who,
    v: &Explore,
    data: &BTreeMap<Currency, Vec<Line>>,
) -> Result<BTreeMap<Currency, Vec<AnomalyMark>>, ApiError> {
    let mut anomalies: BTreeMap<Currency, Vec<AnomalyMark>> = BTreeMap::new();
    // The groups the charts draw (not "others").
    let drawn: Vec<String> = data
        .values()
        .flat_map(|lines| lines.iter().take(v.top).map(|l| l.name.clone()))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let Some(key) = &v.group_by else {
        return Ok(anomalies);
    };
    if drawn.is_empty() {
        return Ok(anomalies);
    }
    let mut request = cloudbill_service::AnomalyRequest::new(v.range);
    request.group_by = key.clone();
    request.filters = v.query(v.range).filters;
    request
        .filters
        .entry(key.clone())
        .or_default()
        .extend(drawn);
    request.explain = false;
    for a in p.billing.anomalies(p, &request).await? {
        anomalies.entry(a.currency).or_default().push(AnomalyMark {
            group: a.group.values().next().cloned().unwrap_or_default(),
            kind: a.kind,
            start: a.start,
            end: a.end,
            impact: a.impact,
        });
    }
    Ok(anomalies)
}

/// `GET /explore`.
#[allow(clippy::too_many_lines)] // One page, top to bottom: parse, two reports, forecast, render.
pub(crate) async fn explore(
    PageAuth(p): PageAuth,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    let mut v = Explore::parse(&params, p.billing.today())?;
    // A member explores its project: the filter is added when the URL names none.
    if let Principal::ProjectMember { projects } = &p.principal {
        if !v.filters.iter().any(|(k, _)| k == "project") {
            if let Some(id) = projects.first() {
                v.filters.push(("project".into(), id.to_string()));
                v.base
                    .filters
                    .entry(GroupKey::Project)
                    .or_default()
                    .push(id.to_string());
            }
        }
    }
    let previous = ranges::previous_range(v.range);
    let report = p.billing.report(&p, &v.query(v.range)).await?;
    let before = p.billing.report(&p, &v.query(previous)).await?;
    let key = v.group_by.as_ref().map(ToString::to_string);
    let data = lines(&report, &before, key.as_deref())?;
    let labels = bucket_labels(v.range, v.granularity);
    let key_name = key.as_deref().unwrap_or("total");
    if v.csv {
        return Ok((
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    format!(
                        "attachment; filename=\"explore-{}-{}.csv\"",
                        v.range.start(),
                        v.range.end()
                    ),
                ),
            ],
            csv(key_name, &data, &labels),
        )
            .into_response());
    }
    // The current month's forecast, drawn on a monthly chart that shows this month.
    let today = p.billing.today();
    let this_month = (v.granularity == Granularity::Monthly && v.range.contains(today))
        .then(|| Granularity::Monthly.label(today));
    let mut forecasts = BTreeMap::new();
    if this_month.is_some() {
        let mut request = cloudbill_service::ForecastRequest::new(today);
        request.filters = v.query(v.range).filters;
        for c in p.billing.forecast(&p, &request).await?.currencies {
            forecasts.insert(c.currency, c);
        }
    }
    let anomalies = anomaly_marks_of(&p, &v, &data).await?;
    let mut body = controls(&v, today);
    // The FOCUS export of the view: its range, projects and filters (an export takes
    // projects, not project groups: no link then).
    let focus = (!v.filters.iter().any(|(k, _)| k == "project_group")).then(|| {
        let mut url = format!(
            "/api/v1/export/focus?start={}&end={}",
            v.range.start(),
            v.range.end()
        );
        for (k, val) in &v.filters {
            if k == "project" {
                let _ = write!(url, "&project={}", percent_encode(val));
            } else {
                let _ = write!(url, "&filter.{}={}", percent_encode(k), percent_encode(val));
            }
        }
        format!(" · <a href=\"{}\">Download FOCUS</a>", esc(&url))
    });
    let _ = write!(
        body,
        "<p class=\"downloads\"><a href=\"{}\">Download CSV</a>{} · <a href=\"{}\">API query</a></p>",
        esc(&v.url(&[("format", Some("csv".into()))])),
        focus.unwrap_or_default(),
        esc(&v.api(v.range, None))
    );
    if data.is_empty() {
        body.push_str("<p>No costs in this range.</p>");
    }
    for (currency, lines) in &data {
        let _ = write!(
            body,
            "<section class=\"currency\" data-currency=\"{currency}\"><h2>{currency}</h2>"
        );
        // A forecast past the chart's bound is not drawn (the table holds the view's data).
        let mark = forecasts.get(currency).and_then(|f| {
            Some(ForecastMark {
                bucket: this_month.as_deref()?,
                amount: f.forecast?,
                low: f.low?,
                high: f.high.filter(|h| *h < MAX_CHARTED)?,
            })
        });
        let marks = anomalies.get(currency).map_or(&[][..], Vec::as_slice);
        body.push_str(&chart(
            &v,
            *currency,
            lines,
            &labels,
            (mark.as_ref(), marks),
        ));
        body.push_str(&movers(&v, key_name, *currency, lines));
        body.push_str(&table(&v, key_name, *currency, lines, &labels, previous));
        body.push_str("</section>");
    }
    Ok(page("Cost explorer", &p, &body).into_response())
}
