//! A sync's windows: cut by the provider, skipped when their source's revision has not moved,
//! each fetched and written in one transaction — gathered when small, streamed when large.

use chrono::Utc;
use cloudbill_core::{DateRange, JobId, ServiceAccount, SyncJob};
use cloudbill_provider::FetchScope;

use crate::{Billing, ServiceError, SyncObserver};

/// The most records of one window a sync gathers before writing them at once; a larger window
/// streams into the store as it is read (one transaction, bounded memory).
pub const STREAM_ABOVE_RECORDS: usize = 100_000;

/// A window's records as the store takes them: what was gathered first, then the rest as it
/// arrives, then the end once the provider's read succeeded (`None` when it failed: the
/// store rolls back).
struct Fed {
    first: Option<Vec<cloudbill_core::CostRecord>>,
    rx: tokio::sync::mpsc::Receiver<Vec<cloudbill_core::CostRecord>>,
    done: Option<tokio::sync::oneshot::Receiver<bool>>,
}

#[async_trait::async_trait]
impl cloudbill_store::ChunkSource for Fed {
    async fn next_chunk(&mut self) -> Option<cloudbill_store::Chunk> {
        if let Some(first) = self.first.take() {
            return Some(cloudbill_store::Chunk::Records(first));
        }
        if let Some(chunk) = self.rx.recv().await {
            return Some(cloudbill_store::Chunk::Records(chunk));
        }
        match self.done.take()?.await {
            Ok(true) => Some(cloudbill_store::Chunk::End),
            _ => None,
        }
    }
}

impl Billing {
    pub(crate) async fn fetch_and_write(
        &self,
        account: &ServiceAccount,
        range: DateRange,
        job: &mut SyncJob,
        unchanged: &mut usize,
        observer: &dyn SyncObserver,
    ) -> Result<(), (ServiceError, usize)> {
        let (jobs, costs) = (self.job_store(), self.cost_store());
        let provider = self
            .inner
            .providers
            .get(account.provider)
            .map_err(|e| (e.into(), 0))?;
        let settings = &account.settings;
        let windows = provider.windows(range);
        observer.started(account.name.as_str(), windows.len());
        let scope = FetchScope {
            domain: self.domain_id(),
            service_account: account.id,
        };
        let ttl = chrono::Duration::from_std(self.inner.config.lease_ttl)
            .unwrap_or_else(|_| chrono::Duration::minutes(15));
        let closed = self.closed_months().await.map_err(|e| (e, 0))?;
        let mut held = Vec::new();
        for (done, window) in windows.into_iter().enumerate() {
            let parts = crate::periods::split(window, &closed);
            // A window with closed days is always read: what it holds there is held, not
            // written, and must be read again when the period reopens.
            let known = if parts.closed.is_empty() {
                jobs.source_revision(account.id, window)
                    .await
                    .map_err(|e| (e.into(), done))?
            } else {
                None
            };
            let revision = provider
                .revision(settings, window)
                .await
                .map_err(|e| (e.into(), done))?;
            if revision.is_some() && revision == known {
                *unchanged += 1;
                observer.window_done(account.name.as_str(), 0);
                continue;
            }
            self.renew_lease(account, ttl, done).await?;
            let mut rows = 0;
            if parts.closed.is_empty() {
                let written = self
                    .write_fetched(
                        provider.as_ref(),
                        account,
                        (scope, window),
                        job.id,
                        (ttl, done),
                    )
                    .await
                    .map_err(|e| (e, done))?;
                rows += written.rows;
                job.rows += written.rows;
                job.changed_days.extend(written.changed_days);
            } else {
                // Days of closed months are kept as stored; what the provider restated there
                // is held, recorded on the job.
                let records = provider
                    .fetch(settings, scope, window)
                    .await
                    .map_err(|e| (e.into(), done))?;
                self.renew_lease(account, ttl, done).await?;
                for run in &parts.open {
                    let in_run: Vec<cloudbill_core::CostRecord> = records
                        .iter()
                        .filter(|r| run.contains(r.date))
                        .cloned()
                        .collect();
                    let written = costs
                        .replace_window(self.domain_id(), account.id, job.id, *run, &in_run)
                        .await
                        .map_err(|e| (e.into(), done))?;
                    rows += written.rows;
                    job.rows += written.rows;
                    job.changed_days.extend(written.changed_days);
                }
                let incoming = cloudbill_store::daily_totals(
                    records.iter().filter(|r| parts.closed.contains(&r.date)),
                )
                .map_err(|e| (e.into(), done))?;
                held.extend(
                    self.held_days(account.id, job.id, &parts.closed, &incoming)
                        .await
                        .map_err(|e| (e, done))?,
                );
            }
            // The source's revision, kept once its window is written (not when closed days
            // were held); failing to keep it only means reading the window again next time.
            let keep = revision.filter(|_| parts.closed.is_empty());
            if let Err(e) = jobs.set_source_revision(account.id, window, keep).await {
                tracing::warn!(account = %account.name, error = %e, "could not keep the source revision");
            }
            observer.window_done(account.name.as_str(), rows);
        }
        self.record_held(job, &held).await.map_err(|e| (e, 0))?;
        Ok(())
    }

