//! The storage contract every adapter implements.
//!
//! One file on purpose: the trait family (catalog, costs, jobs, tokens, notifications,
//! anomalies, rates, invoices, periods) is read as one contract beside `memory/`, its
//! executable statement, and the contract suite; each trait is declarations and docs only.
//! The rules every adapter applies the same way (record checks, window scopes, daily totals)
//! are in `rules.rs`.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cloudbill_core::{
    AccountId, AccountState, ApiToken, Assignment, Budget, BudgetId, ChangedDay, Channel,
    ChannelId, ClientSecret, CostRecord, Currency, DateRange, Delivery, DeliveryId, Domain,
    DomainId, Event, EventId, JobId, NaiveDate, Name, Project, ProjectGroup, ProjectId,
    ProviderEntry, ProviderKind, ProviderState, ServiceAccount, SyncJob, TokenId,
};
use cloudbill_core::{
    AllocationRule, AnomalyState, FxRate, HeldDay, Invoice, Monitor, MonitorId, PeriodChange,
    StoredAnomaly,
};

use crate::StoreError;

/// One message of a streamed window replace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chunk {
    /// More records.
    Records(Vec<CostRecord>),
    /// Records already encoded as one partition (cloudbill-columnar's codec) of the account
    /// being written: a bill import encodes straight from the file's cells. The store checks
    /// it and stores it as a segment.
    Partition(cloudbill_columnar::EncodedPartition),
    /// Every record was sent: commit.
    End,
}

/// Where a streamed replace takes its chunks from; `None` means the producer went away (the
/// replace then rolls back). A tokio channel's receiver is one.
#[async_trait]
pub trait ChunkSource: Send {
    /// The next chunk.
    async fn next_chunk(&mut self) -> Option<Chunk>;
}

#[async_trait]
impl ChunkSource for tokio::sync::mpsc::Receiver<Chunk> {
    async fn next_chunk(&mut self) -> Option<Chunk> {
        self.recv().await
    }
}

/// Checks a history handed to `set_assignments`: not empty, the first step undated, dates
/// strictly increasing.
pub(crate) fn check_history(history: &[Assignment]) -> Result<(), StoreError> {
    let invalid = |why: &str| StoreError::Conflict(format!("invalid assignment history: {why}"));
    match history.first() {
        None => return Err(invalid("empty")),
        Some(first) if first.from.is_some() => return Err(invalid("the first step has a date")),
        Some(_) => {}
    }
    let dates: Vec<NaiveDate> = history.iter().filter_map(|a| a.from).collect();
    if dates.len() + 1 != history.len() || dates.windows(2).any(|w| w[0] >= w[1]) {
        return Err(invalid(
            "dates must be set after the first step and increase",
        ));
    }
    Ok(())
}

/// The error of a stream that closed before [`Chunk::End`].
pub(crate) fn ended_early() -> StoreError {
    StoreError::RecordRejected(
        "the record stream stopped before its end; nothing was written".into(),
    )
}

/// What one [`CostStore::replace_window`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteOutcome {
    /// Records written.
    pub rows: u64,
    /// Days whose per-currency totals differ from before.
    pub changed_days: Vec<ChangedDay>,
    /// The window replaced: the one given, or, without one, first to last day of the records
    /// (of which only the days holding records were replaced, see `days`); `None` when no
    /// window was given and no record came (nothing changed).
    pub window: Option<DateRange>,
    /// How many days were replaced: every day of a window, or the days the records hold.
    pub days: u64,
}

/// Receives the partitions of [`CostStore::for_each_partition`] one at a time; `false` stops the
/// walk. Any `FnMut(AccountId, &[u8]) -> bool + Send` closure is one.
pub trait PartitionSink: Send {
    /// One partition of `account`.
    fn partition(&mut self, account: AccountId, blob: &[u8]) -> bool;
}

impl<F: FnMut(AccountId, &[u8]) -> bool + Send> PartitionSink for F {
    fn partition(&mut self, account: AccountId, blob: &[u8]) -> bool {
        self(account, blob)
    }
}

