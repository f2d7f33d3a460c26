//! Syncing cost data: accounts in parallel, windows written atomically, jobs recorded.

use chrono::{Datelike, Months, NaiveDate, Utc};
use cloudbill_core::{
    AccountState, DateRange, JobId, JobKind, JobState, ProviderKind, ProviderState, ServiceAccount,
    SyncJob,
};
use futures::StreamExt;

use crate::{Billing, Hint, Principal, ServiceError};

/// What to sync.
#[derive(Debug, Clone, Default)]
pub struct SyncRequest {
    /// Account names or ids; empty means every enabled account with a syncing provider.
    pub accounts: Vec<String>,
    /// The range; `None` means each account's default (see [`crate::BillingConfig`]).
    pub range: Option<DateRange>,
}

impl SyncRequest {
    /// Every enabled account, over `range`.
    pub fn range(range: DateRange) -> Self {
        Self {
            accounts: Vec::new(),
            range: Some(range),
        }
    }
}

/// How one account's sync ended.
#[derive(Debug, Clone)]
pub struct AccountOutcome {
    /// Account name.
    pub account: String,
    /// The job recorded (absent if the account could not even start).
    pub job: Option<JobId>,
    /// The range attempted.
    pub range: Option<DateRange>,
    /// Final state.
    pub state: JobState,
    /// Records written.
    pub rows: u64,
    /// Days whose totals changed.
    pub changed_days: usize,
    /// The earliest of them.
    pub first_changed: Option<NaiveDate>,
    /// Why it failed.
    pub error: Option<String>,
    /// Windows not read because their source was unchanged since they were last written (a
    /// connector whose export's manifests, or table's export time, did not move).
    pub unchanged_windows: usize,
}

/// The outcome of a sync: one entry per account, in account-name order.
#[derive(Debug, Clone, Default)]
pub struct SyncReport {
    /// Per-account outcomes.
    pub outcomes: Vec<AccountOutcome>,
}

impl SyncReport {
    /// Whether every account succeeded.
    pub fn all_succeeded(&self) -> bool {
        self.outcomes.iter().all(|o| o.state == JobState::Succeeded)
    }
}

/// Progress callbacks (the CLI draws bars with them); every method defaults to nothing.
pub trait SyncObserver: Send + Sync {
    /// An account starts: `windows` windows to fetch.
    fn started(&self, _account: &str, _windows: usize) {}
    /// A window was written.
    fn window_done(&self, _account: &str, _rows: u64) {}
    /// An account finished.
    fn finished(&self, _outcome: &AccountOutcome) {}
}

/// An observer that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl SyncObserver for NoProgress {}

/// One account of a sync, before it runs.
#[derive(Debug, Clone)]
struct Planned {
    account: ServiceAccount,
    /// The job recorded for it (absent when refused before starting).
    job: Option<SyncJob>,
    refused: Option<String>,
    /// Windows skipped as unchanged.
    unchanged: usize,
}

impl Planned {
    fn outcome(&self) -> AccountOutcome {
        AccountOutcome {
            account: self.account.name.to_string(),
            job: self.job.as_ref().map(|j| j.id),
            range: self.job.as_ref().map(|j| j.window),
            state: self.job.as_ref().map_or(JobState::Failed, |j| j.state),
            rows: self.job.as_ref().map_or(0, |j| j.rows),
            changed_days: self.job.as_ref().map_or(0, |j| j.changed_days.len()),
            first_changed: self
                .job
                .as_ref()
                .and_then(|j| j.changed_days.iter().map(|c| c.date).min()),
            error: self
                .refused
                .clone()
                .or_else(|| self.job.as_ref().and_then(|j| j.error.clone())),
            unchanged_windows: self.unchanged,
        }
    }
}

/// A job with the name of its account.
#[derive(Debug, Clone)]
pub struct JobView {
    /// The job (for a project member: its window cut to the days its project owned the
    /// account, and only those days' changes).
    pub job: SyncJob,
    /// Its account's name.
    pub account_name: String,
    /// Records written, as the principal may see them: `None` when the job's window was cut
    /// for a project member (the count covers days of another project).
    pub rows: Option<u64>,
}

fn first_of_month(d: NaiveDate) -> NaiveDate {
    d.with_day(1).unwrap_or(d)
}

