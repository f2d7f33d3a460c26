//! The `Billing` facade: its configuration, opening it, the clock and the domain's billing
//! switch. The use cases are `impl Billing` blocks by concern: `catalog` (providers, project
//! groups, projects), `accounts`, `report`, `sync`, `files`, `tokens`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use cloudbill_aggregate::Query;
use cloudbill_core::{AccountId, Domain, Name, Settings};
use cloudbill_provider::ProviderRegistry;
use cloudbill_store::Store;

use crate::{Principal, ServiceError};

/// Tunables of the service.
#[derive(Debug, Clone)]
pub struct BillingConfig {
    /// Accounts synced at once.
    pub concurrency: usize,
    /// How far back the first sync of an account goes, in months.
    pub initial_months: u32,
    /// Later syncs start this many days before the last successful one (rounded down to the
    /// 1st of that month), because providers restate recent days.
    pub restate_days: i64,
    /// How long a sync lease lasts without renewal.
    pub lease_ttl: Duration,
    /// How long an import's lease lasts without renewal (renewed every third of it while the
    /// import runs): a killed import is shown as interrupted this long after it stopped.
    pub import_lease_ttl: Duration,
    /// The longest report range, in days.
    pub max_query_days: i64,
    /// The memory the warm engine's answer cache may hold (an estimate), for all callers
    /// together; past it the cache starts over. Default 64 MiB.
    pub answer_cache_bytes: usize,
    /// The largest answer kept in the cache; bigger ones are computed each time. Default 1 MiB.
    pub answer_max_bytes: usize,
    /// "Today" for default sync ranges; `None` means the current UTC date.
    pub today: Option<NaiveDate>,
    /// Keep the whole domain's engine in memory between reports, reloading it only when the
    /// store's data version moves (the server); otherwise each report loads the months it
    /// needs (the CLI).
    pub warm_engine: bool,
    /// How notifications are retried.
    pub delivery: crate::DeliveryPolicy,
    /// The dashboard's public base URL, for links in notifications (`None`: links are paths).
    pub public_url: Option<String>,
    /// Deliver the notifications a change queued in the background (the server: a request
    /// that creates a budget answers without waiting for a slow receiver; its delivery worker
    /// retries) rather than before the call returns (the CLI, whose process then exits).
    pub deliver_in_background: bool,
}

impl Default for BillingConfig {
    fn default() -> Self {
        Self {
            concurrency: 4,
            initial_months: 12,
            restate_days: 10,
            lease_ttl: Duration::from_secs(5 * 60),
            import_lease_ttl: Duration::from_secs(10),
            max_query_days: cloudbill_core::MAX_RANGE_DAYS,
            answer_cache_bytes: 64 << 20,
            answer_max_bytes: 1 << 20,
            today: None,
            warm_engine: false,
            delivery: crate::DeliveryPolicy::default(),
            public_url: None,
            deliver_in_background: false,
        }
    }
}

/// A billing account to register.
#[derive(Debug, Clone)]
pub struct NewAccount {
    /// Unique name.
    pub name: String,
    /// Provider name (`hyperbilling-aws`, `file`).
    pub provider: String,
    /// Project name or id; mandatory, `None` is refused.
    pub project: Option<String>,
    /// The provider's settings and secrets, as given (checked against what the provider
    /// declares: `file` takes none).
    pub settings: Settings,
}

/// What the services of one process share about the work under way: per account, the lock
/// its syncs and imports take in turn ([`Billing::account_turn`]), and the jobs this process
/// has created and not yet finished (a job waiting for its turn is not an interrupted one).
#[derive(Default)]
pub(crate) struct Turns {
    locks: std::sync::Mutex<HashMap<AccountId, Arc<tokio::sync::Mutex<()>>>>,
    live: std::sync::Mutex<std::collections::HashSet<cloudbill_core::JobId>>,
}

pub(crate) type AccountTurns = Arc<Turns>;

impl Turns {
    /// Notes `job` as under way in this process (until [`Turns::finished`]).
    pub(crate) fn started(&self, job: cloudbill_core::JobId) {
        self.live
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(job);
    }

    /// `job` is over.
    pub(crate) fn finished(&self, job: cloudbill_core::JobId) {
        self.live
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&job);
    }

    /// Whether this process still works on (or waits to start) `job`.
    pub(crate) fn is_live(&self, job: cloudbill_core::JobId) -> bool {
        self.live
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(&job)
    }
}

