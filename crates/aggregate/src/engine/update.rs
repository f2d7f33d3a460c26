//! Updating a loaded engine instead of reloading it: the slices that changed — an account's
//! month, or every month of an account — come from the store again; nothing else is read.
//!
//! Two ways, chosen at [`EngineUpdate::finish`]:
//! - **Layered** (the usual one): the new rows become a small engine of their own, whose
//!   dictionaries continue the old one's, and the old engine's rows stay where they are —
//!   shared, not copied — as a layer that counts through its runs not replaced. A
//!   one-account re-sync costs reading that account's months and nothing proportional to
//!   the domain.
//! - **Copied**: one new engine with every live run copied column by column and the new rows
//!   added — when a project history changed (the project of copied rows is derived again, no
//!   cost is read), when the new rows need more decimals (or fewer: the rows of the most
//!   decimals went), when layers pile up ([`MAX_LAYERS`]) or replaced rows take more than a
//!   quarter of the memory. It also drops the dictionary values no row uses any more.
//!
//! The old engine is only read: queries keep answering from it while the new one is built,
//! and the caller swaps the new one in. Either way the result answers every query as a full
//! load of the same data would (proptested against one).

use std::collections::HashSet;
use std::sync::Arc;

use cloudbill_columnar::Partition;
use cloudbill_core::{AccountId, CostMetric, NaiveDate};
use ethnum::I256;

use super::builder::{month_of, Builder};
use super::catalog::Catalog;
use super::columns::{Costs, Slot};
use super::loader::EngineLoader;
use super::{day_number, Engine, Layer, Run};
use crate::QueryError;

/// Layers an engine may answer with before an update copies them into one.
pub const MAX_LAYERS: usize = 8;

/// Builds an engine from an old one and the changed slices' partitions ([`Engine::update`]).
pub struct EngineUpdate {
    old: Arc<Engine>,
    catalog: Catalog,
    /// Whole accounts replaced, and single (account, first day of month) slices.
    whole: HashSet<AccountId>,
    slices: HashSet<(AccountId, i32)>,
    /// The replaced slices' partitions, in month order.
    blobs: Vec<(AccountId, Vec<u8>)>,
    /// Their rows, and the most decimals of their costs.
    added: usize,
    scale: u32,
}

impl std::fmt::Debug for EngineUpdate {
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
        self: &Arc<Self>,
        catalog: Catalog,
        replaced: &[(AccountId, Option<NaiveDate>)],
    ) -> Option<EngineUpdate> {
        let partial = self.skipped.0.iter().any(|s| *s) || self.tags_skipped || self.attrs_skipped;
        if partial
            || self.metric != CostMetric::Billed
            || (self.runs.is_empty() && !self.day.is_empty())
        {
            return None;
        }
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
        Some(EngineUpdate {
            old: Arc::clone(self),
            catalog,
            whole,
            slices,
            blobs: Vec::new(),
            added: 0,
            scale: 0,
        })
    }

    /// Account `id`'s project history as the project column was derived from it.
    fn history_of(&self, id: usize) -> &[(Option<NaiveDate>, u32)] {
        self.history.get(id).map_or(&[], Vec::as_slice)
    }
}

/// One part of the old engine with the runs of it that stay.
struct Kept {
    rows: Arc<Engine>,
    runs: Vec<Run>,
    /// Runs of `rows` dropped (replaced now or before).
    dropped: usize,
}

impl EngineUpdate {
    /// Adds one partition of a replaced slice. Partitions must come in month order, as the
    /// store streams them; a partition of a slice not replaced is refused (it would count
    /// twice).
    pub fn add(&mut self, account: AccountId, blob: &[u8]) -> Result<(), QueryError> {
        let corrupt = |e: cloudbill_core::ValidationError| QueryError::Corrupt(e.to_string());
        let p = Partition::decode(blob).map_err(corrupt)?;
        let month = day_number(p.month);
        if !self.replaced(account, month) {
            return Err(QueryError::Corrupt(format!(
                "a partition of account {account} that was not replaced"
            )));
        }
        self.scale = self.scale.max(p.costs().map_err(corrupt)?.max_scale());
        self.added += p.rows;
        self.blobs.push((account, blob.to_vec()));
        Ok(())
    }

