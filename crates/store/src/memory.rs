//! The in-memory store: the reference adapter for tests and embedding.
//!
//! One file on purpose: it is the executable statement of the store contract, read side by
//! side with the contract suite, each trait's impl in the order of the trait.

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

#[async_trait]
impl crate::CatalogStore for MemoryStore {
    async fn ensure_domain(&self, name: &Name) -> Result<Domain, StoreError> {
        let mut state = self.lock();
        if let Some(d) = state.domains.iter().find(|d| &d.name == name) {
            return Ok(d.clone());
        }
        let domain = Domain {
            id: DomainId::new(),
            name: name.clone(),
            billing_enabled: false,
            created_at: Utc::now(),
            disabled_at: None,
        };
        state.domains.push(domain.clone());
        for kind in ProviderKind::ALL {
            state.providers.push((
                domain.id,
                ProviderEntry {
                    kind,
                    state: ProviderState::Enabled,
                },
            ));
        }
        Ok(domain)
    }

    async fn set_billing_enabled(
        &self,
        domain: DomainId,
        enabled: bool,
    ) -> Result<Domain, StoreError> {
        let mut state = self.lock();
        let d = state
            .domains
            .iter_mut()
            .find(|d| d.id == domain)
            .ok_or_else(|| not_found("domain", domain))?;
        d.billing_enabled = enabled;
        Ok(d.clone())
    }

    async fn domains(&self) -> Result<Vec<Domain>, StoreError> {
        let mut out = self.lock().domains.clone();
        out.sort_by(|a, b| a.name.as_str().cmp(b.name.as_str()));
        Ok(out)
    }

    async fn domain(&self, id: DomainId) -> Result<Domain, StoreError> {
        self.lock()
            .domains
            .iter()
            .find(|d| d.id == id)
            .cloned()
            .ok_or_else(|| not_found("domain", id))
    }

    async fn set_domain_disabled(
        &self,
        domain: DomainId,
        at: Option<chrono::DateTime<Utc>>,
    ) -> Result<Domain, StoreError> {
        let mut state = self.lock();
        let d = state
            .domains
            .iter_mut()
            .find(|d| d.id == domain)
            .ok_or_else(|| not_found("domain", domain))?;
        d.disabled_at = at.map(|t| t.trunc_subsecs(6));
        Ok(d.clone())
    }

    async fn providers(&self, domain: DomainId) -> Result<Vec<ProviderEntry>, StoreError> {
        let state = self.lock();
        Ok(state
            .providers
            .iter()
            .filter(|(d, _)| *d == domain)
            .map(|(_, p)| *p)
            .collect())
    }

    async fn set_provider_state(
        &self,
        domain: DomainId,
        kind: ProviderKind,
        new_state: ProviderState,
    ) -> Result<ProviderEntry, StoreError> {
        let mut state = self.lock();
        let entry = state
            .providers
            .iter_mut()
            .find(|(d, p)| *d == domain && p.kind == kind)
            .ok_or_else(|| not_found("provider", kind))?;
        entry.1.state = new_state;
        Ok(entry.1)
    }

    async fn create_group(&self, group: &ProjectGroup) -> Result<(), StoreError> {
        let mut state = self.lock();
        if state
            .groups
            .iter()
            .any(|g| g.domain == group.domain && g.name == group.name)
        {
            return Err(StoreError::exists("project group", &group.name));
        }
        if let Some(parent) = group.parent {
            state.require_group(group.domain, parent)?;
        }
        state.groups.push(group.clone());
        state.bump(group.domain, [DataChange::Catalog]);
        Ok(())
    }

