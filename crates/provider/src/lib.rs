//! The billing-provider abstraction: what every source of cost data implements.
//!
//! A provider declares itself once — its kind, a title, and the settings an account gives it
//! ([`ProviderSpec`]: each setting's name, description, whether it is required or a secret,
//! how it is checked) — verifies an account's settings, and fetches the cost records of one
//! account for one window of at most [`BillingProvider::max_window_days`] days. Callers (the
//! sync service) split a long range into such windows and write each one atomically, so a
//! year of rows never sits in memory at once. Pagination, retries and rate limits stay inside
//! the implementation. The CLI, the API and its document are generic over the spec: adding a
//! provider is its crate and one registration line in the composition root.
//!
//! **Architecture invariant:** this crate knows no wire format and no HTTP client; it depends
//! only on `cloudbill-core` (and tokio's channel, the streaming sink).

mod error;
mod given;
mod registry;

use async_trait::async_trait;
use cloudbill_core::{
    AccountId, CostRecord, DateRange, DomainId, ProviderKind, ProviderSpec, Settings,
    ValidationError,
};

pub use error::ProviderError;
pub use given::{missing, Given};
pub use registry::ProviderRegistry;

/// Whose records a fetch produces: stamped on every returned [`CostRecord`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchScope {
    /// The domain.
    pub domain: DomainId,
    /// The billing service account.
    pub service_account: AccountId,
}

/// A source of daily cost records.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait BillingProvider: Send + Sync {
    /// What this provider is and what an account gives it.
    fn spec(&self) -> &'static ProviderSpec;

    /// Which provider this is (its spec's kind).
    fn kind(&self) -> ProviderKind {
        self.spec().kind
    }

    /// The longest window [`BillingProvider::fetch`] accepts, in days.
    fn max_window_days(&self) -> u32;

    /// How a sync cuts `range` into the windows it fetches and writes one at a time. The
    /// default: consecutive windows of [`BillingProvider::max_window_days`]. A provider that
    /// reads whole billing periods cuts at month boundaries ([`DateRange::months`]), so each
    /// period is read once and the same windows recur from one sync to the next.
    fn windows(&self, range: DateRange) -> Vec<DateRange> {
        range.windows(self.max_window_days())
    }

    /// An account's settings as this provider keeps them, after the spec's checks passed:
    /// defaults filled in (a deployment's endpoint), rules between settings checked. The
    /// default keeps them as they are.
    ///
    /// # Errors
    /// Settings that do not go together, or a default that is missing.
    fn prepare(&self, settings: Settings) -> Result<Settings, ValidationError> {
        Ok(settings)
    }

    /// Checks the account's settings against the provider and returns the cloud accounts
    /// they can read. Bad credentials are [`ProviderError::Unauthorized`].
    async fn verify(&self, settings: &Settings) -> Result<Vec<String>, ProviderError>;

    /// Every cost record of `window` (at most `max_window_days` days) for the account the
    /// settings name, converted and exact.
    async fn fetch(
        &self,
        settings: &Settings,
        scope: FetchScope,
        window: DateRange,
    ) -> Result<Vec<CostRecord>, ProviderError>;

    /// What the source holds for `window` now, as a short token that changes whenever its
    /// records would (an export's manifests, a table's last export time), read cheaply and
    /// before the records: a caller that wrote the window from the same token need not read
    /// it again. `None` (the default): the source cannot tell, the window is always read.
    async fn revision(
        &self,
        settings: &Settings,
        window: DateRange,
    ) -> Result<Option<String>, ProviderError> {
        let _ = (settings, window);
        Ok(None)
    }

    /// [`BillingProvider::fetch`] in chunks: the window's records are handed to `sink` as
    /// they are read, so a window of any size passes through bounded memory. A closed sink
    /// means the writer stopped (its own error says why): stop reading. The default fetches
    /// the window whole and sends it as one chunk.
    async fn fetch_into(
        &self,
        settings: &Settings,
        scope: FetchScope,
        window: DateRange,
        sink: RecordSink,
    ) -> Result<(), ProviderError> {
        let records = self.fetch(settings, scope, window).await?;
        // A closed sink: the writer stopped and reports why.
        let _ = sink.send(records).await;
        Ok(())
    }
}

/// Refuses a window longer than `max` days (a provider's [`BillingProvider::max_window_days`]).
///
/// # Errors
/// [`ProviderError::InvalidRequest`] naming both lengths.
pub fn check_window(window: DateRange, max: u32) -> Result<(), ProviderError> {
    if window.days() > i64::from(max) {
        return Err(ProviderError::InvalidRequest(format!(
            "a window of {} days (at most {max})",
            window.days()
        )));
    }
    Ok(())
}

/// Where [`BillingProvider::fetch_into`] sends a window's records, chunk by chunk (a bounded
/// channel: a slow writer slows the reader).
pub type RecordSink = tokio::sync::mpsc::Sender<Vec<CostRecord>>;

/// How many records a streaming provider puts in one chunk.
pub const CHUNK_RECORDS: usize = 8192;
