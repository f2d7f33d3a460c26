//! Budgets, their channels and notifications, anomalies and their monitors.

#[allow(clippy::wildcard_imports)]
use super::*;

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
