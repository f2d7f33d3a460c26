//! Reading a partition: the directory first, then columns by name, each checked as it is read.

use chrono::{Datelike, NaiveDate};
use cloudbill_core::{
    AccountId, Attribute, Attributes, ChargeCategory, CostRecord, Currency, Decimal, DomainId,
    Extensions, Measure, Measures, Money, ProviderKind, Tags, ValidationError, EXTENSION_PREFIX,
};

use crate::format::{Column, Kind, MAGIC};
use crate::varint::{corrupt, Cursor};

/// A decoded partition: its month, its row count and its columns by name. Decoding checks the
/// directory and the day column; every other column is checked when read.
#[derive(Debug, Clone)]
pub struct Partition<'a> {
    /// The first day of the partition's month.
    pub month: NaiveDate,
    /// Rows.
    pub rows: usize,
    days: &'a [u8],
    /// The directory: name, kind byte, bytes.
    columns: Vec<(&'a str, u8, &'a [u8])>,
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
    /// A column a partition does not have: every row without a value (`""`).
    fn absent() -> Self {
        TextColumn {
            values: vec![""],
            width: 0,
            ids: &[],
        }
    }

    /// The value id of `row`.
    #[inline]
    pub fn id(&self, row: usize) -> usize {
        let at = row * self.width;
        match self.width {
            0 => 0,
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
    pub fn map_into<T: Copy>(&self, lookup: &[T], out: &mut Vec<T>, rows: usize) {
        match self.width {
            0 => out.extend(std::iter::repeat_n(lookup[0], rows)),
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
            0 => Some(0),
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
#[derive(Debug, Clone)]
pub struct CostColumn<'a> {
    /// The scale of every mantissa (the largest of the partition's costs).
    pub scale: u32,
    pub(crate) width: usize,
    pub(crate) bytes: &'a [u8],
    /// Each row's own scale (empty: every row has [`CostColumn::scale`]).
    pub(crate) scales: &'a [u8],
    /// A wide column's rows, each at its own scale (empty for a narrow column).
    pub(crate) wide: Vec<(i128, u32)>,
}

impl CostColumn<'_> {
    /// Whether the column is wide: its costs share no scale at which every mantissa fits an
    /// i128 (say 10^28 and 10^-28 in one partition). Then [`CostColumn::for_each`] does
    /// not apply; read rows with [`CostColumn::amount`].
    pub fn is_wide(&self) -> bool {
        !self.wide.is_empty()
    }

    /// The largest scale of any row's own cost (≥ [`CostColumn::scale`] when mantissas share
    /// a smaller scale than some rows were written with, say 1.50 beside 10^20): sums shown
    /// at it keep every digit the source sent.
    pub fn max_scale(&self) -> u32 {
        let own = if self.wide.is_empty() {
            self.scales.iter().copied().max().map_or(0, u32::from)
        } else {
            self.wide.iter().map(|(_, s)| *s).max().unwrap_or(0)
        };
        own.max(self.scale)
    }

    /// The mantissa of `row` at [`CostColumn::scale`] (a narrow column's).
    #[inline]
    pub(crate) fn get(&self, row: usize) -> i128 {
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

    /// Calls `f` with every mantissa at [`CostColumn::scale`], in row order (a narrow
    /// column's; a wide one calls `f` for no row).
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
    /// Reads a partition's directory and checks its day column.
    pub fn decode(bytes: &'a [u8]) -> Result<Self, ValidationError> {
        let mut c = Cursor::new(bytes);
        let magic = c.take(4)?;
        if magic == crate::legacy::MAGIC {
            return Err(corrupt(
                "partition of an older format (the store converts them on open)",
            ));
        }
        if magic != MAGIC {
            return Err(corrupt("bad magic"));
        }
        let month = NaiveDate::from_num_days_from_ce_opt(c.i32()?)
            .filter(|m| m.day() == 1)
            .ok_or_else(|| corrupt("month"))?;
        let rows = c.u32()?;
        let count = c.u16()?;
        let mut directory = Vec::with_capacity(count);
        for _ in 0..count {
            let len = usize::from(c.byte()?);
            let name = std::str::from_utf8(c.take(len)?).map_err(|_| corrupt("column name"))?;
            let kind = c.byte()?;
            let size = c.u32()?;
            if directory.iter().any(|(n, _, _)| *n == name) {
                return Err(corrupt("duplicate column"));
            }
            directory.push((name, kind, size));
        }
        let mut columns = Vec::with_capacity(count);
        for (name, kind, size) in directory {
            columns.push((name, kind, c.take(size)?));
        }
        if !c.done() {
            return Err(corrupt("trailing bytes"));
        }
        let mut p = Self {
            month,
            rows,
            days: &[],
            columns,
        };
        let days = p
            .raw(Column::Day)?
            .ok_or_else(|| corrupt("no day column"))?;
        let month_days = days_in_month(month);
        if days.len() != rows || days.iter().any(|d| *d == 0 || usize::from(*d) > month_days) {
            return Err(corrupt("days"));
        }
        p.days = days;
        Ok(p)
    }

    /// The names of the partition's columns, in directory order.
    pub fn column_names(&self) -> impl Iterator<Item = &'a str> + '_ {
        self.columns.iter().map(|(n, _, _)| *n)
    }

    /// The bytes of `column`, `None` if the partition does not have it; an error if it has it
    /// with another kind.
    fn raw(&self, column: Column) -> Result<Option<&'a [u8]>, ValidationError> {
        self.raw_named(column.name(), column.kind())
    }

    /// The bytes of the column named `name`, `None` if the partition does not have it; an
    /// error if it has it with another kind than `kind`.
    fn raw_named(&self, name: &str, kind: Kind) -> Result<Option<&'a [u8]>, ValidationError> {
        match self.columns.iter().find(|(n, _, _)| *n == name) {
            None => Ok(None),
            Some((_, k, bytes)) if Kind::from_byte(*k) == Some(kind) => Ok(Some(bytes)),
            Some(_) => Err(corrupt("column kind")),
        }
    }

    /// An attribute's column (every row without a value when the partition has none).
    pub fn attribute(&self, attribute: Attribute) -> Result<TextColumn<'a>, ValidationError> {
        match self.raw_named(attribute.snake_name(), Kind::Text)? {
            None => Ok(TextColumn::absent()),
            Some(bytes) => text_column(bytes, self.rows),
        }
    }

    /// A measure's values, one per row (`None`: no value), checked.
    pub fn measure(&self, measure: Measure) -> Result<Vec<Option<Decimal>>, ValidationError> {
        let Some(bytes) = self.raw_named(measure.snake_name(), Kind::Decimal)? else {
            return Ok(vec![None; self.rows]);
        };
        let mut c = Cursor::new(bytes);
        let out = (0..self.rows)
            .map(|_| c.decimal())
            .collect::<Result<Vec<_>, _>>()?;
        if !c.done() {
            return Err(corrupt("decimal column length"));
        }
        Ok(out)
    }

    /// The measures the partition has a column for.
    pub fn measures(&self) -> impl Iterator<Item = Measure> + '_ {
        Measure::ALL
            .into_iter()
            .filter(|m| self.column_names().any(|n| n == m.snake_name()))
    }

    /// The source's own (`x_`) text columns, by name, in directory order.
    pub fn extensions(&self) -> Result<Vec<(&'a str, TextColumn<'a>)>, ValidationError> {
        self.columns
            .iter()
            .filter(|(n, k, _)| {
                n.starts_with(EXTENSION_PREFIX) && Kind::from_byte(*k) == Some(Kind::Text)
            })
            .map(|(n, _, bytes)| Ok((*n, text_column(bytes, self.rows)?)))
            .collect()
    }

    /// The day of the month of each row (1-based, checked against the month's length).
    pub fn days(&self) -> &'a [u8] {
        self.days
    }

    /// A text column, checked: every id names one of its values. A column the partition
    /// does not have reads as every row without a value (`""`).
    pub fn text(&self, column: Column) -> Result<TextColumn<'a>, ValidationError> {
        let Some(bytes) = self.raw(column)? else {
            return Ok(TextColumn::absent());
        };
        text_column(bytes, self.rows)
    }

    /// The cost column (every partition has one).
    pub fn costs(&self) -> Result<CostColumn<'a>, ValidationError> {
        let bytes = self
            .raw(Column::Cost)?
            .ok_or_else(|| corrupt("no cost column"))?;
        cost_column(bytes, self.rows)
    }

    /// The FOCUS EffectiveCost of each row (`None`: the record has none), checked.
    pub fn effective_costs(&self) -> Result<Vec<Option<Decimal>>, ValidationError> {
        let Some(mut c) = self.decimals(Column::EffectiveCost)? else {
            return Ok(vec![None; self.rows]);
        };
        let out = (0..self.rows)
            .map(|_| c.decimal())
            .collect::<Result<Vec<_>, _>>()?;
        if !c.done() {
            return Err(corrupt("decimal column length"));
        }
        Ok(out)
    }

    /// A decimal column's reader (`None` per row when the partition does not have it).
    fn decimals(&self, column: Column) -> Result<Option<Cursor<'a>>, ValidationError> {
        Ok(self.raw(column)?.map(Cursor::new))
    }

    /// Checks the structure of every column (what [`Partition::decode`] leaves to the readers)
    /// and the currencies, providers and categories, for a partition the store accepts
    /// ready-encoded.
    pub fn validate(&self) -> Result<(), ValidationError> {
        for column in Column::TEXT {
            let text = self.text(column)?;
            for value in &text.values {
                match column {
                    Column::Currency => drop(Currency::parse(value)?),
                    Column::Provider => drop(
                        value
                            .parse::<ProviderKind>()
                            .map_err(|_| corrupt("provider"))?,
                    ),
                    Column::ChargeCategory => drop(
                        value
                            .parse::<ChargeCategory>()
                            .map_err(|_| corrupt("charge category"))?,
                    ),
                    Column::Tags => drop(crate::tags_from_text(value)?),
                    _ => {}
                }
            }
        }
        for attribute in Attribute::ALL {
            self.attribute(attribute)?;
        }
        for measure in Measure::ALL {
            self.measure(measure)?;
        }
        self.extensions()?;
        self.costs()?;
        for column in Column::DECIMAL {
            if let Some(mut c) = self.decimals(column)? {
                for _ in 0..self.rows {
                    c.decimal()?;
                }
                if !c.done() {
                    return Err(corrupt("decimal column length"));
                }
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
        let text = |c: Column| self.text(c);
        let [provider, category, currency, cloud_account, region, service, usage_type, instance_type, tags] =
            Column::TEXT.map(text);
        let (provider, category, currency) = (provider?, category?, currency?);
        let (cloud_account, region, service) = (cloud_account?, region?, service?);
        let (usage_type, instance_type, tags) = (usage_type?, instance_type?, tags?);
        let costs = self.costs()?;
        let currencies: Vec<Currency> = currency
            .values
            .iter()
            .map(|c| Currency::parse(c))
            .collect::<Result<_, _>>()?;
        let providers: Vec<ProviderKind> = provider
            .values
            .iter()
            .map(|p| p.parse().map_err(|_| corrupt("provider")))
            .collect::<Result<_, _>>()?;
        let categories: Vec<ChargeCategory> = category
            .values
            .iter()
            .map(|c| c.parse().map_err(|_| corrupt("charge category")))
            .collect::<Result<_, _>>()?;
        let tag_maps: Vec<Tags> = tags
            .values
            .iter()
            .map(|t| crate::tags_from_text(t))
            .collect::<Result<_, _>>()?;
        let [mut quantity, mut effective, mut list] = [
            self.decimals(Column::UsageQuantity)?,
            self.decimals(Column::EffectiveCost)?,
            self.decimals(Column::ListCost)?,
        ];
        let attributes: Vec<(Attribute, TextColumn<'a>)> = Attribute::ALL
            .into_iter()
            .filter_map(|a| match self.attribute(a) {
                Ok(c) if c.width == 0 => None,
                other => Some(other.map(|c| (a, c))),
            })
            .collect::<Result<_, _>>()?;
        let measures: Vec<(Measure, Vec<Option<Decimal>>)> = self
            .measures()
            .map(|m| Ok((m, self.measure(m)?)))
            .collect::<Result<_, ValidationError>>()?;
        let extensions = self.extensions()?;
        let mut out = Vec::with_capacity(self.rows);
        for row in 0..self.rows {
            let date = self
                .month
                .with_day(u32::from(self.days[row]))
                .ok_or_else(|| corrupt("day"))?;
            let instance = instance_type.values[instance_type.id(row)];
            out.push(CostRecord {
                domain,
                service_account: account,
                provider: providers[provider.id(row)],
                cloud_account: cloud_account.values[cloud_account.id(row)].to_owned(),
                date,
                region: region.values[region.id(row)].to_owned(),
                service: service.values[service.id(row)].to_owned(),
                usage_type: usage_type.values[usage_type.id(row)].to_owned(),
                instance_type: (!instance.is_empty()).then(|| instance.to_owned()),
                usage_quantity: next(&mut quantity)?.unwrap_or_default(),
                cost: Money::new(costs.amount(row)?, currencies[currency.id(row)]),
                effective_cost: next(&mut effective)?,
                list_cost: next(&mut list)?,
                charge_category: categories[category.id(row)],
                tags: tag_maps[tags.id(row)].clone(),
                attributes: attributes
                    .iter()
                    .filter_map(|(a, c)| {
                        let v = c.values[c.id(row)];
                        (!v.is_empty()).then(|| (*a, v.to_owned()))
                    })
                    .collect::<Attributes>(),
                measures: measures
                    .iter()
                    .filter_map(|(m, values)| values[row].map(|v| (*m, v)))
                    .collect::<Measures>(),
                extensions: extensions
                    .iter()
                    .filter_map(|(name, c)| {
                        let v = c.values[c.id(row)];
                        (!v.is_empty()).then(|| ((*name).to_owned(), v.to_owned()))
                    })
                    .collect::<Extensions>(),
            });
        }
        if [quantity, effective, list]
            .iter()
            .any(|c| c.as_ref().is_some_and(|c| !c.done()))
        {
            return Err(corrupt("decimal column length"));
        }
        Ok(out)
    }

    /// Per (day, currency) sums of the costs, without decoding whole records.
    pub fn daily_totals(&self) -> Result<Vec<(NaiveDate, Currency, Decimal)>, ValidationError> {
        let currency = self.text(Column::Currency)?;
        let costs = self.costs()?;
        if costs.is_wide() {
            return self.daily_totals_wide(&currency, &costs);
        }
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

impl Partition<'_> {
    /// [`Partition::daily_totals`] of a wide cost column, in decimals.
    fn daily_totals_wide(
        &self,
        currency: &TextColumn<'_>,
        costs: &CostColumn<'_>,
    ) -> Result<Vec<(NaiveDate, Currency, Decimal)>, ValidationError> {
        let mut sums = std::collections::BTreeMap::<(u8, usize), Decimal>::new();
        for (row, day) in self.days().iter().enumerate() {
            let slot = sums.entry((*day, currency.id(row))).or_default();
            *slot = slot
                .checked_add(costs.amount(row)?)
                .ok_or_else(|| corrupt("total overflows"))?;
        }
        sums.into_iter()
            .map(|((day, cur), sum)| {
                let date = self
                    .month
                    .with_day(u32::from(day))
                    .ok_or_else(|| corrupt("day"))?;
                Ok((date, Currency::parse(currency.values[cur])?, sum))
            })
            .collect()
    }
}

impl CostColumn<'_> {
    /// The exact amount of `row`, at the row's own scale.
    pub fn amount(&self, row: usize) -> Result<Decimal, ValidationError> {
        if let Some((mantissa, scale)) = self.wide.get(row) {
            return Decimal::try_from_i128_with_scale(*mantissa, *scale)
                .map_err(|_| corrupt("cost"));
        }
        let own = self.scales.get(row).map_or(self.scale, |s| u32::from(*s));
        let mantissa = self.get(row);
        let at_own = if own >= self.scale {
            10i128
                .checked_pow(own - self.scale)
                .and_then(|f| mantissa.checked_mul(f))
                .ok_or_else(|| corrupt("cost scale"))?
        } else {
            let divisor = 10i128
                .checked_pow(self.scale - own)
                .ok_or_else(|| corrupt("scale"))?;
            if mantissa % divisor != 0 {
                return Err(corrupt("cost scale"));
            }
            mantissa / divisor
        };
        Decimal::try_from_i128_with_scale(at_own, own).map_err(|_| corrupt("cost"))
    }
}

/// Reads a text column's bytes for `rows` rows, checked: every id names one of its values.
pub(crate) fn text_column(bytes: &[u8], rows: usize) -> Result<TextColumn<'_>, ValidationError> {
    let mut c = Cursor::new(bytes);
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
    let ids = c.take(rows * width)?;
    if !c.done() {
        return Err(corrupt("text column length"));
    }
    let column = TextColumn { values, width, ids };
    if column.max_id().is_some_and(|m| m >= column.values.len()) {
        return Err(corrupt("text id"));
    }
    Ok(column)
}

/// Reads a cost column's bytes for `rows` rows (see [`mod@crate::format`]): mode 0, mantissas at
/// one scale; mode 1, the same and each row's own scale; mode 2 (wide), each row's decimal.
pub(crate) fn cost_column(bytes: &[u8], rows: usize) -> Result<CostColumn<'_>, ValidationError> {
    let mut c = Cursor::new(bytes);
    let mode = c.byte()?;
    if mode == 2 {
        let mut wide = Vec::with_capacity(rows);
        for _ in 0..rows {
            let d = c.decimal()?.ok_or_else(|| corrupt("cost"))?;
            wide.push((d.mantissa(), d.scale()));
        }
        if !c.done() || rows == 0 {
            return Err(corrupt("cost column length"));
        }
        let scale = wide.iter().map(|(_, s)| *s).max().unwrap_or(0);
        return Ok(CostColumn {
            scale,
            width: 16,
            bytes: &[],
            scales: &[],
            wide,
        });
    }
    let scale = u32::from(c.byte()?);
    let width = usize::from(c.byte()?);
    if mode > 1 || scale > 28 || !matches!(width, 1 | 2 | 4 | 8 | 16) {
        return Err(corrupt("cost column"));
    }
    let mantissas = c.take(rows * width)?;
    let scales = if mode == 1 { c.take(rows)? } else { &[] };
    if !c.done() || scales.iter().any(|s| *s > 28) {
        return Err(corrupt("cost column length"));
    }
    Ok(CostColumn {
        scale,
        width,
        bytes: mantissas,
        scales,
        wide: Vec::new(),
    })
}

/// The next row of an optional decimal column.
fn next(column: &mut Option<Cursor<'_>>) -> Result<Option<Decimal>, ValidationError> {
    column.as_mut().map_or(Ok(None), Cursor::decimal)
}

pub(crate) fn days_in_month(month: NaiveDate) -> usize {
    month
        .checked_add_months(chrono::Months::new(1))
        .map_or(31, |next| {
            usize::try_from((next - month).num_days()).unwrap_or(31)
        })
}
