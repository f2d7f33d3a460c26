//! Billing, providers, projects, groups and accounts (with each provider's settings).

#[allow(clippy::wildcard_imports)]
use super::*;

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
    #[arg(long = "cloud-account", visible_alias = "account", value_name = "ID")]
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
