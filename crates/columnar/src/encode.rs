//! Building a partition: one record at a time, column by column.

use std::borrow::Cow;

use chrono::{Datelike, NaiveDate};
use cloudbill_core::{
    Attribute, ChargeCategory, CostRecord, Currency, Decimal, Measure, ProviderKind, Tags,
    EXTENSION_PREFIX,
};

use crate::format::{Column, Kind, MAGIC};
use crate::interner::{same, Interner};
use crate::varint::{put_decimal, put_u32};

/// The tags of a tags column value (see [`tags_text`]).
pub fn tags_from_text(text: &str) -> Result<Tags, cloudbill_core::ValidationError> {
    if text.is_empty() {
        Ok(Tags::new())
    } else {
        serde_json::from_str(text).map_err(|_| crate::varint::corrupt("tags"))
    }
}

/// A tags column value: `""` for no tags, else the tags as a JSON object (keys sorted): the
/// one text every writer and the engine use for a set of tags.
pub fn tags_text(tags: &Tags) -> String {
    if tags.is_empty() {
        String::new()
    } else {
        serde_json::to_string(tags).unwrap_or_default()
    }
}

/// One dictionary-encoded text column under construction.
#[derive(Debug)]
struct TextBuilder {
    dict: Interner,
    ids: Vec<u32>,
    /// A small direct-mapped cache in front of the dictionary (slot from the value's length
    /// and a few of its bytes; `u32::MAX` for empty): low-cardinality columns — currency,
    /// region, service, an empty instance type — skip the hash lookup.
    recent: Box<[u32; 64]>,
}

impl Default for TextBuilder {
    fn default() -> Self {
        Self {
            dict: Interner::default(),
            ids: Vec::new(),
            recent: Box::new([u32::MAX; 64]),
        }
    }
}

impl TextBuilder {
    fn push(&mut self, s: &str) {
        let b = s.as_bytes();
        let slot = match b {
            [] => 0,
            [one] => usize::from(*one),
            [first, .., last] => {
                b.len()
                    ^ usize::from(*first) << 1
                    ^ usize::from(*last) << 2
                    ^ usize::from(b[b.len() / 2]) << 3
            }
        } & 63;
        let cached = self.recent[slot];
        if cached != u32::MAX && same(self.dict.values()[cached as usize].as_bytes(), b) {
            self.ids.push(cached);
            return;
        }
        let id = self.dict.id(s);
        self.recent[slot] = id;
        self.ids.push(id);
    }

    fn encode(&self, out: &mut Vec<u8>) {
        let values = self.dict.values();
        put_u32(out, values.len());
        let mut offset = 0;
        put_u32(out, 0);
        for v in values {
            offset += v.len();
            put_u32(out, offset);
        }
        for v in values {
            out.extend_from_slice(v.as_bytes());
        }
        if values.len() <= 1 << 8 {
            out.push(1);
            out.extend(self.ids.iter().map(|i| u8::try_from(*i).unwrap_or(u8::MAX)));
        } else if values.len() <= 1 << 16 {
            out.push(2);
            for i in &self.ids {
                out.extend_from_slice(&u16::try_from(*i).unwrap_or(u16::MAX).to_le_bytes());
            }
        } else {
            out.push(4);
            for i in &self.ids {
                out.extend_from_slice(&i.to_le_bytes());
            }
        }
    }
}

/// A cost record's fields, borrowed (see [`CostRecord`] for their meaning); what
/// [`PartitionEncoder::push_fields`] takes.
#[derive(Debug, Clone, Copy)]
pub struct RecordFields<'a> {
    /// UTC day.
    pub date: NaiveDate,
    /// Provider.
    pub provider: ProviderKind,
    /// The cloud's account id.
    pub cloud_account: &'a str,
    /// Region (`""` for none).
    pub region: &'a str,
    /// Service.
    pub service: &'a str,
    /// Usage type.
    pub usage_type: &'a str,
    /// Instance type.
    pub instance_type: Option<&'a str>,
    /// Usage quantity.
    pub usage_quantity: Decimal,
    /// Billed cost.
    pub cost: Decimal,
    /// Its currency.
    pub currency: Currency,
    /// FOCUS EffectiveCost.
    pub effective_cost: Option<Decimal>,
    /// FOCUS ListCost.
    pub list_cost: Option<Decimal>,
    /// Charge category.
    pub charge_category: ChargeCategory,
    /// Tags.
    pub tags: &'a Tags,
    /// FOCUS dimensions beyond the fields above, each at most once (an empty value is none).
    pub attributes: &'a [(Attribute, Cow<'a, str>)],
    /// FOCUS amounts and quantities beyond the fields above, each at most once.
    pub measures: &'a [(Measure, Decimal)],
    /// The source's own `x_` columns (name, value), each at most once (an empty value is
    /// none). At most [`MAX_EXTENSIONS`] names per partition: a name beyond them, or not
    /// starting with `x_`, or longer than 255 bytes, is not stored (importers refuse such
    /// files first).
    pub extensions: &'a [(&'a str, &'a str)],
}

