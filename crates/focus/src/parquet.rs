//! Writing cost records as FOCUS 1.2 Parquet: the columns of the CSV export, typed.
//!
//! Text is `BYTE_ARRAY` (`STRING`), so an all-digit account id stays a string; timestamps are
//! `INT64` `TIMESTAMP(MICROS, UTC)`; amounts and quantities are exact `DECIMAL`s at the largest
//! scale any value of the column has: `DECIMAL(38, s)` in 16 bytes, or `DECIMAL(76, s)` in 32
//! bytes for a column whose values do not fit 38 digits at that scale. Every column is
//! optional (null where the CSV has an empty cell). Row groups of [`ROW_GROUP_ROWS`] rows,
//! snappy pages.

use cloudbill_core::Decimal;
use parquet::basic::{LogicalType, Repetition, TimeUnit, Type as Physical};
use parquet::schema::types::Type;

use crate::export::{ExportRow, ValueKind};

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
pub(crate) struct DecimalLayout {
    pub(crate) scale: u32,
    pub(crate) wide: bool,
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
pub(crate) fn decimal_bytes(d: Decimal, scale: u32, width: usize) -> Vec<u8> {
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
#[cfg(test)]
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

pub(crate) fn field(
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

pub(crate) fn micros(text: &str) -> Result<i64, ParquetError> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp_micros())
        .map_err(|_| ParquetError(format!("{text:?} is not a timestamp")))
}

/// Writes `rows` as FOCUS 1.2 Parquet into `out` (the same columns and values as
/// [`crate::write_focus`], typed): an [`crate::ExportPlan`] of the rows, then a
/// [`crate::FocusWriter`] (memory: one row group's values).
pub fn write_focus_parquet(out: &mut Vec<u8>, rows: &[ExportRow<'_>]) -> Result<(), ParquetError> {
    let err = |e: std::io::Error| ParquetError(e.to_string());
    let mut plan = crate::ExportPlan::new();
    plan.observe(rows).map_err(err)?;
    let mut w = crate::FocusWriter::new(crate::ExportFormat::Parquet, out, &plan).map_err(err)?;
    w.write(rows).map_err(err)?;
    w.finish().map_err(err)
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
