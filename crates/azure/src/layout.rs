//! Where an Azure export puts its runs, and its manifests.

use chrono::{Datelike, NaiveDate};
use cloudbill_core::DateRange;
use cloudbill_exports::{months, Revision};
use cloudbill_provider::ProviderError;
use object_store::path::Path;
use object_store::ObjectStore;
use serde::Deserialize;

use crate::Export;

/// A run's manifest (`manifest.json`, or the older `_manifest.json`): the blobs it wrote
/// (other fields are not read).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// When and which run.
    #[serde(default)]
    pub run_info: Option<RunInfo>,
    /// The run's data blobs.
    pub blobs: Vec<Blob>,
    /// What the export writes (newer manifests).
    #[serde(default)]
    pub export_config: Option<ExportConfig>,
}

/// An export's configuration, as its manifest repeats it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportConfig {
    /// The dataset: `FocusCost`, `ActualCost`, `AmortizedCost`, …
    #[serde(default, rename = "type")]
    pub dataset: Option<String>,
}

/// A run's identity.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunInfo {
    /// When the run was submitted (RFC 3339).
    #[serde(default)]
    pub submitted_time: Option<String>,
    /// The run's id.
    #[serde(default)]
    pub run_id: Option<String>,
}

/// One data blob of a run.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Blob {
    /// Its name in the container.
    pub blob_name: String,
}

/// The month a run folder (`yyyymmdd-yyyymmdd`, the month's first and last day) covers.
pub fn month_of_folder(name: &str) -> Option<NaiveDate> {
    let (from, to) = name.split_once('-')?;
    let eight_digits = |s: &str| s.len() == 8 && s.bytes().all(|b| b.is_ascii_digit());
    if !eight_digits(from) || !eight_digits(to) {
        return None;
    }
    let from = NaiveDate::parse_from_str(from, "%Y%m%d").ok()?;
    NaiveDate::parse_from_str(to, "%Y%m%d").ok()?;
    from.with_day(1)
}

/// The export's month folders: (the month's first day, the folder).
pub(crate) async fn month_folders(
    store: &dyn ObjectStore,
    export: &Export,
) -> Result<Vec<(NaiveDate, Path)>, ProviderError> {
    let root = Path::from(export.root.clone());
    let listed = store
        .list_with_delimiter(Some(&root))
        .await
        .map_err(|e| export.reading.store_error(&e))?;
    let mut out: Vec<(NaiveDate, Path)> = listed
        .common_prefixes
        .into_iter()
        .filter_map(|folder| Some((month_of_folder(folder.filename()?)?, folder)))
        .collect();
    out.sort();
    Ok(out)
}

/// A run's manifest: where, what it says, its bytes.
type Run = (Path, Manifest, Vec<u8>);

/// The newest run's manifest in a month folder, read.
async fn newest_run(
    store: &dyn ObjectStore,
    export: &Export,
    folder: &Path,
) -> Result<Option<Run>, ProviderError> {
    let listed = export.reading.list(store, folder).await?;
    let mut best: Option<(Option<String>, chrono::DateTime<chrono::Utc>, Run)> = None;
    for meta in listed {
        let name = meta.location.filename().unwrap_or("");
        if name != "manifest.json" && name != "_manifest.json" {
            continue;
        }
        let Some(bytes) = export.reading.small_object(store, &meta.location).await? else {
            continue;
        };
        let manifest: Manifest = serde_json::from_slice(&bytes).map_err(|e| {
            export.reading.invalid(format!(
                "the manifest {} is not readable: {e}",
                meta.location
            ))
        })?;
        let submitted = manifest
            .run_info
            .as_ref()
            .and_then(|r| r.submitted_time.clone());
        let key = (submitted, meta.last_modified, meta.location.clone());
        let newer = best
            .as_ref()
            .is_none_or(|(s, t, (p, _, _))| (&key.0, key.1, &key.2) > (s, *t, p));
        if newer {
            best = Some((key.0, key.1, (key.2, manifest, bytes)));
        }
    }
    Ok(best.map(|(_, _, run)| run))
}

/// The blobs of the newest run of every month `window` touches.
pub(crate) async fn files_for(
    store: &dyn ObjectStore,
    export: &Export,
    window: DateRange,
) -> Result<cloudbill_exports::Plan, ProviderError> {
    let folders = month_folders(store, export).await?;
    let mut files = Vec::new();
    let mut revision = Revision::new(&export.reading.export);
    for month in months(window) {
        revision.add(month.to_string().as_bytes());
        // Several folders may name one month (a custom range); each holds its own runs,
        // and the newest run over all of them is the month's.
        let mut newest: Option<Run> = None;
        for (_, folder) in folders.iter().filter(|(m, _)| *m == month) {
            if let Some(found) = newest_run(store, export, folder).await? {
                if newest.as_ref().is_none_or(|(p, _, _)| found.0 > *p) {
                    newest = Some(found);
                }
            }
        }
        // A month without a run has no rows.
        let Some((path, manifest, bytes)) = newest else {
            revision.add(b"none");
            continue;
        };
        let dataset = manifest
            .export_config
            .as_ref()
            .and_then(|c| c.dataset.as_deref())
            .unwrap_or("");
        if dataset.eq_ignore_ascii_case("AmortizedCost") {
            return Err(export.reading.invalid(format!(
                "{path}: an AmortizedCost export has amortized costs and no billed cost; export the FocusCost dataset (both) or ActualCost"
            )));
        }
        revision.add(path.as_ref().as_bytes());
        revision.add(&bytes);
        files.extend(
            manifest
                .blobs
                .iter()
                .map(|b| Path::from(b.blob_name.trim_start_matches('/'))),
        );
    }
    Ok(cloudbill_exports::Plan {
        files,
        revision: revision.finish(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_folders_name_their_month() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert_eq!(month_of_folder("20240601-20240630"), Some(d("2024-06-01")));
        assert_eq!(month_of_folder("20240615-20240630"), Some(d("2024-06-01")));
        assert_eq!(month_of_folder("2024061-20240630"), None);
        assert_eq!(month_of_folder("runs"), None);
    }

    #[test]
    fn manifests_of_both_generations_are_read() {
        let new: Manifest = serde_json::from_str(
            r#"{"manifestVersion":"2024-04-01","runInfo":{"runId":"r1","submittedTime":"2024-06-02T01:00:00Z"},
                "blobs":[{"blobName":"p/e/20240601-20240630/r1/part_0_0001.csv.gz","byteCount":10}]}"#,
        )
        .unwrap();
        assert_eq!(
            new.blobs[0].blob_name,
            "p/e/20240601-20240630/r1/part_0_0001.csv.gz"
        );
        let old: Manifest = serde_json::from_str(r#"{"blobs":[{"blobName":"x.csv"}]}"#).unwrap();
        assert!(old.run_info.is_none());
    }
}
