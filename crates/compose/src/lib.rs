//! cloudbill's composition root: where the concrete adapters meet the service. Both binaries
//! (and an embedder that wants the same defaults) open the store, its credentials key, the
//! provider registry and [`Billing`] here, from the same settings and the same environment
//! variables, spelled once.
//!
//! **Architecture invariant:** no behaviour — only choosing and opening adapters.

use std::sync::Arc;

#[cfg(feature = "hyperbilling")]
use cloudbill_hyperbilling::{ClientConfig, Hyperbilling};
use cloudbill_provider::ProviderRegistry;
use cloudbill_service::{Billing, BillingConfig, ServiceError};
use cloudbill_store::{OpenOptions, StoreError};
use zeroize::Zeroizing;

/// The database URL, when no flag gives one.
pub const DATABASE_URL_ENV: &str = "CLOUDBILL_DATABASE_URL";
/// The endpoint of Hyperbilling accounts registered without one.
pub const ENDPOINT_ENV: &str = "CLOUDBILL_HYPERBILLING_ENDPOINT";
/// The credentials key (64 hex digits); without it, a key file.
pub use cloudbill_store::SECRET_KEY_ENV;
/// The `From` of notification e-mails (default `cloudbill <cloudbill@localhost>`).
pub const MAIL_FROM_ENV: &str = "CLOUDBILL_MAIL_FROM";
/// The dashboard's public base URL, for links in notifications.
pub const PUBLIC_URL_ENV: &str = "CLOUDBILL_PUBLIC_URL";
/// One notification attempt's limit in seconds (1 to 300, default 10); a claimed delivery is
/// taken over by another process after three times this.
pub const NOTIFY_TIMEOUT_ENV: &str = "CLOUDBILL_NOTIFY_TIMEOUT_SECS";
/// Hours after which an undelivered notification is given up (1 to 720, default 24).
pub const NOTIFY_GIVE_UP_ENV: &str = "CLOUDBILL_NOTIFY_GIVE_UP_HOURS";
/// Seconds a sync lease lasts without renewal (2 to 3600, default 300): how soon another
/// process takes over the accounts of one that died mid-sync.
pub const SYNC_LEASE_ENV: &str = "CLOUDBILL_SYNC_LEASE_SECS";
/// "Today" as `YYYY-MM-DD` instead of the clock's UTC date, for replays and tests: the current
/// budget period, default sync ranges.
pub const TODAY_ENV: &str = "CLOUDBILL_TODAY";

/// Why the composition failed.
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    /// The store would not open (its URL shown without a password).
    #[error("cannot open database {url}: {source}{chain}")]
    Store {
        /// The database URL, redacted.
        url: String,
        /// Why.
        source: StoreError,
        /// The source chain, flattened.
        chain: String,
    },
    /// A provider could not be built.
    #[error("{0}")]
    Provider(String),
    /// The service would not open.
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// An environment variable has a value cloudbill does not accept.
    #[error("{0}")]
    Setting(String),
}

/// What to open.
#[derive(Clone)]
pub struct Settings {
    /// `sqlite://PATH` or `postgres://…`.
    pub database_url: String,
    /// The domain (tenant).
    pub domain: String,
    /// Create the database if missing (off for commands that only read).
    pub create: bool,
    /// The service's tunables.
    pub config: BillingConfig,
    /// Providers besides the ones this build ships ([`providers`]): an embedder's own.
    pub providers: Vec<Arc<dyn cloudbill_provider::BillingProvider>>,
}

impl Settings {
    /// Settings for `database_url` and `domain`, creating the database if missing, with the
    /// default tunables and the providers this build ships.
    pub fn new(database_url: &str, domain: &str) -> Self {
        Self {
            database_url: database_url.to_owned(),
            domain: domain.to_owned(),
            create: true,
            config: BillingConfig::default(),
            providers: Vec::new(),
        }
    }
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field(
                "database_url",
                &cloudbill_store::redacted_url(&self.database_url),
            )
            .field("domain", &self.domain)
            .field("create", &self.create)
            .field("config", &self.config)
            .field(
                "providers",
                &self.providers.iter().map(|p| p.kind()).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// The database URL: `flag` (a flag or `CLOUDBILL_DATABASE_URL`, as the binary's parser read
/// it), else `file_name` in the data directory.
pub fn database_url(flag: Option<&str>, file_name: &str) -> String {
    match flag.filter(|u| !u.trim().is_empty()) {
        Some(url) => url.to_owned(),
        None => format!(
            "sqlite://{}",
            cloudbill_store::default_data_dir()
                .join(file_name)
                .display()
        ),
    }
}

/// How to open the store at `url`: the key from `CLOUDBILL_SECRET_KEY`, else a key file (in
/// the data directory for databases that are not a local file).
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

/// The default endpoint for Hyperbilling accounts, from `CLOUDBILL_HYPERBILLING_ENDPOINT`.
pub fn default_endpoint() -> Option<String> {
    std::env::var(ENDPOINT_ENV).ok().filter(|e| !e.is_empty())
}

/// The providers this build ships, configured from the environment: **one line each** —
/// adding a provider is its crate and its line here.
pub fn providers() -> Result<ProviderRegistry, ComposeError> {
    #[cfg_attr(
        not(any(
            feature = "hyperbilling",
            feature = "aws",
            feature = "azure",
            feature = "gcp"
        )),
        allow(unused_mut)
    )]
    let mut registry = ProviderRegistry::new();
    #[cfg(feature = "hyperbilling")]
    {
        let failed = |e: cloudbill_provider::ProviderError| ComposeError::Provider(e.to_string());
        registry = registry.with(Arc::new(
            Hyperbilling::new(hyperbilling_config()).map_err(failed)?,
        ));
    }
    #[cfg(feature = "aws")]
    {
        registry = registry.with(Arc::new(cloudbill_aws::DataExports::from_env()));
    }
    #[cfg(feature = "azure")]
    {
        registry = registry.with(Arc::new(cloudbill_azure::CostExports::from_env()));
    }
    #[cfg(feature = "gcp")]
    {
        let failed = |e: cloudbill_provider::ProviderError| ComposeError::Provider(e.to_string());
        registry = registry.with(Arc::new(
            cloudbill_gcp::BillingExport::from_env().map_err(failed)?,
        ));
    }
    Ok(registry)
}

