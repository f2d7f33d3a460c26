//! The columnar engine: dictionary-encoded dimensions, scaled-integer costs, one pass per query.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::Datelike;
use cloudbill_core::{
    AccountId, Assignment, CostRecord, Currency, Decimal, GroupId, Lookup, NaiveDate, Partition,
    ProjectId, ProviderKind, TextColumn, TextField, PARTITION_CATEGORIES, PARTITION_PROVIDERS,
};

use ethnum::I256;

use crate::{Amount, Bucket, GroupKey, Query, QueryError, Report, ReportRow, Sort};

/// A billing account as the engine needs it.
#[derive(Debug, Clone)]
pub struct CatalogAccount {
    /// Id.
    pub id: AccountId,
    /// Name shown in results.
    pub name: String,
    /// Project history, oldest first.
    pub history: Vec<Assignment>,
}

/// A project as the engine needs it.
#[derive(Debug, Clone)]
pub struct CatalogProject {
    /// Id.
    pub id: ProjectId,
    /// Name shown in results.
    pub name: String,
    /// Its group.
    pub group: Option<GroupId>,
}

/// A project group as the engine needs it.
#[derive(Debug, Clone)]
pub struct CatalogGroup {
    /// Id.
    pub id: GroupId,
    /// Name shown in results.
    pub name: String,
    /// Parent group.
    pub parent: Option<GroupId>,
}

/// Names and structure the engine resolves ids against.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    /// Billing accounts.
    pub accounts: Vec<CatalogAccount>,
    /// Projects.
    pub projects: Vec<CatalogProject>,
    /// Project groups.
    pub groups: Vec<CatalogGroup>,
}

/// The value shown for a project, group or instance type that is absent.
const NONE: &str = "(none)";
/// The project of costs whose account has no assignment for that day.
const UNASSIGNED: &str = "(unassigned)";

/// A string dictionary: value ↔ dense id.
type Dict = cloudbill_core::Interner;

/// A dictionary-encoded column, stored in the narrowest integer its cardinality allows.
#[derive(Debug, Clone)]
enum Col {
    U8(Vec<u8>),
    U16(Vec<u16>),
    U32(Vec<u32>),
}

impl Col {
    fn with_capacity(rows: usize) -> Self {
        Col::U8(Vec::with_capacity(rows))
    }

    /// Widens the column (once per width, ids only grow) until `max` fits.
    fn fit(&mut self, max: u32) {
        match self {
            Col::U8(v) if max > u32::from(u8::MAX) => {
                let values = std::mem::take(v);
                *self = if max > u32::from(u16::MAX) {
                    Col::U32(values.into_iter().map(u32::from).collect())
                } else {
                    Col::U16(values.into_iter().map(u16::from).collect())
                };
            }
            Col::U16(v) if max > u32::from(u16::MAX) => {
                *self = Col::U32(std::mem::take(v).into_iter().map(u32::from).collect());
            }
            _ => {}
        }
    }

    fn push(&mut self, id: u32) {
        self.fit(id);
        match self {
            Col::U8(v) => v.push(u8::try_from(id).unwrap_or(u8::MAX)),
            Col::U16(v) => v.push(u16::try_from(id).unwrap_or(u16::MAX)),
            Col::U32(v) => v.push(id),
        }
    }

    /// Appends `lookup[id]` for each partition row (`lookup` maps the partition's dictionary
    /// to the engine's).
    fn extend_mapped(&mut self, column: &TextColumn<'_>, lookup: &[u32]) {
        self.fit(lookup.iter().copied().max().unwrap_or(0));
        match self {
            Col::U8(v) => {
                let narrow: Vec<u8> = lookup
                    .iter()
                    .map(|x| u8::try_from(*x).unwrap_or(u8::MAX))
                    .collect();
                column.map_into(&narrow, v);
            }
            Col::U16(v) => {
                let narrow: Vec<u16> = lookup
                    .iter()
                    .map(|x| u16::try_from(*x).unwrap_or(u16::MAX))
                    .collect();
                column.map_into(&narrow, v);
            }
            Col::U32(v) => column.map_into(lookup, v),
        }
    }

    fn shrink_to_fit(&mut self) {
        match self {
            Col::U8(v) => v.shrink_to_fit(),
            Col::U16(v) => v.shrink_to_fit(),
            Col::U32(v) => v.shrink_to_fit(),
        }
    }

    /// Appends `value` `n` times.
    fn extend_repeat(&mut self, value: u32, n: usize) {
        self.fit(value);
        match self {
            Col::U8(v) => v.extend(std::iter::repeat_n(
                u8::try_from(value).unwrap_or(u8::MAX),
                n,
            )),
            Col::U16(v) => {
                v.extend(std::iter::repeat_n(
                    u16::try_from(value).unwrap_or(u16::MAX),
                    n,
                ));
            }
            Col::U32(v) => v.extend(std::iter::repeat_n(value, n)),
        }
    }

    /// Appends `lookup[i]` for each index `i` of `indexes`.
    fn extend_indexed(&mut self, indexes: &[u8], lookup: &[u32]) {
        self.fit(lookup.iter().copied().max().unwrap_or(0));
        match self {
            Col::U8(v) => v.extend(
                indexes
                    .iter()
                    .map(|i| u8::try_from(lookup[usize::from(*i)]).unwrap_or(u8::MAX)),
            ),
            Col::U16(v) => v.extend(
                indexes
                    .iter()
                    .map(|i| u16::try_from(lookup[usize::from(*i)]).unwrap_or(u16::MAX)),
            ),
            Col::U32(v) => v.extend(indexes.iter().map(|i| lookup[usize::from(*i)])),
        }
    }

