//! The Azure cost exports provider against a real Blob Storage server: Azurite, which
//! `.ci/run` installs and starts (`CLOUDBILL_TEST_AZURITE_ENDPOINT`, its well-known development
//! account). Without it the tests skip, loudly; with `CLOUDBILL_REQUIRE_CLOUD_SERVERS=1` (CI) a
//! skip is a failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)]

use std::io::Write;
use std::sync::Arc;

use base64::Engine as _;
use chrono::NaiveDate;
use cloudbill_azure::CostExports;
use cloudbill_core::{AccountId, ClientSecret, CostRecord, DateRange, DomainId, Settings};
use cloudbill_provider::{BillingProvider, FetchScope, ProviderError};
use hmac::Mac;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

/// Azurite's development account (public, documented by Microsoft).
const ACCOUNT: &str = "devstoreaccount1";
const KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

fn endpoint() -> Option<String> {
    match std::env::var("CLOUDBILL_TEST_AZURITE_ENDPOINT") {
        Ok(e) if !e.is_empty() => Some(e.trim_end_matches('/').to_owned()),
        _ => {
            assert!(
                std::env::var("CLOUDBILL_REQUIRE_CLOUD_SERVERS").as_deref() != Ok("1"),
                "CLOUDBILL_TEST_AZURITE_ENDPOINT is not set and CLOUDBILL_REQUIRE_CLOUD_SERVERS=1: the Blob Storage tests must run"
            );
            eprintln!(
                "SKIPPED: the Blob Storage tests need Azurite (CLOUDBILL_TEST_AZURITE_ENDPOINT=http://127.0.0.1:PORT/devstoreaccount1; see .ci/run)"
            );
            None
        }
    }
}

/// Creates a container with a SharedKey-signed request (object_store does not create
/// containers).
async fn create_container(endpoint: &str, name: &str) {
    let date = chrono::Utc::now()
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    let version = "2021-08-06";
    let url = format!("{endpoint}/{name}?restype=container");
    let path = reqwest::Url::parse(&url).unwrap().path().to_owned();
    let to_sign = format!(
        "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{version}\n/{ACCOUNT}{path}\nrestype:container"
    );
    let key = base64::engine::general_purpose::STANDARD
        .decode(KEY)
        .unwrap();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(to_sign.as_bytes());
    let signature = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let response = reqwest::Client::new()
        .put(&url)
        .header("x-ms-date", date)
        .header("x-ms-version", version)
        .header("content-length", "0")
        .header("authorization", format!("SharedKey {ACCOUNT}:{signature}"))
        .send()
        .await
        .unwrap();
    let status = response.status();
    assert!(
        status.is_success(),
        "{status}: {}",
        response.text().await.unwrap_or_default()
    );
}

async fn container(endpoint: &str) -> (String, Arc<dyn ObjectStore>) {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let name = format!("cb{nanos:x}");
    create_container(endpoint, &name).await;
    let store = MicrosoftAzureBuilder::new()
        .with_account(ACCOUNT)
        .with_access_key(KEY)
        .with_container_name(&name)
        .with_endpoint(endpoint.to_owned())
        .with_allow_http(true)
        .build()
        .unwrap();
    (name, Arc::new(store))
}

