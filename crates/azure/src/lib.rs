//! Azure Cost Management exports on Blob Storage: a [`BillingProvider`] that reads what an
//! export delivers to a container.
//!
//! An export (dataset `FocusCost`, versions 1.0, 1.0r2, 1.2-preview, 1.2, or `ActualCost`;
//! `AmortizedCost` is refused: it has no billed cost) writes each run of a
//! month under `<path>/<export>/<yyyymmdd-yyyymmdd>/<runId>/` with a `manifest.json`
//! (`runInfo`, `blobs[].blobName`; older exports: `_manifest.json`). A fetch of a window finds
//! each month's newest run (its manifest's `runInfo.submittedTime`, then the blob's time) and
//! reads exactly the blobs that manifest lists (CSV, gzip'd CSV, snappy Parquet), keeping the
//! window's rows: a new run replaces the month, a listed blob that is missing fails the
//! account's sync. The account key or SAS token is sealed like every secret; an `endpoint`
//! names another Blob endpoint (Azurite: `http://127.0.0.1:10000/devstoreaccount1`).
//!
//! **Architecture invariant:** only this crate knows the Azure export layout.

mod layout;

use std::sync::Arc;

use async_trait::async_trait;
use cloudbill_core::{
    CostRecord, DateRange, ProviderKind, ProviderSpec, SettingKind, SettingSpec, Settings,
    ValidationError,
};
use cloudbill_exports::{GuardedConnector, Reading};
use cloudbill_provider::{BillingProvider, FetchScope, Given, ProviderError, RecordSink};
use object_store::azure::MicrosoftAzureBuilder;
use object_store::ObjectStore;

pub use layout::{month_of_folder, Manifest};

/// The provider's kind.
pub const KIND: ProviderKind = ProviderKind::named("azure-cost-exports");

/// The provider's display name, used in error messages.
pub const PROVIDER_NAME: &str = "Azure cost exports";

/// The longest window one fetch covers, in days (at most two months).
pub const MAX_WINDOW_DAYS: u32 = 31;

/// The provider's declaration.
pub static SPEC: ProviderSpec = ProviderSpec {
    kind: KIND,
    title: "Azure Cost Management exports (Blob Storage)",
    settings: &[
        SettingSpec::new(
            "storage_account",
            "the storage account the export writes to",
        )
        .required()
        .kind(SettingKind::Text),
        SettingSpec::new("container", "the export's container")
            .required()
            .kind(SettingKind::Text),
        SettingSpec::new(
            "path",
            "the export's root folder in the container (none: the container's root)",
        )
        .kind(SettingKind::Text),
        SettingSpec::new("export", "the export's name")
            .required()
            .kind(SettingKind::Text),
        SettingSpec::new(
            "endpoint",
            "a Blob endpoint URL (none: https://<storage_account>.blob.core.windows.net)",
        )
        .kind(SettingKind::Url),
        SettingSpec::new(
            "account_key",
            "the storage account's access key (or give sas_token)",
        )
        .secret(),
        SettingSpec::new(
            "sas_token",
            "a SAS token that lists and reads the container (or give account_key)",
        )
        .secret(),
    ],
};

/// The Azure cost exports provider.
#[derive(Debug, Clone, Copy)]
pub struct CostExports {
    connector: GuardedConnector,
}

impl Default for CostExports {
    fn default() -> Self {
        Self::from_env()
    }
}

/// An account's bucket or container and its export in it.
pub(crate) struct Opened {
    store: Arc<dyn ObjectStore>,
    export: Export,
}

#[async_trait]
impl cloudbill_exports::OpenedExport for Opened {
    fn store(&self) -> Arc<dyn ObjectStore> {
        Arc::clone(&self.store)
    }

    fn reading(&self) -> &Reading {
        &self.export.reading
    }

    async fn plan(&self, window: DateRange) -> Result<cloudbill_exports::Plan, ProviderError> {
        layout::files_for(self.store.as_ref(), &self.export, window).await
    }
}

/// Where an account's export is.
#[derive(Debug, Clone)]
pub(crate) struct Export {
    /// `<path>/<export>` (no slashes at the ends).
    pub(crate) root: String,
    pub(crate) reading: Reading,
}

impl CostExports {
    /// The provider, calling out under the outbound policy of the environment.
    pub fn from_env() -> Self {
        Self {
            connector: GuardedConnector::from_env(),
        }
    }