    /// Calls `f(j, value)` for each row `range.start + j` of `range`, monomorphised per width.
    #[inline]
    fn for_each(&self, range: std::ops::Range<usize>, mut f: impl FnMut(usize, usize)) {
        match self {
            Col::U8(v) => v[range]
                .iter()
                .enumerate()
                .for_each(|(j, x)| f(j, usize::from(*x))),
            Col::U16(v) => v[range]
                .iter()
                .enumerate()
                .for_each(|(j, x)| f(j, usize::from(*x))),
            Col::U32(v) => v[range]
                .iter()
                .enumerate()
                .for_each(|(j, x)| f(j, *x as usize)),
        }
    }

    #[inline]
    fn get(&self, i: usize) -> usize {
        match self {
            Col::U8(v) => usize::from(v[i]),
            Col::U16(v) => usize::from(v[i]),
            Col::U32(v) => v[i] as usize,
        }
    }
}

/// Maps keyed by ids the store gave (fast hashing, no flooding concern).
type IdMap<K, V> = cloudbill_core::FxMap<K, V>;

/// Costs at one scale: `i64` when every amount fits, `i128` otherwise.
#[derive(Debug, Clone)]
enum Costs {
    Narrow(Vec<i64>),
    Wide(Vec<i128>),
}

/// Accumulates columns while an engine is built.
struct Builder {
    dicts: Dicts,
    project_group: Vec<u32>,
    account_index: IdMap<AccountId, u32>,
    account_history: Vec<Vec<(Option<NaiveDate>, u32)>>,
    unassigned: u32,
    day: Vec<i32>,
    cols: [Col; 10],
    costs: Costs,
    /// Rows whose cost does not fit an `i128` at `scale` (their column value is 0), in row
    /// order: amounts near Decimal's limit beside amounts with many decimals.
    big: Vec<(usize, I256)>,
    scale: u32,
}

impl Builder {
    fn new(catalog: &Catalog, count: usize, scale: u32) -> Self {
        let mut dicts = Dicts::default();
        // Accounts and projects get ids in catalog order, so names resolve for filters even
        // when they have no records.
        for p in &catalog.projects {
            dicts.project.id(&p.id.to_string());
        }
        let unassigned = dicts.project.id(UNASSIGNED);
        for g in &catalog.groups {
            dicts.group.id(&g.id.to_string());
        }
        let no_group = dicts.group.id(NONE);
        let group_of: HashMap<String, Option<GroupId>> = catalog
            .projects
            .iter()
            .map(|p| (p.id.to_string(), p.group))
            .collect();
        let project_group = dicts
            .project
            .values()
            .iter()
            .map(|pid| {
                group_of
                    .get(pid)
                    .copied()
                    .flatten()
                    .and_then(|g| dicts.group.get(&g.to_string()))
                    .unwrap_or(no_group)
            })
            .collect();
        let mut account_index = IdMap::default();
        let mut account_history = Vec::new();
        for a in &catalog.accounts {
            let idx = dicts.account.id(&a.id.to_string());
            account_index.insert(a.id, idx);
            account_history.push(
                a.history
                    .iter()
                    .map(|h| {
                        (
                            h.from,
                            dicts
                                .project
                                .get(&h.project.to_string())
                                .unwrap_or(unassigned),
                        )
                    })
                    .collect(),
            );
        }
        Self {
            dicts,
            project_group,
            account_index,
            account_history,
            unassigned,
            day: Vec::with_capacity(count),
            cols: std::array::from_fn(|_| Col::with_capacity(count)),
            costs: Costs::Narrow(Vec::with_capacity(count)),
            big: Vec::new(),
            scale,
        }
    }

    /// The dictionary id of an account; one the catalog does not know still counts
    /// (consolidated), as "(unassigned)".
    fn account(&mut self, id: AccountId) -> u32 {
        if let Some(a) = self.account_index.get(&id) {
            return *a;
        }
        let idx = self.dicts.account.id(&id.to_string());
        self.account_index.insert(id, idx);
        idx
    }

    /// The project `account` was assigned to on `date` ("(unassigned)" for none).
    fn project_on(&self, account: u32, date: NaiveDate) -> u32 {
        self.account_history
            .get(account as usize)
            .and_then(|steps| {
                steps
                    .iter()
                    .rev()
                    .find(|(from, _)| from.is_none_or(|f| f <= date))
            })
            .map_or(self.unassigned, |(_, p)| *p)
    }

    /// The dictionary of engine column `slot` (2–9).
    fn dict_for(&mut self, slot: usize) -> &mut Dict {
        match slot {
            2 => &mut self.dicts.provider,
            3 => &mut self.dicts.cloud_account,
            4 => &mut self.dicts.region,
            5 => &mut self.dicts.service,
            6 => &mut self.dicts.usage_type,
            7 => &mut self.dicts.instance_type,
            8 => &mut self.dicts.currency,
            _ => &mut self.dicts.category,
        }
    }

    /// Appends a row. `ids`: provider, cloud account, region, service, usage type, instance
    /// type, currency, category.
    fn push(&mut self, day: i32, date: NaiveDate, account: u32, ids: [u32; 8], cost: I256) {
        let project = self.project_on(account, date);
        self.day.push(day);
        self.cols[0].push(account);
        self.cols[1].push(project);
        for (col, id) in self.cols[2..].iter_mut().zip(ids) {
            col.push(id);
        }
        self.push_wide(cost);
    }

