//! Bills in files: importing FOCUS / CUR into a `file` account, exporting FOCUS.

use std::io::Read;
use std::sync::Arc;

/// Per (day, currency) totals of a bill's closed-month rows, held rather than written.
type HeldTotals = std::collections::BTreeMap<
    (cloudbill_core::NaiveDate, cloudbill_core::Currency),
    cloudbill_core::Decimal,
>;

use chrono::Utc;
use cloudbill_core::{
    AccountState, CostRecord, DateRange, JobId, JobKind, JobState, ProviderKind, ProviderState,
    ServiceAccount, SyncJob,
};
use cloudbill_focus::{BillFormat, ImportOptions, RowError};

use cloudbill_store::Chunk;

use cloudbill_aggregate::{GroupKey, NO_VALUE};

use crate::{Billing, Hint, Principal, ServiceError};

/// Opens the bill being imported (called once, when the import starts reading).
pub type BillSource = Arc<dyn Fn() -> std::io::Result<Box<dyn Read + Send>> + Send + Sync>;

/// Encoder memory at which an import hands its partitions to the store early (a month then
/// spans several segments): bounds an import's memory whatever the file's size.
const IMPORT_SPILL_BYTES: usize = 12 << 20;

/// The longest error text kept on a job (the errors quote only short excerpts of a file; this
/// is the backstop that keeps `cloudbill jobs` small whatever a file held).
const MAX_JOB_ERROR_CHARS: usize = 2000;

fn bounded_error(text: &str) -> String {
    cloudbill_core::cut(text, MAX_JOB_ERROR_CHARS).into_owned()
}

/// What an import did.
#[derive(Debug, Clone)]
pub struct ImportReport {
    /// The account imported into.
    pub account: String,
    /// The job recorded.
    pub job: JobId,
    /// First to last day of the file's rows (or the `--window` given); `None` if no row was
    /// valid. Without a window only the days holding rows were replaced (`days`).
    pub range: Option<DateRange>,
    /// How many days were replaced.
    pub days: u64,
    /// Data rows read.
    pub rows: u64,
    /// Records written.
    pub written: u64,
    /// Rows skipped (`skip_invalid` only).
    pub skipped: u64,
    /// The first skipped rows and why.
    pub first_errors: Vec<RowError>,
    /// Days whose totals changed versus before.
    pub changed_days: usize,
}

/// A stored record with the names an export shows.
#[derive(Debug, Clone)]
pub struct ExportedRecord {
    /// The record.
    pub record: CostRecord,
    /// Its account's name.
    pub account_name: String,
    /// Its project's name on its day.
    pub project_name: String,
}

impl Billing {
    async fn file_account(&self, p: &Principal, key: &str) -> Result<ServiceAccount, ServiceError> {
        let account = self.account(p, key).await?;
        if account.provider != ProviderKind::File {
            return Err(ServiceError::Invalid(format!(
                "account {:?} uses provider {}",
                account.name.as_str(),
                account.provider
            ))
            .with_hint(Hint::UseFileAccount));
        }
        if account.state == AccountState::Disabled {
            return Err(ServiceError::Conflict(format!(
                "account {:?} is disabled",
                account.name.as_str()
            ))
            .with_hint(Hint::EnableAccount(account.name.to_string())));
        }
        let providers = self.catalog_store().providers(self.domain_id()).await?;
        if providers
            .iter()
            .any(|e| e.kind == ProviderKind::File && e.state == ProviderState::Disabled)
        {
            return Err(ServiceError::Conflict("provider file is disabled".into())
                .with_hint(Hint::EnableProvider("file".into())));
        }
        Ok(account)
    }