    async fn groups(&self, domain: DomainId) -> Result<Vec<ProjectGroup>, StoreError> {
        let state = self.lock();
        let mut out: Vec<_> = state
            .groups
            .iter()
            .filter(|g| g.domain == domain)
            .cloned()
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    async fn create_project(&self, project: &Project) -> Result<(), StoreError> {
        let mut state = self.lock();
        if state
            .projects
            .iter()
            .any(|p| p.domain == project.domain && p.name == project.name)
        {
            return Err(StoreError::exists("project", &project.name));
        }
        if let Some(group) = project.group {
            state.require_group(project.domain, group)?;
        }
        state.projects.push(project.clone());
        state.bump(project.domain, [DataChange::Catalog]);
        Ok(())
    }

    async fn projects(&self, domain: DomainId) -> Result<Vec<Project>, StoreError> {
        let state = self.lock();
        let mut out: Vec<_> = state
            .projects
            .iter()
            .filter(|p| p.domain == domain)
            .cloned()
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    async fn delete_project(&self, domain: DomainId, id: ProjectId) -> Result<(), StoreError> {
        let mut state = self.lock();
        if !state.project_exists(domain, id) {
            return Err(not_found("project", id));
        }
        if state.assignments.iter().any(|(_, a)| a.project == id) {
            return Err(StoreError::project_in_use());
        }
        state.projects.retain(|p| p.id != id);
        state.bump(domain, [DataChange::Catalog]);
        Ok(())
    }

    async fn create_account(&self, account: &ServiceAccount) -> Result<(), StoreError> {
        let mut state = self.lock();
        if state
            .accounts
            .iter()
            .any(|a| a.domain == account.domain && a.name == account.name)
        {
            return Err(StoreError::exists("service account", &account.name));
        }
        if !state.project_exists(account.domain, account.project) {
            return Err(not_found("project", account.project));
        }
        state.accounts.push(account.clone());
        state.assignments.push((
            account.id,
            Assignment {
                project: account.project,
                from: None,
            },
        ));
        state.bump(account.domain, [DataChange::Catalog]);
        Ok(())
    }

    async fn accounts(&self, domain: DomainId) -> Result<Vec<ServiceAccount>, StoreError> {
        let state = self.lock();
        let mut out: Vec<_> = state
            .accounts
            .iter()
            .filter(|a| a.domain == domain)
            .cloned()
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    async fn account(&self, domain: DomainId, id: AccountId) -> Result<ServiceAccount, StoreError> {
        let mut state = self.lock();
        state.account_mut(domain, id).map(|a| a.clone())
    }

    async fn set_account_state(
        &self,
        domain: DomainId,
        id: AccountId,
        new_state: AccountState,
    ) -> Result<(), StoreError> {
        let mut state = self.lock();
        state.account_mut(domain, id)?.state = new_state;
        Ok(())
    }

    async fn set_account_settings(
        &self,
        domain: DomainId,
        id: AccountId,
        settings: &cloudbill_core::Settings,
    ) -> Result<(), StoreError> {
        let mut state = self.lock();
        state.account_mut(domain, id)?.settings = settings.clone();
        Ok(())
    }

    async fn delete_account(&self, domain: DomainId, id: AccountId) -> Result<(), StoreError> {
        let mut state = self.lock();
        state.account_mut(domain, id)?;
        state.accounts.retain(|a| a.id != id);
        state.assignments.retain(|(a, _)| *a != id);
        state.records.retain(|r| r.service_account != id);
        state.jobs.retain(|j| j.account != id);
        state.leases.retain(|(a, _, _)| *a != id);
        state.invoices.retain(|(_, i)| i.account != id);
        state.bump(domain, [DataChange::Catalog, DataChange::Account(id)]);
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
        let mut state = self.lock();
        if let Some(missing) = history
            .iter()
            .find(|a| !state.project_exists(domain, a.project))
        {
            return Err(not_found("project", missing.project));
        }
        state.account_mut(domain, id)?;
        let current: Vec<Assignment> = state
            .assignments
            .iter()
            .filter(|(a, _)| *a == id)
            .map(|(_, asg)| *asg)
            .collect();
        if current != expected {
            return Err(StoreError::moved_meanwhile());
        }
        state.assignments.retain(|(a, _)| *a != id);
        state
            .assignments
            .extend(history.iter().map(|asg| (id, *asg)));
        if let Some(last) = history.last() {
            state.account_mut(domain, id)?.project = last.project;
        }
        state.bump(domain, [DataChange::Catalog]);
        Ok(())
    }

    async fn assignments(
        &self,
        domain: DomainId,
        id: AccountId,
    ) -> Result<Vec<Assignment>, StoreError> {
        let mut state = self.lock();
        state.account_mut(domain, id)?;
        let mut out: Vec<_> = state
            .assignments
            .iter()
            .filter(|(a, _)| *a == id)
            .map(|(_, asg)| *asg)
            .collect();
        out.sort_by_key(|a| a.from);
        Ok(out)
    }

    async fn assignment_histories(
        &self,
        domain: DomainId,
    ) -> Result<std::collections::BTreeMap<AccountId, Vec<Assignment>>, StoreError> {
        let state = self.lock();
        let mut out: std::collections::BTreeMap<AccountId, Vec<Assignment>> =
            std::collections::BTreeMap::new();
        for (account, asg) in &state.assignments {
            if state
                .accounts
                .iter()
                .any(|a| a.id == *account && a.domain == domain)
            {
                out.entry(*account).or_default().push(*asg);
            }
        }
        for history in out.values_mut() {
            history.sort_by_key(|a| a.from);
        }
        Ok(out)
    }
}

#[async_trait]
impl crate::CostStore for MemoryStore {
    async fn replace_window(
        &self,
        domain: DomainId,
        account: AccountId,
        job: JobId,
        window: DateRange,
        records: &[CostRecord],
    ) -> Result<WriteOutcome, StoreError> {
        self.replace(domain, account, job, &Scope::Window(window), records, false)
    }

    async fn replace_window_streamed(
        &self,
        domain: DomainId,
        account: AccountId,
        job: JobId,
        window: Option<DateRange>,
        chunks: &mut dyn crate::ChunkSource,
    ) -> Result<WriteOutcome, StoreError> {
        // Memory holds everything anyway: gather, then write as one replace.
        let mut records = Vec::new();
        let mut span = crate::store::SeenDays::default();
        loop {
            match chunks.next_chunk().await {
                Some(crate::Chunk::Records(chunk)) => {
                    for r in &chunk {
                        check_record(domain, account, window, r)?;
                        span.add(r.date);
                    }
                    records.extend(chunk);
                }
                Some(crate::Chunk::Partition(blob)) => {
                    crate::store::check_partition(window, &blob)?;
                    let decoded = cloudbill_columnar::Partition::decode(blob.as_bytes())
                        .and_then(|p| p.records(domain, account))
                        .map_err(crate::store::refused)?;
                    for r in &decoded {
                        span.add(r.date);
                    }
                    records.extend(decoded);
                }
                Some(crate::Chunk::End) => break,
                None => return Err(crate::store::ended_early()),
            }
        }
        match span.scope(window) {
            Some(scope) => self.replace(domain, account, job, &scope, &records, window.is_none()),
            None => Ok(WriteOutcome::default()),
        }
    }

    async fn cost_partitions(
        &self,
        domain: DomainId,
        range: Option<DateRange>,
    ) -> Result<Vec<(AccountId, Vec<u8>)>, StoreError> {
        use chrono::Datelike;
        let state = self.lock();
        let mut groups: std::collections::BTreeMap<(NaiveDate, AccountId), Vec<&CostRecord>> =
            std::collections::BTreeMap::new();
        let wanted = range.map(crate::store::months);
        for r in state.records.iter().filter(|r| r.domain == domain) {
            let month = r.date.with_day(1).unwrap_or(r.date);
            if wanted.as_ref().is_some_and(|w| !w.contains(&month)) {
                continue;
            }
            groups
                .entry((month, r.service_account))
                .or_default()
                .push(r);
        }
        Ok(groups
            .into_iter()
            .map(|((month, account), rows)| {
                (
                    account,
                    cloudbill_columnar::encode_partition(month, &rows).into_bytes(),
                )
            })
            .collect())
    }

    async fn for_each_partition<'v>(
        &self,
        domain: DomainId,
        range: Option<DateRange>,
        visit: &'v mut crate::store::SinkRef<'v>,
    ) -> Result<(), StoreError> {
        // `cost_partitions` groups by (month, account): already in month order.
        for (account, blob) in self.cost_partitions(domain, range).await? {
            if !visit.partition(account, &blob) {
                break;
            }
        }
        Ok(())
    }

    async fn change_feed(&self) -> Result<Option<crate::ChangeFeed>, StoreError> {
        Ok(None) // one process: its own writes are seen at once
    }

    async fn changes_since(
        &self,
        domain: DomainId,
        version: i64,
    ) -> Result<Option<DataChanges>, StoreError> {
        let state = self.lock();
        if version > state.version || version + 1 < state.log_from.max(1) {
            return Ok(None);
        }
        let changes = state
            .log
            .iter()
            .filter(|(v, d, _)| *v > version && *d == domain)
            .map(|(_, _, c)| *c)
            .collect();
        Ok(Some(DataChanges::new(state.version, changes)))
    }

    async fn for_each_slice<'v>(
        &self,
        domain: DomainId,
        slices: &[DataChange],
        visit: &'v mut crate::store::SinkRef<'v>,
    ) -> Result<(), StoreError> {
        for (account, blob) in self.cost_partitions(domain, None).await? {
            // A partition that does not decode is a broken store, never a slice to skip.
            let month = cloudbill_columnar::Partition::decode(&blob)
                .map_err(|e| StoreError::Corrupt(format!("a cost partition: {e}")))?
                .month;
            if crate::store::in_slices(slices, account, month) && !visit.partition(account, &blob) {
                break;
            }
        }
        Ok(())
    }

    async fn data_version(&self, _domain: DomainId) -> Result<i64, StoreError> {
        Ok(self.lock().version)
    }

    async fn cost_records(
        &self,
        domain: DomainId,
        range: DateRange,
        account: Option<AccountId>,
    ) -> Result<Vec<CostRecord>, StoreError> {
        let state = self.lock();
        Ok(state
            .records
            .iter()
            .filter(|r| {
                r.domain == domain
                    && range.contains(r.date)
                    && account.is_none_or(|a| a == r.service_account)
            })
            .cloned()
            .collect())
    }
}

#[async_trait]
impl crate::JobStore for MemoryStore {
    async fn save_job(&self, job: &SyncJob) -> Result<(), StoreError> {
        let mut state = self.lock();
        state.account_mut(job.domain, job.account)?;
        match state.jobs.iter_mut().find(|j| j.id == job.id) {
            Some(existing) => *existing = job.clone(),
            None => state.jobs.push(job.clone()),
        }
        Ok(())
    }

