//! Exports written piece by piece, in memory bounded whatever their size: an [`ExportPlan`]
//! from a first look at every row (which columns have a value, each decimal column's scale),
//! then a [`FocusWriter`] that takes the rows in batches — CSV rows as they come, Parquet row
//! groups of at most [`ROW_GROUP_ROWS`] rows or [`ROW_GROUP_BYTES`] bytes of values.
//!
//! The plan must hold every row written: a row with a value in a column the plan left out,
//! or a decimal past its column's scale, is refused (the data changed between the two looks)
//! rather than written wrong.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Write};
use std::sync::Arc;

use cloudbill_core::Decimal;
use parquet::basic::Compression;
use parquet::data_type::{
    ByteArray, ByteArrayType, FixedLenByteArray, FixedLenByteArrayType, Int64Type,
};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::Type;

use crate::export::{cell, column_kind, ExportRow, Presence, ValueKind, COLUMNS, OWN_COLUMNS};
use crate::parquet::{decimal_bytes, field, micros, DecimalLayout, ROW_GROUP_ROWS};
use crate::ExportFormat;

/// The most bytes of values a Parquet row group holds before it is written.
pub const ROW_GROUP_BYTES: usize = 32 << 20;

fn invalid(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.into())
}

fn decimal_of(text: &str) -> io::Result<Decimal> {
    text.parse()
        .map_err(|_| invalid(format!("{text:?} is not a decimal")))
}

/// Digits of the integer part of `d` (0 below 1).
fn int_digits(d: Decimal) -> u32 {
    let digits = d
        .mantissa()
        .unsigned_abs()
        .checked_ilog10()
        .map_or(0, |l| l + 1);
    digits.saturating_sub(d.scale())
}

/// What an export holds, learned from every row before the first is written.
#[derive(Debug, Clone)]
pub struct ExportPlan {
    /// Per [`COLUMNS`] entry: some row has a value.
    any: Vec<bool>,
    /// The rows' own `x_` columns.
    extensions: BTreeSet<String>,
    /// Per decimal column: the largest scale and the most integer digits of its values.
    decimals: BTreeMap<&'static str, (u32, u32)>,
    rows: u64,
}

impl Default for ExportPlan {
    fn default() -> Self {
        Self::new()
    }
}

impl ExportPlan {
    /// A plan that has seen no row.
    pub fn new() -> Self {
        Self {
            any: COLUMNS
                .iter()
                .map(|(_, presence, _)| *presence == Presence::Always)
                .collect(),
            extensions: BTreeSet::new(),
            decimals: BTreeMap::new(),
            rows: 0,
        }
    }

    /// Takes `rows` into account.
    ///
    /// # Errors
    /// A decimal column whose value is not a decimal (a program error).
    pub fn observe(&mut self, rows: &[ExportRow<'_>]) -> io::Result<()> {
        for row in rows {
            for (i, (name, _, value)) in COLUMNS.iter().enumerate() {
                let kind = column_kind(name);
                if self.any[i] && kind != ValueKind::Decimal {
                    continue;
                }
                let Some(v) = value(row) else { continue };
                self.any[i] = true;
                if kind == ValueKind::Decimal {
                    let d = decimal_of(&v)?;
                    let slot = self.decimals.entry(name).or_insert((0, 0));
                    slot.0 = slot.0.max(d.scale());
                    slot.1 = slot.1.max(int_digits(d));
                }
            }
            for k in row.record.extensions.keys() {
                if !OWN_COLUMNS.contains(&k.as_str()) && !self.extensions.contains(k) {
                    self.extensions.insert(k.clone());
                }
            }
        }
        self.rows += rows.len() as u64;
        Ok(())
    }

    /// The rows seen.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// The export's columns, in order (as [`crate::export_columns`] of every row seen).
    pub fn columns(&self) -> Vec<Cow<'static, str>> {
        let mut out: Vec<Cow<'static, str>> = COLUMNS
            .iter()
            .zip(&self.any)
            .filter(|(_, any)| **any)
            .map(|((name, _, _), _)| Cow::Borrowed(*name))
            .collect();
        out.extend(self.extensions.iter().map(|k| Cow::Owned(k.clone())));
        out
    }

