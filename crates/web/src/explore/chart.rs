//! The explorer's chart: stacked SVG bars of the top groups and "others", the y axis in the
//! currency, the legend, the month's forecast and anomaly marks; colours per group name.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::NaiveDate;
use cloudbill_core::{Currency, Decimal, Granularity};

use super::{Explore, Line};
use crate::dashboard::esc;

/// Colour-blind-safe series colours; a group's colour follows from its name, so the same group
/// has the same colour on every chart.
pub(super) const PALETTE: [&str; 20] = [
    "#4477aa", "#ee6677", "#228833", "#ccbb44", "#66ccee", "#aa3377", "#e69f00", "#009e73",
    "#0072b2", "#d55e00", "#332288", "#88ccee", "#44aa99", "#117733", "#999933", "#ddcc77",
    "#cc6677", "#882255", "#aa4499", "#6f4e37",
];
pub(super) const OTHERS_COLOUR: &str = "#9aa3ae";
pub(super) const OTHERS: &str = "others";

/// A group's own palette slot (FNV-1a of its name: stable across processes and versions).
pub(super) fn slot(name: &str) -> usize {
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    usize::try_from(hash % PALETTE.len() as u64).unwrap_or(0)
}

/// Colours of the groups drawn together, in order: each its own slot's colour, or, when an
/// earlier group took it, the next free one (so one chart never shows two groups alike, and
/// a group keeps its colour wherever it is drawn with the same larger groups).
pub(super) fn colours<'a>(
    names: impl IntoIterator<Item = &'a str>,
) -> BTreeMap<String, &'static str> {
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

/// A "nice" axis step for values up to `max` with about five ticks (1, 2 or 5 × 10^k).
pub(super) fn tick_step(max: Decimal) -> Decimal {
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

pub(super) fn to_px(v: Decimal) -> i64 {
    v.round().to_string().parse().unwrap_or(0)
}

/// A chart's series: the top groups, then "others" (the rest summed), each with its colour
/// and its value per bucket.
pub(super) fn series<'a>(
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

pub(super) const CHART_LEFT: i64 = 90;
pub(super) const CHART_TOP: i64 = 22;
pub(super) const CHART_WIDTH: i64 = 760;
pub(super) const CHART_HEIGHT: i64 = 220;

/// The stacked bar chart of one currency: the top groups and "others" per bucket, a y axis in
/// the currency, bucket labels, a legend, exact values in each bar's title, and the totals as
/// the chart's text alternative.
/// The y coordinate of `value` on an axis up to `axis_max`.
pub(super) fn y_at(value: Decimal, axis_max: Decimal) -> i64 {
    CHART_TOP + CHART_HEIGHT - to_px(value / axis_max * Decimal::from(CHART_HEIGHT))
}

/// The forecast of the month's bucket: a dashed line at the amount across the bar's slot and
/// the 80% interval as a vertical line, with the numbers in its title.
pub(super) fn forecast_mark(
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
pub(super) fn legend(
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
pub(super) struct ForecastMark<'a> {
    pub(super) bucket: &'a str,
    pub(super) amount: Decimal,
    pub(super) low: Decimal,
    pub(super) high: Decimal,
}

/// An anomaly drawn on a chart.
pub(super) struct AnomalyMark {
    pub(super) group: String,
    pub(super) kind: &'static str,
    pub(super) start: NaiveDate,
    pub(super) end: NaiveDate,
    pub(super) impact: Decimal,
}

/// Marks over the buckets an anomaly's days fall in: a triangle above the bar, the anomaly in
/// its title.
pub(super) fn anomaly_marks(
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

pub(super) fn chart(
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