    async fn jobs(
        &self,
        domain: DomainId,
        account: Option<AccountId>,
        limit: u32,
    ) -> Result<Vec<SyncJob>, StoreError> {
        let state = self.lock();
        let mut out: Vec<_> = state
            .jobs
            .iter()
            .filter(|j| j.domain == domain && account.is_none_or(|a| a == j.account))
            .cloned()
            .collect();
        out.sort_by(|a, b| b.started_at.cmp(&a.started_at).then(b.id.cmp(&a.id)));
        out.truncate(limit as usize);
        Ok(out)
    }

    async fn job(&self, domain: DomainId, id: JobId) -> Result<SyncJob, StoreError> {
        self.lock()
            .jobs
            .iter()
            .find(|j| j.domain == domain && j.id == id)
            .cloned()
            .ok_or_else(|| not_found("job", id))
    }

    async fn try_lease(
        &self,
        account: AccountId,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut state = self.lock();
        match state.leases.iter_mut().find(|(a, _, _)| *a == account) {
            Some(lease) if lease.1 == holder || lease.2 < now => {
                *lease = (account, holder.to_owned(), until);
                Ok(true)
            }
            Some(_) => Ok(false),
            None => {
                state.leases.push((account, holder.to_owned(), until));
                Ok(true)
            }
        }
    }

