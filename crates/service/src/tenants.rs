//! Every domain (tenant) over one store: what a multi-tenant server holds.
//!
//! [`Tenants`] opens a [`Billing`] per domain on first use (the same store, providers,
//! settings and notifier; each its own warm engine and answer cache), authenticates a token
//! into its domain's service — or into the system admin, who manages domains and reads no
//! billing data — and keeps the warm engines of all domains together under one memory budget,
//! dropping the least recently used first.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::SubsecRound;
use cloudbill_core::{ApiToken, Domain, DomainId, Name, TokenRole};
use tokio::sync::watch;

use crate::{Billing, Principal, SchedulerConfig, ServiceError, SyncObserver};

/// The system administrator: creates, lists, disables and enables domains; reads no billing
/// data. Made by [`Tenants::authenticate`] from a `system-admin` token, or by
/// [`SystemAdmin::operator`] for a process with direct access to the database (the CLI).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemAdmin {
    _private: (),
}

impl SystemAdmin {
    /// The operator of the database (the CLI run by whoever holds the database URL and the
    /// credentials key): as much a system admin as a token could make one.
    pub fn operator() -> Self {
        Self { _private: () }
    }
}

/// Who a token stands for.
#[derive(Debug, Clone)]
pub enum Caller {
    /// A system admin: the domains, nothing inside them.
    System(SystemAdmin),
    /// A domain admin or project member, with the service of the token's domain.
    Domain {
        /// The service of the token's domain (every call acts in it).
        billing: Billing,
        /// What the token may do there.
        principal: Principal,
        /// Who the token is, as a change log records it: `token "LABEL" (ID)`.
        actor: String,
    },
}

/// A domain as the system admin sees it.
#[derive(Debug, Clone)]
pub struct DomainView {
    /// The domain.
    pub domain: Domain,
    /// Its accounts (a count; nothing of their billing).
    pub accounts: usize,
    /// Its warm engine's memory in this process (0 when not loaded).
    pub engine_bytes: usize,
}

struct Open {
    billing: Billing,
    /// The tick of its last use (larger is more recent).
    used: AtomicU64,
}

struct Inner {
    /// The service of the default domain: its store, providers, settings and notifier are
    /// every domain's.
    default: Billing,
    open: Mutex<HashMap<DomainId, Arc<Open>>>,
    tick: AtomicU64,
    engine_budget: usize,
}

/// Every domain's service over one store (cheap to clone).
#[derive(Clone)]
pub struct Tenants {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Tenants {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tenants")
            .field("default", &self.inner.default)
            .field("engine_budget", &self.inner.engine_budget)
            .finish_non_exhaustive()
    }
}

/// The default memory budget of the warm engines of all domains together (1 GiB).
pub const DEFAULT_ENGINE_MEMORY: usize = 1 << 30;

impl Tenants {
    /// The tenants of `default`'s store; `engine_budget` bytes for the warm engines of all
    /// domains together (at least the one in use is always kept).
    pub fn new(default: Billing, engine_budget: usize) -> Self {
        let mut open = HashMap::new();
        open.insert(
            default.domain_id(),
            Arc::new(Open {
                billing: default.clone(),
                used: AtomicU64::new(0),
            }),
        );
        Self {
            inner: Arc::new(Inner {
                default,
                open: Mutex::new(open),
                tick: AtomicU64::new(1),
                engine_budget,
            }),
        }
    }

    /// The service of the default domain (the server's `--domain`).
    pub fn default_domain(&self) -> &Billing {
        &self.inner.default
    }

    /// The service of `domain`, opened on first use; a `use_` counts as its latest use (for
    /// the engine budget), background work does not.
    fn open_domain(&self, domain: Domain, use_: bool) -> Billing {
        let mut open = self
            .inner
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let entry = open.entry(domain.id).or_insert_with(|| {
            Arc::new(Open {
                billing: self.inner.default.sibling(domain),
                used: AtomicU64::new(0),
            })
        });
        if use_ {
            entry.used.store(
                self.inner.tick.fetch_add(1, Ordering::Relaxed),
                Ordering::Relaxed,
            );
        }
        entry.billing.clone()
    }