    /// Imports a FOCUS or CUR bill into a `file` account (admin only): the account's records of
    /// exactly the days the file holds rows for (or of every day of `options.window`) are
    /// replaced atomically, and a job records the range and rows. Days between the file's
    /// days keep their records; a row far outside its own billing period is refused unless
    /// a window covers it.
    /// A bad row stops the import with its line and column and writes nothing, unless
    /// `options.skip_invalid`.
    ///
    /// The file is read once and encoded straight into columnar partitions
    /// ([`cloudbill_focus::encode_bill`]) that stream into one store transaction, which learns
    /// the days the file covers from them and replaces exactly those at the end. Memory stays
    /// bounded whatever the file's size.
    pub async fn import(
        &self,
        p: &Principal,
        account: &str,
        format: BillFormat,
        open: BillSource,
        file_name: &str,
        options: ImportOptions,
    ) -> Result<ImportReport, ServiceError> {
        p.require_admin("import bills")?;
        self.require_billing().await?;
        let account = self.file_account(p, account).await?;
        let store = self.job_store();
        // The account's lease, taken before the job exists and renewed while the import
        // runs: a job whose lease lapsed was left by a process that stopped (see
        // `close_lapsed_imports`).
        let ttl = self.inner.config.import_lease_ttl;
        let lease_until = move || {
            Utc::now() + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::seconds(10))
        };
        let holder = self.inner.holder.clone();
        // This process's other syncs and imports of the account finish first.
        let _turn = self.account_turn(account.id).await;
        if !store
            .try_lease(account.id, &holder, Utc::now(), lease_until())
            .await?
        {
            return Err(ServiceError::Conflict(format!(
                "a sync or import of account {} is running in another process; try again when it finishes",
                account.name
            )));
        }
        // Renewed every third of its life; when another process holds it now (or no renewal
        // got through for a whole life), the import stops before it commits.
        let lost = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let renewal = {
            // The job view, owned by the renewing task.
            let store: Arc<dyn cloudbill_store::JobStore> = self.inner.store.clone();
            let (holder, id) = (holder.clone(), account.id);
            let lost = Arc::clone(&lost);
            let name = account.name.to_string();
            tokio::spawn(async move {
                let mut renewed = std::time::Instant::now();
                loop {
                    tokio::time::sleep(ttl / 3).await;
                    match store
                        .try_lease(id, &holder, Utc::now(), lease_until())
                        .await
                    {
                        Ok(true) => renewed = std::time::Instant::now(),
                        Ok(false) => {
                            tracing::error!(account = %name, "another process took the import's lease");
                            lost.store(true, std::sync::atomic::Ordering::SeqCst);
                            break;
                        }
                        Err(e) if renewed.elapsed() >= ttl => {
                            tracing::error!(account = %name, error = %e, "the import's lease lapsed: no renewal got through");
                            lost.store(true, std::sync::atomic::Ordering::SeqCst);
                            break;
                        }
                        Err(e) => {
                            tracing::warn!(account = %name, error = %e, "could not renew the import's lease; trying again");
                        }
                    }
                }
            })
        };
        let result = self
            .import_leased(&account, format, open, file_name, options, &lost)
            .await;
        renewal.abort();
        if let Err(e) = store.release_lease(account.id, &holder).await {
            tracing::warn!(account = %account.name, error = %e, "could not release the import lease");
        }
        result
    }

    async fn import_leased(
        &self,
        account: &ServiceAccount,
        format: BillFormat,
        open: BillSource,
        file_name: &str,
        options: ImportOptions,
        lost: &Arc<std::sync::atomic::AtomicBool>,
    ) -> Result<ImportReport, ServiceError> {
        let store = self.job_store();
        self.close_interrupted_jobs(account, JobId::new()).await;
        // The job's window is the day of the import until the file's range is known.
        let job = SyncJob::running(
            self.domain_id(),
            account.id,
            JobKind::Import,
            DateRange::day(self.today()),
            self.now(),
        );
        store.save_job(&job).await?;
        let mut finished = job.clone();
        let result = self
            .stream_into_store(account, job.id, format, &open, file_name, options, lost)
            .await;
        finished.finished_at = Some(self.now());
        let (outcome, summary, held) = match result {
            Ok(done) => done,
            Err(error) => {
                finished.state = JobState::Failed;
                finished.error = Some(bounded_error(&error.to_string()));
                store.save_job(&finished).await?;
                return Err(error);
            }
        };
        if let Some(window) = outcome.window {
            finished.window = window;
        }
        finished.rows = outcome.rows;
        finished.changed_days.clone_from(&outcome.changed_days);
        finished.state = JobState::Succeeded;
        if summary.skipped > 0 {
            finished.error = Some(format!("{} invalid rows skipped", summary.skipped));
        }
        if !held.is_empty() {
            let days: std::collections::BTreeSet<cloudbill_core::NaiveDate> =
                held.keys().map(|(d, _)| *d).collect();
            let held = self.held_days(account.id, job.id, &days, &held).await?;
            self.record_held(&mut finished, &held).await?;
        }
        store.save_job(&finished).await?;
        if !outcome.changed_days.is_empty() {
            let since = outcome.changed_days.iter().map(|c| c.date).min();
            self.after_change(
                "import",
                Some((&std::iter::once(account.id).collect(), since)),
            )
            .await;
        }
        Ok(ImportReport {
            account: account.name.to_string(),
            job: job.id,
            range: options.window.or(summary.range),
            days: outcome.days,
            rows: summary.rows,
            written: outcome.rows,
            skipped: summary.skipped,
            first_errors: summary.first_errors,
            changed_days: outcome.changed_days.len(),
        })
    }

    /// Streams the file's partitions into one transaction. The producer ends the stream with
    /// `Chunk::End` only when the whole file was read and valid; anything else rolls back.
    #[allow(clippy::too_many_arguments)] // One import's wiring, passed once.
    async fn stream_into_store(
        &self,
        account: &ServiceAccount,
        job: JobId,
        format: BillFormat,
        open: &BillSource,
        file_name: &str,
        options: ImportOptions,
        lost: &Arc<std::sync::atomic::AtomicBool>,
    ) -> Result<
        (
            cloudbill_store::WriteOutcome,
            cloudbill_focus::ImportedBill,
            HeldTotals,
        ),
        ServiceError,
    > {
        let domain = self.domain_id();
        let closed = self.closed_months().await?;
        if let Some(w) = options.window {
            let parts = crate::periods::split(w, &closed);
            if !parts.closed.is_empty() {
                let months: std::collections::BTreeSet<String> = parts
                    .closed
                    .iter()
                    .map(|d| d.format("%Y-%m").to_string())
                    .collect();
                return Err(ServiceError::Invalid(format!(
                    "the window {w} overlaps closed period(s) {}: reopen them (cloudbill period reopen) or import without --window (the closed days are then held, not written)",
                    months.into_iter().collect::<Vec<_>>().join(", ")
                )));
            }
        }
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Chunk>(4);
        let (name, open) = (file_name.to_owned(), Arc::clone(open));
        let (lease, account_name) = (Arc::clone(lost), account.name.to_string());
        let lease_lost = move || lease.load(std::sync::atomic::Ordering::SeqCst);
        let producer = tokio::task::spawn_blocking(move || -> Result<_, ServiceError> {
            let source =
                open().map_err(|e| ServiceError::Invalid(format!("cannot read {name}: {e}")))?;
            let mut receiver_gone = false;
            // Partitions of closed months are not written: their totals are kept to record
            // what was held.
            let mut held = HeldTotals::new();
            let mut failed = None;
            let summary = cloudbill_focus::encode_bill(
                source,
                &name,
                format,
                options,
                IMPORT_SPILL_BYTES,
                |partition| {
                    if lease_lost() {
                        return false;
                    }
                    if closed.contains(&partition.month()) {
                        match cloudbill_columnar::Partition::decode(partition.as_bytes())
                            .and_then(|p| p.daily_totals())
                        {
                            Ok(totals) => {
                                for (day, currency, total) in totals {
                                    *held.entry((day, currency)).or_default() += total;
                                }
                            }
                            Err(e) => failed = Some(e),
                        }
                        return failed.is_none();
                    }
                    receiver_gone = tx.blocking_send(Chunk::Partition(partition)).is_err();
                    !receiver_gone
                },
            )?;
            if let Some(e) = failed {
                return Err(ServiceError::Internal(format!(
                    "a closed month's partition: {e}"
                )));
            }
            // Checked last, before the commit: a lost lease means another process may be
            // writing this account, so nothing of this import is kept.
            if lease_lost() {
                return Err(ServiceError::Conflict(format!(
                    "the import of account {account_name} lost its lease to another process; nothing was written (import it again)"
                )));
            }
            if !receiver_gone {
                // A receiver gone has failed already; the store's error says why.
                let _ = tx.blocking_send(Chunk::End);
            }
            Ok((summary, held))
        });
        let written = self
            .cost_store()
            .replace_window_streamed(domain, account.id, job, options.window, &mut rx)
            .await;
        drop(rx);
        let read = producer
            .await
            .map_err(|e| ServiceError::Invalid(format!("import task failed: {e}")))?;
        // The producer's error explains a failed stream better than the store's.
        match (written, read) {
            (Ok(outcome), Ok((summary, held))) => Ok((outcome, summary, held)),
            (_, Err(e)) => Err(e),
            (Err(e), Ok(_)) => Err(ServiceError::from(e)),
        }
    }

    /// The stored records of `range` (optionally only of `projects`, by name or id), with
    /// account and project names, for a FOCUS export. Admins see everything; project members
    /// must name their projects.
    pub async fn export(
        &self,
        p: &Principal,
        range: DateRange,
        projects: &[String],
    ) -> Result<Vec<ExportedRecord>, ServiceError> {
        let scope = self.export_scope(p, projects).await?;
        let records = self
            .cost_store()
            .cost_records(self.domain_id(), range, None)
            .await?;
        let mut out = Vec::with_capacity(records.len());
        out.extend(records.into_iter().filter_map(|r| scope.named(r)));
        Ok(out)
    }

    /// Writes the records of `range` (optionally only of `projects`) as a FOCUS 1.2 file
    /// (CSV or Parquet) to `out`; returns how many records were written. Same access rules
    /// as [`Billing::export`].
    pub async fn export_focus(
        &self,
        p: &Principal,
        range: DateRange,
        projects: &[String],
        format: cloudbill_focus::ExportFormat,
        out: impl std::io::Write + Send,
    ) -> Result<usize, ServiceError> {
        self.export_focus_where(p, range, projects, &ExportFilters::new(), format, out, None)
            .await
    }

    /// [`Billing::export_focus`] of the records that also pass `filters` (report keys →
    /// accepted values, as in a report query; `project_group` is not one: name projects),
    /// stopped with [`ServiceError::DeadlinePassed`] once `deadline` passes.
    ///
    /// Memory stays bounded whatever the export's size: the stored partitions are read twice,
    /// one at a time — first for the plan (the columns some row has a value in, each decimal
    /// column's scale), then to write their rows (CSV as they come, Parquet in row groups).
    #[allow(clippy::too_many_arguments)] // One export's request, as the API and CLI give it.
    pub async fn export_focus_where(
        &self,
        p: &Principal,
        range: DateRange,
        projects: &[String],
        filters: &ExportFilters,
        format: cloudbill_focus::ExportFormat,
        out: impl std::io::Write + Send,
        deadline: Option<std::time::Instant>,
    ) -> Result<usize, ServiceError> {
        if filters.contains_key(&GroupKey::ProjectGroup) {
            return Err(ServiceError::Invalid(
                "an export takes projects, not project groups: name the projects".into(),
            ));
        }
        let scope = self.export_scope(p, projects).await?;
        let mut plan = cloudbill_focus::ExportPlan::new();
        self.each_export_batch(&scope, range, filters, deadline, |rows| plan.observe(rows))
            .await?;
        let write_failed = |e: std::io::Error| ServiceError::Write(e.to_string());
        let mut writer =
            cloudbill_focus::FocusWriter::new(format, out, &plan).map_err(write_failed)?;
        self.each_export_batch(&scope, range, filters, deadline, |rows| writer.write(rows))
            .await?;
        let written = writer.written();
        writer.finish().map_err(write_failed)?;
        Ok(usize::try_from(written).unwrap_or(usize::MAX))
    }

    /// What an export may show: the projects asked for (checked against `p`), every account's
    /// name and project history, the project names and the closed months.
    async fn export_scope(
        &self,
        p: &Principal,
        projects: &[String],
    ) -> Result<ExportScope, ServiceError> {
        self.require_billing().await?;
        let mut wanted = Vec::new();
        for key in projects {
            wanted.push(self.project(p, key).await?.id);
        }
        if wanted.is_empty() {
            if let Principal::ProjectMember { .. } = p {
                return Err(ServiceError::Forbidden(
                    "exporting the whole domain is for domain admins; name one of your projects"
                        .into(),
                ));
            }
        }
        let accounts = self.catalog_store().accounts(self.domain_id()).await?;
        let histories = self
            .catalog_store()
            .assignment_histories(self.domain_id())
            .await?;
        Ok(ExportScope {
            wanted,
            accounts: accounts
                .iter()
                .map(|a| {
                    let history = histories.get(&a.id).cloned().unwrap_or_default();
                    (a.id, (a.name.to_string(), history))
                })
                .collect(),
            projects: self
                .catalog_store()
                .projects(self.domain_id())
                .await?
                .into_iter()
                .map(|x| (x.id, x.name.to_string()))
                .collect(),
            closed: self.closed_months().await?,
        })
    }

    /// Calls `f` with the exported rows of each stored partition of `range` in turn (one
    /// partition's records in memory at a time).
    async fn each_export_batch(
        &self,
        scope: &ExportScope,
        range: DateRange,
        filters: &ExportFilters,
        deadline: Option<std::time::Instant>,
        mut f: impl FnMut(&[cloudbill_focus::ExportRow<'_>]) -> std::io::Result<()> + Send,
    ) -> Result<(), ServiceError> {
        let domain = self.domain_id();
        let mut failure: Option<ServiceError> = None;
        let mut visit = |account: cloudbill_core::AccountId, blob: &[u8]| -> bool {
            if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
                failure = Some(ServiceError::DeadlinePassed(
                    "the export took longer than the request may and was stopped; export a \
                     shorter range or fewer projects, or use the CLI"
                        .into(),
                ));
                return false;
            }
            match export_batch(scope, domain, account, blob, range, filters) {
                Ok(records) => {
                    let rows: Vec<cloudbill_focus::ExportRow<'_>> = records
                        .iter()
                        .map(|r| cloudbill_focus::ExportRow {
                            record: &r.record,
                            account_name: &r.account_name,
                            project_name: &r.project_name,
                        })
                        .collect();
                    if let Err(e) = f(&rows) {
                        failure = Some(ServiceError::Write(e.to_string()));
                        return false;
                    }
                    true
                }
                Err(e) => {
                    failure = Some(e);
                    false
                }
            }
        };
        self.cost_store()
            .for_each_partition(domain, Some(range), &mut visit)
            .await?;
        failure.map_or(Ok(()), Err)
    }
}

