//! The service error: what went wrong, in words a user can act on.

use cloudbill_aggregate::QueryError;
use cloudbill_core::ValidationError;
use cloudbill_provider::ProviderError;
use cloudbill_store::StoreError;

/// Why a service call failed. Every variant's message names the value and what to do.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Billing is off for the domain.
    #[error("billing is not enabled for domain {domain:?}; an admin can turn it on with `cloudbill billing enable`")]
    BillingDisabled {
        /// The domain name.
        domain: String,
    },
    /// No valid credentials were presented.
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),
    /// The principal may not do this.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// Something named does not exist.
    #[error("{what} {key:?} not found")]
    NotFound {
        /// Kind of thing.
        what: &'static str,
        /// The name or id given.
        key: String,
    },
    /// A duplicate or a rule about existing data.
    #[error("{0}")]
    Conflict(String),
    /// Input that is not valid.
    #[error("{0}")]
    Invalid(String),
    /// A value failed validation.
    #[error(transparent)]
    Validation(#[from] ValidationError),
    /// A report query was refused.
    #[error(transparent)]
    Query(#[from] QueryError),
    /// The provider failed.
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// A bill file could not be imported; nothing was written.
    #[error(transparent)]
    Import(#[from] cloudbill_focus::ImportError),
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for ServiceError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound { what, key } => ServiceError::NotFound { what, key },
            StoreError::Conflict(msg) => ServiceError::Conflict(msg),
            StoreError::Invalid(v) => ServiceError::Validation(v),
            other => ServiceError::Store(other),
        }
    }
}
