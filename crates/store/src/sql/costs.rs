//! Cost segments: window replaces (records or ready-encoded partitions), retiring the old
//! segments of replaced days, partition streams, the data version.

use async_trait::async_trait;
use cloudbill_core::{AccountId, CostRecord, DateRange, DomainId, JobId, NaiveDate};

use super::dialect::{Arg, Col, Dialect, Run};
use super::rows::{decode_failed, not_found};
use super::SqlStore;
use crate::sql::{self};
use crate::store::check_record;
use crate::{changed_days, daily_totals, DataChange, DataChanges, StoreError, WriteOutcome};
use cloudbill_columnar::EncodedPartition;

/// Bumps the domain's data version (every change to cost data or the catalog does) and logs
/// what changed at the new version (see [`crate::CostStore::changes_since`]). Call it inside
/// the transaction that makes the change, so the log and the data commit together.
pub(crate) async fn bump<'e, D: Dialect>(
    on: impl Into<super::dialect::Exec<'e, D>>,
    domain: DomainId,
    changes: &[DataChange],
) -> Result<(), StoreError> {
    let mut on: super::dialect::Exec<'e, D> = on.into();
    let version: i64 = sqlx::query::<D>(
        "INSERT INTO data_versions (domain_id, version, log_from) VALUES ($1, 1, 1) \
         ON CONFLICT (domain_id) DO UPDATE SET version = data_versions.version + 1 \
         RETURNING version",
    )
    .arg(domain.as_uuid())
    .one(again(&mut on))
    .await?
    .col("version")?;
    for change in changes {
        let (account, month) = match change {
            DataChange::Catalog => (None, None),
            DataChange::Account(a) => (Some(a.as_uuid()), None),
            DataChange::Month(a, m) => (Some(a.as_uuid()), Some(*m)),
        };
        sqlx::query::<D>(
            "INSERT INTO data_changes (domain_id, version, account_id, month) \
             VALUES ($1, $2, $3, $4)",
        )
        .arg(domain.as_uuid())
        .arg(version)
        .arg(account)
        .arg(month)
        .run(again(&mut on))
        .await?;
    }
    if version % CHANGE_LOG_PRUNE_EVERY == 0 {
        // Keep the last CHANGE_LOG_VERSIONS versions' changes; an engine older than that
        // reloads whole.
        let from = version - crate::CHANGE_LOG_VERSIONS + 1;
        sqlx::query::<D>("DELETE FROM data_changes WHERE domain_id = $1 AND version < $2")
            .arg(domain.as_uuid())
            .arg(from)
            .run(again(&mut on))
            .await?;
        sqlx::query::<D>(
            "UPDATE data_versions SET log_from = $2 WHERE domain_id = $1 AND log_from < $2",
        )
        .arg(domain.as_uuid())
        .arg(from)
        .run(again(&mut on))
        .await?;
    }
    if D::NOTIFIES {
        // After the bump; in a transaction it is delivered when (and if) that commits.
        // Replicas refresh at once.
        sqlx::query::<D>("SELECT pg_notify($1, $2)")
            .arg(CHANGES_CHANNEL)
            .arg(domain.to_string())
            .run(on)
            .await?;
    }
    Ok(())
}

/// How often (in versions) the change log is pruned.
const CHANGE_LOG_PRUNE_EVERY: i64 = 64;

/// `on` again, for one more statement (a reborrow of a transaction's connection).
fn again<'a, D: sqlx::Database>(
    on: &'a mut super::dialect::Exec<'_, D>,
) -> super::dialect::Exec<'a, D> {
    use super::dialect::Exec;
    match on {
        Exec::Pool(pool) => Exec::Pool(pool),
        Exec::Conn(conn) => Exec::Conn(&mut **conn),
    }
}

/// The PostgreSQL channel a data version's move is announced on (payload: the domain id).
pub(crate) const CHANGES_CHANNEL: &str = "cloudbill_changes";

/// The `format` of the segments this version writes (see migration 0007).
const SEGMENT_FORMAT: i64 = 3;