pub(crate) struct Inner {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) providers: ProviderRegistry,
    pub(crate) domain: Domain,
    pub(crate) config: BillingConfig,
    /// This process's identity in sync leases.
    pub(crate) holder: String,
    /// One sync or import of an account at a time among the services sharing `holder` (the
    /// lease keeps other processes out, but not this one's own concurrent requests): shared
    /// by every domain's service of the process.
    pub(crate) turns: AccountTurns,
    /// The warm engine and the data version it was built at (swapped whole; held only for
    /// the swap, so reports read it while a new one loads).
    pub(crate) engine: std::sync::Mutex<Option<crate::warm::Warm>>,
    /// Held while the warm engine is being loaded or updated: one load at a time.
    pub(crate) loading: tokio::sync::Mutex<()>,
    /// What the warm engine holds in memory ([`cloudbill_aggregate::Engine::memory_bytes`]), for the server's
    /// engine memory budget across domains.
    pub(crate) engine_bytes: std::sync::atomic::AtomicUsize,
    /// Answers of the warm engine by (principal, query), valid for one data version:
    /// dashboards ask the same questions over and over.
    pub(crate) answers: std::sync::Mutex<AnswerCache>,
    /// How notifications are sent (set by the binaries).
    pub(crate) notifier: std::sync::OnceLock<Arc<dyn crate::Notifier>>,
}

/// Cached answers of one data version, by who asked what, with the bytes they hold in
/// memory.
#[derive(Default)]
pub(crate) struct AnswerCache {
    pub(crate) version: i64,
    pub(crate) answers: HashMap<(Principal, Query), Arc<cloudbill_aggregate::Answer>>,
    pub(crate) bytes: usize,
}

/// The billing service of one domain.
#[derive(Clone)]
pub struct Billing {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Billing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Billing")
            .field("domain", &self.inner.domain.name)
            .finish_non_exhaustive()
    }
}

/// Whether `key` names this object (the one rule: [`cloudbill_core::Lookup`]).
pub(crate) fn matches(name: &Name, id: uuid::Uuid, key: &str) -> bool {
    cloudbill_core::Lookup::parse(key).matches(name.as_str(), id)
}

impl Billing {
    /// The service's clock: "today" (`BillingConfig::today` when set, for tests and replays)
    /// for every date a use case defaults, and the instants it records. Leases keep the real
    /// time: they are measured against other processes. Every surface (CLI, API, dashboard)
    /// asks this clock for the day, so `CLOUDBILL_TODAY` moves them all.
    pub fn today(&self) -> NaiveDate {
        self.inner
            .config
            .today
            .unwrap_or_else(|| Utc::now().date_naive())
    }

    /// Now, on [`Billing::today`]'s day.
    pub(crate) fn now(&self) -> DateTime<Utc> {
        let now = Utc::now();
        match self.inner.config.today {
            Some(day) => day.and_time(now.time()).and_utc(),
            None => now,
        }
    }

    /// Opens the service for the domain `domain` (created, with billing off, on first use).
    pub async fn open(
        store: Arc<dyn Store>,
        providers: ProviderRegistry,
        domain: &str,
        config: BillingConfig,
    ) -> Result<Self, ServiceError> {
        // A domain of that exact name (one stored before domain names were slugs keeps
        // working under its own name), else a new one must be a slug (`ACME` is `acme`).
        let exact = Name::parse(domain, "domain name")?;
        let name = if store.domains().await?.iter().any(|d| d.name == exact) {
            exact
        } else {
            Name::parse_domain(domain)?
        };
        let domain = store.ensure_domain(&name).await?;
        let holder = format!("pid{}-{}", std::process::id(), cloudbill_core::JobId::new());
        Ok(Self::from_parts(
            store,
            providers,
            domain,
            config,
            (holder, AccountTurns::default()),
        ))
    }

