//! The SQL adapters' shared implementation of [`crate::Store`].
//!
//! SQLite and PostgreSQL run the same statements (`$n` placeholders, `ON CONFLICT`); they differ
//! only in how an exact decimal is read from the pre-segment row table (TEXT in SQLite, NUMERIC
//! in PostgreSQL), which each adapter passes in. Cost records live in columnar segments (see
//! cloudbill-core's partition codec). A macro rather than generics: sqlx's per-database trait
//! bounds would otherwise repeat on every function.

use std::collections::BTreeMap;

use cloudbill_core::{
    AccountId, Assignment, ChangedDay, CostRecord, Currency, DateRange, JobKind, JobState,
    NaiveDate, ProjectId,
};

use crate::StoreError;

/// Encoded-but-unwritten segment memory at which a replace writes what it holds and starts
/// new segments (bounds the memory of an import of any size): 64 MiB unless a test lowers it.
static SPILL_BYTES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(64 << 20);

pub(crate) fn spill_bytes() -> usize {
    SPILL_BYTES.load(std::sync::atomic::Ordering::Relaxed)
}

/// Sets the memory at which a streamed replace spills its segments (tests use a tiny value to
/// exercise months split over many segments; results never depend on it).
#[doc(hidden)]
pub fn set_spill_bytes(bytes: usize) {
    SPILL_BYTES.store(bytes, std::sync::atomic::Ordering::Relaxed);
}

pub(crate) fn corrupt(what: &str, err: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {err}"))
}

pub(crate) fn parse_changed_days(raw: &str) -> Result<Vec<ChangedDay>, StoreError> {
    serde_json::from_str(raw).map_err(|e| corrupt("changed days", e))
}

pub(crate) fn changed_days_json(days: &[ChangedDay]) -> String {
    serde_json::to_string(days).unwrap_or_else(|_| "[]".into())
}

pub(crate) fn parse_job_state(raw: &str) -> Result<JobState, StoreError> {
    JobState::parse(raw).ok_or_else(|| corrupt("job state", raw))
}

pub(crate) fn parse_job_kind(raw: &str) -> Result<JobKind, StoreError> {
    match raw {
        "sync" => Ok(JobKind::Sync),
        "import" => Ok(JobKind::Import),
        other => Err(corrupt("job kind", other)),
    }
}

pub(crate) fn window(start: NaiveDate, end: NaiveDate) -> Result<DateRange, StoreError> {
    DateRange::new(start, end).map_err(|e| corrupt("job window", e))
}

/// The current project of each account: its assignment with the latest `from`.
pub(crate) fn current_projects(
    rows: Vec<(AccountId, Option<NaiveDate>, ProjectId)>,
) -> BTreeMap<AccountId, Vec<Assignment>> {
    let mut out: BTreeMap<AccountId, Vec<Assignment>> = BTreeMap::new();
    for (account, from, project) in rows {
        out.entry(account)
            .or_default()
            .push(Assignment { project, from });
    }
    for history in out.values_mut() {
        history.sort_by_key(|a| a.from);
    }
    out
}

pub(crate) fn is_unique_violation(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .is_some_and(sqlx::error::DatabaseError::is_unique_violation)
}

/// Where the records of a window replace come from.
pub(crate) enum Chunks<'a> {
    /// All of them, in memory.
    Slice(&'a [CostRecord]),
    /// In chunks over a channel, until [`crate::Chunk::End`].
    Channel(&'a mut dyn crate::ChunkSource),
}

/// Per (day, currency) totals of a replace's old or new records.
pub(crate) type Totals = BTreeMap<(NaiveDate, Currency), rust_decimal::Decimal>;

/// Adds `v` to the total of `key`.
pub(crate) fn add_total(
    totals: &mut Totals,
    key: (NaiveDate, Currency),
    v: rust_decimal::Decimal,
) -> Result<(), StoreError> {
    let slot = totals.entry(key).or_default();
    *slot = slot
        .checked_add(v)
        .ok_or_else(|| StoreError::RecordRejected(format!("daily total overflows on {}", key.0)))?;
    Ok(())
}

/// One batch of a window replace.
pub(crate) enum Batch<'a> {
    /// Records to encode.
    Records(std::borrow::Cow<'a, [CostRecord]>),
    /// An encoded partition.
    Partition(Vec<u8>),
}

impl Chunks<'_> {
    /// The next batch, `None` when done, an error when a channel closed before its end.
    pub(crate) async fn next(&mut self) -> Result<Option<Batch<'_>>, StoreError> {
        match self {
            Chunks::Slice(records) => {
                let all = std::mem::take(records);
                Ok((!all.is_empty()).then_some(Batch::Records(std::borrow::Cow::Borrowed(all))))
            }
            Chunks::Channel(rx) => match rx.next_chunk().await {
                Some(crate::Chunk::Records(batch)) => {
                    Ok(Some(Batch::Records(std::borrow::Cow::Owned(batch))))
                }
                Some(crate::Chunk::Partition(blob)) => Ok(Some(Batch::Partition(blob))),
                Some(crate::Chunk::End) => Ok(None),
                None => Err(crate::store::ended_early()),
            },
        }
    }
}

