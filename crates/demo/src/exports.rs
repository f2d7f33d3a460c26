//! Generated cloud exports: what AWS Data Exports delivers to S3 and what an Azure Cost
//! Management export writes to Blob Storage, as objects (key, bytes), and a small read-only
//! object server that serves them the way S3 (path-style) and Blob Storage do, so `cloudbill
//! demo --cloud` shows the connectors sync on one machine without a cloud.
//!
//! The connectors' tests run against moto and Azurite (real servers); this server only answers
//! what the connectors ask (list with prefix and delimiter, get whole objects) and is not a
//! stand-in for them in tests of the protocols.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use cloudbill_core::{DateRange, Decimal};

/// One line item of a generated export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportRow {
    /// The usage day.
    pub day: NaiveDate,
    /// `ServiceName`.
    pub service: String,
    /// `SubAccountId` (an AWS account id, an Azure subscription).
    pub sub_account: String,
    /// `BilledCost`, exact text.
    pub cost: String,
    /// `BillingCurrency`.
    pub currency: String,
    /// The `team` tag.
    pub team: String,
}

impl ExportRow {
    /// The row's cost as a decimal.
    pub fn billed(&self) -> Decimal {
        self.cost.parse().unwrap_or_default()
    }
}

/// Rows for every day of `range`: three services, amounts with up to 10 decimals, tagged by
/// team. `salt` varies the amounts (a restated refresh of the same days).
pub fn export_rows(
    range: DateRange,
    currency: &str,
    sub_account: &str,
    services: [&str; 3],
    salt: u64,
) -> Vec<ExportRow> {
    let mut rows = Vec::new();
    for (i, day) in range.iter_days().enumerate() {
        let n = u64::try_from(i).unwrap_or(0) + salt * 7;
        for (j, (service, team)) in services.iter().zip(["web", "data", "web"]).enumerate() {
            let whole = [57, 9, 2][j] + (n + j as u64) % 5;
            let fraction = (n * [7_919_191, 104_729, 1_299_709][j] + salt) % 10_000_000_000;
            rows.push(ExportRow {
                day,
                service: (*service).to_owned(),
                sub_account: sub_account.to_owned(),
                cost: format!("{whole}.{fraction:010}"),
                currency: currency.to_owned(),
                team: team.to_owned(),
            });
        }
    }
    rows
}

/// The rows as a FOCUS 1.0 CSV (the columns both clouds' FOCUS exports share), gzip'd.
pub fn focus_csv_gz(rows: &[ExportRow]) -> Vec<u8> {
    let mut csv = String::from(
        "BillingPeriodStart,BillingPeriodEnd,ChargePeriodStart,ChargePeriodEnd,BilledCost,EffectiveCost,BillingCurrency,ServiceName,SubAccountId,ChargeCategory,Tags\n",
    );
    for r in rows {
        let first = r.day.with_day(1).unwrap_or(r.day);
        let next = first
            .checked_add_months(chrono::Months::new(1))
            .unwrap_or(first);
        let end = r.day.succ_opt().unwrap_or(r.day);
        let _ = writeln!(csv,
            "{first}T00:00:00Z,{next}T00:00:00Z,{}T00:00:00Z,{end}T00:00:00Z,{},{},{},{},{},Usage,\"{{\"\"team\"\":\"\"{}\"\"}}\"",
            r.day, r.cost, r.cost, r.currency, r.service, r.sub_account, r.team
        );
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    // Writing to a Vec cannot fail.
    let _ = gz.write_all(csv.as_bytes());
    gz.finish().unwrap_or_default()
}

/// The rows grouped by billing period (first day of the month).
fn by_month(rows: &[ExportRow]) -> BTreeMap<NaiveDate, Vec<ExportRow>> {
    let mut out: BTreeMap<NaiveDate, Vec<ExportRow>> = BTreeMap::new();
    for r in rows {
        out.entry(r.day.with_day(1).unwrap_or(r.day))
            .or_default()
            .push(r.clone());
    }
    out
}

/// An AWS Data Exports FOCUS 1.0 export of `rows` in `bucket`, overwrite delivery, as AWS
/// lays it out: per billing period `<prefix>/<export>/data/BILLING_PERIOD=YYYY-MM/<export>-00001.csv.gz`
/// and `<prefix>/<export>/metadata/BILLING_PERIOD=YYYY-MM/<export>-Manifest.json` listing it
/// (`execution` names the refresh). Keys are relative to the bucket.
pub fn aws_objects(
    bucket: &str,
    prefix: &str,
    export: &str,
    rows: &[ExportRow],
    execution: &str,
) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for (month, rows) in by_month(rows) {
        let period = month.format("%Y-%m");
        let data = format!("{prefix}/{export}/data/BILLING_PERIOD={period}/{export}-00001.csv.gz");
        let manifest = serde_json::json!({
            "executionId": execution,
            "exportArn": format!("arn:aws:bcm-data-exports:us-east-1:111111111111:export/{export}"),
            "exportName": export,
            "billingPeriod": {"start": format!("{month}T00:00:00Z")},
            "dataFiles": [format!("s3://{bucket}/{data}")],
            "dataFileFormat": "text/csv", "compression": "GZIP",
        });
        out.push((data, focus_csv_gz(&rows)));
        out.push((
            format!("{prefix}/{export}/metadata/BILLING_PERIOD={period}/{export}-Manifest.json"),
            manifest.to_string().into_bytes(),
        ));
    }
    out
}

