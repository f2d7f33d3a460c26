//! Command-line flags (clap derive). Names here are the CLI's contract.
//!
//! One file on purpose: it is the whole command tree as a user meets it (`cloudbill --help`,
//! the man page and the completions are generated from it), declarations only, no logic;
//! the commands' code lives in `commands/`, one module per group.

use std::path::PathBuf;

use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand, ValueEnum};
use cloudbill_core::{DateRange, MAX_RANGE_DAYS};

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

#[derive(Debug, Subcommand)]
pub enum AnomalyAction {
    /// Anomaly monitors: a scope split by one dimension, run after every sync and import.
    Monitor {
        #[command(subcommand)]
        action: MonitorAction,
    },
    /// The anomalies the monitors keep, newest first.
    List {
        /// One monitor (name or id).
        #[arg(long)]
        monitor: Option<String>,
        /// open (default) or all (acknowledged, ignored and closed too).
        #[arg(long, default_value = "open")]
        state: String,
    },
    /// Acknowledge an anomaly (someone knows; it closes after 7 normal days).
    Ack {
        /// Anomaly id (an_…).
        id: String,
    },
    /// Ignore an anomaly.
    Ignore {
        /// Anomaly id (an_…).
        id: String,
    },
    /// Run every monitor now.
    Detect,
}

#[derive(Debug, Subcommand)]
pub enum MonitorAction {
    /// Create a monitor (run at once).
    Create(Box<MonitorCreateArgs>),
    /// List monitors.
    List,
    /// Delete a monitor and its anomalies (their events are kept).
    Delete {
        /// Monitor name or id.
        name: String,
    },
}

