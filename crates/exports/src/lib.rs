//! What the cloud-export providers share: reading the bill files a cloud delivers to an object
//! store (S3, Blob Storage) into exact cost records.
//!
//! A data file is streamed to a temporary file (never held in memory whole), then read on a
//! blocking thread: gzip'd or plain CSV through [`cloudbill_focus::open_bill`] (FOCUS, legacy
//! CUR, CUR 2.0), Parquet through [`cloudbill_focus::parquet_to_csv`] first. Only the records of
//! the asked window are kept, stamped with the provider's kind. One bad row fails the fetch
//! (the account's sync fails and says where): a bill is never kept in part.
//!
//! Limits: a manifest is at most [`MAX_MANIFEST_BYTES`]; a data file at most
//! [`MAX_DATA_FILE_BYTES`] (it needs that much free space in the temporary directory).
//!
//! **Architecture invariant:** knows object stores and bill files, no provider's layout (the
//! provider crates find their manifests); depends on `cloudbill-core`, `-provider`, `-focus`.

use std::io::{Read, Seek, SeekFrom, Write};
use std::sync::Arc;

use cloudbill_core::{CostRecord, DateRange, ProviderKind};
use cloudbill_focus::{for_each_record, open_bill, parquet_to_csv, ImportOptions};
use cloudbill_provider::{FetchScope, ProviderError, RecordSink, CHUNK_RECORDS};
use futures::StreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

/// The largest manifest read (a month of a large export lists a few thousand files).
pub const MAX_MANIFEST_BYTES: u64 = 16 * 1024 * 1024;

/// The largest data file read: 64 GiB.
pub const MAX_DATA_FILE_BYTES: u64 = 64 * 1024 * 1024 * 1024;

/// Who is reading what, for errors: the provider's display name and the account's words for
/// the export (`bucket/prefix/export`).
#[derive(Debug, Clone)]
pub struct Reading {
    /// The provider's display name.
    pub provider: &'static str,
    /// The provider's kind, stamped on every record.
    pub kind: ProviderKind,
    /// The export as the account names it (its location), for errors.
    pub export: String,
}

impl Reading {
    /// An object-store failure as the provider error the caller acts on: refused
    /// credentials are [`ProviderError::Unauthorized`], a missing object or bucket
    /// [`ProviderError::InvalidResponse`], the rest [`ProviderError::Unavailable`] (the
    /// store's client retried already).
    pub fn store_error(&self, e: &object_store::Error) -> ProviderError {
        match e {
            object_store::Error::Unauthenticated { .. }
            | object_store::Error::PermissionDenied { .. } => ProviderError::Unauthorized {
                provider: self.provider,
                account: self.export.clone(),
            },
            object_store::Error::NotFound { path, .. } => self.invalid(format!(
                "{path} is not in {} (the export's files are incomplete or were moved)",
                self.export
            )),
            other => {
                let text = other.to_string();
                // The clients report a refused signature or key as a generic error with
                // the HTTP status in its text.
                if text.contains("403 Forbidden")
                    || text.contains("401 Unauthorized")
                    || text.contains("InvalidAccessKeyId")
                    || text.contains("SignatureDoesNotMatch")
                    || text.contains("AuthenticationFailed")
                {
                    ProviderError::Unauthorized {
                        provider: self.provider,
                        account: self.export.clone(),
                    }
                } else {
                    ProviderError::Unavailable {
                        provider: self.provider,
                        attempts: 1,
                        last_error: truncated(&text),
                    }
                }
            }
        }
    }

    /// Data the export holds that cannot be read.
    pub fn invalid(&self, detail: impl AsRef<str>) -> ProviderError {
        ProviderError::InvalidResponse {
            provider: self.provider,
            detail: truncated(detail.as_ref()),
        }
    }

    /// A small object (a manifest) whole, or `None` when there is none at `path`.
    pub async fn small_object(
        &self,
        store: &dyn ObjectStore,
        path: &Path,
    ) -> Result<Option<Vec<u8>>, ProviderError> {
        let got = match store.get(path).await {
            Ok(got) => got,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(self.store_error(&e)),
        };
        if got.meta.size > MAX_MANIFEST_BYTES {
            return Err(self.invalid(format!(
                "{path} is {} bytes (a manifest is at most {MAX_MANIFEST_BYTES})",
                got.meta.size
            )));
        }
        let bytes = got.bytes().await.map_err(|e| self.store_error(&e))?;
        Ok(Some(bytes.to_vec()))
    }

