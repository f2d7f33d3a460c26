//! The storage error.

use cloudbill_core::ValidationError;

/// What went wrong in a store call.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The thing asked for does not exist.
    #[error("{what} {key} not found")]
    NotFound {
        /// What kind of thing ("project", "service account", …).
        what: &'static str,
        /// The id or name asked for.
        key: String,
    },
    /// A uniqueness or reference rule was broken (duplicate name, project still in use, …).
    #[error("{0}")]
    Conflict(String),
    /// A value handed to the store was not acceptable; nothing was written.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// A record did not belong to the window or account being written; nothing was written.
    #[error("record rejected: {0}")]
    RecordRejected(String),
    /// Credentials could not be sealed or opened (wrong `CLOUDBILL_SECRET_KEY`?).
    #[error("credential encryption: {0}")]
    Crypto(String),
    /// The key given (named: the key file or the variable) does not open the credentials this
    /// database holds.
    #[error(
        "{0} does not open the credentials stored in this database (they were sealed with \
         another key); restore the right key"
    )]
    WrongKey(String),
    /// The key file (named) is missing, but the database already holds sealed credentials: a
    /// new key is never created for it (it could open nothing, and later writes would need
    /// two keys).
    #[error(
        "the key file {0} is missing, but this database holds credentials sealed with a key: \
         restore that file, or set CLOUDBILL_SECRET_KEY to the key (a new key is never created \
         for such a database)"
    )]
    KeyMissing(String),
    /// A command that only reads found no database to read.
    #[error("no database at {0} (a command that changes something creates it)")]
    NoDatabase(String),
    /// Stored data could not be read back as a valid value.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The secret key file could not be read or created.
    #[error("secret key file {path}: {source}")]
    KeyFile {
        /// The key file.
        path: String,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
    /// The database URL was not understood.
    #[error("unsupported database URL {0:?} (expected sqlite://PATH, postgres://… or memory:)")]
    Url(String),
    /// The database failed.
    #[error("database error: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        StoreError::Backend(Box::new(err))
    }
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(err: sqlx::migrate::MigrateError) -> Self {
        StoreError::Backend(Box::new(err))
    }
}

/// The catalog's rules, stated once for every adapter: each adapter enforces them (SQL with
/// constraints and a compare-and-set, the memory store with its checks) and reports a broken
/// one with these errors, so every adapter says the same thing.
impl StoreError {
    /// Names are unique per domain: `what` named `name` already exists.
    pub(crate) fn exists(what: &str, name: &cloudbill_core::Name) -> Self {
        StoreError::Conflict(format!("{what} {:?} already exists", name.as_str()))
    }

    /// A project is deleted only when no account was ever assigned to it.
    pub(crate) fn project_in_use() -> Self {
        StoreError::Conflict(
            "project has billing accounts assigned (now or in its history); move or remove them \
             first"
                .into(),
        )
    }

    /// An account's history is replaced only if it is still the history the move was based
    /// on (`set_assignments`' compare-and-set).
    pub(crate) fn moved_meanwhile() -> Self {
        StoreError::Conflict("the account was moved meanwhile; try again".into())
    }
}