/// A [`PartitionSink`] borrowed for `'v`.
pub type SinkRef<'v> = dyn PartitionSink + 'v;

/// What one data version changed ([`CostStore::changes_since`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DataChange {
    /// The catalog: accounts, projects, groups or assignments (names, structure).
    Catalog,
    /// Every month of an account (deleted).
    Account(AccountId),
    /// One month (first day) of an account's costs, rewritten.
    Month(AccountId, NaiveDate),
}

impl DataChange {
    /// The account whose costs changed, if any.
    pub fn account(&self) -> Option<AccountId> {
        match self {
            DataChange::Catalog => None,
            DataChange::Account(a) | DataChange::Month(a, _) => Some(*a),
        }
    }
}

/// The changes after a data version, up to the current one ([`CostStore::changes_since`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataChanges {
    /// The current data version.
    pub version: i64,
    /// What changed, each once, in order (the catalog first, then by account and month).
    pub changes: Vec<DataChange>,
}

impl DataChanges {
    /// `changes` at `version`, deduplicated and sorted.
    pub fn new(version: i64, mut changes: Vec<DataChange>) -> Self {
        changes.sort_unstable();
        changes.dedup();
        Self { version, changes }
    }

    /// Whether the catalog changed.
    pub fn catalog(&self) -> bool {
        self.changes.contains(&DataChange::Catalog)
    }
}

/// How many data versions the change log keeps: an engine more versions behind than this
/// reloads whole.
pub const CHANGE_LOG_VERSIONS: i64 = 1024;

/// Whether `(account, month)` is one of `slices`' cost changes.
pub(crate) fn in_slices(slices: &[DataChange], account: AccountId, month: NaiveDate) -> bool {
    slices.iter().any(|c| match c {
        DataChange::Catalog => false,
        DataChange::Account(a) => *a == account,
        DataChange::Month(a, m) => *a == account && *m == month,
    })
}

/// A stream of domain ids whose data version moved ([`CostStore::change_feed`]).
pub type ChangeFeed = futures::stream::BoxStream<'static, DomainId>;

