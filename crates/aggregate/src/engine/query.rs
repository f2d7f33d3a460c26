//! Answering a query: resolve filters, lay out the cells, pick the scan (in `scan.rs`),
//! decode, sort, page and assemble the rows exactly. Tags and attributes (their dimensions
//! and `tag_summary`) are in `tags.rs`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};

use cloudbill_core::{Currency, GroupId, Lookup, ProviderKind};
use ethnum::I256;

use super::builder::month_of;
use super::catalog::{Dict, NONE};
use super::columns::{Col, Costs, IdMap, Slot};
use super::scan::{Dim, Layout, NEVER};
use super::{day_number, Engine, Run};
use crate::answer::{AnswerParts, Cell};
use crate::{Answer, GroupKey, Query, QueryError, Report, Sort};

impl Engine {
    pub(super) fn column(&self, key: &GroupKey) -> &Col {
        self.col(Slot::of(key))
    }

    pub(super) fn dict(&self, key: &GroupKey) -> &Dict {
        match key {
            GroupKey::Provider => &self.dicts.provider,
            GroupKey::Project => &self.dicts.project,
            GroupKey::ProjectGroup => &self.dicts.group,
            GroupKey::ServiceAccount | GroupKey::Tag(_) | GroupKey::Attribute(_) => {
                &self.dicts.account
            }
            GroupKey::CloudAccount => &self.dicts.cloud_account,
            GroupKey::Region => &self.dicts.region,
            GroupKey::Service => &self.dicts.service,
            GroupKey::UsageType => &self.dicts.usage_type,
            GroupKey::InstanceType => &self.dicts.instance_type,
            GroupKey::Currency => &self.dicts.currency,
            GroupKey::ChargeCategory => &self.dicts.category,
        }
    }

    /// Whether a loader left out the column `key` reads ([`super::EngineLoader::only`]).
    pub(super) fn left_out(&self, key: &GroupKey) -> bool {
        Slot::optional(key).is_some_and(|slot| self.skipped[slot])
            || (matches!(key, GroupKey::Tag(_)) && self.tags_skipped)
    }

