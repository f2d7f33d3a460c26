//! Updating a loaded engine in place of reloading it: the slices that changed — an account's
//! month, or every month of an account — come from the store again, every other account run is
//! copied from the old engine column by column, and the catalog (accounts, projects, groups,
//! assignments) is taken new, so a project move or a new account re-derives the project of
//! each copied row without reading a cost again.
//!
//! The old engine is only read: queries keep answering from it while the new one is built,
//! and the caller swaps the new one in. The result equals a full load of the same data (the
//! rows of a month may come in another account order, which no answer depends on); its
//! dictionaries may keep values no row uses any more (they match nothing and cost a few
//! bytes), so a caller reloads whole now and then.

use std::collections::HashSet;

use cloudbill_columnar::Partition;
use cloudbill_core::{AccountId, CostMetric, NaiveDate};
use ethnum::I256;

use super::builder::Builder;
use super::catalog::Catalog;
use super::columns::{Costs, Slot};
use super::loader::EngineLoader;
use super::{day_number, Engine};
use crate::QueryError;

/// Builds an engine from an old one and the changed slices' partitions
/// ([`Engine::update`]).
pub struct EngineUpdate<'e> {
    old: &'e Engine,
    loader: EngineLoader,
    /// Months (first days) of whole accounts replaced, and single (account, month) slices.
    whole: HashSet<AccountId>,
    slices: HashSet<(AccountId, i32)>,
    /// The old engine's account ids as store ids.
    old_accounts: Vec<AccountId>,
    /// The next old month to copy (index into `old.months`).
    next_month: usize,
    /// Rows added from partitions (the rest were copied).
    added: usize,
}

impl std::fmt::Debug for EngineUpdate<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineUpdate")
            .field("whole", &self.whole.len())
            .field("slices", &self.slices.len())
            .field("added", &self.added)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Starts a new engine that is this one with the slices `replaced` — `(account,
    /// Some(first day of a month))` or `(account, None)` for all its months — taken out, the
    /// partitions given to [`EngineUpdate::add`] put in, and `catalog` (the current one)
    /// resolving names. `None` when this engine cannot be updated: it was built from records
    /// (no account runs), loaded with columns left out, or holds effective cost.
    pub fn update(
        &self,
        catalog: Catalog,
        replaced: &[(AccountId, Option<NaiveDate>)],
    ) -> Option<EngineUpdate<'_>> {
        let partial = self.skipped.0.iter().any(|s| *s) || self.tags_skipped || self.attrs_skipped;
        if partial
            || self.metric != CostMetric::Billed
            || (self.runs.is_empty() && !self.is_empty())
        {
            return None;
        }
        let old_accounts = self
            .dicts
            .account
            .values()
            .iter()
            .map(|v| v.parse::<AccountId>().ok())
            .collect::<Option<Vec<_>>>()?;
        let mut whole = HashSet::new();
        let mut slices = HashSet::new();
        for (account, month) in replaced {
            match month {
                None => {
                    whole.insert(*account);
                }
                Some(m) => {
                    slices.insert((*account, day_number(*m)));
                }
            }
        }
        // The new columns start as the old ones' shapes, with the old dictionaries (so copied
        // ids stay valid); accounts, projects and groups come from the new catalog.
        let rows = self.len() + self.len() / 16;
        let mut b = Builder::new(&catalog, rows, self.scale);
        let d = &self.dicts;
        b.dicts.provider = d.provider.clone();
        b.dicts.cloud_account = d.cloud_account.clone();
        b.dicts.region = d.region.clone();
        b.dicts.service = d.service.clone();
        b.dicts.usage_type = d.usage_type.clone();
        b.dicts.instance_type = d.instance_type.clone();
        b.dicts.currency = d.currency.clone();
        b.dicts.category = d.category.clone();
        for slot in Slot::PER_ROW {
            b.cols[slot] = self.col(slot).empty_like(rows);
        }
        b.costs = match &self.costs {
            Costs::Narrow(_) => Costs::Narrow(Vec::with_capacity(rows)),
            Costs::Wide(_) => Costs::Wide(Vec::with_capacity(rows)),
        };
        b.tags = self.tags.emptied(rows);
        b.attrs = self.attrs.emptied(rows);
        let mut loader = Engine::loader(catalog);
        loader.b = b;
        Some(EngineUpdate {
            old: self,
            loader,
            whole,
            slices,
            old_accounts,
            next_month: 0,
            added: 0,
        })
    }

    /// The column of `slot`.
    fn col(&self, slot: Slot) -> &super::Col {
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
}

