//! The validation error shared by every constructor in this crate.

/// A value handed to a constructor was not valid; the message names the value and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    /// A name was empty after trimming.
    #[error("{what} must not be empty")]
    Empty {
        /// What kind of name it was ("project name", "account name", …).
        what: &'static str,
    },
    /// A name was longer than allowed.
    #[error("{what} {value:?} is too long ({len} characters, at most {max})")]
    TooLong {
        /// What kind of value it was.
        what: &'static str,
        /// The offending value.
        value: String,
        /// Its length in characters.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A name contained a control character.
    #[error("{what} {value:?} contains a control character")]
    ControlCharacter {
        /// What kind of value it was.
        what: &'static str,
        /// The offending value.
        value: String,
    },
    /// A name parsed as an identifier (ids always win in lookups, so such a name could never
    /// be looked up by itself and could shadow another object's id).
    #[error("{what} {value:?} has the form of an id; choose a name that is not a UUID")]
    LooksLikeId {
        /// What kind of name it was.
        what: &'static str,
        /// The offending value.
        value: String,
    },
    /// A currency code is not an active ISO 4217 code.
    #[error("{0:?} is not an ISO 4217 currency code")]
    Currency(String),
    /// Two amounts of different currencies were combined.
    #[error("cannot add {left} and {right} amounts: different currencies are never summed")]
    CurrencyMismatch {
        /// Currency of the left operand.
        left: String,
        /// Currency of the right operand.
        right: String,
    },
    /// A decimal amount could not be parsed exactly.
    #[error("{value:?} is not an exact decimal amount: {reason}")]
    Decimal {
        /// The offending text.
        value: String,
        /// Why it was rejected.
        reason: String,
    },
    /// Arithmetic on amounts left the exact decimal range (about ±7.9 × 10^28).
    #[error("amount out of range: {0} does not fit an exact decimal (at most about ±7.9e28)")]
    Overflow(String),
    /// A date could not be parsed.
    #[error("{value:?} is not a date (expected YYYY-MM-DD)")]
    Date {
        /// The offending text.
        value: String,
    },
    /// A day outside the days cloudbill handles.
    #[error("{day} is outside the days cloudbill handles (1970-01-01 to 2099-12-31)")]
    DayOutOfRange {
        /// The day.
        day: chrono::NaiveDate,
    },
    /// A date range was empty or reversed.
    #[error("end {end} must be after start {start} (ranges are start-inclusive, end-exclusive)")]
    EmptyRange {
        /// Start of the range.
        start: chrono::NaiveDate,
        /// End of the range.
        end: chrono::NaiveDate,
    },
    /// An unknown granularity.
    #[error("{0:?} is not a granularity (expected DAILY, MONTHLY or YEARLY)")]
    Granularity(String),
    /// An identifier could not be parsed.
    #[error("{value:?} is not a valid {what} id")]
    Id {
        /// What kind of id.
        what: &'static str,
        /// The offending text.
        value: String,
    },
    /// An enumerated value was not one of the allowed ones.
    #[error("{value:?} is not a valid {what} (expected one of: {expected})")]
    Unknown {
        /// What kind of value.
        what: &'static str,
        /// The offending text.
        value: String,
        /// The accepted values, comma separated.
        expected: &'static str,
    },
    /// A provider endpoint was missing or not an http(s) URL.
    #[error("endpoint {value:?} is not valid: {reason}")]
    Endpoint {
        /// The offending text.
        value: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A budget, threshold or channel setting was not valid.
    #[error("{what} {value:?} is not valid: {reason}")]
    Setting {
        /// What it was ("threshold", "budget amount", "webhook URL", …).
        what: &'static str,
        /// The offending text.
        value: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A credential field was missing or malformed.
    #[error("credential {field} is not valid: {reason}")]
    Credential {
        /// Which field (account, email, key).
        field: &'static str,
        /// Why it was rejected.
        reason: String,
    },
}
