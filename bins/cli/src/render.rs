//! Output: tables, JSON and CSV. Only this module knows the CLI's output formats.
//!
//! Tables are drawn as comfy-table's `UTF8_FULL_CONDENSED` preset draws them, by a writer of
//! our own that streams rows straight to the output: a report of thousands of rows renders in
//! milliseconds instead of building a table of cell objects first. A test draws random tables
//! with both and requires the same bytes, so comfy-table stays the reference.

use std::collections::BTreeSet;
use std::io::Write;

use cloudbill_service::Report;
use unicode_width::UnicodeWidthStr;

use crate::args::Format;
use crate::CliError;

/// Tabular data with a JSON twin.
pub(crate) struct Grid {
    /// Column names (CSV header, table header).
    pub(crate) headers: Vec<&'static str>,
    /// Columns to right-align (amounts, counts).
    pub(crate) numeric: Vec<bool>,
    /// Rows of cells.
    pub(crate) rows: Vec<Vec<String>>,
    /// The JSON form.
    pub(crate) json: serde_json::Value,
}

impl Grid {
    /// A grid with these headers; `numeric` names right-aligned columns.
    pub(crate) fn new(headers: &[&'static str], numeric: &[&str], json: serde_json::Value) -> Self {
        Self {
            headers: headers.to_vec(),
            numeric: headers.iter().map(|h| numeric.contains(h)).collect(),
            rows: Vec::new(),
            json,
        }
    }

    /// Adds a row.
    pub(crate) fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }
}

fn io(e: impl std::fmt::Display) -> CliError {
    CliError::Failure(format!("cannot write output: {e}"))
}

/// A value fit for a terminal: control characters (ESC of an escape sequence, a carriage
/// return that would overwrite a line) are shown escaped, `\u{1b}`; anything else as it is.
/// Names from files are refused with control characters, but a provider may still send one.
pub(crate) fn printable(value: &str) -> std::borrow::Cow<'_, str> {
    if !value.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(value);
    }
    std::borrow::Cow::Owned(
        value
            .chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_unicode().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}

/// Writes a table: `headers`, then `rows`, then `footer`; `numeric` columns right-aligned;
/// cells made [`printable`]; widths in terminal columns. Bytes as comfy-table's
/// `UTF8_FULL_CONDENSED` preset (no row separators), followed by a newline.
fn write_table(
    out: &mut dyn Write,
    headers: &[String],
    numeric: &[bool],
    rows: &[Vec<String>],
    footer: &[Vec<String>],
) -> std::io::Result<()> {
    let columns = headers
        .len()
        .max(rows.iter().chain(footer).map(Vec::len).max().unwrap_or(0));
    let mut widths = vec![0usize; columns];
    for row in std::iter::once(headers).chain(rows.iter().chain(footer).map(Vec::as_slice)) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(printable(cell).width());
        }
    }
    let rule = |out: &mut dyn Write, [left, line, cross, right]: [&str; 4]| {
        out.write_all(left.as_bytes())?;
        for (i, w) in widths.iter().enumerate() {
            if i > 0 {
                out.write_all(cross.as_bytes())?;
            }
            for _ in 0..w + 2 {
                out.write_all(line.as_bytes())?;
            }
        }
        out.write_all(right.as_bytes())?;
        out.write_all(b"\n")
    };
    let line = |out: &mut dyn Write, row: &[String]| {
        out.write_all("│".as_bytes())?;
        for (i, w) in widths.iter().enumerate() {
            if i > 0 {
                out.write_all("┆".as_bytes())?;
            }
            let cell = row
                .get(i)
                .map_or(std::borrow::Cow::Borrowed(""), |c| printable(c));
            let pad = w - cell.width();
            if numeric.get(i).copied().unwrap_or(false) {
                write!(out, " {:pad$}{cell} ", "")?;
            } else {
                write!(out, " {cell}{:pad$} ", "")?;
            }
        }
        out.write_all("│\n".as_bytes())
    };
    if columns == 0 {
        return Ok(());
    }
    rule(out, ["┌", "─", "┬", "┐"])?;
    if !headers.is_empty() {
        line(out, headers)?;
        rule(out, ["╞", "═", "╪", "╡"])?;
    }
    for row in rows.iter().chain(footer) {
        line(out, row)?;
    }
    rule(out, ["└", "─", "┴", "┘"])?;
    Ok(())
}