impl Billing {
    /// The default range of an account: from the last successful sync minus `restate_days`,
    /// rounded down to the 1st of that month (first sync: `initial_months` back, from the 1st),
    /// through today.
    async fn default_range(&self, account: &ServiceAccount) -> Result<DateRange, ServiceError> {
        let today = self.today();
        let end = today.succ_opt().unwrap_or(today);
        let jobs = self
            .job_store()
            .jobs(self.domain_id(), Some(account.id), 200)
            .await?;
        let last_good = jobs
            .iter()
            .filter(|j| j.kind == JobKind::Sync && j.state == JobState::Succeeded)
            .map(|j| j.window.end().min(end))
            .max();
        let start = match last_good {
            Some(covered) => {
                first_of_month(covered - chrono::Duration::days(self.inner.config.restate_days))
            }
            None => first_of_month(
                today
                    .checked_sub_months(Months::new(self.inner.config.initial_months))
                    .unwrap_or(today),
            ),
        };
        Ok(DateRange::new(start.min(today), end)?)
    }

    /// Syncs the requested accounts (admin only). Accounts run concurrently (bounded); one
    /// failing never stops or rolls back the others, and every outcome is reported.
    pub async fn sync(
        &self,
        p: &Principal,
        request: &SyncRequest,
        observer: &dyn SyncObserver,
    ) -> Result<SyncReport, ServiceError> {
        let plan = self.plan_sync(p, request).await?;
        Ok(self.run_plan(plan, observer).await)
    }

    /// Starts a sync in the background and returns at once with each account's job id (the
    /// jobs exist, in state `running`, when this returns). Refused accounts come back without a
    /// job, with the reason.
    pub async fn start_sync(
        &self,
        p: &Principal,
        request: &SyncRequest,
        observer: std::sync::Arc<dyn SyncObserver>,
    ) -> Result<Vec<AccountOutcome>, ServiceError> {
        let plan = self.plan_sync(p, request).await?;
        let started: Vec<AccountOutcome> = plan.iter().map(Planned::outcome).collect();
        let this = self.clone();
        tokio::spawn(async move {
            let report = this.run_plan(plan, observer.as_ref()).await;
            for o in &report.outcomes {
                if let Some(e) = &o.error {
                    tracing::warn!(account = %o.account, error = %e, "background sync failed");
                }
            }
        });
        Ok(started)
    }

    async fn plan_sync(
        &self,
        p: &Principal,
        request: &SyncRequest,
    ) -> Result<Vec<Planned>, ServiceError> {
        p.require_admin("sync billing data")?;
        self.require_billing().await?;
        if let Some(range) = request.range {
            // Bounded before any work: 0001-01-01..9999-12-31 would otherwise mean 117,000
            // provider windows per account.
            let max = self.inner.config.max_query_days;
            if range.days() > max {
                return Err(ServiceError::Invalid(format!(
                    "a sync range of {} days is longer than the maximum of {max} days",
                    range.days()
                )));
            }
        }
        let all = self.catalog_store().accounts(self.domain_id()).await?;
        let providers = self.catalog_store().providers(self.domain_id()).await?;
        let selected: Vec<ServiceAccount> = if request.accounts.is_empty() {
            all.into_iter()
                .filter(|a| a.state == AccountState::Enabled && a.provider != ProviderKind::File)
                .collect()
        } else {
            let mut out = Vec::new();
            for key in &request.accounts {
                let a = all
                    .iter()
                    .find(|a| {
                        cloudbill_core::Lookup::parse(key).matches(a.name.as_str(), a.id.as_uuid())
                    })
                    .ok_or_else(|| ServiceError::NotFound {
                        what: "service account",
                        key: key.clone(),
                    })?;
                if !out.iter().any(|x: &ServiceAccount| x.id == a.id) {
                    out.push(a.clone());
                }
            }
            out
        };
        let mut plan = Vec::with_capacity(selected.len());
        for account in selected {
            let provider_disabled = providers
                .iter()
                .any(|e| e.kind == account.provider && e.state == ProviderState::Disabled);
            let refusal = if account.state == AccountState::Disabled {
                Some(format!(
                    "account is disabled; {}",
                    Hint::EnableAccount(account.name.to_string()).describe()
                ))
            } else if account.provider == ProviderKind::File {
                Some(format!(
                    "a file account is not synced; {}",
                    Hint::ImportBill.describe()
                ))
            } else if provider_disabled {
                Some(format!(
                    "provider {} is disabled; {}",
                    account.provider,
                    Hint::EnableProvider(account.provider.to_string()).describe()
                ))
            } else {
                None
            };
            if let Some(reason) = refusal {
                plan.push(Planned {
                    account,
                    job: None,
                    refused: Some(reason),
                    unchanged: 0,
                });
                continue;
            }
            let range = match request.range {
                Some(r) => r,
                None => self.default_range(&account).await?,
            };
            let job = SyncJob::running(
                self.domain_id(),
                account.id,
                JobKind::Sync,
                range,
                self.now(),
            );
            self.job_store().save_job(&job).await?;
            self.inner.turns.started(job.id);
            plan.push(Planned {
                account,
                job: Some(job),
                refused: None,
                unchanged: 0,
            });
        }
        Ok(plan)
    }

