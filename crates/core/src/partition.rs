//! The columnar partition codec: cost records of one billing account and one month as one
//! compact blob. Partitions are how the store keeps cost records (there is no row table), so the
//! codec is lossless: decoding gives back every field of every record, exactly.
//!
//! The layout is column-wise so that the aggregation engine loads a partition one column at a
//! time with tight loops instead of parsing rows. All integers are little-endian.
//!
//! One file on purpose for now: the format, encoder and decoder change together, and the whole
//! codec moves into a crate of its own (format, varint, encode and decode as modules, a column
//! directory instead of fixed indices) with the FOCUS column set (issue #15).
//!
//! ```text
//! magic "CBP2" · month (i32, days since CE) · rows (u32) · 15 columns, each a u32 byte length
//! followed by its bytes, in this order:
//!   day of month (u8 per row) · provider (u8 index) · charge category (u8 index)
//!   currency · cloud account · region · service · usage type · instance type · tags (text)
//!   cost (mantissas at the partition's largest scale) · cost scales (u8 per row, or empty
//!   when every row has the largest scale) · usage quantity · effective cost · list cost
//! text column: value count n (u32) · n + 1 offsets (u32) · the values' UTF-8 bytes · id width
//!   (u8: 1, 2 or 4) · one id per row
//! cost column: scale (u8) · width (u8: 1, 2, 4, 8 or 16) · one two's-complement mantissa
//!   per row
//! decimal column: per row a tag (0xFF: none, else the scale) and the zigzag LEB128 mantissa
//! ```

use chrono::{Datelike, NaiveDate};
use rust_decimal::Decimal;

use crate::interner::{same, Interner};
use crate::{
    AccountId, ChargeCategory, CostRecord, Currency, DomainId, Money, ProviderKind, Tags,
    ValidationError,
};

const MAGIC: &[u8; 4] = b"CBP2";
const COLUMNS: usize = 15;
const NONE_TAG: u8 = 0xFF;

/// Providers by their index in the provider column.
pub const PARTITION_PROVIDERS: [ProviderKind; 2] =
    [ProviderKind::HyperbillingAws, ProviderKind::File];

/// Charge categories by their index in the category column.
pub const PARTITION_CATEGORIES: [ChargeCategory; 5] = [
    ChargeCategory::Usage,
    ChargeCategory::Purchase,
    ChargeCategory::Tax,
    ChargeCategory::Credit,
    ChargeCategory::Adjustment,
];

/// The text fields a partition keeps as per-partition dictionaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextField {
    /// ISO-4217 currency code.
    Currency,
    /// The cloud's own account id.
    CloudAccount,
    /// Region (`""` for none).
    Region,
    /// Service.
    Service,
    /// Usage type.
    UsageType,
    /// Instance type (`""` for none).
    InstanceType,
    /// Tags as a JSON object (`""` for none).
    Tags,
}

impl TextField {
    const ALL: [TextField; 7] = [
        TextField::Currency,
        TextField::CloudAccount,
        TextField::Region,
        TextField::Service,
        TextField::UsageType,
        TextField::InstanceType,
        TextField::Tags,
    ];

    fn column(self) -> usize {
        3 + self as usize
    }
}

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

fn put_u32(out: &mut Vec<u8>, v: usize) {
    out.extend_from_slice(&u32::try_from(v).unwrap_or(u32::MAX).to_le_bytes());
}

fn put_decimal(out: &mut Vec<u8>, value: Option<Decimal>) {
    match value {
        None => out.push(NONE_TAG),
        Some(d) => {
            out.push(u8::try_from(d.scale()).unwrap_or(u8::MAX));
            put_varint(out, zigzag(d.mantissa()));
        }
    }
}

fn tags_text(tags: &Tags) -> String {
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
}

/// Encodes records of one account and one month.
pub fn encode_partition(month: NaiveDate, records: &[&CostRecord]) -> Vec<u8> {
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
    providers: Vec<u8>,
    categories: Vec<u8>,
    texts: [TextBuilder; 7],
    mantissas: Vec<i128>,
    scales: Vec<u8>,
    decimals: [Vec<u8>; 3],
}