/// What an export may show ([`Billing::export_scope`]).
struct ExportScope {
    /// The projects asked for (none: every project).
    wanted: Vec<cloudbill_core::ProjectId>,
    /// Each account's name and project history.
    accounts: std::collections::HashMap<
        cloudbill_core::AccountId,
        (String, Vec<cloudbill_core::Assignment>),
    >,
    /// Project names.
    projects: std::collections::HashMap<cloudbill_core::ProjectId, String>,
    /// Closed months (first days).
    closed: std::collections::BTreeSet<cloudbill_core::NaiveDate>,
}

impl ExportScope {
    /// `record` with its account's and project's names, or `None` when its project on its
    /// day is not one of those asked for.
    fn named(&self, record: cloudbill_core::CostRecord) -> Option<ExportedRecord> {
        let (account_name, history) = self
            .accounts
            .get(&record.service_account)
            .map_or((String::new(), &[][..]), |(n, h)| (n.clone(), h.as_slice()));
        let project = ServiceAccount::project_on(history, record.date);
        if !self.wanted.is_empty() && !project.is_some_and(|p| self.wanted.contains(&p)) {
            return None;
        }
        let project_name = project
            .and_then(|id| self.projects.get(&id))
            .cloned()
            .unwrap_or_default();
        Some(ExportedRecord {
            record,
            account_name,
            project_name,
        })
    }
}