    async fn run_plan(&self, plan: Vec<Planned>, observer: &dyn SyncObserver) -> SyncReport {
        let concurrency = self.inner.config.concurrency.max(1);
        let ids: std::collections::BTreeMap<String, cloudbill_core::AccountId> = plan
            .iter()
            .map(|p| (p.account.name.to_string(), p.account.id))
            .collect();
        let mut outcomes: Vec<AccountOutcome> = futures::stream::iter(plan)
            .map(|planned| async move {
                let outcome = self.execute(planned, observer).await;
                observer.finished(&outcome);
                outcome
            })
            .buffer_unordered(concurrency)
            .collect()
            .await;
        outcomes.sort_by(|a, b| a.account.cmp(&b.account));
        // Budgets over the accounts whose data changed, after every window is committed.
        let touched: std::collections::BTreeSet<cloudbill_core::AccountId> = outcomes
            .iter()
            .filter(|o| o.changed_days > 0)
            .filter_map(|o| ids.get(&o.account).copied())
            .collect();
        let since = outcomes.iter().filter_map(|o| o.first_changed).min();
        if !touched.is_empty() {
            self.after_change("sync", Some((&touched, since))).await;
        }
        SyncReport { outcomes }
    }

    async fn execute(&self, planned: Planned, observer: &dyn SyncObserver) -> AccountOutcome {
        let Some(job) = planned.job.clone() else {
            return planned.outcome();
        };
        let id = job.id;
        // This process's other syncs and imports of the account finish first.
        let _turn = self.account_turn(planned.account.id).await;
        let outcome = self.execute_in_turn(planned, job, observer).await;
        self.inner.turns.finished(id);
        outcome
    }

    async fn execute_in_turn(
        &self,
        planned: Planned,
        mut job: SyncJob,
        observer: &dyn SyncObserver,
    ) -> AccountOutcome {
        let account = &planned.account;
        let store = self.job_store();
        let holder = &self.inner.holder;
        let ttl = chrono::Duration::from_std(self.inner.config.lease_ttl)
            .unwrap_or_else(|_| chrono::Duration::minutes(15));
        let lease = store
            .try_lease(account.id, holder, Utc::now(), Utc::now() + ttl)
            .await;
        let refusal = match lease {
            Ok(true) => None,
            Ok(false) => Some(format!(
                "a sync of account {} is already running in another process; try again when it finishes",
                account.name
            )),
            Err(e) => Some(e.to_string()),
        };
        if let Some(reason) = refusal {
            job.state = JobState::Failed;
            job.error = Some(reason);
            job.finished_at = Some(self.now());
            if let Err(e) = store.save_job(&job).await {
                tracing::error!(error = %e, "could not record the sync job");
            }
            return Planned {
                job: Some(job),
                ..planned
            }
            .outcome();
        }
        self.close_interrupted_jobs(account, job.id).await;
        let mut unchanged = 0;
        let result = self
            .fetch_and_write(account, job.window, &mut job, &mut unchanged, observer)
            .await;
        job.finished_at = Some(self.now());
        match result {
            Ok(()) => job.state = JobState::Succeeded,
            Err((e, windows_written)) => {
                job.state = if windows_written > 0 {
                    JobState::Partial
                } else {
                    JobState::Failed
                };
                job.error = Some(e.to_string());
                tracing::warn!(account = %account.name, error = %e, "sync failed");
            }
        }
        if let Err(e) = store.save_job(&job).await {
            tracing::error!(error = %e, "could not record the sync job");
        }
        if let Err(e) = store.release_lease(account.id, holder).await {
            tracing::warn!(account = %account.name, error = %e, "could not release sync lease");
        }
        Planned {
            job: Some(job),
            unchanged,
            ..planned
        }
        .outcome()
    }

