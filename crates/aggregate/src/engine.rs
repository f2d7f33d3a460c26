//! The columnar engine: dictionary-encoded dimensions, scaled-integer costs, one pass per query.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::Datelike;
use cloudbill_core::{
    AccountId, Assignment, CostRecord, Currency, Decimal, GroupId, NaiveDate, ProjectId,
    ProviderKind, ServiceAccount,
};

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
#[derive(Debug, Clone, Default)]
struct Dict {
    ids: HashMap<String, u32>,
    values: Vec<String>,
}

impl Dict {
    fn id(&mut self, value: &str) -> u32 {
        if let Some(id) = self.ids.get(value) {
            return *id;
        }
        let id = u32::try_from(self.values.len()).unwrap_or(u32::MAX);
        self.ids.insert(value.to_owned(), id);
        self.values.push(value.to_owned());
        id
    }

    fn len(&self) -> usize {
        self.values.len()
    }
}

/// Costs at one scale: `i64` when every amount fits, `i128` otherwise.
#[derive(Debug, Clone)]
enum Costs {
    Narrow(Vec<i64>),
    Wide(Vec<i128>),
}

/// An in-memory, columnar copy of cost records, ready to answer queries.
#[derive(Debug, Clone)]
pub struct Engine {
    /// Days since CE, ascending.
    day: Vec<i32>,
    account: Vec<u32>,
    project: Vec<u32>,
    provider: Vec<u32>,
    cloud_account: Vec<u32>,
    region: Vec<u32>,
    service: Vec<u32>,
    usage_type: Vec<u32>,
    instance_type: Vec<u32>,
    currency: Vec<u32>,
    category: Vec<u32>,
    costs: Costs,
    scale: u32,
    dicts: Dicts,
    /// Group index of each project id (index into `dicts.group`).
    project_group: Vec<u32>,
    catalog: Catalog,
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

fn scaled(amount: Decimal, scale: u32) -> Option<i128> {
    let mantissa = amount.mantissa();
    let factor = 10i128.checked_pow(scale.checked_sub(amount.scale())?)?;
    mantissa.checked_mul(factor)
}

impl Engine {
    /// Builds the engine from records and the catalog that names them.
    #[allow(clippy::too_many_lines)] // One column push per field; splitting would scatter them.
    pub fn build(records: &[CostRecord], catalog: Catalog) -> Result<Self, QueryError> {
        let mut dicts = Dicts::default();
        // Accounts and projects get ids in catalog order, so names resolve for filters even
        // when they have no records.
        let account_names: HashMap<AccountId, &str> = catalog
            .accounts
            .iter()
            .map(|a| (a.id, a.name.as_str()))
            .collect();
        let histories: HashMap<AccountId, &[Assignment]> = catalog
            .accounts
            .iter()
            .map(|a| (a.id, a.history.as_slice()))
            .collect();
        for a in &catalog.accounts {
            dicts.account.id(&a.id.to_string());
        }
        for p in &catalog.projects {
            dicts.project.id(&p.id.to_string());
        }
        let unassigned = dicts.project.id(UNASSIGNED);
        for g in &catalog.groups {
            dicts.group.id(&g.id.to_string());
        }
        let no_group = dicts.group.id(NONE);
        let project_group: Vec<u32> = dicts
            .project
            .values
            .iter()
            .map(|pid| {
                catalog
                    .projects
                    .iter()
                    .find(|p| p.id.to_string() == *pid)
                    .and_then(|p| p.group)
                    .map_or(no_group, |g| {
                        dicts
                            .group
                            .ids
                            .get(&g.to_string())
                            .copied()
                            .unwrap_or(no_group)
                    })
            })
            .collect();

        let mut order: Vec<usize> = (0..records.len()).collect();
        order.sort_by_key(|i| records[*i].date);
        let scale = records
            .iter()
            .map(|r| r.cost.amount().scale())
            .max()
            .unwrap_or(0);
        let count = records.len();
        let mut eng = Engine {
            day: Vec::with_capacity(count),
            account: Vec::with_capacity(count),
            project: Vec::with_capacity(count),
            provider: Vec::with_capacity(count),
            cloud_account: Vec::with_capacity(count),
            region: Vec::with_capacity(count),
            service: Vec::with_capacity(count),
            usage_type: Vec::with_capacity(count),
            instance_type: Vec::with_capacity(count),
            currency: Vec::with_capacity(count),
            category: Vec::with_capacity(count),
            costs: Costs::Narrow(Vec::with_capacity(count)),
            scale,
            dicts: Dicts::default(),
            project_group,
            catalog: Catalog::default(),
        };
        // Per-account project lookup memo: (account, day) → project dict id.
        let mut project_memo: HashMap<(AccountId, NaiveDate), u32> = HashMap::new();
        for i in order {
            let r = &records[i];
            let account_key = r.service_account.to_string();
            if !account_names.contains_key(&r.service_account) {
                // Records of an account the catalog does not know still count (consolidated).
                dicts.account.id(&account_key);
            }
            let account = dicts.account.id(&account_key);
            let project = *project_memo
                .entry((r.service_account, r.date))
                .or_insert_with(|| {
                    histories
                        .get(&r.service_account)
                        .and_then(|h| ServiceAccount::project_on(h, r.date))
                        .and_then(|p| dicts.project.ids.get(&p.to_string()).copied())
                        .unwrap_or(unassigned)
                });
            eng.day.push(day_number(r.date));
            eng.account.push(account);
            eng.project.push(project);
            eng.provider.push(dicts.provider.id(r.provider.as_str()));
            eng.cloud_account
                .push(dicts.cloud_account.id(&r.cloud_account));
            eng.region.push(dicts.region.id(&r.region));
            eng.service.push(dicts.service.id(&r.service));
            eng.usage_type.push(dicts.usage_type.id(&r.usage_type));
            eng.instance_type.push(
                dicts
                    .instance_type
                    .id(r.instance_type.as_deref().unwrap_or("")),
            );
            eng.currency.push(dicts.currency.id(r.currency().as_str()));
            eng.category
                .push(dicts.category.id(r.charge_category.as_str()));
            let v = scaled(r.cost.amount(), scale).ok_or(QueryError::Overflow)?;
            match &mut eng.costs {
                Costs::Narrow(c) => match i64::try_from(v) {
                    Ok(x) => c.push(x),
                    Err(_) => {
                        let mut wide: Vec<i128> = c.iter().map(|x| i128::from(*x)).collect();
                        wide.reserve(count - wide.len());
                        wide.push(v);
                        eng.costs = Costs::Wide(wide);
                    }
                },
                Costs::Wide(c) => c.push(v),
            }
        }
        eng.dicts = dicts;
        eng.catalog = catalog;
        Ok(eng)
    }

