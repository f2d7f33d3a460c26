//! Issue #32 from the command line, against moto (S3): an AWS Data Exports account is added
//! with its settings and a secret on stdin, synced, reported exactly; a restated period
//! replaces what was stored; an account whose export lacks a file fails alone. Skips loudly
//! without `CLOUDBILL_TEST_S3_ENDPOINT` (a failure when `CLOUDBILL_REQUIRE_CLOUD_SERVERS=1`).

use std::io::Write;

use crate::harness::Env;

fn s3() -> Option<String> {
    match std::env::var("CLOUDBILL_TEST_S3_ENDPOINT") {
        Ok(e) if !e.is_empty() => Some(e),
        _ => {
            assert!(
                std::env::var("CLOUDBILL_REQUIRE_CLOUD_SERVERS").as_deref() != Ok("1"),
                "CLOUDBILL_TEST_S3_ENDPOINT is not set and CLOUDBILL_REQUIRE_CLOUD_SERVERS=1"
            );
            eprintln!(
                "SKIPPED: the AWS connector's CLI test needs moto (CLOUDBILL_TEST_S3_ENDPOINT)"
            );
            None
        }
    }
}

fn gz(text: &str) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(text.as_bytes()).unwrap();
    e.finish().unwrap()
}

/// Writes an object. moto checks no signature, but refuses an anonymous overwrite: any
/// `Authorization` makes the request an authenticated one.
async fn put(endpoint: &str, bucket: &str, key: &str, body: Vec<u8>) {
    let r = reqwest::Client::new()
        .put(format!("{endpoint}/{bucket}/{key}"))
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=testing/20250101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0",
        )
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    assert!(
        status.is_success(),
        "{key}: {status} {}",
        r.text().await.unwrap_or_default()
    );
}

const HEADER: &str = "BillingPeriodStart,BillingPeriodEnd,ChargePeriodStart,ChargePeriodEnd,BilledCost,BillingCurrency,ServiceName,SubAccountId\n";

fn march(day: u32, cost: &str) -> String {
    format!(
        "2025-03-01T00:00:00Z,2025-04-01T00:00:00Z,2025-03-{day:02}T00:00:00Z,2025-03-{:02}T00:00:00Z,{cost},USD,Amazon S3,444455556666\n",
        day + 1
    )
}

async fn deliver(endpoint: &str, bucket: &str, export: &str, files: &[(&str, Option<String>)]) {
    let mut uris = Vec::new();
    for (name, content) in files {
        let key = format!("exports/{export}/data/BILLING_PERIOD=2025-03/{name}");
        if let Some(text) = content {
            put(endpoint, bucket, &key, gz(text)).await;
        }
        uris.push(format!("s3://{bucket}/{key}"));
    }
    let manifest = serde_json::json!({"exportName": export, "dataFiles": uris});
    put(
        endpoint,
        bucket,
        &format!("exports/{export}/metadata/BILLING_PERIOD=2025-03/{export}-Manifest.json"),
        manifest.to_string().into_bytes(),
    )
    .await;
}