/// The catalog: domains and their providers, project groups, projects, billing accounts
/// (credentials sealed) and their project history.
///
/// Every call is atomic: it either happens whole or returns an error and changes nothing.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait CatalogStore: Send + Sync {
    /// Returns the domain called `name`, creating it (billing off, every provider enabled) if
    /// it does not exist yet.
    async fn ensure_domain(&self, name: &Name) -> Result<Domain, StoreError>;

    /// Turns billing on or off for a domain.
    async fn set_billing_enabled(
        &self,
        domain: DomainId,
        enabled: bool,
    ) -> Result<Domain, StoreError>;

    /// Every domain, by name (the system admin's list).
    async fn domains(&self) -> Result<Vec<Domain>, StoreError>;

    /// One domain by id (`NotFound` when there is none).
    async fn domain(&self, id: DomainId) -> Result<Domain, StoreError>;

    /// Disables a domain as of `at`, or enables it again with `None`.
    async fn set_domain_disabled(
        &self,
        domain: DomainId,
        at: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<Domain, StoreError>;

    /// The provider registry of a domain.
    async fn providers(&self, domain: DomainId) -> Result<Vec<ProviderEntry>, StoreError>;

    /// Enables or disables a provider.
    async fn set_provider_state(
        &self,
        domain: DomainId,
        kind: ProviderKind,
        state: ProviderState,
    ) -> Result<ProviderEntry, StoreError>;

    /// Stores a new project group; its name must be unique in the domain and its parent exist.
    async fn create_group(&self, group: &ProjectGroup) -> Result<(), StoreError>;

    /// Every project group of a domain, by name.
    async fn groups(&self, domain: DomainId) -> Result<Vec<ProjectGroup>, StoreError>;

    /// Stores a new project; its name must be unique in the domain and its group exist.
    async fn create_project(&self, project: &Project) -> Result<(), StoreError>;

    /// Every project of a domain, by name.
    async fn projects(&self, domain: DomainId) -> Result<Vec<Project>, StoreError>;

    /// Deletes a project that no account has ever been assigned to.
    async fn delete_project(&self, domain: DomainId, id: ProjectId) -> Result<(), StoreError>;

    /// Stores a new account together with its first assignment (to `account.project`, for all
    /// dates). Credentials are sealed before they are written.
    async fn create_account(&self, account: &ServiceAccount) -> Result<(), StoreError>;

    /// Every account of a domain, by name, credentials opened.
    async fn accounts(&self, domain: DomainId) -> Result<Vec<ServiceAccount>, StoreError>;

    /// One account.
    async fn account(&self, domain: DomainId, id: AccountId) -> Result<ServiceAccount, StoreError>;

    /// Enables or disables an account.
    async fn set_account_state(
        &self,
        domain: DomainId,
        id: AccountId,
        state: AccountState,
    ) -> Result<(), StoreError>;

    /// Replaces an account's settings (sealed before they are written, bound to its row).
    async fn set_account_settings(
        &self,
        domain: DomainId,
        id: AccountId,
        settings: &cloudbill_core::Settings,
    ) -> Result<(), StoreError>;

    /// Deletes an account with its assignments, cost records and jobs.
    async fn delete_account(&self, domain: DomainId, id: AccountId) -> Result<(), StoreError>;

    /// Replaces an account's assignment history with `history` (oldest first, the first step
    /// without a date, dates increasing, every project of the domain), if it still is
    /// `expected` — a concurrent move makes this a `Conflict` instead of a lost update. The
    /// rules of a move live in `ServiceAccount::moved`; the store only stores.
    async fn set_assignments(
        &self,
        domain: DomainId,
        id: AccountId,
        expected: &[Assignment],
        history: &[Assignment],
    ) -> Result<(), StoreError>;

    /// An account's assignment history, oldest first; the first entry has `from = None`.
    async fn assignments(
        &self,
        domain: DomainId,
        id: AccountId,
    ) -> Result<Vec<Assignment>, StoreError>;

    /// The assignment history of every account of a domain, oldest first.
    async fn assignment_histories(
        &self,
        domain: DomainId,
    ) -> Result<BTreeMap<AccountId, Vec<Assignment>>, StoreError>;
}

/// Cost records, kept as columnar segments per (account, month): window replaces, the
/// streams the engine loads, the data version.
///
/// Every call is atomic: it either happens whole or returns an error and changes nothing.
// No automock: mockall cannot mock `&mut dyn ChunkSource`; cost tests use the memory store.
#[async_trait]
pub trait CostStore: Send + Sync {
    /// In one transaction: deletes `account`'s records in `window`, inserts `records`, and adds
    /// the rows written and the changed days to job `job` (which must exist). Every record must
    /// belong to `domain` and `account` and lie in `window`; otherwise nothing is written.
    async fn replace_window(
        &self,
        domain: DomainId,
        account: AccountId,
        job: JobId,
        window: DateRange,
        records: &[CostRecord],
    ) -> Result<WriteOutcome, StoreError>;

    /// [`CostStore::replace_window`] with the records arriving in chunks over `chunks`, so a bill
    /// of any size is written with bounded memory. With `window` `None` exactly the days the
    /// records hold are replaced (known only at the end: a file import); days between them
    /// keep their records. Same
    /// transaction, same rules: a bad record, or a channel that closes before [`Chunk::End`]
    /// (the producer failed), leaves the previous data.
    async fn replace_window_streamed(
        &self,
        domain: DomainId,
        account: AccountId,
        job: JobId,
        window: Option<DateRange>,
        chunks: &mut dyn ChunkSource,
    ) -> Result<WriteOutcome, StoreError>;

    /// The columnar partitions (account, encoded month) of every month overlapping `range`, or
    /// of all months when `range` is `None`, in month order.
    async fn cost_partitions(
        &self,
        domain: DomainId,
        range: Option<DateRange>,
    ) -> Result<Vec<(AccountId, Vec<u8>)>, StoreError>;