    async fn release_lease(&self, account: AccountId, holder: &str) -> Result<(), StoreError> {
        self.lock()
            .leases
            .retain(|(a, h, _)| *a != account || h != holder);
        Ok(())
    }
}

#[async_trait]
impl crate::TokenStore for MemoryStore {
    async fn create_token(&self, token: &ApiToken, hash: &[u8; 32]) -> Result<(), StoreError> {
        let mut state = self.lock();
        if state.tokens.iter().any(|(_, h)| h == hash) {
            return Err(StoreError::Conflict("token already exists".into()));
        }
        state.tokens.push((token.clone(), *hash));
        Ok(())
    }

    async fn tokens(&self, domain: DomainId) -> Result<Vec<ApiToken>, StoreError> {
        let state = self.lock();
        let mut out: Vec<_> = state
            .tokens
            .iter()
            .filter(|(t, _)| t.domain == domain)
            .map(|(t, _)| t.clone())
            .collect();
        out.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        Ok(out)
    }

    async fn revoke_token(&self, domain: DomainId, id: TokenId) -> Result<(), StoreError> {
        let mut state = self.lock();
        let (token, _) = state
            .tokens
            .iter_mut()
            .find(|(t, _)| t.domain == domain && t.id == id)
            .ok_or_else(|| not_found("token", id))?;
        token.revoked_at.get_or_insert_with(Utc::now);
        Ok(())
    }

    async fn token_by_hash(&self, hash: &[u8; 32]) -> Result<Option<ApiToken>, StoreError> {
        let state = self.lock();
        Ok(state
            .tokens
            .iter()
            .find(|(_, h)| h == hash)
            .map(|(t, _)| t.clone()))
    }
}

#[async_trait]
impl crate::NotifyStore for MemoryStore {
    async fn create_channel(
        &self,
        channel: &Channel,
        secret: Option<&ClientSecret>,
    ) -> Result<(), StoreError> {
        let mut state = self.lock();
        if state
            .channels
            .iter()
            .any(|(c, _)| c.domain == channel.domain && c.name == channel.name)
        {
            return Err(StoreError::exists("channel", &channel.name));
        }
        state.channels.push((channel.clone(), secret.cloned()));
        Ok(())
    }

    async fn channels(&self, domain: DomainId) -> Result<Vec<Channel>, StoreError> {
        let state = self.lock();
        let mut out: Vec<Channel> = state
            .channels
            .iter()
            .filter(|(c, _)| c.domain == domain)
            .map(|(c, _)| c.clone())
            .collect();
        out.sort_by(|a, b| a.name.as_str().cmp(b.name.as_str()));
        Ok(out)
    }

    async fn channel_secret(
        &self,
        domain: DomainId,
        id: ChannelId,
    ) -> Result<Option<ClientSecret>, StoreError> {
        let state = self.lock();
        state
            .channels
            .iter()
            .find(|(c, _)| c.domain == domain && c.id == id)
            .map(|(_, s)| s.clone())
            .ok_or_else(|| not_found("channel", id))
    }