    /// Every object under `prefix` (recursively), in name order.
    pub async fn list(
        &self,
        store: &dyn ObjectStore,
        prefix: &Path,
    ) -> Result<Vec<object_store::ObjectMeta>, ProviderError> {
        let mut listed = store.list(Some(prefix));
        let mut out = Vec::new();
        while let Some(meta) = listed.next().await {
            out.push(meta.map_err(|e| self.store_error(&e))?);
        }
        out.sort_by(|a, b| a.location.cmp(&b.location));
        Ok(out)
    }

    /// The records of `window` in the data files `files` (read one after the other, each
    /// through a temporary file), whole.
    pub async fn records(
        &self,
        store: Arc<dyn ObjectStore>,
        files: &[Path],
        scope: FetchScope,
        window: DateRange,
    ) -> Result<Vec<CostRecord>, ProviderError> {
        let (sink, mut rx) = tokio::sync::mpsc::channel(4);
        let read = self.records_into(store, files, scope, window, sink);
        let collect = async {
            let mut out = Vec::new();
            while let Some(chunk) = rx.recv().await {
                out.extend(chunk);
            }
            out
        };
        let (read, out) = tokio::join!(read, collect);
        read.map(|()| out)
    }

    /// The records of `window` in the data files `files`, sent to `sink` in chunks of
    /// [`CHUNK_RECORDS`] as each file is read (each through a temporary file): memory holds a
    /// few chunks, whatever the files' size. A closed sink stops the read.
    pub async fn records_into(
        &self,
        store: Arc<dyn ObjectStore>,
        files: &[Path],
        scope: FetchScope,
        window: DateRange,
        sink: RecordSink,
    ) -> Result<(), ProviderError> {
        for path in files {
            if sink.is_closed() {
                return Ok(());
            }
            let file = self.download(store.as_ref(), path).await?;
            let reading = self.clone();
            let name = path.to_string();
            let sink = sink.clone();
            tokio::task::spawn_blocking(move || {
                let mut chunk = Vec::with_capacity(CHUNK_RECORDS);
                let mut open = true;
                reading.records_in_file(file, &name, scope, window, &mut |r| {
                    if !open {
                        return;
                    }
                    chunk.push(r);
                    if chunk.len() == CHUNK_RECORDS {
                        open = sink.blocking_send(std::mem::take(&mut chunk)).is_ok();
                    }
                })?;
                if open && !chunk.is_empty() {
                    // A closed sink: the writer stopped and reports why.
                    let _ = sink.blocking_send(chunk);
                }
                Ok::<(), ProviderError>(())
            })
            .await
            .map_err(|e| self.invalid(format!("reading {path} stopped: {e}")))??;
        }
        Ok(())
    }

    /// `path` streamed into a temporary file (deleted when dropped), rewound.
    async fn download(
        &self,
        store: &dyn ObjectStore,
        path: &Path,
    ) -> Result<std::fs::File, ProviderError> {
        let got = store.get(path).await.map_err(|e| self.store_error(&e))?;
        if got.meta.size > MAX_DATA_FILE_BYTES {
            return Err(self.invalid(format!(
                "{path} is {} bytes (a data file is at most {MAX_DATA_FILE_BYTES})",
                got.meta.size
            )));
        }
        let local = |e: std::io::Error| ProviderError::Unavailable {
            provider: self.provider,
            attempts: 1,
            last_error: format!("cannot keep {path} in a temporary file: {e}"),
        };
        let mut file = tempfile::tempfile().map_err(local)?;
        let mut stream = got.into_stream();
        let mut written = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| self.store_error(&e))?;
            written += chunk.len() as u64;
            if written > MAX_DATA_FILE_BYTES {
                return Err(
                    self.invalid(format!("{path} is larger than {MAX_DATA_FILE_BYTES} bytes"))
                );
            }
            file.write_all(&chunk).map_err(local)?;
        }
        file.seek(SeekFrom::Start(0)).map_err(local)?;
        Ok(file)
    }

    /// Hands each record of `window` in one downloaded data file to `each` (blocking).
    fn records_in_file(
        &self,
        mut file: std::fs::File,
        name: &str,
        scope: FetchScope,
        window: DateRange,
        each: &mut dyn FnMut(CostRecord),
    ) -> Result<(), ProviderError> {
        let local = |e: std::io::Error| self.invalid(format!("{name}: {e}"));
        let mut magic = [0u8; 4];
        let n = file.read(&mut magic).map_err(local)?;
        file.seek(SeekFrom::Start(0)).map_err(local)?;
        let csv = if n == 4 && &magic == b"PAR1" {
            let mut csv = tempfile::tempfile().map_err(local)?;
            parquet_to_csv(file, std::io::BufWriter::new(&mut csv), name)
                .map_err(|e| self.invalid(e.to_string()))?;
            csv.seek(SeekFrom::Start(0)).map_err(local)?;
            csv
        } else {
            file
        };
        let opened = open_bill(csv, name).map_err(|e| self.invalid(e.to_string()))?;
        for_each_record(
            opened.csv,
            name,
            opened.format,
            scope.domain,
            scope.service_account,
            ImportOptions::default(),
            |mut r| {
                if window.contains(r.date) {
                    r.provider = self.kind;
                    each(r);
                }
            },
        )
        .map_err(|e| self.invalid(e.to_string()))?;
        Ok(())
    }
}