/// Stores one segment.
async fn insert_segment<D: Dialect>(
    tx: &mut sqlx::Transaction<'static, D>,
    (domain, account): (DomainId, AccountId),
    seq: i64,
    partition: EncodedPartition,
) -> Result<(), StoreError> {
    sqlx::query::<D>(
        "INSERT INTO cost_segments (account_id, domain_id, month, seq, rows_count, payload, format) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .arg(account.as_uuid())
    .arg(domain.as_uuid())
    .arg(partition.month())
    .arg(seq)
    .arg(i64::try_from(partition.rows()).unwrap_or(i64::MAX))
    .arg(partition.into_bytes())
    .arg(SEGMENT_FORMAT)
    .run(&mut **tx)
    .await?;
    Ok(())
}

/// Adds a replace's rows and changed days to its job and, when the replace learned its window
/// from the data, records that window (in the replace's transaction, with the data).
async fn record_on_job<D: Dialect>(
    tx: &mut sqlx::Transaction<'static, D>,
    account: AccountId,
    job: JobId,
    outcome: &WriteOutcome,
    learned: bool,
) -> Result<(), StoreError> {
    let job_row = sqlx::query::<D>(
        "SELECT rows_written, changed_days FROM sync_jobs WHERE id = $1 AND account_id = $2",
    )
    .arg(job.as_uuid())
    .arg(account.as_uuid())
    .optional(&mut **tx)
    .await?
    .ok_or_else(|| not_found("job", job))?;
    let rows_so_far: i64 = job_row.col("rows_written")?;
    let mut days = sql::parse_changed_days(&job_row.col::<String>("changed_days")?)?;
    days.extend(outcome.changed_days.iter().copied());
    sqlx::query::<D>("UPDATE sync_jobs SET rows_written = $1, changed_days = $2 WHERE id = $3")
        .arg(rows_so_far.saturating_add(i64::try_from(outcome.rows).unwrap_or(i64::MAX)))
        .arg(sql::changed_days_json(&days))
        .arg(job.as_uuid())
        .run(&mut **tx)
        .await?;
    if let Some(window) = outcome.window.filter(|_| learned) {
        // The job records the days the data covered, with the data.
        sqlx::query::<D>("UPDATE sync_jobs SET window_start = $1, window_end = $2 WHERE id = $3")
            .arg(window.start())
            .arg(window.end())
            .arg(job.as_uuid())
            .run(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Writes the encoders' segments (numbered from `*seq` on) and empties them.
async fn flush_segments<D: Dialect>(
    tx: &mut sqlx::Transaction<'static, D>,
    domain: DomainId,
    account: AccountId,
    encoders: &mut std::collections::BTreeMap<NaiveDate, cloudbill_columnar::PartitionEncoder>,
    seq: &mut i64,
) -> Result<(), StoreError> {
    for encoder in std::mem::take(encoders).into_values() {
        if encoder.rows() == 0 {
            continue;
        }
        insert_segment(tx, (domain, account), *seq, encoder.finish()).await?;
        *seq += 1;
    }
    Ok(())
}

/// The replace's second half: reads the old segments (`seq <= existing`) of the
/// months holding a replaced day once — their totals on replaced days for the
/// restatement audit, their rows on other days into `encoders` to keep — and deletes
/// them. Months without a replaced day are not touched.
async fn retire_old_segments<D: Dialect>(
    tx: &mut sqlx::Transaction<'static, D>,
    (domain, account): (DomainId, AccountId),
    scope: &crate::store::Scope,
    existing: i64,
    encoders: &mut std::collections::BTreeMap<NaiveDate, cloudbill_columnar::PartitionEncoder>,
) -> Result<sql::Totals, StoreError> {
    use futures::TryStreamExt;
    let mut before = sql::Totals::new();
    for month in scope.months() {
        let span = crate::store::month_range(month);
        let whole = scope.covers(span);
        {
            let mut old = sqlx::query::<D>(
                "SELECT payload FROM cost_segments \
                 WHERE account_id = $1 AND month = $2 AND seq <= $3",
            )
            .arg(account.as_uuid())
            .arg(month)
            .arg(existing)
            .stream(&mut **tx);
            while let Some(row) = old.try_next().await? {
                let payload: Vec<u8> = row.col("payload")?;
                let part =
                    cloudbill_columnar::Partition::decode(&payload).map_err(decode_failed)?;
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
        sqlx::query::<D>(
            "DELETE FROM cost_segments WHERE account_id = $1 AND month = $2 AND seq <= $3",
        )
        .arg(account.as_uuid())
        .arg(month)
        .arg(existing)
        .run(&mut **tx)
        .await?;
    }
    Ok(before)
}

/// Adds a record to its month's encoder.
fn encode_into(
    encoders: &mut std::collections::BTreeMap<NaiveDate, cloudbill_columnar::PartitionEncoder>,
    r: &CostRecord,
) {
    use chrono::Datelike;
    let month = r.date.with_day(1).unwrap_or(r.date);
    encoders
        .entry(month)
        .or_insert_with(|| cloudbill_columnar::PartitionEncoder::new(month))
        .push(r);
}

impl<D: Dialect> SqlStore<D> {
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
        let mut tx = D::write_tx(&self.pool).await?;
        // One replace of an account at a time: the account row's lock (PostgreSQL; SQLite's
        // write transaction already excludes every other writer) makes a second replace
        // wait for the first to commit, then see its segments.
        sqlx::query::<D>("UPDATE service_accounts SET id = id WHERE id = $1")
            .arg(account.as_uuid())
            .run(&mut *tx)
            .await?;
        let existing: i64 = sqlx::query::<D>(
            "SELECT COALESCE(MAX(seq), 0) AS seq FROM cost_segments WHERE account_id = $1",
        )
        .arg(account.as_uuid())
        .one(&mut *tx)
        .await?
        .col("seq")?;
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
                    insert_segment(&mut tx, (domain, account), seq, blob).await?;
                    seq += 1;
                    rows += checked.rows as u64;
                }
            }
            if encoders
                .values()
                .map(cloudbill_columnar::PartitionEncoder::memory)
                .sum::<usize>()
                > sql::spill_bytes()
            {
                flush_segments(&mut tx, domain, account, &mut encoders, &mut seq).await?;
            }
        }
        let Some(scope) = span.scope(window) else {
            // No window and no record: nothing to replace.
            return Ok(WriteOutcome::default());
        };
        let before =
            retire_old_segments(&mut tx, (domain, account), &scope, existing, &mut encoders)
                .await?;
        flush_segments(&mut tx, domain, account, &mut encoders, &mut seq).await?;
        let changed: Vec<DataChange> = scope
            .months()
            .into_iter()
            .map(|m| DataChange::Month(account, m))
            .collect();
        bump::<D>(&mut *tx, domain, &changed).await?;
        let outcome = WriteOutcome {
            rows,
            changed_days: changed_days(&before, &after),
            window: scope.span(),
            days: scope.day_count(),
        };
        record_on_job::<D>(&mut tx, account, job, &outcome, learned).await?;
        tx.commit().await?;
        Ok(outcome)
    }
}

impl<D: Dialect> SqlStore<D> {
    /// Converts segments of the previous partition format to the current one, exactly (run
    /// when the store opens; a database without any does one query). Each batch of segments
    /// is converted in one transaction, so an interrupted conversion resumes where it stopped.
    pub(crate) async fn upgrade_segments(&self) -> Result<usize, StoreError> {
        let mut converted = 0;
        loop {
            let mut tx = D::write_tx(&self.pool).await?;
            let rows = sqlx::query::<D>(
                "SELECT account_id, month, seq, payload FROM cost_segments \
                 WHERE format < $1 LIMIT 256",
            )
            .arg(SEGMENT_FORMAT)
            .all(&mut *tx)
            .await?;
            if rows.is_empty() {
                return Ok(converted);
            }
            for row in &rows {
                let payload: Vec<u8> = row.col("payload")?;
                let upgraded =
                    cloudbill_columnar::legacy::upgrade(&payload).map_err(decode_failed)?;
                sqlx::query::<D>(
                    "UPDATE cost_segments SET payload = $1, format = $2 \
                     WHERE account_id = $3 AND month = $4 AND seq = $5",
                )
                .arg(upgraded.into_bytes())
                .arg(SEGMENT_FORMAT)
                .arg(row.col::<uuid::Uuid>("account_id")?)
                .arg(row.col::<NaiveDate>("month")?)
                .arg(row.col::<i64>("seq")?)
                .run(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            converted += rows.len();
        }
    }
}

#[async_trait]
impl<D: Dialect> crate::CostStore for SqlStore<D> {
    async fn replace_window(
        &self,
        domain: DomainId,
        account: AccountId,
        job: JobId,
        window: DateRange,
        records: &[CostRecord],
    ) -> Result<WriteOutcome, StoreError> {
        self.replace_inner(
            domain,
            account,
            job,
            Some(window),
            sql::Chunks::Slice(records),
        )
        .await
    }

    async fn replace_window_streamed(
        &self,
        domain: DomainId,
        account: AccountId,
        job: JobId,
        window: Option<DateRange>,
        chunks: &mut dyn crate::ChunkSource,
    ) -> Result<WriteOutcome, StoreError> {
        self.replace_inner(domain, account, job, window, sql::Chunks::Channel(chunks))
            .await
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
        let mut rows = sqlx::query::<D>(
            "SELECT account_id, payload FROM cost_segments \
             WHERE domain_id = $1 AND month >= $2 AND month < $3 ORDER BY month, account_id, seq",
        )
        .arg(domain.as_uuid())
        .arg(from)
        .arg(to)
        .stream(&self.pool);
        while let Some(row) = rows.try_next().await? {
            let account = AccountId::from_uuid(row.col("account_id")?);
            let payload: &[u8] = row.col("payload")?;
            if !visit.partition(account, payload) {
                break;
            }
        }
        Ok(())
    }

    async fn change_feed(&self) -> Result<Option<crate::ChangeFeed>, StoreError> {
        Ok(D::change_feed(&self.pool).await?)
    }

    async fn data_version(&self, domain: DomainId) -> Result<i64, StoreError> {
        Ok(
            sqlx::query::<D>("SELECT version FROM data_versions WHERE domain_id = $1")
                .arg(domain.as_uuid())
                .optional(&self.pool)
                .await?
                .map(|row| row.col::<i64>("version"))
                .transpose()?
                .unwrap_or(0),
        )
    }

    async fn changes_since(
        &self,
        domain: DomainId,
        version: i64,
    ) -> Result<Option<DataChanges>, StoreError> {
        // One statement (one snapshot): the version and the log rows up to it.
        let rows = sqlx::query::<D>(
            "SELECT v.version AS current, v.log_from AS log_from, c.version AS version, \
                    c.account_id AS account_id, c.month AS month \
             FROM data_versions v LEFT JOIN data_changes c \
               ON c.domain_id = v.domain_id AND c.version > $2 AND c.version <= v.version \
             WHERE v.domain_id = $1",
        )
        .arg(domain.as_uuid())
        .arg(version)
        .all(&self.pool)
        .await?;
        let Some(first) = rows.first() else {
            // Never bumped: nothing changed since version 0.
            return Ok((version == 0).then(|| DataChanges::new(0, Vec::new())));
        };
        let current: i64 = first.col("current")?;
        let log_from: i64 = first.col("log_from")?;
        if version > current || version + 1 < log_from {
            return Ok(None);
        }
        let mut changes = Vec::new();
        for row in &rows {
            if row.col::<Option<i64>>("version")?.is_none() {
                continue; // the LEFT JOIN's row when nothing changed
            }
            let account = row.col::<Option<uuid::Uuid>>("account_id")?;
            let month = row.col::<Option<NaiveDate>>("month")?;
            changes.push(match (account, month) {
                (Some(a), Some(m)) => DataChange::Month(AccountId::from_uuid(a), m),
                (Some(a), None) => DataChange::Account(AccountId::from_uuid(a)),
                _ => DataChange::Catalog,
            });
        }
        Ok(Some(DataChanges::new(current, changes)))
    }

    async fn for_each_slice<'v>(
        &self,
        domain: DomainId,
        slices: &[DataChange],
        visit: &'v mut crate::store::SinkRef<'v>,
    ) -> Result<(), StoreError> {
        use futures::TryStreamExt;
        let mut accounts: Vec<AccountId> = slices.iter().filter_map(DataChange::account).collect();
        accounts.sort_unstable();
        accounts.dedup();
        if accounts.is_empty() {
            return Ok(());
        }
        // One statement, so one snapshot: an account's months are all old or all new.
        let marks = (0..accounts.len())
            .map(|i| format!("${}", i + 2))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT account_id, month, payload FROM cost_segments \
             WHERE domain_id = $1 AND account_id IN ({marks}) ORDER BY month, account_id, seq"
        );
        let mut q = sqlx::query::<D>(&sql).arg(domain.as_uuid());
        for a in &accounts {
            q = q.arg(a.as_uuid());
        }
        let mut rows = q.stream(&self.pool);
        while let Some(row) = rows.try_next().await? {
            let account = AccountId::from_uuid(row.col("account_id")?);
            let month: NaiveDate = row.col("month")?;
            if !crate::store::in_slices(slices, account, month) {
                continue;
            }
            let payload: &[u8] = row.col("payload")?;
            if !visit.partition(account, payload) {
                break;
            }
        }
        Ok(())
    }

    async fn cost_records(
        &self,
        domain: DomainId,
        range: DateRange,
        account: Option<AccountId>,
    ) -> Result<Vec<CostRecord>, StoreError> {
        use chrono::Datelike;
        let rows = sqlx::query::<D>(
            "SELECT account_id, payload FROM cost_segments \
             WHERE domain_id = $1 AND month >= $2 AND month < $3 \
             AND ($4 IS NULL OR account_id = $4) ORDER BY month, account_id, seq",
        )
        .arg(domain.as_uuid())
        .arg(range.start().with_day(1).unwrap_or(range.start()))
        .arg(range.end())
        .arg(account.map(|a| a.as_uuid()))
        .all(&self.pool)
        .await?;
        let mut out = Vec::new();
        for row in &rows {
            let payload: Vec<u8> = row.col("payload")?;
            let part = cloudbill_columnar::Partition::decode(&payload).map_err(decode_failed)?;
            let owner = AccountId::from_uuid(row.col("account_id")?);
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
