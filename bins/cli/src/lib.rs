//! The `cloudbill` command line: flag definitions plus glue. Behaviour lives in
//! `cloudbill-service`; this crate parses, picks adapters and renders.

// clap turns doc comments into help text; subcommand plumbing needs none of its own.
#[allow(missing_docs)]
pub mod args;
mod commands;
mod demo;
mod files;
mod progress;
mod render;

use std::io::Write;
use std::sync::Arc;

use cloudbill_hyperbilling::{ClientConfig, Hyperbilling};
use cloudbill_provider::ProviderRegistry;
use cloudbill_service::{Billing, BillingConfig, Hint, ServiceError};
use cloudbill_store::{OpenOptions, SECRET_KEY_ENV};
use zeroize::Zeroizing;

pub use args::Cli;

/// Environment variable naming the default Hyperbilling endpoint.
pub const ENDPOINT_ENV: &str = "CLOUDBILL_HYPERBILLING_ENDPOINT";

/// Why a command failed; decides the exit status.
#[derive(Debug)]
pub enum CliError {
    /// Bad input (exit 2).
    Usage(String),
    /// Something failed (exit 1).
    Failure(String),
    /// The command ran and printed its output, but part of it failed (exit 1).
    Partial,
}

impl From<ServiceError> for CliError {
    fn from(err: ServiceError) -> Self {
        let (inner, hint) = err.parts();
        let message = match hint {
            Some(hint) => format!("{inner}; {}", command_for(&hint)),
            None => inner.to_string(),
        };
        match inner {
            ServiceError::Invalid(_)
            | ServiceError::Validation(_)
            | ServiceError::Query(_)
            | ServiceError::Import(_) => CliError::Usage(message),
            ServiceError::Store(store) => {
                CliError::Failure(format!("{message}{}", source_chain(store)))
            }
            _ => CliError::Failure(message),
        }
    }
}

/// A service remedy as the command (or flag) that carries it out.
fn command_for(hint: &Hint) -> String {
    match hint {
        Hint::EnableBilling => "an admin can turn it on with `cloudbill billing enable`".into(),
        Hint::EnableProvider(p) => format!("enable it with `cloudbill provider enable {p}`"),
        Hint::EnableAccount(a) => format!("enable it with `cloudbill account enable {a}`"),
        Hint::NameProject => "give --project NAME".into(),
        Hint::GiveCredentials => "give --account, --email and --key (or --key-stdin)".into(),
        Hint::UseFileAccount => "bills are imported into an account of provider file \
             (cloudbill account add --provider file --name NAME --project PROJECT)"
            .into(),
        Hint::ImportBill => "fill it with `cloudbill import focus|cur FILE --account NAME`".into(),
        Hint::DropProject => "drop --project".into(),
    }
}

fn source_chain(err: &dyn std::error::Error) -> String {
    let mut out = String::new();
    let mut source = err.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// The database URL: the flag/env value, or a SQLite file in the data directory.
pub fn database_url(flag: Option<&str>) -> String {
    match flag.filter(|u| !u.trim().is_empty()) {
        Some(url) => url.to_owned(),
        None => format!(
            "sqlite://{}",
            cloudbill_store::default_data_dir()
                .join("cloudbill.db")
                .display()
        ),
    }
}

/// The provider implementations this binary ships.
pub fn registry() -> Result<ProviderRegistry, CliError> {
    let hyperbilling = Hyperbilling::new(ClientConfig::from_env())
        .map_err(|e| CliError::Failure(e.to_string()))?;
    Ok(ProviderRegistry::new().with(Arc::new(hyperbilling)))
}

/// How to open the store at `url`; `create` off for commands that only read.
pub fn open_options(url: &str, create: bool) -> OpenOptions {
    OpenOptions {
        url: url.to_owned(),
        secret_key: std::env::var(SECRET_KEY_ENV)
            .ok()
            .filter(|k| !k.is_empty())
            .map(Zeroizing::new),
        key_dir: Some(cloudbill_store::default_data_dir()),
        create,
    }
}

/// The error of a store that would not open, the URL's password left out.
pub fn open_failed(url: &str, e: &cloudbill_store::StoreError) -> CliError {
    CliError::Failure(format!(
        "cannot open database {}: {e}{}",
        cloudbill_store::redacted_url(url),
        source_chain(e)
    ))
}

/// Opens the billing service for `url` and `domain`; with `create` off a missing database is
/// an error instead of a new file.
pub async fn open(
    url: &str,
    domain: &str,
    config: BillingConfig,
    create: bool,
) -> Result<Billing, CliError> {
    let store = cloudbill_store::open(&open_options(url, create))
        .await
        .map_err(|e| open_failed(url, &e))?;
    Ok(Billing::open(store, registry()?, domain, config).await?)
}

/// Runs a parsed command, writing its output to `out`.
pub async fn run(cli: Cli, out: &mut dyn Write) -> Result<(), CliError> {
    commands::run(cli, out).await
}
