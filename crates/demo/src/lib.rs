//! The demo domain shared by `cloudbill demo` and `cloudbill-server --demo`: two projects,
//! three Hyperbilling accounts (one with a revoked key, so the failure path shows), synced from
//! the built-in simulator.
//!
//! **Architecture invariant:** only composes `cloudbill-service` with the simulator; no IO of
//! its own beyond what the service does.

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
