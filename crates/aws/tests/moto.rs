//! The AWS Data Exports provider against a real S3 server: moto in server mode, which
//! `.ci/run` installs and starts (`CLOUDBILL_TEST_S3_ENDPOINT`). Without it the tests skip,
//! loudly; with `CLOUDBILL_REQUIRE_CLOUD_SERVERS=1` (CI) a skip is a failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)]

use std::io::Write;
use std::sync::Arc;

use chrono::NaiveDate;
use cloudbill_aws::DataExports;
use cloudbill_core::{AccountId, ClientSecret, CostRecord, DateRange, Decimal, DomainId, Settings};
use cloudbill_provider::{BillingProvider, FetchScope, ProviderError};
use object_store::aws::AmazonS3Builder;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

fn endpoint() -> Option<String> {
    match std::env::var("CLOUDBILL_TEST_S3_ENDPOINT") {
        Ok(e) if !e.is_empty() => Some(e),
        _ => {
            assert!(
                std::env::var("CLOUDBILL_REQUIRE_CLOUD_SERVERS").as_deref() != Ok("1"),
                "CLOUDBILL_TEST_S3_ENDPOINT is not set and CLOUDBILL_REQUIRE_CLOUD_SERVERS=1: the S3 tests must run"
            );
            eprintln!(
                "SKIPPED: the S3 tests need moto (CLOUDBILL_TEST_S3_ENDPOINT=http://127.0.0.1:PORT; see .ci/run)"
            );
            None
        }
    }
}

/// A fresh bucket on the server, and a store to write into it.
async fn bucket(endpoint: &str) -> (String, Arc<dyn ObjectStore>) {
    let name = format!("cb-{}", uuid_like());
    let created = reqwest::Client::new()
        .put(format!("{endpoint}/{name}"))
        .send()
        .await
        .unwrap();
    assert!(created.status().is_success(), "{:?}", created.status());
    let store = AmazonS3Builder::new()
        .with_bucket_name(&name)
        .with_region("us-east-1")
        .with_access_key_id("testing")
        .with_secret_access_key("testing")
        .with_endpoint(endpoint)
        .with_allow_http(true)
        .build()
        .unwrap();
    (name, Arc::new(store))
}

fn uuid_like() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{nanos:x}{:x}", std::process::id())
}

fn settings(endpoint: &str, bucket: &str, prefix: &str, export: &str) -> Settings {
    Settings::default()
        .with_value("bucket", bucket)
        .with_value("prefix", prefix)
        .with_value("export", export)
        .with_value("endpoint", endpoint)
        .with_value("access_key_id", "testing")
        .with_secret("secret_access_key", ClientSecret::new("testing").unwrap())
}

fn gz(text: &str) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(text.as_bytes()).unwrap();
    e.finish().unwrap()
}

async fn put(store: &Arc<dyn ObjectStore>, key: &str, bytes: Vec<u8>) {
    store
        .put(&Path::from(key), PutPayload::from(bytes))
        .await
        .unwrap();
}

const HEADER: &str =
    "BillingPeriodStart,BillingPeriodEnd,ChargePeriodStart,ChargePeriodEnd,BilledCost,BillingCurrency,ServiceName,SubAccountId\n";

fn row(day: &str, cost: &str, currency: &str) -> String {
    let d = NaiveDate::parse_from_str(day, "%Y-%m-%d").unwrap();
    let month = d.format("%Y-%m-01").to_string();
    let next = chrono::Months::new(1);
    let end = (NaiveDate::parse_from_str(&month, "%Y-%m-%d").unwrap() + next).to_string();
    format!(
        "{month}T00:00:00Z,{end}T00:00:00Z,{d}T00:00:00Z,{}T00:00:00Z,{cost},{currency},Amazon EC2,111122223333\n",
        d.succ_opt().unwrap()
    )
}

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn window(a: &str, b: &str) -> DateRange {
    DateRange::new(day(a), day(b)).unwrap()
}

fn scope() -> FetchScope {
    FetchScope {
        domain: DomainId::new(),
        service_account: AccountId::new(),
    }
}

/// (day, amount, currency) of each record, sorted.
fn seen(records: &[CostRecord]) -> Vec<(String, String, String)> {
    let mut out: Vec<_> = records
        .iter()
        .map(|r| {
            (
                r.date.to_string(),
                r.cost.amount().to_string(),
                r.cost.currency_str().to_owned(),
            )
        })
        .collect();
    out.sort();
    out
}

async fn manifest(store: &Arc<dyn ObjectStore>, bucket: &str, key: &str, files: &[&str]) {
    let uris: Vec<String> = files.iter().map(|f| format!("s3://{bucket}/{f}")).collect();
    let body = serde_json::json!({
        "version": "1.0", "exportName": "exp", "billingPeriod": "x",
        "dataFiles": uris, "columns": [],
    });
    put(store, key, body.to_string().into_bytes()).await;
}