/// What a window reads: the data files its periods' manifests list, and the revision of those
/// manifests.
#[derive(Debug)]
pub struct Plan {
    /// The data files, in reading order.
    pub files: Vec<Path>,
    /// The manifests' [`Revision`].
    pub revision: String,
}

/// An account's export, opened: its provider crate finds a window's files; reading them is
/// shared ([`fetch`], [`revision`], [`fetch_into`]).
#[async_trait::async_trait]
pub trait OpenedExport: Send + Sync {
    /// The bucket or container.
    fn store(&self) -> Arc<dyn ObjectStore>;
    /// Who reads what, for errors.
    fn reading(&self) -> &Reading;
    /// The files of `window` and their revision.
    async fn plan(&self, window: DateRange) -> Result<Plan, ProviderError>;
}

/// Every record of `window` (at most `max_days` days, checked before the export is opened)
/// in the files of the export `open` gives.
///
/// # Errors
/// What opening, planning or reading the files meets.
pub async fn fetch<O: OpenedExport>(
    open: impl FnOnce() -> Result<O, ProviderError>,
    (scope, window, max_days): (FetchScope, DateRange, u32),
) -> Result<Vec<CostRecord>, ProviderError> {
    cloudbill_provider::check_window(window, max_days)?;
    let export = open()?;
    let plan = export.plan(window).await?;
    export
        .reading()
        .records(export.store(), &plan.files, scope, window)
        .await
}

/// The revision of `window`'s manifests.
///
/// # Errors
/// What planning meets.
pub async fn revision<O: OpenedExport>(
    open: impl FnOnce() -> Result<O, ProviderError>,
    window: DateRange,
    max_days: u32,
) -> Result<Option<String>, ProviderError> {
    cloudbill_provider::check_window(window, max_days)?;
    Ok(Some(open()?.plan(window).await?.revision))
}

/// [`fetch`] in chunks to `sink`.
///
/// # Errors
/// What planning or reading the files meets.
pub async fn fetch_into<O: OpenedExport>(
    open: impl FnOnce() -> Result<O, ProviderError>,
    (scope, window, max_days): (FetchScope, DateRange, u32),
    sink: RecordSink,
) -> Result<(), ProviderError> {
    cloudbill_provider::check_window(window, max_days)?;
    let export = open()?;
    let plan = export.plan(window).await?;
    export
        .reading()
        .records_into(export.store(), &plan.files, scope, window, sink)
        .await
}

/// What a fetch read to find its files (the export's location, each period's manifest: its
/// path and bytes), as a token: equal tokens, same files with the same contents, so a window
/// whose token has not moved since it was written is not read again.
///
/// The token starts with [`MAPPING_VERSION`]: a cloudbill that maps bill columns differently
/// bumps it, and every window is read again once.
#[derive(Debug, Clone)]
pub struct Revision(sha2::Sha256);

/// The version of how the export providers map bill files to records (see [`Revision`]).
pub const MAPPING_VERSION: &str = "exports-v1";

impl Revision {
    /// A token of `location` (the export as the account names it).
    pub fn new(location: &str) -> Self {
        let mut revision = Self(sha2::Sha256::default());
        revision.add(MAPPING_VERSION.as_bytes());
        revision.add(location.as_bytes());
        revision
    }

