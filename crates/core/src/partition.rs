//! The columnar partition codec: one (billing account, month) of cost records as one compact
//! blob, written by the store beside the rows and read by the aggregation engine, so a report
//! over millions of records never parses them row by row.
//!
//! Layout (all integers LEB128 varints unless noted): magic `CBP1`; the first day of the month
//! (days since CE, zigzag); the largest amount scale (u8); the string table (count, then
//! length and UTF-8 bytes each); the row count; then per row: day of month (u8), provider (u8), charge
//! category (u8), currency, cloud account, region, service, usage type and instance type as
//! string-table indexes, the cost's scale (u8) and its mantissa (zigzag).

use std::collections::HashMap;

use chrono::{Datelike, NaiveDate};
use rust_decimal::Decimal;

use crate::{ChargeCategory, CostRecord, ProviderKind, ValidationError};

const MAGIC: &[u8; 4] = b"CBP1";

fn put_varint(out: &mut Vec<u8>, mut v: u128) {
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

fn zigzag(v: i128) -> u128 {
    ((v << 1) ^ (v >> 127)).cast_unsigned()
}

fn unzigzag(v: u128) -> i128 {
    (v >> 1).cast_signed() ^ -((v & 1).cast_signed())
}

const CATEGORIES: [ChargeCategory; 5] = [
    ChargeCategory::Usage,
    ChargeCategory::Purchase,
    ChargeCategory::Tax,
    ChargeCategory::Credit,
    ChargeCategory::Adjustment,
];

/// Encodes records of one account and one month (rows are written in day order).
pub fn encode_partition(month: NaiveDate, records: &[&CostRecord]) -> Vec<u8> {
    let mut order: Vec<&&CostRecord> = records.iter().collect();
    order.sort_by_key(|r| r.date);
    let mut encoder = PartitionEncoder::new(month);
    for r in order {
        encoder.push(r);
    }
    encoder.finish()
}

/// Builds a partition one record at a time, holding only the encoded bytes, so a month of any
/// size is encoded in little memory. Records must come in day order.
#[derive(Debug)]
pub struct PartitionEncoder {
    month: NaiveDate,
    strings: Vec<String>,
    index: HashMap<String, u32>,
    body: Vec<u8>,
    rows: usize,
    max_scale: u32,
}

impl PartitionEncoder {
    /// An empty partition of the month starting at `month`.
    pub fn new(month: NaiveDate) -> Self {
        Self {
            month,
            strings: Vec::new(),
            index: HashMap::new(),
            body: Vec::new(),
            rows: 0,
            max_scale: 0,
        }
    }

    /// Rows pushed so far.
    pub fn rows(&self) -> usize {
        self.rows
    }

    fn string_id(&mut self, s: &str) -> u32 {
        if let Some(i) = self.index.get(s) {
            return *i;
        }
        let i = u32::try_from(self.strings.len()).unwrap_or(u32::MAX);
        self.strings.push(s.to_owned());
        self.index.insert(s.to_owned(), i);
        i
    }

    /// Appends a record (the next in day order).
    pub fn push(&mut self, r: &CostRecord) {
        let fields: [&str; 6] = [
            r.cost.currency_str(),
            r.cloud_account.as_str(),
            r.region.as_str(),
            r.service.as_str(),
            r.usage_type.as_str(),
            r.instance_type.as_deref().unwrap_or(""),
        ];
        let ids = fields.map(|f| self.string_id(f));
        let body = &mut self.body;
        body.push(u8::try_from(r.date.day()).unwrap_or(0));
        body.push(match r.provider {
            ProviderKind::HyperbillingAws => 0,
            ProviderKind::File => 1,
        });
        body.push(
            u8::try_from(
                CATEGORIES
                    .iter()
                    .position(|c| *c == r.charge_category)
                    .unwrap_or(0),
            )
            .unwrap_or(0),
        );
        for id in ids {
            put_varint(body, u128::from(id));
        }
        let amount = r.cost.amount();
        body.push(u8::try_from(amount.scale()).unwrap_or(u8::MAX));
        put_varint(body, zigzag(amount.mantissa()));
        self.max_scale = self.max_scale.max(amount.scale());
        self.rows += 1;
    }

    /// The encoded partition.
    pub fn finish(self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            32 + self.body.len() + self.strings.iter().map(String::len).sum::<usize>(),
        );
        out.extend_from_slice(MAGIC);
        put_varint(&mut out, zigzag(i128::from(self.month.num_days_from_ce())));
        out.push(u8::try_from(self.max_scale).unwrap_or(u8::MAX));
        put_varint(&mut out, self.strings.len() as u128);
        for s in &self.strings {
            put_varint(&mut out, s.len() as u128);
            out.extend_from_slice(s.as_bytes());
        }
        put_varint(&mut out, self.rows as u128);
        out.extend_from_slice(&self.body);
        out
    }
}

