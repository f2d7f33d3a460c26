//! Provider errors, split by what the caller should do about them.

use std::time::Duration;

/// Why a provider call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// The credentials were refused (401/403). Retrying will not help.
    #[error("invalid {provider} credentials for account {account}")]
    Unauthorized {
        /// Provider display name.
        provider: &'static str,
        /// The cloud account the credentials were for (or the client id when none).
        account: String,
    },
    /// Still rate-limited after every attempt.
    #[error(
        "rate limited by {provider} after {attempts} attempts (last Retry-After {retry_after:?})"
    )]
    RateLimited {
        /// Provider display name.
        provider: &'static str,
        /// Attempts made.
        attempts: u32,
        /// The last Retry-After the provider sent.
        retry_after: Option<Duration>,
    },
    /// The provider kept failing (5xx, timeouts, dropped connections) after every attempt.
    #[error("{provider} unavailable after {attempts} attempts: {last_error}")]
    Unavailable {
        /// Provider display name.
        provider: &'static str,
        /// Attempts made.
        attempts: u32,
        /// The last failure seen.
        last_error: String,
    },
    /// The provider rejected our request (400 and other 4xx): a bug on our side.
    #[error("{provider} rejected the request with HTTP {status}: {body}")]
    Rejected {
        /// Provider display name.
        provider: &'static str,
        /// HTTP status.
        status: u16,
        /// The response body, truncated.
        body: String,
    },
    /// The provider answered with data we cannot read.
    #[error("{provider} sent malformed data: {detail}")]
    InvalidResponse {
        /// Provider display name.
        provider: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// The request was not valid before it was sent (e.g. a window too long).
    #[error("invalid provider request: {0}")]
    InvalidRequest(String),
    /// No implementation is registered for this provider.
    #[error("provider {0} is not available in this build")]
    NotRegistered(String),
}

impl ProviderError {
    /// Whether the error means the credentials are bad.
    pub fn is_unauthorized(&self) -> bool {
        matches!(self, ProviderError::Unauthorized { .. })
    }
}
