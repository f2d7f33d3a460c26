//! Writing cost records as FOCUS 1.2 Parquet: the columns of the CSV export, typed.
//!
//! Text is `BYTE_ARRAY` (`STRING`), so an all-digit account id stays a string; timestamps are
//! `INT64` `TIMESTAMP(MICROS, UTC)`; amounts and quantities are exact `DECIMAL`s at the largest
//! scale any value of the column has: `DECIMAL(38, s)` in 16 bytes, or `DECIMAL(76, s)` in 32
//! bytes for a column whose values do not fit 38 digits at that scale. Every column is
//! optional (null where the CSV has an empty cell). Row groups of [`ROW_GROUP_ROWS`] rows,
//! snappy pages.

use std::borrow::Cow;
use std::sync::Arc;

use cloudbill_core::Decimal;
use parquet::basic::{Compression, LogicalType, Repetition, TimeUnit, Type as Physical};
use parquet::data_type::Int64Type;
use parquet::data_type::{ByteArray, ByteArrayType, FixedLenByteArray, FixedLenByteArrayType};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::Type;

use crate::export::{cell, column_kind, export_columns, ExportRow, ValueKind};

/// Rows per row group.
pub const ROW_GROUP_ROWS: usize = 65_536;

/// Why a Parquet export failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot write Parquet: {0}")]
pub struct ParquetError(String);

impl From<parquet::errors::ParquetError> for ParquetError {
    fn from(e: parquet::errors::ParquetError) -> Self {
        ParquetError(e.to_string())
    }
}

/// A decimal column's layout: its scale and whether it needs 32 bytes.
#[derive(Debug, Clone, Copy)]
struct DecimalLayout {
    scale: u32,
    wide: bool,
}

fn decimal_of(text: &str) -> Result<Decimal, ParquetError> {
    text.parse()
        .map_err(|_| ParquetError(format!("{text:?} is not a decimal")))
}

/// The magnitude of `d` at `scale` (≥ its own), as four little-endian 64-bit limbs.
#[allow(clippy::cast_possible_truncation)] // Splitting into limbs keeps the low 64 bits.
fn limbs_at(d: Decimal, scale: u32) -> [u64; 4] {
    let m = d.mantissa().unsigned_abs();
    let mut limbs = [m as u64, (m >> 64) as u64, 0, 0];
    for _ in d.scale()..scale {
        let mut carry = 0u128;
        for limb in &mut limbs {
            let v = u128::from(*limb) * 10 + carry;
            *limb = v as u64;
            carry = v >> 64;
        }
    }
    limbs
}

/// `d` at `scale` as a big-endian two's-complement integer of `width` bytes (16 or 32).
#[allow(clippy::cast_possible_truncation)] // Limb arithmetic keeps the low 64 bits.
fn decimal_bytes(d: Decimal, scale: u32, width: usize) -> Vec<u8> {
    let mut limbs = limbs_at(d, scale);
    if d.is_sign_negative() && !d.is_zero() {
        let mut carry = 1u128;
        for limb in &mut limbs {
            let v = u128::from(!*limb) + carry;
            *limb = v as u64;
            carry = v >> 64;
        }
    }
    let mut out: Vec<u8> = limbs.iter().rev().flat_map(|l| l.to_be_bytes()).collect();
    out.drain(..32 - width);
    out
}

/// Whether a magnitude (limbs) is below 10^38.
fn fits_38_digits(limbs: [u64; 4]) -> bool {
    const LIMIT: u128 = 100_000_000_000_000_000_000_000_000_000_000_000_000;
    limbs[2] == 0 && limbs[3] == 0 && (u128::from(limbs[1]) << 64 | u128::from(limbs[0])) < LIMIT
}

#[cfg(test)]
fn decimal_layout(values: &[Option<Decimal>]) -> DecimalLayout {
    let scale = values
        .iter()
        .flatten()
        .map(Decimal::scale)
        .max()
        .unwrap_or(0);
    let wide = values
        .iter()
        .flatten()
        .any(|d| !fits_38_digits(limbs_at(*d, scale)));
    DecimalLayout { scale, wide }
}

fn field(
    name: &str,
    kind: ValueKind,
    decimal: Option<DecimalLayout>,
) -> Result<Type, ParquetError> {
    let builder = match (kind, decimal) {
        (ValueKind::Decimal, Some(d)) => {
            let (width, precision) = if d.wide { (32, 76) } else { (16, 38) };
            let scale = i32::try_from(d.scale).unwrap_or(0);
            Type::primitive_type_builder(name, Physical::FIXED_LEN_BYTE_ARRAY)
                .with_length(width)
                .with_logical_type(Some(LogicalType::decimal(scale, precision)))
                .with_precision(precision)
                .with_scale(scale)
        }
        (ValueKind::Timestamp, _) => Type::primitive_type_builder(name, Physical::INT64)
            .with_logical_type(Some(LogicalType::timestamp(true, TimeUnit::MICROS))),
        _ => Type::primitive_type_builder(name, Physical::BYTE_ARRAY)
            .with_logical_type(Some(LogicalType::String)),
    };
    Ok(builder.with_repetition(Repetition::OPTIONAL).build()?)
}