    /// Adds one part (length-prefixed, so parts cannot run into each other).
    pub fn add(&mut self, part: &[u8]) {
        use sha2::Digest;
        self.0.update((part.len() as u64).to_le_bytes());
        self.0.update(part);
    }

    /// The token.
    pub fn finish(self) -> String {
        use sha2::Digest;
        format!("{MAPPING_VERSION}:{}", hex::encode(self.0.finalize()))
    }
}

/// The first day of each billing period (calendar month) `window` touches.
pub fn months(window: DateRange) -> Vec<chrono::NaiveDate> {
    use chrono::{Datelike, Months, NaiveDate};
    let mut out = Vec::new();
    let start = window.start();
    let mut month = NaiveDate::from_ymd_opt(start.year(), start.month(), 1).unwrap_or(start);
    while month <= window.last_day() {
        out.push(month);
        match month.checked_add_months(Months::new(1)) {
            Some(next) => month = next,
            None => break,
        }
    }
    out
}

fn truncated(text: &str) -> String {
    const MAX: usize = 600;
    if text.len() <= MAX {
        return text.to_owned();
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// `s3://bucket/key` or a bare key as the key inside `bucket` (`None`: another bucket).
pub fn key_in_bucket<'a>(uri: &'a str, bucket: &str) -> Option<&'a str> {
    match uri.strip_prefix("s3://") {
        Some(rest) => {
            let (b, key) = rest.split_once('/')?;
            (b == bucket).then_some(key)
        }
        None => Some(uri.trim_start_matches('/')),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_read_from_uris_of_the_bucket() {
        assert_eq!(key_in_bucket("s3://b/p/x.csv.gz", "b"), Some("p/x.csv.gz"));
        assert_eq!(key_in_bucket("s3://other/p/x", "b"), None);
        assert_eq!(key_in_bucket("/p/x", "b"), Some("p/x"));
        assert_eq!(truncated(&"é".repeat(400)).chars().count(), 301);
    }
}

/// object_store's HTTP clients built by the outbound policy (no link-local addresses, no
/// redirects elsewhere, bounded connect time) with a long request timeout: a data file of
/// gigabytes is one request.
#[derive(Debug, Clone, Copy)]
pub struct GuardedConnector {
    policy: cloudbill_outbound::Policy,
}

impl GuardedConnector {
    /// The policy from the environment (`CLOUDBILL_ALLOW_LINK_LOCAL_ENDPOINTS`), requests of
    /// up to an hour.
    pub fn from_env() -> Self {
        Self {
            policy: cloudbill_outbound::Policy {
                request_timeout: std::time::Duration::from_secs(3600),
                ..cloudbill_outbound::Policy::from_env()
            },
        }
    }

    /// How a store client retries: a few times within a minute (a sync retries the account
    /// on its next run; a verify answers while the user waits).
    pub fn retry() -> object_store::RetryConfig {
        object_store::RetryConfig {
            backoff: object_store::BackoffConfig::default(),
            max_retries: 3,
            retry_timeout: std::time::Duration::from_secs(60),
        }
    }

    /// Refuses an endpoint the policy refuses (a link-local IP).
    ///
    /// # Errors
    /// [`cloudbill_outbound::LINK_LOCAL`].
    pub fn check_url(&self, url: &str) -> Result<(), String> {
        self.policy.check_url(url)
    }

    /// Refuses an account whose `endpoint` setting the policy refuses (for `prepare`).
    ///
    /// # Errors
    /// [`cloudbill_core::ValidationError::Endpoint`] with the policy's reason.
    pub fn check_endpoint_setting(
        &self,
        settings: &cloudbill_core::Settings,
    ) -> Result<(), cloudbill_core::ValidationError> {
        match settings.value("endpoint") {
            Some(endpoint) => self.check_url(endpoint).map_err(|reason| {
                cloudbill_core::ValidationError::Endpoint {
                    value: endpoint.to_owned(),
                    reason,
                }
            }),
            None => Ok(()),
        }
    }
}

impl object_store::client::HttpConnector for GuardedConnector {
    fn connect(
        &self,
        _options: &object_store::ClientOptions,
    ) -> object_store::Result<object_store::client::HttpClient> {
        let client = self
            .policy
            .client()
            .map_err(|e| object_store::Error::Generic {
                store: "cloudbill",
                source: e.into(),
            })?;
        Ok(object_store::client::HttpClient::new(client))
    }
}