    /// Appends a cost that may not fit an `i128` at the engine's scale.
    fn push_wide(&mut self, cost: I256) {
        match i128::try_from(cost) {
            Ok(v) => self.push_cost(v),
            Err(_) => {
                self.big.push((self.costs_len(), cost));
                self.push_cost(0);
            }
        }
    }

    fn costs_len(&self) -> usize {
        match &self.costs {
            Costs::Narrow(c) => c.len(),
            Costs::Wide(c) => c.len(),
        }
    }

    /// Appends a cost (at the engine's scale), widening the column when one needs it.
    fn push_cost(&mut self, cost: i128) {
        match &mut self.costs {
            Costs::Narrow(c) => match i64::try_from(cost) {
                Ok(x) => c.push(x),
                Err(_) => {
                    let mut wide: Vec<i128> = c.iter().map(|x| i128::from(*x)).collect();
                    wide.push(cost);
                    self.costs = Costs::Wide(wide);
                }
            },
            Costs::Wide(c) => c.push(cost),
        }
    }

    /// The engine; `months` as the loader tracked them, or found from the (month-sorted) days.
    fn finish(self, catalog: Catalog, months: Option<Vec<(i32, usize)>>) -> Engine {
        let Builder {
            dicts,
            project_group,
            day,
            cols,
            costs,
            big,
            scale,
            ..
        } = self;
        let [mut account, mut project, mut provider, mut cloud_account, mut region, mut service, mut usage_type, mut instance_type, mut currency, mut category] =
            cols;
        // Columns grew by doubling: give the slack back (the engine lives long).
        let (mut day, mut costs) = (day, costs);
        day.shrink_to_fit();
        for col in [
            &mut account,
            &mut project,
            &mut provider,
            &mut cloud_account,
            &mut region,
            &mut service,
            &mut usage_type,
            &mut instance_type,
            &mut currency,
            &mut category,
        ] {
            col.shrink_to_fit();
        }
        match &mut costs {
            Costs::Narrow(c) => c.shrink_to_fit(),
            Costs::Wide(c) => c.shrink_to_fit(),
        }
        let months = months.unwrap_or_else(|| month_starts(&day));
        Engine {
            day,
            months,
            account,
            project,
            provider,
            cloud_account,
            region,
            service,
            usage_type,
            instance_type,
            currency,
            category,
            costs,
            big,
            scale,
            dicts,
            project_group,
            catalog,
            skipped: [false; 10],
        }
    }

    /// Raises the engine's scale to `scale`, multiplying every cost held so far.
    fn rescale(&mut self, scale: u32) -> Result<(), QueryError> {
        if scale <= self.scale {
            return Ok(());
        }
        // Scales are at most 28 (Decimal's), so the factor fits an i128.
        let factor = 10i128
            .checked_pow(scale - self.scale)
            .ok_or(QueryError::Overflow)?;
        let old = std::mem::replace(&mut self.costs, Costs::Narrow(Vec::new()));
        let values: Vec<i128> = match old {
            Costs::Narrow(c) => c.into_iter().map(i128::from).collect(),
            Costs::Wide(c) => c,
        };
        let mut big = std::mem::take(&mut self.big).into_iter().peekable();
        self.scale = scale;
        for (row, v) in values.into_iter().enumerate() {
            match big.next_if(|(r, _)| *r == row) {
                Some((_, wide)) => self.push_wide(wide * I256::from(factor)),
                None => match v.checked_mul(factor) {
                    Some(v) => self.push_cost(v),
                    None => self.push_wide(I256::from(v) * I256::from(factor)),
                },
            }
        }
        Ok(())
    }
}

/// `(first day of the month, first row)` at every month change of a month-sorted day column.
fn month_starts(day: &[i32]) -> Vec<(i32, usize)> {
    let mut out: Vec<(i32, usize)> = Vec::new();
    for (i, d) in day.iter().enumerate() {
        let month = month_of(*d);
        if out.last().is_none_or(|(m, _)| *m != month) {
            out.push((month, i));
        }
    }
    out
}

/// The first day (days since CE) of the month holding day `d`.
fn month_of(d: i32) -> i32 {
    NaiveDate::from_num_days_from_ce_opt(d)
        .and_then(|n| n.with_day(1))
        .map_or(d, day_number)
}

/// Builds an [`Engine`] from partitions fed one at a time ([`Engine::loader`]).
pub struct EngineLoader {
    b: Builder,
    catalog: Catalog,
    months: Vec<(i32, usize)>,
    providers: [u32; 2],
    categories: [u32; 5],
    /// Engine column slots (3–7) left out ([`EngineLoader::only`]).
    skipped: [bool; 10],
}

impl std::fmt::Debug for EngineLoader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineLoader")
            .field("rows", &self.b.day.len())
            .field("months", &self.months.len())
            .finish_non_exhaustive()
    }
}

/// The engine column slot of a text dimension the loader may leave out.
fn optional_slot(key: GroupKey) -> Option<usize> {
    match key {
        GroupKey::CloudAccount => Some(3),
        GroupKey::Region => Some(4),
        GroupKey::Service => Some(5),
        GroupKey::UsageType => Some(6),
        GroupKey::InstanceType => Some(7),
        _ => None,
    }
}

impl EngineLoader {
    /// Loads only the dimensions `keys` need (plus days, costs, currencies, accounts, projects,
    /// providers and categories, which are cheap): an engine built for one known query, as
    /// the CLI's, skips reading the other text columns. The engine refuses a query that needs
    /// a dimension it left out.
    #[must_use]
    pub fn only(mut self, keys: &[GroupKey]) -> Self {
        for slot in 3..=7 {
            self.skipped[slot] = true;
        }
        for key in keys {
            if let Some(slot) = optional_slot(*key) {
                self.skipped[slot] = false;
            }
        }
        self
    }