    /// The service of `domain` if this process has opened it.
    fn opened(&self, domain: DomainId) -> Option<Billing> {
        self.inner
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&domain)
            .map(|o| o.billing.clone())
    }

    /// The service of the domain called or with the id `key`, for the operator (no token).
    pub async fn domain(&self, _: &SystemAdmin, key: &str) -> Result<Billing, ServiceError> {
        let domain = self.find(key).await?;
        Ok(self.open_domain(domain, true))
    }

    async fn find(&self, key: &str) -> Result<Domain, ServiceError> {
        let store = self.inner.default.store();
        let lookup = cloudbill_core::Lookup::parse(key);
        // By the name as given, or as a domain name is spelled (`ACME` is `acme`).
        let normalised = Name::parse_domain(key).ok();
        store
            .domains()
            .await?
            .into_iter()
            .find(|d| {
                lookup.matches(d.name.as_str(), d.id.as_uuid())
                    || normalised.as_ref() == Some(&d.name)
            })
            .ok_or_else(|| ServiceError::NotFound {
                what: "domain",
                key: key.to_owned(),
            })
    }

    /// Whom the bearer `secret` stands for. Unknown and revoked tokens, and tokens of a
    /// disabled domain, are refused with one message.
    pub async fn authenticate(&self, secret: &str) -> Result<Caller, ServiceError> {
        let refused = || ServiceError::Unauthenticated("invalid or revoked API token".into());
        let store = self.inner.default.store();
        let token = crate::tokens::lookup(store.as_ref(), secret)
            .await?
            .ok_or_else(refused)?;
        if token.role == TokenRole::SystemAdmin {
            return Ok(Caller::System(SystemAdmin::operator()));
        }
        let domain = match store.domain(token.domain).await {
            Ok(d) => d,
            Err(cloudbill_store::StoreError::NotFound { .. }) => return Err(refused()),
            Err(e) => return Err(e.into()),
        };
        if domain.disabled_at.is_some() {
            return Err(refused());
        }
        let billing = self.open_domain(domain, true);
        self.enforce_engine_budget(billing.domain_id());
        let principal = crate::tokens::principal(&token).ok_or_else(refused)?;
        let actor = format!("token {:?} ({})", token.label, token.id);
        Ok(Caller::Domain {
            billing,
            principal,
            actor,
        })
    }

    /// Drops the warm engines of the least recently used domains (never `keep`'s) until all
    /// together fit the budget.
    fn enforce_engine_budget(&self, keep: DomainId) {
        let mut open: Vec<(u64, Billing)> = self
            .inner
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .map(|o| (o.used.load(Ordering::Relaxed), o.billing.clone()))
            .collect();
        let mut total: usize = open.iter().map(|(_, b)| b.engine_bytes()).sum();
        if total <= self.inner.engine_budget {
            return;
        }
        open.sort_by_key(|(used, _)| *used);
        for (_, billing) in open {
            if total <= self.inner.engine_budget {
                break;
            }
            if billing.domain_id() == keep || billing.engine_bytes() == 0 {
                continue;
            }
            let freed = billing.evict_engine();
            if freed > 0 {
                tracing::info!(domain = %billing.domain_name(), bytes = freed, "warm engine evicted (engine memory budget)");
            }
            total = total.saturating_sub(freed);
        }
    }

    /// Every domain with its account count and its warm engine's memory here.
    pub async fn domains(&self, _: &SystemAdmin) -> Result<Vec<DomainView>, ServiceError> {
        let store = self.inner.default.store();
        let open = self.engine_sizes();
        let mut out = Vec::new();
        for domain in store.domains().await? {
            let accounts = store.accounts(domain.id).await?.len();
            let engine_bytes = open.get(&domain.id).copied().unwrap_or(0);
            out.push(DomainView {
                domain,
                accounts,
                engine_bytes,
            });
        }
        Ok(out)
    }

    fn engine_sizes(&self) -> HashMap<DomainId, usize> {
        self.inner
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(id, o)| (*id, o.billing.engine_bytes()))
            .collect()
    }

    /// Creates the domain `name` (billing off) with its first domain-admin token, whose secret
    /// is returned once. A name already taken is a conflict.
    pub async fn create_domain(
        &self,
        _: &SystemAdmin,
        name: &str,
        label: &str,
    ) -> Result<(Domain, ApiToken, String), ServiceError> {
        let name = Name::parse_domain(name)?;
        let store = self.inner.default.store();
        if store.domains().await?.iter().any(|d| d.name == name) {
            return Err(ServiceError::Conflict(format!(
                "a domain called {name} already exists"
            )));
        }
        let domain = store.ensure_domain(&name).await?;
        let billing = self.open_domain(domain.clone(), false);
        let label = if label.trim().is_empty() {
            "first domain admin"
        } else {
            label
        };
        let (token, secret) = billing
            .create_token(&Principal::Admin, TokenRole::Admin, None, label)
            .await?;
        Ok((domain, token, secret))
    }

    /// Disables (`true`) or enables a domain: while disabled its tokens are refused, its
    /// scheduled syncs skipped and its warm engine dropped; its data is kept.
    pub async fn set_disabled(
        &self,
        _: &SystemAdmin,
        key: &str,
        disabled: bool,
    ) -> Result<Domain, ServiceError> {
        let domain = self.find(key).await?;
        let at = disabled.then(|| chrono::Utc::now().trunc_subsecs(0));
        let domain = self
            .inner
            .default
            .store()
            .set_domain_disabled(domain.id, at)
            .await?;
        if let Some(billing) = self.opened(domain.id).filter(|_| disabled) {
            billing.evict_engine();
        }
        Ok(domain)
    }

    /// Creates a `system-admin` token (kept in the default domain's token table, listed and
    /// revoked there by the operator); its secret is returned once.
    pub async fn create_system_token(
        &self,
        _: &SystemAdmin,
        label: &str,
    ) -> Result<(ApiToken, String), ServiceError> {
        self.inner
            .default
            .store_token(TokenRole::SystemAdmin, None, label)
            .await
    }

    /// The domains whose scheduled work runs now: enabled, billing on.
    /// The notification outbox of every domain, by state (what `/metrics` reports; no
    /// domain is named).
    pub async fn delivery_counts(&self) -> Result<crate::DeliveryCounts, ServiceError> {
        let store = self.inner.default.store();
        let mut total = crate::DeliveryCounts::default();
        for d in store.domains().await? {
            let [pending, sent, failed] = store.delivery_counts(d.id).await?;
            total.pending += pending;
            total.sent += sent;
            total.failed += failed;
        }
        Ok(total)
    }

    async fn active(&self) -> Result<Vec<Billing>, ServiceError> {
        let store = self.inner.default.store();
        Ok(store
            .domains()
            .await?
            .into_iter()
            .filter(|d| d.billing_enabled && d.disabled_at.is_none())
            .map(|d| self.open_domain(d, false))
            .collect())
    }

    /// Runs scheduled sync rounds over every active domain until `shutdown` turns true (see
    /// [`Billing::run_scheduler`]; each domain's accounts are claimed across replicas the
    /// same way).
    pub async fn run_scheduler(
        &self,
        config: SchedulerConfig,
        shutdown: watch::Receiver<bool>,
        observer: &dyn SyncObserver,
    ) {
        let cadence = config.cadence;
        crate::scheduler::run_rounds(config, shutdown, || async move {
            for billing in self.active().await? {
                if let Err(e) = billing.scheduled_round(cadence, observer).await {
                    tracing::error!(domain = %billing.domain_name(), error = %e, "scheduled sync failed");
                }
            }
            Ok(())
        })
        .await;
    }

    /// Keeps the loaded warm engines current with other processes' commits until `shutdown`
    /// turns true: on PostgreSQL a domain's engine starts reloading as soon as its change is
    /// announced (`LISTEN`/`NOTIFY`; polled every 10 s besides, for notifications lost to a
    /// reconnect), elsewhere every loaded engine's version is polled every `poll`.
    pub async fn run_refresher(&self, poll: Duration, mut shutdown: watch::Receiver<bool>) {
        use futures::StreamExt;
        let mut feed = match self.inner.default.store().change_feed().await {
            Ok(feed) => feed,
            Err(e) => {
                tracing::warn!(error = %e, "no change feed; polling data versions");
                None
            }
        };
        let poll = if feed.is_some() {
            Duration::from_secs(10)
        } else {
            poll
        };
        loop {
            let next = async {
                match feed.as_mut() {
                    Some(f) => f.next().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                changed = next => match changed {
                    Some(domain) => {
                        if let Some(billing) = self.opened(domain) {
                            refresh_logged(&billing).await;
                        }
                    }
                    None => {
                        tracing::warn!("change feed ended; polling data versions");
                        feed = None;
                    }
                },
                () = tokio::time::sleep(poll) => {
                    let open: Vec<Billing> = self.inner.open.lock().unwrap_or_else(PoisonError::into_inner).values().map(|o| o.billing.clone()).collect();
                    for billing in open {
                        refresh_logged(&billing).await;
                    }
                }
                _ = shutdown.changed() => return,
            }
            if *shutdown.borrow() {
                return;
            }
        }
    }

    /// Delivers due notifications of every active domain every `tick` until `shutdown` turns
    /// true (see [`Billing::run_delivery`]).
    pub async fn run_delivery(&self, tick: Duration, mut shutdown: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                () = tokio::time::sleep(tick) => {}
                _ = shutdown.changed() => return,
            }
            if *shutdown.borrow() {
                return;
            }
            match self.active().await {
                Ok(domains) => {
                    for billing in domains {
                        billing.deliver_logged().await;
                    }
                }
                Err(e) => tracing::error!(error = %e, "notification delivery failed"),
            }
        }
    }
}

async fn refresh_logged(billing: &Billing) {
    let started = std::time::Instant::now();
    match billing.refresh().await {
        Ok(true) => tracing::info!(
            domain = %billing.domain_name(),
            ms = started.elapsed().as_millis(),
            "warm engine refreshed after another process's change"
        ),
        Ok(false) => {}
        Err(e) => {
            tracing::warn!(domain = %billing.domain_name(), error = %e, "warm engine refresh failed");
        }
    }
}