/// An Azure Cost Management FocusCost export of `rows`, one run per month, as Azure lays it
/// out: `<path>/<export>/<yyyymmdd-yyyymmdd>/<run>/part_0_0001.csv.gz` and the run's
/// `manifest.json` (`runInfo`, `blobs`). Keys are relative to the container.
pub fn azure_objects(
    path: &str,
    export: &str,
    rows: &[ExportRow],
    run: &str,
    submitted: DateTime<Utc>,
) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for (month, rows) in by_month(rows) {
        let last = month
            .checked_add_months(chrono::Months::new(1))
            .and_then(|d| d.pred_opt())
            .unwrap_or(month);
        let folder = format!(
            "{path}/{export}/{}-{}/{run}",
            month.format("%Y%m%d"),
            last.format("%Y%m%d")
        );
        let blob = format!("{folder}/part_0_0001.csv.gz");
        let manifest = serde_json::json!({
            "manifestVersion": "2024-04-01", "byteCount": 0, "blobCount": 1, "dataRowCount": rows.len(),
            "exportConfig": {"exportName": export, "type": "FocusCost", "dataVersion": "1.0"},
            "runInfo": {"runId": run, "submittedTime": submitted.to_rfc3339()},
            "blobs": [{"blobName": blob, "byteCount": 0, "dataRowCount": rows.len()}],
        });
        out.push((blob, focus_csv_gz(&rows)));
        out.push((
            format!("{folder}/manifest.json"),
            manifest.to_string().into_bytes(),
        ));
    }
    out
}

/// Which API an [`ObjectServer`] speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// S3, path-style: `/{bucket}/{key}`, `ListObjectsV2`.
    S3,
    /// Blob Storage: `/{account}/{container}/{blob}`, List Blobs.
    Blob,
}

/// `bucket/key` (S3) or `account/container/blob` (Blob) → bytes, when written.
type Objects = BTreeMap<String, (Vec<u8>, DateTime<Utc>)>;

#[derive(Clone)]
struct Served {
    flavor: Flavor,
    objects: Arc<Mutex<Objects>>,
}

/// A read-only object server on 127.0.0.1 (stops when dropped). It checks no signature.
pub struct ObjectServer {
    addr: SocketAddr,
    served: Served,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ObjectServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ObjectServer {
    /// Starts an empty server of `flavor`.
    ///
    /// # Errors
    /// The loopback port could not be bound.
    pub async fn start(flavor: Flavor) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let served = Served {
            flavor,
            objects: Arc::default(),
        };
        let app = Router::new()
            .route("/{*path}", get(serve))
            .with_state(served.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { addr, served, task })
    }

    /// The server's root URL (an account's `endpoint`; for Blob Storage add `/<account>`).
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Writes objects under `root` (`bucket` or `account/container`).
    pub fn put(&self, root: &str, objects: Vec<(String, Vec<u8>)>) {
        let now = Utc::now();
        let mut held = self
            .served
            .objects
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (key, body) in objects {
            held.insert(format!("{root}/{key}"), (body, now));
        }
    }
}