/// One decoded row: string fields are indexes into [`Partition::strings`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionRow {
    /// The UTC day.
    pub date: NaiveDate,
    /// Provider.
    pub provider: ProviderKind,
    /// Charge category.
    pub category: ChargeCategory,
    /// String-table indexes: currency, cloud account, region, service, usage type, instance
    /// type (`""` for none).
    pub strings: [u32; 6],
    /// The cost's decimal scale.
    pub scale: u32,
    /// The cost's mantissa (cost = mantissa × 10^-scale).
    pub mantissa: i128,
}

impl PartitionRow {
    /// The charge category's position in Usage, Purchase, Tax, Credit, Adjustment.
    pub fn category_index(&self) -> usize {
        CATEGORIES
            .iter()
            .position(|c| *c == self.category)
            .unwrap_or(0)
    }
}

/// A decoded partition header with a row iterator.
#[derive(Debug)]
pub struct Partition<'a> {
    /// The first day of the partition's month.
    pub month: NaiveDate,
    /// The largest scale of any cost in the partition.
    pub max_scale: u32,
    /// The string table.
    pub strings: Vec<&'a str>,
    /// Rows.
    pub rows: usize,
    body: &'a [u8],
}

fn corrupt(what: &str) -> ValidationError {
    ValidationError::Decimal {
        value: "partition".into(),
        reason: format!("corrupt partition: {what}"),
    }
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn byte(&mut self) -> Result<u8, ValidationError> {
        let b = *self
            .bytes
            .get(self.pos)
            .ok_or_else(|| corrupt("truncated"))?;
        self.pos += 1;
        Ok(b)
    }

    fn varint(&mut self) -> Result<u128, ValidationError> {
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

    fn take(&mut self, n: usize) -> Result<&'a [u8], ValidationError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.bytes.len())
            .ok_or_else(|| corrupt("truncated"))?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }
}

impl<'a> Partition<'a> {
    /// Reads a partition header.
    pub fn decode(bytes: &'a [u8]) -> Result<Self, ValidationError> {
        let mut c = Cursor { bytes, pos: 0 };
        if c.take(4)? != MAGIC {
            return Err(corrupt("bad magic"));
        }
        let days = i32::try_from(unzigzag(c.varint()?)).map_err(|_| corrupt("month"))?;
        let month = NaiveDate::from_num_days_from_ce_opt(days).ok_or_else(|| corrupt("month"))?;
        let max_scale = u32::from(c.byte()?);
        let n = usize::try_from(c.varint()?).map_err(|_| corrupt("strings"))?;
        let mut strings = Vec::with_capacity(n.min(1 << 20));
        for _ in 0..n {
            let len = usize::try_from(c.varint()?).map_err(|_| corrupt("string length"))?;
            strings.push(std::str::from_utf8(c.take(len)?).map_err(|_| corrupt("utf-8"))?);
        }
        let rows = usize::try_from(c.varint()?).map_err(|_| corrupt("rows"))?;
        Ok(Self {
            month,
            max_scale,
            strings,
            rows,
            body: &bytes[c.pos..],
        })
    }

