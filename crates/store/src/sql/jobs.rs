//! Jobs and per-account leases.

/// `JobStore` for an SQL adapter.
macro_rules! sql_jobs {
    ($store:ty, $db:ty) => {
        #[async_trait]
        impl crate::JobStore for $store {
            async fn save_job(&self, job: &SyncJob) -> Result<(), StoreError> {
                self.require_account(job.domain, job.account).await?;
                sqlx::query(
                    "INSERT INTO sync_jobs (id, domain_id, account_id, kind, window_start, window_end, state, \
                     rows_written, changed_days, error, started_at, finished_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
                     ON CONFLICT (id) DO UPDATE SET window_start = excluded.window_start, \
                     window_end = excluded.window_end, state = excluded.state, \
                     rows_written = excluded.rows_written, changed_days = excluded.changed_days, \
                     error = excluded.error, finished_at = excluded.finished_at",
                )
                .bind(job.id.as_uuid())
                .bind(job.domain.as_uuid())
                .bind(job.account.as_uuid())
                .bind(job.kind.as_str())
                .bind(job.window.start())
                .bind(job.window.end())
                .bind(job.state.as_str())
                .bind(i64::try_from(job.rows).unwrap_or(i64::MAX))
                .bind(sql::changed_days_json(&job.changed_days))
                .bind(job.error.as_deref())
                .bind(job.started_at)
                .bind(job.finished_at)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn jobs(
                &self,
                domain: DomainId,
                account: Option<AccountId>,
                limit: u32,
            ) -> Result<Vec<SyncJob>, StoreError> {
                let rows = sqlx::query(
                    "SELECT id, domain_id, account_id, kind, window_start, window_end, state, rows_written, \
                     changed_days, error, started_at, finished_at FROM sync_jobs \
                     WHERE domain_id = $1 AND ($2 IS NULL OR account_id = $2) \
                     ORDER BY started_at DESC, id DESC LIMIT $3",
                )
                .bind(domain.as_uuid())
                .bind(account.map(|a| a.as_uuid()))
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(job_from).collect()
            }

            async fn job(&self, domain: DomainId, id: JobId) -> Result<SyncJob, StoreError> {
                let row = sqlx::query(
                    "SELECT id, domain_id, account_id, kind, window_start, window_end, state, rows_written, \
                     changed_days, error, started_at, finished_at FROM sync_jobs \
                     WHERE domain_id = $1 AND id = $2",
                )
                .bind(domain.as_uuid())
                .bind(id.as_uuid())
                .fetch_optional(&self.pool)
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
                let taken = sqlx::query(
                    "INSERT INTO sync_leases (account_id, holder, expires_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (account_id) DO UPDATE SET holder = excluded.holder, \
                     expires_at = excluded.expires_at \
                     WHERE sync_leases.expires_at < $4 OR sync_leases.holder = $2",
                )
                .bind(account.as_uuid())
                .bind(holder)
                .bind(until)
                .bind(now)
                .execute(&self.pool)
                .await?
                .rows_affected();
                Ok(taken == 1)
            }

            async fn release_lease(&self, account: AccountId, holder: &str) -> Result<(), StoreError> {
                sqlx::query("DELETE FROM sync_leases WHERE account_id = $1 AND holder = $2")
                    .bind(account.as_uuid())
                    .bind(holder)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }
        }
    };
}

pub(crate) use sql_jobs;