    async fn delete_channel(&self, domain: DomainId, id: ChannelId) -> Result<(), StoreError> {
        let mut state = self.lock();
        let before = state.channels.len();
        state
            .channels
            .retain(|(c, _)| !(c.domain == domain && c.id == id));
        if state.channels.len() == before {
            return Err(not_found("channel", id));
        }
        state.deliveries.retain(|d| d.channel != id);
        Ok(())
    }

    async fn create_budget(&self, budget: &Budget) -> Result<(), StoreError> {
        let mut state = self.lock();
        if state
            .budgets
            .iter()
            .any(|b| b.domain == budget.domain && b.name == budget.name)
        {
            return Err(StoreError::exists("budget", &budget.name));
        }
        state.budgets.push(budget.clone());
        Ok(())
    }

    async fn budgets(&self, domain: DomainId) -> Result<Vec<Budget>, StoreError> {
        let state = self.lock();
        let mut out: Vec<Budget> = state
            .budgets
            .iter()
            .filter(|b| b.domain == domain)
            .cloned()
            .collect();
        out.sort_by(|a, b| a.name.as_str().cmp(b.name.as_str()));
        Ok(out)
    }

    async fn update_budget(&self, budget: &Budget) -> Result<(), StoreError> {
        let mut state = self.lock();
        if !state
            .budgets
            .iter()
            .any(|b| b.domain == budget.domain && b.id == budget.id)
        {
            return Err(not_found("budget", budget.id));
        }
        if state
            .budgets
            .iter()
            .any(|b| b.domain == budget.domain && b.name == budget.name && b.id != budget.id)
        {
            return Err(StoreError::exists("budget", &budget.name));
        }
        let slot = state
            .budgets
            .iter_mut()
            .find(|b| b.domain == budget.domain && b.id == budget.id)
            .ok_or_else(|| not_found("budget", budget.id))?;
        *slot = budget.clone();
        state.fired.retain(|f| f.budget != budget.id);
        Ok(())
    }

    async fn delete_budget(&self, domain: DomainId, id: BudgetId) -> Result<(), StoreError> {
        let mut state = self.lock();
        let before = state.budgets.len();
        state
            .budgets
            .retain(|b| !(b.domain == domain && b.id == id));
        if state.budgets.len() == before {
            return Err(not_found("budget", id));
        }
        state.fired.retain(|f| f.budget != id);
        Ok(())
    }

    async fn fired_thresholds(&self, domain: DomainId) -> Result<Vec<FiredThreshold>, StoreError> {
        let state = self.lock();
        let ours: Vec<BudgetId> = state
            .budgets
            .iter()
            .filter(|b| b.domain == domain)
            .map(|b| b.id)
            .collect();
        Ok(state
            .fired
            .iter()
            .filter(|f| ours.contains(&f.budget))
            .cloned()
            .collect())
    }

    async fn record_transitions(
        &self,
        domain: DomainId,
        transitions: &[Transition],
    ) -> Result<Vec<EventId>, StoreError> {
        let mut state = self.lock();
        let mut next = state.clone();
        let mut stored = Vec::new();
        for t in transitions {
            let at = |f: &FiredThreshold| {
                f.budget == t.budget
                    && f.notification == t.notification
                    && f.period_start == t.period_start
            };
            let exists = next
                .budgets
                .iter()
                .any(|b| b.domain == domain && b.id == t.budget);
            let fired = next.fired.iter().any(at);
            if t.fire {
                if !exists || fired {
                    continue;
                }
                next.fired.push(FiredThreshold {
                    budget: t.budget,
                    notification: t.notification,
                    period_start: t.period_start,
                    fired_at: t.event.occurred_at,
                });
            } else {
                if !fired {
                    continue;
                }
                next.fired.retain(|f| !at(f));
            }
            next.queue_event(domain, &t.event, &t.channels);
            stored.push(t.event.id);
        }
        *state = next;
        Ok(stored)
    }

    async fn events(
        &self,
        domain: DomainId,
        subject: Option<uuid::Uuid>,
        limit: u32,
    ) -> Result<Vec<Event>, StoreError> {
        let state = self.lock();
        let mut out: Vec<Event> = state
            .events
            .iter()
            .filter(|e| e.domain == domain && subject.is_none_or(|s| e.subject == s))
            .cloned()
            .collect();
        out.sort_by(|a, b| b.occurred_at.cmp(&a.occurred_at).then(b.id.cmp(&a.id)));
        out.truncate(limit as usize);
        Ok(out)
    }