    /// Adds one partition of `account`. Partitions must come in month order (the store's);
    /// several of one month and account (segments) may follow each other.
    pub fn add(&mut self, account: AccountId, blob: &[u8]) -> Result<(), QueryError> {
        let corrupt = |e: cloudbill_core::ValidationError| QueryError::Corrupt(e.to_string());
        let p = Partition::decode(blob).map_err(corrupt)?;
        let costs = p.costs().map_err(corrupt)?;
        let month = day_number(p.month);
        match self.months.last() {
            Some((last, _)) if *last > month => {
                return Err(QueryError::Corrupt(
                    "partitions arrived out of month order".into(),
                ))
            }
            Some((last, _)) if *last == month => {}
            _ => self.months.push((month, self.b.day.len())),
        }
        let b = &mut self.b;
        b.rescale(costs.scale)?;
        let account = b.account(account);
        // The project of each day of the month, looked up once per day.
        let mut project_of_day = [0u32; 32];
        for (d, slot) in project_of_day.iter_mut().enumerate().skip(1) {
            if let Some(date) = p.month.with_day(u32::try_from(d).unwrap_or(1)) {
                *slot = b.project_on(account, date);
            }
        }
        let days = p.days();
        b.day.extend(days.iter().map(|d| month + i32::from(*d) - 1));
        b.cols[0].extend_repeat(account, p.rows);
        b.cols[1].extend_indexed(days, &project_of_day);
        b.cols[2].extend_indexed(p.providers(), &self.providers);
        // Partition text column → engine column slot.
        for (field, slot) in [
            (TextField::CloudAccount, 3),
            (TextField::Region, 4),
            (TextField::Service, 5),
            (TextField::UsageType, 6),
            (TextField::InstanceType, 7),
            (TextField::Currency, 8),
        ] {
            if self.skipped[slot] {
                continue;
            }
            let column = p.text(field).map_err(corrupt)?;
            let lookup: Vec<u32> = column
                .values
                .iter()
                .map(|v| b.dict_for(slot).id(v))
                .collect();
            b.cols[slot].extend_mapped(&column, &lookup);
        }
        b.cols[9].extend_indexed(p.categories(), &self.categories);
        let factor = 10i128
            .checked_pow(b.scale - costs.scale)
            .ok_or(QueryError::Overflow)?;
        costs.for_each(|m| match m.checked_mul(factor) {
            Some(v) => b.push_cost(v),
            None => b.push_wide(I256::from(m) * I256::from(factor)),
        });
        Ok(())
    }

    /// The engine.
    pub fn finish(self) -> Engine {
        let mut engine = self.b.finish(self.catalog, Some(self.months));
        engine.skipped = self.skipped;
        engine
    }
}

/// An in-memory, columnar copy of cost records, ready to answer queries.
#[derive(Debug, Clone)]
pub struct Engine {
    /// Days since CE; rows are sorted by month (by day within a month only for `build`).
    day: Vec<i32>,
    /// `(first day of the month, first row)` per month, ascending: the scan's range bounds.
    months: Vec<(i32, usize)>,
    account: Col,
    project: Col,
    provider: Col,
    cloud_account: Col,
    region: Col,
    service: Col,
    usage_type: Col,
    instance_type: Col,
    currency: Col,
    category: Col,
    costs: Costs,
    /// Rows whose cost leaves `i128` at `scale` (see `Builder::big`).
    big: Vec<(usize, I256)>,
    scale: u32,
    dicts: Dicts,
    /// Group index of each project id (index into `dicts.group`).
    project_group: Vec<u32>,
    catalog: Catalog,
    /// Column slots a loader left out ([`EngineLoader::only`]).
    skipped: [bool; 10],
}

#[derive(Debug, Clone, Default)]
struct Dicts {
    account: Dict,
    project: Dict,
    group: Dict,
    provider: Dict,
    cloud_account: Dict,
    region: Dict,
    service: Dict,
    usage_type: Dict,
    instance_type: Dict,
    currency: Dict,
    category: Dict,
}

fn day_number(d: NaiveDate) -> i32 {
    d.num_days_from_ce()
}

/// `amount` as an integer at `scale` (≥ its own scale, ≤ 28): exact whatever its size.
fn scaled(amount: Decimal, scale: u32) -> I256 {
    let shift = scale.saturating_sub(amount.scale());
    I256::from(amount.mantissa()) * I256::from(10i128.pow(shift))
}