    /// Calls `f` for every row, in day order.
    pub fn for_each_row(&self, mut f: impl FnMut(PartitionRow)) -> Result<(), ValidationError> {
        let mut c = Cursor {
            bytes: self.body,
            pos: 0,
        };
        for _ in 0..self.rows {
            let day = u32::from(c.byte()?);
            let date = self.month.with_day(day).ok_or_else(|| corrupt("day"))?;
            let provider = match c.byte()? {
                0 => ProviderKind::HyperbillingAws,
                1 => ProviderKind::File,
                _ => return Err(corrupt("provider")),
            };
            let category = *CATEGORIES
                .get(usize::from(c.byte()?))
                .ok_or_else(|| corrupt("category"))?;
            let mut strings = [0u32; 6];
            for s in &mut strings {
                *s = u32::try_from(c.varint()?).map_err(|_| corrupt("string index"))?;
                if *s as usize >= self.strings.len() {
                    return Err(corrupt("string index"));
                }
            }
            let scale = u32::from(c.byte()?);
            let mantissa = unzigzag(c.varint()?);
            f(PartitionRow {
                date,
                provider,
                category,
                strings,
                scale,
                mantissa,
            });
        }
        Ok(())
    }

    /// A row's cost as a decimal.
    pub fn cost(row: &PartitionRow) -> Result<Decimal, ValidationError> {
        Decimal::try_from_i128_with_scale(row.mantissa, row.scale).map_err(|_| corrupt("amount"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AccountId, Currency, DomainId, Money};

    fn rec(day: u32, cost: &str, service: &str, currency: &str) -> CostRecord {
        CostRecord {
            domain: DomainId::new(),
            service_account: AccountId::new(),
            provider: ProviderKind::File,
            cloud_account: "111".into(),
            date: NaiveDate::from_ymd_opt(2025, 3, day).unwrap(),
            region: "eu-west-1".into(),
            service: service.into(),
            usage_type: "u".into(),
            instance_type: None,
            usage_quantity: Decimal::ONE,
            cost: Money::new(
                crate::parse_decimal(cost).unwrap(),
                Currency::parse(currency).unwrap(),
            ),
            effective_cost: None,
            list_cost: None,
            charge_category: ChargeCategory::Credit,
            tags: std::collections::BTreeMap::new(),
        }
    }

    #[test]
    fn round_trips_exactly() {
        let records = [
            rec(31, "-0.0000000001", "EC2", "USD"),
            rec(1, "123456789012.12345678901", "S3 \"x\"", "EUR"),
            rec(2, "9.6E-6", "EC2", "USD"),
        ];
        let refs: Vec<&CostRecord> = records.iter().collect();
        let month = NaiveDate::from_ymd_opt(2025, 3, 1).unwrap();
        let blob = encode_partition(month, &refs);
        let p = Partition::decode(&blob).unwrap();
        assert_eq!(p.month, month);
        assert_eq!(p.max_scale, 11);
        let mut rows = vec![];
        p.for_each_row(|r| rows.push(r)).unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].date.day(), 1, "day order");
        assert_eq!(
            Partition::cost(&rows[0]).unwrap().to_string(),
            "123456789012.12345678901"
        );
        assert_eq!(p.strings[rows[0].strings[0] as usize], "EUR");
        assert_eq!(p.strings[rows[0].strings[3] as usize], "S3 \"x\"");
        assert_eq!(
            Partition::cost(&rows[2]).unwrap().to_string(),
            "-0.0000000001"
        );
        assert_eq!(rows[2].category, ChargeCategory::Credit);
        assert!(Partition::decode(&blob[..blob.len() - 1])
            .unwrap()
            .for_each_row(|_| {})
            .is_err());
        assert!(Partition::decode(b"nope").is_err());
    }
}