    /// Jobs of `account` still marked running while we hold its lease were left by a process
    /// that stopped mid-sync or mid-import: record them as interrupted (a sync's written
    /// windows stay valid; an import wrote nothing).
    pub(crate) async fn close_interrupted_jobs(&self, account: &ServiceAccount, current: JobId) {
        let store = self.job_store();
        let Ok(jobs) = store.jobs(self.domain_id(), Some(account.id), 50).await else {
            return;
        };
        // Not the jobs this process still works on or waits to start (their turn comes).
        for job in jobs.into_iter().filter(|j| {
            j.state == JobState::Running && j.id != current && !self.inner.turns.is_live(j.id)
        }) {
            self.close_interrupted(job).await;
        }
    }

    async fn close_interrupted(&self, mut job: SyncJob) {
        job.state = if job.rows > 0 {
            JobState::Partial
        } else {
            JobState::Failed
        };
        job.error = Some(format!(
            "interrupted: the process stopped before this {} finished",
            job.kind.as_str()
        ));
        job.finished_at = Some(self.now());
        if let Err(e) = self.job_store().save_job(&job).await {
            tracing::warn!(error = %e, "could not close an interrupted job");
        }
    }

    /// Running imports whose account lease lapsed (nobody renews it: the importing process
    /// stopped) are closed as interrupted, so a killed import never stays "running". Syncs
    /// are closed by the next sync of their account (their jobs exist before their lease).
    async fn close_lapsed_imports(&self, views: &mut [JobView]) {
        let now = Utc::now();
        let probe = format!("probe-{}", JobId::new());
        for view in views
            .iter_mut()
            .filter(|v| v.job.state == JobState::Running && v.job.kind == JobKind::Import)
        {
            // A lease that expires at once: taken only if free or lapsed, and then gone.
            if let Ok(true) = self
                .job_store()
                .try_lease(view.job.account, &probe, now, now)
                .await
            {
                self.close_interrupted(view.job.clone()).await;
                if let Ok(closed) = self.job_store().job(self.domain_id(), view.job.id).await {
                    view.job = closed;
                }
            }
        }
    }

    /// Keeps `held` and says so on the job (it succeeded; closed days were not written).
    pub(crate) async fn record_held(
        &self,
        job: &mut SyncJob,
        held: &[cloudbill_core::HeldDay],
    ) -> Result<(), ServiceError> {
        if held.is_empty() {
            return Ok(());
        }
        self.period_store().put_held(self.domain_id(), held).await?;
        let months: std::collections::BTreeSet<String> = held
            .iter()
            .map(|h| h.day.date.format("%Y-%m").to_string())
            .collect();
        let note = format!(
            "{} restated day(s) of closed period(s) {} held, not written (cloudbill period show)",
            held.len(),
            months.into_iter().collect::<Vec<_>>().join(", ")
        );
        job.error = Some(match job.error.take() {
            Some(e) => format!("{e}; {note}"),
            None => note,
        });
        Ok(())
    }

    /// One job by id, if the principal may see its account (`NotFound` otherwise, so ids of
    /// other projects' jobs are not confirmed).
    pub async fn job(&self, p: &Principal, id: &str) -> Result<JobView, ServiceError> {
        let not_found = || ServiceError::NotFound {
            what: "job",
            key: id.to_owned(),
        };
        let job_id: cloudbill_core::JobId = id.parse().map_err(|_| not_found())?;
        let job = match self.job_store().job(self.domain_id(), job_id).await {
            Ok(job) => job,
            Err(cloudbill_store::StoreError::NotFound { .. }) => return Err(not_found()),
            Err(e) => return Err(e.into()),
        };
        let account = self
            .accounts(p)
            .await?
            .into_iter()
            .find(|a| a.id == job.account)
            .ok_or_else(not_found)?;
        let mut views = vec![JobView {
            rows: Some(job.rows),
            job,
            account_name: account.name.to_string(),
        }];
        self.close_lapsed_imports(&mut views).await;
        self.cut_for(p, &mut views).await?;
        views.pop().ok_or_else(not_found)
    }

