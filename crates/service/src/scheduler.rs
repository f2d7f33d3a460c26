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
    /// Runs sync rounds until `shutdown` turns true. A round syncs every enabled account with
    /// its default range, with the same guarantees as [`Billing::sync`]; a round in progress
    /// when shutdown comes is abandoned between windows' transactions (no partial window is
    /// ever visible), and its job is marked interrupted by the next sync of that account.
    pub async fn run_scheduler(
        &self,
        config: SchedulerConfig,
        mut shutdown: watch::Receiver<bool>,
        observer: &dyn SyncObserver,
    ) {
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
                result = self.scheduled_round(observer) => match result {
                    Ok(()) => {}
                    Err(ServiceError::BillingDisabled { .. }) => {
                        tracing::debug!("billing is off; scheduled sync skipped");
                    }
                    Err(e) => tracing::error!(error = %e, "scheduled sync failed"),
                },
                _ = shutdown.changed() => {
                    tracing::info!("shutdown: scheduled sync abandoned between windows");
                    return;
                }
            }
            delay = config.cadence;
        }
    }

    async fn scheduled_round(&self, observer: &dyn SyncObserver) -> Result<(), ServiceError> {
        let report = self
            .sync(&Principal::Admin, &SyncRequest::default(), observer)
            .await?;
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
