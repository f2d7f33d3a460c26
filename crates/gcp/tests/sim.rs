//! The GCP billing export provider against its simulator: the JWT token flow, paging, jobs
//! that are not complete at once, exact cost + credits, labels as tags, restatements and
//! refusals.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::NaiveDate;
use cloudbill_core::{AccountId, ClientSecret, DateRange, Decimal, DomainId, Settings};
use cloudbill_gcp::sim::{SimRow, Simulator};
use cloudbill_gcp::BillingExport;
use cloudbill_provider::{BillingProvider, FetchScope, ProviderError};

const TABLE: &str = "sim-project.billing.gcp_billing_export_v1_01A2B3";

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn row(d: &str, account: &str, cost: &str, credits: &[&str], labels: &[(&str, &str)]) -> SimRow {
    SimRow {
        day: day(d),
        invoice_month: d[..7].replace('-', ""),
        billing_account: account.into(),
        project: "shop-prod".into(),
        service: "Compute Engine".into(),
        sku: "N2 Instance Core running in Belgium".into(),
        region: "europe-west1".into(),
        currency: "EUR".into(),
        cost: cost.into(),
        credits: credits.iter().map(|c| (*c).to_owned()).collect(),
        quantity: "24".into(),
        labels: labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        cost_type: "regular".into(),
        list_cost: cost.into(),
        project_labels: vec![("cost-center".into(), "cc-42".into())],
        system_labels: vec![(
            "goog-resource-type".into(),
            "compute.googleapis.com/Instance".into(),
        )],
    }
}

fn settings(sim: &Simulator, table: &str, key: &str) -> Settings {
    Settings::default()
        .with_value("project", "sim-project")
        .with_value("table", table)
        .with_value("endpoint", &sim.endpoint())
        .with_secret("service_account_json", ClientSecret::new(key).unwrap())
}

fn scope() -> FetchScope {
    FetchScope {
        domain: DomainId::new(),
        service_account: AccountId::new(),
    }
}

fn window(a: &str, b: &str) -> DateRange {
    DateRange::new(day(a), day(b)).unwrap()
}

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

