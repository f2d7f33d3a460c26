//! The Google Cloud billing export in BigQuery: a [`BillingProvider`] that queries the export
//! table (standard or detailed) with a service account, and (feature `sim`) an in-process
//! simulator of the BigQuery query API and Google's token endpoint.
//!
//! - **Auth**: the service account key (a secret, the key file's JSON) signs an RS256 JWT that
//!   the key's `token_uri` exchanges for an access token (scope `bigquery.readonly`).
//! - **Query**: `jobs.query` then `jobs.getQueryResults` page by page (`pageToken`), with the
//!   window as named `DATE` parameters; each cost and credit is cast to `NUMERIC` in SQL, so no
//!   amount passes through a float on our side: **BilledCost = cost + Σ credits**, exact.
//! - **Mapping**: a row's UTC usage day, its project (`SubAccountId`), billing account, service,
//!   SKU, region and currency; labels become tags. Rows go through the FOCUS reader like a file.
//!
//! A window's query returns what the export holds now for its days: rows GCP added late (the
//! export restates recent days for a while) replace the stored days on the next sync.
//!
//! **Architecture invariant:** only this crate knows the BigQuery wire format.

mod auth;
mod bigquery;
#[cfg(feature = "sim")]
pub mod sim;

use async_trait::async_trait;
use cloudbill_core::{
    CostRecord, DateRange, ProviderKind, ProviderSpec, SettingKind, SettingSpec, Settings,
    ValidationError,
};
use cloudbill_provider::{BillingProvider, FetchScope, Given, ProviderError};

pub use auth::{ServiceAccountKey, SCOPE};
pub use bigquery::{query_for, Column, COLUMNS};

/// The provider's kind.
pub const KIND: ProviderKind = ProviderKind::named("gcp-billing-export");

/// The provider's display name, used in error messages.
pub const PROVIDER_NAME: &str = "GCP billing export";

/// BigQuery's API root.
pub const DEFAULT_ENDPOINT: &str = "https://bigquery.googleapis.com";

/// The longest window one query covers, in days.
pub const MAX_WINDOW_DAYS: u32 = 31;

/// The version of how rows are mapped to records, first in every revision token: a cloudbill
/// that maps differently bumps it and every window is read again once.
pub const REVISION_VERSION: &str = "gcp-v1";

/// A query's pages mapped to records and sent on as they arrive.
struct Streamed {
    scope: FetchScope,
    window: DateRange,
    sink: cloudbill_provider::RecordSink,
}

#[async_trait]
impl bigquery::Pages for Streamed {
    async fn page(&mut self, rows: Vec<bigquery::Row>) -> Result<bool, ProviderError> {
        let mut csv = bigquery::FocusRows::new();
        for row in &rows {
            csv.push(row)?;
        }
        let records = csv.records(self.scope, self.window)?;
        // A closed sink: the writer stopped (its error is reported); stop the query.
        Ok(self.sink.send(records).await.is_ok())
    }
}

/// The provider's declaration.
pub static SPEC: ProviderSpec = ProviderSpec {
    kind: KIND,
    title: "Google Cloud billing export (BigQuery)",
    settings: &[
        SettingSpec::new(
            "project",
            "the GCP project that runs the query jobs (none: the key's project, else the table's)",
        )
        .kind(SettingKind::Text),
        SettingSpec::new(
            "table",
            "the export table, project.dataset.table (standard or detailed export)",
        )
        .required()
        .kind(SettingKind::Text),
        SettingSpec::new(
            "billing_account",
            "read only this billing account's rows (none: every row of the table)",
        )
        .kind(SettingKind::Text),
        SettingSpec::new(
            "endpoint",
            "the BigQuery API root (none: https://bigquery.googleapis.com)",
        )
        .kind(SettingKind::Url),
        SettingSpec::new(
            "service_account_json",
            "the service account's key file (JSON), with BigQuery Job User and Data Viewer",
        )
        .required()
        .secret()
        .kind(SettingKind::Json),
    ],
};

/// The GCP billing export provider.
#[derive(Debug, Clone)]
pub struct BillingExport {
    /// Built on first use: a process that never calls BigQuery (a report) does not pay for
    /// a TLS client.
    client: std::sync::Arc<std::sync::OnceLock<reqwest::Client>>,
    policy: cloudbill_outbound::Policy,
}

impl BillingExport {
    /// The provider, calling out under the outbound policy of the environment.
    ///
    /// # Errors
    /// None today: the HTTP client is built on first use, and a failure to build it fails
    /// that call.
    pub fn from_env() -> Result<Self, ProviderError> {
        let policy = cloudbill_outbound::Policy {
            request_timeout: std::time::Duration::from_secs(300),
            ..cloudbill_outbound::Policy::from_env()
        };
        // The client is built when first used (a TLS client costs milliseconds a process
        // that never calls BigQuery need not pay).
        Ok(Self {
            client: std::sync::Arc::default(),
            policy,
        })
    }

    /// The HTTP client, built on first use.
    fn client(&self) -> Result<&reqwest::Client, ProviderError> {
        if let Some(client) = self.client.get() {
            return Ok(client);
        }
        let client = self
            .policy
            .client()
            .map_err(|e| ProviderError::InvalidRequest(format!("HTTP client: {e}")))?;
        Ok(self.client.get_or_init(|| client))
    }
}

