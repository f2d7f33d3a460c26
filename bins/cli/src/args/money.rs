//! Invoices, closed periods and exchange rates.

#[allow(clippy::wildcard_imports)]
use super::*;

#[derive(Debug, Subcommand)]
pub enum InvoiceAction {
    /// Import invoices: CSV `account,period,currency,invoice_id,total[,issuer,tax]`; every line
    /// checked before anything is stored.
    Import {
        /// The CSV file.
        file: std::path::PathBuf,
    },
    /// Add one invoice.
    Add {
        /// Account name or id.
        #[arg(long)]
        account: String,
        /// YYYY-MM.
        #[arg(long)]
        period: String,
        /// ISO 4217 code.
        #[arg(long)]
        currency: String,
        /// The provider's invoice id.
        #[arg(long)]
        invoice_id: String,
        /// The total (tax included), exact.
        #[arg(long, allow_hyphen_values = true)]
        total: String,
        /// Who issued it.
        #[arg(long)]
        issuer: Option<String>,
        /// Its tax.
        #[arg(long, allow_hyphen_values = true)]
        tax: Option<String>,
    },
    /// List invoices.
    List {
        /// Only this month, YYYY-MM.
        #[arg(long)]
        period: Option<String>,
    },
    /// Delete one invoice (a wrong one; add the right one after).
    Delete {
        /// Account name or id.
        #[arg(long)]
        account: String,
        /// YYYY-MM.
        #[arg(long)]
        period: String,
        /// ISO 4217 code.
        #[arg(long)]
        currency: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum PeriodAction {
    /// Close a month: syncs and imports keep its records and hold their restatements.
    Close {
        /// YYYY-MM.
        period: String,
    },
    /// Reopen a closed month; the next sync applies what was held.
    Reopen {
        /// YYYY-MM.
        period: String,
        /// Why (kept in the month's log).
        #[arg(long)]
        reason: String,
    },
    /// The closed months.
    List,
    /// A month: open or closed, its log, the restatements held off it.
    Show {
        /// YYYY-MM.
        period: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum FxAction {
    /// Import rates: the ECB reference-rate CSV (Date,USD,JPY,…; units per 1 EUR; N/A for
    /// none) or date,base,quote,rate. Every line is checked before anything is stored.
    Import {
        /// The CSV file.
        file: std::path::PathBuf,
        /// Name the rates' source (default: ecb, or the file's name for pairs); a fixed set
        /// is a source (`--fx-policy fixed:NAME`).
        #[arg(long)]
        source: Option<String>,
    },
    /// Set one rate: on DATE one BASE is worth RATE QUOTE.
    Set {
        /// YYYY-MM-DD.
        date: String,
        /// ISO 4217 code.
        base: String,
        /// ISO 4217 code.
        quote: String,
        /// Units of QUOTE per BASE, above 0.
        rate: String,
        /// The source (default manual); a fixed set's name.
        #[arg(long)]
        source: Option<String>,
    },
    /// List stored rates.
    List {
        /// Only this source.
        #[arg(long)]
        source: Option<String>,
    },
}
