//! The columnar engine: dictionary-encoded dimensions, scaled-integer costs, one pass per query.
//!
//! `catalog` holds the names and structure ids resolve against, `columns` the typed column
//! storage, `builder` accumulates columns (from records or partitions), `loader` feeds
//! partitions one at a time, `update` replaces changed slices of a loaded engine, and `query`
//! plans, scans and assembles an answer.

mod allocate;
mod builder;
mod catalog;
mod columns;
mod loader;
mod query;
mod scan;
mod tags;
mod targets;
mod update;

use chrono::Datelike;
use cloudbill_columnar::Partition;
use cloudbill_core::{AccountId, CostRecord, NaiveDate};

pub use catalog::{Catalog, CatalogAccount, CatalogGroup, CatalogProject};
pub use loader::EngineLoader;
pub use update::{EngineUpdate, MAX_LAYERS};

use builder::{scaled, Builder};
use catalog::Dict;
use columns::{BySlot, Col, Costs, Slot};
use ethnum::I256;
use tags::TagColumns;

use crate::QueryError;

/// An in-memory, columnar copy of cost records, ready to answer queries.
#[derive(Debug, Clone)]
pub struct Engine {
    /// Days since CE; rows are sorted by month (by day within a month only for `build`).
    day: Vec<i32>,
    /// `(first day of the month, first row)` per month, ascending: the scan's range bounds.
    months: Vec<(i32, usize)>,
    /// Runs of one account's rows (a loaded engine keeps each account's rows of a month
    /// together), ascending by row: a query filtered by project or account scans only the
    /// runs that can match. Empty for a built engine (then the whole range is scanned).
    runs: Vec<Run>,
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
    /// One column per tag key (see `tags`).
    tags: TagColumns,
    /// One column per FOCUS attribute that is a dimension (see `tags`).
    attrs: TagColumns,
    costs: Costs,
    /// Rows whose cost leaves `i128` at `scale` (see `Builder::big`).
    big: Vec<(usize, I256)>,
    scale: u32,
    dicts: Dicts,
    /// Group index of each project id (index into `dicts.group`).
    project_group: Vec<u32>,
    catalog: Catalog,
    /// Column slots a loader left out ([`EngineLoader::only`]).
    skipped: BySlot<bool>,
    /// Whether a loader left the tag columns out ([`EngineLoader::only`]).
    tags_skipped: bool,
    /// Whether a loader left the attribute columns out ([`EngineLoader::only`]).
    attrs_skipped: bool,
    /// The cost its cost column holds ([`EngineLoader::metric`]).
    metric: cloudbill_core::CostMetric,
    /// Each account's project history as dictionary ids (what the project column was
    /// derived from): an update may add rows beside older ones only while it is unchanged.
    history: Vec<Vec<(Option<NaiveDate>, u32)>>,
    /// Rows of earlier loads this engine answers with besides its own (see `update`): each
    /// an engine whose own rows (never its layers) count, through its live runs only. Their
    /// dictionaries are prefixes of this engine's, so their ids mean the same here.
    layers: Vec<Layer>,
    /// The last allocation's source records and bases (see `allocate`).
    plans: allocate::PlanCache,
}

/// An earlier engine's rows that still count: those of `runs` (its runs not replaced
/// since).
#[derive(Debug, Clone)]
struct Layer {
    rows: std::sync::Arc<Engine>,
    runs: Vec<Run>,
    /// Whether every run of `rows` is in `runs` (then its month index bounds a scan).
    whole: bool,
}

/// Rows `lo..hi` are one account's (id `account`), all of project `project` — or of several
/// projects ([`Run::MIXED`]) when the account moved within them — with costs of at most
/// `scale` decimals (an update that drops the rows of the most decimals lowers the engine's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Run {
    lo: usize,
    hi: usize,
    account: u32,
    project: u32,
    scale: u8,
}

