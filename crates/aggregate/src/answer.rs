//! A report's answer as the engine computes it: group ids and exact sums, the names of the
//! groups it holds, the period labels. It becomes a [`Report`] for a library caller, or is
//! written as the report's JSON straight from the sums (a server's answer: no `Report` of
//! strings built first).

use std::collections::BTreeMap;
use std::io::Write as _;

use cloudbill_core::{Currency, DateRange, Decimal, Granularity};
use ethnum::I256;

use crate::query::{Amount, Bucket, GroupKey, Report, ReportRow, NO_VALUE};
use crate::QueryError;

/// One amount of a row: its period (an index into the labels), currency and sum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cell {
    pub(crate) bucket: u32,
    pub(crate) currency: Currency,
    pub(crate) sum: I256,
}

/// The answer to a [`crate::Query`] before its text: what [`crate::Engine::answer_until`]
/// returns. [`Answer::to_report`] gives the [`Report`]; [`Answer::write_json`] writes the
/// same report's JSON (byte for byte what `serde_json` writes of the `Report`) without
/// building it, several times faster and with a fraction of the allocations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    range: DateRange,
    granularity: Granularity,
    group_by: Vec<GroupKey>,
    /// Each period's label, by bucket.
    labels: Vec<String>,
    /// Per group-by key, the names of the ids the rows hold.
    names: Vec<Vec<String>>,
    /// Per row, its id per group-by key (rows × keys).
    ids: Vec<u32>,
    /// Every row's cells in (period, currency code) order, row after row.
    cells: Vec<Cell>,
    /// Every row's totals in currency order, row after row.
    totals: Vec<(Currency, I256)>,
    /// Per row, where its cells and totals end.
    ends: Vec<(u32, u32)>,
    /// The scale of every sum.
    scale: u32,
    total_count: usize,
}

/// Rows as the engine pages them, before they are packed into an [`Answer`].
pub(crate) struct AnswerParts {
    pub(crate) range: DateRange,
    pub(crate) granularity: Granularity,
    pub(crate) group_by: Vec<GroupKey>,
    pub(crate) labels: Vec<String>,
    pub(crate) scale: u32,
    pub(crate) total_count: usize,
}