    /// Rows added from partitions so far.
    pub fn added(&self) -> usize {
        self.added
    }

    fn replaced(&self, account: AccountId, month: i32) -> bool {
        self.whole.contains(&account) || self.slices.contains(&(account, month))
    }

    /// The new engine.
    pub fn finish(self) -> Result<Engine, QueryError> {
        let old = &self.old;
        // Every part's ids are the newest dictionary's.
        let accounts = old
            .dicts
            .account
            .values()
            .iter()
            .map(|v| v.parse::<AccountId>().ok())
            .collect::<Vec<_>>();
        let month_of_run = |part: &Engine, run: &Run| month_of(part.day[run.lo]);
        let mut kept: Vec<Kept> = Vec::new();
        // The old engine's own rows, then its layers' (their own rows only).
        let layers: Vec<(Arc<Engine>, Option<&[Run]>)> = std::iter::once((Arc::clone(old), None))
            .chain(
                old.layers
                    .iter()
                    .map(|l| (Arc::clone(&l.rows), Some(l.runs.as_slice()))),
            )
            .collect();
        for (rows, live) in layers {
            let runs_of = live.unwrap_or(&rows.runs);
            let runs: Vec<Run> = runs_of
                .iter()
                .filter(|r| {
                    accounts
                        .get(r.account as usize)
                        .copied()
                        .flatten()
                        .is_none_or(|a| !self.replaced(a, month_of_run(&rows, r)))
                })
                .copied()
                .collect();
            let dropped = rows.runs.len() - runs.len();
            kept.push(Kept {
                rows,
                runs,
                dropped,
            });
        }
        if self.layered_fits(&kept) {
            let builder = Builder::continuing(old, &self.catalog, self.added);
            // The new rows' projects are the old rows' only when no history changed.
            if self.same_history(&builder) {
                return self.layered(builder, kept);
            }
        }
        self.copied(&kept, &accounts)
    }

    /// Whether every old account's project history is `builder`'s.
    fn same_history(&self, builder: &Builder) -> bool {
        let old = &self.old;
        (0..old.dicts.account.len()).all(|i| {
            old.history_of(i)
                == builder
                    .account_history
                    .get(i)
                    .map_or(&[][..], Vec::as_slice)
        })
    }

    /// Whether the new rows can go beside the kept ones as to scale, layers and dead weight.
    fn layered_fits(&self, kept: &[Kept]) -> bool {
        let old = &self.old;
        let live_scale = kept
            .iter()
            .flat_map(|k| k.runs.iter().map(|r| u32::from(r.scale)))
            .chain(std::iter::once(self.scale))
            .max()
            .unwrap_or(0);
        let rows: usize = kept.iter().map(|k| k.rows.day.len()).sum();
        let dead: usize = kept
            .iter()
            .map(|k| k.rows.day.len() - k.runs.iter().map(|r| r.hi - r.lo).sum::<usize>())
            .sum();
        let layers = kept.iter().filter(|k| !k.runs.is_empty()).count();
        live_scale == old.scale && layers < MAX_LAYERS && dead * 4 <= rows + self.added
    }

    /// The new rows as an engine of their own, the kept rows as its layers.
    fn layered(self, builder: Builder, kept: Vec<Kept>) -> Result<Engine, QueryError> {
        let mut loader = Engine::loader(self.catalog);
        loader.b = builder;
        for (account, blob) in &self.blobs {
            loader.add(*account, blob)?;
        }
        let mut engine = loader.finish();
        engine.layers = kept
            .into_iter()
            .filter(|k| !k.runs.is_empty())
            .map(|k| Layer {
                whole: k.dropped == 0,
                rows: k.rows,
                runs: k.runs,
            })
            .collect();
        Ok(engine)
    }