/// The most `x_` columns one partition keeps (its directory holds at most 255 columns).
pub const MAX_EXTENSIONS: usize = 64;

/// A finished partition: the bytes a store keeps, with the month and row count they hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedPartition {
    month: NaiveDate,
    rows: usize,
    bytes: Vec<u8>,
}

impl EncodedPartition {
    /// A partition from bytes a caller holds (say, read from elsewhere), checked: its
    /// directory and every column ([`crate::Partition::validate`]).
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, cloudbill_core::ValidationError> {
        let p = crate::Partition::decode(&bytes)?;
        p.validate()?;
        let (month, rows) = (p.month, p.rows);
        Ok(Self { month, rows, bytes })
    }

    /// The first day of its month.
    pub fn month(&self) -> NaiveDate {
        self.month
    }

    /// Its rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Its bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Its bytes, owned.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// Its size in bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether it has no bytes (never: a partition has at least its header).
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// Encodes records of one account and one month.
pub fn encode_partition(month: NaiveDate, records: &[&CostRecord]) -> EncodedPartition {
    let mut encoder = PartitionEncoder::new(month);
    for r in records {
        encoder.push(r);
    }
    encoder.finish()
}

/// Builds a partition one record at a time, column by column. Records may come in any order;
/// all must lie in the encoder's month and belong to one account.
#[derive(Debug)]
pub struct PartitionEncoder {
    month: NaiveDate,
    days: Vec<u8>,
    /// The text columns, as [`Column::TEXT`].
    texts: [TextBuilder; 9],
    mantissas: Vec<i128>,
    scales: Vec<u8>,
    /// The decimal columns, as [`Column::DECIMAL`].
    decimals: [Vec<u8>; 3],
    /// An attribute's column from the first row that has a value (earlier rows none), by
    /// [`Attribute::ALL`] position: a bill without an attribute costs nothing for it.
    attributes: Vec<Option<TextBuilder>>,
    /// The positions in `attributes` that have a column.
    active: Vec<usize>,
    /// A measure's decimal column from the first row that has a value, by [`Measure::ALL`]
    /// position.
    measures: Vec<Option<Vec<u8>>>,
    /// The `x_` columns, in the order first seen, from the first row that has a value.
    extensions: Vec<(String, TextBuilder)>,
}

impl PartitionEncoder {
    /// An empty partition of the month starting at `month`.
    pub fn new(month: NaiveDate) -> Self {
        Self {
            month,
            days: Vec::new(),
            texts: Default::default(),
            mantissas: Vec::new(),
            scales: Vec::new(),
            decimals: Default::default(),
            attributes: (0..Attribute::ALL.len()).map(|_| None).collect(),
            active: Vec::new(),
            measures: vec![None; Measure::ALL.len()],
            extensions: Vec::new(),
        }
    }

    /// The month this encoder holds.
    pub fn month(&self) -> NaiveDate {
        self.month
    }

    /// Rows pushed so far.
    pub fn rows(&self) -> usize {
        self.days.len()
    }

    /// Roughly the memory the encoder holds, in bytes (for spilling big imports).
    pub fn memory(&self) -> usize {
        let per_row = 1 + 9 * 4 + 16 + 1;
        self.days.len() * per_row
            + self.texts.iter().map(|t| t.dict.memory()).sum::<usize>()
            + self.decimals.iter().map(Vec::len).sum::<usize>()
            + self
                .attributes
                .iter()
                .flatten()
                .map(|t| t.ids.len() * 4 + t.dict.memory())
                .sum::<usize>()
            + self.measures.iter().flatten().map(Vec::len).sum::<usize>()
            + self
                .extensions
                .iter()
                .map(|(_, t)| t.ids.len() * 4 + t.dict.memory())
                .sum::<usize>()
    }