impl EngineUpdate<'_> {
    /// Adds one partition of a replaced slice. Partitions must come in month order, as the
    /// store streams them; a partition of a slice not replaced is refused (it would count
    /// twice).
    pub fn add(&mut self, account: AccountId, blob: &[u8]) -> Result<(), QueryError> {
        let month = Partition::decode(blob)
            .map_err(|e| QueryError::Corrupt(e.to_string()))?
            .month;
        let month = day_number(month);
        if !self.replaced(account, month) {
            return Err(QueryError::Corrupt(format!(
                "a partition of account {account} that was not replaced"
            )));
        }
        self.copy_through(month)?;
        let before = self.loader.b.day.len();
        self.loader.add(account, blob)?;
        self.added += self.loader.b.day.len() - before;
        Ok(())
    }

    /// The new engine.
    pub fn finish(mut self) -> Result<Engine, QueryError> {
        self.copy_through(i32::MAX)?;
        // The scale a whole load would have: the most decimals of the rows kept (answers
        // print their sums at it).
        let scale = self
            .loader
            .runs
            .iter()
            .map(|r| u32::from(r.scale))
            .max()
            .unwrap_or(0);
        self.loader.b.downscale(scale);
        Ok(self.loader.finish())
    }

    /// Rows added from partitions so far.
    pub fn added(&self) -> usize {
        self.added
    }

    fn replaced(&self, account: AccountId, month: i32) -> bool {
        self.whole.contains(&account) || self.slices.contains(&(account, month))
    }

    /// Copies the old engine's kept runs of every month up to `month`, inclusive.
    fn copy_through(&mut self, month: i32) -> Result<(), QueryError> {
        let old = self.old;
        while let Some(&(m, lo)) = old.months.get(self.next_month) {
            if m > month {
                break;
            }
            self.next_month += 1;
            let hi = old.months.get(self.next_month).map_or(old.len(), |x| x.1);
            let first = old.runs.partition_point(|r| r.hi <= lo);
            for run in old.runs[first..].iter().take_while(|r| r.lo < hi) {
                let account = self.old_accounts[run.account as usize];
                if !self.replaced(account, m) {
                    self.copy_run(account, m, run.lo..run.hi, run.scale)?;
                }
            }
        }
        Ok(())
    }

    /// Appends old rows `range` (one account's run in month `month`).
    fn copy_run(
        &mut self,
        account: AccountId,
        month: i32,
        range: std::ops::Range<usize>,
        run_scale: u8,
    ) -> Result<(), QueryError> {
        let old = self.old;
        let new_month = self.loader.enter_month(month)?;
        let first_day = NaiveDate::from_num_days_from_ce_opt(month)
            .ok_or_else(|| QueryError::Corrupt("a month out of range".into()))?;
        let b = &mut self.loader.b;
        let account = b.account(account);
        let project_of_day = b.projects_of_month(account, first_day);
        let days: Vec<u8> = old.day[range.clone()]
            .iter()
            .map(|d| u8::try_from(d - month + 1).unwrap_or(0))
            .collect();
        let before = b.day.len();
        let rows = range.len();
        EngineLoader::note_run(
            &mut self.loader.runs,
            account,
            before..before + rows,
            &days,
            &project_of_day,
            new_month,
            u32::from(run_scale),
        );
        b.day.extend_from_slice(&old.day[range.clone()]);
        b.cols[Slot::Account].extend_repeat(account, rows);
        b.cols[Slot::Project].extend_indexed(&days, &project_of_day);
        for slot in Slot::PER_ROW {
            b.cols[slot].extend_from(old.col(slot), range.clone());
        }
        b.tags.extend_from(&old.tags, range.clone(), before);
        b.attrs.extend_from(&old.attrs, range.clone(), before);
        copy_costs(b, old, range)
    }
}

/// Appends the old engine's costs of `range` at the builder's scale (never below the old's).
fn copy_costs(
    b: &mut Builder,
    old: &Engine,
    range: std::ops::Range<usize>,
) -> Result<(), QueryError> {
    let factor = 10i128
        .checked_pow(b.scale - old.scale)
        .ok_or(QueryError::Overflow)?;
    let (start, end) = (range.start, range.end);
    let big_from = old.big.partition_point(|(row, _)| *row < start);
    let mut big = old.big[big_from..]
        .iter()
        .take_while(|(row, _)| *row < end)
        .peekable();
    match (&old.costs, &mut b.costs) {
        (Costs::Narrow(src), Costs::Narrow(dst)) if factor == 1 && big.peek().is_none() => {
            dst.extend_from_slice(&src[range]);
        }
        (Costs::Wide(src), Costs::Wide(dst)) if factor == 1 && big.peek().is_none() => {
            dst.extend_from_slice(&src[range]);
        }
        _ => {
            for row in range {
                match big.next_if(|(r, _)| *r == row) {
                    Some((_, wide)) => b.push_wide(*wide * I256::from(factor)),
                    None => {
                        let v = match &old.costs {
                            Costs::Narrow(c) => i128::from(c[row]),
                            Costs::Wide(c) => c[row],
                        };
                        match v.checked_mul(factor) {
                            Some(v) => b.push_cost(v),
                            None => b.push_wide(I256::from(v) * I256::from(factor)),
                        }
                    }
                }
            }
        }
    }
    Ok(())
}