/// `anomaly monitor create` flags.
#[derive(Debug, Args)]
pub struct MonitorCreateArgs {
    /// Unique monitor name.
    pub name: String,
    /// Scope: one project (default: the whole domain).
    #[arg(long, conflicts_with_all = ["project_group", "account"])]
    pub project: Option<String>,
    /// Scope: a project group with its sub-groups.
    #[arg(long, conflicts_with = "account")]
    pub project_group: Option<String>,
    /// Scope: one billing account.
    #[arg(long)]
    pub account: Option<String>,
    /// Only records with KEY=VALUE; repeatable.
    #[arg(long, value_name = "KEY=VALUE")]
    pub filter: Vec<String>,
    /// The key to split by.
    #[arg(long, default_value = "service", value_name = "KEY")]
    pub dimension: String,
    /// Least robust z-score of an anomalous day [default: 3.5].
    #[arg(long, allow_hyphen_values = true)]
    pub z: Option<String>,
    /// Least excess over expected, in the currency [default: 10].
    #[arg(long, value_name = "AMOUNT", allow_hyphen_values = true)]
    pub min_amount: Option<String>,
    /// Least excess over expected, in percent [default: 20].
    #[arg(long, value_name = "PERCENT", allow_hyphen_values = true)]
    pub min_percent: Option<String>,
    /// spikes or both (drops too).
    #[arg(long, default_value = "spikes")]
    pub direction: String,
    /// Channel(s) `anomaly.detected` goes to.
    #[arg(long, value_name = "NAME", num_args = 1..)]
    pub channel: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum ChannelAction {
    /// Add a channel: --webhook URL --secret-stdin, --slack URL, or --email ADDR --smtp
    /// HOST:PORT.
    Add(ChannelAddArgs),
    /// List channels (secrets are never shown).
    List,
    /// Remove a channel no budget uses.
    Remove {
        /// Channel name or id.
        name: String,
    },
    /// Send a test message to a channel now.
    Test {
        /// Channel name or id.
        name: String,
    },
}

/// `channel add` flags.
#[derive(Debug, Args)]
pub struct ChannelAddArgs {
    /// Unique channel name.
    pub name: String,
    /// POST events as JSON to this http(s) URL, signed (X-Cloudbill-Signature).
    #[arg(long, value_name = "URL", conflicts_with_all = ["slack", "email"], requires = "secret_stdin")]
    pub webhook: Option<String>,
    /// Read the webhook's signing secret (at least 16 characters) from the first line of stdin.
    #[arg(long)]
    pub secret_stdin: bool,
    /// A Slack incoming-webhook URL (kept sealed like a key; only its host is shown).
    #[arg(long, value_name = "URL", conflicts_with = "email")]
    pub slack: Option<String>,
    /// Send e-mail to this address.
    #[arg(long, value_name = "ADDR", requires = "smtp")]
    pub email: Option<String>,
    /// The SMTP server, HOST:PORT.
    #[arg(long, value_name = "HOST:PORT")]
    pub smtp: Option<String>,
    /// SMTP connection security: starttls (required upgrade) or none (plain; loopback or a
    /// trusted relay only).
    #[arg(long, value_name = "MODE", default_value = "starttls")]
    pub smtp_security: String,
    /// SMTP login user (the password is read with --smtp-password-stdin).
    #[arg(long, value_name = "USER", requires = "smtp_password_stdin")]
    pub smtp_user: Option<String>,
    /// Read the SMTP password from the first line of stdin.
    #[arg(long, requires = "smtp_user")]
    pub smtp_password_stdin: bool,
}

#[derive(Debug, Subcommand)]
pub enum BudgetAction {
    /// Create a budget (evaluated at once: a threshold already crossed notifies now).
    Create(Box<BudgetCreateArgs>),
    /// List budgets.
    List,
    /// Show one budget.
    Show {
        /// Budget name or id.
        name: String,
    },
    /// Delete a budget (its events are kept).
    Delete {
        /// Budget name or id.
        name: String,
    },
    /// Actual, forecast and each notification's state for the current period (or --period).
    Status {
        /// One budget (name or id); all by default.
        name: Option<String>,
        /// The period holding this month, YYYY-MM (default: today's).
        #[arg(long, value_name = "YYYY-MM")]
        period: Option<String>,
    },
    /// Threshold crossings and clearings, newest first.
    Events {
        /// One budget (name or id); all by default.
        name: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Evaluate every budget now (syncs, imports and the server's scheduler do it too).
    Evaluate,
}

/// `budget create` flags.
#[derive(Debug, Args)]
pub struct BudgetCreateArgs {
    /// Unique budget name.
    pub name: String,
    /// Amount per period (exact decimal).
    #[arg(long)]
    pub amount: String,
    /// The amount's currency (ISO 4217); only records in it count.
    #[arg(long)]
    pub currency: String,
    /// monthly, quarterly or yearly.
    #[arg(long, default_value = "monthly")]
    pub period: String,
    /// Scope: one project (default: the whole domain).
    #[arg(long, conflicts_with_all = ["project_group", "account"])]
    pub project: Option<String>,
    /// Scope: a project group with its sub-groups.
    #[arg(long, conflicts_with = "account")]
    pub project_group: Option<String>,
    /// Scope: one billing account.
    #[arg(long)]
    pub account: Option<String>,
    /// Only records with KEY=VALUE (report keys, tag:KEY included); repeatable.
    #[arg(long, value_name = "KEY=VALUE")]
    pub filter: Vec<String>,
    /// billed (FOCUS BilledCost) or effective (EffectiveCost).
    #[arg(long, default_value = "billed")]
    pub metric: String,
    /// A threshold: actual:80%, forecast:100%, actual:AMOUNT, forecast:AMOUNT; repeatable (at
    /// most 10).
    #[arg(long, value_name = "THRESHOLD", required = true)]
    pub notify: Vec<String>,
    /// Channel(s) every notification goes to.
    #[arg(long, value_name = "NAME", required = true, num_args = 1..)]
    pub channel: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum NotifyAction {
    /// Deliver every due notification now (retries included).
    Flush,
    /// The delivery log, newest first.
    Log {
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
}

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

#[derive(Debug, Subcommand)]
pub enum BillingAction {
    /// Turn billing on.
    Enable,
    /// Turn billing off (data is kept).
    Disable,
    /// Show whether billing is on.
    Status,
}

#[derive(Debug, Subcommand)]
pub enum ProviderAction {
    /// List providers: state, title and the settings an account gives each.
    List,
    /// One provider and its settings.
    Show {
        /// The provider's kind (hyperbilling-aws, file, …).
        name: String,
    },
    /// Enable a provider.
    Enable {
        /// The provider's kind.
        name: String,
    },
    /// Disable a provider: its accounts stop syncing.
    Disable {
        /// The provider's kind.
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ProjectAction {
    /// Create a project.
    Create {
        /// Name, unique in the domain.
        name: String,
        /// Project group to put it in.
        #[arg(long)]
        group: Option<String>,
    },
    /// List projects.
    List,
    /// Show a project with its accounts.
    Show {
        /// Name or id.
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum GroupAction {
    /// Create a project group.
    Create {
        /// Name, unique in the domain.
        name: String,
        /// Parent group.
        #[arg(long)]
        parent: Option<String>,
    },
    /// List project groups.
    List,
}

#[derive(Debug, Subcommand)]
pub enum AccountAction {
    /// Register a billing account (the provider is not called unless --verify).
    Add(AddAccount),
    /// List billing accounts.
    List,
    /// Show an account and its project history (never its key).
    Show {
        /// Name or id.
        name: String,
    },
    /// Call the provider with the account's credentials.
    Verify {
        /// Name or id.
        name: String,
    },
    /// Move an account to another project.
    Move {
        /// Name or id.
        name: String,
        /// The new project.
        #[arg(long)]
        project: String,
        /// Move only costs from this day on (YYYY-MM-DD); without it the whole history moves.
        #[arg(long, value_parser = parse_date, value_name = "DATE")]
        from: Option<NaiveDate>,
    },
    /// Change an account's settings (each one given replaces the account's).
    Update {
        /// Name or id.
        name: String,
        #[command(flatten)]
        settings: SettingArgs,
        /// Check the new settings with the provider first.
        #[arg(long)]
        verify: bool,
    },
    /// Enable an account.
    Enable {
        /// Name or id.
        name: String,
    },
    /// Disable an account (its data stays; it stops syncing).
    Disable {
        /// Name or id.
        name: String,
    },
    /// Remove an account with its cost data.
    Remove {
        /// Name or id.
        name: String,
    },
}

#[derive(Debug, Args)]
pub struct AddAccount {
    /// Name, unique in the domain.
    #[arg(long)]
    pub name: String,
    /// Provider (`cloudbill provider list` shows each with its settings).
    #[arg(long, default_value = "hyperbilling-aws")]
    pub provider: String,
    /// Project the account belongs to (mandatory).
    #[arg(long)]
    pub project: Option<String>,
    #[command(flatten)]
    pub settings: SettingArgs,
    /// Check the settings with the provider first; refuse the account if they fail.
    #[arg(long)]
    pub verify: bool,
}

/// A provider's settings as flags: `--setting KEY=VALUE` for any provider, secrets on stdin,
/// and Hyperbilling's own spelling of its four.
#[derive(Debug, Args)]
pub struct SettingArgs {
    /// A setting, KEY=VALUE (repeatable; `cloudbill provider show KIND` lists them).
    #[arg(long = "setting", value_name = "KEY=VALUE")]
    pub settings: Vec<String>,
    /// Read the secret from stdin (a provider with several: a JSON object of them).
    #[arg(long, visible_alias = "key-stdin", conflicts_with = "key")]
    pub secret_stdin: bool,
    /// Hyperbilling: the linked cloud account id ("Account"; the `account` setting).
    #[arg(long = "account", value_name = "ID")]
    pub cloud_account: Option<String>,
    /// Hyperbilling: the client id ("Email"; the `email` setting).
    #[arg(long)]
    pub email: Option<String>,
    /// Hyperbilling: the client secret ("Key"). Prefer --key-stdin: command lines end up in
    /// shell history.
    #[arg(long, env = "CLOUDBILL_ACCOUNT_KEY", hide_env_values = true)]
    pub key: Option<String>,
    /// Hyperbilling: the API's URL (the `endpoint` setting) [default:
    /// $CLOUDBILL_HYPERBILLING_ENDPOINT].
    #[arg(long)]
    pub endpoint: Option<String>,
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Account to sync (repeatable); default: every enabled account.
    #[arg(long = "account", value_name = "NAME")]
    pub accounts: Vec<String>,
    /// First day (YYYY-MM-DD); default: from the last successful sync.
    #[arg(long, value_parser = parse_date, value_name = "DATE", requires = "end")]
    pub start: Option<NaiveDate>,
    /// Day after the last (YYYY-MM-DD, exclusive).
    #[arg(long, value_parser = parse_date, value_name = "DATE", requires = "start")]
    pub end: Option<NaiveDate>,
}

#[derive(Debug, Args)]
pub struct JobsArgs {
    /// Only this account's jobs.
    #[arg(long)]
    pub account: Option<String>,
    /// At most this many jobs.
    #[arg(long, default_value_t = 20)]
    pub limit: u32,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// First day (YYYY-MM-DD).
    #[arg(long, value_parser = parse_date, value_name = "DATE")]
    pub start: NaiveDate,
    /// Day after the last (YYYY-MM-DD, exclusive).
    #[arg(long, value_parser = parse_date, value_name = "DATE")]
    pub end: NaiveDate,
    /// daily, monthly or yearly.
    #[arg(long, default_value = "monthly")]
    pub granularity: String,
    /// Keys to group by, comma separated (provider, project, project_group, service_account,
    /// cloud_account, region, service, usage_type, instance_type, currency, charge_category,
    /// tag:KEY for a tag's value).
    #[arg(long, value_delimiter = ',', value_name = "KEY[,KEY…]")]
    pub group_by: Vec<String>,
    /// Only these projects (repeatable).
    #[arg(long)]
    pub project: Vec<String>,
    /// Only projects in these groups, recursively (repeatable).
    #[arg(long)]
    pub project_group: Vec<String>,
    /// Only these billing accounts (repeatable).
    #[arg(long)]
    pub account: Vec<String>,
    /// Only these providers (repeatable).
    #[arg(long)]
    pub provider: Vec<String>,
    /// Only these regions (repeatable).
    #[arg(long)]
    pub region: Vec<String>,
    /// Only these services (repeatable).
    #[arg(long)]
    pub service: Vec<String>,
    /// Only records whose tag KEY has VALUE (repeatable; values of one key OR, different keys
    /// AND; VALUE `(none)` for records without the tag).
    #[arg(long, value_name = "KEY=VALUE")]
    pub tag: Vec<String>,
    /// Only records whose dimension KEY (any group-by key, tag:KEY too) has VALUE
    /// (repeatable, as --tag).
    #[arg(long, value_name = "KEY=VALUE")]
    pub filter: Vec<String>,
    /// total (largest first) or key.
    #[arg(long, default_value = "total")]
    pub sort: String,
    /// At most this many groups.
    #[arg(long)]
    pub limit: Option<u32>,
    /// Skip this many groups first (after the sort): with --limit, pages through a big answer.
    #[arg(long)]
    pub offset: Option<u32>,
    /// Which cost to sum: billed (FOCUS BilledCost) or effective (EffectiveCost; billed where a
    /// record has none).
    #[arg(long, default_value = "billed", value_name = "METRIC")]
    pub metric: String,
    /// Convert every amount to this currency with the stored rates (`cloudbill fx`); the
    /// rates used are stated. A missing rate is an error naming the currency and the day.
    #[arg(long, value_name = "CODE")]
    pub currency: Option<String>,
    /// Which rate converts a cell: daily (its day's, or the latest of the 7 days before),
    /// period-end (the rate of its bucket's last day) or fixed:NAME (a named rate set).
    #[arg(long, value_name = "POLICY", requires = "currency")]
    pub fx_policy: Option<String>,
    /// Show every digit in the table (by default amounts are rounded to the currency's minor
    /// unit, with thousands separators; JSON and CSV are always exact).
    #[arg(long)]
    pub exact: bool,
}

/// `cloudbill anomalies` flags.
#[derive(Debug, Args)]
pub struct AnomaliesArgs {
    /// First day judged (YYYY-MM-DD).
    #[arg(long, value_parser = parse_date, value_name = "DATE")]
    pub start: NaiveDate,
    /// Day after the last judged (YYYY-MM-DD, exclusive).
    #[arg(long, value_parser = parse_date, value_name = "DATE")]
    pub end: NaiveDate,
    /// The dimension to split by (any report key, tag:KEY too).
    #[arg(long, default_value = "service", value_name = "KEY")]
    pub group_by: String,
    /// Only this project (repeatable).
    #[arg(long)]
    pub project: Vec<String>,
    /// Only this billing account (repeatable).
    #[arg(long)]
    pub account: Vec<String>,
    /// Only records whose dimension KEY has VALUE (repeatable).
    #[arg(long, value_name = "KEY=VALUE")]
    pub filter: Vec<String>,
    /// spikes (default) or both (drops too).
    #[arg(long, default_value = "spikes")]
    pub direction: String,
    /// The least excess over expected, in the currency [default: 10].
    #[arg(long, value_name = "AMOUNT", allow_hyphen_values = true)]
    pub min_amount: Option<String>,
    /// The least excess over expected, in percent [default: 20].
    #[arg(long, value_name = "PERCENT", allow_hyphen_values = true)]
    pub min_percent: Option<String>,
    /// open (default) or all: with all, also the anomalies a monitor of the same split and
    /// scope keeps acknowledged, ignored or closed.
    #[arg(long, default_value = "open")]
    pub state: String,
}

/// `cloudbill forecast` flags.
#[derive(Debug, Args)]
pub struct ForecastArgs {
    /// Only this project (repeatable).
    #[arg(long)]
    pub project: Vec<String>,
    /// Only projects in this group, recursively (repeatable).
    #[arg(long, alias = "group")]
    pub project_group: Vec<String>,
    /// Only this billing account (repeatable).
    #[arg(long)]
    pub account: Vec<String>,
    /// Only records whose dimension KEY (any report key, tag:KEY too) has VALUE (repeatable).
    #[arg(long, value_name = "KEY=VALUE")]
    pub filter: Vec<String>,
    /// monthly, quarterly or yearly: the period holding --as-of.
    #[arg(long, default_value = "monthly")]
    pub period: String,
    /// Today (YYYY-MM-DD) [default: today, UTC].
    #[arg(long, value_parser = parse_date, value_name = "DATE")]
    pub as_of: Option<NaiveDate>,
    /// Days before today the provider may still restate, left out of the history (0–31).
    #[arg(long, default_value_t = 2)]
    pub restate_days: i64,
}

/// `cloudbill tags` flags.
#[derive(Debug, Args)]
pub struct TagsArgs {
    /// First day (YYYY-MM-DD).
    #[arg(long, value_parser = parse_date, value_name = "DATE")]
    pub start: NaiveDate,
    /// Day after the last (YYYY-MM-DD, exclusive).
    #[arg(long, value_parser = parse_date, value_name = "DATE")]
    pub end: NaiveDate,
    /// Only this project's costs.
    #[arg(long)]
    pub project: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum DomainAction {
    /// Every domain: billing on or off, disabled or not, accounts.
    List,
    /// Create a domain; prints its first domain-admin token's secret alone on stdout, once.
    Create {
        /// The new domain's name.
        name: String,
        /// The label of its first admin token.
        #[arg(long, default_value = "first domain admin")]
        label: String,
    },
    /// Disable a domain: its tokens are refused and its scheduled syncs skipped; its data is kept.
    Disable {
        /// Domain name or id.
        #[arg(value_name = "DOMAIN")]
        name: String,
    },
    /// Enable a disabled domain again.
    Enable {
        /// Domain name or id.
        #[arg(value_name = "DOMAIN")]
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenAction {
    /// Create a token; prints the secret alone on stdout, once (it is stored hashed).
    Create {
        /// admin (whole domain), project-member (read-only billing of one project) or
        /// system-admin (manages domains on the server; reads no billing data).
        #[arg(long)]
        role: String,
        /// The project of a project-member token.
        #[arg(long)]
        project: Option<String>,
        /// A label to recognise the token by.
        #[arg(long, default_value = "")]
        label: String,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token by id.
    Revoke {
        /// The token id from `token list`.
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ImportFormat {
    /// A FinOps FOCUS 1.0–1.2 CSV file.
    Focus(ImportArgs),
    /// An AWS Cost and Usage Report CSV file (`lineItem/…` columns).
    Cur(ImportArgs),
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The file (`.csv` or `.csv.gz`).
    pub file: PathBuf,
    /// The `file` account to import into (replaces its records for the days the file covers).
    #[arg(long)]
    pub account: String,
    /// Skip rows that cannot be read (count them, report the first 20) instead of stopping.
    #[arg(long)]
    pub skip_invalid: bool,
    /// Replace this whole range (START..END, end exclusive): days in it without rows become
    /// empty, every row must lie in it. Without it, exactly the days the file holds rows for
    /// are replaced.
    #[arg(long, value_parser = parse_window, value_name = "START..END")]
    pub window: Option<DateRange>,
}

/// `START..END` (YYYY-MM-DD, end exclusive).
fn parse_window(raw: &str) -> Result<DateRange, String> {
    let (start, end) = raw
        .split_once("..")
        .ok_or_else(|| format!("{raw:?} is not START..END (e.g. 2025-01-01..2025-02-01)"))?;
    let range = DateRange::parse(start.trim(), end.trim()).map_err(|e| e.to_string())?;
    if range.days() > MAX_RANGE_DAYS {
        return Err(format!(
            "the window has {} days; at most {MAX_RANGE_DAYS}",
            range.days()
        ));
    }
    Ok(range)
}

#[derive(Debug, Subcommand)]
pub enum ExportFormat {
    /// FOCUS 1.2 CSV.
    Focus(ExportArgs),
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// First day (YYYY-MM-DD).
    #[arg(long, value_parser = parse_date, value_name = "DATE")]
    pub start: NaiveDate,
    /// Day after the last (YYYY-MM-DD, exclusive).
    #[arg(long, value_parser = parse_date, value_name = "DATE")]
    pub end: NaiveDate,
    /// Only these projects (repeatable).
    #[arg(long)]
    pub project: Vec<String>,
    /// Where to write: a `.parquet` file gets Parquet (typed columns), any other name CSV;
    /// `-` writes CSV to stdout.
    pub file: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum KeyAction {
    /// Re-seal every stored credential with a new random key, in one transaction. The key
    /// file is replaced; with CLOUDBILL_SECRET_KEY, the new key goes to --new-key-file.
    Rotate {
        /// Where to write the new key (mode 0600, a new file) when the key comes from
        /// CLOUDBILL_SECRET_KEY; put its content into the variable afterwards.
        #[arg(long, value_name = "PATH")]
        new_key_file: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where the demo database goes [default: demo.db in the data directory, recreated]. Wins
    /// over --database-url / CLOUDBILL_DATABASE_URL.
    #[arg(long, value_name = "PATH")]
    pub demo_db: Option<PathBuf>,
}

/// Strict `YYYY-MM-DD`.
pub fn parse_date(raw: &str) -> Result<NaiveDate, String> {
    cloudbill_core::parse_date(raw).map_err(|e| e.to_string())
}