#[tokio::test]
async fn the_export_is_read_exactly_page_by_page() {
    let rows = vec![
        row(
            "2025-05-01",
            "01A2B3-C4D5E6-F7A8B9",
            "10.123456789",
            &["-1.1", "-0.023456789"],
            &[("team", "web"), ("env", "prod")],
        ),
        row(
            "2025-05-02",
            "01A2B3-C4D5E6-F7A8B9",
            "0.000000001",
            &[],
            &[],
        ),
        row("2025-05-02", "01A2B3-C4D5E6-F7A8B9", "3", &["-3"], &[]),
        row("2025-05-20", "99ZZZZ-000000-000000", "7.5", &[], &[]),
        row("2025-06-01", "01A2B3-C4D5E6-F7A8B9", "100", &[], &[]),
    ];
    // Two rows a page, and every job answers "not complete" twice first.
    let sim = Simulator::start(TABLE, rows, 2, 2).await.unwrap();
    let provider = BillingExport::from_env().unwrap();
    let s = settings(&sim, TABLE, &sim.key_json());
    let got = provider
        .fetch(&s, scope(), window("2025-05-01", "2025-06-01"))
        .await
        .unwrap();
    let mut seen: Vec<(String, Decimal)> = got
        .iter()
        .map(|r| (r.date.to_string(), r.cost.amount()))
        .collect();
    seen.sort();
    // BilledCost = cost + Σ credits, exactly; June is outside the window.
    assert_eq!(
        seen,
        vec![
            ("2025-05-01".into(), dec("9.0")),
            ("2025-05-02".into(), dec("0")),
            ("2025-05-02".into(), dec("0.000000001")),
            ("2025-05-20".into(), dec("7.5")),
        ]
    );
    let first = got.iter().find(|r| r.date == day("2025-05-01")).unwrap();
    assert_eq!(first.cost.currency_str(), "EUR");
    assert_eq!(first.cloud_account, "shop-prod");
    assert_eq!(first.service, "Compute Engine");
    assert_eq!(first.tags.get("team").map(String::as_str), Some("web"));
    assert_eq!(
        first.tags.get("project:cost-center").map(String::as_str),
        Some("cc-42")
    );
    assert_eq!(
        first.tags.get("goog-resource-type").map(String::as_str),
        Some("compute.googleapis.com/Instance")
    );
    assert_eq!(first.list_cost, Some(dec("10.123456789")));
    assert_eq!(first.provider, cloudbill_gcp::KIND);

    // One billing account only.
    let one = s
        .clone()
        .with_value("billing_account", "99ZZZZ-000000-000000");
    let got = provider
        .fetch(&one, scope(), window("2025-05-01", "2025-06-01"))
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].cost.amount(), dec("7.5"));

    // Restated: the export now says something else for May 2 (and a tax row); the next fetch
    // returns it, through a throttled and an unavailable answer (each retried).
    let mut tax = row("2025-05-02", "01A2B3-C4D5E6-F7A8B9", "0.84", &[], &[]);
    tax.cost_type = "tax".into();
    sim.set_rows(vec![
        row(
            "2025-05-02",
            "01A2B3-C4D5E6-F7A8B9",
            "4.25",
            &["-0.25"],
            &[],
        ),
        tax,
    ]);
    sim.fail_next(1, 429);
    let got = provider
        .fetch(&s, scope(), window("2025-05-01", "2025-06-01"))
        .await
        .unwrap();
    assert_eq!(got.len(), 2);
    let total: Decimal = got.iter().map(|r| r.cost.amount()).sum();
    assert_eq!(total, dec("4.84"));
    assert!(got
        .iter()
        .any(|r| r.charge_category == cloudbill_core::ChargeCategory::Tax));
    // Still failing after the retries: the fetch fails, saying so.
    sim.fail_next(5, 503);
    let err = provider
        .fetch(&s, scope(), window("2025-05-01", "2025-06-01"))
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Unavailable { .. }), "{err}");
    assert!(sim.queries() >= 3);
}

#[tokio::test]
async fn bad_keys_and_tables_are_refused() {
    let sim = Simulator::start(TABLE, Vec::new(), 100, 0).await.unwrap();
    let provider = BillingExport::from_env().unwrap();
    // A key of another service account: its token is refused.
    let other = sim.key_json().replace("cloudbill-reader@", "someone-else@");
    let err = provider
        .verify(&settings(&sim, TABLE, &other))
        .await
        .unwrap_err();
    assert!(err.is_unauthorized(), "{err}");
    // A table the project does not have.
    let err = provider
        .fetch(
            &settings(&sim, "sim-project.billing.nope", &sim.key_json()),
            scope(),
            window("2025-05-01", "2025-05-02"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ProviderError::Rejected { status: 404, body, .. } if body.contains("Not found: Table")),
        "{err}"
    );
    // Checked before any call: a table name that would change the SQL, a key that is not one.
    for (table, key, needle) in [
        (
            "p.d.t`; DROP TABLE x; --",
            sim.key_json(),
            "project.dataset.table",
        ),
        (
            TABLE,
            "{\"type\": \"authorized_user\"}".to_owned(),
            "service_account",
        ),
        (
            TABLE,
            "not json".to_owned(),
            "not a service account key file",
        ),
    ] {
        let s = settings(&sim, table, &key);
        let err = provider
            .fetch(&s, scope(), window("2025-05-01", "2025-05-02"))
            .await
            .unwrap_err();
        assert!(err.to_string().contains(needle), "{err}");
        assert!(!err.to_string().contains("PRIVATE KEY"), "{err}");
    }
    // The verify of a good key lists the billing accounts it reads (none yet).
    assert_eq!(
        provider
            .verify(&settings(&sim, TABLE, &sim.key_json()))
            .await
            .unwrap(),
        Vec::<String>::new()
    );
}

