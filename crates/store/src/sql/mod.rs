//! The SQL adapters' shared implementation of the store traits.
//!
//! SQLite and PostgreSQL run the same statements (`$n` placeholders, `ON CONFLICT`). Cost
//! records live in columnar segments (see cloudbill-core's partition codec). [`SqlStore`] is
//! generic over the database; what differs between the two is the [`dialect::Dialect`] trait.
//! One module per concern implements its store trait once for both: `catalog`, `costs`,
//! `jobs`, `tokens`, `keys`, with the row mappers in `rows`.

pub(crate) mod allocations;
pub(crate) mod anomalies;
pub(crate) mod catalog;
pub(crate) mod costs;
pub(crate) mod dialect;
pub(crate) mod fx;
pub(crate) mod invoices;
pub(crate) mod jobs;
pub(crate) mod keys;
pub(crate) mod notify;
pub(crate) mod periods;
pub(crate) mod rows;
pub(crate) mod tokens;

use std::collections::BTreeMap;

use cloudbill_core::{
    AccountId, Assignment, ChangedDay, CostRecord, Currency, DateRange, JobKind, JobState,
    NaiveDate, ProjectId,
};

use crate::{Cipher, StoreError};

/// A store in an SQL database `D`: [`crate::SqliteStore`] or [`crate::PgStore`].
pub struct SqlStore<D: sqlx::Database> {
    pub(crate) pool: sqlx::Pool<D>,
    pub(crate) cipher: Cipher,
    /// The database file (SQLite).
    pub(crate) path: Option<std::path::PathBuf>,
}

impl<D: sqlx::Database> Clone for SqlStore<D> {
    fn clone(&self) -> Self {
        Self {
            pool: self.pool.clone(),
            cipher: self.cipher.clone(),
            path: self.path.clone(),
        }
    }
}

impl<D: sqlx::Database> std::fmt::Debug for SqlStore<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlStore")
            .field("database", &D::NAME)
            .field("pool", &self.pool)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl<D: sqlx::Database> SqlStore<D> {
    /// Closes the pool (SQLite checkpoints the WAL into the main file).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

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
    Partition(cloudbill_columnar::EncodedPartition),
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