    async fn claim_deliveries(
        &self,
        domain: DomainId,
        now: DateTime<Utc>,
        claim_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<DueDelivery>, StoreError> {
        let mut state = self.lock();
        let mut due: Vec<usize> = (0..state.deliveries.len())
            .filter(|i| {
                let d = &state.deliveries[*i];
                d.domain == domain
                    && d.state == DeliveryState::Pending
                    && d.next_attempt_at.timestamp_millis() <= now.timestamp_millis()
            })
            .collect();
        due.sort_by_key(|i| {
            (
                state.deliveries[*i].next_attempt_at,
                state.deliveries[*i].id,
            )
        });
        due.truncate(limit as usize);
        let mut out = Vec::new();
        for i in due {
            let delivery = state.deliveries[i].clone();
            let Some(event) = state
                .events
                .iter()
                .find(|e| e.id == delivery.event)
                .cloned()
            else {
                continue;
            };
            state.deliveries[i].next_attempt_at = claim_until;
            out.push(DueDelivery { delivery, event });
        }
        Ok(out)
    }

    async fn finish_delivery(
        &self,
        domain: DomainId,
        id: DeliveryId,
        attempts: u32,
        outcome: &DeliveryOutcome,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut state = self.lock();
        let d = state
            .deliveries
            .iter_mut()
            .find(|d| d.domain == domain && d.id == id)
            .ok_or_else(|| not_found("delivery", id))?;
        d.attempts = attempts;
        match outcome {
            DeliveryOutcome::Sent => {
                d.state = DeliveryState::Sent;
                d.finished_at = Some(at);
            }
            DeliveryOutcome::Retry { next, error } => {
                d.next_attempt_at = *next;
                d.last_error = Some(error.clone());
            }
            DeliveryOutcome::Failed { error } => {
                d.state = DeliveryState::Failed;
                d.last_error = Some(error.clone());
                d.finished_at = Some(at);
            }
        }
        Ok(())
    }

    async fn deliveries(&self, domain: DomainId, limit: u32) -> Result<Vec<Delivery>, StoreError> {
        let state = self.lock();
        let mut out: Vec<Delivery> = state
            .deliveries
            .iter()
            .filter(|d| d.domain == domain)
            .cloned()
            .collect();
        out.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        out.truncate(limit as usize);
        Ok(out)
    }

    async fn delivery_counts(&self, domain: DomainId) -> Result<[u64; 3], StoreError> {
        let state = self.lock();
        let mut counts = [0u64; 3];
        for d in state.deliveries.iter().filter(|d| d.domain == domain) {
            counts[d.state as usize] += 1;
        }
        Ok(counts)
    }
}

impl State {
    /// Queues `event` with a pending delivery per channel of the domain (the SQL stores'
    /// `queue_event`).
    fn queue_event(&mut self, domain: DomainId, event: &Event, channels: &[ChannelId]) {
        for channel in channels {
            if !self
                .channels
                .iter()
                .any(|(c, _)| c.domain == domain && c.id == *channel)
            {
                continue;
            }
            self.deliveries.push(Delivery {
                id: DeliveryId::new(),
                domain,
                event: event.id,
                event_kind: event.kind.clone(),
                channel: *channel,
                state: DeliveryState::Pending,
                attempts: 0,
                next_attempt_at: event.occurred_at,
                last_error: None,
                created_at: event.occurred_at,
                finished_at: None,
            });
        }
        let mut event = event.clone();
        event.domain = domain;
        self.events.push(event);
    }
}

#[async_trait]
impl crate::AnomalyStore for MemoryStore {
    async fn create_monitor(&self, monitor: &cloudbill_core::Monitor) -> Result<(), StoreError> {
        let mut state = self.lock();
        if state
            .monitors
            .iter()
            .any(|m| m.domain == monitor.domain && m.name == monitor.name)
        {
            return Err(StoreError::exists("anomaly monitor", &monitor.name));
        }
        state.monitors.push(monitor.clone());
        Ok(())
    }

    async fn monitors(&self, domain: DomainId) -> Result<Vec<cloudbill_core::Monitor>, StoreError> {
        let state = self.lock();
        let mut out: Vec<_> = state
            .monitors
            .iter()
            .filter(|m| m.domain == domain)
            .cloned()
            .collect();
        out.sort_by(|a, b| a.name.as_str().cmp(b.name.as_str()));
        Ok(out)
    }

    async fn delete_monitor(
        &self,
        domain: DomainId,
        id: cloudbill_core::MonitorId,
    ) -> Result<(), StoreError> {
        let mut state = self.lock();
        let before = state.monitors.len();
        state
            .monitors
            .retain(|m| !(m.domain == domain && m.id == id));
        if state.monitors.len() == before {
            return Err(not_found("anomaly monitor", id));
        }
        state.anomalies.retain(|a| a.monitor != id);
        Ok(())
    }

