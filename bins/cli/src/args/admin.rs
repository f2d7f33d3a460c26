//! Domains, API tokens, the credentials key and the demo.

#[allow(clippy::wildcard_imports)]
use super::*;

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
    /// Also an AWS, an Azure and a Google Cloud account, synced from generated exports served
    /// on 127.0.0.1 (S3, Blob Storage, BigQuery): four providers in one consolidated bill.
    #[arg(long)]
    pub cloud: bool,
}