fn settings(endpoint: &str, container: &str, path: &str, export: &str) -> Settings {
    Settings::default()
        .with_value("storage_account", ACCOUNT)
        .with_value("container", container)
        .with_value("path", path)
        .with_value("export", export)
        .with_value("endpoint", endpoint)
        .with_secret("account_key", ClientSecret::new(KEY).unwrap())
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

/// Azure's FocusCost columns (a subset), as its exports write them.
const HEADER: &str = "BilledCost,BillingAccountId,BillingCurrency,BillingPeriodEnd,BillingPeriodStart,ChargeCategory,ChargePeriodEnd,ChargePeriodStart,EffectiveCost,RegionId,ServiceName,SubAccountId,Tags,x_SkuMeterCategory\n";

fn row(day: &str, cost: &str, currency: &str, tags: &str) -> String {
    let d = NaiveDate::parse_from_str(day, "%Y-%m-%d").unwrap();
    let month = d.format("%Y-%m-01").to_string();
    let first = NaiveDate::parse_from_str(&month, "%Y-%m-%d").unwrap();
    let end = first + chrono::Months::new(1);
    format!(
        "{cost},/providers/Microsoft.Billing/billingAccounts/123,{currency},{end}T00:00:00Z,{first}T00:00:00Z,Usage,{}T00:00:00Z,{d}T00:00:00Z,{cost},westeurope,Virtual Machines,/subscriptions/0000-aaaa,\"{tags}\",Compute\n",
        d.succ_opt().unwrap()
    )
}

fn window(a: &str, b: &str) -> DateRange {
    let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
    DateRange::new(d(a), d(b)).unwrap()
}

fn scope() -> FetchScope {
    FetchScope {
        domain: DomainId::new(),
        service_account: AccountId::new(),
    }
}

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

async fn run(
    store: &Arc<dyn ObjectStore>,
    folder: &str,
    run: &str,
    submitted: &str,
    manifest_name: &str,
    blobs: &[(&str, Vec<u8>)],
) {
    let mut names = Vec::new();
    for (name, bytes) in blobs {
        let key = format!("{folder}/{run}/{name}");
        put(store, &key, bytes.clone()).await;
        names.push(serde_json::json!({"blobName": key, "byteCount": bytes.len()}));
    }
    let manifest = serde_json::json!({
        "manifestVersion": "2024-04-01", "blobCount": names.len(),
        "exportConfig": {"exportName": "daily", "type": "FocusCost", "dataVersion": "1.0r2"},
        "runInfo": {"runId": run, "submittedTime": submitted},
        "blobs": names,
    });
    put(
        store,
        &format!("{folder}/{run}/{manifest_name}"),
        manifest.to_string().into_bytes(),
    )
    .await;
}

#[tokio::test]
async fn the_newest_run_of_each_month_is_read_exactly() {
    let Some(endpoint) = endpoint() else { return };
    let (name, store) = container(&endpoint).await;
    let provider = CostExports::from_env();
    let june = "exports/daily/20240601-20240630";
    // Two runs of June: the later one restates the 2nd; its data is in two parts.
    run(
        &store,
        june,
        "run-a",
        "2024-06-02T01:00:00Z",
        "manifest.json",
        &[(
            "part_0_0001.csv.gz",
            gz(&format!(
                "{HEADER}{}",
                row("2024-06-02", "100", "EUR", "{}")
            )),
        )],
    )
    .await;
    run(
        &store,
        june,
        "run-b",
        "2024-06-03T01:00:00Z",
        "manifest.json",
        &[
            (
                "part_0_0001.csv.gz",
                gz(&format!(
                    "{HEADER}{}",
                    row(
                        "2024-06-02",
                        "99.999999999",
                        "EUR",
                        "{\"\"team\"\":\"\"web\"\"}"
                    )
                )),
            ),
            (
                "part_1_0001.csv",
                format!("{HEADER}{}", row("2024-06-29", "0.01", "USD", "{}")).into_bytes(),
            ),
        ],
    )
    .await;
    // May, from an older export: `_manifest.json`.
    run(
        &store,
        "exports/daily/20240501-20240531",
        "run-old",
        "2024-05-31T01:00:00Z",
        "_manifest.json",
        &[(
            "part_0_0001.csv.gz",
            gz(&format!(
                "{HEADER}{}",
                row("2024-05-31", "12.5", "EUR", "{}")
            )),
        )],
    )
    .await;

    let s = settings(&endpoint, &name, "exports", "daily");
    assert_eq!(
        provider.verify(&s).await.unwrap(),
        vec!["2024-05".to_owned(), "2024-06".to_owned()]
    );
    let got = provider
        .fetch(&s, scope(), window("2024-05-20", "2024-06-20"))
        .await
        .unwrap();
    assert_eq!(
        seen(&got),
        vec![
            ("2024-05-31".into(), "12.5".into(), "EUR".into()),
            ("2024-06-02".into(), "99.999999999".into(), "EUR".into()),
        ]
    );
    let restated = got
        .iter()
        .find(|r| r.date.to_string() == "2024-06-02")
        .unwrap();
    assert_eq!(restated.tags.get("team").map(String::as_str), Some("web"));
    assert_eq!(restated.provider, cloudbill_azure::KIND);
    let all_june = provider
        .fetch(&s, scope(), window("2024-06-01", "2024-07-01"))
        .await
        .unwrap();
    assert_eq!(all_june.len(), 2);

    // A blob the newest run lists but the container lacks fails the fetch, naming it.
    put(
        &store,
        &format!("{june}/run-c/manifest.json"),
        serde_json::json!({"runInfo": {"submittedTime": "2024-06-04T01:00:00Z"},
            "blobs": [{"blobName": format!("{june}/run-c/part_0_0001.csv.gz")}]})
        .to_string()
        .into_bytes(),
    )
    .await;
    let err = provider
        .fetch(&s, scope(), window("2024-06-01", "2024-07-01"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ProviderError::InvalidResponse { detail, .. } if detail.contains("run-c/part_0_0001.csv.gz")),
        "{err}"
    );

    // A wrong key is refused as bad credentials; nothing at the path is said so.
    let wrong = settings(&endpoint, &name, "exports", "daily").with_secret(
        "account_key",
        ClientSecret::new(&base64::engine::general_purpose::STANDARD.encode([7u8; 64])).unwrap(),
    );
    let err = provider.verify(&wrong).await.unwrap_err();
    assert!(err.is_unauthorized(), "{err}");
    let err = provider
        .verify(&settings(&endpoint, &name, "nowhere", "daily"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no export found"), "{err}");
}

#[tokio::test]
async fn an_account_needs_a_key_or_a_sas_token() {
    let provider = CostExports::from_env();
    let s = Settings::default()
        .with_value("storage_account", "a")
        .with_value("container", "c")
        .with_value("export", "e");
    let err = provider.prepare(s.clone()).unwrap_err();
    assert!(err.to_string().contains("sas_token"), "{err}");
    let err = provider
        .fetch(&s, scope(), window("2024-01-01", "2024-01-02"))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("account_key or sas_token"),
        "{err}"
    );
}

/// An ActualCost export (EA cost details: US dates, `BillingCurrency`, tags without braces)
/// is read exactly; an AmortizedCost export is refused, naming its manifest.
#[tokio::test]
async fn actual_cost_exports_are_read_and_amortized_ones_refused() {
    let Some(endpoint) = endpoint() else { return };
    let (name, store) = container(&endpoint).await;
    let provider = CostExports::from_env();
    let details = "Date,CostInBillingCurrency,BillingCurrency,SubscriptionGuid,MeterCategory,ChargeType,Tags\n\
07/01/2024,3.0000000001,EUR,sub-1,Virtual Machines,Usage,\"\"\"team\"\": \"\"web\"\"\"\n\
07/02/2024,-0.5,EUR,sub-1,Virtual Machines,Refund,\n";
    for (export, dataset) in [("actual", "ActualCost"), ("amortized", "AmortizedCost")] {
        let folder = format!("cost/{export}/20240701-20240731/run-1");
        let blob = format!("{folder}/part_0_0001.csv.gz");
        put(&store, &blob, gz(details)).await;
        let manifest = serde_json::json!({
            "exportConfig": {"exportName": export, "type": dataset},
            "runInfo": {"runId": "run-1", "submittedTime": "2024-07-03T00:00:00Z"},
            "blobs": [{"blobName": blob}],
        });
        put(
            &store,
            &format!("{folder}/manifest.json"),
            manifest.to_string().into_bytes(),
        )
        .await;
    }
    let july = window("2024-07-01", "2024-08-01");
    let records = provider
        .fetch(&settings(&endpoint, &name, "cost", "actual"), scope(), july)
        .await
        .unwrap();
    assert_eq!(
        seen(&records),
        [
            ("2024-07-01".into(), "3.0000000001".into(), "EUR".into()),
            ("2024-07-02".into(), "-0.5".into(), "EUR".into()),
        ]
    );
    assert_eq!(records[0].tags.get("team").map(String::as_str), Some("web"));
    assert_eq!(records[0].cloud_account, "sub-1");
    let err = provider
        .fetch(
            &settings(&endpoint, &name, "cost", "amortized"),
            scope(),
            july,
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("AmortizedCost"), "{err}");
}