    async fn stored_anomalies(
        &self,
        domain: DomainId,
        monitor: Option<cloudbill_core::MonitorId>,
    ) -> Result<Vec<cloudbill_core::StoredAnomaly>, StoreError> {
        let state = self.lock();
        let mut out: Vec<_> = state
            .anomalies
            .iter()
            .filter(|a| a.domain == domain && monitor.is_none_or(|m| a.monitor == m))
            .cloned()
            .collect();
        out.sort_by(|a, b| (a.start, &a.id).cmp(&(b.start, &b.id)));
        Ok(out)
    }

    async fn apply_anomalies(
        &self,
        domain: DomainId,
        changes: &[crate::AnomalyChange],
    ) -> Result<Vec<EventId>, StoreError> {
        let mut state = self.lock();
        let mut next = state.clone();
        let mut stored = Vec::new();
        for c in changes {
            let a = &c.anomaly;
            let at = next
                .anomalies
                .iter()
                .position(|x| x.monitor == a.monitor && x.id == a.id);
            let applies = match (c.expected_version, at) {
                (None, None) => next
                    .monitors
                    .iter()
                    .any(|m| m.domain == domain && m.id == a.monitor),
                (Some(v), Some(i)) => {
                    next.anomalies[i].version == v && next.anomalies[i].domain == domain
                }
                _ => false,
            };
            if !applies {
                continue;
            }
            let mut a = a.clone();
            a.domain = domain;
            match at {
                Some(i) => next.anomalies[i] = a,
                None => next.anomalies.push(a),
            }
            if let Some((event, channels)) = &c.event {
                next.queue_event(domain, event, channels);
                stored.push(event.id);
            }
        }
        *state = next;
        Ok(stored)
    }

    async fn set_anomaly_state(
        &self,
        domain: DomainId,
        monitors: &[cloudbill_core::MonitorId],
        id: &str,
        to: cloudbill_core::AnomalyState,
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let mut state = self.lock();
        let mut n = 0;
        for a in state
            .anomalies
            .iter_mut()
            .filter(|a| a.domain == domain && a.id == id && monitors.contains(&a.monitor))
        {
            a.state = to;
            a.updated_at = at;
            a.version += 1;
            n += 1;
        }
        Ok(n)
    }
}

/// Adds `items` to a domain's `rows`, all or nothing: each item passes `check`, then one
/// already stored under the same key (`same`) is kept unless `conflict` says how it differs
/// (the whole call then fails with that, nothing added); returns how many were new.
fn put_all<T: Clone>(
    rows: &mut Vec<(DomainId, T)>,
    domain: DomainId,
    items: &[T],
    check: impl Fn(&T) -> Result<(), StoreError>,
    same: impl Fn(&T, &T) -> bool,
    conflict: impl Fn(&T, &T) -> Option<String>,
) -> Result<usize, StoreError> {
    let mut next = rows.clone();
    let mut new = 0;
    for item in items {
        check(item)?;
        match next.iter().find(|(d, x)| *d == domain && same(x, item)) {
            Some((_, x)) => {
                if let Some(why) = conflict(x, item) {
                    return Err(StoreError::Conflict(why));
                }
            }
            None => {
                next.push((domain, item.clone()));
                new += 1;
            }
        }
    }
    *rows = next;
    Ok(new)
}

#[async_trait]
impl crate::FxStore for MemoryStore {
    async fn put_rates(
        &self,
        domain: DomainId,
        rates: &[cloudbill_core::FxRate],
    ) -> Result<usize, StoreError> {
        let mut state = self.lock();
        put_all(
            &mut state.rates,
            domain,
            rates,
            |_| Ok(()),
            |x, r| {
                x.date == r.date && x.base == r.base && x.quote == r.quote && x.source == r.source
            },
            |x, r| {
                (x.rate != r.rate).then(|| {
                    format!(
                        "{} {}/{} ({}) is stored as {}, not {}: nothing was written",
                        r.date, r.base, r.quote, r.source, x.rate, r.rate
                    )
                })
            },
        )
    }