    /// Renews the account's sync lease before a write (a fetch may take long): when another
    /// process holds it now, the sync stops before writing (the windows written stay: each
    /// is whole).
    async fn renew_lease(
        &self,
        account: &ServiceAccount,
        ttl: chrono::Duration,
        done: usize,
    ) -> Result<(), (ServiceError, usize)> {
        let renewed = self
            .job_store()
            .try_lease(account.id, &self.inner.holder, Utc::now(), Utc::now() + ttl)
            .await
            .map_err(|e| (e.into(), done))?;
        if renewed {
            Ok(())
        } else {
            Err((
                ServiceError::Conflict(format!(
                    "the sync of account {} lost its lease to another process after {done} window(s); the windows written are kept, sync again for the rest",
                    account.name
                )),
                done,
            ))
        }
    }

    /// Fetches `window` from the provider in chunks and writes it in one transaction. Up to
    /// [`STREAM_ABOVE_RECORDS`] records are gathered first and written at once (a short
    /// transaction); a larger window streams into the store as it is read, so its memory stays
    /// bounded (the store spills encoded segments as they fill). A provider error, or a bad
    /// record, writes nothing.
    async fn write_fetched(
        &self,
        provider: &dyn cloudbill_provider::BillingProvider,
        account: &ServiceAccount,
        (scope, window): (FetchScope, DateRange),
        job: JobId,
        // The lease's life, and the windows written before this one (for its message).
        (ttl, done): (chrono::Duration, usize),
    ) -> Result<cloudbill_store::WriteOutcome, ServiceError> {
        let store = self.cost_store();
        let domain = self.domain_id();
        let (sink, mut rx) = tokio::sync::mpsc::channel(4);
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let fetch = async move {
            let read = provider
                .fetch_into(&account.settings, scope, window, sink)
                .await;
            // Nobody waits when the writer stopped first (its error is reported).
            let _ = done_tx.send(read.is_ok());
            read
        };
        let write = async move {
            let mut first = Vec::new();
            while first.len() < STREAM_ABOVE_RECORDS {
                if let Some(chunk) = rx.recv().await {
                    first.extend(chunk);
                    continue;
                }
                // The whole window is here (or the read failed: nothing is written).
                if done_rx.await != Ok(true) {
                    return None;
                }
                if let Err((e, _)) = self.renew_lease(account, ttl, done).await {
                    return Some(Err(e));
                }
                return Some(
                    store
                        .replace_window(domain, account.id, job, window, &first)
                        .await
                        .map_err(ServiceError::from),
                );
            }
            let mut fed = Fed {
                first: Some(first),
                rx,
                done: Some(done_rx),
            };
            Some(
                store
                    .replace_window_streamed(domain, account.id, job, Some(window), &mut fed)
                    .await
                    .map_err(ServiceError::from),
            )
        };
        let (read, written) = tokio::join!(fetch, write);
        read?;
        written.unwrap_or_else(|| {
            Err(ServiceError::Internal(
                "the provider's read stopped without an error".into(),
            ))
        })
    }
}
