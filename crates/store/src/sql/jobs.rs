//! Jobs and per-account leases.

use async_trait::async_trait;
use chrono::Utc;
use cloudbill_core::{AccountId, DateRange, DomainId, JobId, SyncJob};

use super::dialect::{Arg, Col, Dialect, Run};
use super::rows::{job_from, not_found};
use super::SqlStore;
use crate::sql::{self};
use crate::StoreError;

#[async_trait]
impl<D: Dialect> crate::JobStore for SqlStore<D> {
    async fn save_job(&self, job: &SyncJob) -> Result<(), StoreError> {
        self.require_account(job.domain, job.account).await?;
        sqlx::query::<D>(
            "INSERT INTO sync_jobs (id, domain_id, account_id, kind, window_start, window_end, state, \
             rows_written, changed_days, error, started_at, finished_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
             ON CONFLICT (id) DO UPDATE SET window_start = excluded.window_start, \
             window_end = excluded.window_end, state = excluded.state, \
             rows_written = excluded.rows_written, changed_days = excluded.changed_days, \
             error = excluded.error, finished_at = excluded.finished_at",
        )
        .arg(job.id.as_uuid())
        .arg(job.domain.as_uuid())
        .arg(job.account.as_uuid())
        .arg(job.kind.as_str())
        .arg(job.window.start())
        .arg(job.window.end())
        .arg(job.state.as_str())
        .arg(i64::try_from(job.rows).unwrap_or(i64::MAX))
        .arg(sql::changed_days_json(&job.changed_days))
        .arg(job.error.as_deref())
        .arg(job.started_at)
        .arg(job.finished_at)
        .run(&self.pool)
        .await?;
        Ok(())
    }

    async fn jobs(
        &self,
        domain: DomainId,
        account: Option<AccountId>,
        limit: u32,
    ) -> Result<Vec<SyncJob>, StoreError> {
        let rows = sqlx::query::<D>(
            "SELECT id, domain_id, account_id, kind, window_start, window_end, state, rows_written, \
             changed_days, error, started_at, finished_at FROM sync_jobs \
             WHERE domain_id = $1 AND ($2 IS NULL OR account_id = $2) \
             ORDER BY started_at DESC, id DESC LIMIT $3",
        )
        .arg(domain.as_uuid())
        .arg(account.map(|a| a.as_uuid()))
        .arg(i64::from(limit))
        .all(&self.pool)
        .await?;
        rows.iter().map(job_from).collect()
    }

    async fn job(&self, domain: DomainId, id: JobId) -> Result<SyncJob, StoreError> {
        let row = sqlx::query::<D>(
            "SELECT id, domain_id, account_id, kind, window_start, window_end, state, rows_written, \
             changed_days, error, started_at, finished_at FROM sync_jobs \
             WHERE domain_id = $1 AND id = $2",
        )
        .arg(domain.as_uuid())
        .arg(id.as_uuid())
        .optional(&self.pool)
        .await?
        .ok_or_else(|| not_found("job", id))?;
        job_from(&row)
    }

    async fn try_lease(
        &self,
        account: AccountId,
        holder: &str,
        now: chrono::DateTime<Utc>,
        until: chrono::DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let taken = sqlx::query::<D>(
            "INSERT INTO sync_leases (account_id, holder, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (account_id) DO UPDATE SET holder = excluded.holder, \
             expires_at = excluded.expires_at \
             WHERE sync_leases.expires_at < $4 OR sync_leases.holder = $2",
        )
        .arg(account.as_uuid())
        .arg(holder)
        .arg(until)
        .arg(now)
        .run(&self.pool)
        .await?
        .rows_affected();
        Ok(taken == 1)
    }

    async fn release_lease(&self, account: AccountId, holder: &str) -> Result<(), StoreError> {
        sqlx::query::<D>("DELETE FROM sync_leases WHERE account_id = $1 AND holder = $2")
            .arg(account.as_uuid())
            .arg(holder)
            .run(&self.pool)
            .await?;
        Ok(())
    }

    async fn source_revision(
        &self,
        account: AccountId,
        window: DateRange,
    ) -> Result<Option<String>, StoreError> {
        let row = sqlx::query::<D>(
            "SELECT revision FROM source_revisions \
             WHERE account_id = $1 AND window_start = $2 AND window_end = $3",
        )
        .arg(account.as_uuid())
        .arg(window.start())
        .arg(window.end())
        .optional(&self.pool)
        .await?;
        Ok(match row {
            Some(row) => Some(row.col::<String>("revision")?),
            None => None,
        })
    }

    async fn set_source_revision(
        &self,
        account: AccountId,
        window: DateRange,
        revision: Option<String>,
    ) -> Result<(), StoreError> {
        match revision {
            Some(revision) => {
                // Only for an account that exists (a sync racing the account's removal
                // keeps nothing).
                sqlx::query::<D>(
                    "INSERT INTO source_revisions (account_id, window_start, window_end, revision) \
                     SELECT $1, $2, $3, $4 WHERE EXISTS (SELECT 1 FROM service_accounts WHERE id = $1) \
                     ON CONFLICT (account_id, window_start, window_end) \
                     DO UPDATE SET revision = excluded.revision",
                )
                .arg(account.as_uuid())
                .arg(window.start())
                .arg(window.end())
                .arg(revision)
                .run(&self.pool)
                .await?;
            }
            None => {
                sqlx::query::<D>(
                    "DELETE FROM source_revisions \
                     WHERE account_id = $1 AND window_start = $2 AND window_end = $3",
                )
                .arg(account.as_uuid())
                .arg(window.start())
                .arg(window.end())
                .run(&self.pool)
                .await?;
            }
        }
        Ok(())
    }
}
