//! The demo domain shared by `cloudbill demo` and `cloudbill-server --demo`: two projects,
//! three Hyperbilling accounts (one with a revoked key, so the failure path shows), synced from
//! the built-in simulator; with `--cloud`, an AWS, an Azure and a Google Cloud account too,
//! synced from generated exports ([`exports`]) served on 127.0.0.1.
//!
//! **Architecture invariant:** only composes `cloudbill-service` with the simulators and
//! generated exports it serves on loopback; no other IO of its own.

pub mod exports;

use chrono::{Datelike, Months, Utc};
use cloudbill_core::DateRange;
use cloudbill_hyperbilling::sim::{SimConfig, Simulator};
use cloudbill_service::{
    Billing, NewAccount, Principal, ServiceError, SyncObserver, SyncReport, SyncRequest,
};

/// The account whose key is wrong on purpose.
pub const BROKEN_ACCOUNT: &str = "globex-legacy";

/// (name, project, linked account, email, key)
pub const ACCOUNTS: [(&str, &str, &str, &str, &str); 3] = [
    (
        "acme-prod",
        "web-shop",
        "111111111111",
        "ops@acme.example",
        "demo-key-acme",
    ),
    (
        "acme-analytics",
        "data-platform",
        "222222222222",
        "ops@acme.example",
        "demo-key-acme",
    ),
    (
        BROKEN_ACCOUNT,
        "data-platform",
        "333333333333",
        "finops@globex.example",
        "revoked-key",
    ),
];

/// Starts the simulator with the demo data (400 days up to today).
pub async fn start_simulator() -> std::io::Result<Simulator> {
    Simulator::start(SimConfig::demo(Utc::now().date_naive())).await
}

/// The demo range: the 1st of the month two months ago through today.
pub fn demo_range() -> DateRange {
    let today = Utc::now().date_naive();
    let start = today
        .checked_sub_months(Months::new(2))
        .and_then(|d| d.with_day(1))
        .unwrap_or(today);
    DateRange::new(start, today.succ_opt().unwrap_or(today))
        .unwrap_or_else(|_| DateRange::day(today))
}

/// Sets up the demo domain in `billing` against the simulator at `endpoint` and syncs `range`.
/// Demo accounts left by an earlier run (bound to that run's simulator on 127.0.0.1) are
/// replaced; an account of the same name that is not a demo account is an error.
pub async fn populate(
    billing: &Billing,
    endpoint: &str,
    range: DateRange,
    observer: &dyn SyncObserver,
) -> Result<SyncReport, ServiceError> {
    let admin = Principal::Admin;
    billing.set_billing(&admin, true).await?;
    for project in ["web-shop", "data-platform"] {
        match billing.create_project(&admin, project, None).await {
            Ok(_) | Err(ServiceError::Conflict(_)) => {}
            Err(e) => return Err(e),
        }
    }
    for (name, project, account, email, key) in ACCOUNTS {
        if let Ok(old) = billing.account(&admin, name).await {
            let ours = old
                .settings
                .value("endpoint")
                .is_some_and(|e| e.starts_with("http://127.0.0.1:"));
            if !ours {
                return Err(ServiceError::Conflict(format!(
                    "account {name:?} already exists and is not a demo account; run the demo on another database"
                )));
            }
            billing.remove_account(&admin, name).await?;
        }
        let new = NewAccount {
            name: name.into(),
            provider: "hyperbilling-aws".into(),
            project: Some(project.into()),
            settings: cloudbill_hyperbilling::settings(account, email, key, Some(endpoint)),
        };
        billing.add_account(&admin, new, false).await?;
    }
    let request = SyncRequest {
        accounts: ACCOUNTS.iter().map(|a| a.0.to_owned()).collect(),
        range: Some(range),
    };
    billing.sync(&admin, &request, observer).await
}

/// The demo's Google Cloud account (`cloudbill demo --cloud`), synced from the built-in
/// BigQuery simulator.
pub const GCP_ACCOUNT: &str = "gcp-analytics";

pub use cloudbill_gcp::sim::Simulator as GcpSimulator;

/// The table the demo's BigQuery simulator serves.
pub const GCP_TABLE: &str = "demo-finops.billing.gcp_billing_export_v1_0DEMO0_000000_000000";