#[tokio::test]
async fn data_exports_are_read_as_their_manifests_say() {
    let Some(endpoint) = endpoint() else { return };
    let (bucket, store) = bucket(&endpoint).await;
    let provider = DataExports::from_env();
    // January: overwrite delivery, one gzip'd FOCUS CSV; exact to 10 decimals, two currencies.
    let jan = "billing/exp/data/BILLING_PERIOD=2025-01/exp-00001.csv.gz";
    put(
        &store,
        jan,
        gz(&format!(
            "{HEADER}{}{}{}",
            row("2025-01-05", "0.0000000001", "USD"),
            row("2025-01-10", "7.10", "EUR"),
            row("2025-01-31", "12345.6789012345", "USD"),
        )),
    )
    .await;
    manifest(
        &store,
        &bucket,
        "billing/exp/metadata/BILLING_PERIOD=2025-01/exp-Manifest.json",
        &[jan],
    )
    .await;
    // February: create-new delivery, two refreshes; the partition folder in lower case.
    let old = "billing/exp/data/billing_period=2025-02/20250301T000000Z-aaa/exp-00001.csv.gz";
    let new = "billing/exp/data/billing_period=2025-02/20250302T000000Z-bbb/exp-00001.csv.gz";
    put(
        &store,
        old,
        gz(&format!("{HEADER}{}", row("2025-02-01", "100", "USD"))),
    )
    .await;
    put(
        &store,
        new,
        gz(&format!("{HEADER}{}", row("2025-02-01", "90.50", "USD"))),
    )
    .await;
    manifest(
        &store,
        &bucket,
        "billing/exp/metadata/billing_period=2025-02/20250301T000000Z-aaa/exp-Manifest.json",
        &[old],
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    manifest(
        &store,
        &bucket,
        "billing/exp/metadata/billing_period=2025-02/20250302T000000Z-bbb/exp-Manifest.json",
        &[new],
    )
    .await;

    let s = settings(&endpoint, &bucket, "billing", "exp");
    assert_eq!(
        provider.verify(&s).await.unwrap(),
        vec!["2025-01".to_owned(), "2025-02".to_owned()]
    );
    let january = provider
        .fetch(&s, scope(), window("2025-01-01", "2025-02-01"))
        .await
        .unwrap();
    assert_eq!(
        seen(&january),
        vec![
            ("2025-01-05".into(), "0.0000000001".into(), "USD".into()),
            ("2025-01-10".into(), "7.10".into(), "EUR".into()),
            ("2025-01-31".into(), "12345.6789012345".into(), "USD".into()),
        ]
    );
    assert!(january
        .iter()
        .all(|r| r.provider == cloudbill_aws::KIND && r.cloud_account == "111122223333"));
    // A window over two periods reads both manifests, and only the newest refresh.
    let across = provider
        .fetch(&s, scope(), window("2025-01-20", "2025-02-10"))
        .await
        .unwrap();
    assert_eq!(
        seen(&across),
        vec![
            ("2025-01-31".into(), "12345.6789012345".into(), "USD".into()),
            ("2025-02-01".into(), "90.50".into(), "USD".into()),
        ]
    );
    // A period not delivered has no rows.
    assert!(provider
        .fetch(&s, scope(), window("2025-03-01", "2025-03-10"))
        .await
        .unwrap()
        .is_empty());

    // Restated: January's manifest now lists a new file; the next fetch reads it instead.
    let restated = "billing/exp/data/BILLING_PERIOD=2025-01/exp-00002.csv.gz";
    put(
        &store,
        restated,
        gz(&format!("{HEADER}{}", row("2025-01-05", "3.25", "USD"))),
    )
    .await;
    manifest(
        &store,
        &bucket,
        "billing/exp/metadata/BILLING_PERIOD=2025-01/exp-Manifest.json",
        &[restated],
    )
    .await;
    assert_eq!(
        seen(
            &provider
                .fetch(&s, scope(), window("2025-01-01", "2025-02-01"))
                .await
                .unwrap()
        ),
        vec![("2025-01-05".into(), "3.25".into(), "USD".into())]
    );

    // A file the manifest lists but the bucket lacks fails the fetch, naming it.
    manifest(
        &store,
        &bucket,
        "billing/exp/metadata/BILLING_PERIOD=2025-01/exp-Manifest.json",
        &[
            restated,
            "billing/exp/data/BILLING_PERIOD=2025-01/gone.csv.gz",
        ],
    )
    .await;
    let err = provider
        .fetch(&s, scope(), window("2025-01-01", "2025-02-01"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ProviderError::InvalidResponse { detail, .. } if detail.contains("gone.csv.gz")),
        "{err}"
    );

    // A broken manifest and a non-bill file are named too.
    put(
        &store,
        "billing/exp/metadata/BILLING_PERIOD=2025-01/exp-Manifest.json",
        b"{not json".to_vec(),
    )
    .await;
    let err = provider
        .fetch(&s, scope(), window("2025-01-01", "2025-02-01"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not readable"), "{err}");

    // A manifest past the documented bound is refused, not read.
    let mut huge = b"{\"dataFiles\": [], \"pad\": \"".to_vec();
    huge.resize(
        usize::try_from(cloudbill_exports::MAX_MANIFEST_BYTES).unwrap() + 1,
        b'x',
    );
    put(
        &store,
        "billing/exp/metadata/BILLING_PERIOD=2025-01/exp-Manifest.json",
        huge,
    )
    .await;
    let err = provider
        .fetch(&s, scope(), window("2025-01-01", "2025-02-01"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("a manifest is at most"), "{err}");

    // Nothing at the prefix: verify says so.
    let empty = settings(&endpoint, &bucket, "elsewhere", "exp");
    let err = provider.verify(&empty).await.unwrap_err();
    assert!(err.to_string().contains("no export found"), "{err}");
}

#[tokio::test]
async fn legacy_cur_reports_and_parquet_files_are_exact() {
    let Some(endpoint) = endpoint() else { return };
    let (bucket, store) = bucket(&endpoint).await;
    let provider = DataExports::from_env();
    // The public CUR sample (2023-11) as a legacy report, gzip'd: its oracle's total.
    let sample = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/data/samples/sample-anonymous-aws-export-dataset.csv"
    ))
    .unwrap();
    let key = "cur/rep/20231101-20231201/0a1b/rep-00001.csv.gz";
    put(&store, key, gz(&sample)).await;
    put(
        &store,
        "cur/rep/20231101-20231201/rep-Manifest.json",
        serde_json::json!({"reportKeys": [key], "billingPeriod": {"start": "20231101T000000.000Z"}})
            .to_string()
            .into_bytes(),
    )
    .await;
    let s = settings(&endpoint, &bucket, "cur", "rep");
    assert_eq!(
        provider.verify(&s).await.unwrap(),
        vec!["2023-11".to_owned()]
    );
    let records = provider
        .fetch(&s, scope(), window("2023-11-01", "2023-12-01"))
        .await
        .unwrap();
    let total: Decimal = records.iter().map(|r| r.cost.amount()).sum();
    assert_eq!(records.len(), 1281);
    assert_eq!(total, "1.6823086974".parse::<Decimal>().unwrap());

    // Parquet (cloudbill's own FOCUS Parquet: typed DECIMAL columns) in a Data Export.
    let text = format!(
        "{HEADER}{}{}",
        row("2025-04-02", "0.123456789", "USD"),
        row("2025-04-03", "-4.5", "USD")
    );
    let bill = cloudbill_focus::read(
        text.as_bytes(),
        "april.csv",
        cloudbill_focus::BillFormat::Focus,
        DomainId::new(),
        AccountId::new(),
        cloudbill_focus::ImportOptions::default(),
    )
    .unwrap();
    let rows: Vec<cloudbill_focus::ExportRow<'_>> = bill
        .records
        .iter()
        .map(|r| cloudbill_focus::ExportRow {
            record: r,
            account_name: "a",
            project_name: "p",
        })
        .collect();
    let mut parquet = Vec::new();
    cloudbill_focus::ExportFormat::Parquet
        .write(&mut parquet, &rows)
        .unwrap();
    let pq = "cur/fx/data/BILLING_PERIOD=2025-04/fx-00001.snappy.parquet";
    put(&store, pq, parquet).await;
    manifest(
        &store,
        &bucket,
        "cur/fx/metadata/BILLING_PERIOD=2025-04/fx-Manifest.json",
        &[pq],
    )
    .await;
    let s = settings(&endpoint, &bucket, "cur", "fx");
    let got = provider
        .fetch(&s, scope(), window("2025-04-01", "2025-05-01"))
        .await
        .unwrap();
    let amounts: Vec<Decimal> = seen(&got)
        .into_iter()
        .map(|(_, a, _)| a.parse().unwrap())
        .collect();
    assert_eq!(
        amounts,
        vec![
            "0.123456789".parse::<Decimal>().unwrap(),
            "-4.5".parse().unwrap()
        ]
    );
}

#[tokio::test]
async fn bad_settings_are_refused_before_any_call() {
    let provider = DataExports::from_env();
    let s = settings("http://169.254.169.254", "b", "", "e");
    let err = provider
        .fetch(&s, scope(), window("2025-01-01", "2025-01-02"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("link-local"), "{err}");
    let err = provider
        .fetch(&s, scope(), window("2025-01-01", "2025-03-01"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("at most 31"), "{err}");
}