/// The exported records of one stored partition: in `range`, of the wanted projects on their
/// day, passing `filters`, named, and marked with their month's status when months are closed.
fn export_batch(
    scope: &ExportScope,
    domain: cloudbill_core::DomainId,
    account: cloudbill_core::AccountId,
    blob: &[u8],
    range: DateRange,
    filters: &ExportFilters,
) -> Result<Vec<ExportedRecord>, ServiceError> {
    let corrupt = |e: cloudbill_core::ValidationError| {
        ServiceError::Internal(format!("a stored partition is unreadable: {e}"))
    };
    let part = cloudbill_columnar::Partition::decode(blob).map_err(corrupt)?;
    let mut out = Vec::new();
    for mut record in part.records(domain, account).map_err(corrupt)? {
        if !range.contains(record.date) {
            continue;
        }
        if !scope.closed.is_empty() {
            // Closed billing months are marked, so a consumer knows which rows will not move
            // (docs/CURRENCY.md: FOCUS has no period status column before 1.4, hence an x_ one).
            let month = chrono::Datelike::with_day(&record.date, 1).unwrap_or(record.date);
            let status = if scope.closed.contains(&month) {
                "Closed"
            } else {
                "Open"
            };
            record
                .extensions
                .insert(BILLING_PERIOD_STATUS.to_owned(), status.to_owned());
        }
        let Some(exported) = scope.named(record) else {
            continue;
        };
        let passes = filters.iter().all(|(key, values)| {
            values.iter().any(|v| {
                *v == value_of(key, &exported)
                    || (*key == GroupKey::ServiceAccount
                        && *v == exported.record.service_account.to_string())
            })
        });
        if passes {
            out.push(exported);
        }
    }
    Ok(out)
}