    fn from_parts(
        store: Arc<dyn Store>,
        providers: ProviderRegistry,
        domain: Domain,
        config: BillingConfig,
        (holder, turns): (String, AccountTurns),
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                providers,
                domain,
                config,
                holder,
                turns,
                engine: std::sync::Mutex::new(None),
                loading: tokio::sync::Mutex::new(()),
                engine_bytes: std::sync::atomic::AtomicUsize::new(0),
                answers: std::sync::Mutex::new(AnswerCache {
                    version: -1,
                    ..AnswerCache::default()
                }),
                notifier: std::sync::OnceLock::new(),
            }),
        }
    }

    /// The service of another domain over the same store, providers, settings, process
    /// identity and notifier (its own warm engine and answer cache).
    pub(crate) fn sibling(&self, domain: Domain) -> Billing {
        let i = &self.inner;
        let b = Self::from_parts(
            Arc::clone(&i.store),
            i.providers.clone(),
            domain,
            i.config.clone(),
            (i.holder.clone(), Arc::clone(&i.turns)),
        );
        if let Some(n) = i.notifier.get() {
            b.set_notifier(Arc::clone(n));
        }
        b
    }

    /// The memory the warm engine holds now (0 when none is loaded).
    pub fn engine_bytes(&self) -> usize {
        self.inner
            .engine_bytes
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Drops the warm engine and the cached answers (the next report loads it again);
    /// returns the bytes freed, or 0 when a load or a report holds the engine right now.
    pub(crate) fn evict_engine(&self) -> usize {
        let Ok(_loading) = self.inner.loading.try_lock() else {
            return 0;
        };
        if self.take_warm().is_none() {
            return 0;
        }
        *self
            .inner
            .answers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = AnswerCache {
            version: -1,
            ..AnswerCache::default()
        };
        self.inner
            .engine_bytes
            .swap(0, std::sync::atomic::Ordering::Relaxed)
    }

    // The store, one narrow view per concern: a use case calls the views of the concerns it
    // touches, so a reader sees what each one reads and writes.

    /// Domains, projects, groups, accounts and their assignments.
    pub(crate) fn catalog_store(&self) -> &dyn cloudbill_store::CatalogStore {
        &*self.inner.store
    }

    /// Cost records and the data version.
    pub(crate) fn cost_store(&self) -> &dyn cloudbill_store::CostStore {
        &*self.inner.store
    }

    /// Sync and import jobs, leases and source revisions.
    pub(crate) fn job_store(&self) -> &dyn cloudbill_store::JobStore {
        &*self.inner.store
    }

    /// API tokens.
    pub(crate) fn token_store(&self) -> &dyn cloudbill_store::TokenStore {
        &*self.inner.store
    }

    /// Channels, budgets, events and deliveries.
    pub(crate) fn notify_store(&self) -> &dyn cloudbill_store::NotifyStore {
        &*self.inner.store
    }

    /// Anomaly monitors and kept anomalies.
    pub(crate) fn anomaly_store(&self) -> &dyn cloudbill_store::AnomalyStore {
        &*self.inner.store
    }

    /// Exchange rates.
    pub(crate) fn fx_store(&self) -> &dyn cloudbill_store::FxStore {
        &*self.inner.store
    }

    /// Provider invoices.
    pub(crate) fn invoice_store(&self) -> &dyn cloudbill_store::InvoiceStore {
        &*self.inner.store
    }

    /// Closed periods and held restatements.
    pub(crate) fn period_store(&self) -> &dyn cloudbill_store::PeriodStore {
        &*self.inner.store
    }

    /// Allocation rules and their versions.
    pub(crate) fn allocation_store(&self) -> &dyn cloudbill_store::AllocationStore {
        &*self.inner.store
    }

    /// The store (for binaries that need direct access, e.g. to close it).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// The domain as it is now.
    pub async fn domain(&self) -> Result<Domain, ServiceError> {
        Ok(self
            .catalog_store()
            .ensure_domain(&self.inner.domain.name)
            .await?)
    }

    pub(crate) async fn require_billing(&self) -> Result<Domain, ServiceError> {
        let d = self.domain().await?;
        if d.billing_enabled {
            Ok(d)
        } else {
            Err(ServiceError::BillingDisabled {
                domain: d.name.to_string(),
            })
        }
    }

    /// The domain's name.
    pub fn domain_name(&self) -> &str {
        self.inner.domain.name.as_str()
    }

    pub(crate) fn domain_id(&self) -> cloudbill_core::DomainId {
        self.inner.domain.id
    }

    /// Turns billing on or off (admin only).
    pub async fn set_billing(&self, p: &Principal, enabled: bool) -> Result<Domain, ServiceError> {
        p.require_admin("turn billing on or off")?;
        let domain = self
            .catalog_store()
            .set_billing_enabled(self.domain_id(), enabled)
            .await?;
        if enabled {
            // The domain watches its spend per service from the start.
            self.ensure_default_monitor().await?;
        }
        Ok(domain)
    }
}

impl Billing {
    /// Waits for the account's turn: syncs and imports of one account run one after the
    /// other in this process (four `POST /sync` of one account at once used to run together
    /// and mark each other interrupted). Held until the guard drops.
    pub(crate) async fn account_turn(
        &self,
        account: AccountId,
    ) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self
                .inner
                .turns
                .locks
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            Arc::clone(locks.entry(account).or_default())
        };
        lock.lock_owned().await
    }
}
