//! `cloudbill demo`: the whole job against the built-in Hyperbilling simulator.

use std::io::Write;

use chrono::{Datelike, Months, Utc};
use cloudbill_core::{ClientSecret, DateRange, Granularity, JobState};
use cloudbill_hyperbilling::sim::{SimConfig, Simulator};
use cloudbill_service::{
    Billing, BillingConfig, CredentialsInput, GroupKey, NewAccount, Principal, Query, ServiceError,
    SyncRequest,
};
use serde_json::json;

use crate::args::{DemoArgs, Format, Global};
use crate::{render, CliError};

/// The account whose key is wrong on purpose, so the failure path shows.
pub(crate) const BROKEN_ACCOUNT: &str = "globex-legacy";

/// (name, project, linked account, email, key)
const ACCOUNTS: [(&str, &str, &str, &str, &str); 3] = [
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

/// Sets up the demo domain in `billing` (idempotent) pointing at `sim`, and syncs `range`.
pub(crate) async fn populate(
    billing: &Billing,
    range: DateRange,
    out_bars: &dyn cloudbill_service::SyncObserver,
) -> Result<cloudbill_service::SyncReport, CliError> {
    let admin = Principal::Admin;
    billing.set_billing(&admin, true).await?;
    for project in ["web-shop", "data-platform"] {
        match billing.create_project(&admin, project, None).await {
            Ok(_) | Err(ServiceError::Conflict(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    for (name, project, account, email, key) in ACCOUNTS {
        let new = NewAccount {
            name: name.into(),
            provider: "hyperbilling-aws".into(),
            project: Some(project.into()),
            credentials: Some(CredentialsInput {
                account: account.into(),
                email: email.into(),
                key: ClientSecret::new(key)?,
                endpoint: None,
            }),
        };
        // A demo account from an earlier run points at that run's (gone) simulator: replace it.
        if let Ok(old) = billing.account(&admin, name).await {
            let ours = old
                .credentials
                .as_ref()
                .is_some_and(|c| c.endpoint().starts_with("http://127.0.0.1:"));
            if !ours {
                return Err(CliError::Failure(format!(
                    "account {name:?} already exists and is not a demo account; run the demo on another database"
                )));
            }
            billing.remove_account(&admin, name).await?;
        }
        match billing.add_account(&admin, new, false).await {
            Ok(_) | Err(ServiceError::Conflict(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let request = SyncRequest {
        accounts: ACCOUNTS.iter().map(|a| a.0.to_owned()).collect(),
        range: Some(range),
    };
    Ok(billing.sync(&admin, &request, out_bars).await?)
}

/// The demo range: the 1st of the month two months ago through today.
pub(crate) fn demo_range() -> DateRange {
    let today = Utc::now().date_naive();
    let start = today
        .checked_sub_months(Months::new(2))
        .and_then(|d| d.with_day(1))
        .unwrap_or(today);
    DateRange::new(start, today.succ_opt().unwrap_or(today))
        .unwrap_or_else(|_| DateRange::day(today))
}

pub(crate) async fn run(
    global: &Global,
    args: &DemoArgs,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let today = Utc::now().date_naive();
    let sim = Simulator::start(SimConfig::demo(today))
        .await
        .map_err(|e| CliError::Failure(format!("cannot start the Hyperbilling simulator: {e}")))?;
    let url = match &global.database_url {
        Some(url) => url.clone(),
        None => {
            let path = args
                .demo_db
                .clone()
                .unwrap_or_else(|| crate::data_dir().join("demo.db"));
            // The demo database is ours: start it afresh every run.
            for suffix in ["", "-wal", "-shm"] {
                let mut p = path.clone().into_os_string();
                p.push(suffix);
                let _ = std::fs::remove_file(p);
            }
            format!("sqlite://{}", path.display())
        }
    };
    let config = BillingConfig {
        default_endpoint: Some(sim.endpoint()),
        ..BillingConfig::default()
    };
    let billing = crate::open(&url, &global.domain, config).await?;
    let range = demo_range();
    let bars = crate::progress::Bars::new();
    let sync = populate(&billing, range, &bars).await?;

    let consolidated = billing
        .report(&Principal::Admin, &Query::new(range, Granularity::Monthly))
        .await?;
    let mut per_project = Query::new(range, Granularity::Monthly);
    per_project.group_by = vec![GroupKey::Project];
    let per_project = billing.report(&Principal::Admin, &per_project).await?;
    let mut per_account = Query::new(range, Granularity::Monthly);
    per_account.group_by = vec![GroupKey::Project, GroupKey::ServiceAccount];
    let per_account = billing.report(&Principal::Admin, &per_account).await?;

    let unexpected: Vec<_> = sync
        .outcomes
        .iter()
        .filter(|o| o.state != JobState::Succeeded && o.account != BROKEN_ACCOUNT)
        .collect();
    let io = |e: std::io::Error| CliError::Failure(e.to_string());
    if global.format == Format::Json {
        let v = json!({
            "database_url": url, "simulator": sim.endpoint(),
            "consolidated": consolidated, "per_project": per_project, "per_account": per_account,
        });
        serde_json::to_writer_pretty(&mut *out, &v)
            .map_err(|e| CliError::Failure(e.to_string()))?;
        writeln!(out).map_err(io)?;
    } else {
        writeln!(
            out,
            "cloudbill demo: Hyperbilling simulator at {}, database {url}\n",
            sim.endpoint()
        )
        .map_err(io)?;
        writeln!(
            out,
            "Sync of {} .. {} (3 accounts; {BROKEN_ACCOUNT} has a revoked key on purpose):",
            range.start(),
            range.end()
        )
        .map_err(io)?;
        crate::commands::print_sync(out, Format::Table, &sync)?;
        writeln!(out, "\nConsolidated billing (every account of the domain):").map_err(io)?;
        render::print_report(out, Format::Table, &consolidated)?;
        writeln!(out, "\nBilling per project:").map_err(io)?;
        render::print_report(out, Format::Table, &per_project)?;
        writeln!(out, "\nBilling per project and account:").map_err(io)?;
        render::print_report(out, Format::Table, &per_account)?;
        writeln!(
            out,
            "\nExplore the same data:\n  cloudbill --database-url {url} report --start {} --end {} --group-by project,service\n  cloudbill --database-url {url} jobs\n(The simulator stops with this command, so later syncs of the demo accounts will fail to connect.)",
            range.start(),
            range.end()
        )
        .map_err(io)?;
    }
    if unexpected.is_empty() {
        Ok(())
    } else {
        Err(CliError::Failure(format!(
            "demo sync failed for {}",
            unexpected
                .iter()
                .map(|o| o.account.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )))
    }
}