/// The exact decimal of `v` at `scale`, trailing zeros dropped while it does not fit;
/// `None` when no Decimal holds it exactly (more than 96 bits of significant digits).
fn wide_to_decimal(mut v: I256, mut scale: u32) -> Option<Decimal> {
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

impl Engine {
    /// Builds the engine from records and the catalog that names them.
    pub fn build(records: &[CostRecord], catalog: Catalog) -> Result<Self, QueryError> {
        // Sort by day through a compact key vector (cache-friendly, stable by input order).
        let mut order: Vec<(i32, u32)> = records
            .iter()
            .enumerate()
            .map(|(i, r)| (day_number(r.date), u32::try_from(i).unwrap_or(u32::MAX)))
            .collect();
        order.sort_unstable();
        let scale = records
            .iter()
            .map(|r| r.cost.amount().scale())
            .max()
            .unwrap_or(0);
        let mut b = Builder::new(&catalog, records.len(), scale);
        for (d, i) in order {
            let r = &records[i as usize];
            let account = b.account(r.service_account);
            let ids = [
                b.dicts.provider.id(r.provider.as_str()),
                b.dicts.cloud_account.id(&r.cloud_account),
                b.dicts.region.id(&r.region),
                b.dicts.service.id(&r.service),
                b.dicts.usage_type.id(&r.usage_type),
                b.dicts
                    .instance_type
                    .id(r.instance_type.as_deref().unwrap_or("")),
                b.dicts.currency.id(r.cost.currency_str()),
                b.dicts.category.id(r.charge_category.as_str()),
            ];
            b.push(d, r.date, account, ids, scaled(r.cost.amount(), scale));
        }
        Ok(b.finish(catalog, None))
    }

    /// Builds the engine from the store's columnar partitions (`(account, blob)` pairs, in any
    /// order), without materialising a single `CostRecord`.
    pub fn from_partitions(
        parts: &[(AccountId, Vec<u8>)],
        catalog: Catalog,
    ) -> Result<Self, QueryError> {
        let mut ordered = Vec::with_capacity(parts.len());
        for (account, blob) in parts {
            let p = Partition::decode(blob).map_err(|e| QueryError::Corrupt(e.to_string()))?;
            ordered.push((p.month, *account, blob));
        }
        ordered.sort_by_key(|(month, account, _)| (*month, *account));
        let mut loader = Engine::loader(catalog);
        for (_, account, blob) in ordered {
            loader.add(account, blob)?;
        }
        Ok(loader.finish())
    }

    /// An engine built one partition at a time, as the store streams them in month order:
    /// only the engine's own columns are held, never the partitions.
    pub fn loader(catalog: Catalog) -> EngineLoader {
        let mut b = Builder::new(&catalog, 0, 0);
        let providers = PARTITION_PROVIDERS.map(|kind| b.dicts.provider.id(kind.as_str()));
        let categories = PARTITION_CATEGORIES.map(|c| b.dicts.category.id(c.as_str()));
        EngineLoader {
            b,
            catalog,
            months: Vec::new(),
            providers,
            categories,
            skipped: [false; 10],
        }
    }

    /// The catalog the engine resolves names against.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Number of records held.
    pub fn len(&self) -> usize {
        self.day.len()
    }

    /// Whether the engine holds no record.
    pub fn is_empty(&self) -> bool {
        self.day.is_empty()
    }

    fn column(&self, key: GroupKey) -> &Col {
        match key {
            GroupKey::Provider => &self.provider,
            GroupKey::Project | GroupKey::ProjectGroup => &self.project,
            GroupKey::ServiceAccount => &self.account,
            GroupKey::CloudAccount => &self.cloud_account,
            GroupKey::Region => &self.region,
            GroupKey::Service => &self.service,
            GroupKey::UsageType => &self.usage_type,
            GroupKey::InstanceType => &self.instance_type,
            GroupKey::Currency => &self.currency,
            GroupKey::ChargeCategory => &self.category,
        }
    }

    fn dict(&self, key: GroupKey) -> &Dict {
        match key {
            GroupKey::Provider => &self.dicts.provider,
            GroupKey::Project => &self.dicts.project,
            GroupKey::ProjectGroup => &self.dicts.group,
            GroupKey::ServiceAccount => &self.dicts.account,
            GroupKey::CloudAccount => &self.dicts.cloud_account,
            GroupKey::Region => &self.dicts.region,
            GroupKey::Service => &self.dicts.service,
            GroupKey::UsageType => &self.dicts.usage_type,
            GroupKey::InstanceType => &self.dicts.instance_type,
            GroupKey::Currency => &self.dicts.currency,
            GroupKey::ChargeCategory => &self.dicts.category,
        }
    }

    /// The values of `key`'s dictionary as shown in results: names for projects, groups and
    /// accounts (their dictionaries hold ids), `(none)` for an empty instance type.
    fn display_names(&self, key: GroupKey) -> Vec<String> {
        let by_id: HashMap<String, &str> = match key {
            GroupKey::Project => self
                .catalog
                .projects
                .iter()
                .map(|p| (p.id.to_string(), p.name.as_str()))
                .collect(),
            GroupKey::ProjectGroup => self
                .catalog
                .groups
                .iter()
                .map(|g| (g.id.to_string(), g.name.as_str()))
                .collect(),
            GroupKey::ServiceAccount => self
                .catalog
                .accounts
                .iter()
                .map(|a| (a.id.to_string(), a.name.as_str()))
                .collect(),
            _ => HashMap::new(),
        };
        self.dict(key)
            .values()
            .iter()
            .map(|raw| match key {
                GroupKey::InstanceType if raw.is_empty() => NONE.to_owned(),
                _ => by_id
                    .get(raw)
                    .map_or_else(|| raw.clone(), |n| (*n).to_owned()),
            })
            .collect()
    }

    /// Allowed dictionary ids of the project column for a filter on `key` (project, group or
    /// account names/ids are resolved against the catalog).
    fn allowed(&self, key: GroupKey, values: &[String]) -> Result<Vec<bool>, QueryError> {
        let unknown = |what: &'static str, value: &str| QueryError::UnknownFilterValue {
            what,
            value: value.to_owned(),
        };
        match key {
            GroupKey::Project => {
                let mut allowed = vec![false; self.dicts.project.len()];
                for v in values {
                    let p = self
                        .catalog
                        .projects
                        .iter()
                        .find(|p| Lookup::parse(v).matches(&p.name, p.id.as_uuid()))
                        .ok_or_else(|| unknown("project", v))?;
                    if let Some(id) = self.dicts.project.get(&p.id.to_string()) {
                        allowed[id as usize] = true;
                    }
                }
                Ok(allowed)
            }
            GroupKey::ProjectGroup => {
                // A group filter selects the projects in that group or any group below it.
                let mut selected: BTreeSet<GroupId> = BTreeSet::new();
                for v in values {
                    let g = self
                        .catalog
                        .groups
                        .iter()
                        .find(|g| Lookup::parse(v).matches(&g.name, g.id.as_uuid()))
                        .ok_or_else(|| unknown("project_group", v))?;
                    selected.insert(g.id);
                }
                loop {
                    let before = selected.len();
                    for g in &self.catalog.groups {
                        if g.parent.is_some_and(|p| selected.contains(&p)) {
                            selected.insert(g.id);
                        }
                    }
                    if selected.len() == before {
                        break;
                    }
                }
                let mut allowed = vec![false; self.dicts.project.len()];
                for p in &self.catalog.projects {
                    if p.group.is_some_and(|g| selected.contains(&g)) {
                        if let Some(id) = self.dicts.project.get(&p.id.to_string()) {
                            allowed[id as usize] = true;
                        }
                    }
                }
                Ok(allowed)
            }
            GroupKey::ServiceAccount => {
                let mut allowed = vec![false; self.dicts.account.len()];
                for v in values {
                    let a = self
                        .catalog
                        .accounts
                        .iter()
                        .find(|a| Lookup::parse(v).matches(&a.name, a.id.as_uuid()))
                        .ok_or_else(|| unknown("service_account", v))?;
                    if let Some(id) = self.dicts.account.get(&a.id.to_string()) {
                        allowed[id as usize] = true;
                    }
                }
                Ok(allowed)
            }
            GroupKey::Provider => {
                let mut allowed = vec![false; self.dicts.provider.len()];
                for v in values {
                    let kind: ProviderKind = v.parse().map_err(|_| unknown("provider", v))?;
                    if let Some(id) = self.dicts.provider.get(kind.as_str()) {
                        allowed[id as usize] = true;
                    }
                }
                Ok(allowed)
            }
            _ => {
                let dict = self.dict(key);
                let mut allowed = vec![false; dict.len()];
                for v in values {
                    let lookup = if key == GroupKey::Currency {
                        v.trim().to_ascii_uppercase()
                    } else {
                        v.clone()
                    };
                    if let Some(id) = dict.get(&lookup) {
                        allowed[id as usize] = true;
                    }
                }
                Ok(allowed)
            }
        }
    }

    /// Answers `query` exactly.
    #[allow(clippy::too_many_lines)] // Filter, scan, decode, sort: one pass kept in one place.
    pub fn query(&self, query: &Query) -> Result<Report, QueryError> {
        if query.limit == Some(0) {
            return Err(QueryError::ZeroLimit);
        }
        if let Some(key) = query
            .group_by
            .iter()
            .chain(query.filters.keys())
            .find(|k| optional_slot(**k).is_some_and(|slot| self.skipped[slot]))
        {
            return Err(QueryError::NotLoaded(key.to_string()));
        }
        let start = day_number(query.range.start());
        let end = day_number(query.range.end());

        // Time buckets of the range.
        let mut labels: Vec<String> = Vec::new();
        let mut bucket_of_day: Vec<u32> =
            Vec::with_capacity(usize::try_from(end - start).unwrap_or(0));
        let mut last_start = None;
        for d in query.range.iter_days() {
            let b = query.granularity.bucket_start(d);
            if last_start != Some(b) {
                labels.push(query.granularity.label(d));
                last_start = Some(b);
            }
            bucket_of_day.push(u32::try_from(labels.len() - 1).unwrap_or(u32::MAX));
        }

        // Filters, as (column, allowed ids). Group filters apply to the project column.
        let mut filters: Vec<(&Col, Vec<bool>)> = Vec::new();
        for (key, values) in &query.filters {
            let col_key = if *key == GroupKey::ProjectGroup {
                GroupKey::Project
            } else {
                *key
            };
            filters.push((self.column(col_key), self.allowed(*key, values)?));
        }

        // Group dimensions: column, an optional id mapping (project → its group), radix.
        let dims: Vec<Dim<'_>> = query
            .group_by
            .iter()
            .map(|k| {
                if *k == GroupKey::ProjectGroup {
                    Dim {
                        col: self.column(*k),
                        map: Some(&self.project_group),
                        radix: self.dicts.group.len().max(1) as u128,
                    }
                } else {
                    Dim {
                        col: self.column(*k),
                        map: None,
                        radix: self.dict(*k).len().max(1) as u128,
                    }
                }
            })
            .collect();
        let n_currency = self.dicts.currency.len().max(1) as u128;
        let n_buckets = labels.len().max(1) as u128;
        let mut cells: u128 = n_buckets * n_currency;
        for d in &dims {
            cells = cells.checked_mul(d.radix).ok_or(QueryError::Overflow)?;
        }

        // Rows are month-sorted: bound the scan by months, then check days per row.
        let first = self.months.partition_point(|(m, _)| *m < month_of(start));
        let last = self.months.partition_point(|(m, _)| *m < end);
        let lo = self
            .months
            .get(first)
            .map_or(self.day.len(), |(_, row)| *row);
        let hi = self
            .months
            .get(last)
            .map_or(self.day.len(), |(_, row)| *row);
        let layout = Layout {
            dims: &dims,
            filters: &filters,
            bucket_of_day: &bucket_of_day,
            start,
            end,
            n_buckets,
            n_currency,
        };
        // The dense scan sums in i128; rows beyond i128 in the range, or an i128 sum that
        // overflows, send the query down the sparse scan's 256-bit sums (exact at any size).
        let has_big = self.big.iter().any(|(row, _)| (lo..hi).contains(row));
        let dense = usize::try_from(cells)
            .ok()
            .filter(|c| *c <= 1 << 22 && !has_big);
        let dense_sums = match dense {
            Some(dense_cells) => match &self.costs {
                Costs::Narrow(c) => {
                    self.scan_dense(lo, hi, &layout, dense_cells, false, |i| i128::from(c[i]))
                }
                Costs::Wide(c) => self.scan_dense(lo, hi, &layout, dense_cells, true, |i| c[i]),
            },
            None => None,
        };
        let sums: Vec<(u128, I256)> = match dense_sums {
            Some(sums) => sums,
            None => match &self.costs {
                Costs::Narrow(c) => self.scan_sparse(lo, hi, &layout, |i| i128::from(c[i])),
                Costs::Wide(c) => self.scan_sparse(lo, hi, &layout, |i| c[i]),
            },
        };

        // Decode cells into rows.
        let mut rows: BTreeMap<Vec<u32>, RowAcc> = BTreeMap::new();
        for (mut key, sum) in sums {
            let currency = u32::try_from(key % n_currency).unwrap_or(0);
            key /= n_currency;
            let bucket = u32::try_from(key % n_buckets).unwrap_or(0);
            key /= n_buckets;
            let mut group = vec![0u32; dims.len()];
            for (slot, d) in group.iter_mut().zip(&dims).rev() {
                *slot = u32::try_from(key % d.radix).unwrap_or(0);
                key /= d.radix;
            }
            let entry = rows
                .entry(group.clone())
                .or_insert_with(|| (group, BTreeMap::new()));
            *entry.1.entry((bucket, currency)).or_insert(I256::ZERO) += sum;
        }

        let scale = self.scale;
        // Currencies per dictionary id, parsed once per query.
        let currencies: Vec<Currency> = self
            .dicts
            .currency
            .values()
            .iter()
            .map(|c| Currency::parse(c).unwrap_or(Currency::USD))
            .collect();
        let currency_of = |id: u32| -> Currency {
            currencies
                .get(id as usize)
                .copied()
                .unwrap_or(Currency::USD)
        };
        // Display names per group-by key, resolved once per query (not once per cell).
        let names: Vec<Vec<String>> = query
            .group_by
            .iter()
            .map(|k| self.display_names(*k))
            .collect();
        let mut results: Vec<(ReportRow, Vec<(Currency, I256)>)> = Vec::with_capacity(rows.len());
        for (_, (group_ids, cells)) in rows {
            let mut group = BTreeMap::new();
            for ((k, id), shown) in query.group_by.iter().zip(&group_ids).zip(&names) {
                group.insert(
                    k.as_str().to_owned(),
                    shown.get(*id as usize).cloned().unwrap_or_default(),
                );
            }
            // A sum no Decimal holds fails this query (only), naming where it is.
            let to_decimal = |v: I256, date: &str, currency: Currency| {
                wide_to_decimal(v, scale).ok_or_else(|| QueryError::TotalOutOfRange {
                    group: if group.is_empty() {
                        "the consolidated billing".to_owned()
                    } else {
                        group
                            .iter()
                            .map(|(k, v)| format!("{k}={v}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    },
                    date: date.to_owned(),
                    currency,
                })
            };
            let mut totals: BTreeMap<Currency, I256> = BTreeMap::new();
            let mut billing_data = Vec::with_capacity(cells.len());
            for ((bucket, currency), sum) in cells {
                let c = currency_of(currency);
                *totals.entry(c).or_insert(I256::ZERO) += sum;
                let date = labels.get(bucket as usize).cloned().unwrap_or_default();
                billing_data.push(Bucket {
                    cost: to_decimal(sum, &date, c)?,
                    date,
                    currency: c,
                });
            }
            let total = totals
                .iter()
                .map(|(c, v)| {
                    Ok(Amount {
                        cost: to_decimal(*v, "the whole range", *c)?,
                        currency: *c,
                    })
                })
                .collect::<Result<Vec<_>, QueryError>>()?;
            results.push((
                ReportRow {
                    group,
                    billing_data,
                    total,
                },
                totals.into_iter().collect(),
            ));
        }
        match query.sort {
            Sort::Total => results.sort_by(|a, b| {
                let ta = a.1.iter().map(|x| x.1).max().unwrap_or(I256::ZERO);
                let tb = b.1.iter().map(|x| x.1).max().unwrap_or(I256::ZERO);
                tb.cmp(&ta).then_with(|| a.0.group.cmp(&b.0.group))
            }),
            Sort::Key => results.sort_by(|a, b| {
                let ka: Vec<&String> = query
                    .group_by
                    .iter()
                    .filter_map(|k| a.0.group.get(k.as_str()))
                    .collect();
                let kb: Vec<&String> = query
                    .group_by
                    .iter()
                    .filter_map(|k| b.0.group.get(k.as_str()))
                    .collect();
                ka.cmp(&kb)
            }),
        }
        let total_count = results.len();
        let mut results: Vec<ReportRow> = results.into_iter().map(|r| r.0).collect();
        if let Some(limit) = query.limit {
            results.truncate(limit as usize);
        }
        Ok(Report {
            start: query.range.start().format("%Y-%m-%d").to_string(),
            end: query.range.end().format("%Y-%m-%d").to_string(),
            granularity: query.granularity,
            group_by: query.group_by.clone(),
            results,
            total_count,
        })
    }
}

/// Rows per chunk of the column-at-a-time scan (fits L1 with its key and mask buffers).
const CHUNK: usize = 4096;

/// One group-by dimension of a query.
struct Dim<'a> {
    col: &'a Col,
    /// Maps the column's ids to group ids (project → project group), when not the identity.
    map: Option<&'a [u32]>,
    radix: u128,
}

/// What a scan needs to turn a record into its cell.
struct Layout<'a> {
    dims: &'a [Dim<'a>],
    filters: &'a [(&'a Col, Vec<bool>)],
    bucket_of_day: &'a [u32],
    start: i32,
    end: i32,
    n_buckets: u128,
    n_currency: u128,
}

