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
        let version = self.cost_store().data_version(self.domain_id()).await?;
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
            .cost_store()
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
        let store = self.cost_store();
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::Utc;
    use cloudbill_aggregate::Query;
    use cloudbill_core::{
        ChargeCategory, CostRecord, Currency, DateRange, Decimal, Granularity, JobKind, Money,
        ProviderKind, SyncJob,
    };
    use cloudbill_store::{MemoryStore, Store};

    use crate::{Billing, BillingConfig, NewAccount, Principal, ProviderRegistry};

    fn day(d: u32) -> chrono::NaiveDate {
        chrono::NaiveDate::from_ymd_opt(2025, 3, d).unwrap_or_default()
    }

    /// Writes `cost` on each of March 1–3 for the account, as one window replace.
    async fn write(
        store: &Arc<dyn Store>,
        b: &Billing,
        account: cloudbill_core::AccountId,
        cost: i64,
    ) {
        let domain = b.domain_id();
        let window = DateRange::new(day(1), day(4)).unwrap();
        let records: Vec<CostRecord> = (1..4)
            .map(|d| CostRecord {
                domain,
                service_account: account,
                provider: ProviderKind::File,
                cloud_account: "123456789012".into(),
                date: day(d),
                region: "us-east-1".into(),
                service: "AmazonEC2".into(),
                usage_type: "u".into(),
                instance_type: None,
                usage_quantity: Decimal::ONE,
                cost: Money::new(Decimal::new(cost, 2), Currency::USD),
                effective_cost: None,
                list_cost: None,
                charge_category: ChargeCategory::Usage,
                tags: cloudbill_core::Tags::new(),
                attributes: cloudbill_core::Attributes::new(),
                measures: std::collections::BTreeMap::new(),
                extensions: std::collections::BTreeMap::new(),
            })
            .collect();
        let job = SyncJob::running(domain, account, JobKind::Import, window, Utc::now());
        store.save_job(&job).await.unwrap();
        store
            .replace_window(domain, account, job.id, window, &records)
            .await
            .unwrap();
    }

    /// While an update is under way, a report is answered from the engine already there —
    /// the state before the change, never waiting and never mixed — and not cached; once
    /// the update is in, the next report has the change.
    #[tokio::test]
    async fn reports_during_an_update_answer_from_the_old_state() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let config = BillingConfig {
            warm_engine: true,
            ..BillingConfig::default()
        };
        let b = Billing::open(
            Arc::clone(&store),
            ProviderRegistry::new(),
            "default",
            config,
        )
        .await
        .unwrap();
        let admin = Principal::Admin;
        b.set_billing(&admin, true).await.unwrap();
        b.create_project(&admin, "web", None).await.unwrap();
        let account = b
            .add_account(
                &admin,
                NewAccount {
                    name: "bills".into(),
                    provider: "file".into(),
                    project: Some("web".into()),
                    settings: cloudbill_core::Settings::default(),
                },
                false,
            )
            .await
            .unwrap()
            .id;
        write(&store, &b, account, 100).await;
        let q = Query::new(
            DateRange::new(day(1), day(4)).unwrap(),
            Granularity::Monthly,
        );
        let total = |r: &crate::Report| r.results[0].total[0].cost;
        assert_eq!(
            total(&b.report(&admin, &q).await.unwrap()),
            Decimal::new(300, 2)
        );
        write(&store, &b, account, 250).await;
        // An update under way (held here): the report does not wait for it.
        let loading = b.inner.loading.lock().await;
        let during = tokio::time::timeout(std::time::Duration::from_secs(5), b.report(&admin, &q))
            .await
            .expect("answered without waiting for the update")
            .unwrap();
        assert_eq!(
            total(&during),
            Decimal::new(300, 2),
            "the state before the change"
        );
        drop(loading);
        assert_eq!(
            total(&b.report(&admin, &q).await.unwrap()),
            Decimal::new(750, 2)
        );
        // Updated in place (its one slice replaced: no old rows left to keep as a layer).
        let info = b.warm_info().unwrap();
        assert_eq!(
            (info.updates, info.layers, info.records),
            (1, 0, 3),
            "{info:?}"
        );
    }
}
