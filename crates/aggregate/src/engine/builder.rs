//! Accumulates an engine's columns, from records or partitions.

use std::collections::HashMap;

use chrono::Datelike;
use cloudbill_core::{AccountId, Decimal, GroupId, NaiveDate};
use ethnum::I256;

use super::catalog::{Catalog, Dict, NONE, UNASSIGNED};
use super::columns::{BySlot, Col, Costs, IdMap, Slot};
use super::tags::TagColumns;
use super::{day_number, Dicts, Engine};
use crate::QueryError;

/// Accumulates columns while an engine is built.
pub(super) struct Builder {
    pub(super) dicts: Dicts,
    pub(super) project_group: Vec<u32>,
    pub(super) account_index: IdMap<AccountId, u32>,
    pub(super) account_history: Vec<Vec<(Option<NaiveDate>, u32)>>,
    pub(super) unassigned: u32,
    pub(super) day: Vec<i32>,
    pub(super) cols: BySlot<Col>,
    pub(super) costs: Costs,
    /// Rows whose cost does not fit an `i128` at `scale` (their column value is 0), in row
    /// order: amounts near Decimal's limit beside amounts with many decimals.
    pub(super) big: Vec<(usize, I256)>,
    pub(super) scale: u32,
    /// One column per tag key.
    pub(super) tags: TagColumns,
    /// One column per FOCUS attribute that is a dimension.
    pub(super) attrs: TagColumns,
}

impl Builder {
    pub(super) fn new(catalog: &Catalog, count: usize, scale: u32) -> Self {
        Self::with_dicts(Dicts::default(), catalog, count, scale)
    }

    /// A builder whose ids continue `old`'s (every dictionary starts as `old`'s, new catalog
    /// accounts, projects and groups appended), with `catalog`'s project histories and
    /// groups, columns of `old`'s widths with room for `count` rows, at `old`'s scale: rows
    /// built here mean the same as `old`'s rows, side by side.
    pub(super) fn continuing(old: &Engine, catalog: &Catalog, count: usize) -> Self {
        Self::shaped_like(old.dicts.clone(), old, catalog, count)
    }

    /// As [`Builder::continuing`], but with account, project and group ids fresh from
    /// `catalog`: rows copied from `old` keep their other ids, and their account and project
    /// are given again (an engine of its own, not a layer beside `old`).
    pub(super) fn regrouped(old: &Engine, catalog: &Catalog, count: usize) -> Self {
        let d = &old.dicts;
        let dicts = Dicts {
            provider: d.provider.clone(),
            cloud_account: d.cloud_account.clone(),
            region: d.region.clone(),
            service: d.service.clone(),
            usage_type: d.usage_type.clone(),
            instance_type: d.instance_type.clone(),
            currency: d.currency.clone(),
            category: d.category.clone(),
            ..Dicts::default()
        };
        Self::shaped_like(dicts, old, catalog, count)
    }

    /// A builder over `dicts` and `catalog` with `old`'s column widths, cost width and tag
    /// and attribute keys, room for `count` rows, at `old`'s scale.
    fn shaped_like(dicts: Dicts, old: &Engine, catalog: &Catalog, count: usize) -> Self {
        let mut b = Self::with_dicts(dicts, catalog, count, old.scale);
        for slot in Slot::PER_ROW {
            b.cols[slot] = old.col(slot).empty_like(count);
        }
        if let Costs::Wide(_) = &old.costs {
            b.costs = Costs::Wide(Vec::with_capacity(count));
        }
        b.tags = old.tags.emptied(count);
        b.attrs = old.attrs.emptied(count);
        b
    }

    /// A builder over `dicts` with `catalog`'s projects, groups and accounts added (ids of
    /// those already there kept; on empty dictionaries, in catalog order, so names resolve
    /// for filters even without records), each project's group and each account's project
    /// history as ids.
    fn with_dicts(mut dicts: Dicts, catalog: &Catalog, count: usize, scale: u32) -> Self {
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
        for (idx, v) in dicts.account.values().iter().enumerate() {
            if let Ok(id) = v.parse::<AccountId>() {
                account_index.insert(id, u32::try_from(idx).unwrap_or(u32::MAX));
            }
        }
        let mut account_history = vec![Vec::new(); dicts.account.len()];
        for a in &catalog.accounts {
            let idx = dicts.account.id(&a.id.to_string()) as usize;
            account_index.insert(a.id, u32::try_from(idx).unwrap_or(u32::MAX));
            if account_history.len() <= idx {
                account_history.resize(idx + 1, Vec::new());
            }
            account_history[idx] = a
                .history
                .iter()
                .map(|h| {
                    let project = dicts.project.get(&h.project.to_string());
                    (h.from, project.unwrap_or(unassigned))
                })
                .collect();
        }
        Self {
            dicts,
            project_group,
            account_index,
            account_history,
            unassigned,
            day: Vec::with_capacity(count),
            cols: BySlot(std::array::from_fn(|_| Col::with_capacity(count))),
            costs: Costs::Narrow(Vec::with_capacity(count)),
            big: Vec::new(),
            scale,
            tags: TagColumns::default(),
            attrs: TagColumns::default(),
        }
    }

    /// The dictionary id of an account; one the catalog does not know still counts
    /// (consolidated), as "(unassigned)".
    pub(super) fn account(&mut self, id: AccountId) -> u32 {
        if let Some(a) = self.account_index.get(&id) {
            return *a;
        }
        let idx = self.dicts.account.id(&id.to_string());
        self.account_index.insert(id, idx);
        idx
    }