/// Implements [`crate::Store`] for an adapter struct with `pool` and `cipher` fields.
macro_rules! impl_sql_store {
    ($store:ty, $db:ty) => {
        use async_trait::async_trait;
        use chrono::Utc;
        use cloudbill_core::{
            AccountId, AccountState, ApiToken, TokenId, TokenRole, Assignment, CostRecord, Credentials, DateRange, Domain,
            DomainId, JobId, Name, NaiveDate, Project, ProjectGroup, ProjectId, ProviderEntry,
            ProviderKind, ProviderState, ServiceAccount, SyncJob,
        };
        use sqlx::Row;
        use uuid::Uuid;

        use crate::sql::{self, corrupt, is_unique_violation};
        use crate::store::check_record;
        use crate::{changed_days, daily_totals, StoreError, WriteOutcome};

        type DbRow = <$db as sqlx::Database>::Row;

        #[allow(clippy::needless_pass_by_value)] // Called with owned ids and kinds alike.
        fn not_found(what: &'static str, key: impl ToString) -> StoreError {
            StoreError::NotFound {
                what,
                key: key.to_string(),
            }
        }

        fn conflict_or(err: sqlx::Error, message: String) -> StoreError {
            if is_unique_violation(&err) {
                StoreError::Conflict(message)
            } else {
                StoreError::from(err)
            }
        }

        fn name(row: &DbRow, col: &str, what: &'static str) -> Result<Name, StoreError> {
            let raw: String = row.try_get(col)?;
            Name::parse(&raw, what).map_err(|e| corrupt(what, e))
        }

        fn domain_from(row: &DbRow) -> Result<Domain, StoreError> {
            Ok(Domain {
                id: DomainId::from_uuid(row.try_get("id")?),
                name: name(row, "name", "domain name")?,
                billing_enabled: row.try_get("billing_enabled")?,
                created_at: row.try_get("created_at")?,
            })
        }

        fn group_from(row: &DbRow) -> Result<ProjectGroup, StoreError> {
            Ok(ProjectGroup {
                id: cloudbill_core::GroupId::from_uuid(row.try_get("id")?),
                domain: DomainId::from_uuid(row.try_get("domain_id")?),
                name: name(row, "name", "project group name")?,
                parent: row
                    .try_get::<Option<Uuid>, _>("parent_id")?
                    .map(cloudbill_core::GroupId::from_uuid),
                created_at: row.try_get("created_at")?,
            })
        }

        fn project_from(row: &DbRow) -> Result<Project, StoreError> {
            Ok(Project {
                id: ProjectId::from_uuid(row.try_get("id")?),
                domain: DomainId::from_uuid(row.try_get("domain_id")?),
                name: name(row, "name", "project name")?,
                group: row
                    .try_get::<Option<Uuid>, _>("group_id")?
                    .map(cloudbill_core::GroupId::from_uuid),
                created_at: row.try_get("created_at")?,
            })
        }

        fn job_from(row: &DbRow) -> Result<SyncJob, StoreError> {
            let kind: String = row.try_get("kind")?;
            let state: String = row.try_get("state")?;
            let changed: String = row.try_get("changed_days")?;
            let rows: i64 = row.try_get("rows_written")?;
            Ok(SyncJob {
                id: JobId::from_uuid(row.try_get("id")?),
                domain: DomainId::from_uuid(row.try_get("domain_id")?),
                account: AccountId::from_uuid(row.try_get("account_id")?),
                kind: sql::parse_job_kind(&kind)?,
                window: sql::window(row.try_get("window_start")?, row.try_get("window_end")?)?,
                state: sql::parse_job_state(&state)?,
                rows: u64::try_from(rows).map_err(|e| corrupt("job rows", e))?,
                changed_days: sql::parse_changed_days(&changed)?,
                error: row.try_get("error")?,
                started_at: row.try_get("started_at")?,
                finished_at: row.try_get("finished_at")?,
            })
        }

        async fn bump<'e, E: sqlx::Executor<'e, Database = $db>>(e: E, domain: DomainId) -> Result<(), StoreError> {
            sqlx::query(
                "INSERT INTO data_versions (domain_id, version) VALUES ($1, 1) \
                 ON CONFLICT (domain_id) DO UPDATE SET version = data_versions.version + 1",
            )
            .bind(domain.as_uuid())
            .execute(e)
            .await?;
            Ok(())
        }

        /// Stores one segment.
        async fn insert_segment(
            tx: &mut sqlx::Transaction<'static, $db>,
            (domain, account): (DomainId, AccountId),
            month: NaiveDate,
            seq: i64,
            rows: usize,
            payload: Vec<u8>,
        ) -> Result<(), StoreError> {
            sqlx::query(
                "INSERT INTO cost_segments (account_id, domain_id, month, seq, rows_count, payload) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(account.as_uuid())
            .bind(domain.as_uuid())
            .bind(month)
            .bind(seq)
            .bind(i64::try_from(rows).unwrap_or(i64::MAX))
            .bind(payload)
            .execute(&mut **tx)
            .await?;
            Ok(())
        }

        /// Writes the encoders' segments (numbered from `*seq` on) and empties them.
        async fn flush_segments(
            tx: &mut sqlx::Transaction<'static, $db>,
            domain: DomainId,
            account: AccountId,
            encoders: &mut std::collections::BTreeMap<NaiveDate, cloudbill_core::PartitionEncoder>,
            seq: &mut i64,
        ) -> Result<(), StoreError> {
            for (month, encoder) in std::mem::take(encoders) {
                if encoder.rows() == 0 {
                    continue;
                }
                let rows = encoder.rows();
                insert_segment(tx, (domain, account), month, *seq, rows, encoder.finish()).await?;
                *seq += 1;
            }
            Ok(())
        }

        /// The replace's second half: reads the old segments (`seq <= existing`) of the
        /// months holding a replaced day once — their totals on replaced days for the
        /// restatement audit, their rows on other days into `encoders` to keep — and deletes
        /// them. Months without a replaced day are not touched.
        async fn retire_old_segments(
            tx: &mut sqlx::Transaction<'static, $db>,
            (domain, account): (DomainId, AccountId),
            scope: &crate::store::Scope,
            existing: i64,
            encoders: &mut std::collections::BTreeMap<NaiveDate, cloudbill_core::PartitionEncoder>,
        ) -> Result<sql::Totals, StoreError> {
            use futures::TryStreamExt;
            let mut before = sql::Totals::new();
            for month in scope.months() {
                let span = crate::store::month_range(month);
                let whole = scope.covers(span);
                {
                    let mut old = sqlx::query(
                        "SELECT payload FROM cost_segments \
                         WHERE account_id = $1 AND month = $2 AND seq <= $3",
                    )
                    .bind(account.as_uuid())
                    .bind(month)
                    .bind(existing)
                    .fetch(&mut **tx);
                    while let Some(row) = old.try_next().await? {
                        let payload: Vec<u8> = row.try_get("payload")?;
                        let part = cloudbill_core::Partition::decode(&payload).map_err(decode_failed)?;
                        if whole {
                            for (day, currency, amount) in part.daily_totals().map_err(decode_failed)? {
                                sql::add_total(&mut before, (day, currency), amount)?;
                            }
                        } else {
                            for r in part.records(domain, account).map_err(decode_failed)? {
                                if scope.contains(r.date) {
                                    sql::add_total(&mut before, (r.date, r.currency()), r.cost.amount())?;
                                } else {
                                    encode_into(encoders, &r);
                                }
                            }
                        }
                    }
                }
                sqlx::query("DELETE FROM cost_segments WHERE account_id = $1 AND month = $2 AND seq <= $3")
                    .bind(account.as_uuid())
                    .bind(month)
                    .bind(existing)
                    .execute(&mut **tx)
                    .await?;
            }
            Ok(before)
        }

        /// Adds a record to its month's encoder.
        fn encode_into(
            encoders: &mut std::collections::BTreeMap<NaiveDate, cloudbill_core::PartitionEncoder>,
            r: &CostRecord,
        ) {
            use chrono::Datelike;
            let month = r.date.with_day(1).unwrap_or(r.date);
            encoders
                .entry(month)
                .or_insert_with(|| cloudbill_core::PartitionEncoder::new(month))
                .push(r);
        }

        fn decode_failed(e: cloudbill_core::ValidationError) -> StoreError {
            corrupt("cost segment", e)
        }

        fn token_from(row: &DbRow) -> Result<ApiToken, StoreError> {
            let role: String = row.try_get("role")?;
            Ok(ApiToken {
                id: TokenId::from_uuid(row.try_get("id")?),
                domain: DomainId::from_uuid(row.try_get("domain_id")?),
                role: role.parse::<TokenRole>().map_err(|e| corrupt("token role", e))?,
                project: row.try_get::<Option<Uuid>, _>("project_id")?.map(ProjectId::from_uuid),
                label: row.try_get("label")?,
                created_at: row.try_get("created_at")?,
                revoked_at: row.try_get("revoked_at")?,
            })
        }

        impl $store {
            fn account_from(
                &self,
                row: &DbRow,
                history: &[Assignment],
            ) -> Result<ServiceAccount, StoreError> {
                let id = AccountId::from_uuid(row.try_get("id")?);
                let provider: String = row.try_get("provider")?;
                let state: String = row.try_get("state")?;
                let sealed: Option<Vec<u8>> = row.try_get("credentials")?;
                let credentials = match sealed {
                    None => None,
                    Some(blob) => {
                        let plain = self.cipher.open(&blob, id.as_uuid().as_bytes())?;
                        let text = std::str::from_utf8(&plain)
                            .map_err(|e| corrupt("credentials", e))?;
                        Some(Credentials::from_secret_json(text)?)
                    }
                };
                let project = history
                    .last()
                    .map(|a| a.project)
                    .ok_or_else(|| corrupt("service account", format!("{id} has no project")))?;
                Ok(ServiceAccount {
                    id,
                    domain: DomainId::from_uuid(row.try_get("domain_id")?),
                    name: name(row, "name", "account name")?,
                    provider: provider.parse().map_err(|e| corrupt("provider", e))?,
                    credentials,
                    state: match state.as_str() {
                        "ENABLED" => AccountState::Enabled,
                        "DISABLED" => AccountState::Disabled,
                        other => return Err(corrupt("account state", other)),
                    },
                    project,
                    created_at: row.try_get("created_at")?,
                })
            }

            async fn histories(
                &self,
                domain: DomainId,
                account: Option<AccountId>,
            ) -> Result<std::collections::BTreeMap<AccountId, Vec<Assignment>>, StoreError> {
                let rows = sqlx::query(
                    "SELECT a.account_id, a.effective_from, a.project_id \
                     FROM account_assignments a JOIN service_accounts s ON s.id = a.account_id \
                     WHERE s.domain_id = $1 AND ($2 IS NULL OR a.account_id = $2)",
                )
                .bind(domain.as_uuid())
                .bind(account.map(|a| a.as_uuid()))
                .fetch_all(&self.pool)
                .await?;
                let mut flat = Vec::with_capacity(rows.len());
                for row in &rows {
                    flat.push((
                        AccountId::from_uuid(row.try_get("account_id")?),
                        row.try_get::<Option<NaiveDate>, _>("effective_from")?,
                        ProjectId::from_uuid(row.try_get("project_id")?),
                    ));
                }
                Ok(sql::current_projects(flat))
            }

            /// Checks that the store's cipher is the database's key: it must open the sealed
            /// key check, or, in a database from before key checks, one sealed credential. A
            /// database with neither records the key check now, unless `fresh` (a key made up
            /// for a missing key file: the caller writes the file first, then calls
            /// `record_key`). With `fresh`, a database that holds sealed state is
            /// `KeyMissing`.
            pub(crate) async fn check_key(&self, fresh: bool) -> Result<(), StoreError> {
                let check: Option<Vec<u8>> = sqlx::query("SELECT sealed FROM key_check WHERE id = 1")
                    .fetch_optional(&self.pool)
                    .await?
                    .map(|r| r.try_get("sealed"))
                    .transpose()?;
                let credential = sqlx::query(
                    "SELECT id, credentials FROM service_accounts WHERE credentials IS NOT NULL LIMIT 1",
                )
                .fetch_optional(&self.pool)
                .await?;
                if fresh {
                    return if check.is_some() || credential.is_some() {
                        Err(StoreError::KeyMissing(String::new()))
                    } else {
                        Ok(())
                    };
                }
                if let Some(sealed) = check {
                    return self
                        .cipher
                        .open(&sealed, crate::crypto::KEY_CHECK_CONTEXT)
                        .map(drop)
                        .map_err(|_| StoreError::WrongKey("the key".into()));
                }
                if let Some(row) = credential {
                    let id: Uuid = row.try_get("id")?;
                    let blob: Vec<u8> = row.try_get("credentials")?;
                    self.cipher
                        .open(&blob, id.as_bytes())
                        .map_err(|_| StoreError::WrongKey("the key".into()))?;
                }
                self.record_key().await
            }

            /// Records the key check sealed with the store's cipher (if none is recorded).
            pub(crate) async fn record_key(&self) -> Result<(), StoreError> {
                let sealed = self.cipher.seal(crate::crypto::KEY_CHECK, crate::crypto::KEY_CHECK_CONTEXT)?;
                sqlx::query("INSERT INTO key_check (id, sealed) VALUES (1, $1) ON CONFLICT (id) DO NOTHING")
                    .bind(sealed)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            /// Re-seals every stored credential and the key check with `new`, in one
            /// transaction; returns how many credentials were re-sealed. The store's own
            /// cipher must open them (checked at open).
            pub(crate) async fn reseal(&self, new: &crate::Cipher) -> Result<usize, StoreError> {
                let mut tx = self.write_tx().await?;
                let rows = sqlx::query("SELECT id, credentials FROM service_accounts WHERE credentials IS NOT NULL")
                    .fetch_all(&mut *tx)
                    .await?;
                for row in &rows {
                    let id: Uuid = row.try_get("id")?;
                    let blob: Vec<u8> = row.try_get("credentials")?;
                    let plain = self.cipher.open(&blob, id.as_bytes())?;
                    sqlx::query("UPDATE service_accounts SET credentials = $1 WHERE id = $2")
                        .bind(new.seal(&plain, id.as_bytes())?)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
                sqlx::query("DELETE FROM key_check").execute(&mut *tx).await?;
                sqlx::query("INSERT INTO key_check (id, sealed) VALUES (1, $1)")
                    .bind(new.seal(crate::crypto::KEY_CHECK, crate::crypto::KEY_CHECK_CONTEXT)?)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(rows.len())
            }

            /// The one implementation of a window replace (see `Store::replace_window` and
            /// `Store::replace_window_streamed`): new records are encoded into segments as they
            /// arrive (spilled at `SPILL_BYTES`), then the old segments of the window's months
            /// are read once — summed for the restatement audit, their rows outside the window
            /// kept — and deleted, all in one transaction.
            async fn replace_inner(
                &self,
                domain: DomainId,
                account: AccountId,
                job: JobId,
                window: Option<DateRange>,
                mut chunks: sql::Chunks<'_>,
            ) -> Result<WriteOutcome, StoreError> {
                self.require_account(domain, account).await?;
                let mut tx = self.write_tx().await?;
                // One replace of an account at a time: the account row's lock (PostgreSQL; SQLite's
                // write transaction already excludes every other writer) makes a second replace
                // wait for the first to commit, then see its segments.
                sqlx::query("UPDATE service_accounts SET id = id WHERE id = $1")
                    .bind(account.as_uuid())
                    .execute(&mut *tx)
                    .await?;
                let existing: i64 = sqlx::query("SELECT COALESCE(MAX(seq), 0) AS seq FROM cost_segments WHERE account_id = $1")
                    .bind(account.as_uuid())
                    .fetch_one(&mut *tx)
                    .await?
                    .try_get("seq")?;
                let mut seq = existing + 1;
                let learned = window.is_none();
                let mut encoders = std::collections::BTreeMap::new();
                let mut after = sql::Totals::new();
                let mut span = crate::store::SeenDays::default();
                let mut rows: u64 = 0;
                while let Some(batch) = chunks.next().await? {
                    match batch {
                        sql::Batch::Records(batch) => {
                            // Validate inside the transaction: a bad record mid-stream rolls
                            // back everything written before it.
                            for r in batch.iter() {
                                check_record(domain, account, window, r)?;
                                span.add(r.date);
                                encode_into(&mut encoders, r);
                            }
                            for (key, v) in daily_totals(batch.iter())? {
                                sql::add_total(&mut after, key, v)?;
                            }
                            rows += batch.len() as u64;
                        }
                        sql::Batch::Partition(blob) => {
                            let checked = crate::store::check_partition(window, &blob)?;
                            for (day, currency, amount) in checked.totals {
                                span.add(day);
                                sql::add_total(&mut after, (day, currency), amount)?;
                            }
                            insert_segment(&mut tx, (domain, account), checked.month, seq, checked.rows, blob).await?;
                            seq += 1;
                            rows += checked.rows as u64;
                        }
                    }
                    if encoders.values().map(cloudbill_core::PartitionEncoder::memory).sum::<usize>() > sql::spill_bytes() {
                        flush_segments(&mut tx, domain, account, &mut encoders, &mut seq).await?;
                    }
                }
                let Some(scope) = span.scope(window) else {
                    // No window and no record: nothing to replace.
                    return Ok(WriteOutcome::default());
                };
                let before = retire_old_segments(&mut tx, (domain, account), &scope, existing, &mut encoders).await?;
                flush_segments(&mut tx, domain, account, &mut encoders, &mut seq).await?;
                bump(&mut *tx, domain).await?;
                let outcome = WriteOutcome {
                    rows,
                    changed_days: changed_days(&before, &after),
                    window: scope.span(),
                    days: scope.day_count(),
                };
                let job_row = sqlx::query("SELECT rows_written, changed_days FROM sync_jobs WHERE id = $1 AND account_id = $2")
                    .bind(job.as_uuid())
                    .bind(account.as_uuid())
                    .fetch_optional(&mut *tx)
                    .await?
                    .ok_or_else(|| not_found("job", job))?;
                let rows_so_far: i64 = job_row.try_get("rows_written")?;
                let mut days = sql::parse_changed_days(&job_row.try_get::<String, _>("changed_days")?)?;
                days.extend(outcome.changed_days.iter().copied());
                sqlx::query("UPDATE sync_jobs SET rows_written = $1, changed_days = $2 WHERE id = $3")
                    .bind(rows_so_far.saturating_add(i64::try_from(outcome.rows).unwrap_or(i64::MAX)))
                    .bind(sql::changed_days_json(&days))
                    .bind(job.as_uuid())
                    .execute(&mut *tx)
                    .await?;
                if let Some(window) = outcome.window.filter(|_| learned) {
                    // The job records the days the data covered, with the data.
                    sqlx::query("UPDATE sync_jobs SET window_start = $1, window_end = $2 WHERE id = $3")
                        .bind(window.start())
                        .bind(window.end())
                        .bind(job.as_uuid())
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(outcome)
            }


            async fn project_exists(
                &self,
                domain: DomainId,
                project: ProjectId,
            ) -> Result<bool, StoreError> {
                Ok(
                    sqlx::query("SELECT 1 AS one FROM projects WHERE id = $1 AND domain_id = $2")
                        .bind(project.as_uuid())
                        .bind(domain.as_uuid())
                        .fetch_optional(&self.pool)
                        .await?
                        .is_some(),
                )
            }

            async fn require_group(
                &self,
                domain: DomainId,
                id: cloudbill_core::GroupId,
            ) -> Result<(), StoreError> {
                sqlx::query("SELECT 1 AS one FROM project_groups WHERE id = $1 AND domain_id = $2")
                    .bind(id.as_uuid())
                    .bind(domain.as_uuid())
                    .fetch_optional(&self.pool)
                    .await?
                    .map(|_| ())
                    .ok_or_else(|| not_found("project group", id))
            }

            async fn require_account(
                &self,
                domain: DomainId,
                id: AccountId,
            ) -> Result<(), StoreError> {
                sqlx::query("SELECT 1 AS one FROM service_accounts WHERE id = $1 AND domain_id = $2")
                    .bind(id.as_uuid())
                    .bind(domain.as_uuid())
                    .fetch_optional(&self.pool)
                    .await?
                    .map(|_| ())
                    .ok_or_else(|| not_found("service account", id))
            }
        }

        #[async_trait]
        impl crate::CatalogStore for $store {
            async fn ensure_domain(&self, name: &Name) -> Result<Domain, StoreError> {
                let select = "SELECT id, name, billing_enabled, created_at FROM domains WHERE name = $1";
                if let Some(row) = sqlx::query(select)
                    .bind(name.as_str())
                    .fetch_optional(&self.pool)
                    .await?
                {
                    return domain_from(&row);
                }
                let mut tx = self.write_tx().await?;
                let id = DomainId::new();
                let inserted = sqlx::query(
                    "INSERT INTO domains (id, name, billing_enabled, created_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (name) DO NOTHING",
                )
                .bind(id.as_uuid())
                .bind(name.as_str())
                .bind(false)
                .bind(Utc::now())
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if inserted == 1 {
                    for kind in ProviderKind::ALL {
                        sqlx::query("INSERT INTO providers (domain_id, kind, state) VALUES ($1, $2, $3)")
                            .bind(id.as_uuid())
                            .bind(kind.as_str())
                            .bind(ProviderState::Enabled.as_str())
                            .execute(&mut *tx)
                            .await?;
                    }
                }
                tx.commit().await?;
                let row = sqlx::query(select)
                    .bind(name.as_str())
                    .fetch_one(&self.pool)
                    .await?;
                domain_from(&row)
            }

            async fn set_billing_enabled(
                &self,
                domain: DomainId,
                enabled: bool,
            ) -> Result<Domain, StoreError> {
                let row = sqlx::query(
                    "UPDATE domains SET billing_enabled = $1 WHERE id = $2 \
                     RETURNING id, name, billing_enabled, created_at",
                )
                .bind(enabled)
                .bind(domain.as_uuid())
                .fetch_optional(&self.pool)
                .await?
                .ok_or_else(|| not_found("domain", domain))?;
                domain_from(&row)
            }

            async fn providers(&self, domain: DomainId) -> Result<Vec<ProviderEntry>, StoreError> {
                let rows = sqlx::query("SELECT kind, state FROM providers WHERE domain_id = $1")
                    .bind(domain.as_uuid())
                    .fetch_all(&self.pool)
                    .await?;
                let mut out = Vec::with_capacity(rows.len());
                for row in &rows {
                    let kind: String = row.try_get("kind")?;
                    let state: String = row.try_get("state")?;
                    out.push(ProviderEntry {
                        kind: kind.parse().map_err(|e| corrupt("provider", e))?,
                        state: if state == "ENABLED" {
                            ProviderState::Enabled
                        } else {
                            ProviderState::Disabled
                        },
                    });
                }
                out.sort_by_key(|p| ProviderKind::ALL.iter().position(|k| *k == p.kind));
                Ok(out)
            }

            async fn set_provider_state(
                &self,
                domain: DomainId,
                kind: ProviderKind,
                state: ProviderState,
            ) -> Result<ProviderEntry, StoreError> {
                let updated = sqlx::query(
                    "UPDATE providers SET state = $1 WHERE domain_id = $2 AND kind = $3",
                )
                .bind(state.as_str())
                .bind(domain.as_uuid())
                .bind(kind.as_str())
                .execute(&self.pool)
                .await?
                .rows_affected();
                if updated == 0 {
                    return Err(not_found("provider", kind));
                }
                Ok(ProviderEntry { kind, state })
            }

            async fn create_group(&self, group: &ProjectGroup) -> Result<(), StoreError> {
                if let Some(parent) = group.parent {
                    self.require_group(group.domain, parent).await?;
                }
                sqlx::query(
                    "INSERT INTO project_groups (id, domain_id, name, parent_id, created_at) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(group.id.as_uuid())
                .bind(group.domain.as_uuid())
                .bind(group.name.as_str())
                .bind(group.parent.map(|p| p.as_uuid()))
                .bind(group.created_at)
                .execute(&self.pool)
                .await
                .map_err(|e| {
                    conflict_or(e, format!("project group {:?} already exists", group.name.as_str()))
                })?;
                bump(&self.pool, group.domain).await
            }

            async fn groups(&self, domain: DomainId) -> Result<Vec<ProjectGroup>, StoreError> {
                let rows = sqlx::query(
                    "SELECT id, domain_id, name, parent_id, created_at FROM project_groups \
                     WHERE domain_id = $1 ORDER BY name",
                )
                .bind(domain.as_uuid())
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(group_from).collect()
            }

            async fn create_project(&self, project: &Project) -> Result<(), StoreError> {
                if let Some(group) = project.group {
                    self.require_group(project.domain, group).await?;
                }
                sqlx::query(
                    "INSERT INTO projects (id, domain_id, name, group_id, created_at) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(project.id.as_uuid())
                .bind(project.domain.as_uuid())
                .bind(project.name.as_str())
                .bind(project.group.map(|g| g.as_uuid()))
                .bind(project.created_at)
                .execute(&self.pool)
                .await
                .map_err(|e| conflict_or(e, format!("project {:?} already exists", project.name.as_str())))?;
                bump(&self.pool, project.domain).await
            }

            async fn projects(&self, domain: DomainId) -> Result<Vec<Project>, StoreError> {
                let rows = sqlx::query(
                    "SELECT id, domain_id, name, group_id, created_at FROM projects \
                     WHERE domain_id = $1 ORDER BY name",
                )
                .bind(domain.as_uuid())
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(project_from).collect()
            }

            async fn delete_project(&self, domain: DomainId, id: ProjectId) -> Result<(), StoreError> {
                let mut tx = self.write_tx().await?;
                let used = sqlx::query("SELECT 1 AS one FROM account_assignments WHERE project_id = $1 LIMIT 1")
                    .bind(id.as_uuid())
                    .fetch_optional(&mut *tx)
                    .await?;
                if used.is_some() {
                    return Err(StoreError::Conflict(
                        "project has billing accounts assigned (now or in its history); move or remove them first".into(),
                    ));
                }
                let deleted = sqlx::query("DELETE FROM projects WHERE id = $1 AND domain_id = $2")
                    .bind(id.as_uuid())
                    .bind(domain.as_uuid())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if deleted == 0 {
                    return Err(not_found("project", id));
                }
                bump(&mut *tx, domain).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn create_account(&self, account: &ServiceAccount) -> Result<(), StoreError> {
                if !self.project_exists(account.domain, account.project).await? {
                    return Err(not_found("project", account.project));
                }
                let sealed = match &account.credentials {
                    Some(c) => Some(self.cipher.seal(
                        c.to_secret_json().as_bytes(),
                        account.id.as_uuid().as_bytes(),
                    )?),
                    None => None,
                };
                let mut tx = self.write_tx().await?;
                sqlx::query(
                    "INSERT INTO service_accounts (id, domain_id, name, provider, credentials, state, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(account.id.as_uuid())
                .bind(account.domain.as_uuid())
                .bind(account.name.as_str())
                .bind(account.provider.as_str())
                .bind(sealed)
                .bind(account.state.as_str())
                .bind(account.created_at)
                .execute(&mut *tx)
                .await
                .map_err(|e| conflict_or(e, format!("service account {:?} already exists", account.name.as_str())))?;
                sqlx::query(
                    "INSERT INTO account_assignments (account_id, effective_from, project_id) VALUES ($1, $2, $3)",
                )
                .bind(account.id.as_uuid())
                .bind(Option::<NaiveDate>::None)
                .bind(account.project.as_uuid())
                .execute(&mut *tx)
                .await?;
                bump(&mut *tx, account.domain).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn accounts(&self, domain: DomainId) -> Result<Vec<ServiceAccount>, StoreError> {
                let histories = self.histories(domain, None).await?;
                let rows = sqlx::query(
                    "SELECT id, domain_id, name, provider, credentials, state, created_at \
                     FROM service_accounts WHERE domain_id = $1 ORDER BY name",
                )
                .bind(domain.as_uuid())
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|row| {
                        let id = AccountId::from_uuid(row.try_get("id")?);
                        let history = histories.get(&id).map(Vec::as_slice).unwrap_or_default();
                        self.account_from(row, history)
                    })
                    .collect()
            }

            async fn account(&self, domain: DomainId, id: AccountId) -> Result<ServiceAccount, StoreError> {
                let row = sqlx::query(
                    "SELECT id, domain_id, name, provider, credentials, state, created_at \
                     FROM service_accounts WHERE domain_id = $1 AND id = $2",
                )
                .bind(domain.as_uuid())
                .bind(id.as_uuid())
                .fetch_optional(&self.pool)
                .await?
                .ok_or_else(|| not_found("service account", id))?;
                let histories = self.histories(domain, Some(id)).await?;
                let history = histories.get(&id).map(Vec::as_slice).unwrap_or_default();
                self.account_from(&row, history)
            }

            async fn set_account_state(
                &self,
                domain: DomainId,
                id: AccountId,
                state: AccountState,
            ) -> Result<(), StoreError> {
                let updated = sqlx::query("UPDATE service_accounts SET state = $1 WHERE id = $2 AND domain_id = $3")
                    .bind(state.as_str())
                    .bind(id.as_uuid())
                    .bind(domain.as_uuid())
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
                if updated == 0 {
                    return Err(not_found("service account", id));
                }
                Ok(())
            }

            async fn delete_account(&self, domain: DomainId, id: AccountId) -> Result<(), StoreError> {
                let mut tx = self.write_tx().await?;
                for table in ["cost_segments", "sync_jobs", "sync_leases", "account_assignments"] {
                    sqlx::query(&format!("DELETE FROM {table} WHERE account_id = $1 AND EXISTS \
                        (SELECT 1 FROM service_accounts WHERE id = $1 AND domain_id = $2)"))
                        .bind(id.as_uuid())
                        .bind(domain.as_uuid())
                        .execute(&mut *tx)
                        .await?;
                }
                let deleted = sqlx::query("DELETE FROM service_accounts WHERE id = $1 AND domain_id = $2")
                    .bind(id.as_uuid())
                    .bind(domain.as_uuid())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if deleted == 0 {
                    return Err(not_found("service account", id));
                }
                bump(&mut *tx, domain).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn set_assignments(
                &self,
                domain: DomainId,
                id: AccountId,
                expected: &[Assignment],
                history: &[Assignment],
            ) -> Result<(), StoreError> {
                crate::store::check_history(history)?;
                self.require_account(domain, id).await?;
                for step in history {
                    if !self.project_exists(domain, step.project).await? {
                        return Err(not_found("project", step.project));
                    }
                }
                let mut tx = self.write_tx().await?;
                // The account row locked first (PostgreSQL; SQLite's write transaction excludes
                // every other writer): the history compared is the one replaced.
                sqlx::query("UPDATE service_accounts SET id = id WHERE id = $1")
                    .bind(id.as_uuid())
                    .execute(&mut *tx)
                    .await?;
                let rows = sqlx::query(
                    "SELECT effective_from, project_id FROM account_assignments WHERE account_id = $1",
                )
                .bind(id.as_uuid())
                .fetch_all(&mut *tx)
                .await?;
                let mut current = Vec::with_capacity(rows.len());
                for row in &rows {
                    current.push(Assignment {
                        from: row.try_get::<Option<NaiveDate>, _>("effective_from")?,
                        project: ProjectId::from_uuid(row.try_get("project_id")?),
                    });
                }
                current.sort_by_key(|a| a.from);
                if current != expected {
                    return Err(StoreError::Conflict("the account was moved meanwhile; try again".into()));
                }
                sqlx::query("DELETE FROM account_assignments WHERE account_id = $1")
                    .bind(id.as_uuid())
                    .execute(&mut *tx)
                    .await?;
                for step in history {
                    sqlx::query("INSERT INTO account_assignments (account_id, effective_from, project_id) VALUES ($1, $2, $3)")
                        .bind(id.as_uuid())
                        .bind(step.from)
                        .bind(step.project.as_uuid())
                        .execute(&mut *tx)
                        .await?;
                }
                bump(&mut *tx, domain).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn assignments(&self, domain: DomainId, id: AccountId) -> Result<Vec<Assignment>, StoreError> {
                self.require_account(domain, id).await?;
                Ok(self.histories(domain, Some(id)).await?.remove(&id).unwrap_or_default())
            }

            async fn assignment_histories(
                &self,
                domain: DomainId,
            ) -> Result<std::collections::BTreeMap<AccountId, Vec<Assignment>>, StoreError> {
                self.histories(domain, None).await
            }
        }

        #[async_trait]
        impl crate::CostStore for $store {
            async fn replace_window(
                &self,
                domain: DomainId,
                account: AccountId,
                job: JobId,
                window: DateRange,
                records: &[CostRecord],
            ) -> Result<WriteOutcome, StoreError> {
                self.replace_inner(domain, account, job, Some(window), sql::Chunks::Slice(records)).await
            }

            async fn replace_window_streamed(
                &self,
                domain: DomainId,
                account: AccountId,
                job: JobId,
                window: Option<DateRange>,
                chunks: &mut dyn crate::ChunkSource,
            ) -> Result<WriteOutcome, StoreError> {
                self.replace_inner(domain, account, job, window, sql::Chunks::Channel(chunks)).await
            }

            async fn cost_partitions(
                &self,
                domain: DomainId,
                range: Option<DateRange>,
            ) -> Result<Vec<(AccountId, Vec<u8>)>, StoreError> {
                let mut out = Vec::new();
                self.for_each_partition(domain, range, &mut |account: AccountId, blob: &[u8]| {
                    out.push((account, blob.to_vec()));
                    true
                })
                .await?;
                Ok(out)
            }

            async fn for_each_partition<'v>(
                &self,
                domain: DomainId,
                range: Option<DateRange>,
                visit: &'v mut crate::store::SinkRef<'v>,
            ) -> Result<(), StoreError> {
                use chrono::Datelike;
                use futures::TryStreamExt;
                let (from, to) = match range {
                    Some(r) => (r.start().with_day(1).unwrap_or(r.start()), r.end()),
                    // Bounds both backends store and compare as dates (SQLite compares text).
                    None => (
                        NaiveDate::from_ymd_opt(1, 1, 1).unwrap_or_default(),
                        NaiveDate::from_ymd_opt(9999, 12, 31).unwrap_or_default(),
                    ),
                };
                let mut rows = sqlx::query(
                    "SELECT account_id, payload FROM cost_segments \
                     WHERE domain_id = $1 AND month >= $2 AND month < $3 ORDER BY month, account_id, seq",
                )
                .bind(domain.as_uuid())
                .bind(from)
                .bind(to)
                .fetch(&self.pool);
                while let Some(row) = rows.try_next().await? {
                    let account = AccountId::from_uuid(row.try_get("account_id")?);
                    let payload: &[u8] = row.try_get("payload")?;
                    if !visit.partition(account, payload) {
                        break;
                    }
                }
                Ok(())
            }

            async fn data_version(&self, domain: DomainId) -> Result<i64, StoreError> {
                Ok(sqlx::query("SELECT version FROM data_versions WHERE domain_id = $1")
                    .bind(domain.as_uuid())
                    .fetch_optional(&self.pool)
                    .await?
                    .map(|row| row.try_get::<i64, _>("version"))
                    .transpose()?
                    .unwrap_or(0))
            }

            async fn cost_records(
                &self,
                domain: DomainId,
                range: DateRange,
                account: Option<AccountId>,
            ) -> Result<Vec<CostRecord>, StoreError> {
                use chrono::Datelike;
                let rows = sqlx::query(
                    "SELECT account_id, payload FROM cost_segments \
                     WHERE domain_id = $1 AND month >= $2 AND month < $3 \
                     AND ($4 IS NULL OR account_id = $4) ORDER BY month, account_id, seq",
                )
                .bind(domain.as_uuid())
                .bind(range.start().with_day(1).unwrap_or(range.start()))
                .bind(range.end())
                .bind(account.map(|a| a.as_uuid()))
                .fetch_all(&self.pool)
                .await?;
                let mut out = Vec::new();
                for row in &rows {
                    let payload: Vec<u8> = row.try_get("payload")?;
                    let part = cloudbill_core::Partition::decode(&payload).map_err(decode_failed)?;
                    let owner = AccountId::from_uuid(row.try_get("account_id")?);
                    out.extend(
                        part.records(domain, owner)
                            .map_err(decode_failed)?
                            .into_iter()
                            .filter(|r| range.contains(r.date)),
                    );
                }
                out.sort_by_key(|r| r.date);
                Ok(out)
            }
        }

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

        #[async_trait]
        impl crate::TokenStore for $store {
            async fn create_token(&self, token: &ApiToken, hash: &[u8; 32]) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO api_tokens (id, domain_id, token_hash, role, project_id, label, created_at, revoked_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(token.id.as_uuid())
                .bind(token.domain.as_uuid())
                .bind(hash.to_vec())
                .bind(token.role.as_str())
                .bind(token.project.map(|p| p.as_uuid()))
                .bind(token.label.as_str())
                .bind(token.created_at)
                .bind(token.revoked_at)
                .execute(&self.pool)
                .await
                .map_err(|e| conflict_or(e, "token already exists".into()))?;
                Ok(())
            }

            async fn tokens(&self, domain: DomainId) -> Result<Vec<ApiToken>, StoreError> {
                let rows = sqlx::query(
                    "SELECT id, domain_id, role, project_id, label, created_at, revoked_at FROM api_tokens \
                     WHERE domain_id = $1 ORDER BY created_at DESC, id DESC",
                )
                .bind(domain.as_uuid())
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(token_from).collect()
            }

            async fn revoke_token(&self, domain: DomainId, id: TokenId) -> Result<(), StoreError> {
                let found = sqlx::query("SELECT 1 AS one FROM api_tokens WHERE id = $1 AND domain_id = $2")
                    .bind(id.as_uuid())
                    .bind(domain.as_uuid())
                    .fetch_optional(&self.pool)
                    .await?;
                if found.is_none() {
                    return Err(not_found("token", id));
                }
                sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                    .bind(Utc::now())
                    .bind(id.as_uuid())
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn token_by_hash(&self, hash: &[u8; 32]) -> Result<Option<ApiToken>, StoreError> {
                let row = sqlx::query(
                    "SELECT id, domain_id, role, project_id, label, created_at, revoked_at FROM api_tokens \
                     WHERE token_hash = $1",
                )
                .bind(hash.to_vec())
                .fetch_optional(&self.pool)
                .await?;
                row.as_ref().map(token_from).transpose()
            }
        }
    };
}

pub(crate) use impl_sql_store;