impl Run {
    /// The project id of a run whose rows belong to more than one project.
    const MIXED: u32 = u32::MAX;
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

/// Whether attribute `a` is a report dimension (the engine keeps a column for it).
fn dimension(a: cloudbill_core::Attribute) -> bool {
    crate::GroupKey::ALL.contains(&crate::GroupKey::Attribute(a))
}

fn day_number(d: NaiveDate) -> i32 {
    d.num_days_from_ce()
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
            let rows_before = b.day.len();
            b.tags.push(&r.tags, rows_before);
            b.attrs.push_pairs(
                r.attributes
                    .iter()
                    .filter(|(a, _)| dimension(**a))
                    .map(|(a, v)| (a.snake_name(), v.as_str())),
                rows_before,
            );
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
        let b = Builder::new(&catalog, 0, 0);
        EngineLoader {
            b,
            catalog,
            months: Vec::new(),
            runs: Vec::new(),
            skipped: BySlot::default(),
            tags_skipped: false,
            attrs_skipped: false,
            metric: cloudbill_core::CostMetric::Billed,
        }
    }

    /// The catalog the engine resolves names against.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Number of records held.
    pub fn len(&self) -> usize {
        self.day.len() + self.layers.iter().map(Layer::len).sum::<usize>()
    }

    /// How many earlier engines' rows it answers with besides its own (see
    /// [`Engine::update`]).
    pub fn layers(&self) -> usize {
        self.layers.len()
    }

    /// This engine's own rows and each layer's, with the runs that count (`None`: all).
    fn parts(&self) -> impl Iterator<Item = (&Engine, Option<&[Run]>)> {
        std::iter::once((self, None)).chain(
            self.layers
                .iter()
                .map(|l| (&*l.rows, (!l.whole).then_some(l.runs.as_slice()))),
        )
    }

    /// The column of `slot`.
    fn col(&self, slot: Slot) -> &Col {
        match slot {
            Slot::Account => &self.account,
            Slot::Project => &self.project,
            Slot::Provider => &self.provider,
            Slot::CloudAccount => &self.cloud_account,
            Slot::Region => &self.region,
            Slot::Service => &self.service,
            Slot::UsageType => &self.usage_type,
            Slot::InstanceType => &self.instance_type,
            Slot::Currency => &self.currency,
            Slot::Category => &self.category,
        }
    }

    /// The memory the engine holds, in bytes (its columns, costs and dictionaries; the
    /// catalog left out): what a server counts against its engine memory budget.
    pub fn memory_bytes(&self) -> usize {
        self.own_memory()
            + self
                .layers
                .iter()
                .map(|l| l.rows.own_memory())
                .sum::<usize>()
    }

    /// [`Engine::memory_bytes`] of its own rows and dictionaries, its layers left out.
    fn own_memory(&self) -> usize {
        let d = &self.dicts;
        let dicts = [
            &d.account,
            &d.project,
            &d.group,
            &d.provider,
            &d.cloud_account,
            &d.region,
            &d.service,
            &d.usage_type,
            &d.instance_type,
            &d.currency,
            &d.category,
        ]
        .iter()
        .map(|x| x.memory())
        .sum::<usize>();
        let cols = [
            &self.account,
            &self.project,
            &self.provider,
            &self.cloud_account,
            &self.region,
            &self.service,
            &self.usage_type,
            &self.instance_type,
            &self.currency,
            &self.category,
        ]
        .iter()
        .map(|c| c.memory())
        .sum::<usize>();
        self.day.capacity() * 4
            + self.months.capacity() * 16
            + self.runs.capacity() * std::mem::size_of::<Run>()
            + cols
            + self.costs.memory()
            + self.big.capacity() * std::mem::size_of::<(usize, I256)>()
            + self.tags.memory()
            + self.attrs.memory()
            + dicts
            + self.project_group.capacity() * 4
            + self.plans.memory()
    }

    /// Whether the engine holds no record.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Layer {
    /// Rows that count.
    fn len(&self) -> usize {
        self.runs.iter().map(|r| r.hi - r.lo).sum()
    }
}