/// Prints a grid in `format`.
pub(crate) fn print(out: &mut dyn Write, format: Format, grid: &Grid) -> Result<(), CliError> {
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, &grid.json).map_err(io)?;
            writeln!(out).map_err(io)
        }
        Format::Csv => {
            let mut w = csv::Writer::from_writer(out);
            w.write_record(&grid.headers).map_err(io)?;
            for r in &grid.rows {
                w.write_record(
                    r.iter()
                        .map(|c| cloudbill_core::formula_safe(&printable(c)).into_owned()),
                )
                .map_err(io)?;
            }
            w.flush().map_err(io)
        }
        Format::Table => {
            let headers: Vec<String> = grid.headers.iter().map(|h| (*h).to_owned()).collect();
            write_table(out, &headers, &grid.numeric, &grid.rows, &[]).map_err(io)
        }
    }
}

/// Prints a report: JSON exactly as the API, CSV long (one line per group/date/currency), a
/// table wide (one column per bucket) when there are few buckets, long otherwise, with totals.
#[allow(clippy::too_many_lines)] // One arm per output format.
/// Prints a report: JSON and CSV exact; the table rounds amounts to the currency's minor unit
/// with thousands separators ([`cloudbill_core::Currency::display`]) unless `exact`.
pub(crate) fn print_report(
    out: &mut dyn Write,
    format: Format,
    report: &Report,
    exact: bool,
) -> Result<(), CliError> {
    let shown = |currency: cloudbill_core::Currency, v: cloudbill_core::Decimal| {
        if exact {
            v.to_string()
        } else {
            currency.display(v)
        }
    };
    let keys: Vec<String> = report
        .group_by
        .iter()
        .map(|k| k.as_str().to_owned())
        .collect();
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, report).map_err(io)?;
            writeln!(out).map_err(io)
        }
        Format::Csv => {
            let mut w = csv::Writer::from_writer(out);
            let mut header = keys.clone();
            header.extend(["date".into(), "currency".into(), "cost".into()]);
            w.write_record(&header).map_err(io)?;
            for row in &report.results {
                for b in &row.billing_data {
                    let mut rec: Vec<String> = keys
                        .iter()
                        .map(|k| row.group.get(k).cloned().unwrap_or_default())
                        .collect();
                    rec.extend([b.date.clone(), b.currency.to_string(), b.cost.to_string()]);
                    w.write_record(
                        rec.iter()
                            .map(|c| cloudbill_core::formula_safe(&printable(c)).into_owned()),
                    )
                    .map_err(io)?;
                }
            }
            w.flush().map_err(io)
        }
        Format::Table => {
            if report.results.is_empty() {
                return writeln!(out, "no costs from {} to {}", report.start, report.end)
                    .map_err(io);
            }
            let dates: BTreeSet<&str> = report
                .results
                .iter()
                .flat_map(|r| r.billing_data.iter().map(|b| b.date.as_str()))
                .collect();
            let label = if keys.is_empty() {
                vec!["scope".to_owned()]
            } else {
                keys.clone()
            };
            let group_cells = |row: &cloudbill_service::ReportRow| -> Vec<String> {
                if keys.is_empty() {
                    vec!["consolidated".into()]
                } else {
                    keys.iter()
                        .map(|k| row.group.get(k).cloned().unwrap_or_default())
                        .collect()
                }
            };
            let mut rows = Vec::new();
            let mut footer = Vec::new();
            let totals = report.totals();
            if dates.len() <= 12 {
                let mut headers = label.clone();
                headers.push("currency".into());
                headers.extend(dates.iter().map(|d| (*d).to_owned()));
                headers.push("total".into());
                for row in &report.results {
                    for t in &row.total {
                        let mut cells = group_cells(row);
                        cells.push(t.currency.to_string());
                        for d in &dates {
                            let v = row
                                .billing_data
                                .iter()
                                .find(|b| b.date == *d && b.currency == t.currency);
                            cells.push(v.map_or_else(String::new, |b| shown(b.currency, b.cost)));
                        }
                        cells.push(shown(t.currency, t.cost));
                        rows.push(cells);
                    }
                }
                for t in &totals {
                    let mut cells = vec![String::new(); label.len()];
                    cells[0] = "TOTAL".into();
                    cells.push(t.currency.to_string());
                    for d in &dates {
                        let sum: cloudbill_core::Decimal = report
                            .results
                            .iter()
                            .flat_map(|r| r.billing_data.iter())
                            .filter(|b| b.date == *d && b.currency == t.currency)
                            .map(|b| b.cost)
                            .sum();
                        cells.push(shown(t.currency, sum));
                    }
                    cells.push(shown(t.currency, t.cost));
                    footer.push(cells);
                }
                let numeric: Vec<bool> = headers
                    .iter()
                    .enumerate()
                    .map(|(i, _)| i > label.len())
                    .collect();
                write_table(out, &headers, &numeric, &rows, &footer).map_err(io)
            } else {
                let mut headers = label.clone();
                headers.extend(["date".into(), "currency".into(), "cost".into()]);
                for row in &report.results {
                    for b in &row.billing_data {
                        let mut cells = group_cells(row);
                        cells.extend([
                            b.date.clone(),
                            b.currency.to_string(),
                            shown(b.currency, b.cost),
                        ]);
                        rows.push(cells);
                    }
                }
                for t in &totals {
                    let mut cells = vec![String::new(); label.len()];
                    cells[0] = "TOTAL".into();
                    cells.extend([
                        String::new(),
                        t.currency.to_string(),
                        shown(t.currency, t.cost),
                    ]);
                    footer.push(cells);
                }
                let numeric: Vec<bool> = headers
                    .iter()
                    .enumerate()
                    .map(|(i, _)| i == headers.len() - 1)
                    .collect();
                write_table(out, &headers, &numeric, &rows, &footer).map_err(io)
            }
        }
    }
}