    /// Calls `visit` with every columnar partition of the domain whose month overlaps `range`
    /// (all of them with `None`), in month order, one at a time — a report loads millions of
    /// records holding one partition's bytes at a time. `visit` returns `false` to stop.
    async fn for_each_partition<'v>(
        &self,
        domain: DomainId,
        range: Option<DateRange>,
        visit: &'v mut SinkRef<'v>,
    ) -> Result<(), StoreError>;

    /// A number that changes whenever cost data, accounts, assignments or projects change, so
    /// a cached engine knows when to reload (across processes sharing the database).
    async fn data_version(&self, domain: DomainId) -> Result<i64, StoreError>;

    /// What changed after data version `version`, up to the current version (read in one
    /// snapshot): `None` when the change log no longer reaches back that far (it keeps the
    /// last [`CHANGE_LOG_VERSIONS`] versions) or `version` is not one this store had, and the
    /// reader must reload whole.
    async fn changes_since(
        &self,
        domain: DomainId,
        version: i64,
    ) -> Result<Option<DataChanges>, StoreError>;

    /// Calls `visit` with the columnar partitions of the cost slices among `slices` (an
    /// account's month, or every month of an account), in month order, read in one snapshot:
    /// what a warm engine reloads after [`CostStore::changes_since`].
    async fn for_each_slice<'v>(
        &self,
        domain: DomainId,
        slices: &[DataChange],
        visit: &'v mut SinkRef<'v>,
    ) -> Result<(), StoreError>;

    /// The domains whose data version moves, as any process commits: PostgreSQL's
    /// `LISTEN`/`NOTIFY` (delivered within milliseconds of the commit). `None` where the
    /// backend has no such feed (SQLite, memory): poll [`CostStore::data_version`] instead.
    async fn change_feed(&self) -> Result<Option<ChangeFeed>, StoreError>;

    /// Cost records of a domain in `range`, optionally of one account.
    async fn cost_records(
        &self,
        domain: DomainId,
        range: DateRange,
        account: Option<AccountId>,
    ) -> Result<Vec<CostRecord>, StoreError>;
}

/// Sync and import jobs, and the per-account leases that keep one writer per account
/// across processes.
///
/// Every call is atomic: it either happens whole or returns an error and changes nothing.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait JobStore: Send + Sync {
    /// Creates or updates a job.
    async fn save_job(&self, job: &SyncJob) -> Result<(), StoreError>;

    /// Jobs of a domain (optionally of one account), newest first, at most `limit`.
    async fn jobs(
        &self,
        domain: DomainId,
        account: Option<AccountId>,
        limit: u32,
    ) -> Result<Vec<SyncJob>, StoreError>;

    /// One job of the domain by id (`NotFound` when it is not there).
    async fn job(&self, domain: DomainId, id: JobId) -> Result<SyncJob, StoreError>;

    /// Takes the sync lease of `account` for `holder` until `until`, if it is free, expired or
    /// already held by `holder`. Returns whether the lease is now held. Works across processes
    /// sharing the database.
    async fn try_lease(
        &self,
        account: AccountId,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Releases the lease of `account` if `holder` holds it.
    async fn release_lease(&self, account: AccountId, holder: &str) -> Result<(), StoreError>;

    /// The source revision kept for `account`'s `window` (exactly that window) by its last
    /// successful write, if any.
    async fn source_revision(
        &self,
        account: AccountId,
        window: DateRange,
    ) -> Result<Option<String>, StoreError>;

    /// Keeps `revision` for `account`'s `window`, replacing any; `None` forgets it (the
    /// window is read again next time).
    async fn set_source_revision(
        &self,
        account: AccountId,
        window: DateRange,
        revision: Option<String>,
    ) -> Result<(), StoreError>;
}

