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

use cloudbill_service::{Billing, BillingConfig, Hint, ServiceError};

pub use args::Cli;

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
        Hint::GiveSettings(kind) => format!(
            "`cloudbill provider show {kind}` lists its settings (give them with --setting KEY=VALUE, secrets with --secret-stdin)"
        ),
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

/// Opens the billing service for `url` and `domain` through the composition root shared with
/// the server; with `create` off a missing database is an error instead of a new file.
pub async fn open(
    url: &str,
    domain: &str,
    config: BillingConfig,
    create: bool,
) -> Result<Billing, CliError> {
    let settings = cloudbill_compose::Settings {
        database_url: url.to_owned(),
        domain: domain.to_owned(),
        create,
        config,
        providers: Vec::new(),
    };
    cloudbill_compose::open(settings)
        .await
        .map_err(|e| match e {
            cloudbill_compose::ComposeError::Service(e) => e.into(),
            other => CliError::Failure(other.to_string()),
        })
}

/// Runs a parsed command, writing its output to `out`.
pub async fn run(cli: Cli, out: &mut dyn std::io::Write) -> Result<(), CliError> {
    commands::run(cli, out).await
}