/// Generated billing export rows for every day of `range`: Compute Engine with a sustained
/// use discount credit, Cloud Storage and BigQuery, in EUR, labelled by team; amounts with up
/// to 9 decimals, as BigQuery's NUMERIC gives them.
pub fn gcp_rows(range: DateRange) -> Vec<cloudbill_gcp::sim::SimRow> {
    let mut rows = Vec::new();
    for (i, day) in range.iter_days().enumerate() {
        let n = u64::try_from(i).unwrap_or(0);
        let month = day.format("%Y%m").to_string();
        let row = |service: &str, sku: &str, cost: String, credits: Vec<String>, team: &str| {
            cloudbill_gcp::sim::SimRow {
                day,
                invoice_month: month.clone(),
                billing_account: "0DEMO0-000000-000000".into(),
                project: "analytics-prod".into(),
                service: service.into(),
                sku: sku.into(),
                region: "europe-west1".into(),
                currency: "EUR".into(),
                list_cost: cost.clone(),
                cost,
                credits,
                quantity: "24".into(),
                labels: vec![("team".into(), team.into())],
                cost_type: "regular".into(),
                project_labels: vec![("env".into(), "prod".into())],
                system_labels: Vec::new(),
            }
        };
        let compute = 41 + n % 7;
        rows.push(row(
            "Compute Engine",
            "N2 Instance Core running in Belgium",
            format!("{compute}.{:09}", (n * 7_919_191) % 1_000_000_000),
            vec![format!(
                "-{}.{:09}",
                compute / 5,
                (n * 31_337) % 1_000_000_000
            )],
            "data",
        ));
        rows.push(row(
            "Cloud Storage",
            "Standard Storage Belgium",
            format!("3.{:09}", (n * 123_457) % 1_000_000_000),
            Vec::new(),
            "data",
        ));
        rows.push(row(
            "BigQuery",
            "Analysis",
            format!("{}.{:06}", 12 + n % 5, (n * 4_649) % 1_000_000),
            Vec::new(),
            "web",
        ));
    }
    rows
}

/// Starts the BigQuery simulator with the demo's export rows for `range`.
pub async fn start_gcp_simulator(
    range: DateRange,
) -> std::io::Result<cloudbill_gcp::sim::Simulator> {
    cloudbill_gcp::sim::Simulator::start(GCP_TABLE, gcp_rows(range), 500, 1).await
}

/// Adds the demo's GCP account (project data-platform) against `sim` and syncs `range`.
pub async fn populate_gcp(
    billing: &Billing,
    sim: &cloudbill_gcp::sim::Simulator,
    range: DateRange,
    observer: &dyn SyncObserver,
) -> Result<SyncReport, ServiceError> {
    let admin = Principal::Admin;
    if billing.account(&admin, GCP_ACCOUNT).await.is_ok() {
        billing.remove_account(&admin, GCP_ACCOUNT).await?;
    }
    let key = cloudbill_core::ClientSecret::new(&sim.key_json())?;
    let new = NewAccount {
        name: GCP_ACCOUNT.into(),
        provider: cloudbill_gcp::KIND.as_str().into(),
        project: Some("data-platform".into()),
        settings: cloudbill_core::Settings::default()
            .with_value("table", GCP_TABLE)
            .with_value("endpoint", &sim.endpoint())
            .with_secret("service_account_json", key),
    };
    billing.add_account(&admin, new, false).await?;
    let request = SyncRequest {
        accounts: vec![GCP_ACCOUNT.to_owned()],
        range: Some(range),
    };
    billing.sync(&admin, &request, observer).await
}

/// The demo's AWS account (`--cloud`): an AWS Data Exports FOCUS export in S3.
pub const AWS_ACCOUNT: &str = "aws-payer";

/// The demo's Azure account (`--cloud`): a FocusCost export in Blob Storage.
pub const AZURE_ACCOUNT: &str = "azure-subscriptions";

/// What the AWS account reads: bucket, prefix, export.
pub const AWS_EXPORT: (&str, &str, &str) = ("demo-billing", "exports", "focus-daily");

/// What the Azure account reads: storage account, container, path, export.
pub const AZURE_EXPORT: (&str, &str, &str, &str) = (
    "devstoreaccount1",
    "cost-exports",
    "finops",
    "focus-monthly",
);

/// The demo's generated AWS rows of `range` (USD).
pub fn aws_rows(range: DateRange) -> Vec<exports::ExportRow> {
    exports::export_rows(
        range,
        "USD",
        "444444444444",
        [
            "Amazon Elastic Compute Cloud",
            "Amazon Simple Storage Service",
            "AWS Lambda",
        ],
        0,
    )
}