impl Answer {
    /// An answer of `rows` (each: ids per key, cells in any order, totals in any order),
    /// with `name(dim, id)` the name of id `id` of key `dim`. Each row's cells and totals go
    /// straight into the flat vectors and are sorted there.
    pub(crate) fn new<'n, C, T>(
        parts: AnswerParts,
        rows: impl ExactSizeIterator<Item = (Vec<u32>, C, T)>,
        name: impl Fn(usize, u32) -> &'n str,
    ) -> Self
    where
        C: IntoIterator<Item = Cell>,
        T: IntoIterator<Item = (Currency, I256)>,
    {
        let dims = parts.group_by.len();
        let mut ids = Vec::with_capacity(rows.len() * dims);
        let mut cells = Vec::new();
        let mut totals = Vec::new();
        let mut ends = Vec::with_capacity(rows.len());
        for (row_ids, row_cells, row_totals) in rows {
            ids.extend_from_slice(&row_ids);
            let (cells_from, totals_from) = (cells.len(), totals.len());
            cells.extend(row_cells);
            totals.extend(row_totals);
            // The currencies' dictionary ids follow load order, which no answer may show.
            cells[cells_from..].sort_unstable_by_key(|c| (c.bucket, c.currency));
            totals[totals_from..].sort_unstable_by_key(|t| t.0);
            ends.push((
                u32::try_from(cells.len()).unwrap_or(u32::MAX),
                u32::try_from(totals.len()).unwrap_or(u32::MAX),
            ));
        }
        // Only the names the rows use are kept (a key may have thousands of values), the
        // ids renumbered into them.
        let mut names = Vec::with_capacity(dims);
        for dim in 0..dims {
            let mut used: Vec<u32> = ids.iter().skip(dim).step_by(dims).copied().collect();
            used.sort_unstable();
            used.dedup();
            for id in ids.iter_mut().skip(dim).step_by(dims) {
                *id = u32::try_from(used.binary_search(id).unwrap_or(0)).unwrap_or(0);
            }
            names.push(used.iter().map(|&id| name(dim, id).to_owned()).collect());
        }
        Self {
            range: parts.range,
            granularity: parts.granularity,
            group_by: parts.group_by,
            labels: parts.labels,
            names,
            ids,
            cells,
            totals,
            ends,
            scale: parts.scale,
            total_count: parts.total_count,
        }
    }

    /// Groups before the limit.
    pub fn total_count(&self) -> usize {
        self.total_count
    }

    /// Rows answered (after the limit).
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether no row is answered.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Amounts answered: each period's and each total.
    pub fn amounts(&self) -> usize {
        self.cells.len() + self.totals.len()
    }

    /// The heap the answer holds, as allocated.
    pub fn memory_bytes(&self) -> usize {
        use std::mem::size_of;
        let text = |v: &[String]| {
            std::mem::size_of_val(v)
                + v.iter()
                    .map(|s| s.len().next_multiple_of(16))
                    .sum::<usize>()
        };
        size_of::<Self>()
            + self.group_by.capacity() * size_of::<GroupKey>()
            + text(&self.labels)
            + self.names.iter().map(|n| text(n)).sum::<usize>()
            + self.ids.capacity() * size_of::<u32>()
            + self.cells.capacity() * size_of::<Cell>()
            + self.totals.capacity() * size_of::<(Currency, I256)>()
            + self.ends.capacity() * size_of::<(u32, u32)>()
    }

    /// Row `row`'s cells, totals and ids.
    fn row(&self, row: usize) -> (&[Cell], &[(Currency, I256)], &[u32]) {
        let (cells_from, totals_from) = match row {
            0 => (0, 0),
            _ => self.ends[row - 1],
        };
        let (cells_to, totals_to) = self.ends[row];
        let dims = self.group_by.len();
        (
            &self.cells[cells_from as usize..cells_to as usize],
            &self.totals[totals_from as usize..totals_to as usize],
            &self.ids[row * dims..(row + 1) * dims],
        )
    }

    /// Row `row`'s group: key name → value name, as the report's group map holds it (in
    /// key-name order; a key named twice keeps its last value).
    fn group(&self, ids: &[u32]) -> BTreeMap<String, String> {
        self.group_by
            .iter()
            .zip(ids)
            .enumerate()
            .map(|(dim, (k, id))| (k.as_str().to_owned(), self.names[dim][*id as usize].clone()))
            .collect()
    }

    /// A sum as a Decimal; one no Decimal holds fails the answer, naming where it is.
    fn decimal(
        &self,
        ids: &[u32],
        sum: I256,
        date: &str,
        currency: Currency,
    ) -> Result<Decimal, QueryError> {
        wide_to_decimal(sum, self.scale).ok_or_else(|| QueryError::TotalOutOfRange {
            group: if ids.is_empty() {
                "the consolidated billing".to_owned()
            } else {
                self.group(ids)
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
            date: date.to_owned(),
            currency,
        })
    }

    /// The report.
    pub fn to_report(&self) -> Result<Report, QueryError> {
        let mut results = Vec::with_capacity(self.len());
        for row in 0..self.len() {
            let (cells, totals, ids) = self.row(row);
            let billing_data = cells
                .iter()
                .map(|c| {
                    let date = self
                        .labels
                        .get(c.bucket as usize)
                        .cloned()
                        .unwrap_or_default();
                    Ok(Bucket {
                        cost: self.decimal(ids, c.sum, &date, c.currency)?,
                        date,
                        currency: c.currency,
                    })
                })
                .collect::<Result<Vec<_>, QueryError>>()?;
            let total = totals
                .iter()
                .map(|(c, v)| {
                    Ok(Amount {
                        cost: self.decimal(ids, *v, "the whole range", *c)?,
                        currency: *c,
                    })
                })
                .collect::<Result<Vec<_>, QueryError>>()?;
            results.push(ReportRow {
                group: self.group(ids),
                billing_data,
                total,
            });
        }
        Ok(Report {
            start: self.range.start().format("%Y-%m-%d").to_string(),
            end: self.range.end().format("%Y-%m-%d").to_string(),
            granularity: self.granularity,
            group_by: self.group_by.clone(),
            results,
            total_count: self.total_count,
            conversion: None,
        })
    }

    /// Appends the report's JSON to `out`: the bytes `serde_json::to_vec(&self.to_report()?)`
    /// gives, written from the sums (each name, label and currency escaped once per answer).
    /// On an error (a sum no Decimal holds) `out` holds a part of it.
    pub fn write_json(&self, out: &mut Vec<u8>) -> Result<(), QueryError> {
        let labels: Vec<Vec<u8>> = self.labels.iter().map(|l| json(l.as_str())).collect();
        let names: Vec<Vec<Vec<u8>>> = self
            .names
            .iter()
            .map(|n| {
                n.iter()
                    .map(|v| {
                        if v == NO_VALUE {
                            b"null".to_vec()
                        } else {
                            json(v.as_str())
                        }
                    })
                    .collect()
            })
            .collect();
        // The group map's keys in name order; of a key named twice, the last.
        let mut order: Vec<usize> = (0..self.group_by.len()).collect();
        order.sort_by_key(|&d| self.group_by[d].as_str());
        order.dedup_by(|later, earlier| {
            let same = self.group_by[*later].as_str() == self.group_by[*earlier].as_str();
            if same {
                *earlier = *later;
            }
            same
        });
        let keys: Vec<(usize, Vec<u8>)> = order
            .iter()
            .map(|&d| (d, json(self.group_by[d].as_str())))
            .collect();
        let mut currencies: Vec<(Currency, Vec<u8>)> = Vec::new();
        let mut currency =
            |c: Currency, out: &mut Vec<u8>| match currencies.iter().find(|(k, _)| *k == c) {
                Some((_, v)) => out.extend_from_slice(v),
                None => {
                    let v = json(&c);
                    out.extend_from_slice(&v);
                    currencies.push((c, v));
                }
            };

        out.extend_from_slice(b"{\"start\":\"");
        write!(out, "{}", self.range.start().format("%Y-%m-%d")).ok();
        out.extend_from_slice(b"\",\"end\":\"");
        write!(out, "{}", self.range.end().format("%Y-%m-%d")).ok();
        out.extend_from_slice(b"\",\"granularity\":");
        out.extend_from_slice(&json(&self.granularity));
        out.extend_from_slice(b",\"group_by\":");
        out.extend_from_slice(&json(&self.group_by));
        out.extend_from_slice(b",\"results\":[");
        for row in 0..self.len() {
            let (cells, totals, ids) = self.row(row);
            if row > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"group\":{");
            for (i, (dim, key)) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(key);
                out.push(b':');
                out.extend_from_slice(&names[*dim][ids[*dim] as usize]);
            }
            out.extend_from_slice(b"},\"billing_data\":[");
            for (i, c) in cells.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(b"{\"date\":");
                out.extend_from_slice(labels.get(c.bucket as usize).map_or(b"\"\"", Vec::as_slice));
                out.extend_from_slice(b",\"cost\":\"");
                self.write_sum(out, c.sum, || {
                    (
                        ids,
                        self.labels
                            .get(c.bucket as usize)
                            .cloned()
                            .unwrap_or_default(),
                        c.currency,
                    )
                })?;
                out.extend_from_slice(b"\",\"currency\":");
                currency(c.currency, out);
                out.push(b'}');
            }
            out.extend_from_slice(b"],\"total\":[");
            for (i, (c, v)) in totals.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(b"{\"cost\":\"");
                self.write_sum(out, *v, || (ids, "the whole range".to_owned(), *c))?;
                out.extend_from_slice(b"\",\"currency\":");
                currency(*c, out);
                out.push(b'}');
            }
            out.extend_from_slice(b"]}");
        }
        write!(out, "],\"total_count\":{}}}", self.total_count).ok();
        Ok(())
    }

    /// Writes `sum` at the answer's scale as Decimal prints it: digits straight from the
    /// integer when it fits a Decimal at this scale, else through the Decimal (`at` names
    /// the amount when none holds it).
    fn write_sum<'a>(
        &'a self,
        out: &mut Vec<u8>,
        sum: I256,
        at: impl FnOnce() -> (&'a [u32], String, Currency),
    ) -> Result<(), QueryError> {
        /// A Decimal's mantissa: 96 bits.
        const MANTISSA: u128 = 1 << 96;
        if let Ok(v) = i128::try_from(sum) {
            if v.unsigned_abs() < MANTISSA && self.scale <= 28 {
                write_scaled(out, v, self.scale as usize);
                return Ok(());
            }
        }
        let (ids, date, currency) = at();
        let d = self.decimal(ids, sum, &date, currency)?;
        write!(out, "{d}").ok();
        Ok(())
    }
}

