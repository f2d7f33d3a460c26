//! The billing-provider abstraction: what every source of cost data implements.
//!
//! A provider verifies credentials, lists the cloud accounts they can read, and fetches the
//! cost records of one account for one window of at most [`BillingProvider::max_window_days`]
//! days. Callers (the sync service) split a long range into such windows and write each one
//! atomically, so a year of rows never sits in memory at once. Pagination, retries and rate
//! limits stay inside the implementation.
//!
//! **Architecture invariant:** this crate knows no wire format and no HTTP client; it depends
//! only on `cloudbill-core`.

mod error;
mod registry;

use async_trait::async_trait;
use cloudbill_core::{AccountId, CostRecord, Credentials, DateRange, DomainId, ProviderKind};

pub use error::ProviderError;
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
    /// Which provider this is.
    fn kind(&self) -> ProviderKind;

    /// The longest window [`BillingProvider::fetch`] accepts, in days.
    fn max_window_days(&self) -> u32;

    /// Checks the credentials against the provider and returns the cloud accounts they can
    /// read. Bad credentials are [`ProviderError::Unauthorized`].
    async fn verify(&self, credentials: &Credentials) -> Result<Vec<String>, ProviderError>;

    /// Every cost record of `window` (at most `max_window_days` days) for the account in
    /// `credentials` (every linked account when it is empty), converted and exact.
    async fn fetch(
        &self,
        credentials: &Credentials,
        scope: FetchScope,
        window: DateRange,
    ) -> Result<Vec<CostRecord>, ProviderError>;
}