    /// Number of records held.
    pub fn len(&self) -> usize {
        self.day.len()
    }

    /// Whether the engine holds no record.
    pub fn is_empty(&self) -> bool {
        self.day.is_empty()
    }

    fn column(&self, key: GroupKey) -> &[u32] {
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

    /// The value of dictionary id `id` of `key` as shown in results (names, not ids).
    fn display(&self, key: GroupKey, id: u32) -> String {
        let raw = self
            .dict(key)
            .values
            .get(id as usize)
            .map_or("", String::as_str);
        match key {
            GroupKey::Project => self
                .catalog
                .projects
                .iter()
                .find(|p| p.id.to_string() == raw)
                .map_or_else(|| raw.to_owned(), |p| p.name.clone()),
            GroupKey::ProjectGroup => self
                .catalog
                .groups
                .iter()
                .find(|g| g.id.to_string() == raw)
                .map_or_else(|| raw.to_owned(), |g| g.name.clone()),
            GroupKey::ServiceAccount => self
                .catalog
                .accounts
                .iter()
                .find(|a| a.id.to_string() == raw)
                .map_or_else(|| raw.to_owned(), |a| a.name.clone()),
            GroupKey::InstanceType if raw.is_empty() => NONE.to_owned(),
            _ => raw.to_owned(),
        }
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
                        .find(|p| p.name == *v || p.id.to_string() == *v)
                        .ok_or_else(|| unknown("project", v))?;
                    if let Some(id) = self.dicts.project.ids.get(&p.id.to_string()) {
                        allowed[*id as usize] = true;
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
                        .find(|g| g.name == *v || g.id.to_string() == *v)
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
                        if let Some(id) = self.dicts.project.ids.get(&p.id.to_string()) {
                            allowed[*id as usize] = true;
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
                        .find(|a| a.name == *v || a.id.to_string() == *v)
                        .ok_or_else(|| unknown("service_account", v))?;
                    if let Some(id) = self.dicts.account.ids.get(&a.id.to_string()) {
                        allowed[*id as usize] = true;
                    }
                }
                Ok(allowed)
            }
            GroupKey::Provider => {
                let mut allowed = vec![false; self.dicts.provider.len()];
                for v in values {
                    let kind: ProviderKind = v.parse().map_err(|_| unknown("provider", v))?;
                    if let Some(id) = self.dicts.provider.ids.get(kind.as_str()) {
                        allowed[*id as usize] = true;
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
                    if let Some(id) = dict.ids.get(&lookup) {
                        allowed[*id as usize] = true;
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
        let mut filters: Vec<(&[u32], Vec<bool>)> = Vec::new();
        for (key, values) in &query.filters {
            let col_key = if *key == GroupKey::ProjectGroup {
                GroupKey::Project
            } else {
                *key
            };
            filters.push((self.column(col_key), self.allowed(*key, values)?));
        }

        // Group dimensions: column, radix and a mapping from column id to group id.
        let dims: Vec<(&[u32], Vec<u32>, u32)> = query
            .group_by
            .iter()
            .map(|k| {
                if *k == GroupKey::ProjectGroup {
                    let map = self.project_group.clone();
                    (self.column(*k), map, len_u32(self.dicts.group.len()))
                } else {
                    let n = self.dict(*k).len();
                    (
                        self.column(*k),
                        (0..len_u32(n)).collect(),
                        len_u32(n).max(1),
                    )
                }
            })
            .collect();
        let n_currency = len_u32(self.dicts.currency.len()).max(1);
        let n_buckets = len_u32(labels.len()).max(1);
        let mut cells: u128 = u128::from(n_buckets) * u128::from(n_currency);
        for (_, _, radix) in &dims {
            cells = cells
                .checked_mul(u128::from(*radix))
                .ok_or(QueryError::Overflow)?;
        }

        let lo = self.day.partition_point(|d| *d < start);
        let hi = self.day.partition_point(|d| *d < end);
        let mut sums: HashMap<u128, i128> = HashMap::new();
        let dense_cells = usize::try_from(cells).ok().filter(|c| *c <= 1 << 22);
        let mut dense: Vec<i128> = dense_cells.map(|c| vec![0; c]).unwrap_or_default();
        let mut touched: Vec<bool> = dense_cells.map(|c| vec![false; c]).unwrap_or_default();
        'rows: for i in lo..hi {
            for (col, allowed) in &filters {
                if !allowed.get(col[i] as usize).copied().unwrap_or(false) {
                    continue 'rows;
                }
            }
            let mut key: u128 = 0;
            for (col, map, radix) in &dims {
                key = key * u128::from(*radix) + u128::from(map[col[i] as usize]);
            }
            let day_index = usize::try_from(self.day[i] - start).unwrap_or(0);
            key = key * u128::from(n_buckets) + u128::from(bucket_of_day[day_index]);
            key = key * u128::from(n_currency) + u128::from(self.currency[i]);
            let v = match &self.costs {
                Costs::Narrow(c) => i128::from(c[i]),
                Costs::Wide(c) => c[i],
            };
            if dense_cells.is_some() {
                let k = usize::try_from(key).unwrap_or(0);
                dense[k] = dense[k].checked_add(v).ok_or(QueryError::Overflow)?;
                touched[k] = true;
            } else {
                let slot = sums.entry(key).or_insert(0);
                *slot = slot.checked_add(v).ok_or(QueryError::Overflow)?;
            }
        }
        if dense_cells.is_some() {
            for (k, t) in touched.iter().enumerate() {
                if *t {
                    sums.insert(k as u128, dense[k]);
                }
            }
        }

        // Decode cells into rows.
        let mut rows: BTreeMap<Vec<u32>, RowAcc> = BTreeMap::new();
        for (mut key, sum) in sums {
            let currency = u32::try_from(key % u128::from(n_currency)).unwrap_or(0);
            key /= u128::from(n_currency);
            let bucket = u32::try_from(key % u128::from(n_buckets)).unwrap_or(0);
            key /= u128::from(n_buckets);
            let mut group = vec![0u32; dims.len()];
            for (slot, (_, _, radix)) in group.iter_mut().zip(&dims).rev() {
                *slot = u32::try_from(key % u128::from(*radix)).unwrap_or(0);
                key /= u128::from(*radix);
            }
            let entry = rows
                .entry(group.clone())
                .or_insert_with(|| (group, BTreeMap::new()));
            *entry.1.entry((bucket, currency)).or_insert(0) += sum;
        }

        let to_decimal = |v: i128| {
            Decimal::try_from_i128_with_scale(v, self.scale).map_err(|_| QueryError::Overflow)
        };
        let currency_of = |id: u32| -> Currency {
            self.dicts
                .currency
                .values
                .get(id as usize)
                .and_then(|c| Currency::parse(c).ok())
                .unwrap_or(Currency::USD)
        };
        let mut results: Vec<(ReportRow, Vec<(Currency, i128)>)> = Vec::with_capacity(rows.len());
        for (_, (group_ids, cells)) in rows {
            let mut group = BTreeMap::new();
            for (k, id) in query.group_by.iter().zip(&group_ids) {
                let shown = if *k == GroupKey::ProjectGroup {
                    let raw = self
                        .dicts
                        .group
                        .values
                        .get(*id as usize)
                        .map_or("", String::as_str);
                    self.catalog
                        .groups
                        .iter()
                        .find(|g| g.id.to_string() == raw)
                        .map_or_else(|| raw.to_owned(), |g| g.name.clone())
                } else {
                    self.display(*k, *id)
                };
                group.insert(k.as_str().to_owned(), shown);
            }
            let mut totals: BTreeMap<Currency, i128> = BTreeMap::new();
            let mut billing_data = Vec::with_capacity(cells.len());
            for ((bucket, currency), sum) in cells {
                let c = currency_of(currency);
                *totals.entry(c).or_insert(0) += sum;
                billing_data.push(Bucket {
                    date: labels.get(bucket as usize).cloned().unwrap_or_default(),
                    cost: to_decimal(sum)?,
                    currency: c,
                });
            }
            let total = totals
                .iter()
                .map(|(c, v)| {
                    Ok(Amount {
                        cost: to_decimal(*v)?,
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
                let ta = a.1.iter().map(|x| x.1).max().unwrap_or(0);
                let tb = b.1.iter().map(|x| x.1).max().unwrap_or(0);
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

/// A result row being assembled: group ids and sums per (bucket, currency).
type RowAcc = (Vec<u32>, BTreeMap<(u32, u32), i128>);

fn len_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}