/// API tokens, stored under the SHA-256 of their secret.
///
/// Every call is atomic: it either happens whole or returns an error and changes nothing.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait TokenStore: Send + Sync {
    /// Stores a new API token under the SHA-256 of its secret.
    async fn create_token(&self, token: &ApiToken, hash: &[u8; 32]) -> Result<(), StoreError>;

    /// Every token of a domain, newest first (revoked ones included).
    async fn tokens(&self, domain: DomainId) -> Result<Vec<ApiToken>, StoreError>;

    /// Revokes a token; revoking twice is not an error.
    async fn revoke_token(&self, domain: DomainId, id: TokenId) -> Result<(), StoreError>;

    /// The token whose secret hashes to `hash`, if any (revoked ones included).
    async fn token_by_hash(&self, hash: &[u8; 32]) -> Result<Option<ApiToken>, StoreError>;
}

/// A budget threshold to fire or clear, with the event that says so. Applied only if the
/// threshold's stored state still differs, so across processes each crossing is recorded
/// (and its event queued) once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// The budget.
    pub budget: BudgetId,
    /// The notification's index in the budget.
    pub notification: u32,
    /// The first day of the period.
    pub period_start: NaiveDate,
    /// `true`: crossed (fired); `false`: back under (cleared).
    pub fire: bool,
    /// The event to keep and deliver.
    pub event: Event,
    /// Where to deliver it (one outbox row each).
    pub channels: Vec<ChannelId>,
}

/// A threshold that fired for a period and has not been cleared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FiredThreshold {
    /// The budget.
    pub budget: BudgetId,
    /// The notification's index in the budget.
    pub notification: u32,
    /// The first day of the period.
    pub period_start: NaiveDate,
    /// When.
    pub fired_at: DateTime<Utc>,
}

/// What became of one delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// Accepted by the receiver.
    Sent,
    /// Failed; try again at `next`.
    Retry {
        /// When to try again.
        next: DateTime<Utc>,
        /// Why it failed.
        error: String,
    },
    /// Failed for good (given up).
    Failed {
        /// Why the last attempt failed.
        error: String,
    },
}

/// A delivery claimed for an attempt, with its event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueDelivery {
    /// The outbox row (its `attempts` before this one).
    pub delivery: Delivery,
    /// The event to send.
    pub event: Event,
}

/// Budgets, notification channels (secrets sealed) and the notification outbox: events and
/// their deliveries, written in the same transaction as the state change that caused them.
///
/// Every call is atomic: it either happens whole or returns an error and changes nothing.
#[async_trait]
pub trait NotifyStore: Send + Sync {
    /// Stores a new channel (name unique in the domain), its secret sealed.
    async fn create_channel(
        &self,
        channel: &Channel,
        secret: Option<&ClientSecret>,
    ) -> Result<(), StoreError>;

    /// Every channel of a domain, by name.
    async fn channels(&self, domain: DomainId) -> Result<Vec<Channel>, StoreError>;

    /// A channel's secret, opened (for delivery only).
    async fn channel_secret(
        &self,
        domain: DomainId,
        id: ChannelId,
    ) -> Result<Option<ClientSecret>, StoreError>;

    /// Deletes a channel and its pending deliveries.
    async fn delete_channel(&self, domain: DomainId, id: ChannelId) -> Result<(), StoreError>;

    /// Stores a new budget (name unique in the domain).
    async fn create_budget(&self, budget: &Budget) -> Result<(), StoreError>;

    /// Every budget of a domain, by name.
    async fn budgets(&self, domain: DomainId) -> Result<Vec<Budget>, StoreError>;

    /// Replaces a budget's definition (same id; the name stays unique) and forgets its
    /// threshold states, so the next evaluation judges the new thresholds afresh.
    async fn update_budget(&self, budget: &Budget) -> Result<(), StoreError>;

    /// Deletes a budget and its threshold states (its events are kept).
    async fn delete_budget(&self, domain: DomainId, id: BudgetId) -> Result<(), StoreError>;

    /// The thresholds fired and not cleared, of every budget of a domain.
    async fn fired_thresholds(&self, domain: DomainId) -> Result<Vec<FiredThreshold>, StoreError>;

    /// In one transaction: each transition whose threshold state still differs is applied,
    /// and its event stored with one pending delivery per channel (due at once). Returns the
    /// events stored.
    async fn record_transitions(
        &self,
        domain: DomainId,
        transitions: &[Transition],
    ) -> Result<Vec<EventId>, StoreError>;

