//! The warm engine: the whole domain in memory between reports, kept at the store's data
//! version by updating only what changed.
//!
//! When the version moves, the store's change log says which (account, month) slices and
//! whether the catalog changed since the engine's version; the new engine copies every other
//! account run from the old one and reads only those slices ([`Engine::update`]) — a
//! one-account re-sync costs a copy of the columns, not a reload. Without a usable log (too
//! old, an engine that cannot be updated, every [`FULL_RELOAD_EVERY`] updates to drop
//! dictionary values no row uses) it loads whole.
//!
//! One load at a time (`Inner::loading`); reports asking while one runs are answered from the
//! engine already there — the old state, never a mix — and the new one is swapped in whole.

use std::sync::Arc;

use cloudbill_aggregate::Engine;
use cloudbill_core::{AccountId, CostMetric, NaiveDate};
use cloudbill_store::{DataChange, DataChanges};

use crate::{Billing, ServiceError};

/// After this many updates in a row the warm engine is loaded whole instead.
pub const FULL_RELOAD_EVERY: u32 = 256;

/// How often an update re-reads slices another commit changed while they were read.
const UPDATE_ATTEMPTS: usize = 3;

/// A warm engine, the data version it holds and how many updates it went through.
#[derive(Clone)]
pub(crate) struct Warm {
    pub(crate) version: i64,
    pub(crate) engine: Arc<Engine>,
    pub(crate) updates: u32,
}

/// How the warm engine was brought to a version (for logs and benchmarks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refreshed {
    /// Already at the store's version.
    Current,
    /// Updated in place: slices replaced, rows read from the store.
    Updated {
        /// (account, month) slices and whole accounts replaced.
        slices: usize,
        /// Rows read from the store.
        rows: usize,
    },
    /// Loaded whole.
    Loaded,
}

/// What the warm engine holds ([`Billing::warm_info`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WarmInfo {
    /// The data version it holds.
    pub version: i64,
    /// Updates in place since it was loaded whole.
    pub updates: u32,
    /// Records held.
    pub records: usize,
    /// Memory held ([`Engine::memory_bytes`]).
    pub bytes: usize,
    /// Earlier loads' rows it answers with besides its own ([`Engine::layers`]).
    pub layers: usize,
}

impl Billing {
    /// The warm engine loaded now, if any: its data version, updates since its last whole
    /// load, records and memory.
    pub fn warm_info(&self) -> Option<WarmInfo> {
        self.current_warm().map(|w| WarmInfo {
            version: w.version,
            updates: w.updates,
            records: w.engine.len(),
            bytes: w.engine.memory_bytes(),
            layers: w.engine.layers(),
        })
    }