    /// A decimal column's Parquet layout: its largest scale, and 32 bytes when a value does
    /// not fit 38 digits at that scale.
    fn layout(&self, name: &str) -> DecimalLayout {
        let (scale, digits) = self.decimals.get(name).copied().unwrap_or((0, 0));
        DecimalLayout {
            scale,
            wide: digits + scale > 38,
        }
    }
}

/// One Parquet column's values of the row group being filled.
enum Buffered {
    Decimal(Vec<FixedLenByteArray>),
    Timestamp(Vec<i64>),
    Text(Vec<ByteArray>),
}

struct ParquetColumn {
    name: Cow<'static, str>,
    layout: Option<DecimalLayout>,
    defs: Vec<i16>,
    values: Buffered,
}

enum Sink<W: Write + Send> {
    Csv(csv::Writer<W>),
    Parquet {
        writer: SerializedFileWriter<W>,
        columns: Vec<ParquetColumn>,
        rows: usize,
        bytes: usize,
    },
}

/// Writes an export batch by batch, in the columns of its [`ExportPlan`].
pub struct FocusWriter<W: Write + Send> {
    columns: Vec<Cow<'static, str>>,
    /// The [`COLUMNS`] entries the plan left out (a row with a value there is refused).
    absent: Vec<usize>,
    extensions: BTreeSet<String>,
    sink: Sink<W>,
    written: u64,
}

impl<W: Write + Send> FocusWriter<W> {
    /// Starts an export to `out` in `format` (CSV: the header is written now).
    ///
    /// # Errors
    /// Writing to `out` failed.
    pub fn new(format: ExportFormat, out: W, plan: &ExportPlan) -> io::Result<Self> {
        let columns = plan.columns();
        let absent = plan
            .any
            .iter()
            .enumerate()
            .filter(|(_, any)| !**any)
            .map(|(i, _)| i)
            .collect();
        let sink = match format {
            ExportFormat::Csv => {
                let mut w = csv::Writer::from_writer(out);
                w.write_record(columns.iter().map(AsRef::as_ref))?;
                Sink::Csv(w)
            }
            ExportFormat::Parquet => {
                let mut fields = Vec::with_capacity(columns.len());
                let mut buffers = Vec::with_capacity(columns.len());
                for name in &columns {
                    let kind = column_kind(name);
                    let layout = (kind == ValueKind::Decimal).then(|| plan.layout(name));
                    fields.push(Arc::new(
                        field(name, kind, layout).map_err(io::Error::other)?,
                    ));
                    buffers.push(ParquetColumn {
                        name: name.clone(),
                        layout,
                        defs: Vec::new(),
                        values: match kind {
                            ValueKind::Decimal => Buffered::Decimal(Vec::new()),
                            ValueKind::Timestamp => Buffered::Timestamp(Vec::new()),
                            ValueKind::Text => Buffered::Text(Vec::new()),
                        },
                    });
                }
                let schema = Type::group_type_builder("schema")
                    .with_fields(fields)
                    .build()
                    .map_err(io::Error::other)?;
                let props = WriterProperties::builder()
                    .set_compression(Compression::SNAPPY)
                    .set_created_by(format!("cloudbill {}", env!("CARGO_PKG_VERSION")))
                    .build();
                let writer = SerializedFileWriter::new(out, Arc::new(schema), Arc::new(props))
                    .map_err(io::Error::other)?;
                Sink::Parquet {
                    writer,
                    columns: buffers,
                    rows: 0,
                    bytes: 0,
                }
            }
        };
        Ok(Self {
            columns,
            absent,
            extensions: plan.extensions.clone(),
            sink,
            written: 0,
        })
    }