    /// Events of a domain, newest first, optionally about one subject, at most `limit`.
    async fn events(
        &self,
        domain: DomainId,
        subject: Option<uuid::Uuid>,
        limit: u32,
    ) -> Result<Vec<Event>, StoreError>;

    /// Claims up to `limit` pending deliveries of the domain due at `now`, oldest due first:
    /// each is moved to `claim_until` so no other process takes it meanwhile.
    async fn claim_deliveries(
        &self,
        domain: DomainId,
        now: DateTime<Utc>,
        claim_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<DueDelivery>, StoreError>;

    /// Records an attempt of a claimed delivery: `attempts` made so far and what came of the
    /// last.
    async fn finish_delivery(
        &self,
        domain: DomainId,
        id: DeliveryId,
        attempts: u32,
        outcome: &DeliveryOutcome,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Deliveries of a domain, newest first, at most `limit`.
    async fn deliveries(&self, domain: DomainId, limit: u32) -> Result<Vec<Delivery>, StoreError>;

    /// How many deliveries of the domain are pending, sent and failed.
    async fn delivery_counts(&self, domain: DomainId) -> Result<[u64; 3], StoreError>;
}

/// One write of [`AnomalyStore::apply_anomalies`]: the anomaly's new version, the version it
/// replaces (`None`: a new anomaly), and the event to queue with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnomalyChange {
    /// The anomaly as it is to be stored (its `version` the new one).
    pub anomaly: StoredAnomaly,
    /// The stored version this replaces; `None` inserts (skipped if it exists).
    pub expected_version: Option<i64>,
    /// An event and its channels, queued only if the write applies.
    pub event: Option<(Event, Vec<ChannelId>)>,
}

/// Anomaly monitors and the anomalies they keep.
///
/// Every call is atomic: it either happens whole or returns an error and changes nothing.
#[async_trait]
pub trait AnomalyStore: Send + Sync {
    /// Stores a new monitor (name unique in the domain).
    async fn create_monitor(&self, monitor: &Monitor) -> Result<(), StoreError>;

    /// Every monitor of a domain, by name.
    async fn monitors(&self, domain: DomainId) -> Result<Vec<Monitor>, StoreError>;

    /// Deletes a monitor and its anomalies (their events are kept).
    async fn delete_monitor(&self, domain: DomainId, id: MonitorId) -> Result<(), StoreError>;

    /// The anomalies of a domain (of one monitor), by start day.
    async fn stored_anomalies(
        &self,
        domain: DomainId,
        monitor: Option<MonitorId>,
    ) -> Result<Vec<StoredAnomaly>, StoreError>;

    /// In one transaction: each change whose expected version still holds is written, with
    /// its event and one pending delivery per channel. Returns the events stored.
    async fn apply_anomalies(
        &self,
        domain: DomainId,
        changes: &[AnomalyChange],
    ) -> Result<Vec<EventId>, StoreError>;

    /// Sets the state of the anomalies with id `id` kept by one of `monitors` (an id repeats
    /// across monitors: each keeps its own state); returns how many there were.
    async fn set_anomaly_state(
        &self,
        domain: DomainId,
        monitors: &[MonitorId],
        id: &str,
        state: AnomalyState,
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError>;
}

/// Exchange rates.
///
/// Every call is atomic: it either happens whole or returns an error and changes nothing.
#[async_trait]
pub trait FxStore: Send + Sync {
    /// Stores `rates` in one transaction. A rate already stored for the same (date, base,
    /// quote, source) is kept if equal; a different one is a `Conflict` naming it, and nothing
    /// is written. Returns how many rates were new.
    async fn put_rates(&self, domain: DomainId, rates: &[FxRate]) -> Result<usize, StoreError>;

