//! AWS Data Exports on S3: a [`BillingProvider`] that reads what AWS delivers to a bucket.
//!
//! - **Data Exports** (tables `FOCUS_1_2_AWS`, `FOCUS_1_0_AWS`, `COST_AND_USAGE_REPORT` i.e.
//!   CUR 2.0; CSV gzip or Parquet; overwrite or create-new delivery):
//!   `<prefix>/<export>/metadata/BILLING_PERIOD=YYYY-MM/[<timestamp>-<executionId>/]<export>-Manifest.json`,
//!   whose `dataFiles` list the period's current files. The partition folder is matched
//!   case-insensitively; of several manifests of one period (create-new delivery), the newest
//!   (last written, then last by name) is the period's.
//! - **Legacy CUR reports**: `<prefix>/<report>/<yyyymmdd-yyyymmdd>/<report>-Manifest.json`
//!   with `reportKeys`, read when a period has no Data Exports manifest.
//!
//! A fetch of a window reads the manifest of every billing period the window touches and
//! exactly the files it lists, keeping the window's rows: a restated period replaces what was
//! stored, a file the manifest lists but the bucket lacks fails the account's sync (never a
//! partial period). The bucket is read with `object_store` through cloudbill's outbound
//! policy; an `endpoint` names an S3-compatible server (path-style requests).
//!
//! **Architecture invariant:** only this crate knows the AWS export layout.

mod layout;

use std::sync::Arc;

use async_trait::async_trait;
use cloudbill_core::{
    CostRecord, DateRange, ProviderKind, ProviderSpec, SettingKind, SettingSpec, Settings,
    ValidationError,
};
use cloudbill_exports::{GuardedConnector, Reading};
use cloudbill_provider::{BillingProvider, FetchScope, Given, ProviderError, RecordSink};
use object_store::aws::AmazonS3Builder;
use object_store::ObjectStore;

pub use layout::{manifest_period, DataExportsManifest, LegacyManifest};

/// The provider's kind.
pub const KIND: ProviderKind = ProviderKind::named("aws-data-exports");

/// The provider's display name, used in error messages.
pub const PROVIDER_NAME: &str = "AWS Data Exports";

/// The region used when an account names none.
pub const DEFAULT_REGION: &str = "us-east-1";

/// The longest window one fetch covers, in days (at most two billing periods).
pub const MAX_WINDOW_DAYS: u32 = 31;

/// The provider's declaration.
pub static SPEC: ProviderSpec = ProviderSpec {
    kind: KIND,
    title: "AWS Data Exports (S3)",
    settings: &[
        SettingSpec::new("bucket", "the S3 bucket the export is delivered to")
            .required()
            .kind(SettingKind::Text),
        SettingSpec::new(
            "prefix",
            "the export's S3 path prefix (none: the bucket's root)",
        )
        .kind(SettingKind::Text),
        SettingSpec::new(
            "export",
            "the export's name (a legacy CUR: the report's name)",
        )
        .required()
        .kind(SettingKind::Text),
        SettingSpec::new("region", "the bucket's region (none: us-east-1)").kind(SettingKind::Text),
        SettingSpec::new(
            "endpoint",
            "an S3-compatible endpoint URL (none: AWS's own for the region)",
        )
        .kind(SettingKind::Url),
        SettingSpec::new(
            "access_key_id",
            "the IAM access key id that reads the bucket",
        )
        .required()
        .kind(SettingKind::Text),
        SettingSpec::new("secret_access_key", "the IAM secret access key")
            .required()
            .secret(),
        SettingSpec::new(
            "session_token",
            "a session token, for temporary credentials",
        )
        .secret(),
    ],
};

/// The AWS Data Exports provider.
#[derive(Debug, Clone, Copy)]
pub struct DataExports {
    connector: GuardedConnector,
}

impl Default for DataExports {
    fn default() -> Self {
        Self::from_env()
    }
}

impl DataExports {
    /// The provider, calling out under the outbound policy of the environment.
    pub fn from_env() -> Self {
        Self {
            connector: GuardedConnector::from_env(),
        }
    }

    /// The bucket and where the export lives in it.
    fn open(&self, settings: &Settings) -> Result<Opened, ProviderError> {
        let given = Given::new(settings);
        let bucket = given.required("bucket")?;
        let export = given.required("export")?;
        let prefix = given.value("prefix").unwrap_or("").trim_matches('/');
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_region(given.value("region").unwrap_or(DEFAULT_REGION))
            .with_access_key_id(given.required("access_key_id")?)
            .with_secret_access_key(given.secret("secret_access_key")?.expose())
            .with_http_connector(self.connector)
            .with_retry(GuardedConnector::retry());
        if let Some(token) = given.optional_secret("session_token") {
            builder = builder.with_token(token.expose());
        }
        if let Some(endpoint) = given.value("endpoint") {
            self.connector
                .check_url(endpoint)
                .map_err(ProviderError::InvalidRequest)?;
            builder = builder
                .with_endpoint(endpoint.trim_end_matches('/'))
                .with_allow_http(endpoint.starts_with("http://"))
                .with_virtual_hosted_style_request(false);
        }
        let store = builder.build().map_err(|e| {
            ProviderError::InvalidRequest(format!("the account's S3 settings: {e}"))
        })?;
        let root = if prefix.is_empty() {
            export.to_owned()
        } else {
            format!("{prefix}/{export}")
        };
        let export = Export {
            bucket: bucket.to_owned(),
            name: export.to_owned(),
            root,
            reading: Reading {
                provider: PROVIDER_NAME,
                kind: KIND,
                export: format!(
                    "s3://{bucket}/{}",
                    if prefix.is_empty() {
                        export.to_owned()
                    } else {
                        format!("{prefix}/{export}")
                    }
                ),
            },
        };
        Ok(Opened {
            store: Arc::new(store),
            export,
        })
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
    pub(crate) bucket: String,
    /// The export's (or report's) name.
    pub(crate) name: String,
    /// `<prefix>/<export>` (no slashes at the ends).
    pub(crate) root: String,
    pub(crate) reading: Reading,
}

#[async_trait]
impl BillingProvider for DataExports {
    fn spec(&self) -> &'static ProviderSpec {
        &SPEC
    }

    fn max_window_days(&self) -> u32 {
        MAX_WINDOW_DAYS
    }

    fn prepare(&self, settings: Settings) -> Result<Settings, ValidationError> {
        self.connector.check_endpoint_setting(&settings)?;
        Ok(settings)
    }

    /// Lists the export's billing periods: the credentials read the bucket and the export
    /// is there. Returns the periods found (`YYYY-MM`).
    async fn verify(&self, settings: &Settings) -> Result<Vec<String>, ProviderError> {
        let Opened { store, export } = self.open(settings)?;
        let periods = layout::periods(store.as_ref(), &export).await?;
        if periods.is_empty() {
            return Err(export.reading.invalid(format!(
                "no export found at {} (no metadata/BILLING_PERIOD=…/{}-Manifest.json, no CUR report folder)",
                export.reading.export, export.name
            )));
        }
        Ok(periods)
    }

    /// Billing periods are months: one window each.
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

    /// The window's revision is its periods' manifests (paths and bytes: a refresh writes a
    /// new manifest, with a new `executionId`, or a new create-new folder).
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
