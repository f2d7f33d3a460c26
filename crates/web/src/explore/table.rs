//! The explorer's table (a row per group, a column per period, totals and change) and its
//! top movers.

use std::fmt::Write as _;

use cloudbill_core::{Currency, DateRange, Decimal, Granularity};

use super::chart::colours;
use super::{Explore, Line, MAX_TABLE_ROWS};
use crate::dashboard::esc;

/// A line's change against the previous range, and as a percentage of it (`None`: nothing
/// before, or a percentage no decimal holds — a tiny previous total). The difference fits:
/// a view's amounts are bounded ([`super::MAX_CHARTED`]).
pub(super) fn change(line: &Line) -> (Decimal, Option<Decimal>) {
    let delta = line.total - line.previous;
    let pct = (!line.previous.is_zero())
        .then(|| {
            delta
                .checked_div(line.previous.abs())
                .and_then(|r| r.checked_mul(Decimal::ONE_HUNDRED))
        })
        .flatten()
        .map(|p| p.round_dp(1));
    (delta, pct)
}

/// An amount cell: display rounding, the exact value in the title, linked to the API.
pub(super) fn amount(value: Decimal, currency: Currency, api: &str) -> String {
    format!(
        "<td class=\"r\"><a class=\"num\" href=\"{}\" title=\"{value} {currency}\" data-cost=\"{value}\">{}</a></td>",
        esc(api),
        currency.display(value)
    )
}

/// A table row's opening and header cell: the group's colour and name, the name drilling
/// down to the same view filtered to the group.
pub(super) fn group_header(v: &Explore, key: &str, line: &Line, colour: &str) -> String {
    let name = if key == "total" {
        esc(&line.name)
    } else {
        let mut filters = v.filters.clone();
        filters.push((key.to_owned(), line.name.clone()));
        let drill = Explore {
            filters,
            sort: v.sort.clone(),
            group_by: v.group_by.clone(),
            base: v.base.clone(),
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

pub(super) fn table(
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
        // Writing to a String cannot fail.
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
            match pct {
                Some(p) => format!("{p}%"),
                None if line.previous.is_zero() => "new".to_owned(),
                None => "—".to_owned(),
            }
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

pub(super) fn movers(v: &Explore, key: &str, currency: Currency, lines: &[Line]) -> String {
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