    fn open(&self, settings: &Settings) -> Result<Opened, ProviderError> {
        let given = Given::new(settings);
        let account = given.required("storage_account")?;
        let container = given.required("container")?;
        let export = given.required("export")?;
        let path = given.value("path").unwrap_or("").trim_matches('/');
        let mut builder = MicrosoftAzureBuilder::new()
            .with_account(account)
            .with_container_name(container)
            .with_http_connector(self.connector)
            .with_retry(GuardedConnector::retry());
        // A key or a SAS token, never the ambient identity (the metadata service).
        builder = match (
            given.optional_secret("account_key"),
            given.optional_secret("sas_token"),
        ) {
            (Some(key), _) => builder.with_access_key(key.expose()),
            (None, Some(sas)) => builder.with_config(
                object_store::azure::AzureConfigKey::SasKey,
                sas.expose().trim_start_matches('?'),
            ),
            (None, None) => return Err(cloudbill_provider::missing("account_key or sas_token")),
        };
        if let Some(endpoint) = given.value("endpoint") {
            self.connector
                .check_url(endpoint)
                .map_err(ProviderError::InvalidRequest)?;
            builder = builder
                .with_endpoint(endpoint.trim_end_matches('/').to_owned())
                .with_allow_http(endpoint.starts_with("http://"));
        }
        let store = builder.build().map_err(|e| {
            ProviderError::InvalidRequest(format!("the account's Blob Storage settings: {e}"))
        })?;
        let root = if path.is_empty() {
            export.to_owned()
        } else {
            format!("{path}/{export}")
        };
        let export = Export {
            reading: Reading {
                provider: PROVIDER_NAME,
                kind: KIND,
                export: format!("{account}/{container}/{root}"),
            },
            root,
        };
        Ok(Opened {
            store: Arc::new(store),
            export,
        })
    }
}

#[async_trait]
impl BillingProvider for CostExports {
    fn spec(&self) -> &'static ProviderSpec {
        &SPEC
    }

    fn max_window_days(&self) -> u32 {
        MAX_WINDOW_DAYS
    }

    fn prepare(&self, settings: Settings) -> Result<Settings, ValidationError> {
        if settings.secret("account_key").is_none() && settings.secret("sas_token").is_none() {
            return Err(ValidationError::Credential {
                field: "account_key",
                reason: "missing: give the account_key or a sas_token".into(),
            });
        }
        self.connector.check_endpoint_setting(&settings)?;
        Ok(settings)
    }

    /// Lists the export's months: the credentials read the container and the export is
    /// there. Returns the months found (`YYYY-MM`).
    async fn verify(&self, settings: &Settings) -> Result<Vec<String>, ProviderError> {
        let Opened { store, export } = self.open(settings)?;
        let months: Vec<String> = layout::month_folders(store.as_ref(), &export)
            .await?
            .into_iter()
            .map(|(month, _)| month.format("%Y-%m").to_string())
            .collect();
        if months.is_empty() {
            return Err(export.reading.invalid(format!(
                "no export found at {} (no <yyyymmdd-yyyymmdd>/ run folders)",
                export.reading.export
            )));
        }
        Ok(months)
    }

    /// Exports run per month: one window each.
    fn windows(&self, range: DateRange) -> Vec<DateRange> {
        range.months()
    }

    async fn fetch(
        &self,
        settings: &Settings,
        scope: FetchScope,
        window: DateRange,
    ) -> Result<Vec<CostRecord>, ProviderError> {
        cloudbill_exports::fetch(|| self.open(settings), (scope, window, MAX_WINDOW_DAYS)).await
    }

    /// The window's revision is its months' newest runs' manifests (path and bytes: a new
    /// run has a new `runId` and folder).
    async fn revision(
        &self,
        settings: &Settings,
        window: DateRange,
    ) -> Result<Option<String>, ProviderError> {
        cloudbill_exports::revision(|| self.open(settings), window, MAX_WINDOW_DAYS).await
    }

    /// The files stream through a temporary file each, in chunks.
    async fn fetch_into(
        &self,
        settings: &Settings,
        scope: FetchScope,
        window: DateRange,
        sink: RecordSink,
    ) -> Result<(), ProviderError> {
        let open = || self.open(settings);
        cloudbill_exports::fetch_into(open, (scope, window, MAX_WINDOW_DAYS), sink).await
    }
}
