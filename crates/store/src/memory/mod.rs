//! The in-memory store: the reference adapter for tests and embedding.
//!
//! The executable statement of the store contract, read side by side with the contract suite:
//! the state and its helpers here, one module per store trait (as `sql/` is).

use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};
use cloudbill_core::{
    AccountId, AccountState, ApiToken, Assignment, CostRecord, DateRange, Domain, DomainId, JobId,
    NaiveDate, Name, Project, ProjectGroup, ProjectId, ProviderEntry, ProviderKind, ProviderState,
    ServiceAccount, SyncJob, TokenId,
};
use cloudbill_core::{
    Budget, BudgetId, Channel, ChannelId, ClientSecret, Delivery, DeliveryId, DeliveryState, Event,
    EventId,
};

use crate::store::{check_record, outside, Scope};
use crate::{
    changed_days, daily_totals, DataChange, DataChanges, DeliveryOutcome, DueDelivery,
    FiredThreshold, StoreError, Transition, WriteOutcome,
};

#[derive(Default, Clone)]
struct State {
    domains: Vec<Domain>,
    providers: Vec<(DomainId, ProviderEntry)>,
    groups: Vec<ProjectGroup>,
    projects: Vec<Project>,
    accounts: Vec<ServiceAccount>,
    assignments: Vec<(AccountId, Assignment)>,
    records: Vec<CostRecord>,
    jobs: Vec<SyncJob>,
    leases: Vec<(AccountId, String, DateTime<Utc>)>,
    revisions: Vec<(AccountId, DateRange, String)>,
    tokens: Vec<(ApiToken, [u8; 32])>,
    channels: Vec<(Channel, Option<ClientSecret>)>,
    budgets: Vec<Budget>,
    fired: Vec<FiredThreshold>,
    events: Vec<Event>,
    deliveries: Vec<Delivery>,
    monitors: Vec<cloudbill_core::Monitor>,
    rates: Vec<(DomainId, cloudbill_core::FxRate)>,
    invoices: Vec<(DomainId, cloudbill_core::Invoice)>,
    closed: Vec<(DomainId, NaiveDate)>,
    period_log: Vec<(DomainId, cloudbill_core::PeriodChange)>,
    held: Vec<(DomainId, cloudbill_core::HeldDay)>,
    anomalies: Vec<cloudbill_core::StoredAnomaly>,
    allocations: Vec<cloudbill_core::AllocationRule>,
    version: i64,
    /// What each version changed (see `CostStore::changes_since`), the last
    /// `CHANGE_LOG_VERSIONS` versions; `log_from` is the oldest version still whole here.
    log: Vec<(i64, DomainId, DataChange)>,
    log_from: i64,
}

impl State {
    /// Moves the data version on, logging what changed.
    fn bump(&mut self, domain: DomainId, changes: impl IntoIterator<Item = DataChange>) {
        self.version += 1;
        let version = self.version;
        self.log
            .extend(changes.into_iter().map(|c| (version, domain, c)));
        let from = version - crate::CHANGE_LOG_VERSIONS + 1;
        if from > self.log_from {
            self.log.retain(|(v, _, _)| *v >= from);
            self.log_from = from;
        }
    }
}

/// A store that keeps everything in process memory; gone when dropped.
#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means another thread panicked mid-call; every call below
        // mutates a clone and swaps it in, so the state is still consistent.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[allow(clippy::needless_pass_by_value)] // Called with owned ids and kinds alike.
fn not_found(what: &'static str, key: impl ToString) -> StoreError {
    StoreError::NotFound {
        what,
        key: key.to_string(),
    }
}

impl State {
    fn account_mut(
        &mut self,
        domain: DomainId,
        id: AccountId,
    ) -> Result<&mut ServiceAccount, StoreError> {
        self.accounts
            .iter_mut()
            .find(|a| a.domain == domain && a.id == id)
            .ok_or_else(|| not_found("service account", id))
    }

    fn require_group(
        &self,
        domain: DomainId,
        id: cloudbill_core::GroupId,
    ) -> Result<(), StoreError> {
        if self.groups.iter().any(|g| g.domain == domain && g.id == id) {
            Ok(())
        } else {
            Err(not_found("project group", id))
        }
    }

    fn project_exists(&self, domain: DomainId, id: ProjectId) -> bool {
        self.projects
            .iter()
            .any(|p| p.domain == domain && p.id == id)
    }
}

impl MemoryStore {
    /// The one replace of the memory store; `set_job_window` records `window` on the job (a
    /// streamed replace that learned its window).
    fn replace(
        &self,
        domain: DomainId,
        account: AccountId,
        job: JobId,
        scope: &Scope,
        records: &[CostRecord],
        set_job_window: bool,
    ) -> Result<WriteOutcome, StoreError> {
        let mut guard = self.lock();
        // Work on a copy and swap it in at the end: all or nothing, like a transaction.
        let mut state = guard.clone();
        state.account_mut(domain, account)?;
        let before = daily_totals(
            state
                .records
                .iter()
                .filter(|r| r.service_account == account && scope.contains(r.date)),
        )?;
        state
            .records
            .retain(|r| r.service_account != account || !scope.contains(r.date));
        for record in records {
            check_record(domain, account, None, record)?;
            if !scope.contains(record.date) {
                return Err(outside(record.date, scope));
            }
            state.records.push(record.clone());
        }
        let after = daily_totals(records)?;
        let window = scope.span();
        let outcome = WriteOutcome {
            rows: records.len() as u64,
            changed_days: changed_days(&before, &after),
            window,
            days: scope.day_count(),
        };
        let stored_job = state
            .jobs
            .iter_mut()
            .find(|j| j.id == job && j.account == account)
            .ok_or_else(|| not_found("job", job))?;
        stored_job.rows += outcome.rows;
        if let Some(window) = window.filter(|_| set_job_window) {
            stored_job.window = window;
        }
        stored_job
            .changed_days
            .extend(outcome.changed_days.iter().copied());
        state.bump(
            domain,
            scope
                .months()
                .into_iter()
                .map(|m| DataChange::Month(account, m)),
        );
        *guard = state;
        Ok(outcome)
    }
}

mod allocations;
mod anomalies;
mod catalog;
mod costs;
mod jobs;
mod money;
mod notify;