impl Engine {
    #[inline]
    fn passes(layout: &Layout<'_>, i: usize) -> bool {
        layout
            .filters
            .iter()
            .all(|(col, allowed)| allowed.get(col.get(i)).copied().unwrap_or(false))
    }

    #[inline]
    fn group_key(layout: &Layout<'_>, i: usize) -> u128 {
        let mut key: u128 = 0;
        for d in layout.dims {
            let v = d.col.get(i);
            let v = d.map.map_or(v, |m| m[v] as usize);
            key = key * d.radix + v as u128;
        }
        key
    }

    fn scan_dense(
        &self,
        lo: usize,
        hi: usize,
        layout: &Layout<'_>,
        cells: usize,
        checked: bool,
        cost: impl Fn(usize) -> i128,
    ) -> Option<Vec<(u128, I256)>> {
        // Strides: currency innermost, then bucket, then the dims in reverse order.
        let n_currency = usize::try_from(layout.n_currency).unwrap_or(1);
        let bucket_stride = n_currency;
        let mut stride = n_currency * usize::try_from(layout.n_buckets).unwrap_or(1);
        let mut strides = vec![0usize; layout.dims.len()];
        for (s, d) in strides.iter_mut().zip(layout.dims).rev() {
            *s = stride;
            stride *= usize::try_from(d.radix).unwrap_or(1);
        }
        let mut sums = vec![0i128; cells];
        let mut touched = vec![false; cells];
        let mut overflow = false;
        // Column at a time over chunks: each pass is a tight loop over one typed slice.
        let mut keys = vec![0usize; CHUNK];
        let mut keep = vec![true; CHUNK];
        let mut chunk_start = lo;
        while chunk_start < hi {
            let n = CHUNK.min(hi - chunk_start);
            let range = chunk_start..chunk_start + n;
            let keys = &mut keys[..n];
            let keep = &mut keep[..n];
            for (k, d) in keep.iter_mut().zip(&self.day[range.clone()]) {
                *k = (layout.start..layout.end).contains(d);
            }
            for (col, allowed) in layout.filters {
                col.for_each(range.clone(), |j, v| {
                    keep[j] &= allowed.get(v).copied().unwrap_or(false);
                });
            }
            for (k, d) in keys.iter_mut().zip(&self.day[range.clone()]) {
                let day = usize::try_from(*d - layout.start).unwrap_or(0);
                *k = layout.bucket_of_day.get(day).copied().unwrap_or(0) as usize * bucket_stride;
            }
            self.currency.for_each(range.clone(), |j, v| keys[j] += v);
            for (d, stride) in layout.dims.iter().zip(&strides) {
                match d.map {
                    None => d.col.for_each(range.clone(), |j, v| keys[j] += v * stride),
                    Some(m) => d
                        .col
                        .for_each(range.clone(), |j, v| keys[j] += m[v] as usize * stride),
                }
            }
            if checked {
                for (j, k) in keys.iter().enumerate() {
                    if keep[j] {
                        let (v, o) = sums[*k].overflowing_add(cost(chunk_start + j));
                        sums[*k] = v;
                        overflow |= o;
                        touched[*k] = true;
                    }
                }
            } else {
                // i64 inputs: fewer than 2^64 of them cannot overflow an i128 sum.
                for (j, k) in keys.iter().enumerate() {
                    if keep[j] {
                        sums[*k] += cost(chunk_start + j);
                        touched[*k] = true;
                    }
                }
            }
            chunk_start += n;
        }
        if overflow {
            return None; // the caller sums again in 256 bits
        }
        Some(
            touched
                .iter()
                .enumerate()
                .filter(|(_, t)| **t)
                .map(|(k, _)| (k as u128, I256::from(sums[k])))
                .collect(),
        )
    }