fn dec(v: &serde_json::Value) -> cloudbill_core::Decimal {
    v.as_str().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aws_export_is_synced_exactly_and_restated_in_place() {
    let Some(endpoint) = s3() else { return };
    let bucket = format!("cli-{}", std::process::id());
    let created = reqwest::Client::new()
        .put(format!("{endpoint}/{bucket}"))
        .send()
        .await
        .unwrap();
    assert!(created.status().is_success(), "{}", created.status());
    deliver(
        &endpoint,
        &bucket,
        "cur",
        &[(
            "cur-00001.csv.gz",
            Some(format!(
                "{HEADER}{}{}",
                march(3, "0.0000000007"),
                march(4, "1000.25")
            )),
        )],
    )
    .await;
    deliver(
        &endpoint,
        &bucket,
        "broken",
        &[("missing-00001.csv.gz", None)],
    )
    .await;

    let env = Env::new().await;
    env.run(&["billing", "enable"]).await.ok();
    env.run(&["project", "create", "data"]).await.ok();
    let listed = env
        .run(&["provider", "show", "aws-data-exports", "--format", "json"])
        .await
        .ok()
        .json();
    assert_eq!(listed["title"], "AWS Data Exports (S3)");
    for (name, export) in [("aws-main", "cur"), ("aws-broken", "broken")] {
        let bucket_setting = format!("bucket={bucket}");
        let export_setting = format!("export={export}");
        let endpoint_setting = format!("endpoint={endpoint}");
        let added = env
            .run_with_stdin(
                &[
                    "account",
                    "add",
                    "--provider",
                    "aws-data-exports",
                    "--name",
                    name,
                    "--project",
                    "data",
                    "--setting",
                    &bucket_setting,
                    "--setting",
                    "prefix=exports",
                    "--setting",
                    &export_setting,
                    "--setting",
                    &endpoint_setting,
                    "--setting",
                    "access_key_id=AKIATESTING",
                    "--secret-stdin",
                ],
                // The one required secret, bare (the optional session token is not given).
                Some("wJalrXUtnFEMI-not-a-real-key\n"),
            )
            .await;
        added.ok();
        assert!(!added.stdout.contains("wJalr") && !added.stderr.contains("wJalr"));
    }
    let shown = env
        .run(&["account", "show", "aws-main", "--format", "json"])
        .await
        .ok()
        .json();
    assert!(!shown.to_string().contains("wJalr"), "{shown}");

    // One sync: the good account succeeds, the broken one fails alone and says why.
    let sync = env
        .run(&["sync", "--start", "2025-03-01", "--end", "2025-04-01"])
        .await;
    assert_eq!(sync.code, 1, "{}\n{}", sync.stdout, sync.stderr);
    assert!(
        sync.stdout
            .lines()
            .any(|l| l.contains("aws-main") && l.contains("succeeded")),
        "{}",
        sync.stdout
    );
    assert!(
        sync.stdout
            .lines()
            .any(|l| l.contains("aws-broken") && l.contains("missing-00001.csv.gz")),
        "{}",
        sync.stdout
    );
    let total = |json: &serde_json::Value| dec(&json["results"][0]["total"][0]["cost"]);
    let report = || {
        env.run(&[
            "report",
            "--start",
            "2025-03-01",
            "--end",
            "2025-04-01",
            "--format",
            "json",
        ])
    };
    assert_eq!(
        total(&report().await.ok().json()),
        "1000.2500000007".parse().unwrap()
    );

    // Nothing delivered since: the period's manifest has not moved, so it is not read again.
    let again = env
        .run(&[
            "sync",
            "--account",
            "aws-main",
            "--start",
            "2025-03-01",
            "--end",
            "2025-04-01",
            "--format",
            "json",
        ])
        .await
        .ok()
        .json();
    assert_eq!(again[0]["state"], "succeeded", "{again}");
    assert_eq!(again[0]["unchanged_windows"], 1, "{again}");
    assert_eq!(again[0]["rows"], 0, "{again}");

    // AWS restates March: the manifest lists a new file. A sync replaces, never adds.
    deliver(
        &endpoint,
        &bucket,
        "cur",
        &[(
            "cur-00002.csv.gz",
            Some(format!("{HEADER}{}", march(4, "999.75"))),
        )],
    )
    .await;
    let restated = env
        .run(&[
            "sync",
            "--account",
            "aws-main",
            "--start",
            "2025-03-01",
            "--end",
            "2025-04-01",
            "--format",
            "json",
        ])
        .await
        .ok()
        .json();
    assert_eq!(restated[0]["unchanged_windows"], 0, "{restated}");
    assert_eq!(restated[0]["changed_days"], 2, "{restated}");
    assert_eq!(
        total(&report().await.ok().json()),
        "999.75".parse().unwrap()
    );
}

/// `cloudbill demo --cloud`: an AWS, an Azure and a Google Cloud account beside the
/// Hyperbilling ones, synced from generated exports (S3 and Blob Storage served on loopback,
/// the BigQuery simulator), each total its generated rows' sum to the digit, in its currency.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_syncs_all_four_providers() {
    let env = Env::new().await;
    let range = cloudbill_demo::demo_range();
    let json = env
        .run(&[
            "demo",
            "--cloud",
            "--demo-db",
            "demo.db",
            "--format",
            "json",
        ])
        .await
        .ok()
        .json();
    let expected: cloudbill_core::Decimal = cloudbill_demo::gcp_rows(range)
        .iter()
        .map(|r| {
            let credits: cloudbill_core::Decimal = r
                .credits
                .iter()
                .map(|c| c.parse::<cloudbill_core::Decimal>().unwrap())
                .sum();
            r.cost.parse::<cloudbill_core::Decimal>().unwrap() + credits
        })
        .sum();
    let gcp = json["per_account"]["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["group"]["service_account"] == cloudbill_demo::GCP_ACCOUNT)
        .unwrap_or_else(|| panic!("no GCP account in {json}"));
    assert_eq!(gcp["total"][0]["currency"], "EUR");
    assert_eq!(dec(&gcp["total"][0]["cost"]), expected);
    for (name, rows, currency) in [
        (
            cloudbill_demo::AWS_ACCOUNT,
            cloudbill_demo::aws_rows(range),
            "USD",
        ),
        (
            cloudbill_demo::AZURE_ACCOUNT,
            cloudbill_demo::azure_rows(range),
            "EUR",
        ),
    ] {
        let found = json["per_account"]["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["group"]["service_account"] == name)
            .unwrap_or_else(|| panic!("no {name} in {json}"));
        let expected: cloudbill_core::Decimal = rows
            .iter()
            .map(cloudbill_demo::exports::ExportRow::billed)
            .sum();
        assert_eq!(found["total"][0]["currency"], currency, "{found}");
        assert_eq!(dec(&found["total"][0]["cost"]), expected, "{name}");
        assert_eq!(found["total"].as_array().unwrap().len(), 1, "{found}");
    }
}

/// Azurite's well-known development account key (public).
const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// An Azure FocusCost export from Azurite through the CLI: the account key from stdin as the
/// provider's one named secret (JSON), the newest run read, its total exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_azure_export_is_synced_from_its_newest_run() {
    use object_store::{ObjectStoreExt, PutPayload};
    let endpoint = match std::env::var("CLOUDBILL_TEST_AZURITE_ENDPOINT") {
        Ok(e) if !e.is_empty() => e.trim_end_matches('/').to_owned(),
        _ => {
            assert!(
                std::env::var("CLOUDBILL_REQUIRE_CLOUD_SERVERS").as_deref() != Ok("1"),
                "CLOUDBILL_TEST_AZURITE_ENDPOINT is not set and CLOUDBILL_REQUIRE_CLOUD_SERVERS=1"
            );
            eprintln!("SKIPPED: the Azure connector's CLI test needs Azurite");
            return;
        }
    };
    let container = format!("cli{}", std::process::id());
    create_container(&endpoint, &container, AZURITE_KEY).await;
    let store = object_store::azure::MicrosoftAzureBuilder::new()
        .with_account("devstoreaccount1")
        .with_access_key(AZURITE_KEY)
        .with_container_name(&container)
        .with_endpoint(endpoint.clone())
        .with_allow_http(true)
        .build()
        .unwrap();
    let header =
        "BilledCost,BillingCurrency,ChargePeriodStart,ChargePeriodEnd,ServiceName,SubAccountId\n";
    for (run, submitted, cost) in [
        ("r1", "2025-03-05T00:00:00Z", "5"),
        ("r2", "2025-03-06T00:00:00Z", "1.000000001"),
    ] {
        let folder = format!("cost/focus/20250301-20250331/{run}");
        let blob = format!("{folder}/part_0_0001.csv.gz");
        let csv = format!("{header}{cost},EUR,2025-03-04T00:00:00Z,2025-03-05T00:00:00Z,Storage,/subscriptions/s1\n");
        store
            .put(
                &object_store::path::Path::from(blob.as_str()),
                PutPayload::from(gz(&csv)),
            )
            .await
            .unwrap();
        let manifest = serde_json::json!({"runInfo": {"runId": run, "submittedTime": submitted}, "blobs": [{"blobName": blob}]});
        store
            .put(
                &object_store::path::Path::from(format!("{folder}/manifest.json")),
                PutPayload::from(manifest.to_string().into_bytes()),
            )
            .await
            .unwrap();
    }
    let env = Env::new().await;
    env.run(&["billing", "enable"]).await.ok();
    env.run(&["project", "create", "data"]).await.ok();
    let container_setting = format!("container={container}");
    let endpoint_setting = format!("endpoint={endpoint}");
    env.run_with_stdin(
        &[
            "account",
            "add",
            "--provider",
            "azure-cost-exports",
            "--name",
            "azure-ea",
            "--project",
            "data",
            "--setting",
            "storage_account=devstoreaccount1",
            "--setting",
            &container_setting,
            "--setting",
            "path=cost",
            "--setting",
            "export=focus",
            "--setting",
            &endpoint_setting,
            "--secret-stdin",
            "--verify",
        ],
        Some(&format!("{{\"account_key\": \"{AZURITE_KEY}\"}}")),
    )
    .await
    .ok();
    env.run(&["sync", "--start", "2025-03-01", "--end", "2025-04-01"])
        .await
        .ok();
    // The run's manifest has not moved: the month is not read again.
    let again = env
        .run(&[
            "sync",
            "--start",
            "2025-03-01",
            "--end",
            "2025-04-01",
            "--format",
            "json",
        ])
        .await
        .ok()
        .json();
    assert_eq!(again[0]["unchanged_windows"], 1, "{again}");
    let json = env
        .run(&[
            "report",
            "--start",
            "2025-03-01",
            "--end",
            "2025-04-01",
            "--format",
            "json",
        ])
        .await
        .ok()
        .json();
    assert_eq!(json["results"][0]["total"][0]["currency"], "EUR");
    assert_eq!(
        dec(&json["results"][0]["total"][0]["cost"]),
        "1.000000001".parse().unwrap()
    );
}

/// Creates a container on Azurite with a SharedKey-signed request.
async fn create_container(endpoint: &str, name: &str, key: &str) {
    use base64::Engine as _;
    use hmac::Mac;
    let date = chrono::Utc::now()
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    let url = format!("{endpoint}/{name}?restype=container");
    let path = reqwest::Url::parse(&url).unwrap().path().to_owned();
    let to_sign = format!(
        "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:2021-08-06\n/devstoreaccount1{path}\nrestype:container"
    );
    let key = base64::engine::general_purpose::STANDARD
        .decode(key)
        .unwrap();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(to_sign.as_bytes());
    let signature = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let r = reqwest::Client::new()
        .put(&url)
        .header("x-ms-date", date)
        .header("x-ms-version", "2021-08-06")
        .header("content-length", "0")
        .header(
            "authorization",
            format!("SharedKey devstoreaccount1:{signature}"),
        )
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
}
