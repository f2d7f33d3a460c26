//! `/explore`: the cost explorer. A range (with presets), a granularity, one group-by key and
//! any filters, all in the URL (the API's GET parameters: `start`, `end`, `granularity`,
//! `group_by`, `filter.KEY=VALUE`); a stacked bar chart of the top groups plus "others" per
//! currency, a table of every group per period with its change against the previous
//! equal-length range, and the top movers. Server-rendered, no JavaScript, no external assets;
//! `format=csv` downloads the table.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{Datelike, Months, NaiveDate, Utc};
use cloudbill_core::{Currency, DateRange, Decimal, Granularity};
use cloudbill_service::{GroupKey, Principal, Query as ReportQuery, Report};

use crate::auth::PageAuth;
use crate::dashboard::{esc, page, percent_encode};
use crate::{ApiError, AppState};

/// The most group rows a table shows; the rest are one row (the CSV has them all).
pub(crate) const MAX_TABLE_ROWS: usize = 50;
/// Groups drawn by default; the rest are "others".
pub(crate) const DEFAULT_TOP: usize = 8;
/// The most groups a chart draws.
pub(crate) const MAX_TOP: usize = 20;

/// Colour-blind-safe series colours; a group's colour follows from its name, so the same group
/// has the same colour on every chart.
const PALETTE: [&str; 20] = [
    "#4477aa", "#ee6677", "#228833", "#ccbb44", "#66ccee", "#aa3377", "#e69f00", "#009e73",
    "#0072b2", "#d55e00", "#332288", "#88ccee", "#44aa99", "#117733", "#999933", "#ddcc77",
    "#cc6677", "#882255", "#aa4499", "#6f4e37",
];
const OTHERS_COLOUR: &str = "#9aa3ae";
const OTHERS: &str = "others";

/// A group's own palette slot (FNV-1a of its name: stable across processes and versions).
fn slot(name: &str) -> usize {
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    usize::try_from(hash % PALETTE.len() as u64).unwrap_or(0)
}

/// Colours of the groups drawn together, in order: each its own slot's colour, or, when an
/// earlier group took it, the next free one (so one chart never shows two groups alike, and
/// a group keeps its colour wherever it is drawn with the same larger groups).
fn colours<'a>(names: impl IntoIterator<Item = &'a str>) -> BTreeMap<String, &'static str> {
    let mut taken = [false; PALETTE.len()];
    let mut out = BTreeMap::new();
    for name in names {
        let own = slot(name);
        let free = (0..PALETTE.len())
            .map(|i| (own + i) % PALETTE.len())
            .find(|i| !taken[*i])
            .unwrap_or(own);
        taken[free] = true;
        out.insert(name.to_owned(), PALETTE[free]);
    }
    out
}

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
    top: usize,
    sort: String,
    csv: bool,
}

impl Explore {
    fn parse(params: &[(String, String)]) -> Result<Self, ApiError> {
        let today = Utc::now().date_naive();
        // A repeated parameter: the last one counts (filters may repeat: each is a value).
        let get = |k: &str| crate::routes::last_param(params, k);
        let (default_start, default_end) = preset("last_3_months", today);
        let start = get("start").map_or(Ok(default_start), parse_day)?;
        let end = get("end").map_or(Ok(default_end), parse_day)?;
        let range = DateRange::new(start, end).map_err(invalid)?;
        let granularity = match get("granularity").unwrap_or("monthly") {
            g if g.eq_ignore_ascii_case("monthly") => Granularity::Monthly,
            g if g.eq_ignore_ascii_case("daily") => Granularity::Daily,
            other => return Err(invalid(format!("granularity {other:?}: daily or monthly"))),
        };
        let group_by = match get("group_by").filter(|g| !g.is_empty()) {
            None => None,
            Some(g) => Some(g.parse::<GroupKey>().map_err(invalid)?),
        };
        let mut filters = Vec::new();
        for (k, v) in params {
            match k.as_str() {
                "start" | "end" | "granularity" | "group_by" | "top" | "sort" | "format" => {}
                _ => match k.strip_prefix("filter.") {
                    Some(key) if !v.is_empty() => {
                        key.parse::<GroupKey>().map_err(invalid)?;
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
            range,
            granularity,
            group_by,
            filters,
            top,
            sort,
            csv: get("format") == Some("csv"),
        })
    }

    /// The report query of `range`.
    fn query(&self, range: DateRange) -> ReportQuery {
        let mut q = ReportQuery::new(range, self.granularity);
        q.group_by = self.group_by.iter().cloned().collect();
        for (k, v) in &self.filters {
            if let Ok(key) = k.parse::<GroupKey>() {
                q.filters.entry(key).or_default().push(v.clone());
            }
        }
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
        url
    }
}

fn parse_day(s: &str) -> Result<NaiveDate, ApiError> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| {
        invalid(format!(
            "{:?} is not a date (YYYY-MM-DD)",
            cloudbill_core::cut(s, 20)
        ))
    })
}

