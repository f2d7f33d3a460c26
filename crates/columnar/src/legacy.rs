//! The previous partition format, `CBP2`, read only to convert an existing database's
//! partitions to the current format ([`upgrade`]); nothing writes it any more.
//!
//! ```text
//! magic "CBP2" · month (i32) · rows (u32) · 15 columns, each a u32 byte length and its bytes:
//!   day (u8 per row) · provider (u8 index into PROVIDERS) · charge category (u8 index into
//!   CATEGORIES) · currency · cloud account · region · service · usage type · instance type ·
//!   tags (text, as in the current format) · cost (scale u8 · width u8 · mantissas) · cost
//!   scales (u8 per row, or empty) · usage quantity · effective cost · list cost (decimal)
//! ```

use chrono::{Datelike, NaiveDate};
use cloudbill_core::{ChargeCategory, Currency, ProviderKind, Tags, ValidationError};

use crate::decode::{days_in_month, text_column, CostColumn};
use crate::varint::{corrupt, Cursor};
use crate::{EncodedPartition, PartitionEncoder, RecordFields};

/// The magic of the previous format.
pub const MAGIC: &[u8; 4] = b"CBP2";

/// Providers by their index in the provider column.
const PROVIDERS: [ProviderKind; 2] = [ProviderKind::HyperbillingAws, ProviderKind::File];

/// Charge categories by their index in the category column.
const CATEGORIES: [ChargeCategory; 5] = [
    ChargeCategory::Usage,
    ChargeCategory::Purchase,
    ChargeCategory::Tax,
    ChargeCategory::Credit,
    ChargeCategory::Adjustment,
];

/// Whether `bytes` is a partition of the previous format.
pub fn is_legacy(bytes: &[u8]) -> bool {
    bytes.starts_with(MAGIC)
}

/// The same records in the current format, exactly (every field of every row, rows in stored
/// order).
pub fn upgrade(bytes: &[u8]) -> Result<EncodedPartition, ValidationError> {
    let mut c = Cursor::new(bytes);
    if c.take(4)? != MAGIC {
        return Err(corrupt("not a CBP2 partition"));
    }
    let month = NaiveDate::from_num_days_from_ce_opt(c.i32()?)
        .filter(|m| m.day() == 1)
        .ok_or_else(|| corrupt("month"))?;
    let rows = c.u32()?;
    let mut columns: [&[u8]; 15] = [&[]; 15];
    for col in &mut columns {
        let len = c.u32()?;
        *col = c.take(len)?;
    }
    if !c.done() {
        return Err(corrupt("trailing bytes"));
    }
    let [days, providers, categories, ..] = columns;
    if days.len() != rows || providers.len() != rows || categories.len() != rows {
        return Err(corrupt("fixed columns"));
    }
    let texts = (3..10)
        .map(|i| text_column(columns[i], rows))
        .collect::<Result<Vec<_>, _>>()?;
    let currencies: Vec<Currency> = texts[0]
        .values
        .iter()
        .map(|v| Currency::parse(v))
        .collect::<Result<_, _>>()?;
    let tags: Vec<Tags> = texts[6]
        .values
        .iter()
        .map(|t| crate::tags_from_text(t))
        .collect::<Result<_, _>>()?;
    let mut cost = Cursor::new(columns[10]);
    let scale = u32::from(cost.byte()?);
    let width = usize::from(cost.byte()?);
    if scale > 28 || !matches!(width, 1 | 2 | 4 | 8 | 16) {
        return Err(corrupt("cost column"));
    }
    let scales = columns[11];
    if !scales.is_empty() && scales.len() != rows {
        return Err(corrupt("cost scales"));
    }
    let costs = CostColumn {
        scale,
        width,
        bytes: cost.take(rows * width)?,
        scales,
        wide: Vec::new(),
    };
    if !cost.done() {
        return Err(corrupt("cost column length"));
    }
    let mut decimals = [
        Cursor::new(columns[12]),
        Cursor::new(columns[13]),
        Cursor::new(columns[14]),
    ];
    let month_days = days_in_month(month);
    let mut encoder = PartitionEncoder::new(month);
    for row in 0..rows {
        let day = days[row];
        if day == 0 || usize::from(day) > month_days {
            return Err(corrupt("day"));
        }
        let text = |k: usize| texts[k].values[texts[k].id(row)];
        let [quantity, effective, list] = &mut decimals;
        let instance_type = text(5);
        encoder.push_fields(&RecordFields {
            date: month
                .with_day(u32::from(day))
                .ok_or_else(|| corrupt("day"))?,
            provider: *PROVIDERS
                .get(usize::from(providers[row]))
                .ok_or_else(|| corrupt("provider"))?,
            cloud_account: text(1),
            region: text(2),
            service: text(3),
            usage_type: text(4),
            instance_type: (!instance_type.is_empty()).then_some(instance_type),
            usage_quantity: quantity.decimal()?.unwrap_or_default(),
            cost: costs.amount(row)?,
            currency: currencies[texts[0].id(row)],
            effective_cost: effective.decimal()?,
            list_cost: list.decimal()?,
            charge_category: *CATEGORIES
                .get(usize::from(categories[row]))
                .ok_or_else(|| corrupt("charge category"))?,
            tags: &tags[texts[6].id(row)],
            attributes: &[],
            measures: &[],
            extensions: &[],
        });
    }
    if decimals.iter().any(|c| !c.done()) {
        return Err(corrupt("decimal column length"));
    }
    Ok(encoder.finish())
}