    /// The project `account` was assigned to on `date` ("(unassigned)" for none).
    pub(super) fn project_on(&self, account: u32, date: NaiveDate) -> u32 {
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

    /// The project of `account` on each day (1–31) of the month starting `first_day`, looked
    /// up once per day.
    pub(super) fn projects_of_month(&self, account: u32, first_day: NaiveDate) -> [u32; 32] {
        let mut project_of_day = [0u32; 32];
        for (d, slot) in project_of_day.iter_mut().enumerate().skip(1) {
            if let Some(date) = first_day.with_day(u32::try_from(d).unwrap_or(1)) {
                *slot = self.project_on(account, date);
            }
        }
        project_of_day
    }

    /// The dictionary of a text column (accounts and projects have theirs from the catalog).
    pub(super) fn dict_for(&mut self, slot: Slot) -> &mut Dict {
        match slot {
            Slot::Account => &mut self.dicts.account,
            Slot::Project => &mut self.dicts.project,
            Slot::Provider => &mut self.dicts.provider,
            Slot::CloudAccount => &mut self.dicts.cloud_account,
            Slot::Region => &mut self.dicts.region,
            Slot::Service => &mut self.dicts.service,
            Slot::UsageType => &mut self.dicts.usage_type,
            Slot::InstanceType => &mut self.dicts.instance_type,
            Slot::Currency => &mut self.dicts.currency,
            Slot::Category => &mut self.dicts.category,
        }
    }

    /// Appends a row. `ids`: provider, cloud account, region, service, usage type, instance
    /// type, currency, category.
    pub(super) fn push(
        &mut self,
        day: i32,
        date: NaiveDate,
        account: u32,
        ids: [u32; 8],
        cost: I256,
    ) {
        let project = self.project_on(account, date);
        self.day.push(day);
        self.cols[Slot::Account].push(account);
        self.cols[Slot::Project].push(project);
        for (slot, id) in Slot::PER_ROW.into_iter().zip(ids) {
            self.cols[slot].push(id);
        }
        self.push_wide(cost);
    }

    /// Appends a cost that may not fit an `i128` at the engine's scale.
    pub(super) fn push_wide(&mut self, cost: I256) {
        match i128::try_from(cost) {
            Ok(v) => self.push_cost(v),
            Err(_) => {
                self.big.push((self.costs_len(), cost));
                self.push_cost(0);
            }
        }
    }

    pub(super) fn costs_len(&self) -> usize {
        match &self.costs {
            Costs::Narrow(c) => c.len(),
            Costs::Wide(c) => c.len(),
        }
    }

    /// Appends a cost (at the engine's scale), widening the column when one needs it.
    pub(super) fn push_cost(&mut self, cost: i128) {
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
    pub(super) fn finish(self, catalog: Catalog, months: Option<Vec<(i32, usize)>>) -> Engine {
        let Builder {
            dicts,
            project_group,
            account_history,
            day,
            cols,
            costs,
            big,
            scale,
            tags,
            attrs,
            ..
        } = self;
        let [mut account, mut project, mut provider, mut cloud_account, mut region, mut service, mut usage_type, mut instance_type, mut currency, mut category] =
            cols.0;
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
        let (mut tags, mut attrs) = (tags, attrs);
        tags.shrink_to_fit();
        attrs.shrink_to_fit();
        match &mut costs {
            Costs::Narrow(c) => c.shrink_to_fit(),
            Costs::Wide(c) => c.shrink_to_fit(),
        }
        let months = months.unwrap_or_else(|| month_starts(&day));
        Engine {
            day,
            months,
            runs: Vec::new(),
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
            tags,
            attrs,
            costs,
            big,
            scale,
            dicts,
            project_group,
            catalog,
            skipped: BySlot::default(),
            tags_skipped: false,
            attrs_skipped: false,
            metric: cloudbill_core::CostMetric::Billed,
            history: account_history,
            layers: Vec::new(),
            plans: super::allocate::PlanCache::default(),
        }
    }

    /// Raises the engine's scale to `scale`, multiplying every cost held so far.
    pub(super) fn rescale(&mut self, scale: u32) -> Result<(), QueryError> {
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

impl Builder {
    /// Lowers the engine's scale to `scale` when every cost held has at most that many
    /// decimals (the caller knows it: an update that dropped the rows of the most decimals);
    /// each cost is divided exactly. Does nothing when `scale` is not lower.
    pub(super) fn downscale(&mut self, scale: u32) {
        if scale >= self.scale {
            return;
        }
        let Some(factor) = 10i128.checked_pow(self.scale - scale) else {
            return;
        };
        match &mut self.costs {
            Costs::Narrow(c) => {
                let f = i64::try_from(factor).unwrap_or(i64::MAX);
                for v in c.iter_mut() {
                    *v /= f;
                }
            }
            Costs::Wide(c) => {
                for v in c.iter_mut() {
                    *v /= factor;
                }
            }
        }
        for (_, v) in &mut self.big {
            *v /= I256::from(factor);
        }
        self.scale = scale;
    }
}

/// `(first day of the month, first row)` at every month change of a month-sorted day column.
pub(super) fn month_starts(day: &[i32]) -> Vec<(i32, usize)> {
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
pub(super) fn month_of(d: i32) -> i32 {
    NaiveDate::from_num_days_from_ce_opt(d)
        .and_then(|n| n.with_day(1))
        .map_or(d, day_number)
}

/// `amount` as an integer at `scale` (≥ its own scale, ≤ 28): exact whatever its size.
pub(super) fn scaled(amount: Decimal, scale: u32) -> I256 {
    let shift = scale.saturating_sub(amount.scale());
    I256::from(amount.mantissa()) * I256::from(10i128.pow(shift))
}