/// `v` with `scale` digits after the point, as Decimal prints it: `-` for a negative value,
/// at least one digit before the point, none for scale 0.
fn write_scaled(out: &mut Vec<u8>, v: i128, scale: usize) {
    let mut digits = [b'0'; 40];
    let mut n = v.unsigned_abs();
    let mut len = 0;
    while n > 0 {
        digits[len] = b'0' + u8::try_from(n % 10).unwrap_or(0);
        n /= 10;
        len += 1;
    }
    // Zeros up to one digit before the point (`0.05`, `0`).
    let len = len.max(scale + 1);
    if v < 0 {
        out.push(b'-');
    }
    for i in (0..len).rev() {
        out.push(digits[i]);
        if i == scale && scale > 0 {
            out.push(b'.');
        }
    }
}

/// The exact decimal of `v` at `scale`, trailing zeros dropped while it does not fit;
/// `None` when no Decimal holds it exactly (more than 96 bits of significant digits).
pub(crate) fn wide_to_decimal(mut v: I256, mut scale: u32) -> Option<Decimal> {
    let ten = I256::from(10i128);
    loop {
        if let Ok(small) = i128::try_from(v) {
            if let Ok(d) = Decimal::try_from_i128_with_scale(small, scale) {
                return Some(d);
            }
        }
        if scale == 0 || v % ten != I256::ZERO {
            return None;
        }
        v /= ten;
        scale -= 1;
    }
}