    fn scan_sparse(
        &self,
        lo: usize,
        hi: usize,
        layout: &Layout<'_>,
        cost: impl Fn(usize) -> i128,
    ) -> Vec<(u128, I256)> {
        // 256-bit sums: rows at Decimal's limit at any scale, over any number of rows, stay
        // exact; only a total no Decimal can hold fails, and only the queries that include it.
        let mut sums: HashMap<u128, I256> = HashMap::new();
        let first_big = self.big.partition_point(|(row, _)| *row < lo);
        let mut big = self.big[first_big..].iter().peekable();
        for i in lo..hi {
            let wide = big.next_if(|(row, _)| *row == i).map(|(_, v)| *v);
            if !(layout.start..layout.end).contains(&self.day[i]) || !Self::passes(layout, i) {
                continue;
            }
            let day = usize::try_from(self.day[i] - layout.start).unwrap_or(0);
            let key = (Self::group_key(layout, i) * layout.n_buckets
                + u128::from(layout.bucket_of_day[day]))
                * layout.n_currency
                + self.currency.get(i) as u128;
            *sums.entry(key).or_insert(I256::ZERO) += wide.unwrap_or_else(|| I256::from(cost(i)));
        }
        sums.into_iter().collect()
    }
}

/// A result row being assembled: group ids and sums per (bucket, currency).
type RowAcc = (Vec<u32>, BTreeMap<(u32, u32), I256>);