    /// One engine: every kept run copied, the new rows added, month by month.
    fn copied(self, kept: &[Kept], accounts: &[Option<AccountId>]) -> Result<Engine, QueryError> {
        let old = &self.old;
        // Fresh account, project and group ids from the catalog; the other dictionaries
        // continue the old ones (copied ids stay valid).
        let live: usize = kept
            .iter()
            .flat_map(|k| k.runs.iter().map(|r| r.hi - r.lo))
            .sum();
        let rows = live + self.added;
        let mut loader = Engine::loader(self.catalog.clone());
        loader.b = Builder::regrouped(old, &self.catalog, rows);
        // Every kept run with its month, in month order (then part, then row).
        let mut runs: Vec<(i32, usize, Run)> = kept
            .iter()
            .enumerate()
            .flat_map(|(i, k)| {
                k.runs
                    .iter()
                    .map(move |r| (month_of(k.rows.day[r.lo]), i, *r))
            })
            .collect();
        runs.sort_unstable_by_key(|(m, i, r)| (*m, *i, r.lo));
        let mut next = runs.iter().peekable();
        let mut copy_through = |loader: &mut EngineLoader, month: i32| -> Result<(), QueryError> {
            while let Some((m, i, run)) = next.next_if(|(m, _, _)| *m <= month) {
                let account = accounts
                    .get(run.account as usize)
                    .copied()
                    .flatten()
                    .ok_or_else(|| QueryError::Corrupt("an account id that is not one".into()))?;
                copy_run(loader, &kept[*i].rows, account, *m, run)?;
            }
            Ok(())
        };
        for (account, blob) in &self.blobs {
            let month = Partition::decode(blob)
                .map_err(|e| QueryError::Corrupt(e.to_string()))?
                .month;
            copy_through(&mut loader, day_number(month))?;
            loader.add(*account, blob)?;
        }
        copy_through(&mut loader, i32::MAX)?;
        // The scale a whole load would have: the most decimals of the rows kept (answers
        // print their sums at it).
        let scale = loader
            .runs
            .iter()
            .map(|r| u32::from(r.scale))
            .max()
            .unwrap_or(0);
        loader.b.downscale(scale);
        Ok(loader.finish())
    }
}

/// Appends `part`'s rows of `run` (account `account`, month `month`) to `loader`.
fn copy_run(
    loader: &mut EngineLoader,
    part: &Engine,
    account: AccountId,
    month: i32,
    run: &Run,
) -> Result<(), QueryError> {
    let range = run.lo..run.hi;
    let new_month = loader.enter_month(month)?;
    let first_day = NaiveDate::from_num_days_from_ce_opt(month)
        .ok_or_else(|| QueryError::Corrupt("a month out of range".into()))?;
    let b = &mut loader.b;
    let account = b.account(account);
    let project_of_day = b.projects_of_month(account, first_day);
    let days: Vec<u8> = part.day[range.clone()]
        .iter()
        .map(|d| u8::try_from(d - month + 1).unwrap_or(0))
        .collect();
    let before = b.day.len();
    let rows = range.len();
    EngineLoader::note_run(
        &mut loader.runs,
        account,
        before..before + rows,
        &days,
        &project_of_day,
        new_month,
        u32::from(run.scale),
    );
    let b = &mut loader.b;
    b.day.extend_from_slice(&part.day[range.clone()]);
    b.cols[Slot::Account].extend_repeat(account, rows);
    b.cols[Slot::Project].extend_indexed(&days, &project_of_day);
    for slot in Slot::PER_ROW {
        b.cols[slot].extend_from(part.col(slot), range.clone());
    }
    b.tags.extend_from(&part.tags, range.clone(), before);
    b.attrs.extend_from(&part.attrs, range.clone(), before);
    copy_costs(b, part, range)
}

/// Appends the part's costs of `range` at the builder's scale (never below the part's).
fn copy_costs(
    b: &mut Builder,
    part: &Engine,
    range: std::ops::Range<usize>,
) -> Result<(), QueryError> {
    let factor = 10i128
        .checked_pow(b.scale - part.scale)
        .ok_or(QueryError::Overflow)?;
    let (start, end) = (range.start, range.end);
    let big_from = part.big.partition_point(|(row, _)| *row < start);
    let mut big = part.big[big_from..]
        .iter()
        .take_while(|(row, _)| *row < end)
        .peekable();
    match (&part.costs, &mut b.costs) {
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
                        let v = match &part.costs {
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