/// The JSON of a small value, as `serde_json` writes it.
fn json<T: serde::Serialize + ?Sized>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use cloudbill_core::Decimal;
    use proptest::prelude::*;

    use super::write_scaled;

    fn scaled(v: i128, scale: u32) -> String {
        let mut out = Vec::new();
        write_scaled(&mut out, v, scale as usize);
        String::from_utf8(out).unwrap_or_default()
    }

    proptest! {
        /// Digits written straight from an integer at a scale are what Decimal prints (and
        /// so what the report's JSON holds) for every value a Decimal holds.
        #[test]
        fn an_integer_at_a_scale_prints_as_its_decimal(
            v in -(1i128 << 96) + 1..(1i128 << 96),
            small in -100_000i128..100_000,
            scale in 0u32..=28,
        ) {
            for v in [v, small] {
                let d = Decimal::try_from_i128_with_scale(v, scale).unwrap();
                prop_assert_eq!(scaled(v, scale), d.to_string());
            }
        }
    }

    #[test]
    fn edges_print_as_decimal_does() {
        for (v, scale) in [
            (0, 0),
            (0, 2),
            (5, 2),
            (-5, 2),
            (100, 2),
            ((1i128 << 96) - 1, 28),
        ] {
            let d = Decimal::try_from_i128_with_scale(v, scale).unwrap();
            assert_eq!(scaled(v, scale), d.to_string(), "{v} at {scale}");
        }
    }
}
