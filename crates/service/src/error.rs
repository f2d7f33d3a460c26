//! The service error: what went wrong, in words a user can act on.

use cloudbill_aggregate::QueryError;
use cloudbill_core::ValidationError;
use cloudbill_provider::ProviderError;
use cloudbill_store::StoreError;

use crate::Hint;

/// Why a service call failed. Every variant's message names the value and what to do.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Billing is off for the domain ([`Hint::EnableBilling`]).
    #[error("billing is not enabled for domain {domain:?}")]
    BillingDisabled {
        /// The domain name.
        domain: String,
    },
    /// Another error, with what the caller can do about it.
    #[error("{error}; {}", hint.describe())]
    Hinted {
        /// The error.
        error: Box<ServiceError>,
        /// The remedy.
        hint: Hint,
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
    /// A program error (a task that panicked or was cancelled): never the caller's fault.
    #[error("internal error: {0}")]
    Internal(String),
    /// Output could not be written (an export's destination).
    #[error("{0}")]
    Write(String),
    /// A notification receiver refused or did not answer a message sent at once (a channel's
    /// test).
    #[error("{0}")]
    Receiver(String),
    /// The work took longer than its request may and was stopped (nothing of it is kept).
    #[error("{0}")]
    DeadlinePassed(String),
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

impl ServiceError {
    /// This error with a remedy attached.
    #[must_use]
    pub fn with_hint(self, hint: Hint) -> Self {
        ServiceError::Hinted {
            error: Box::new(self),
            hint,
        }
    }

    /// The error without its remedy, and the remedy (also the implied one of
    /// `BillingDisabled`).
    pub fn parts(&self) -> (&ServiceError, Option<Hint>) {
        match self {
            ServiceError::Hinted { error, hint } => (error, Some(hint.clone())),
            ServiceError::BillingDisabled { .. } => (self, Some(Hint::EnableBilling)),
            other => (other, None),
        }
    }
}