    /// Writes `rows`.
    ///
    /// # Errors
    /// Writing failed, or a row does not fit the plan (a value in a column it left out, a
    /// decimal past its column's scale): the data changed since the plan was made.
    pub fn write(&mut self, rows: &[ExportRow<'_>]) -> io::Result<()> {
        for row in rows {
            self.check(row)?;
            match &mut self.sink {
                Sink::Csv(w) => {
                    for column in &self.columns {
                        let value = cell(column, row).unwrap_or_default();
                        // Spreadsheets open FOCUS CSVs too: formula-leading text gets a `'`
                        // (reversible, docs/FOCUS.md; Parquet keeps values verbatim).
                        w.write_field(cloudbill_core::formula_safe(&value).as_bytes())?;
                    }
                    w.write_record(std::iter::empty::<&[u8]>())?;
                }
                Sink::Parquet {
                    writer,
                    columns,
                    rows,
                    bytes,
                } => {
                    for c in columns.iter_mut() {
                        *bytes += push_cell(c, row)?;
                    }
                    *rows += 1;
                    if *rows >= ROW_GROUP_ROWS || *bytes >= ROW_GROUP_BYTES {
                        flush_group(writer, columns)?;
                        (*rows, *bytes) = (0, 0);
                    }
                }
            }
            self.written += 1;
        }
        Ok(())
    }

    /// Rows written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Ends the export (Parquet: the last row group and the footer) and flushes `out`.
    ///
    /// # Errors
    /// Writing failed.
    pub fn finish(self) -> io::Result<()> {
        match self.sink {
            Sink::Csv(mut w) => w.flush(),
            Sink::Parquet {
                mut writer,
                mut columns,
                rows,
                ..
            } => {
                if rows > 0 {
                    flush_group(&mut writer, &mut columns)?;
                }
                let mut out = writer.into_inner().map_err(io::Error::other)?;
                out.flush()
            }
        }
    }

    fn check(&self, row: &ExportRow<'_>) -> io::Result<()> {
        let changed = |what: &str| {
            invalid(format!(
                "the data changed while it was exported ({what}); export again"
            ))
        };
        for i in &self.absent {
            if (COLUMNS[*i].2)(row).is_some() {
                return Err(changed(COLUMNS[*i].0));
            }
        }
        for k in row.record.extensions.keys() {
            if !OWN_COLUMNS.contains(&k.as_str()) && !self.extensions.contains(k) {
                return Err(changed(k));
            }
        }
        Ok(())
    }
}

/// Buffers `row`'s value of column `c`; returns the bytes it takes.
fn push_cell(c: &mut ParquetColumn, row: &ExportRow<'_>) -> io::Result<usize> {
    let value = cell(&c.name, row);
    c.defs.push(i16::from(value.is_some()));
    let Some(v) = value else { return Ok(2) };
    Ok(match &mut c.values {
        Buffered::Decimal(out) => {
            let layout = c
                .layout
                .ok_or_else(|| invalid(format!("column {} has no layout", c.name)))?;
            let d = decimal_of(&v)?;
            if d.scale() > layout.scale || (!layout.wide && int_digits(d) + layout.scale > 38) {
                return Err(invalid(format!(
                    "the data changed while it was exported ({} {d}); export again",
                    c.name
                )));
            }
            let width = if layout.wide { 32 } else { 16 };
            out.push(FixedLenByteArray::from(decimal_bytes(
                d,
                layout.scale,
                width,
            )));
            width
        }
        Buffered::Timestamp(out) => {
            out.push(micros(&v).map_err(io::Error::other)?);
            8
        }
        Buffered::Text(out) => {
            out.push(ByteArray::from(v.as_bytes().to_vec()));
            v.len() + 4
        }
    })
}

/// Writes the buffered values as one row group and empties the buffers.
fn flush_group<W: Write + Send>(
    writer: &mut SerializedFileWriter<W>,
    columns: &mut [ParquetColumn],
) -> io::Result<()> {
    let mut group = writer.next_row_group().map_err(io::Error::other)?;
    for c in columns.iter_mut() {
        let Some(mut column) = group.next_column().map_err(io::Error::other)? else {
            return Err(io::Error::other(format!("no column writer for {}", c.name)));
        };
        let defs = std::mem::take(&mut c.defs);
        match &mut c.values {
            Buffered::Decimal(v) => {
                column
                    .typed::<FixedLenByteArrayType>()
                    .write_batch(&std::mem::take(v), Some(&defs), None)
                    .map_err(io::Error::other)?;
            }
            Buffered::Timestamp(v) => {
                column
                    .typed::<Int64Type>()
                    .write_batch(&std::mem::take(v), Some(&defs), None)
                    .map_err(io::Error::other)?;
            }
            Buffered::Text(v) => {
                column
                    .typed::<ByteArrayType>()
                    .write_batch(&std::mem::take(v), Some(&defs), None)
                    .map_err(io::Error::other)?;
            }
        }
        column.close().map_err(io::Error::other)?;
    }
    group.close().map_err(io::Error::other)?;
    Ok(())
}