#[cfg(feature = "hyperbilling")]
/// Hyperbilling's client settings from the environment (`CLOUDBILL_HYPERBILLING_ENDPOINT`,
/// `CLOUDBILL_ALLOW_LINK_LOCAL_ENDPOINTS`).
pub fn hyperbilling_config() -> ClientConfig {
    ClientConfig {
        default_endpoint: default_endpoint(),
        ..ClientConfig::from_env()
    }
}

/// The store error of opening `url`, the URL's password left out.
pub fn store_error(url: &str, source: StoreError) -> ComposeError {
    let mut chain = String::new();
    let mut next = std::error::Error::source(&source);
    while let Some(s) = next {
        chain.push_str(": ");
        chain.push_str(&s.to_string());
        next = s.source();
    }
    ComposeError::Store {
        url: cloudbill_store::redacted_url(url),
        source,
        chain,
    }
}

/// Opens the store, the providers and the service as `settings` say.
pub async fn open(settings: Settings) -> Result<Billing, ComposeError> {
    let url = &settings.database_url;
    let store = cloudbill_store::open(&open_options(url, settings.create))
        .await
        .map_err(|e| store_error(url, e))?;
    let mut config = settings.config;
    if config.public_url.is_none() {
        config.public_url = std::env::var(PUBLIC_URL_ENV).ok().filter(|u| !u.is_empty());
    }
    apply_environment(&mut config)?;
    #[cfg(feature = "notify")]
    let senders = notifier(&config)?;
    let mut registry = providers()?;
    for extra in settings.providers {
        registry = registry.with(extra);
    }
    let billing = Billing::open(store, registry, &settings.domain, config).await?;
    #[cfg(feature = "notify")]
    billing.set_notifier(Arc::new(senders));
    Ok(billing)
}

/// The notification senders (webhook, Slack, e-mail), configured from `config` and the
/// environment.
#[cfg(feature = "notify")]
pub fn notifier(config: &BillingConfig) -> Result<cloudbill_notify::Senders, ComposeError> {
    let mut senders = cloudbill_notify::SenderConfig {
        timeout: config.delivery.attempt_timeout,
        ..cloudbill_notify::SenderConfig::default()
    };
    if let Some(from) = std::env::var(MAIL_FROM_ENV).ok().filter(|f| !f.is_empty()) {
        senders.mail_from = from;
    }
    // One policy for every outbound call (providers and receivers).
    senders.allow_link_local = cloudbill_outbound::allow_link_local_from_env();
    cloudbill_notify::Senders::new(senders).map_err(ComposeError::Provider)
}

/// Applies [`TODAY_ENV`], [`NOTIFY_TIMEOUT_ENV`] and [`NOTIFY_GIVE_UP_ENV`] to `config`.
pub fn apply_environment(config: &mut BillingConfig) -> Result<(), ComposeError> {
    if let Some(raw) = std::env::var(TODAY_ENV).ok().filter(|v| !v.is_empty()) {
        let day = chrono::NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d").map_err(|_| {
            ComposeError::Setting(format!("{TODAY_ENV}={raw:?} is not a date (YYYY-MM-DD)"))
        })?;
        config.today = Some(day);
    }
    if let Some(raw) = std::env::var(NOTIFY_TIMEOUT_ENV)
        .ok()
        .filter(|v| !v.is_empty())
    {
        let secs: u64 = raw
            .trim()
            .parse()
            .ok()
            .filter(|s| (1..=300).contains(s))
            .ok_or_else(|| {
                ComposeError::Setting(format!(
                    "{NOTIFY_TIMEOUT_ENV}={raw:?}: expected whole seconds from 1 to 300"
                ))
            })?;
        config.delivery.attempt_timeout = std::time::Duration::from_secs(secs);
    }
    if let Some(raw) = std::env::var(NOTIFY_GIVE_UP_ENV)
        .ok()
        .filter(|v| !v.is_empty())
    {
        let hours: u64 = raw
            .trim()
            .parse()
            .ok()
            .filter(|h| (1..=720).contains(h))
            .ok_or_else(|| {
                ComposeError::Setting(format!(
                    "{NOTIFY_GIVE_UP_ENV}={raw:?}: expected whole hours from 1 to 720"
                ))
            })?;
        config.delivery.give_up_after = std::time::Duration::from_secs(hours * 3600);
    }
    if let Some(raw) = std::env::var(SYNC_LEASE_ENV).ok().filter(|v| !v.is_empty()) {
        let secs: u64 = raw
            .trim()
            .parse()
            .ok()
            .filter(|s| (2..=3600).contains(s))
            .ok_or_else(|| {
                ComposeError::Setting(format!(
                    "{SYNC_LEASE_ENV}={raw:?}: expected whole seconds from 2 to 3600"
                ))
            })?;
        config.lease_ttl = std::time::Duration::from_secs(secs);
    }
    Ok(())
}