    /// Appends a record.
    pub fn push(&mut self, r: &CostRecord) {
        let attributes: Vec<(Attribute, Cow<'_, str>)> = r
            .attributes
            .iter()
            .map(|(a, v)| (*a, Cow::Borrowed(v.as_str())))
            .collect();
        let measures: Vec<(Measure, Decimal)> = r.measures.iter().map(|(m, v)| (*m, *v)).collect();
        let extensions: Vec<(&str, &str)> = r
            .extensions
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        self.push_fields(&RecordFields {
            date: r.date,
            provider: r.provider,
            cloud_account: &r.cloud_account,
            region: &r.region,
            service: &r.service,
            usage_type: &r.usage_type,
            instance_type: r.instance_type.as_deref(),
            usage_quantity: r.usage_quantity,
            cost: r.cost.amount(),
            currency: r.currency(),
            effective_cost: r.effective_cost,
            list_cost: r.list_cost,
            charge_category: r.charge_category,
            tags: &r.tags,
            attributes: &attributes,
            measures: &measures,
            extensions: &extensions,
        });
    }

    /// Appends a record given as borrowed fields (no `CostRecord` needed: a bill import
    /// encodes straight from the file's cells).
    pub fn push_fields(&mut self, r: &RecordFields<'_>) {
        self.days.push(u8::try_from(r.date.day()).unwrap_or(0));
        let [provider, category, currency, cloud_account, region, service, usage_type, instance_type, tags] =
            &mut self.texts;
        provider.push(r.provider.as_str());
        category.push(r.charge_category.as_str());
        currency.push(r.currency.as_str());
        cloud_account.push(r.cloud_account);
        region.push(r.region);
        service.push(r.service);
        usage_type.push(r.usage_type);
        instance_type.push(r.instance_type.unwrap_or(""));
        if r.tags.is_empty() {
            tags.push("");
        } else {
            tags.push(&tags_text(r.tags));
        }
        self.mantissas.push(r.cost.mantissa());
        self.scales
            .push(u8::try_from(r.cost.scale()).unwrap_or(u8::MAX));
        let [quantity, effective, list] = &mut self.decimals;
        put_decimal(quantity, Some(r.usage_quantity));
        put_decimal(effective, r.effective_cost);
        put_decimal(list, r.list_cost);
        self.push_attributes(r.attributes);
        self.push_measures(r.measures);
        self.push_extensions(r.extensions);
    }

    /// Appends the measure values of the row just pushed.
    fn push_measures(&mut self, values: &[(Measure, Decimal)]) {
        let before = self.days.len() - 1;
        let mut given = [None; Measure::ALL.len()];
        for (m, v) in values {
            given[*m as usize].get_or_insert(*v);
        }
        for (column, value) in self.measures.iter_mut().zip(given) {
            if column.is_none() && value.is_some() {
                let mut new = Vec::with_capacity(before + 8);
                for _ in 0..before {
                    put_decimal(&mut new, None);
                }
                *column = Some(new);
            }
            if let Some(column) = column {
                put_decimal(column, value);
            }
        }
    }

    /// Appends the `x_` values of the row just pushed.
    fn push_extensions(&mut self, values: &[(&str, &str)]) {
        if values.is_empty() && self.extensions.is_empty() {
            return;
        }
        let rows = self.days.len();
        for (name, value) in values {
            if value.is_empty() || !name.starts_with(EXTENSION_PREFIX) || name.len() > 255 {
                continue;
            }
            let at = match self.extensions.iter().position(|(n, _)| n == name) {
                Some(at) => at,
                None if self.extensions.len() < MAX_EXTENSIONS => {
                    let mut new = TextBuilder::default();
                    for _ in 0..rows - 1 {
                        new.push("");
                    }
                    self.extensions.push(((*name).to_owned(), new));
                    self.extensions.len() - 1
                }
                None => continue,
            };
            let column = &mut self.extensions[at].1;
            if column.ids.len() < rows {
                column.push(value);
            }
        }
        for (_, column) in &mut self.extensions {
            if column.ids.len() < rows {
                column.push("");
            }
        }
    }

    /// Appends the attribute values of the row just pushed (`rows() - 1` rows before it).
    fn push_attributes(&mut self, values: &[(Attribute, Cow<'_, str>)]) {
        if values.is_empty() && self.active.is_empty() {
            return;
        }
        let before = self.days.len() - 1;
        let mut given = 0u64; // a bit per attribute
        for (a, v) in values {
            let i = *a as usize;
            if v.is_empty() || given & (1u64 << i) != 0 {
                continue;
            }
            given |= 1u64 << i;
            let column = &mut self.attributes[i];
            if column.is_none() {
                let mut new = TextBuilder::default();
                for _ in 0..before {
                    new.push("");
                }
                *column = Some(new);
                self.active.push(i);
            }
            if let Some(column) = column {
                column.push(v);
            }
        }
        for &i in &self.active {
            if given & (1u64 << i) == 0 {
                if let Some(column) = &mut self.attributes[i] {
                    column.push("");
                }
            }
        }
    }

    /// The encoded partition.
    pub fn finish(self) -> EncodedPartition {
        let rows = self.days.len();
        let mut columns: Vec<(Column, Vec<u8>)> = Vec::with_capacity(Column::ALL.len());
        columns.push((Column::Day, self.days));
        for (column, t) in Column::TEXT.into_iter().zip(&self.texts) {
            let mut out = Vec::new();
            t.encode(&mut out);
            columns.push((column, out));
        }
        columns.push((Column::Cost, cost_column(&self.mantissas, &self.scales)));
        columns.extend(Column::DECIMAL.into_iter().zip(self.decimals));
        let mut columns: Vec<(&str, Kind, Vec<u8>)> = columns
            .into_iter()
            .map(|(c, bytes)| (c.name(), c.kind(), bytes))
            .collect();
        for (a, column) in Attribute::ALL.iter().zip(&self.attributes) {
            if let Some(column) = column {
                let mut out = Vec::new();
                column.encode(&mut out);
                columns.push((a.snake_name(), Kind::Text, out));
            }
        }
        for (m, column) in Measure::ALL.iter().zip(self.measures) {
            if let Some(column) = column {
                columns.push((m.snake_name(), Kind::Decimal, column));
            }
        }
        for (name, column) in &self.extensions {
            let mut out = Vec::new();
            column.encode(&mut out);
            columns.push((name.as_str(), Kind::Text, out));
        }
        let mut out = Vec::with_capacity(
            14 + columns
                .iter()
                .map(|(name, _, b)| 6 + name.len() + b.len())
                .sum::<usize>(),
        );
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.month.num_days_from_ce().to_le_bytes());
        put_u32(&mut out, rows);
        out.extend_from_slice(&u16::try_from(columns.len()).unwrap_or(0).to_le_bytes());
        for (name, kind, bytes) in &columns {
            debug_assert!(*kind != Kind::Days || bytes.len() == rows);
            out.push(u8::try_from(name.len()).unwrap_or(0));
            out.extend_from_slice(name.as_bytes());
            out.push(*kind as u8);
            put_u32(&mut out, bytes.len());
        }
        for (_, _, bytes) in &columns {
            out.extend_from_slice(bytes);
        }
        EncodedPartition {
            month: self.month,
            rows,
            bytes: out,
        }
    }
}

/// The cost column (see [`mod@crate::format`]). Mantissas share one scale: the largest of the
/// costs' scales, or, when a mantissa at that scale would not fit an i128, the smallest at
/// which every cost is exact (each cost's scale once trailing zeros are dropped); they are
/// stored in the narrowest width that holds them all, then each row's own scale unless every
/// row has the shared one. Costs that share no scale within an i128 (10^28 beside 10^-28) are
/// stored wide: each row's own decimal.
fn cost_column(mantissas: &[i128], scales: &[u8]) -> Vec<u8> {
    let at = |shared: u32, rows: &mut dyn Iterator<Item = (i128, u32)>| -> Option<Vec<i128>> {
        rows.map(|(m, s)| {
            10i128
                .checked_pow(shared.checked_sub(s)?)
                .and_then(|f| m.checked_mul(f))
        })
        .collect()
    };
    let largest = u32::from(scales.iter().copied().max().unwrap_or(0));
    let own = || {
        mantissas
            .iter()
            .zip(scales)
            .map(|(m, s)| (*m, u32::from(*s)))
    };
    let normal = || {
        own().map(|(m, s)| {
            let d = Decimal::from_i128_with_scale(m, s).normalize();
            (d.mantissa(), d.scale())
        })
    };
    let mut shared = largest;
    let mut at_shared = at(largest, &mut own());
    if at_shared.is_none() {
        shared = normal().map(|(_, s)| s).max().unwrap_or(0);
        at_shared = at(shared, &mut normal());
    }
    let Some(at_shared) = at_shared else {
        let mut cost = vec![2u8];
        for (m, s) in mantissas.iter().zip(scales) {
            put_decimal(
                &mut cost,
                Some(Decimal::from_i128_with_scale(*m, u32::from(*s))),
            );
        }
        return cost;
    };
    let width: u8 = match at_shared
        .iter()
        .map(|v| v.unsigned_abs())
        .max()
        .unwrap_or(0)
    {
        x if x < 1 << 7 => 1,
        x if x < 1 << 15 => 2,
        x if x < 1 << 31 => 4,
        x if x < 1 << 63 => 8,
        _ => 16,
    };
    let shared = u8::try_from(shared).unwrap_or(u8::MAX);
    let per_row = scales.iter().any(|s| *s != shared);
    let mut cost = Vec::with_capacity(3 + at_shared.len() * (usize::from(width) + 1));
    cost.extend([u8::from(per_row), shared, width]);
    for v in &at_shared {
        cost.extend_from_slice(&v.to_le_bytes()[..usize::from(width)]);
    }
    if per_row {
        cost.extend_from_slice(scales);
    }
    cost
}

// `push_attributes` keeps a bit per attribute in a u64.
const _: () = assert!(Attribute::ALL.len() <= 64);
// The fixed columns, every attribute, measure and extension fit a directory of 255.
const _: () =
    assert!(Column::ALL.len() + Attribute::ALL.len() + Measure::ALL.len() + MAX_EXTENSIONS <= 255);