impl PartitionEncoder {
    /// An empty partition of the month starting at `month`.
    pub fn new(month: NaiveDate) -> Self {
        Self {
            month,
            days: Vec::new(),
            providers: Vec::new(),
            categories: Vec::new(),
            texts: Default::default(),
            mantissas: Vec::new(),
            scales: Vec::new(),
            decimals: Default::default(),
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
        let per_row = 3 + 7 * 4 + 16 + 1;
        self.days.len() * per_row
            + self.texts.iter().map(|t| t.dict.memory()).sum::<usize>()
            + self.decimals.iter().map(Vec::len).sum::<usize>()
    }

    /// Appends a record.
    pub fn push(&mut self, r: &CostRecord) {
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
        });
    }

    /// Appends a record given as borrowed fields (no `CostRecord` needed: a bill import
    /// encodes straight from the file's cells).
    pub fn push_fields(&mut self, r: &RecordFields<'_>) {
        self.days.push(u8::try_from(r.date.day()).unwrap_or(0));
        self.providers.push(
            u8::try_from(
                PARTITION_PROVIDERS
                    .iter()
                    .position(|p| *p == r.provider)
                    .unwrap_or(0),
            )
            .unwrap_or(0),
        );
        self.categories.push(
            u8::try_from(
                PARTITION_CATEGORIES
                    .iter()
                    .position(|c| *c == r.charge_category)
                    .unwrap_or(0),
            )
            .unwrap_or(0),
        );
        let [currency, cloud_account, region, service, usage_type, instance_type, tags] =
            &mut self.texts;
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
    }

    /// The encoded partition.
    pub fn finish(self) -> Vec<u8> {
        let rows = self.days.len();
        let max_scale = self.scales.iter().copied().max().unwrap_or(0);
        // Mantissas at the largest scale; rust_decimal's scale ≤ 28 and mantissa < 2^96 keep
        // the product within i128.
        let scaled: Vec<i128> = self
            .mantissas
            .iter()
            .zip(&self.scales)
            .map(|(m, s)| m * 10i128.pow(u32::from(max_scale - s)))
            .collect();
        let width: u8 = match scaled.iter().map(|v| v.unsigned_abs()).max().unwrap_or(0) {
            x if x < 1 << 7 => 1,
            x if x < 1 << 15 => 2,
            x if x < 1 << 31 => 4,
            x if x < 1 << 63 => 8,
            _ => 16,
        };
        let mut columns: Vec<Vec<u8>> = Vec::with_capacity(COLUMNS);
        columns.push(self.days);
        columns.push(self.providers);
        columns.push(self.categories);
        for t in &self.texts {
            let mut out = Vec::new();
            t.encode(&mut out);
            columns.push(out);
        }
        let mut cost = Vec::with_capacity(2 + rows * usize::from(width));
        cost.push(max_scale);
        cost.push(width);
        for v in &scaled {
            cost.extend_from_slice(&v.to_le_bytes()[..usize::from(width)]);
        }
        columns.push(cost);
        if self.scales.iter().all(|s| *s == max_scale) {
            columns.push(Vec::new());
        } else {
            columns.push(self.scales);
        }
        columns.extend(self.decimals);
        let mut out =
            Vec::with_capacity(12 + 4 * COLUMNS + columns.iter().map(Vec::len).sum::<usize>());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.month.num_days_from_ce().to_le_bytes());
        put_u32(&mut out, rows);
        for c in &columns {
            put_u32(&mut out, c.len());
            out.extend_from_slice(c);
        }
        out
    }
}

