//! Sync and import jobs: what ran, over which window, and what it changed.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::{AccountId, Currency, DateRange, DomainId, JobId};

/// What produced a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobKind {
    /// Pulled from a provider.
    Sync,
    /// Imported from a file.
    Import,
}

impl JobKind {
    /// `sync` or `import`.
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Sync => "sync",
            JobKind::Import => "import",
        }
    }
}

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Still working.
    Running,
    /// Every window was written.
    Succeeded,
    /// Nothing was written; the previous data is intact.
    Failed,
    /// Some windows were written, a later one failed.
    Partial,
}

impl JobState {
    /// `running`, `succeeded`, `failed` or `partial`.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Partial => "partial",
        }
    }

    /// Parses the text form.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "running" => Some(JobState::Running),
            "succeeded" => Some(JobState::Succeeded),
            "failed" => Some(JobState::Failed),
            "partial" => Some(JobState::Partial),
            _ => None,
        }
    }
}

/// A day whose total changed when a window was replaced: the restatement audit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangedDay {
    /// The day.
    pub date: NaiveDate,
    /// The currency of the totals.
    pub currency: Currency,
    /// The account's total for that day before the write.
    pub old_total: Decimal,
    /// The account's total for that day after the write.
    pub new_total: Decimal,
}

/// A sync or import job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncJob {
    /// Identifier.
    pub id: JobId,
    /// Owning domain.
    pub domain: DomainId,
    /// The account synced.
    pub account: AccountId,
    /// Sync or import.
    pub kind: JobKind,
    /// The date window covered.
    pub window: DateRange,
    /// Current state.
    pub state: JobState,
    /// Records written.
    pub rows: u64,
    /// Days whose totals changed versus before.
    pub changed_days: Vec<ChangedDay>,
    /// Why it failed, when it did.
    pub error: Option<String>,
    /// Start time.
    pub started_at: DateTime<Utc>,
    /// End time, once finished.
    pub finished_at: Option<DateTime<Utc>>,
}

impl SyncJob {
    /// A new job, running since `started_at`, with nothing written yet.
    pub fn running(
        domain: DomainId,
        account: AccountId,
        kind: JobKind,
        window: DateRange,
        started_at: DateTime<Utc>,
    ) -> Self {
        Self {
            id: JobId::new(),
            domain,
            account,
            kind,
            window,
            state: JobState::Running,
            rows: 0,
            changed_days: Vec::new(),
            error: None,
            started_at,
            finished_at: None,
        }
    }
}

/// A restated day of a closed period that a sync or import did not write: what the store holds
/// and what the provider or file said.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HeldDay {
    /// The job that held it.
    pub job: crate::JobId,
    /// The account.
    pub account: crate::AccountId,
    /// The day, its currency, the stored total and the new one.
    #[serde(flatten)]
    pub day: ChangedDay,
    /// When.
    pub recorded_at: chrono::DateTime<chrono::Utc>,
}

/// A close or a reopen of a billing month, kept for the audit.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PeriodChange {
    /// The month's first day.
    pub month: chrono::NaiveDate,
    /// `close` or `reopen`.
    pub action: String,
    /// Why (required to reopen).
    pub reason: Option<String>,
    /// When.
    pub at: chrono::DateTime<chrono::Utc>,
}