    /// The values of `key`'s dictionary as shown in results: names for projects, groups and
    /// accounts (their dictionaries hold ids), `(none)` for an empty instance type.
    fn display_names(&self, key: &GroupKey) -> Vec<String> {
        if self.keyed(key).is_some() {
            return self.tag_names(key);
        }
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
    pub(super) fn allowed(
        &self,
        key: &GroupKey,
        values: &[String],
    ) -> Result<Vec<bool>, QueryError> {
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
            GroupKey::Tag(_) | GroupKey::Attribute(_) => Ok(self.keyed_filter(key, values).1),
            _ => {
                let dict = self.dict(key);
                let mut allowed = vec![false; dict.len()];
                for v in values {
                    let lookup = if *key == GroupKey::Currency {
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

    /// A query's filters, as (column, allowed ids). Group filters apply to the project column.
    pub(super) fn filters(&self, query: &Query) -> Result<Vec<(&Col, Vec<bool>)>, QueryError> {
        let mut filters = Vec::with_capacity(query.filters.len());
        for (key, values) in &query.filters {
            filters.push(match key {
                GroupKey::ProjectGroup => {
                    (self.column(&GroupKey::Project), self.allowed(key, values)?)
                }
                GroupKey::Tag(_) | GroupKey::Attribute(_) => self.keyed_filter(key, values),
                _ => (self.column(key), self.allowed(key, values)?),
            });
        }
        Ok(filters)
    }

    /// The rows of the months that hold days `start..end` (rows are month-sorted: a scan is
    /// bounded by months, then checks days per row).
    pub(super) fn rows_of(&self, start: i32, end: i32) -> (usize, usize) {
        let first = self.months.partition_point(|(m, _)| *m < month_of(start));
        let last = self.months.partition_point(|(m, _)| *m < end);
        let at = |i: usize| self.months.get(i).map_or(self.day.len(), |(_, row)| *row);
        (at(first), at(last))
    }

    /// The row ranges of `lo..hi` a scan with `filters` must read: with a project or account
    /// filter, only the account runs that can match (a run whose account moved between
    /// projects within it is read whole; its rows are still checked one by one).
    pub(super) fn ranges(
        &self,
        lo: usize,
        hi: usize,
        filters: &[(&Col, Vec<bool>)],
        live: Option<&[Run]>,
    ) -> Vec<(usize, usize)> {
        let allows = |col: &Col, id: u32| {
            filters
                .iter()
                .filter(|(c, _)| std::ptr::eq(*c, std::ptr::from_ref(col)))
                .all(|(_, allowed)| allowed.get(id as usize).copied().unwrap_or(false))
        };
        let narrows = filters.iter().any(|(c, _)| {
            std::ptr::eq(*c, std::ptr::from_ref(&self.project))
                || std::ptr::eq(*c, std::ptr::from_ref(&self.account))
        });
        // Runs not in `live` were replaced since: only the live ones are read.
        let runs = live.unwrap_or(&self.runs);
        if live.is_none() && (self.runs.is_empty() || !narrows) {
            return vec![(lo, hi)];
        }
        let first = runs.partition_point(|r| r.hi <= lo);
        let mut out: Vec<(usize, usize)> = Vec::new();
        for run in runs[first..].iter().take_while(|r| r.lo < hi) {
            let keep = allows(&self.account, run.account)
                && (run.project == Run::MIXED || allows(&self.project, run.project));
            if !keep {
                continue;
            }
            let (a, b) = (run.lo.max(lo), run.hi.min(hi));
            match out.last_mut() {
                Some(last) if last.1 == a => last.1 = b,
                _ => out.push((a, b)),
            }
        }
        out
    }

    /// `filters` (this engine's, see [`Engine::filters`]) as they read `part` (this engine or
    /// one of its layers): the same allowed ids (a layer's ids mean the same here) on the
    /// part's columns; a tag or attribute the part has no column for reads as no value.
    pub(super) fn part_filters<'p>(
        &self,
        part: &'p Engine,
        query: &Query,
        filters: &[(&Col, Vec<bool>)],
    ) -> Vec<(&'p Col, Vec<bool>)> {
        query
            .filters
            .keys()
            .zip(filters)
            .map(|(key, (_, allowed))| match key {
                GroupKey::ProjectGroup => (&part.project, allowed.clone()),
                GroupKey::Tag(_) | GroupKey::Attribute(_) => {
                    match part
                        .keyed(key)
                        .and_then(|(c, name)| c.key(name).map(|k| (c, k)))
                    {
                        Some((columns, k)) if self.keyed_column(key).is_some() => {
                            (columns.column(k), allowed.clone())
                        }
                        _ => {
                            // No value on every row: allowed as `(none)` is.
                            let none = if self.keyed_column(key).is_some() {
                                allowed.first().copied().unwrap_or(false)
                            } else {
                                allowed.iter().any(|x| *x)
                            };
                            (&part.account, vec![none; self.dicts.account.len()])
                        }
                    }
                }
                _ => (part.column(key), allowed.clone()),
            })
            .collect()
    }

    /// The group-by dimensions of `query` as they read `part`, with this engine's radices.
    pub(super) fn part_dims<'p>(
        &'p self,
        part: &'p Engine,
        query: &Query,
        tags: &BTreeMap<&GroupKey, Vec<String>>,
        radices: &[u128],
        zero: &'p [u32],
    ) -> Vec<Dim<'p>> {
        query
            .group_by
            .iter()
            .zip(radices)
            .map(|(k, radix)| {
                let radix = *radix;
                if tags.contains_key(k) {
                    match part
                        .keyed(k)
                        .and_then(|(c, name)| c.key(name).map(|i| (c, i)))
                    {
                        Some((columns, i)) => Dim {
                            col: columns.column(i),
                            map: None,
                            radix,
                        },
                        None => Dim {
                            col: &part.account,
                            map: Some(zero),
                            radix,
                        },
                    }
                } else if *k == GroupKey::ProjectGroup {
                    Dim {
                        col: &part.project,
                        map: Some(&self.project_group),
                        radix,
                    }
                } else {
                    Dim {
                        col: part.column(k),
                        map: None,
                        radix,
                    }
                }
            })
            .collect()
    }

    /// The cell sums of this engine's own rows (of `live` runs only, when given) under
    /// `layout`: dense, hashed or 256-bit (see `scan.rs`).
    pub(super) fn part_sums(
        &self,
        layout: &Layout<'_>,
        live: Option<&[Run]>,
        cells: u128,
        (cap, over): (Option<usize>, &mut Option<usize>),
    ) -> Vec<(u128, I256)> {
        let (lo, hi) = self.rows_of(layout.start, layout.end);
        // The dense scan sums in i128; rows beyond i128 in the range, or an i128 sum that
        // overflows, send the query down the sparse scan's 256-bit sums (exact at any size).
        let has_big = self.big.iter().any(|(row, _)| (lo..hi).contains(row));
        let ranges = self.ranges(lo, hi, layout.filters, live);
        let scanned: usize = ranges.iter().map(|(a, b)| b - a).sum();
        // Dense when the cells are few against the rows scanned (the array is zeroed and
        // walked whole): at most 1M cells (16 MiB) and twice the rows.
        let dense = usize::try_from(cells)
            .ok()
            .filter(|c| *c <= (1 << 20).min((scanned * 2).max(1 << 12)) && !has_big);
        let dense_sums = match dense {
            Some(dense_cells) => match &self.costs {
                Costs::Narrow(c) => self.scan_dense(
                    &ranges,
                    layout,
                    dense_cells,
                    false,
                    (cap, &mut *over),
                    |i| i128::from(c[i]),
                ),
                Costs::Wide(c) => {
                    self.scan_dense(&ranges, layout, dense_cells, true, (cap, &mut *over), |i| {
                        c[i]
                    })
                }
            },
            None => None,
        };
        // Sparse: hashed i128 sums when the cell index fits a usize and no 256-bit row is in
        // the range; the 256-bit scan otherwise (or when an i128 sum overflowed).
        let hashed = if dense_sums.is_none() && !has_big && usize::try_from(cells).is_ok() {
            match &self.costs {
                Costs::Narrow(c) => {
                    self.scan_hashed(&ranges, layout, (cap, &mut *over), |i| i128::from(c[i]))
                }
                Costs::Wide(c) => self.scan_hashed(&ranges, layout, (cap, &mut *over), |i| c[i]),
            }
        } else {
            None
        };
        match dense_sums.or(hashed) {
            Some(sums) => sums,
            None => match &self.costs {
                Costs::Narrow(c) => self.scan_sparse(&ranges, layout, cap, |i| i128::from(c[i])),
                Costs::Wide(c) => self.scan_sparse(&ranges, layout, cap, |i| c[i]),
            },
        }
    }

    /// Answers `query` exactly.
    pub fn query(&self, query: &Query) -> Result<Report, QueryError> {
        self.query_until(query, &NEVER)
    }

    /// [`Engine::query`], stopped with [`QueryError::Cancelled`] once `cancel` is set (the
    /// scan looks at it every few thousand rows): a server stops the work of a client that
    /// went away.
    pub fn query_until(&self, query: &Query, cancel: &AtomicBool) -> Result<Report, QueryError> {
        self.answer_until(query, cancel)?.to_report()
    }

    /// [`Engine::query`]'s answer before its text (see [`Answer`]).
    pub fn answer(&self, query: &Query) -> Result<Answer, QueryError> {
        self.answer_until(query, &NEVER)
    }

    /// [`Engine::query_until`]'s answer before its text: ids and sums, written as the
    /// report's JSON by [`Answer::write_json`] without a [`Report`] built first.
    #[allow(clippy::too_many_lines)] // Filter, scan, decode, sort: one pass kept in one place.
    pub fn answer_until(&self, query: &Query, cancel: &AtomicBool) -> Result<Answer, QueryError> {
        if query.limit == Some(0) {
            return Err(QueryError::ZeroLimit);
        }
        if let Some(key) = query
            .group_by
            .iter()
            .chain(query.filters.keys())
            .find(|k| self.left_out(k))
        {
            return Err(QueryError::NotLoaded(key.to_string()));
        }
        if query.metric != self.metric {
            return Err(QueryError::OtherMetric {
                held: self.metric.as_str(),
                asked: query.metric.as_str(),
            });
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

        let filters = self.filters(query)?;

        // Each tag's and attribute's column and values, once per query.
        let mut tags: BTreeMap<&GroupKey, Vec<String>> = query
            .group_by
            .iter()
            .filter(|k| self.keyed(k).is_some())
            .map(|k| (k, self.tag_names(k)))
            .collect();
        // Shared costs moved to their targets (see `allocate.rs`): planned before the cells
        // are laid out, since a tag value only a rule names gets an id of its own.
        let plan = self.plan_allocation(query, &mut tags, cancel)?;
        // Each group-by key's number of ids (this engine's dictionaries hold its layers').
        let radices: Vec<u128> = query
            .group_by
            .iter()
            .map(|k| {
                let n = match tags.get(k) {
                    Some(names) => names.len(),
                    None if *k == GroupKey::ProjectGroup => self.dicts.group.len(),
                    None => self.dict(k).len(),
                };
                n.max(1) as u128
            })
            .collect();
        let n_currency = self.dicts.currency.len().max(1) as u128;
        let n_buckets = labels.len().max(1) as u128;
        let mut cells: u128 = n_buckets * n_currency;
        for r in &radices {
            cells = cells.checked_mul(*r).ok_or(QueryError::Overflow)?;
        }
        // Without paging the answer holds every cell: a scan past the bound stops there (an
        // allocated answer is bounded once its shares are in).
        let cap = query
            .max_cells
            .filter(|_| query.limit.is_none() && query.offset == 0 && plan.is_none())
            .map(|m| usize::try_from(m).unwrap_or(usize::MAX));
        // Cells counted past `cap` (the answer is refused without being decoded).
        let mut over: Option<usize> = None;
        let zero = vec![0u32; self.dicts.account.len()];
        let mut sums: Vec<(u128, I256)> = Vec::new();
        let mut merged: Option<IdMap<u128, I256>> = None;
        for (pi, (part, live)) in self.parts().enumerate() {
            let part_filters = self.part_filters(part, query, &filters);
            let dims = self.part_dims(part, query, &tags, &radices, &zero);
            let layout = Layout {
                dims: &dims,
                filters: &part_filters,
                bucket_of_day: &bucket_of_day,
                start,
                end,
                n_buckets,
                n_currency,
                cancel,
                exclude: plan.as_ref().and_then(|p| p.exclusion(pi)),
            };
            let part_sums = part.part_sums(&layout, live, cells, (cap, &mut over));
            if over.is_some() {
                break;
            }
            if self.layers.is_empty() && plan.is_none() {
                sums = part_sums;
                break;
            }
            let m = merged.get_or_insert_with(IdMap::default);
            for (k, v) in part_sums {
                *m.entry(k).or_insert(I256::ZERO) += v;
            }
            if cap.is_some_and(|c| m.len() > c) {
                over = Some(m.len());
                break;
            }
        }
        if let Some(mut m) = merged {
            if let Some(plan) = &plan {
                let at = super::allocate::Cells {
                    query,
                    tags: &tags,
                    radices: &radices,
                    bucket_of_day: &bucket_of_day,
                    n_buckets,
                    n_currency,
                };
                self.allocate(plan, &at, &mut m);
            }
            sums = m.into_iter().collect();
        }
        let dims = radices;

        if cancel.load(Ordering::Relaxed) {
            return Err(QueryError::Cancelled);
        }
        // Nothing past the bound is decoded: without paging, the answer holds every cell.
        if let Some(max) = query.max_cells {
            let cells = over.unwrap_or(sums.len()) as u64;
            if query.limit.is_none() && query.offset == 0 && cells > max {
                return Err(QueryError::AnswerTooLarge { cells, max });
            }
        }
        // Decode cells into compact rows (ids and sums, no text yet): sorting and paging a
        // big answer costs no strings, and only the rows answered are rendered. A cell's key
        // is (group, bucket, currency) in mixed radix, so sorted keys hold each group's cells
        // together, in (bucket, currency) order.
        sums.sort_unstable_by_key(|c| c.0);
        let per_group = n_buckets * n_currency;
        let mut rows: Vec<(Vec<u32>, Cells)> = Vec::new();
        let mut current: Option<u128> = None;
        for (key, sum) in sums {
            let group_key = key / per_group;
            let rest = key % per_group;
            let cell = (
                u32::try_from(rest / n_currency).unwrap_or(0),
                u32::try_from(rest % n_currency).unwrap_or(0),
            );
            if current != Some(group_key) {
                current = Some(group_key);
                let mut group = vec![0u32; dims.len()];
                let mut g = group_key;
                for (slot, radix) in group.iter_mut().zip(&dims).rev() {
                    *slot = u32::try_from(g % radix).unwrap_or(0);
                    g /= radix;
                }
                rows.push((group, Vec::new()));
            }
            if let Some(row) = rows.last_mut() {
                row.1.push((cell, sum));
            }
        }

        // Display names per group-by key, resolved once per query (not once per cell).
        let names: Vec<Vec<String>> = query
            .group_by
            .iter()
            .map(|k| match k {
                _ if tags.contains_key(k) => tags[k].clone(),
                _ => self.display_names(k),
            })
            .collect();
        let name_of = |dim: usize, id: u32| -> &str {
            names[dim].get(id as usize).map_or("", String::as_str)
        };
        let mut compact: Vec<Compact> = rows
            .into_iter()
            .map(|(ids, cells)| {
                let mut totals: BTreeMap<u32, I256> = BTreeMap::new();
                for ((_, currency), sum) in &cells {
                    *totals.entry(*currency).or_insert(I256::ZERO) += *sum;
                }
                let top = totals.values().copied().max().unwrap_or(I256::ZERO);
                Compact {
                    ids,
                    cells,
                    totals,
                    top,
                }
            })
            .collect();
        // `Sort::Key` compares the shown names in group-by order; ties of `Sort::Total` in
        // the order of the keys' names (as the answer's group objects compare).
        let by_names = |order: &[usize], a: &Compact, b: &Compact| {
            order
                .iter()
                .map(|&dim| name_of(dim, a.ids[dim]).cmp(name_of(dim, b.ids[dim])))
                .find(|o| o.is_ne())
                .unwrap_or(std::cmp::Ordering::Equal)
        };
        let in_query_order: Vec<usize> = (0..dims.len()).collect();
        let mut by_key_name = in_query_order.clone();
        by_key_name.sort_by_key(|&dim| query.group_by[dim].as_str());
        match query.sort {
            Sort::Total => {
                compact
                    .sort_by(|a, b| b.top.cmp(&a.top).then_with(|| by_names(&by_key_name, a, b)));
            }
            Sort::Key => compact.sort_by(|a, b| by_names(&in_query_order, a, b)),
        }
        let total_count = compact.len();
        let page = compact
            .into_iter()
            .skip(query.offset as usize)
            .take(query.limit.map_or(usize::MAX, |l| l as usize));
        let page: Vec<Compact> = page.collect();
        if let Some(max) = query.max_cells {
            // Each period's amount and each total count.
            let cells: u64 = page
                .iter()
                .map(|r| (r.cells.len() + r.totals.len()) as u64)
                .sum();
            if cells > max {
                return Err(QueryError::AnswerTooLarge { cells, max });
            }
        }

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
        let rows = page.into_iter().map(|row| {
            let cells = row.cells.into_iter().map(|((bucket, currency), sum)| Cell {
                bucket,
                currency: currency_of(currency),
                sum,
            });
            let totals = row.totals.into_iter().map(|(c, v)| (currency_of(c), v));
            (row.ids, cells, totals)
        });
        let parts = AnswerParts {
            range: query.range,
            granularity: query.granularity,
            group_by: query.group_by.clone(),
            labels,
            scale: self.scale,
            total_count,
        };
        Ok(Answer::new(parts, rows, name_of))
    }
}

/// A row's sums per (bucket, currency) id, in that order.
type Cells = Vec<((u32, u32), I256)>;

/// A result row before its text: group ids, sums, totals per currency id.
struct Compact {
    ids: Vec<u32>,
    cells: Cells,
    /// Per currency id, the row's total.
    totals: BTreeMap<u32, I256>,
    /// The largest total (the sort key of `Sort::Total`).
    top: I256,
}