/// Prints tag keys: JSON as the API; CSV and the table one line per (key, value).
pub(crate) fn print_tags(
    out: &mut dyn Write,
    format: Format,
    tags: &[cloudbill_service::TagSummary],
) -> Result<(), CliError> {
    let mut grid = Grid::new(
        &["key", "value", "records"],
        &["records"],
        serde_json::json!({ "tags": tags }),
    );
    for t in tags {
        for v in &t.values {
            grid.row(vec![t.key.clone(), v.value.clone(), v.records.to_string()]);
        }
        if t.value_count > t.values.len() {
            grid.row(vec![
                t.key.clone(),
                format!("(+{} more values)", t.value_count - t.values.len()),
                String::new(),
            ]);
        }
    }
    if tags.is_empty() && format == Format::Table {
        return writeln!(out, "no tags on the costs in this range").map_err(io);
    }
    print(out, format, &grid)
}

pub(crate) fn print_anomalies(
    out: &mut dyn Write,
    format: Format,
    found: &[cloudbill_service::FoundAnomaly],
) -> Result<(), CliError> {
    let mut grid = Grid::new(
        &[
            "kind",
            "group",
            "start",
            "end",
            "expected",
            "actual",
            "impact",
            "score",
            "currency",
            "top contributor",
        ],
        &["expected", "actual", "impact", "score"],
        serde_json::json!({ "anomalies": found }),
    );
    for a in found {
        let group = a
            .group
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ");
        let top = a.contributors.first().map_or_else(String::new, |c| {
            let who = c
                .group
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ");
            format!("{who} ({})", a.currency.display(c.impact))
        });
        grid.row(vec![
            a.kind.to_owned(),
            group,
            a.start.to_string(),
            a.end.to_string(),
            a.currency.display(a.expected),
            a.currency.display(a.actual),
            a.currency.display(a.impact),
            a.score.to_string(),
            a.currency.to_string(),
            top,
        ]);
    }
    if found.is_empty() && format == Format::Table {
        return writeln!(out, "no anomalies").map_err(io);
    }
    print(out, format, &grid)
}

