//! Query errors.

/// Why a report query was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// A group-by or filter key that does not exist.
    #[error("unknown key {key:?} (expected one of: {expected})")]
    UnknownKey {
        /// The key given.
        key: String,
        /// The keys accepted.
        expected: &'static str,
    },
    /// A range longer than allowed.
    #[error("range of {days} days is longer than the maximum of {max} days")]
    RangeTooLong {
        /// Days asked for.
        days: i64,
        /// The limit.
        max: i64,
    },
    /// `limit` was 0.
    #[error("limit must be at least 1")]
    ZeroLimit,
    /// A filter named a project, group or account that does not exist.
    #[error("unknown {what} {value:?} in filter")]
    UnknownFilterValue {
        /// project, project_group or service_account.
        what: &'static str,
        /// The value given.
        value: String,
    },
    /// Stored partitions could not be read.
    #[error("stored cost data is unreadable: {0}")]
    Corrupt(String),
    /// The engine was loaded for other queries ([`crate::EngineLoader::only`]) and left out a
    /// dimension this one needs: a program error, never a user's.
    #[error("the engine was loaded without the {0} dimension")]
    NotLoaded(String),
    /// A sum left the exact range.
    #[error("sum overflow: amounts too large to add exactly")]
    Overflow,
}
