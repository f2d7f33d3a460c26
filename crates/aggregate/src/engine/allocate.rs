//! Shared-cost allocation inside a query: the rules' source records are found column at a
//! time (a filter-only pass per rule), the proportional bases come from one scan per rule,
//! and each source record's cost leaves its own cell for its targets' cells, split exactly
//! at the record's scale (`crate::allocation::split`). The query's own scan is unchanged:
//! only the source records are visited one by one.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use cloudbill_core::{DateRange, Granularity, NaiveDate};
use ethnum::I256;

use super::columns::{Costs, IdMap};
use super::scan::Layout;
use super::targets::SliceCells;
use super::{day_number, Engine, Run};
use crate::allocation::{split, split_fast, Allocation, Method, Slice};
use crate::{GroupKey, Query, QueryError};

/// A query's allocation, resolved against the engine.
pub(super) struct Plan {
    /// The source records and the proportional bases of the whole allocation.
    core: Arc<Core>,
    /// Every slice, in the allocation's order.
    slices: Vec<Planned>,
    /// Per part, the records this query moves: (slice, row), by slice then row.
    moved: Vec<Vec<(usize, usize)>>,
    /// Per part, the same rows as a bitmap (empty: none): the query's scan leaves them out.
    exclude: Vec<Vec<u64>>,
}

impl Plan {
    /// The rows of part `pi` the query's scan leaves out, if any.
    pub(super) fn exclusion(&self, pi: usize) -> Option<&[u64]> {
        self.exclude
            .get(pi)
            .filter(|bits| !bits.is_empty())
            .map(Vec::as_slice)
    }
}

/// What an allocation finds in the engine's data, whatever the query: computed once per
/// engine and allocation (see [`PlanCache`]).
#[derive(Debug)]
pub(super) struct Core {
    /// Per part (in `Engine::parts` order), the source records, by row: (row, slice index).
    sources: Vec<Vec<(usize, usize)>>,
    /// Proportional weights per (slice, day, currency id), one per target.
    basis: Bases,
}

/// The last allocation an engine resolved and its [`Core`]: allocated queries over the same
/// rules (any range, group-by or filter) find their source records without scanning for
/// them again. An engine's clone starts empty (its rows may change).
#[derive(Debug, Default)]
pub(super) struct PlanCache(Mutex<Option<(Arc<Allocation>, Arc<Core>)>>);

impl Clone for PlanCache {
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl PlanCache {
    /// Bytes the cached core holds.
    pub(super) fn memory(&self) -> usize {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .map_or(0, |(_, c)| {
                c.sources.iter().map(|v| v.capacity() * 16).sum::<usize>()
                    + c.basis.values().map(|w| 48 + w.len() * 32).sum::<usize>()
            })
    }
}

/// At most this many cells (32 bytes each) sum an allocated query's shares densely.
const DENSE_SHARE_CELLS: usize = 1 << 16;

/// One amount to split: (slice, day, currency id, the group with the dims its targets
/// replace at 0).
type AmountKey = (usize, i32, usize, u128);

/// Proportional weights per (slice, day, currency id), one per target.
type Bases = IdMap<(usize, i32, u32), Vec<I256>>;

/// One slice as a query uses it.
struct Planned {
    slice: Slice,
    /// Whether the query reads its target and its days: only then do its shares move (its
    /// records are its own either way, never a later slice's).
    relevant: bool,
    /// Each target's id where the target key's values are numbered (a tag value no record
    /// carries gets one past the values).
    ids: Vec<u32>,
}

/// One slice over the engine's days, as the [`Core`] is computed.
struct Span {
    slice: Slice,
    /// Days `start..end`.
    start: i32,
    end: i32,
    /// The source as a query's filters (resolved per part like any filter).
    source: Query,
    /// Each target's id (as [`Planned::ids`]).
    ids: Vec<u32>,
}

/// Where the query's cells are: what `allocate` needs to address a share's cell.
pub(super) struct Cells<'q> {
    pub(super) query: &'q Query,
    pub(super) tags: &'q BTreeMap<&'q GroupKey, Vec<String>>,
    pub(super) radices: &'q [u128],
    pub(super) bucket_of_day: &'q [u32],
    pub(super) n_buckets: u128,
    pub(super) n_currency: u128,
}