    /// The rates of a domain, by base, quote, source and date; of one `source` only when given.
    async fn rates(
        &self,
        domain: DomainId,
        source: Option<&str>,
    ) -> Result<Vec<FxRate>, StoreError>;
}

/// Provider invoices.
///
/// Every call is atomic: it either happens whole or returns an error and changes nothing.
#[async_trait]
pub trait InvoiceStore: Send + Sync {
    /// Stores `invoices` in one transaction. One invoice per (account, month, currency): the
    /// same one again is kept, a different one is a `Conflict` and nothing is written. Returns
    /// how many were new.
    async fn put_invoices(
        &self,
        domain: DomainId,
        invoices: &[Invoice],
    ) -> Result<usize, StoreError>;

    /// The invoices of a domain (of one month), by month, account and currency.
    async fn invoices(
        &self,
        domain: DomainId,
        period: Option<NaiveDate>,
    ) -> Result<Vec<Invoice>, StoreError>;

    /// Deletes the invoice of `account` for the month starting `period` in `currency`;
    /// returns it (`None`: there was none, nothing changed).
    async fn delete_invoice(
        &self,
        domain: DomainId,
        account: AccountId,
        period: NaiveDate,
        currency: Currency,
    ) -> Result<Option<Invoice>, StoreError>;
}

/// Closed billing months, their audit log, and the restatements held off them.
///
/// Every call is atomic: it either happens whole or returns an error and changes nothing.
#[async_trait]
pub trait PeriodStore: Send + Sync {
    /// Closes a month (`Conflict` if it is closed) and logs it.
    async fn close_period(
        &self,
        domain: DomainId,
        month: NaiveDate,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Reopens a closed month (`NotFound` if it is not) and logs it with `reason`.
    async fn reopen_period(
        &self,
        domain: DomainId,
        month: NaiveDate,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// The closed months of a domain, ascending.
    async fn closed_periods(&self, domain: DomainId) -> Result<Vec<NaiveDate>, StoreError>;

    /// The closes and reopens of a month, oldest first.
    async fn period_log(
        &self,
        domain: DomainId,
        month: NaiveDate,
    ) -> Result<Vec<PeriodChange>, StoreError>;

    /// Records restated days a job held off closed months.
    async fn put_held(&self, domain: DomainId, held: &[HeldDay]) -> Result<(), StoreError>;

    /// The held days of `range`, by day.
    async fn held(&self, domain: DomainId, range: DateRange) -> Result<Vec<HeldDay>, StoreError>;
}

/// Shared-cost allocation rules, kept as their versions (every change adds one: the log of
/// who changed what, when).
///
/// Every call is atomic: it either happens whole or returns an error and changes nothing.
#[async_trait]
pub trait AllocationStore: Send + Sync {
    /// Adds a version of a rule. Version 1 creates it (`Conflict` if the id exists); version
    /// n > 1 must follow the latest stored version (`Conflict` if another change came first;
    /// `NotFound` if the rule does not exist). A version that is not a deletion must not
    /// take the name of another rule that is not deleted (`Conflict`).
    async fn add_allocation_version(&self, rule: &AllocationRule) -> Result<(), StoreError>;

    /// Every version of every rule of a domain, by rule id then version.
    async fn allocation_versions(
        &self,
        domain: DomainId,
    ) -> Result<Vec<AllocationRule>, StoreError>;
}

/// Persistent state of cloudbill: every concern's store. A use case takes the narrow trait
/// it needs; the adapters (memory, SQLite, PostgreSQL) implement all of them, and a feature
/// that needs new state adds a trait of its own beside these.
pub trait Store:
    CatalogStore
    + CostStore
    + JobStore
    + TokenStore
    + NotifyStore
    + AnomalyStore
    + FxStore
    + InvoiceStore
    + PeriodStore
    + AllocationStore
{
}

impl<T> Store for T where
    T: CatalogStore
        + CostStore
        + JobStore
        + TokenStore
        + NotifyStore
        + AnomalyStore
        + FxStore
        + InvoiceStore
        + PeriodStore
        + AllocationStore
        + ?Sized
{
}

pub use crate::rules::{changed_days, daily_totals};
#[allow(unused_imports)] // Which helpers an adapter uses depends on the features built.
pub(crate) use crate::rules::{
    check_partition, check_record, epoch_ms, month_range, months, outside, refused, Scope, SeenDays,
};