pub(crate) fn print_forecast(
    out: &mut dyn Write,
    format: Format,
    f: &cloudbill_service::ForecastReport,
) -> Result<(), CliError> {
    let json = serde_json::to_value(f).map_err(|e| CliError::Failure(e.to_string()))?;
    let mut grid = Grid::new(
        &[
            "currency",
            "actual",
            "forecast",
            "low (80%)",
            "high (80%)",
            "method",
            "days used",
            "left out",
            "predicted",
        ],
        &[
            "actual",
            "forecast",
            "low (80%)",
            "high (80%)",
            "days used",
            "predicted",
        ],
        json,
    );
    for c in &f.currencies {
        // Table cells in the currency's minor unit; the JSON keeps every digit.
        let shown = |v: Option<cloudbill_core::Decimal>| {
            v.map_or_else(String::new, |v| c.currency.display(v))
        };
        grid.row(vec![
            c.currency.to_string(),
            c.currency.display(c.actual),
            shown(c.forecast),
            shown(c.low),
            shown(c.high),
            c.method.unwrap_or("insufficient history").to_owned(),
            c.days_used.to_string(),
            c.days_left_out
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(" "),
            c.days_predicted.to_string(),
        ]);
    }
    if format == Format::Table {
        writeln!(
            out,
            "forecast for {} .. {} as of {} ({} restatable days left out)",
            f.period.start, f.period.end, f.as_of, f.restate_days
        )
        .map_err(io)?;
        if f.currencies.is_empty() {
            return writeln!(out, "no spend in the history or the period").map_err(io);
        }
    }
    print(out, format, &grid)
}

#[cfg(test)]
mod tests {
    use super::{printable, write_table};
    use comfy_table::{presets, CellAlignment, ContentArrangement, Table};
    use proptest::prelude::*;

    /// The table as comfy-table draws it (the reference `write_table` must match).
    fn comfy(headers: &[String], numeric: &[bool], rows: &[Vec<String>]) -> String {
        let mut t = Table::new();
        t.load_preset(presets::UTF8_FULL_CONDENSED)
            .set_content_arrangement(ContentArrangement::Disabled)
            .set_header(headers);
        for row in rows {
            t.add_row(row.iter().map(|c| printable(c)));
        }
        for (i, right) in numeric.iter().enumerate() {
            if *right {
                if let Some(col) = t.column_mut(i) {
                    col.set_cell_alignment(CellAlignment::Right);
                }
            }
        }
        format!("{t}\n")
    }

    fn ours(headers: &[String], numeric: &[bool], rows: &[Vec<String>]) -> String {
        let mut out = Vec::new();
        let (body, footer) = rows.split_at(rows.len() / 2);
        write_table(&mut out, headers, numeric, body, footer).unwrap();
        String::from_utf8(out).unwrap()
    }

    proptest! {
        #[test]
        fn tables_are_drawn_as_comfy_table_draws_them(
            columns in 1usize..5,
            cells in proptest::collection::vec("[a-z0-9 .,-]{0,6}|[É東京 ]{0,3}|.{0,4}", 0..40),
            numeric in proptest::collection::vec(any::<bool>(), 5),
        ) {
            let headers: Vec<String> = (0..columns).map(|i| format!("h{i}")).collect();
            let rows: Vec<Vec<String>> = cells.chunks(columns).map(<[String]>::to_vec)
                .filter(|r| r.len() == columns).collect();
            let numeric = &numeric[..columns];
            prop_assert_eq!(ours(&headers, numeric, &rows), comfy(&headers, numeric, &rows));
        }
    }

    #[test]
    fn a_report_sized_table_matches_too() {
        let headers: Vec<String> = ["account", "service", "2025-01", "total"]
            .map(String::from)
            .into();
        let rows: Vec<Vec<String>> = (0..500)
            .map(|i| {
                vec![
                    format!("acc-{i}"),
                    "AmazonEC2".into(),
                    format!("{i}.0100"),
                    format!("{}.5", i * 3),
                ]
            })
            .collect();
        let numeric = [false, false, true, true];
        assert_eq!(
            ours(&headers, &numeric, &rows),
            comfy(&headers, &numeric, &rows)
        );
    }

    #[test]
    fn terminal_escapes_are_shown_escaped() {
        assert_eq!(printable("AmazonEC2"), "AmazonEC2");
        assert_eq!(
            printable("x\u{1b}[2Jy\r\u{9b}"),
            "x\\u{1b}[2Jy\\u{d}\\u{9b}"
        );
    }
}