/// A preset's range as of `today`: `[start, end)`.
fn preset(name: &str, today: NaiveDate) -> (NaiveDate, NaiveDate) {
    let month = today.with_day(1).unwrap_or(today);
    let tomorrow = today.succ_opt().unwrap_or(today);
    let back = |m: u32| month.checked_sub_months(Months::new(m)).unwrap_or(month);
    match name {
        "this_month" => (month, tomorrow),
        "last_month" => (back(1), month),
        "last_6_months" => (back(5), tomorrow),
        "last_12_months" => (back(11), tomorrow),
        "year_to_date" => (
            NaiveDate::from_ymd_opt(today.year(), 1, 1).unwrap_or(month),
            tomorrow,
        ),
        _ => (back(2), tomorrow),
    }
}

const PRESETS: [(&str, &str); 6] = [
    ("this_month", "This month"),
    ("last_month", "Last month"),
    ("last_3_months", "Last 3 months"),
    ("last_6_months", "Last 6 months"),
    ("last_12_months", "Last 12 months"),
    ("year_to_date", "Year to date"),
];

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

/// Per currency, every group's line (the group's name is its value of the key, or `total`).
fn lines(report: &Report, previous: &Report, key: Option<&str>) -> BTreeMap<Currency, Vec<Line>> {
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
            *line.buckets.entry(b.date.clone()).or_default() += b.cost;
            line.total += b.cost;
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
            line.previous += t.cost;
        }
    }
    out.into_iter()
        .map(|(c, m)| {
            let mut v: Vec<Line> = m.into_values().collect();
            v.sort_by(|a, b| b.total.cmp(&a.total).then_with(|| a.name.cmp(&b.name)));
            (c, v)
        })
        .collect()
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

/// A "nice" axis step for values up to `max` with about five ticks (1, 2 or 5 × 10^k).
fn tick_step(max: Decimal) -> Decimal {
    if max <= Decimal::ZERO {
        return Decimal::ONE;
    }
    let rough = max / Decimal::from(5);
    let mut magnitude = Decimal::ONE;
    while magnitude * Decimal::TEN <= rough {
        magnitude *= Decimal::TEN;
    }
    while magnitude > rough && magnitude > Decimal::new(1, 10) {
        magnitude /= Decimal::TEN;
    }
    for m in [1, 2, 5, 10] {
        let step = magnitude * Decimal::from(m);
        if step >= rough {
            return step;
        }
    }
    magnitude * Decimal::TEN
}

fn to_px(v: Decimal) -> i64 {
    v.round().to_string().parse().unwrap_or(0)
}