/// A window whose rows' last `export_time` and count have not moved is not read again (only
/// the two-column revision query runs); a late row moves it and the window is read.
#[tokio::test]
async fn an_unchanged_window_is_not_read_again() {
    let acct = "01A2B3-C4D5E6-F7A8B9";
    let may = vec![
        row("2025-05-01", acct, "1.5", &[], &[]),
        row("2025-05-02", acct, "2.25", &["-0.25"], &[]),
    ];
    let sim = Simulator::start(TABLE, may.clone(), 100, 0).await.unwrap();
    let provider = BillingExport::from_env().unwrap();
    let settings = settings(&sim, TABLE, &sim.key_json());
    let w = window("2025-05-01", "2025-06-01");
    assert_eq!(
        provider.windows(window("2025-04-20", "2025-06-03")).len(),
        3
    );

    let revision = provider
        .revision(&settings, w)
        .await
        .unwrap()
        .expect("a revision");
    let records = provider.fetch(&settings, scope(), w).await.unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(sim.queries(), 1);

    // Nothing new: the same revision, found without querying the rows.
    let again = provider.revision(&settings, w).await.unwrap();
    assert_eq!(again.as_deref(), Some(revision.as_str()));
    assert_eq!(sim.queries(), 1, "an unchanged window is not queried");
    assert_eq!(sim.revision_queries(), 2);

    // Another month's rows do not move May's revision.
    let mut june = may.clone();
    june.push(row("2025-06-01", acct, "9", &[], &[]));
    sim.set_rows(june.clone());
    let still = provider.revision(&settings, w).await.unwrap();
    assert_eq!(still.as_deref(), Some(revision.as_str()));

    // A late row of May (a correction) moves it.
    june.push(row("2025-05-02", acct, "-0.5", &[], &[]));
    sim.set_rows(june);
    let next = provider.revision(&settings, w).await.unwrap();
    assert_ne!(next.as_deref(), Some(revision.as_str()));
    let records = provider.fetch(&settings, scope(), w).await.unwrap();
    assert_eq!(records.len(), 3);
    assert_eq!(sim.queries(), 2);
}

/// `fetch_into` sends each page's records as it arrives (several chunks for several pages),
/// together exactly what `fetch` reads.
#[tokio::test]
async fn pages_stream_as_they_arrive() {
    let acct = "01A2B3-C4D5E6-F7A8B9";
    let rows: Vec<SimRow> = (0..2_500)
        .map(|i| {
            let cost = format!("{}.{:09}", i % 50, i * 7_919);
            row(
                &format!("2025-05-{:02}", 1 + i % 28),
                acct,
                &cost,
                &["-0.000000001"],
                &[],
            )
        })
        .collect();
    let sim = Simulator::start(TABLE, rows, 1_000, 1).await.unwrap();
    let provider = BillingExport::from_env().unwrap();
    let settings = settings(&sim, TABLE, &sim.key_json());
    let w = window("2025-05-01", "2025-06-01");
    let whole: Decimal = provider
        .fetch(&settings, scope(), w)
        .await
        .unwrap()
        .iter()
        .map(|r| r.cost.amount())
        .sum();
    let (sink, mut rx) = tokio::sync::mpsc::channel(1);
    let read = tokio::spawn({
        let provider = provider.clone();
        let settings = settings.clone();
        async move { provider.fetch_into(&settings, scope(), w, sink).await }
    });
    let (mut chunks, mut streamed) = (0, Decimal::ZERO);
    while let Some(chunk) = rx.recv().await {
        chunks += 1;
        assert!(chunk.len() <= 1_000);
        streamed += chunk.iter().map(|r| r.cost.amount()).sum::<Decimal>();
    }
    read.await.unwrap().unwrap();
    assert_eq!(chunks, 3);
    assert_eq!(streamed, whole);
}