pub(crate) fn unavailable(what: &str) -> ProviderError {
    ProviderError::Unavailable {
        provider: PROVIDER_NAME,
        attempts: 1,
        last_error: what.to_owned(),
    }
}

/// An account's settings as the client reads them.
pub(crate) struct Account {
    pub(crate) project: String,
    pub(crate) table: String,
    pub(crate) billing_filter: Option<String>,
    pub(crate) endpoint: String,
    pub(crate) key: ServiceAccountKey,
}

impl Account {
    fn of(settings: &Settings, policy: &cloudbill_outbound::Policy) -> Result<Self, ProviderError> {
        let given = Given::new(settings);
        let key = given.secret("service_account_json")?;
        let key = ServiceAccountKey::parse(key.expose())
            .map_err(|e| ProviderError::InvalidRequest(format!("service_account_json: {e}")))?;
        let endpoint = given
            .value("endpoint")
            .unwrap_or(DEFAULT_ENDPOINT)
            .trim_end_matches('/')
            .to_owned();
        for url in [endpoint.as_str(), key.token_uri.as_str()] {
            policy
                .check_url(url)
                .map_err(ProviderError::InvalidRequest)?;
        }
        let table = bigquery::checked_table(given.required("table")?)
            .map_err(ProviderError::InvalidRequest)?;
        let project = given
            .value("project")
            .map(str::to_owned)
            .or_else(|| key.project_id.clone())
            .unwrap_or_else(|| table.split('.').next().unwrap_or_default().to_owned());
        Ok(Self {
            project,
            table,
            billing_filter: given.value("billing_account").map(str::to_owned),
            endpoint,
            key,
        })
    }
}

#[async_trait]
impl BillingProvider for BillingExport {
    fn spec(&self) -> &'static ProviderSpec {
        &SPEC
    }

    fn max_window_days(&self) -> u32 {
        MAX_WINDOW_DAYS
    }

    fn prepare(&self, settings: Settings) -> Result<Settings, ValidationError> {
        if let Some(key) = settings.secret("service_account_json") {
            ServiceAccountKey::parse(key.expose()).map_err(|reason| {
                ValidationError::Credential {
                    field: "service_account_json",
                    reason,
                }
            })?;
        }
        if let Some(table) = settings.value("table") {
            bigquery::checked_table(table).map_err(|reason| ValidationError::Setting {
                what: "table",
                value: table.to_owned(),
                reason,
            })?;
        }
        Ok(settings)
    }

    /// Gets a token and runs a query of the table's last day: the key works, the table is
    /// there and readable. Returns the billing accounts of that query's rows.
    async fn verify(&self, settings: &Settings) -> Result<Vec<String>, ProviderError> {
        let account = Account::of(settings, &self.policy)?;
        let today = chrono::Utc::now().date_naive();
        let window = DateRange::new(today - chrono::Duration::days(1), today)
            .map_err(|e| ProviderError::InvalidRequest(e.to_string()))?;
        let mut seen = std::collections::BTreeSet::new();
        bigquery::query(self.client()?, &account, window, |row| {
            if let Some(b) = row.get(Column::BillingAccount) {
                seen.insert(b.to_owned());
            }
            Ok(())
        })
        .await?;
        Ok(seen.into_iter().collect())
    }

    /// Invoices are monthly: one window per month.
    fn windows(&self, range: DateRange) -> Vec<DateRange> {
        range.months()
    }

    async fn fetch(
        &self,
        settings: &Settings,
        scope: FetchScope,
        window: DateRange,
    ) -> Result<Vec<CostRecord>, ProviderError> {
        cloudbill_provider::check_window(window, MAX_WINDOW_DAYS)?;
        let account = Account::of(settings, &self.policy)?;
        let mut csv = bigquery::FocusRows::new();
        bigquery::query(self.client()?, &account, window, |row| csv.push(&row)).await?;
        csv.records(scope, window)
    }

    /// Each page of rows (10,000) is mapped and sent as it arrives: memory holds a page.
    async fn fetch_into(
        &self,
        settings: &Settings,
        scope: FetchScope,
        window: DateRange,
        sink: cloudbill_provider::RecordSink,
    ) -> Result<(), ProviderError> {
        cloudbill_provider::check_window(window, MAX_WINDOW_DAYS)?;
        let account = Account::of(settings, &self.policy)?;
        let mut pages = Streamed {
            scope,
            window,
            sink,
        };
        bigquery::query_pages(self.client()?, &account, window, &mut pages).await
    }

    /// The window's revision is its rows' last `export_time` and their count (a cheap
    /// query of two columns).
    async fn revision(
        &self,
        settings: &Settings,
        window: DateRange,
    ) -> Result<Option<String>, ProviderError> {
        cloudbill_provider::check_window(window, MAX_WINDOW_DAYS)?;
        let account = Account::of(settings, &self.policy)?;
        Ok(Some(format!(
            "{REVISION_VERSION}:{}:{}:{}",
            account.table,
            account.billing_filter.as_deref().unwrap_or("*"),
            bigquery::revision(self.client()?, &account, window).await?
        )))
    }
}