/// The demo's generated Azure rows of `range` (EUR).
pub fn azure_rows(range: DateRange) -> Vec<exports::ExportRow> {
    exports::export_rows(
        range,
        "EUR",
        "/subscriptions/5a5a5a5a-0000-4000-8000-000000000001",
        ["Virtual Machines", "Storage", "Azure Cosmos DB"],
        1,
    )
}

/// The servers behind the `--cloud` accounts (they stop when this is dropped).
pub struct CloudDemo {
    /// The BigQuery simulator (GCP).
    pub gcp: cloudbill_gcp::sim::Simulator,
    /// The S3 server (AWS).
    pub s3: exports::ObjectServer,
    /// The Blob Storage server (Azure).
    pub blob: exports::ObjectServer,
}

/// `--cloud`: serves generated exports of `range` for AWS (S3), Azure (Blob Storage) and
/// Google Cloud (BigQuery), adds one account for each (AWS to web-shop, Azure and GCP to
/// data-platform; demo accounts of an earlier run are replaced) and syncs them.
pub async fn populate_clouds(
    billing: &Billing,
    range: DateRange,
    observer: &dyn SyncObserver,
) -> Result<(CloudDemo, SyncReport), ServiceError> {
    let io = |what: &str, e: std::io::Error| {
        ServiceError::Internal(format!("cannot start the demo's {what}: {e}"))
    };
    let gcp = start_gcp_simulator(range)
        .await
        .map_err(|e| io("BigQuery simulator", e))?;
    let s3 = exports::ObjectServer::start(exports::Flavor::S3)
        .await
        .map_err(|e| io("S3 server", e))?;
    let blob = exports::ObjectServer::start(exports::Flavor::Blob)
        .await
        .map_err(|e| io("Blob Storage server", e))?;
    let (bucket, prefix, export) = AWS_EXPORT;
    s3.put(
        bucket,
        exports::aws_objects(bucket, prefix, export, &aws_rows(range), "demo-execution-1"),
    );
    let (storage, container, path, azure_export) = AZURE_EXPORT;
    blob.put(
        &format!("{storage}/{container}"),
        exports::azure_objects(
            path,
            azure_export,
            &azure_rows(range),
            "demo-run-1",
            Utc::now(),
        ),
    );
    let admin = Principal::Admin;
    let secret = |s: &str| cloudbill_core::ClientSecret::new(s);
    let accounts = [
        NewAccount {
            name: AWS_ACCOUNT.into(),
            provider: "aws-data-exports".into(),
            project: Some("web-shop".into()),
            settings: cloudbill_core::Settings::default()
                .with_value("bucket", bucket)
                .with_value("prefix", prefix)
                .with_value("export", export)
                .with_value("endpoint", &s3.endpoint())
                .with_value("access_key_id", "AKIADEMOCLOUDBILL")
                .with_secret("secret_access_key", secret("demo-secret-not-a-key")?),
        },
        NewAccount {
            name: AZURE_ACCOUNT.into(),
            provider: "azure-cost-exports".into(),
            project: Some("data-platform".into()),
            settings: cloudbill_core::Settings::default()
                .with_value("storage_account", storage)
                .with_value("container", container)
                .with_value("path", path)
                .with_value("export", azure_export)
                .with_value("endpoint", &format!("{}/{storage}", blob.endpoint()))
                // Base64, as account keys are ("cloudbill-demo-key"); the server checks none.
                .with_secret("account_key", secret("Y2xvdWRiaWxsLWRlbW8ta2V5")?),
        },
    ];
    for new in accounts {
        if billing.account(&admin, &new.name).await.is_ok() {
            billing.remove_account(&admin, &new.name).await?;
        }
        billing.add_account(&admin, new, false).await?;
    }
    let request = SyncRequest {
        accounts: vec![AWS_ACCOUNT.to_owned(), AZURE_ACCOUNT.to_owned()],
        range: Some(range),
    };
    let mut report = billing.sync(&admin, &request, observer).await?;
    report
        .outcomes
        .extend(populate_gcp(billing, &gcp, range, observer).await?.outcomes);
    report.outcomes.sort_by(|a, b| a.account.cmp(&b.account));
    Ok((CloudDemo { gcp, s3, blob }, report))
}