fn days_in_month(month: NaiveDate) -> usize {
    month
        .checked_add_months(chrono::Months::new(1))
        .map_or(31, |next| {
            usize::try_from((next - month).num_days()).unwrap_or(31)
        })
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

    fn byte(&mut self) -> Result<u8, ValidationError> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<usize, ValidationError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
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

    fn decimal(&mut self) -> Result<Option<Decimal>, ValidationError> {
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

/// A decoded partition: its month, its row count and column accessors. Decoding checks the
/// structure and every fixed-width column; text and cost columns are checked when read.
#[derive(Debug, Clone)]
pub struct Partition<'a> {
    /// The first day of the partition's month.
    pub month: NaiveDate,
    /// Rows.
    pub rows: usize,
    columns: [&'a [u8]; COLUMNS],
}

/// A dictionary-encoded text column: the partition's distinct values and one id per row.
#[derive(Debug, Clone)]
pub struct TextColumn<'a> {
    /// Distinct values; ids index into it.
    pub values: Vec<&'a str>,
    width: usize,
    ids: &'a [u8],
}

impl TextColumn<'_> {
    /// The value id of `row`.
    #[inline]
    pub fn id(&self, row: usize) -> usize {
        let at = row * self.width;
        match self.width {
            1 => usize::from(self.ids[at]),
            2 => usize::from(u16::from_le_bytes([self.ids[at], self.ids[at + 1]])),
            _ => u32::from_le_bytes([
                self.ids[at],
                self.ids[at + 1],
                self.ids[at + 2],
                self.ids[at + 3],
            ]) as usize,
        }
    }

    /// Appends `lookup[id]` for every row to `out` (the engine's dictionary remap).
    pub fn map_into<T: Copy>(&self, lookup: &[T], out: &mut Vec<T>) {
        match self.width {
            1 => out.extend(self.ids.iter().map(|i| lookup[usize::from(*i)])),
            2 => out.extend(
                self.ids
                    .chunks_exact(2)
                    .map(|c| lookup[usize::from(u16::from_le_bytes([c[0], c[1]]))]),
            ),
            _ => out.extend(
                self.ids
                    .chunks_exact(4)
                    .map(|c| lookup[u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as usize]),
            ),
        }
    }

    /// The largest id of any row (`None` for no rows).
    fn max_id(&self) -> Option<usize> {
        match self.width {
            1 => self.ids.iter().max().map(|i| usize::from(*i)),
            2 => self
                .ids
                .chunks_exact(2)
                .map(|c| usize::from(u16::from_le_bytes([c[0], c[1]])))
                .max(),
            _ => self
                .ids
                .chunks_exact(4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as usize)
                .max(),
        }
    }
}

/// The cost column: every mantissa at one scale.
#[derive(Debug, Clone, Copy)]
pub struct CostColumn<'a> {
    /// The scale of every mantissa (the largest of the partition's costs).
    pub scale: u32,
    width: usize,
    bytes: &'a [u8],
}

impl CostColumn<'_> {
    /// The mantissa of `row` at [`CostColumn::scale`].
    #[inline]
    pub fn get(&self, row: usize) -> i128 {
        let at = row * self.width;
        let b = &self.bytes[at..at + self.width];
        match self.width {
            1 => i128::from(i8::from_le_bytes([b[0]])),
            2 => i128::from(i16::from_le_bytes([b[0], b[1]])),
            4 => i128::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            8 => i128::from(i64::from_le_bytes([
                b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
            ])),
            _ => {
                let mut full = [0u8; 16];
                full.copy_from_slice(b);
                i128::from_le_bytes(full)
            }
        }
    }

    /// Calls `f` with every mantissa, in row order.
    #[inline]
    pub fn for_each(&self, mut f: impl FnMut(i128)) {
        match self.width {
            1 => self
                .bytes
                .iter()
                .for_each(|b| f(i128::from(b.cast_signed()))),
            2 => self
                .bytes
                .chunks_exact(2)
                .for_each(|c| f(i128::from(i16::from_le_bytes([c[0], c[1]])))),
            4 => self
                .bytes
                .chunks_exact(4)
                .for_each(|c| f(i128::from(i32::from_le_bytes([c[0], c[1], c[2], c[3]])))),
            8 => self.bytes.chunks_exact(8).for_each(|c| {
                f(i128::from(i64::from_le_bytes([
                    c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7],
                ])));
            }),
            _ => (0..self.bytes.len() / 16).for_each(|row| f(self.get(row))),
        }
    }
}

