//! The sync scheduler the server runs: every enabled account on a cadence, jittered start.

use std::time::Duration;

use tokio::sync::watch;

use crate::{Billing, Principal, ServiceError, SyncObserver, SyncRequest};

/// When the scheduler syncs.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// Time between the start of two rounds.
    pub cadence: Duration,
    /// The first round starts after a random delay in `[0, jitter)`, so several servers
    /// started together do not hit the provider at once.
    pub jitter: Duration,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            cadence: Duration::from_secs(6 * 60 * 60),
            jitter: Duration::from_secs(5 * 60),
        }
    }
}

impl Billing {
    /// One scheduled round across replicas: every enabled, syncable account that no process
    /// synced within the last `every` (any outcome) and none is syncing now. An account is
    /// claimed with its sync lease, then its last job is read under the lease, so of several
    /// servers sharing a database each account is synced once per interval.
    pub async fn sync_due(
        &self,
        every: Duration,
        observer: &dyn SyncObserver,
    ) -> Result<crate::SyncReport, ServiceError> {
        self.require_billing().await?;
        let (catalog, jobs) = (self.catalog_store(), self.job_store());
        let domain = self.domain_id();
        let providers = catalog.providers(domain).await?;
        let now = chrono::Utc::now();
        let ttl = chrono::Duration::from_std(self.inner.config.lease_ttl)
            .unwrap_or_else(|_| chrono::Duration::minutes(15));
        // A little under the cadence: a round that starts a few seconds early still counts.
        // Jobs are stamped with the service's clock (`today` when a replay sets it).
        let recent = self.now()
            - chrono::Duration::from_std(every.mul_f64(0.9))
                .unwrap_or_else(|_| chrono::Duration::hours(1));
        let mut due = Vec::new();
        for account in catalog.accounts(domain).await? {
            let syncable = account.state == cloudbill_core::AccountState::Enabled
                && account.provider != cloudbill_core::ProviderKind::File
                && !providers.iter().any(|e| {
                    e.kind == account.provider && e.state == cloudbill_core::ProviderState::Disabled
                });
            if !syncable {
                continue;
            }
            if !jobs
                .try_lease(account.id, &self.inner.holder, now, now + ttl)
                .await?
            {
                continue; // another process is syncing it
            }
            let last = jobs.jobs(domain, Some(account.id), 1).await?;
            if last.first().is_some_and(|j| {
                // A job left running by a dead process does not count: its account is
                // taken over once the lease expires.
                j.kind == cloudbill_core::JobKind::Sync
                    && j.state != cloudbill_core::JobState::Running
                    && j.started_at > recent
            }) {
                jobs.release_lease(account.id, &self.inner.holder).await?;
                continue; // synced this interval, here or elsewhere
            }
            due.push(account.id.to_string());
        }
        if due.is_empty() {
            return Ok(crate::SyncReport::default());
        }
        let request = SyncRequest {
            accounts: due,
            range: None,
        };
        self.sync(&Principal::Admin, &request, observer).await
    }

    /// Runs sync rounds until `shutdown` turns true. A round syncs every enabled account with
    /// its default range, with the same guarantees as [`Billing::sync`]; a round in progress
    /// when shutdown comes is abandoned between windows' transactions (no partial window is
    /// ever visible), and its job is marked interrupted by the next sync of that account.
    pub async fn run_scheduler(
        &self,
        config: SchedulerConfig,
        shutdown: watch::Receiver<bool>,
        observer: &dyn SyncObserver,
    ) {
        let cadence = config.cadence;
        run_rounds(config, shutdown, || async move {
            match self.scheduled_round(cadence, observer).await {
                Err(ServiceError::BillingDisabled { .. }) => {
                    tracing::debug!("billing is off; scheduled sync skipped");
                    Ok(())
                }
                other => other,
            }
        })
        .await;
    }

    pub(crate) async fn scheduled_round(
        &self,
        every: Duration,
        observer: &dyn SyncObserver,
    ) -> Result<(), ServiceError> {
        let report = self.sync_due(every, observer).await?;
        for o in &report.outcomes {
            match &o.error {
                None => {
                    tracing::info!(account = %o.account, rows = o.rows, changed_days = o.changed_days, "scheduled sync done");
                }
                Some(e) => {
                    tracing::warn!(account = %o.account, error = %e, "scheduled sync failed");
                }
            }
        }
        // Forecasts move with the calendar and periods roll over even when no data changed.
        self.after_change("scheduler", None).await;
        Ok(())
    }
}

/// Runs `round` after a jittered delay, then every `config.cadence`, until `shutdown` turns
/// true; a round in progress when shutdown comes is abandoned (between windows'
/// transactions: no partial window is ever visible).
pub(crate) async fn run_rounds<F, Fut>(
    config: SchedulerConfig,
    mut shutdown: watch::Receiver<bool>,
    mut round: F,
) where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), ServiceError>>,
{
    let jitter_ms = u64::try_from(config.jitter.as_millis()).unwrap_or(u64::MAX);
    let mut delay = Duration::from_millis(if jitter_ms == 0 {
        0
    } else {
        fastrand::u64(0..jitter_ms)
    });
    loop {
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            _ = shutdown.changed() => return,
        }
        if *shutdown.borrow() {
            return;
        }
        tokio::select! {
            result = round() => {
                if let Err(e) = result {
                    tracing::error!(error = %e, "scheduled sync failed");
                }
            }
            _ = shutdown.changed() => {
                tracing::info!("shutdown: scheduled sync abandoned between windows");
                return;
            }
        }
        delay = config.cadence;
    }
}