    async fn rates(
        &self,
        domain: DomainId,
        source: Option<&str>,
    ) -> Result<Vec<cloudbill_core::FxRate>, StoreError> {
        let state = self.lock();
        let mut out: Vec<cloudbill_core::FxRate> = state
            .rates
            .iter()
            .filter(|(d, r)| *d == domain && source.is_none_or(|s| r.source == s))
            .map(|(_, r)| r.clone())
            .collect();
        out.sort_by(|a, b| {
            (a.base.as_str(), a.quote.as_str(), &a.source, a.date).cmp(&(
                b.base.as_str(),
                b.quote.as_str(),
                &b.source,
                b.date,
            ))
        });
        Ok(out)
    }
}

#[async_trait]
impl crate::InvoiceStore for MemoryStore {
    async fn put_invoices(
        &self,
        domain: DomainId,
        invoices: &[cloudbill_core::Invoice],
    ) -> Result<usize, StoreError> {
        let mut state = self.lock();
        let state = &mut *state;
        let accounts = &state.accounts;
        put_all(
            &mut state.invoices,
            domain,
            invoices,
            |i| {
                if accounts
                    .iter()
                    .any(|a| a.domain == domain && a.id == i.account)
                {
                    Ok(())
                } else {
                    Err(not_found("service account", i.account))
                }
            },
            |x, i| x.account == i.account && x.period == i.period && x.currency == i.currency,
            |x, i| {
                (x != i).then(|| {
                    format!(
                        "{} {} of account {} is stored as invoice {} of {}: nothing was written",
                        i.period.format("%Y-%m"),
                        i.currency,
                        i.account,
                        x.invoice_id,
                        x.total
                    )
                })
            },
        )
    }

    async fn invoices(
        &self,
        domain: DomainId,
        period: Option<NaiveDate>,
    ) -> Result<Vec<cloudbill_core::Invoice>, StoreError> {
        let state = self.lock();
        let mut out: Vec<cloudbill_core::Invoice> = state
            .invoices
            .iter()
            .filter(|(d, i)| *d == domain && period.is_none_or(|p| i.period == p))
            .map(|(_, i)| i.clone())
            .collect();
        out.sort_by(|a, b| {
            (a.period, a.account, a.currency.as_str()).cmp(&(
                b.period,
                b.account,
                b.currency.as_str(),
            ))
        });
        Ok(out)
    }

    async fn delete_invoice(
        &self,
        domain: DomainId,
        account: AccountId,
        period: NaiveDate,
        currency: cloudbill_core::Currency,
    ) -> Result<Option<cloudbill_core::Invoice>, StoreError> {
        let mut state = self.lock();
        let at = state.invoices.iter().position(|(d, i)| {
            *d == domain && i.account == account && i.period == period && i.currency == currency
        });
        Ok(at.map(|at| state.invoices.remove(at).1))
    }
}

#[async_trait]
impl crate::PeriodStore for MemoryStore {
    async fn close_period(
        &self,
        domain: DomainId,
        month: NaiveDate,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut state = self.lock();
        if state.closed.contains(&(domain, month)) {
            return Err(StoreError::Conflict(format!(
                "{} is closed already",
                month.format("%Y-%m")
            )));
        }
        state.closed.push((domain, month));
        state.period_log.push((
            domain,
            cloudbill_core::PeriodChange {
                month,
                action: "close".into(),
                reason: None,
                at,
            },
        ));
        Ok(())
    }

    async fn reopen_period(
        &self,
        domain: DomainId,
        month: NaiveDate,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut state = self.lock();
        let before = state.closed.len();
        state.closed.retain(|c| *c != (domain, month));
        if state.closed.len() == before {
            return Err(not_found("closed period", month.format("%Y-%m")));
        }
        state.period_log.push((
            domain,
            cloudbill_core::PeriodChange {
                month,
                action: "reopen".into(),
                reason: Some(reason.to_owned()),
                at,
            },
        ));
        Ok(())
    }

    async fn closed_periods(&self, domain: DomainId) -> Result<Vec<NaiveDate>, StoreError> {
        let state = self.lock();
        let mut out: Vec<NaiveDate> = state
            .closed
            .iter()
            .filter(|(d, _)| *d == domain)
            .map(|(_, m)| *m)
            .collect();
        out.sort();
        Ok(out)
    }

    async fn period_log(
        &self,
        domain: DomainId,
        month: NaiveDate,
    ) -> Result<Vec<cloudbill_core::PeriodChange>, StoreError> {
        let state = self.lock();
        Ok(state
            .period_log
            .iter()
            .filter(|(d, c)| *d == domain && c.month == month)
            .map(|(_, c)| c.clone())
            .collect())
    }

    async fn put_held(
        &self,
        domain: DomainId,
        held: &[cloudbill_core::HeldDay],
    ) -> Result<(), StoreError> {
        let mut state = self.lock();
        state.held.extend(held.iter().map(|h| (domain, h.clone())));
        Ok(())
    }

    async fn held(
        &self,
        domain: DomainId,
        range: DateRange,
    ) -> Result<Vec<cloudbill_core::HeldDay>, StoreError> {
        let state = self.lock();
        let mut out: Vec<cloudbill_core::HeldDay> = state
            .held
            .iter()
            .filter(|(d, h)| *d == domain && range.contains(h.day.date))
            .map(|(_, h)| h.clone())
            .collect();
        out.sort_by_key(|h| (h.day.date, h.recorded_at));
        Ok(out)
    }
}