impl<'a> Partition<'a> {
    /// Reads a partition's structure and checks its fixed-width columns.
    pub fn decode(bytes: &'a [u8]) -> Result<Self, ValidationError> {
        let mut c = Cursor { bytes, pos: 0 };
        if c.take(4)? != MAGIC {
            return Err(corrupt("bad magic"));
        }
        let raw = c.take(4)?;
        let days = i32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]);
        let month = NaiveDate::from_num_days_from_ce_opt(days)
            .filter(|m| m.day() == 1)
            .ok_or_else(|| corrupt("month"))?;
        let rows = c.u32()?;
        let mut columns: [&[u8]; COLUMNS] = [&[]; COLUMNS];
        for col in &mut columns {
            let len = c.u32()?;
            *col = c.take(len)?;
        }
        if c.pos != bytes.len() {
            return Err(corrupt("trailing bytes"));
        }
        let month_days = days_in_month(month);
        let fixed = [
            (0, "days", month_days),
            (1, "providers", PARTITION_PROVIDERS.len()),
            (2, "categories", PARTITION_CATEGORIES.len()),
        ];
        for (i, what, limit) in fixed {
            if columns[i].len() != rows {
                return Err(corrupt(what));
            }
            let bad = if i == 0 {
                columns[i]
                    .iter()
                    .any(|d| *d == 0 || usize::from(*d) > limit)
            } else {
                columns[i].iter().any(|v| usize::from(*v) >= limit)
            };
            if bad {
                return Err(corrupt(what));
            }
        }
        if !columns[11].is_empty() && columns[11].len() != rows {
            return Err(corrupt("cost scales"));
        }
        Ok(Self {
            month,
            rows,
            columns,
        })
    }

    /// The day of the month of each row (1-based, checked against the month's length).
    pub fn days(&self) -> &'a [u8] {
        self.columns[0]
    }

    /// Each row's provider, as an index into [`PARTITION_PROVIDERS`] (checked).
    pub fn providers(&self) -> &'a [u8] {
        self.columns[1]
    }

    /// Each row's charge category, as an index into [`PARTITION_CATEGORIES`] (checked).
    pub fn categories(&self) -> &'a [u8] {
        self.columns[2]
    }

    /// A text column, checked: every id names one of its values.
    pub fn text(&self, field: TextField) -> Result<TextColumn<'a>, ValidationError> {
        let mut c = Cursor {
            bytes: self.columns[field.column()],
            pos: 0,
        };
        let n = c.u32()?;
        let offsets = c.take(
            n.checked_add(1)
                .and_then(|k| k.checked_mul(4))
                .ok_or_else(|| corrupt("text count"))?,
        )?;
        let offset = |i: usize| {
            let b = &offsets[i * 4..i * 4 + 4];
            u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize
        };
        // One UTF-8 check for all the values, then slices of it.
        let all = std::str::from_utf8(c.take(offset(n))?).map_err(|_| corrupt("utf-8"))?;
        let values = (0..n)
            .map(|i| {
                all.get(offset(i)..offset(i + 1))
                    .ok_or_else(|| corrupt("text offsets"))
            })
            .collect::<Result<Vec<&str>, _>>()?;
        let width = usize::from(c.byte()?);
        if !matches!(width, 1 | 2 | 4) {
            return Err(corrupt("id width"));
        }
        let ids = c.take(self.rows * width)?;
        if c.pos != c.bytes.len() {
            return Err(corrupt("text column length"));
        }
        let column = TextColumn { values, width, ids };
        if column.max_id().is_some_and(|m| m >= column.values.len()) {
            return Err(corrupt("text id"));
        }
        Ok(column)
    }

    /// The cost column.
    pub fn costs(&self) -> Result<CostColumn<'a>, ValidationError> {
        let mut c = Cursor {
            bytes: self.columns[10],
            pos: 0,
        };
        let scale = u32::from(c.byte()?);
        let width = usize::from(c.byte()?);
        if scale > 28 || !matches!(width, 1 | 2 | 4 | 8 | 16) {
            return Err(corrupt("cost column"));
        }
        let bytes = c.take(self.rows * width)?;
        if c.pos != c.bytes.len() {
            return Err(corrupt("cost column length"));
        }
        Ok(CostColumn {
            scale,
            width,
            bytes,
        })
    }

    /// Checks the structure of every column (what [`Partition::decode`] leaves to the readers)
    /// and the currencies, for a partition the store accepts ready-encoded.
    pub fn validate(&self) -> Result<(), ValidationError> {
        for field in TextField::ALL {
            self.text(field)?;
        }
        for value in self.text(TextField::Currency)?.values {
            Currency::parse(value)?;
        }
        self.costs()?;
        for i in 0..3 {
            let mut c = Cursor {
                bytes: self.columns[12 + i],
                pos: 0,
            };
            for _ in 0..self.rows {
                c.decimal()?;
            }
            if c.pos != c.bytes.len() {
                return Err(corrupt("decimal column length"));
            }
        }
        Ok(())
    }

    /// Every record, exactly as it was written (rows in stored order).
    pub fn records(
        &self,
        domain: DomainId,
        account: AccountId,
    ) -> Result<Vec<CostRecord>, ValidationError> {
        let texts: Vec<TextColumn<'a>> = TextField::ALL
            .iter()
            .map(|f| self.text(*f))
            .collect::<Result<_, _>>()?;
        let costs = self.costs()?;
        let currencies: Vec<Currency> = texts[0]
            .values
            .iter()
            .map(|c| Currency::parse(c))
            .collect::<Result<_, _>>()?;
        let tags: Vec<Tags> = texts[6]
            .values
            .iter()
            .map(|t| {
                if t.is_empty() {
                    Ok(Tags::new())
                } else {
                    serde_json::from_str(t).map_err(|_| corrupt("tags"))
                }
            })
            .collect::<Result<_, _>>()?;
        let mut decimals: [Cursor<'a>; 3] = std::array::from_fn(|i| Cursor {
            bytes: self.columns[12 + i],
            pos: 0,
        });
        let scales = self.columns[11];
        let mut out = Vec::with_capacity(self.rows);
        for row in 0..self.rows {
            let text = |k: usize| texts[k].values[texts[k].id(row)];
            let date = self
                .month
                .with_day(u32::from(self.columns[0][row]))
                .ok_or_else(|| corrupt("day"))?;
            let scale = scales.get(row).map_or(costs.scale, |s| u32::from(*s));
            let divisor = 10i128
                .checked_pow(
                    costs
                        .scale
                        .checked_sub(scale)
                        .ok_or_else(|| corrupt("scale"))?,
                )
                .ok_or_else(|| corrupt("scale"))?;
            let mantissa = costs.get(row);
            if mantissa % divisor != 0 {
                return Err(corrupt("cost scale"));
            }
            let amount = Decimal::try_from_i128_with_scale(mantissa / divisor, scale)
                .map_err(|_| corrupt("cost"))?;
            let [quantity, effective, list] = &mut decimals;
            let instance_type = text(5);
            out.push(CostRecord {
                domain,
                service_account: account,
                provider: PARTITION_PROVIDERS[usize::from(self.columns[1][row])],
                cloud_account: text(1).to_owned(),
                date,
                region: text(2).to_owned(),
                service: text(3).to_owned(),
                usage_type: text(4).to_owned(),
                instance_type: (!instance_type.is_empty()).then(|| instance_type.to_owned()),
                usage_quantity: quantity.decimal()?.unwrap_or_default(),
                cost: Money::new(amount, currencies[texts[0].id(row)]),
                effective_cost: effective.decimal()?,
                list_cost: list.decimal()?,
                charge_category: PARTITION_CATEGORIES[usize::from(self.columns[2][row])],
                tags: tags[texts[6].id(row)].clone(),
            });
        }
        if decimals.iter().any(|c| c.pos != c.bytes.len()) {
            return Err(corrupt("decimal column length"));
        }
        Ok(out)
    }

    /// Per (day, currency) sums of the costs, without decoding whole records.
    pub fn daily_totals(&self) -> Result<Vec<(NaiveDate, Currency, Decimal)>, ValidationError> {
        let currency = self.text(TextField::Currency)?;
        let costs = self.costs()?;
        // One slot per (day of month, currency of the partition).
        let currencies = currency.values.len();
        let mut sums: Vec<Option<i128>> = vec![None; 32 * currencies];
        for (row, day) in self.days().iter().enumerate() {
            let slot = &mut sums[usize::from(*day) * currencies + currency.id(row)];
            *slot = Some(
                slot.unwrap_or(0)
                    .checked_add(costs.get(row))
                    .ok_or_else(|| corrupt("total overflows"))?,
            );
        }
        let mut out = Vec::new();
        for (i, sum) in sums.into_iter().enumerate() {
            let Some(sum) = sum else { continue };
            let (day, cur) = (i / currencies, i % currencies);
            let day = u8::try_from(day).map_err(|_| corrupt("day"))?;
            let date = self
                .month
                .with_day(u32::from(day))
                .ok_or_else(|| corrupt("day"))?;
            let amount = Decimal::try_from_i128_with_scale(sum, costs.scale)
                .map_err(|_| corrupt("total overflows"))?;
            out.push((date, Currency::parse(currency.values[cur])?, amount));
        }
        Ok(out)
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
    fn round_trips_every_field_exactly() {
        let mut records = vec![
            rec(31, "-0.0000000001", "EC2", "USD"),
            rec(1, "123456789012.12345678901", "S3 \"x\"", "EUR"),
            rec(2, "9.6E-6", "EC2", "USD"),
            rec(2, "1.50", "EC2", "USD"),
        ];
        records[1].instance_type = Some("m5.large".into());
        records[1].effective_cost = Some(crate::parse_decimal("-0.12345678901234").unwrap());
        records[1].list_cost = Some(Decimal::ZERO);
        records[1].tags.insert("team".into(), "a,\"b\"".into());
        records[2].provider = ProviderKind::HyperbillingAws;
        records[2].usage_quantity = crate::parse_decimal("1e-20").unwrap();
        records[3].charge_category = ChargeCategory::Tax;
        let (domain, account) = (DomainId::new(), AccountId::new());
        for r in &mut records {
            r.domain = domain;
            r.service_account = account;
        }
        let refs: Vec<&CostRecord> = records.iter().collect();
        let month = NaiveDate::from_ymd_opt(2025, 3, 1).unwrap();
        let blob = encode_partition(month, &refs);
        let p = Partition::decode(&blob).unwrap();
        assert_eq!(p.month, month);
        assert_eq!(p.rows, 4);
        assert_eq!(p.costs().unwrap().scale, 11);
        let back = p.records(domain, account).unwrap();
        assert_eq!(back, records);
        assert_eq!(back[3].cost.amount().to_string(), "1.50", "scale kept");
        let mut totals = p.daily_totals().unwrap();
        totals.sort();
        assert_eq!(
            totals
                .iter()
                .map(|(d, c, a)| format!("{d} {c} {a}"))
                .collect::<Vec<_>>(),
            [
                "2025-03-01 EUR 123456789012.12345678901",
                "2025-03-02 USD 1.50000960000",
                "2025-03-31 USD -0.00000000010",
            ]
        );
    }

    #[test]
    fn rejects_damaged_blobs() {
        let records = [rec(5, "1", "EC2", "USD"), rec(6, "2", "S3", "USD")];
        let refs: Vec<&CostRecord> = records.iter().collect();
        let month = NaiveDate::from_ymd_opt(2025, 3, 1).unwrap();
        let blob = encode_partition(month, &refs);
        assert!(Partition::decode(&blob[..blob.len() - 1]).is_err());
        assert!(Partition::decode(b"nope").is_err());
        let mut extra = blob.clone();
        extra.push(0);
        assert!(Partition::decode(&extra).is_err());
        // A day beyond the month, and a text id beyond its dictionary.
        let mut bad_day = blob.clone();
        bad_day[12 + 4] = 32;
        assert!(Partition::decode(&bad_day).is_err());
        let p = Partition::decode(&blob).unwrap();
        let service = p.text(TextField::Service).unwrap();
        assert_eq!(service.values, ["EC2", "S3"]);
        // The service column's last id byte (column 6 ends the ids of that column).
        let mut at = 12;
        for _ in 0..=6 {
            let len = u32::from_le_bytes(blob[at..at + 4].try_into().unwrap()) as usize;
            at += 4 + len;
        }
        let mut bad_id = blob.clone();
        bad_id[at - 1] = 9;
        let p = Partition::decode(&bad_id).unwrap();
        assert!(p.text(TextField::Service).is_err());
        assert!(p.records(DomainId::new(), AccountId::new()).is_err());
    }
}
