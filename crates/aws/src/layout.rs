//! Where AWS puts an export's files, and its manifests.

use chrono::{Months, NaiveDate};
use cloudbill_core::DateRange;
use cloudbill_exports::{key_in_bucket, months, Revision};
use cloudbill_provider::ProviderError;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore};
use serde::Deserialize;

use crate::Export;

/// A Data Exports manifest: the files of one billing period (other fields are not read).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DataExportsManifest {
    /// The period's data files, as `s3://bucket/key` URIs.
    pub data_files: Vec<String>,
}

/// A legacy CUR manifest (`reportKeys`: the keys of the period's report files).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LegacyManifest {
    /// The report's files, as keys in the bucket.
    pub report_keys: Vec<String>,
}

/// The billing period (`YYYY-MM`) a Data Exports metadata key names in its
/// `BILLING_PERIOD=YYYY-MM` folder (any case), if any.
pub fn manifest_period(key: &str) -> Option<String> {
    key.split('/').find_map(|segment| {
        let (name, value) = segment.split_once('=')?;
        if !name.eq_ignore_ascii_case("billing_period") {
            return None;
        }
        let first = NaiveDate::parse_from_str(&format!("{value}-01"), "%Y-%m-%d").ok()?;
        Some(first.format("%Y-%m").to_string())
    })
}

/// The legacy CUR folder of the period starting `month`: `yyyymmdd-yyyymmdd`.
fn legacy_folder(month: NaiveDate) -> String {
    let next = month.checked_add_months(Months::new(1)).unwrap_or(month);
    format!("{}-{}", month.format("%Y%m%d"), next.format("%Y%m%d"))
}

/// The newest Data Exports manifest of each period, from a listing of `metadata/`.
fn newest_manifests(export: &Export, listed: &[ObjectMeta]) -> Vec<(String, Path)> {
    let suffix = format!("{}-Manifest.json", export.name);
    let mut best: std::collections::BTreeMap<String, &ObjectMeta> =
        std::collections::BTreeMap::new();
    for meta in listed {
        let key = meta.location.as_ref();
        if !key.ends_with(&suffix) {
            continue;
        }
        let Some(period) = manifest_period(key) else {
            continue;
        };
        let newer = best
            .get(&period)
            .is_none_or(|b| (meta.last_modified, &meta.location) > (b.last_modified, &b.location));
        if newer {
            best.insert(period, meta);
        }
    }
    best.into_iter()
        .map(|(p, m)| (p, m.location.clone()))
        .collect()
}

async fn data_exports_manifests(
    store: &dyn ObjectStore,
    export: &Export,
) -> Result<Vec<(String, Path)>, ProviderError> {
    let metadata = Path::from(format!("{}/metadata", export.root));
    let listed = export.reading.list(store, &metadata).await?;
    Ok(newest_manifests(export, &listed))
}

/// Every billing period the export has (Data Exports manifests and legacy CUR folders).
pub(crate) async fn periods(
    store: &dyn ObjectStore,
    export: &Export,
) -> Result<Vec<String>, ProviderError> {
    let mut out: Vec<String> = data_exports_manifests(store, export)
        .await?
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    let root = Path::from(export.root.clone());
    let listed = store
        .list_with_delimiter(Some(&root))
        .await
        .map_err(|e| export.reading.store_error(&e))?;
    for folder in listed.common_prefixes {
        let Some(name) = folder.filename() else {
            continue;
        };
        if let Some((from, _)) = name.split_once('-') {
            if let Ok(day) = NaiveDate::parse_from_str(from, "%Y%m%d") {
                out.push(day.format("%Y-%m").to_string());
            }
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// The data files of every billing period `window` touches, as the periods' manifests list
/// them.
pub(crate) async fn files_for(
    store: &dyn ObjectStore,
    export: &Export,
    window: DateRange,
) -> Result<cloudbill_exports::Plan, ProviderError> {
    let manifests = data_exports_manifests(store, export).await?;
    let mut files = Vec::new();
    let mut revision = Revision::new(&export.reading.export);
    for month in months(window) {
        let period = month.format("%Y-%m").to_string();
        revision.add(period.as_bytes());
        let keys = match manifests.iter().find(|(p, _)| *p == period) {
            Some((_, path)) => {
                let manifest: DataExportsManifest =
                    read_manifest(store, export, path, &mut revision)
                        .await?
                        .ok_or_else(|| gone(export, path))?;
                manifest.data_files
            }
            None => {
                let path = Path::from(format!(
                    "{}/{}/{}-Manifest.json",
                    export.root,
                    legacy_folder(month),
                    export.name
                ));
                match read_manifest::<LegacyManifest>(store, export, &path, &mut revision).await? {
                    Some(manifest) => manifest.report_keys,
                    // The period was not delivered (yet): it has no rows.
                    None => Vec::new(),
                }
            }
        };
        for uri in keys {
            let key = key_in_bucket(&uri, &export.bucket).ok_or_else(|| {
                export.reading.invalid(format!(
                    "the manifest of {period} lists {uri}, outside the bucket {}",
                    export.bucket
                ))
            })?;
            files.push(Path::from(key));
        }
    }
    Ok(cloudbill_exports::Plan {
        files,
        revision: revision.finish(),
    })
}

fn gone(export: &Export, path: &Path) -> ProviderError {
    export
        .reading
        .invalid(format!("the manifest {path} disappeared while it was read"))
}

/// A manifest read and parsed (`None`: not there), its path and bytes added to `revision`.
async fn read_manifest<T: serde::de::DeserializeOwned>(
    store: &dyn ObjectStore,
    export: &Export,
    path: &Path,
    revision: &mut Revision,
) -> Result<Option<T>, ProviderError> {
    revision.add(path.as_ref().as_bytes());
    let Some(bytes) = export.reading.small_object(store, path).await? else {
        revision.add(b"none");
        return Ok(None);
    };
    revision.add(&bytes);
    serde_json::from_slice(&bytes).map(Some).map_err(|e| {
        export
            .reading
            .invalid(format!("the manifest {path} is not readable: {e}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_are_read_from_partition_folders_in_any_case() {
        let p = |k| manifest_period(k);
        assert_eq!(
            p("x/e/metadata/BILLING_PERIOD=2025-03/e-Manifest.json").as_deref(),
            Some("2025-03")
        );
        assert_eq!(
            p("x/e/metadata/billing_period=2025-03/20250402T010203Z-abc/e-Manifest.json")
                .as_deref(),
            Some("2025-03")
        );
        assert_eq!(
            p("x/e/metadata/BILLING_PERIOD=2025-13/e-Manifest.json"),
            None
        );
        assert_eq!(p("x/e/metadata/e-Manifest.json"), None);
    }

    #[test]
    fn a_window_touches_the_months_it_overlaps() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let w = DateRange::new(d("2025-01-20"), d("2025-02-10")).unwrap();
        assert_eq!(months(w), vec![d("2025-01-01"), d("2025-02-01")]);
        assert_eq!(legacy_folder(d("2025-12-01")), "20251201-20260101");
    }
}