impl Engine {
    /// The allocation `query` asks for, resolved; `None` when it changes nothing: no rule
    /// covers the range, or the query neither groups nor filters by a key a rule's target
    /// reads (then every share stays in the cell its source was in). Tag values only a rule
    /// names are appended to `tags`.
    pub(super) fn plan_allocation<'q>(
        &self,
        query: &'q Query,
        tags: &mut BTreeMap<&'q GroupKey, Vec<String>>,
        cancel: &AtomicBool,
    ) -> Result<Option<Plan>, QueryError> {
        let Some(allocation) = query.allocation.as_ref() else {
            return Ok(None);
        };
        let (q_start, q_end) = (
            day_number(query.range.start()),
            day_number(query.range.end()),
        );
        let reads = |target: &GroupKey| {
            query
                .group_by
                .iter()
                .chain(query.filters.keys())
                .any(|k| Allocation::reads_target(target, k))
        };
        let mut relevant = Vec::with_capacity(allocation.slices.len());
        for slice in &allocation.slices {
            Allocation::target_key(&slice.target)?;
            if let Some(key) = slice
                .source
                .keys()
                .chain([&slice.target])
                .find(|k| self.left_out(k))
            {
                return Err(QueryError::NotLoaded(key.to_string()));
            }
            let start = day_number(slice.from).max(q_start);
            let end = slice.until.map_or(q_end, |u| day_number(u).min(q_end));
            relevant.push(start < end && reads(&slice.target) && !slice.targets.is_empty());
        }
        if !relevant.iter().any(|r| *r) {
            return Ok(None);
        }
        let core = self.core(allocation, cancel)?;
        let mut slices = Vec::with_capacity(relevant.len());
        for (slice, relevant) in allocation.slices.iter().zip(relevant) {
            let ids = if relevant {
                self.target_ids(slice, tags)?
            } else {
                Vec::new()
            };
            slices.push(Planned {
                slice: slice.clone(),
                relevant,
                ids,
            });
        }
        // The records this query moves: of a slice it sees, in its range, with something
        // to move and (proportional) a day on which a target has cost.
        let mut moved = Vec::new();
        let mut exclude = Vec::new();
        for (pi, (part, _)) in self.parts().enumerate() {
            let (lo, hi) = part.rows_of(q_start, q_end);
            let sources = &core.sources[pi];
            let first = sources.partition_point(|(row, _)| *row < lo);
            let last = sources.partition_point(|(row, _)| *row < hi);
            // Per slice, ascending (the sources come by row): concatenated, by slice then row.
            let mut per: Vec<Vec<(usize, usize)>> = vec![Vec::new(); slices.len()];
            let mut bits: Vec<u64> = Vec::new();
            let mut held: Option<((usize, i32, u32), bool)> = None;
            for &(row, s) in &sources[first..last] {
                let day = part.day[row];
                if !slices[s].relevant || !(q_start..q_end).contains(&day) {
                    continue;
                }
                if slices[s].slice.method == Method::Proportional {
                    let key = (
                        s,
                        day,
                        u32::try_from(part.currency.get(row)).unwrap_or(u32::MAX),
                    );
                    let has = match held {
                        Some((k, has)) if k == key => has,
                        _ => {
                            let has = core.basis.contains_key(&key);
                            held = Some((key, has));
                            has
                        }
                    };
                    if !has {
                        continue; // no target has cost that day: unallocated, left in place
                    }
                }
                if part.cost_at(row) == I256::ZERO {
                    continue; // nothing to move: the record stays where it is
                }
                if bits.is_empty() {
                    bits = vec![0u64; part.day.len().div_ceil(64)];
                }
                bits[row >> 6] |= 1 << (row & 63);
                per[s].push((s, row));
            }
            moved.push(per.concat());
            exclude.push(bits);
        }
        Ok(Some(Plan {
            core,
            slices,
            moved,
            exclude,
        }))
    }

    /// The [`Core`] of `allocation` over this engine's rows: from the cache, or found now
    /// (and kept unless the query was cancelled meanwhile).
    fn core(
        &self,
        allocation: &Arc<Allocation>,
        cancel: &AtomicBool,
    ) -> Result<Arc<Core>, QueryError> {
        let lock = || {
            self.plans
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        if let Some((a, core)) = &*lock() {
            if **a == **allocation {
                return Ok(Arc::clone(core));
            }
        }
        // The days the engine holds: every month of every part.
        let (mut lo, mut hi) = (i32::MAX, i32::MIN);
        for (part, _) in self.parts() {
            if let (Some(first), Some(last)) = (part.months.first(), part.months.last()) {
                lo = lo.min(first.0);
                hi = hi.max(last.0 + 31);
            }
        }
        let mut spans = Vec::with_capacity(allocation.slices.len());
        let mut scratch = BTreeMap::new();
        for slice in &allocation.slices {
            let start = day_number(slice.from).max(lo);
            let end = slice.until.map_or(hi, |u| day_number(u).min(hi));
            let day = query_day(slice.from);
            let mut source = Query::new(day, Granularity::Daily);
            for (key, values) in &slice.source {
                // A value that no longer resolves (a deleted project) matches nothing.
                let known: Vec<String> = values
                    .iter()
                    .filter(|v| self.allowed(key, std::slice::from_ref(*v)).is_ok())
                    .cloned()
                    .collect();
                source.filters.insert(key.clone(), known);
            }
            source.metric = self.metric;
            let ids = if start < end {
                self.target_ids(slice, &mut scratch)?
            } else {
                Vec::new()
            };
            spans.push(Span {
                slice: slice.clone(),
                start,
                end: end.max(start),
                source,
                ids,
            });
        }
        let sources = self.source_rows(&spans)?;
        let basis = self.bases(&spans, &sources, cancel)?;
        if cancel.load(Ordering::Relaxed) {
            return Err(QueryError::Cancelled);
        }
        let core = Arc::new(Core { sources, basis });
        *lock() = Some((Arc::clone(allocation), Arc::clone(&core)));
        Ok(core)
    }

    /// The source records of every slice, per part: a record is the first slice's whose
    /// source it matches on its day.
    fn source_rows(&self, slices: &[Span]) -> Result<Vec<Vec<(usize, usize)>>, QueryError> {
        let mut out = Vec::new();
        for (part, live) in self.parts() {
            // Each slice's rows, ascending; a row an earlier slice took is not a later one's.
            let mut per: Vec<Vec<usize>> = Vec::with_capacity(slices.len());
            for planned in slices {
                let resolved = self.filters(&planned.source)?;
                let filters = self.part_filters(part, &planned.source, &resolved);
                let (lo, hi) = part.rows_of(planned.start, planned.end);
                let ranges = part.ranges(lo, hi, &filters, live);
                let layout = Layout::filtering(&filters, planned.start, planned.end);
                let mut rows = Vec::new();
                part.for_each_chunk(&ranges, &layout, |first, _, keep| {
                    for (j, k) in keep.iter().enumerate() {
                        let row = first + j;
                        if *k
                            && per
                                .iter()
                                .all(|earlier| earlier.binary_search(&row).is_err())
                        {
                            rows.push(row);
                        }
                    }
                    true
                });
                per.push(rows);
            }
            let mut found: Vec<(usize, usize)> = per
                .into_iter()
                .enumerate()
                .flat_map(|(s, rows)| rows.into_iter().map(move |r| (r, s)))
                .collect();
            found.sort_unstable();
            out.push(found);
        }
        Ok(out)
    }

    /// The proportional slices' weights: each target's cost per day and currency, of the
    /// records no slice takes.
    fn bases(
        &self,
        spans: &[Span],
        sources: &[Vec<(usize, usize)>],
        cancel: &AtomicBool,
    ) -> Result<Bases, QueryError> {
        let mut basis = Bases::default();
        for (s, planned) in spans.iter().enumerate() {
            if planned.slice.method != Method::Proportional || planned.start >= planned.end {
                continue;
            }
            let key = &planned.slice.target;
            let mut q = Query::new(planned.source.range, Granularity::Daily);
            q.group_by = vec![key.clone()];
            q.filters.insert(key.clone(), planned.slice.targets.clone());
            q.metric = planned.source.metric;
            let filters = self.filters(&q)?;
            let names: BTreeMap<&GroupKey, Vec<String>> = q
                .group_by
                .iter()
                .filter(|k| self.keyed(k).is_some())
                .map(|k| (k, self.tag_names(k)))
                .collect();
            let radix = match names.get(key) {
                Some(n) => n.len(),
                None if *key == GroupKey::ProjectGroup => self.dicts.group.len(),
                None => self.dict(key).len(),
            }
            .max(1) as u128;
            let days = usize::try_from(planned.end - planned.start).unwrap_or(0);
            let bucket_of_day: Vec<u32> = (0..days)
                .map(|d| u32::try_from(d).unwrap_or(u32::MAX))
                .collect();
            let n_currency = self.dicts.currency.len().max(1) as u128;
            let n_buckets = days.max(1) as u128;
            let zero = vec![0u32; self.dicts.account.len()];
            let mut by: IdMap<u128, I256> = IdMap::default();
            for (pi, (part, live)) in self.parts().enumerate() {
                let part_filters = self.part_filters(part, &q, &filters);
                let dims = self.part_dims(part, &q, &names, &[radix], &zero);
                let layout = Layout {
                    dims: &dims,
                    filters: &part_filters,
                    bucket_of_day: &bucket_of_day,
                    start: planned.start,
                    end: planned.end,
                    n_buckets,
                    n_currency,
                    cancel,
                    exclude: None,
                };
                let cells = radix * n_buckets * n_currency;
                for (k, v) in part.part_sums(&layout, live, cells, (None, &mut None)) {
                    *by.entry(k).or_insert(I256::ZERO) += v;
                }
                // Records some slice takes are no target's own cost.
                for &(row, _) in &sources[pi] {
                    let day = part.day[row];
                    if !(planned.start..planned.end).contains(&day) || !Self::passes(&layout, row) {
                        continue;
                    }
                    let bucket = u128::try_from(day - planned.start).unwrap_or(0);
                    let key = (Self::group_of(&layout, row, None) * n_buckets + bucket)
                        * n_currency
                        + part.currency.get(row) as u128;
                    *by.entry(key).or_insert(I256::ZERO) -= part.cost_at(row);
                }
            }
            if cancel.load(Ordering::Relaxed) {
                return Err(QueryError::Cancelled);
            }
            let per_target = n_buckets * n_currency;
            for (k, v) in by {
                if v <= I256::ZERO {
                    continue;
                }
                let target = u32::try_from(k / per_target).unwrap_or(u32::MAX);
                let rest = k % per_target;
                let day = planned.start + i32::try_from(rest / n_currency).unwrap_or(0);
                let currency = u32::try_from(rest % n_currency).unwrap_or(0);
                let weights = basis
                    .entry((s, day, currency))
                    .or_insert_with(|| vec![I256::ZERO; planned.ids.len()]);
                for (w, id) in weights.iter_mut().zip(&planned.ids) {
                    if *id == target {
                        *w = v;
                    }
                }
            }
        }
        Ok(basis)
    }

    /// The group of row `i` under `layout` (its dims in mixed radix), with the dims of
    /// `replace` (per dim: an id, or `None` for the row's own) read from it instead of the row.
    fn group_of(layout: &Layout<'_>, i: usize, replace: Option<&[Option<u32>]>) -> u128 {
        let mut key: u128 = 0;
        for (d, dim) in layout.dims.iter().enumerate() {
            let v = match replace.and_then(|r| r[d]) {
                Some(id) => id as usize,
                None => {
                    let v = dim.col.get(i);
                    dim.map.map_or(v, |m| m[v] as usize)
                }
            };
            key = key * dim.radix + v as u128;
        }
        key
    }

    /// Row `i`'s cost at the engine's scale.
    pub(super) fn cost_at(&self, i: usize) -> I256 {
        if let Ok(at) = self.big.binary_search_by_key(&i, |(row, _)| *row) {
            return self.big[at].1;
        }
        match &self.costs {
            Costs::Narrow(c) => I256::from(c[i]),
            Costs::Wide(c) => I256::from(c[i]),
        }
    }

    /// The decimals row `i`'s account-month holds (its run's scale; the engine's when the
    /// engine has no runs).
    fn scale_at(&self, i: usize) -> u32 {
        let at = self.runs.partition_point(|r: &Run| r.hi <= i);
        match self.runs.get(at) {
            Some(run) if run.lo <= i => u32::from(run.scale).min(self.scale),
            _ => self.scale,
        }
    }

    /// Moves the source records' cost from their cells in `sums` to their targets' cells:
    /// each slice's source cost of one day, one currency and one group of the report (its
    /// group-by values other than those the target replaces) is split once, exactly, at the
    /// most decimals of its records.
    #[allow(clippy::too_many_lines)] // One pass over the source records, then the splits.
    pub(super) fn allocate(&self, plan: &Plan, at: &Cells<'_>, sums: &mut IdMap<u128, I256>) {
        let query = at.query;
        let Ok(filters) = self.filters(query) else {
            return;
        };
        let zero = vec![0u32; self.dicts.account.len()];
        let start = day_number(query.range.start());
        let end = day_number(query.range.end());
        // Each group-by dim's stride in a group key (mixed radix, the last dim innermost).
        let mut strides = vec![0u128; at.radices.len()];
        let mut stride = 1u128;
        for (s, r) in strides.iter_mut().zip(at.radices).rev() {
            *s = stride;
            stride = stride.saturating_mul(*r);
        }
        // Per slice: each target's ids in the dims it replaces (as an offset to add to a
        // group whose replaced dims are 0), whether it passes the filters that read the
        // target, and which filters read the record.
        let mut per_slice: Vec<(Vec<Option<u32>>, Vec<u128>, SliceCells)> = Vec::new();
        for p in &plan.slices {
            let sc = self.slice_cells(&p.slice, &p.ids, query, &filters);
            let zeroed: Vec<Option<u32>> = (0..at.radices.len())
                .map(|d| sc.replace.first().and_then(|r| r[d]).map(|_| 0))
                .collect();
            let offsets = sc
                .replace
                .iter()
                .map(|r| {
                    r.iter()
                        .zip(&strides)
                        .map(|(id, stride)| id.map_or(0, |id| u128::from(id) * stride))
                        .sum()
                })
                .collect();
            per_slice.push((zeroed, offsets, sc));
        }
        // (slice, day, currency, group with the replaced dims 0) → (cost, most decimals).
        // The moved rows come by slice then row (rows by day within a month): consecutive
        // rows mostly add to the amount held, one map update per change of amount.
        let mut pending: IdMap<AmountKey, (I256, u32)> = IdMap::default();
        for (pi, (part, _)) in self.parts().enumerate() {
            let part_filters = self.part_filters(part, query, &filters);
            let dims = self.part_dims(part, query, at.tags, at.radices, &zero);
            let layout = Layout {
                dims: &dims,
                filters: &part_filters,
                bucket_of_day: at.bucket_of_day,
                start,
                end,
                n_buckets: at.n_buckets,
                n_currency: at.n_currency,
                cancel: &super::scan::NEVER,
                exclude: None,
            };
            let mut held: Option<(AmountKey, (I256, u32))> = None;
            for &(s, row) in &plan.moved[pi] {
                let (zeroed, _, sc) = &per_slice[s];
                if !sc.rest.iter().all(|&f| {
                    let (col, allowed) = &part_filters[f];
                    allowed.get(col.get(row)).copied().unwrap_or(false)
                }) {
                    continue;
                }
                let key = (
                    s,
                    part.day[row],
                    part.currency.get(row),
                    Self::group_of(&layout, row, Some(zeroed)),
                );
                let cost = part.cost_at(row);
                let scale = part.scale_at(row);
                match &mut held {
                    Some((k, acc)) if *k == key => {
                        acc.0 += cost;
                        acc.1 = acc.1.max(scale);
                    }
                    _ => {
                        if let Some((k, acc)) = held.take() {
                            let e = pending.entry(k).or_insert((I256::ZERO, 0));
                            e.0 += acc.0;
                            e.1 = e.1.max(acc.1);
                        }
                        held = Some((key, (cost, scale)));
                    }
                }
            }
            if let Some((k, acc)) = held {
                let e = pending.entry(k).or_insert((I256::ZERO, 0));
                e.0 += acc.0;
                e.1 = e.1.max(acc.1);
            }
        }
        // The shares land in few cells against the amounts split (every day of a month in one
        // monthly cell): summed in a dense array when the cells are few, then into `sums`.
        let n_cells = at
            .radices
            .iter()
            .try_fold(at.n_buckets * at.n_currency, |a, r| a.checked_mul(*r))
            .and_then(|c| usize::try_from(c).ok())
            .filter(|c| *c <= DENSE_SHARE_CELLS);
        let mut dense: Vec<I256> = n_cells.map_or_else(Vec::new, |n| vec![I256::ZERO; n]);
        let mut landed: Vec<bool> = vec![false; dense.len()];
        for ((s, day, currency, rest), (cost, scale)) in pending {
            if cost == I256::ZERO {
                continue;
            }
            let planned = &plan.slices[s];
            let (_, offsets, sc) = &per_slice[s];
            let weights: Vec<I256> = match &planned.slice.method {
                Method::Even => vec![I256::ONE; planned.ids.len()],
                Method::Fixed(bps) => bps.iter().map(|b| I256::from(*b)).collect(),
                Method::Proportional => {
                    match plan.core.basis.get(&(
                        s,
                        day,
                        u32::try_from(currency).unwrap_or(u32::MAX),
                    )) {
                        Some(w) => w.clone(),
                        None => continue, // not reached: such records were left in place
                    }
                }
            };
            // Parts are multiples of the amount's smallest unit (its records' most decimals).
            let unit = I256::from(10u8).pow(self.scale - scale.min(self.scale));
            let negative = cost < I256::ZERO;
            let units = cost.abs() / unit;
            let parts = match (i128::try_from(units), weights_fast(&weights)) {
                (Ok(u), Some(w)) => split_fast(u, &w)
                    .map(|p| p.into_iter().map(I256::from).collect())
                    .or_else(|| split(units, &weights)),
                _ => split(units, &weights),
            };
            let Some(parts) = parts else { continue };
            let bucket = at
                .bucket_of_day
                .get(usize::try_from(day - start).unwrap_or(0))
                .copied()
                .unwrap_or(0);
            for (j, part_units) in parts.into_iter().enumerate() {
                if part_units == I256::ZERO || !sc.passes[j] {
                    continue;
                }
                let share = if negative { -part_units } else { part_units } * unit;
                let key = ((rest + offsets[j]) * at.n_buckets + u128::from(bucket)) * at.n_currency
                    + currency as u128;
                match usize::try_from(key).ok().filter(|k| *k < dense.len()) {
                    Some(k) => {
                        dense[k] += share;
                        landed[k] = true;
                    }
                    None => *sums.entry(key).or_insert(I256::ZERO) += share,
                }
            }
        }
        for (k, share) in dense.into_iter().enumerate() {
            if landed[k] {
                *sums.entry(k as u128).or_insert(I256::ZERO) += share;
            }
        }
    }
}

/// The weights in `i128`, when each fits.
fn weights_fast(weights: &[I256]) -> Option<Vec<i128>> {
    weights.iter().map(|w| i128::try_from(*w).ok()).collect()
}

/// A one-day range at `day` (a query that only carries filters).
fn query_day(day: NaiveDate) -> DateRange {
    DateRange::new(day, day.succ_opt().unwrap_or(day))
        .or_else(|_| DateRange::parse("2000-01-01", "2000-01-02"))
        .unwrap_or_else(|_| unreachable!("a fixed valid range"))
}
