//! Command-line flags (clap derive). Names here are the CLI's contract.
//!
//! The command tree as a user meets it (`cloudbill --help`, the man page and the completions
//! are generated from it): `Cli` and `Command` here, each group's flags in a module of its own
//! (`catalog`, `data`, `spend`, `money`, `admin`); declarations only, no logic. The commands'
//! code lives in `commands/`, one module per group.

use std::path::PathBuf;

use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand, ValueEnum};
use cloudbill_core::{DateRange, MAX_RANGE_DAYS};

mod admin;
mod allocate;
mod catalog;
mod data;
mod money;
mod spend;

pub use admin::*;
pub use allocate::*;
pub use catalog::*;
pub use data::*;
pub use money::*;
pub use spend::*;

/// Multi-cloud billing: sync daily cost records, report per project and consolidated.
#[derive(Debug, Parser)]
#[command(name = "cloudbill", version, about, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags accepted before or after any subcommand.
#[derive(Debug, Args)]
pub struct Global {
    /// Database: sqlite://PATH or postgres://… [default: a SQLite file in the data directory]
    #[arg(
        long,
        global = true,
        env = "CLOUDBILL_DATABASE_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub database_url: Option<String>,
    /// The domain (tenant) to work in; created on first use.
    #[arg(
        long,
        global = true,
        env = "CLOUDBILL_DOMAIN",
        default_value = "default"
    )]
    pub domain: String,
    /// Output format for commands that print data.
    #[arg(long, global = true, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// More logging on stderr (-v debug, -vv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,
    /// Only errors on stderr.
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Human-readable table.
    Table,
    /// JSON (amounts as decimal strings).
    Json,
    /// CSV with a header row.
    Csv,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Turn billing on or off for the domain, or show its status.
    Billing {
        #[command(subcommand)]
        action: BillingAction,
    },
    /// List, enable or disable billing providers.
    Provider {
        #[command(subcommand)]
        action: ProviderAction,
    },
    /// Manage projects.
    Project {
        #[command(subcommand)]
        action: ProjectAction,
    },
    /// Manage project groups.
    #[command(name = "project-group")]
    ProjectGroup {
        #[command(subcommand)]
        action: GroupAction,
    },
    /// Manage billing accounts.
    Account {
        #[command(subcommand)]
        action: AccountAction,
    },
    /// Pull cost data from the providers.
    Sync(SyncArgs),
    /// Sync history: outcome, rows and restated days.
    Jobs(JobsArgs),
    /// Cost report: per project, per account, consolidated, …
    Report(ReportArgs),
    /// Tag keys of the costs in a range, with their values and how many records carry each
    /// (group a report by one with --group-by tag:KEY).
    Tags(TagsArgs),
    /// Period-end spend forecast with an 80% interval, from the complete days' history
    /// (method: docs/FORECAST.md).
    Forecast(ForecastArgs),
    /// Cost anomalies of a range, each explained by the values that moved most
    /// (method: docs/ANOMALIES.md).
    Anomalies(AnomaliesArgs),
    /// Import a bill file (FOCUS or AWS CUR CSV, optionally .gz) into a `file` account.
    Import {
        #[command(subcommand)]
        format: ImportFormat,
    },
    /// Export stored cost records as a FOCUS 1.2 file (CSV, or Parquet for FILE.parquet).
    Export {
        #[command(subcommand)]
        format: ExportFormat,
    },
    /// Shared-cost allocation rules: split what nobody owns alone (a shared project, support,
    /// untagged spend) across projects, groups, accounts or tag values; see reports with
    /// --allocated.
    Allocation {
        #[command(subcommand)]
        action: AllocationAction,
    },
    /// Anomaly monitors and the anomalies they keep: create monitors, acknowledge or ignore.
    Anomaly {
        #[command(subcommand)]
        action: AnomalyAction,
    },
    /// Notification channels for budgets: signed webhooks, Slack, e-mail.
    Channel {
        #[command(subcommand)]
        action: ChannelAction,
    },
    /// Budgets: an amount per period, thresholds on actual and forecast spend, notifications.
    Budget {
        #[command(subcommand)]
        action: BudgetAction,
    },
    /// The notification outbox: deliver what is due, read the delivery log.
    Notify {
        #[command(subcommand)]
        action: NotifyAction,
    },
    /// Exchange rates for reports in one currency: import the ECB's CSV or pairs, set, list.
    Fx {
        #[command(subcommand)]
        action: FxAction,
    },
    /// Provider invoices, to reconcile the stored records with.
    Invoice {
        #[command(subcommand)]
        action: InvoiceAction,
    },
    /// A month's invoices against the stored BilledCost, per account and currency, exactly.
    Reconcile {
        /// The month, YYYY-MM.
        #[arg(long, value_name = "YYYY-MM")]
        period: String,
    },
    /// Closed billing months: close, reopen (with a reason), list, show (log and held
    /// restatements).
    Period {
        #[command(subcommand)]
        action: PeriodAction,
    },
    /// Domains (tenants) one server serves: list, create (prints the new domain's first admin
    /// token), disable (its tokens refused, scheduled syncs skipped; data kept), enable.
    Domain {
        #[command(subcommand)]
        action: DomainAction,
    },
    /// API tokens for cloudbill-server.
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
    /// The key that seals stored credentials.
    Key {
        #[command(subcommand)]
        action: KeyAction,
    },
    /// Run the whole job against the built-in Hyperbilling simulator.
    Demo(DemoArgs),
    /// Print shell completions.
    Completions {
        /// Shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff).
    Man,
}

/// Strict `YYYY-MM-DD`.
pub fn parse_date(raw: &str) -> Result<NaiveDate, String> {
    cloudbill_core::parse_date(raw).map_err(|e| e.to_string())
}