    /// What a project member may see of jobs: the window cut to the days its projects owned
    /// the account (a partially moved account's earlier days belong to the old project; a
    /// job of only such days is not shown), the changed days of those days, no row count
    /// when the window was cut, and provider errors without the provider's response body.
    /// Admins see everything.
    async fn cut_for(&self, p: &Principal, views: &mut Vec<JobView>) -> Result<(), ServiceError> {
        let Principal::ProjectMember { projects } = p else {
            return Ok(());
        };
        let histories = self
            .catalog_store()
            .assignment_histories(self.domain_id())
            .await?;
        views.retain_mut(|view| {
            let history = histories
                .get(&view.job.account)
                .map(Vec::as_slice)
                .unwrap_or_default();
            let owned = |day: NaiveDate| {
                ServiceAccount::project_on(history, day).is_some_and(|x| projects.contains(&x))
            };
            let window = view.job.window;
            let mut days = window.iter_days().filter(|d| owned(*d));
            let Some(first) = days.next() else {
                return false;
            };
            let last = days.last().unwrap_or(first);
            let end = last.succ_opt().unwrap_or(window.end());
            if (first, end) != (window.start(), window.end()) {
                if let Ok(cut) = DateRange::new(first, end) {
                    view.job.window = cut;
                }
                view.rows = None;
                view.job.rows = 0;
            }
            view.job.changed_days.retain(|c| owned(c.date));
            if let Some(error) = &mut view.job.error {
                *error = redact_provider_body(error);
            }
            true
        });
        Ok(())
    }

    /// Every account the principal may see with its newest job (`None`: never synced or
    /// imported), by account name — the dashboard's "last sync per account", whatever the
    /// number of jobs.
    pub async fn last_jobs(
        &self,
        p: &Principal,
    ) -> Result<Vec<(ServiceAccount, Option<JobView>)>, ServiceError> {
        let mut out = Vec::new();
        for account in self.accounts(p).await? {
            let newest = self
                .job_store()
                .jobs(self.domain_id(), Some(account.id), 1)
                .await?;
            let mut views: Vec<JobView> = newest
                .into_iter()
                .map(|job| JobView {
                    rows: Some(job.rows),
                    job,
                    account_name: account.name.to_string(),
                })
                .collect();
            self.close_lapsed_imports(&mut views).await;
            self.cut_for(p, &mut views).await?;
            out.push((account, views.pop()));
        }
        Ok(out)
    }

    /// Sync and import jobs, newest first, optionally of one account.
    pub async fn jobs(
        &self,
        p: &Principal,
        account: Option<&str>,
        limit: u32,
    ) -> Result<Vec<JobView>, ServiceError> {
        let accounts = self.accounts(p).await?;
        let filter = match account {
            Some(key) => Some(self.account(p, key).await?.id),
            None => None,
        };
        let jobs = self
            .job_store()
            .jobs(self.domain_id(), filter, limit)
            .await?;
        let mut views: Vec<JobView> = jobs
            .into_iter()
            .filter_map(|job| {
                let name = accounts
                    .iter()
                    .find(|a| a.id == job.account)?
                    .name
                    .to_string();
                Some(JobView {
                    rows: Some(job.rows),
                    job,
                    account_name: name,
                })
            })
            .collect();
        self.close_lapsed_imports(&mut views).await;
        self.cut_for(p, &mut views).await?;
        Ok(views)
    }
}

/// A job error as a project member sees it: a provider's response body (which may name other
/// accounts or echo what was sent) is left out; the status and the account stay.
fn redact_provider_body(error: &str) -> String {
    const MARK: &str = "rejected the request with HTTP ";
    match error.find(MARK) {
        Some(at) => {
            let status_end = (at + MARK.len() + 3).min(error.len());
            let head = error.get(..status_end).unwrap_or(error);
            format!("{head} (the provider's answer is shown to domain admins)")
        }
        None => error.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact_provider_body;

    #[test]
    fn members_do_not_see_provider_bodies() {
        let full = "account globex: Hyperbilling rejected the request with HTTP 400: {\"detail\": \"account 999 of acme\"}";
        let cut = redact_provider_body(full);
        assert_eq!(
            cut,
            "account globex: Hyperbilling rejected the request with HTTP 400 (the provider's answer is shown to domain admins)"
        );
        assert_eq!(redact_provider_body("timed out"), "timed out");
    }
}
