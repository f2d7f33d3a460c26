//! Import errors: always with the file, line and column.

use std::fmt;

/// One bad row: where and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// 1-based line of the row in the file (the header is line 1).
    pub line: u64,
    /// The column at fault.
    pub column: String,
    /// What was wrong.
    pub message: String,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.column, self.message
        )
    }
}

/// Why an import stopped. Nothing is written when it does.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// A column the format requires is absent.
    #[error("{file}: missing mandatory column {column} (the header has: {found})")]
    MissingColumn {
        /// File name.
        file: String,
        /// The missing column.
        column: &'static str,
        /// The columns present (truncated).
        found: String,
    },
    /// A row could not be mapped.
    #[error("{file}: {error}")]
    Row {
        /// File name.
        file: String,
        /// Where and why.
        error: RowError,
    },
    /// The CSV itself is broken (unbalanced quotes, wrong field count, bad UTF-8).
    #[error("{file}: line {line}: malformed CSV: {message}")]
    Csv {
        /// File name.
        file: String,
        /// Line where the reader gave up.
        line: u64,
        /// The CSV reader's message.
        message: String,
    },
    /// The file went past a documented limit (see `cloudbill_focus::limits`).
    #[error("{file}: line {line}: {message}")]
    Limit {
        /// File name.
        file: String,
        /// Line where the offending record starts.
        line: u64,
        /// Which limit.
        message: String,
    },
    /// The header is not usable (duplicate or too many columns).
    #[error("{file}: header: {message}")]
    Header {
        /// File name.
        file: String,
        /// What is wrong.
        message: String,
    },
    /// `--skip-invalid`, and no row was valid: nothing to import is a failure, not an empty
    /// success.
    #[error("{file}: every one of its {rows} rows is invalid (the first: {first})")]
    AllInvalid {
        /// File name.
        file: String,
        /// Rows read.
        rows: u64,
        /// The first bad row.
        first: RowError,
    },
    /// The file has no data rows.
    #[error("{file}: no data rows")]
    Empty {
        /// File name.
        file: String,
    },
    /// A thread reading or encoding the file failed (a bug): the import stops rather than
    /// report a bill with rows missing.
    #[error("{file}: the import stopped: {message} (nothing was written)")]
    Worker {
        /// File name.
        file: String,
        /// Which thread, and its panic message.
        message: String,
    },
}
