//! `cloudbill demo`: the whole job against the built-in Hyperbilling simulator.

use std::io::Write;

use cloudbill_core::{Granularity, JobState};
use cloudbill_demo::BROKEN_ACCOUNT;
use cloudbill_service::{BillingConfig, GroupKey, Principal, Query};
use serde_json::json;

use crate::args::{DemoArgs, Format, Global};
use crate::{render, CliError};

pub(crate) async fn run(
    global: &Global,
    args: &DemoArgs,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let sim = cloudbill_demo::start_simulator()
        .await
        .map_err(|e| CliError::Failure(format!("cannot start the Hyperbilling simulator: {e}")))?;
    let url = demo_url(global, args);
    let config = BillingConfig::default();
    let billing = crate::open(&url, &global.domain, config, true).await?;
    let range = cloudbill_demo::demo_range();
    let bars = crate::progress::Bars::new();
    let mut sync = cloudbill_demo::populate(&billing, &sim.endpoint(), range, &bars).await?;
    // Kept running until the reports are printed (they stop when dropped).
    let _clouds = if args.cloud {
        let (clouds, report) = cloudbill_demo::populate_clouds(&billing, range, &bars).await?;
        sync.outcomes.extend(report.outcomes);
        Some(clouds)
    } else {
        None
    };

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
    // The program as it was started (`target/debug/cloudbill` under `cargo run`), so the
    // suggested commands can be pasted as they are.
    let me = std::env::args()
        .next()
        .filter(|a| a.contains('/'))
        .unwrap_or_else(|| "cloudbill".to_owned());
    if global.format == Format::Json {
        let v = json!({
            "database_url": cloudbill_store::redacted_url(&url), "simulator": sim.endpoint(),
            "consolidated": consolidated, "per_project": per_project, "per_account": per_account,
        });
        serde_json::to_writer_pretty(&mut *out, &v)
            .map_err(|e| CliError::Failure(e.to_string()))?;
        writeln!(out).map_err(io)?;
    } else {
        writeln!(
            out,
            "cloudbill demo: Hyperbilling simulator at {}, database {}\n",
            sim.endpoint(),
            cloudbill_store::redacted_url(&url)
        )
        .map_err(io)?;
        writeln!(
            out,
            "Sync of {} .. {} ({} accounts; {BROKEN_ACCOUNT} has a revoked key on purpose):",
            range.start(),
            range.end(),
            sync.outcomes.len()
        )
        .map_err(io)?;
        crate::commands::print_sync(out, Format::Table, &sync)?;
        writeln!(out, "\nConsolidated billing (every account of the domain):").map_err(io)?;
        render::print_report(out, Format::Table, &consolidated, false)?;
        writeln!(out, "\nBilling per project:").map_err(io)?;
        render::print_report(out, Format::Table, &per_project, false)?;
        writeln!(out, "\nBilling per project and account:").map_err(io)?;
        render::print_report(out, Format::Table, &per_account, false)?;
        writeln!(
            out,
            "\nSee it in the dashboard (simulator, demo domain and an admin token included):\n  cargo run -p cloudbill-server -- --demo      # then open http://127.0.0.1:8080/\n\nExplore this data from the terminal:\n  {me} --database-url {url} report --start {} --end {} --group-by project,service\n  {me} --database-url {url} jobs\n(The simulator stops with this command, so later syncs of the demo accounts will fail to connect.)",
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

/// The demo's database: `--demo-db` (said on this command line) wins over the database of the
/// environment; a demo database file is ours and starts afresh every run.
fn demo_url(global: &Global, args: &DemoArgs) -> String {
    match (&args.demo_db, &global.database_url) {
        (None, Some(url)) => url.clone(),
        (demo_db, _) => {
            let path = demo_db
                .clone()
                .unwrap_or_else(|| cloudbill_store::default_data_dir().join("demo.db"));
            for suffix in ["", "-wal", "-shm"] {
                let mut p = path.clone().into_os_string();
                p.push(suffix);
                let _ = std::fs::remove_file(p);
            }
            format!("sqlite://{}", path.display())
        }
    }
}