/// A chart's series: the top groups, then "others" (the rest summed), each with its colour
/// and its value per bucket.
fn series<'a>(
    top: usize,
    lines: &'a [Line],
    labels: &[String],
) -> Vec<(&'a str, &'static str, Vec<Decimal>)> {
    let (shown, rest) = lines.split_at(lines.len().min(top));
    let palette = colours(lines.iter().map(|l| l.name.as_str()));
    let mut out: Vec<(&str, &'static str, Vec<Decimal>)> = shown
        .iter()
        .map(|l| {
            let values = labels
                .iter()
                .map(|b| l.buckets.get(b).copied().unwrap_or_default())
                .collect();
            (l.name.as_str(), palette[&l.name], values)
        })
        .collect();
    if !rest.is_empty() {
        let values = labels
            .iter()
            .map(|b| {
                rest.iter()
                    .map(|l| l.buckets.get(b).copied().unwrap_or_default())
                    .sum()
            })
            .collect();
        out.push((OTHERS, OTHERS_COLOUR, values));
    }
    out
}

const CHART_LEFT: i64 = 90;
const CHART_TOP: i64 = 22;
const CHART_WIDTH: i64 = 760;
const CHART_HEIGHT: i64 = 220;

/// The stacked bar chart of one currency: the top groups and "others" per bucket, a y axis in
/// the currency, bucket labels, a legend, exact values in each bar's title, and the totals as
/// the chart's text alternative.
/// The y coordinate of `value` on an axis up to `axis_max`.
fn y_at(value: Decimal, axis_max: Decimal) -> i64 {
    CHART_TOP + CHART_HEIGHT - to_px(value / axis_max * Decimal::from(CHART_HEIGHT))
}

/// The forecast of the month's bucket: a dashed line at the amount across the bar's slot and
/// the 80% interval as a vertical line, with the numbers in its title.
fn forecast_mark(
    f: &ForecastMark<'_>,
    currency: Currency,
    labels: &[String],
    slot: i64,
    axis_max: Decimal,
) -> String {
    let Some(i) = labels.iter().position(|l| l == f.bucket) else {
        return String::new();
    };
    let left = CHART_LEFT + i64::try_from(i).unwrap_or(0) * slot;
    let (y, low, high) = (
        y_at(f.amount, axis_max),
        y_at(f.low, axis_max),
        y_at(f.high, axis_max),
    );
    let middle = left + slot / 2;
    format!(
        "<g class=\"forecast\" data-forecast=\"{}\"><title>{} forecast: {} {currency} (80%: {} – {})</title><line x1=\"{middle}\" x2=\"{middle}\" y1=\"{high}\" y2=\"{low}\"/><line x1=\"{left}\" x2=\"{}\" y1=\"{y}\" y2=\"{y}\"/></g>",
        f.amount,
        esc(f.bucket),
        f.amount,
        f.low,
        f.high,
        left + slot
    )
}

/// A chart's legend: each series' colour and name, and the forecast's month and amount.
fn legend(
    series: &[(&str, &'static str, Vec<Decimal>)],
    forecast: Option<&ForecastMark<'_>>,
    currency: Currency,
) -> String {
    let mut out = String::from("<figcaption class=\"legend\">");
    for (name, fill, _) in series {
        let _ = write!(
            out,
            "<span><i style=\"background:{fill}\"></i>{}</span> ",
            esc(name)
        );
    }
    if let Some(f) = forecast {
        let _ = write!(
            out,
            "<span class=\"forecast-key\">– – {} forecast {} {currency}</span>",
            esc(f.bucket),
            currency.display(f.amount)
        );
    }
    out.push_str("</figcaption>");
    out
}

/// The period-end forecast drawn on a chart: the bucket it belongs to and the amount.
struct ForecastMark<'a> {
    bucket: &'a str,
    amount: Decimal,
    low: Decimal,
    high: Decimal,
}

/// An anomaly drawn on a chart.
struct AnomalyMark {
    group: String,
    kind: &'static str,
    start: NaiveDate,
    end: NaiveDate,
    impact: Decimal,
}

/// Marks over the buckets an anomaly's days fall in: a triangle above the bar, the anomaly in
/// its title.
fn anomaly_marks(
    view: &Explore,
    currency: Currency,
    marks: &[AnomalyMark],
    labels: &[String],
    stack_tops: &[Decimal],
    slot: i64,
    axis_max: Decimal,
) -> String {
    let mut out = String::new();
    for m in marks {
        let mut seen = std::collections::BTreeSet::new();
        let mut d = m.start;
        while d <= m.end {
            let label = view.granularity.label(d);
            if let Some(i) = labels.iter().position(|l| *l == label) {
                if seen.insert(i) {
                    let x = CHART_LEFT + i64::try_from(i).unwrap_or(0) * slot + slot / 2;
                    let y = y_at(stack_tops[i], axis_max) - 4;
                    let _ = write!(
                        out,
                        "<path class=\"anomaly\" data-anomaly=\"{}\" d=\"M{} {} L{} {} L{x} {y} Z\"><title>{} {}: {} .. {}, impact {} {currency}</title></path>",
                        esc(&m.group),
                        x - 5,
                        y - 8,
                        x + 5,
                        y - 8,
                        m.kind,
                        esc(&m.group),
                        m.start,
                        m.end,
                        m.impact
                    );
                }
            }
            d = d.succ_opt().unwrap_or(m.end + chrono::Duration::days(1));
        }
    }
    out
}

fn chart(
    view: &Explore,
    currency: Currency,
    lines: &[Line],
    labels: &[String],
    (forecast, anomalies): (Option<&ForecastMark<'_>>, &[AnomalyMark]),
) -> String {
    let series = series(view.top, lines, labels);
    // Bars stack the positive amounts; credits show in the table.
    let stack_tops: Vec<Decimal> = (0..labels.len())
        .map(|i| series.iter().map(|s| s.2[i].max(Decimal::ZERO)).sum())
        .collect();
    let stack_max = stack_tops
        .iter()
        .copied()
        .chain(forecast.map(|f| f.high))
        .max()
        .unwrap_or_default();
    let step = tick_step(stack_max);
    let axis_max = if stack_max > Decimal::ZERO {
        step * (stack_max / step).ceil()
    } else {
        step
    };
    let y_of = |value: Decimal| y_at(value, axis_max);
    let id = format!("chart-{currency}");
    let unit = if view.granularity == Granularity::Daily {
        "day"
    } else {
        "month"
    };
    let mut out = format!(
        "<figure><svg role=\"img\" aria-labelledby=\"{id}\" width=\"{CHART_WIDTH}\" height=\"{h}\" viewBox=\"0 0 {CHART_WIDTH} {h}\"><title id=\"{id}\">Spend per {unit} in {currency}, by {} group</title><desc>",
        series.len(),
        h = CHART_HEIGHT + 60
    );
    for (name, _, values) in &series {
        let total: Decimal = values.iter().sum();
        let _ = write!(
            out,
            "{}: {} {currency}. ",
            esc(name),
            currency.display(total)
        );
    }
    out.push_str("</desc>");
    let mut tick = Decimal::ZERO;
    while tick <= axis_max {
        let y = y_of(tick);
        let _ = write!(
            out,
            "<line class=\"grid\" x1=\"{CHART_LEFT}\" x2=\"{CHART_WIDTH}\" y1=\"{y}\" y2=\"{y}\"/><text class=\"tick\" x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
            CHART_LEFT - 6,
            y + 3,
            currency.display(tick)
        );
        tick += step;
    }
    let buckets = i64::try_from(labels.len()).unwrap_or(1).max(1);
    let slot = (CHART_WIDTH - CHART_LEFT) / buckets;
    let every = usize::try_from((buckets + 7) / 8).unwrap_or(1).max(1);
    for (i, label) in labels.iter().enumerate() {
        let left = CHART_LEFT + i64::try_from(i).unwrap_or(0) * slot + 2;
        let mut base = Decimal::ZERO;
        for (name, fill, values) in &series {
            let value = values[i];
            if value <= Decimal::ZERO {
                continue;
            }
            let (top, bottom) = (y_of(base + value), y_of(base));
            let _ = write!(
                out,
                "<rect x=\"{left}\" y=\"{top}\" width=\"{}\" height=\"{}\" fill=\"{fill}\" data-group=\"{}\" data-cost=\"{value}\"><title>{}, {}: {value} {currency}</title></rect>",
                (slot - 4).max(1),
                (bottom - top).max(1),
                esc(name),
                esc(name),
                esc(label)
            );
            base += value;
        }
        if i % every == 0 {
            let _ = write!(
                out,
                "<text class=\"tick\" x=\"{left}\" y=\"{}\">{}</text>",
                CHART_TOP + CHART_HEIGHT + 14,
                esc(label)
            );
        }
    }
    if let Some(f) = forecast {
        out.push_str(&forecast_mark(f, currency, labels, slot, axis_max));
    }
    out.push_str(&anomaly_marks(
        view,
        currency,
        anomalies,
        labels,
        &stack_tops,
        slot,
        axis_max,
    ));
    out.push_str("</svg>");
    out.push_str(&legend(&series, forecast, currency));
    out.push_str("</figure>");
    out
}

fn change(line: &Line) -> (Decimal, Option<Decimal>) {
    let delta = line.total - line.previous;
    let pct = (!line.previous.is_zero())
        .then(|| (delta / line.previous.abs() * Decimal::ONE_HUNDRED).round_dp(1));
    (delta, pct)
}

/// An amount cell: display rounding, the exact value in the title, linked to the API.
fn amount(value: Decimal, currency: Currency, api: &str) -> String {
    format!(
        "<td class=\"r\"><a class=\"num\" href=\"{}\" title=\"{value} {currency}\" data-cost=\"{value}\">{}</a></td>",
        esc(api),
        currency.display(value)
    )
}

/// A table row's opening and header cell: the group's colour and name, the name drilling
/// down to the same view filtered to the group.
fn group_header(v: &Explore, key: &str, line: &Line, colour: &str) -> String {
    let name = if key == "total" {
        esc(&line.name)
    } else {
        let mut filters = v.filters.clone();
        filters.push((key.to_owned(), line.name.clone()));
        let drill = Explore {
            filters,
            sort: v.sort.clone(),
            group_by: v.group_by.clone(),
            ..*v
        };
        format!(
            "<a href=\"{}\">{}</a>",
            esc(&drill.url(&[])),
            esc(&line.name)
        )
    };
    format!(
        "<tr data-key=\"{}\"><th scope=\"row\"><i class=\"dot\" style=\"background:{colour}\"></i>{name}</th>",
        esc(&line.name)
    )
}

fn table(
    v: &Explore,
    key: &str,
    currency: Currency,
    lines: &[Line],
    labels: &[String],
    previous: DateRange,
) -> String {
    let mut rows: Vec<&Line> = lines.iter().collect();
    match v.sort.as_str() {
        "change" => rows.sort_by_key(|l| std::cmp::Reverse(change(l).0.abs())),
        "name" => rows.sort_by(|a, b| a.name.cmp(&b.name)),
        _ => {}
    }
    let sort_link = |s: &str, text: &str| {
        format!(
            "<a href=\"{}\">{text}{}</a>",
            esc(&v.url(&[("sort", Some(s.to_owned()))])),
            if v.sort == s { " ▾" } else { "" }
        )
    };
    let mut out = format!(
        "<table data-table=\"explore\" data-currency=\"{currency}\"><caption>{} per {} in {currency}; change against {} .. {}</caption><tr><th scope=\"col\">{}</th>",
        esc(key),
        if v.granularity == Granularity::Daily { "day" } else { "month" },
        previous.start(),
        previous.end(),
        sort_link("name", &esc(key))
    );
    for label in labels {
        let _ = write!(out, "<th scope=\"col\" class=\"r\">{}</th>", esc(label));
    }
    let _ = write!(
        out,
        "<th scope=\"col\" class=\"r\">{}</th><th scope=\"col\" class=\"r\">Previous</th><th scope=\"col\" class=\"r\">{}</th><th scope=\"col\" class=\"r\">%</th></tr>",
        sort_link("total", "Total"),
        sort_link("change", "Change")
    );
    let palette = colours(lines.iter().map(|l| l.name.as_str()));
    // Past MAX_TABLE_ROWS groups, the rest is one row (the CSV download has every group).
    let rest = (rows.len() > MAX_TABLE_ROWS).then(|| {
        let rest = rows.split_off(MAX_TABLE_ROWS);
        let mut line = Line::new(format!("{} more groups", rest.len()));
        for l in rest {
            for (b, value) in &l.buckets {
                *line.buckets.entry(b.clone()).or_default() += *value;
            }
            line.total += l.total;
            line.previous += l.previous;
        }
        line
    });
    let mut totals = vec![Decimal::ZERO; labels.len()];
    let (mut total, mut prev) = (Decimal::ZERO, Decimal::ZERO);
    for line in rows.into_iter().chain(rest.as_ref()) {
        let grouped = rest.as_ref().is_some_and(|r| std::ptr::eq(r, line));
        let filter = (key != "total" && !grouped).then_some((key, line.name.as_str()));
        let api = v.api(v.range, filter);
        let _ = if grouped {
            write!(
                out,
                "<tr class=\"others\"><th scope=\"row\">{}</th>",
                esc(&line.name)
            )
        } else {
            out.push_str(&group_header(v, key, line, palette[&line.name]));
            Ok(())
        };
        for (i, label) in labels.iter().enumerate() {
            let value = line.buckets.get(label).copied().unwrap_or_default();
            totals[i] += value;
            out.push_str(&amount(value, currency, &api));
        }
        total += line.total;
        prev += line.previous;
        let (delta, pct) = change(line);
        out.push_str(&amount(line.total, currency, &api));
        out.push_str(&amount(line.previous, currency, &v.api(previous, filter)));
        out.push_str(&amount(delta, currency, &api));
        let _ = write!(
            out,
            "<td class=\"r\">{}</td></tr>",
            pct.map_or_else(|| "new".to_owned(), |p| format!("{p}%"))
        );
    }
    out.push_str("<tr class=\"total\"><th scope=\"row\">Total</th>");
    let api = v.api(v.range, None);
    for value in totals {
        out.push_str(&amount(value, currency, &api));
    }
    out.push_str(&amount(total, currency, &api));
    out.push_str(&amount(prev, currency, &v.api(previous, None)));
    out.push_str(&amount(total - prev, currency, &api));
    out.push_str("<td></td></tr></table>");
    out
}

fn movers(v: &Explore, key: &str, currency: Currency, lines: &[Line]) -> String {
    let mut by_change: Vec<(&Line, Decimal)> = lines.iter().map(|l| (l, change(l).0)).collect();
    by_change.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.name.cmp(&b.0.name)));
    let list = |items: Vec<&(&Line, Decimal)>| -> String {
        if items.is_empty() {
            return "<li>none</li>".into();
        }
        items.iter().fold(String::new(), |mut out, (l, d)| {
            let _ = write!(
                out,
                "<li data-mover=\"{}\">{} <a class=\"num\" href=\"{}\" title=\"{d} {currency}\">{}{} {currency}</a></li>",
                esc(&l.name),
                esc(&l.name),
                esc(&v.api(v.range, (key != "total").then_some((key, l.name.as_str())))),
                if *d > Decimal::ZERO { "+" } else { "" },
                currency.display(*d)
            );
            out
        })
    };
    let up: Vec<_> = by_change
        .iter()
        .filter(|(_, d)| *d > Decimal::ZERO)
        .take(5)
        .collect();
    let down: Vec<_> = by_change
        .iter()
        .rev()
        .filter(|(_, d)| *d < Decimal::ZERO)
        .take(5)
        .collect();
    format!(
        "<div class=\"movers\"><section><h3>Rose most ({currency})</h3><ol>{}</ol></section><section><h3>Fell most ({currency})</h3><ol>{}</ol></section></div>",
        list(up),
        list(down)
    )
}

fn controls(v: &Explore) -> String {
    let mut out = String::from("<nav class=\"presets\" aria-label=\"Date range presets\">");
    let today = Utc::now().date_naive();
    for (name, text) in PRESETS {
        let (s, e) = preset(name, today);
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

/// The previous range of the same length, ending where `range` starts.
fn previous_range(range: DateRange) -> DateRange {
    let days = range.end().signed_duration_since(range.start());
    DateRange::new(range.start() - days, range.start()).unwrap_or(range)
}

fn csv(key: &str, data: &BTreeMap<Currency, Vec<Line>>, labels: &[String]) -> String {
    let mut out = format!("{key},currency");
    for l in labels {
        let _ = write!(out, ",{l}");
    }
    out.push_str(",total,previous,change\n");
    for (currency, lines) in data {
        for line in lines {
            let cell = |s: &str| {
                if s.contains([',', '"', '\n']) {
                    format!("\"{}\"", s.replace('"', "\"\""))
                } else {
                    s.to_owned()
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
    state: &AppState,
    p: &Principal,
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
    for a in state.billing.anomalies(p, &request).await? {
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
pub(crate) async fn explore(
    State(state): State<AppState>,
    PageAuth(p): PageAuth,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    let mut v = Explore::parse(&params)?;
    // A member explores its project: the filter is added when the URL names none.
    if let Principal::ProjectMember { projects } = &p {
        if !v.filters.iter().any(|(k, _)| k == "project") {
            if let Some(id) = projects.first() {
                v.filters.push(("project".into(), id.to_string()));
            }
        }
    }
    let previous = previous_range(v.range);
    let report = state.billing.report(&p, &v.query(v.range)).await?;
    let before = state.billing.report(&p, &v.query(previous)).await?;
    let key = v.group_by.as_ref().map(ToString::to_string);
    let data = lines(&report, &before, key.as_deref());
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
    let today = Utc::now().date_naive();
    let this_month = (v.granularity == Granularity::Monthly && v.range.contains(today))
        .then(|| Granularity::Monthly.label(today));
    let mut forecasts = BTreeMap::new();
    if this_month.is_some() {
        let mut request = cloudbill_service::ForecastRequest::new(today);
        request.filters = v.query(v.range).filters;
        for c in state.billing.forecast(&p, &request).await?.currencies {
            forecasts.insert(c.currency, c);
        }
    }
    let anomalies = anomaly_marks_of(&state, &p, &v, &data).await?;
    let mut body = controls(&v);
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
        let mark = forecasts.get(currency).and_then(|f| {
            Some(ForecastMark {
                bucket: this_month.as_deref()?,
                amount: f.forecast?,
                low: f.low?,
                high: f.high?,
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