fn micros(text: &str) -> Result<i64, ParquetError> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp_micros())
        .map_err(|_| ParquetError(format!("{text:?} is not a timestamp")))
}

/// Writes `rows` as FOCUS 1.2 Parquet into `out` (the same columns and values as
/// [`crate::write_focus`], typed). A first pass finds each decimal column's scale; then each
/// row group's values are computed column by column (memory: one row group's column).
pub fn write_focus_parquet(out: &mut Vec<u8>, rows: &[ExportRow<'_>]) -> Result<(), ParquetError> {
    let columns = export_columns(rows);
    let mut layouts = Vec::with_capacity(columns.len());
    let mut fields = Vec::with_capacity(columns.len());
    for name in &columns {
        let kind = column_kind(name);
        let layout = match kind {
            ValueKind::Decimal => {
                let mut layout = DecimalLayout {
                    scale: 0,
                    wide: false,
                };
                for r in rows {
                    if let Some(v) = cell(name, r) {
                        layout.scale = layout.scale.max(decimal_of(&v)?.scale());
                    }
                }
                for r in rows {
                    if let Some(v) = cell(name, r) {
                        layout.wide |= !fits_38_digits(limbs_at(decimal_of(&v)?, layout.scale));
                    }
                }
                Some(layout)
            }
            _ => None,
        };
        fields.push(Arc::new(field(name, kind, layout)?));
        layouts.push(layout);
    }
    let schema = Type::group_type_builder("schema")
        .with_fields(fields)
        .build()?;
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_created_by(format!("cloudbill {}", env!("CARGO_PKG_VERSION")))
        .build();
    let mut writer = SerializedFileWriter::new(out, Arc::new(schema), Arc::new(props))?;
    for chunk in rows.chunks(ROW_GROUP_ROWS) {
        let mut group = writer.next_row_group()?;
        for (name, layout) in columns.iter().zip(&layouts) {
            let Some(mut column) = group.next_column()? else {
                return Err(ParquetError(format!("no column writer for {name}")));
            };
            let cells: Vec<Option<Cow<'_, str>>> = chunk.iter().map(|r| cell(name, r)).collect();
            let defs: Vec<i16> = cells.iter().map(|v| i16::from(v.is_some())).collect();
            let present = cells.iter().flatten();
            match (column_kind(name), layout) {
                (ValueKind::Decimal, Some(layout)) => {
                    let width = if layout.wide { 32 } else { 16 };
                    let data = present
                        .map(|t| {
                            let d = decimal_of(t)?;
                            Ok(FixedLenByteArray::from(decimal_bytes(
                                d,
                                layout.scale,
                                width,
                            )))
                        })
                        .collect::<Result<Vec<_>, ParquetError>>()?;
                    column.typed::<FixedLenByteArrayType>().write_batch(
                        &data,
                        Some(&defs),
                        None,
                    )?;
                }
                (ValueKind::Timestamp, _) => {
                    let data = present
                        .map(|t| micros(t))
                        .collect::<Result<Vec<i64>, _>>()?;
                    column
                        .typed::<Int64Type>()
                        .write_batch(&data, Some(&defs), None)?;
                }
                _ => {
                    let data: Vec<ByteArray> = present
                        .map(|t| ByteArray::from(t.as_bytes().to_vec()))
                        .collect();
                    column
                        .typed::<ByteArrayType>()
                        .write_batch(&data, Some(&defs), None)?;
                }
            }
            column.close()?;
        }
        group.close()?;
    }
    writer.close()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_big_endian_twos_complement_at_the_column_scale() {
        let d: Decimal = "-1.5".parse().unwrap();
        // -150 at scale 2.
        let b = decimal_bytes(d, 2, 16);
        assert_eq!(i128::from_be_bytes(b.try_into().unwrap()), -150);
        let d: Decimal = "79228162514264337593543950335".parse().unwrap();
        let layout = decimal_layout(&[
            Some(d),
            Some("0.0000000000000000000000000001".parse().unwrap()),
        ]);
        assert!(layout.wide, "29 digits at scale 28 need 57 digits");
        let b = decimal_bytes(-d, 28, 32);
        assert_eq!(b[0], 0xff, "negative: sign-extended");
        // 38 digits fit DECIMAL(38); 39 do not.
        let d: Decimal = "9999999999.999999999999999999".parse().unwrap();
        assert!(fits_38_digits(limbs_at(d, 28)));
        assert!(!fits_38_digits(limbs_at(
            Decimal::from(10_000_000_000i64),
            28
        )));
    }
}