    /// The warm engine now, if one is loaded.
    pub(crate) fn current_warm(&self) -> Option<Warm> {
        self.inner
            .engine
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Drops the warm engine (the caller holds the loading lock).
    pub(crate) fn take_warm(&self) -> Option<Warm> {
        self.inner
            .engine
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }

    fn put_warm(&self, warm: Warm) {
        self.inner.engine_bytes.store(
            warm.engine.memory_bytes(),
            std::sync::atomic::Ordering::Relaxed,
        );
        *self
            .inner
            .engine
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(warm);
    }

    /// The warm engine for a report that read data version `version`: the loaded one when it
    /// is at that version; else the one loaded or updated now — unless another load is under
    /// way, when the report is answered from the engine already there (the state before the
    /// change). Returns the engine and the version it holds.
    pub(crate) async fn warm_engine(
        &self,
        version: i64,
    ) -> Result<(Arc<Engine>, i64), ServiceError> {
        if let Some(w) = self.current_warm() {
            if w.version >= version {
                return Ok((w.engine, w.version));
            }
        }
        let _loading = match self.inner.loading.try_lock() {
            Ok(guard) => guard,
            Err(_) => {
                if let Some(w) = self.current_warm() {
                    return Ok((w.engine, w.version));
                }
                // Nothing loaded yet: wait for the first load.
                self.inner.loading.lock().await
            }
        };
        self.bring_up_to(version).await?;
        let w = self
            .current_warm()
            .ok_or_else(|| ServiceError::Internal("the warm engine did not load".into()))?;
        Ok((w.engine, w.version))
    }

    /// Brings the warm engine to the store's current data version, waiting for a load under
    /// way first; loads it when none is. What a replica does when told of another's commit,
    /// and what a write does before it returns, so its writer's next report sees it.
    pub async fn refresh_engine(&self) -> Result<Refreshed, ServiceError> {
        let _loading = self.inner.loading.lock().await;
        let version = self.inner.store.data_version(self.domain_id()).await?;
        self.bring_up_to(version).await
    }

    /// Loads or updates the warm engine to at least `version` (the caller holds the loading
    /// lock).
    async fn bring_up_to(&self, version: i64) -> Result<Refreshed, ServiceError> {
        let current = self.current_warm();
        if let Some(w) = &current {
            if w.version >= version {
                return Ok(Refreshed::Current);
            }
        }
        if let Some(w) = current.filter(|w| w.updates < FULL_RELOAD_EVERY) {
            if let Some((warm, how)) = self.update_warm(&w).await? {
                self.put_warm(warm);
                return Ok(how);
            }
        }
        // Whole: the version read before the load (a commit during it is loaded again next
        // time, never lost).
        let version = self
            .inner
            .store
            .data_version(self.domain_id())
            .await?
            .max(version);
        let engine = self.load_engine(None, None, CostMetric::Billed).await?;
        self.put_warm(Warm {
            version,
            engine: Arc::new(engine),
            updates: 0,
        });
        Ok(Refreshed::Loaded)
    }

    /// `w` with the slices changed since its version replaced, or `None` when it cannot be
    /// updated (the log does not reach back, the engine is not a loaded one, commits kept
    /// changing the slices read).
    async fn update_warm(&self, w: &Warm) -> Result<Option<(Warm, Refreshed)>, ServiceError> {
        let store = &self.inner.store;
        let domain = self.domain_id();
        let Some(mut changes) = store.changes_since(domain, w.version).await? else {
            return Ok(None);
        };
        for _ in 0..UPDATE_ATTEMPTS {
            let mut blobs: Vec<(AccountId, Vec<u8>)> = Vec::new();
            store
                .for_each_slice(domain, &changes.changes, &mut |account, blob: &[u8]| {
                    blobs.push((account, blob.to_vec()));
                    true
                })
                .await?;
            // A commit between the log and the slices' read may have changed an account read
            // here: its months read now and its months copied would be of two versions.
            // Then read again, that commit's changes included.
            let Some(later) = store.changes_since(domain, changes.version).await? else {
                return Ok(None);
            };
            let read: Vec<AccountId> = changes
                .changes
                .iter()
                .filter_map(DataChange::account)
                .collect();
            if later
                .changes
                .iter()
                .filter_map(DataChange::account)
                .any(|a| read.contains(&a))
            {
                let mut all = changes.changes;
                all.extend(later.changes);
                changes = DataChanges::new(later.version, all);
                continue;
            }
            let catalog = if changes.catalog() {
                self.catalog().await?
            } else {
                w.engine.catalog().clone()
            };
            let slices: Vec<(AccountId, Option<NaiveDate>)> = changes
                .changes
                .iter()
                .filter_map(|c| match c {
                    DataChange::Catalog => None,
                    DataChange::Account(a) => Some((*a, None)),
                    DataChange::Month(a, m) => Some((*a, Some(*m))),
                })
                .collect();
            let old = Arc::clone(&w.engine);
            let count = slices.len();
            // Copying the columns is CPU work: off the async workers.
            let built = tokio::task::spawn_blocking(move || {
                let Some(mut update) = old.update(catalog, &slices) else {
                    return Ok(None);
                };
                for (account, blob) in &blobs {
                    update.add(*account, blob)?;
                }
                let rows = update.added();
                update.finish().map(|e| Some((e, rows)))
            })
            .await
            .map_err(|e| ServiceError::Internal(format!("the engine update stopped: {e}")))??;
            let Some((engine, rows)) = built else {
                return Ok(None);
            };
            return Ok(Some((
                Warm {
                    version: changes.version,
                    engine: Arc::new(engine),
                    updates: w.updates + 1,
                },
                Refreshed::Updated {
                    slices: count,
                    rows,
                },
            )));
        }
        Ok(None)
    }
}