/// The column a FOCUS export marks each row's billing month with (`Closed` or `Open`) when the
/// domain has closed months.
pub const BILLING_PERIOD_STATUS: &str = "x_BillingPeriodStatus";

/// Report keys and their accepted values, for an export.
pub type ExportFilters = std::collections::BTreeMap<GroupKey, Vec<String>>;

/// A record's value of a report key, as a report groups it (names for accounts and projects;
/// [`NO_VALUE`] for none).
fn value_of(key: &GroupKey, r: &ExportedRecord) -> String {
    let rec = &r.record;
    let or_none = |v: Option<&String>| v.cloned().unwrap_or_else(|| NO_VALUE.to_owned());
    match key {
        GroupKey::Provider => rec.provider.as_str().to_owned(),
        GroupKey::Project => r.project_name.clone(),
        GroupKey::ProjectGroup => NO_VALUE.to_owned(),
        GroupKey::ServiceAccount => r.account_name.clone(),
        GroupKey::CloudAccount => rec.cloud_account.clone(),
        GroupKey::Region => rec.region.clone(),
        GroupKey::Service => rec.service.clone(),
        GroupKey::UsageType => rec.usage_type.clone(),
        GroupKey::InstanceType => or_none(rec.instance_type.as_ref()),
        GroupKey::Currency => rec.currency().to_string(),
        GroupKey::ChargeCategory => rec.charge_category.as_str().to_owned(),
        GroupKey::Attribute(a) => or_none(rec.attributes.get(a)),
        GroupKey::Tag(t) => or_none(rec.tags.get(t.key())),
    }
}
