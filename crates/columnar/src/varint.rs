//! The codec's integer encodings and a bounds-checked reader.

use cloudbill_core::{Decimal, ValidationError};

/// The tag of a decimal column's row that holds no value.
pub(crate) const NONE_TAG: u8 = 0xFF;

/// Appends `v` as LEB128.
pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u128) {
    loop {
        let byte = u8::try_from(v & 0x7f).unwrap_or(0);
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Signed to unsigned, small magnitudes small.
pub(crate) fn zigzag(v: i128) -> u128 {
    ((v << 1) ^ (v >> 127)).cast_unsigned()
}

/// The inverse of [`zigzag`].
pub(crate) fn unzigzag(v: u128) -> i128 {
    (v >> 1).cast_signed() ^ -((v & 1).cast_signed())
}

/// Appends `v` as a little-endian u32 (saturating).
pub(crate) fn put_u32(out: &mut Vec<u8>, v: usize) {
    out.extend_from_slice(&u32::try_from(v).unwrap_or(u32::MAX).to_le_bytes());
}

/// Appends a decimal column's row: `NONE_TAG`, or the scale and the zigzag mantissa.
pub(crate) fn put_decimal(out: &mut Vec<u8>, value: Option<Decimal>) {
    match value {
        None => out.push(NONE_TAG),
        Some(d) => {
            out.push(u8::try_from(d.scale()).unwrap_or(u8::MAX));
            put_varint(out, zigzag(d.mantissa()));
        }
    }
}

/// A corrupt-partition error naming what was wrong.
pub(crate) fn corrupt(what: &str) -> ValidationError {
    ValidationError::Decimal {
        value: "partition".into(),
        reason: format!("corrupt partition: {what}"),
    }
}

/// Reads a byte slice front to back; every read is bounds-checked.
pub(crate) struct Cursor<'a> {
    pub(crate) bytes: &'a [u8],
    pub(crate) pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, pos: 0 }
    }

    /// Whether every byte was read.
    pub(crate) fn done(&self) -> bool {
        self.pos == self.bytes.len()
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], ValidationError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.bytes.len())
            .ok_or_else(|| corrupt("truncated"))?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    pub(crate) fn byte(&mut self) -> Result<u8, ValidationError> {
        Ok(self.take(1)?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<usize, ValidationError> {
        let b = self.take(2)?;
        Ok(usize::from(u16::from_le_bytes([b[0], b[1]])))
    }

    pub(crate) fn u32(&mut self) -> Result<usize, ValidationError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }

    pub(crate) fn i32(&mut self) -> Result<i32, ValidationError> {
        let b = self.take(4)?;
        Ok(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn varint(&mut self) -> Result<u128, ValidationError> {
        let mut v: u128 = 0;
        let mut shift = 0;
        loop {
            let b = self.byte()?;
            if shift >= 128 {
                return Err(corrupt("varint too long"));
            }
            v |= u128::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
            shift += 7;
        }
    }

    pub(crate) fn decimal(&mut self) -> Result<Option<Decimal>, ValidationError> {
        let tag = self.byte()?;
        if tag == NONE_TAG {
            return Ok(None);
        }
        let mantissa = unzigzag(self.varint()?);
        Decimal::try_from_i128_with_scale(mantissa, u32::from(tag))
            .map(Some)
            .map_err(|_| corrupt("decimal"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn varints_and_zigzag_round_trip(v in any::<i128>()) {
            let mut out = Vec::new();
            put_varint(&mut out, zigzag(v));
            let mut c = Cursor::new(&out);
            prop_assert_eq!(unzigzag(c.varint().unwrap()), v);
            prop_assert!(c.done());
        }
    }
}