#[derive(serde::Deserialize, Default)]
struct ListQuery {
    prefix: Option<String>,
    delimiter: Option<String>,
    #[serde(rename = "list-type")]
    list_type: Option<String>,
    comp: Option<String>,
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

async fn serve(
    State(served): State<Served>,
    Path(path): Path<String>,
    Query(q): Query<ListQuery>,
) -> Response {
    let objects = served
        .objects
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let listing = match served.flavor {
        Flavor::S3 => q.list_type.is_some(),
        Flavor::Blob => q.comp.as_deref() == Some("list"),
    };
    if listing {
        list(served.flavor, &objects, &path, q)
    } else {
        get_object(&objects, &path)
    }
}

fn get_object(objects: &Objects, path: &str) -> Response {
    match objects.get(path) {
        Some((body, at)) => {
            let mut r = body.clone().into_response();
            let h = r.headers_mut();
            let etag = format!("\"{:x}-{}\"", body.len(), at.timestamp_micros());
            for (name, value) in [
                (header::LAST_MODIFIED, at.to_rfc2822()),
                (header::ETAG, etag),
                (header::CONTENT_TYPE, "application/octet-stream".into()),
            ] {
                if let Ok(v) = HeaderValue::from_str(&value) {
                    h.insert(name, v);
                }
            }
            r
        }
        None => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

/// A listing: `path` is the bucket (S3) or account/container (Blob).
fn list(flavor: Flavor, objects: &Objects, path: &str, q: ListQuery) -> Response {
    let root = format!("{}/", path.trim_end_matches('/'));
    let prefix = q.prefix.unwrap_or_default();
    let mut items = Vec::new();
    let mut folders = std::collections::BTreeSet::new();
    for (full, (body, at)) in objects {
        let Some(key) = full.strip_prefix(&root) else {
            continue;
        };
        let Some(rest) = key.strip_prefix(&prefix) else {
            continue;
        };
        match q
            .delimiter
            .as_deref()
            .and_then(|d| rest.find(d).map(|i| (i, d)))
        {
            Some((i, d)) => {
                folders.insert(format!("{prefix}{}{d}", &rest[..i]));
            }
            None => items.push((key.to_owned(), body.len(), *at)),
        }
    }
    let xml = match flavor {
        Flavor::S3 => {
            let mut x = String::from(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">",
            );
            for (key, size, at) in &items {
                let _ = write!(x,
                    "<Contents><Key>{}</Key><LastModified>{}</LastModified><ETag>\"{size:x}-{}\"</ETag><Size>{size}</Size><StorageClass>STANDARD</StorageClass></Contents>",
                    xml_escape(key),
                    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                    at.timestamp_micros()
                );
            }
            for f in &folders {
                let _ = write!(
                    x,
                    "<CommonPrefixes><Prefix>{}</Prefix></CommonPrefixes>",
                    xml_escape(f)
                );
            }
            let _ = write!(
                x,
                "<KeyCount>{}</KeyCount><IsTruncated>false</IsTruncated></ListBucketResult>",
                items.len() + folders.len()
            );
            x
        }
        Flavor::Blob => {
            let mut x = String::from(
                "<?xml version=\"1.0\" encoding=\"utf-8\"?><EnumerationResults><Blobs>",
            );
            for (key, size, at) in &items {
                let _ = write!(x,
                    "<Blob><Name>{}</Name><Properties><Last-Modified>{}</Last-Modified><Etag>\"{size:x}-{}\"</Etag><Content-Length>{size}</Content-Length><Content-Type>application/octet-stream</Content-Type><BlobType>BlockBlob</BlobType></Properties></Blob>",
                    xml_escape(key),
                    at.format("%a, %d %b %Y %H:%M:%S GMT"),
                    at.timestamp_micros()
                );
            }
            for f in &folders {
                let _ = write!(x, "<BlobPrefix><Name>{}</Name></BlobPrefix>", xml_escape(f));
            }
            x.push_str("</Blobs><NextMarker /></EnumerationResults>");
            x
        }
    };
    ([(header::CONTENT_TYPE, "application/xml")], xml).into_response()
}
