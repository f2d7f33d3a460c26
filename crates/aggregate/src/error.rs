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
    /// The caller stopped the query ([`crate::Engine::query_until`]).
    #[error("the query was cancelled")]
    Cancelled,
    /// The answer would hold more amounts than the caller's bound (`Query::max_cells`).
    #[error("the answer would hold at least {cells} amounts (each period's and each total of every group); at most {max} are answered at once: page it with limit and offset, or ask for a coarser granularity, a shorter range or fewer group-by keys")]
    AnswerTooLarge {
        /// Amounts the answer would hold (counted until the scan stopped: at least this many).
        cells: u64,
        /// The bound.
        max: u64,
    },
    /// A filter named a project, group or account that does not exist.
    #[error("unknown {what} {value:?} in filter")]
    UnknownFilterValue {
        /// project, project_group or service_account.
        what: &'static str,
        /// The value given.
        value: String,
    },
    /// An allocation rule names a target that no longer exists.
    #[error("allocation rule {rule:?} names {value:?}, which no longer exists: update or delete the rule")]
    AllocationTarget {
        /// The rule's name.
        rule: String,
        /// The target as the rule names it.
        value: String,
    },
    /// Stored partitions could not be read.
    #[error("stored cost data is unreadable: {0}")]
    Corrupt(String),
    /// The engine was loaded for other queries ([`crate::EngineLoader::only`]) and left out a
    /// dimension this one needs: a program error, never a user's.
    #[error("the engine was loaded without the {0} dimension")]
    NotLoaded(String),
    /// The engine holds the other cost metric ([`crate::EngineLoader::metric`]): a program
    /// error, never a user's.
    #[error("the engine holds {held} cost, the query asks for {asked}")]
    OtherMetric {
        /// The engine's metric.
        held: &'static str,
        /// The query's.
        asked: &'static str,
    },
    /// The query has more result cells than can be counted (a program limit, not the data's).
    #[error("the query has too many result cells (group-by values × periods × currencies); group by fewer keys or use a coarser granularity")]
    Overflow,
    /// An exact total of the stored data is too large for a decimal (more than 28–29
    /// significant digits): the data is valid, this query's answer cannot be written. Only
    /// queries whose result includes that total fail.
    #[error(
        "the total of {group} for {date} in {currency} is too large to represent exactly \
         (an exact decimal holds 28-29 significant digits); narrow the query with filters, a \
         shorter range or a finer group-by"
    )]
    TotalOutOfRange {
        /// The group (`key=value, …`; empty for the consolidated sum).
        group: String,
        /// The period of the total.
        date: String,
        /// Its currency.
        currency: cloudbill_core::Currency,
    },
    /// Arithmetic on the data's amounts (a forecast's fit, an anomaly's deviation, a sum of
    /// several totals) left what an exact decimal holds: only this query fails.
    #[error(
        "{what} does not fit an exact decimal (about ±7.9e28): the data holds amounts too \
         large for it; narrow the query with filters or a shorter range"
    )]
    AmountOutOfRange {
        /// What was being computed.
        what: String,
    },
}
