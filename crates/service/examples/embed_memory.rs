//! Embedding cloudbill with an in-memory store: register a project and a Hyperbilling account
//! (pointing at the built-in simulator), sync a quarter, print per-project and consolidated sums.
//!
//! `cargo run -p cloudbill-service --example embed_memory`

use std::sync::Arc;

use chrono::Datelike;
use cloudbill_hyperbilling::sim::{SimConfig, Simulator};
use cloudbill_hyperbilling::{ClientConfig, Hyperbilling};
use cloudbill_service::{
    Billing, BillingConfig, DateRange, Granularity, GroupKey, MemoryStore, NewAccount, NoProgress,
    Principal, ProviderRegistry, Query, SyncRequest,
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let today = chrono::Utc::now().date_naive();
    let sim = Simulator::start(SimConfig::demo(today)).await?;
    let providers =
        ProviderRegistry::new().with(Arc::new(Hyperbilling::new(ClientConfig::default())?));
    let billing = Billing::open(
        Arc::new(MemoryStore::new()),
        providers,
        "example",
        BillingConfig::default(),
    )
    .await?;
    run(&billing, &sim.endpoint()).await
}

/// The part both examples share: set up, sync, report.
pub async fn run(billing: &Billing, endpoint: &str) -> Result<(), Box<dyn std::error::Error>> {
    let admin = Principal::Admin;
    billing.set_billing(&admin, true).await?;
    billing.create_project(&admin, "web-shop", None).await?;
    billing
        .create_project(&admin, "data-platform", None)
        .await?;
    for (name, project, account) in [
        ("acme-prod", "web-shop", "111111111111"),
        ("acme-analytics", "data-platform", "222222222222"),
    ] {
        billing
            .add_account(
                &admin,
                NewAccount {
                    name: name.into(),
                    provider: "hyperbilling-aws".into(),
                    project: Some(project.into()),
                    settings: cloudbill_hyperbilling::settings(
                        account,
                        "ops@acme.example",
                        "demo-key-acme",
                        Some(endpoint),
                    ),
                },
                true,
            )
            .await?;
    }
    // The last three full months (the simulator serves the 400 days up to today).
    let today = chrono::Utc::now().date_naive();
    let this_month = today.with_day(1).unwrap_or(today);
    let start = this_month
        .checked_sub_months(chrono::Months::new(3))
        .unwrap_or(this_month);
    let range = DateRange::new(start, this_month)?;
    let sync = billing
        .sync(
            &admin,
            &SyncRequest {
                accounts: vec![],
                range: Some(range),
            },
            &NoProgress,
        )
        .await?;
    if !sync.all_succeeded() {
        return Err(format!("sync failed: {:?}", sync.outcomes).into());
    }

    let mut per_project = Query::new(range, Granularity::Monthly);
    per_project.group_by = vec![GroupKey::Project];
    for row in billing.report(&admin, &per_project).await?.results {
        println!(
            "{:<14} {} {}",
            row.group["project"], row.total[0].cost, row.total[0].currency
        );
    }
    let consolidated = billing
        .report(&admin, &Query::new(range, Granularity::Monthly))
        .await?;
    let total = &consolidated.results[0].total[0];
    println!("{:<14} {} {}", "consolidated", total.cost, total.currency);
    Ok(())
}
