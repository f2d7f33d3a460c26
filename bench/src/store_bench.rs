//! `cloudbill-bench store DIR [REFERENCE_JSON]`: the 1M-record FOCUS file into a fresh SQLite
//! store (200 `file` accounts in 25 projects), then the engine built from that store, then
//! `cloudbill report` end to end as a fresh process against a fresh DuckDB process answering q2
//! from a persisted DuckDB file — all in this run.

use std::collections::{BTreeMap, HashMap};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use cloudbill_core::{AccountId, DomainId, JobKind, SyncJob};
use cloudbill_focus::{read, BillFormat, ImportOptions};
use cloudbill_provider::ProviderRegistry;
use cloudbill_service::{Billing, BillingConfig, NewAccount, Principal};
use cloudbill_store::{Cipher, CostStore, JobStore, SqliteStore};

fn time_process(cmd: &mut Command) -> Result<f64, String> {
    let mut best = f64::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        let out = cmd.output().map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!(
                "{cmd:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        best = best.min(t.elapsed().as_secs_f64());
    }
    Ok(best)
}

pub(crate) fn run(dir: &str, reference: Option<&str>) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(run_async(dir, reference))
}

#[allow(clippy::too_many_lines)] // One benchmark, printed in order.
async fn run_async(dir: &str, reference: Option<&str>) -> Result<(), String> {
    let db = format!("{dir}/cloudbill.db");
    for suffix in ["", "-wal", "-shm", ".key"] {
        let _ = std::fs::remove_file(format!("{db}{suffix}"));
    }
    let url = format!("sqlite://{db}");
    let key_hex = "ab".repeat(32);
    let store = Arc::new(
        SqliteStore::open(&url, Cipher::from_hex(&key_hex).map_err(|e| e.to_string())?)
            .await
            .map_err(|e| e.to_string())?,
    );
    let billing = Billing::open(
        store.clone(),
        ProviderRegistry::new(),
        "default",
        BillingConfig::default(),
    )
    .await
    .map_err(|e| e.to_string())?;
    let admin = Principal::Admin;
    billing
        .set_billing(&admin, true)
        .await
        .map_err(|e| e.to_string())?;
    let accounts_csv =
        std::fs::read_to_string(format!("{dir}/accounts.csv")).map_err(|e| e.to_string())?;
    let mut projects = std::collections::BTreeSet::new();
    let mut account_ids: HashMap<String, AccountId> = HashMap::new();
    for line in accounts_csv.lines().skip(1) {
        let (acc, proj) = line.split_once(',').ok_or("bad accounts.csv")?;
        if projects.insert(proj.to_owned()) {
            billing
                .create_project(&admin, proj, None)
                .await
                .map_err(|e| e.to_string())?;
        }
        let a = billing
            .add_account(
                &admin,
                NewAccount {
                    name: acc.to_owned(),
                    provider: "file".into(),
                    project: Some(proj.to_owned()),
                    settings: cloudbill_core::Settings::default(),
                },
                false,
            )
            .await
            .map_err(|e| e.to_string())?;
        account_ids.insert(acc.to_owned(), a.id);
    }
    let domain: DomainId = billing.domain().await.map_err(|e| e.to_string())?.id;

    // Import: parse the file once, then one atomic replace per account (as `import` does).
    let t = Instant::now();
    let file = std::fs::File::open(format!("{dir}/focus.csv")).map_err(|e| e.to_string())?;
    let bill = read(
        std::io::BufReader::with_capacity(1 << 20, file),
        "focus.csv",
        BillFormat::Focus,
        domain,
        AccountId::new(),
        ImportOptions::default(),
    )
    .map_err(|e| e.to_string())?;
    let parse_s = t.elapsed().as_secs_f64();
    let range = bill.range.ok_or("empty file")?;
    let mut by_account: BTreeMap<AccountId, Vec<cloudbill_core::CostRecord>> = BTreeMap::new();
    for mut r in bill.records {
        let id = *account_ids
            .get(&r.cloud_account)
            .ok_or("unknown sub-account")?;
        r.service_account = id;
        by_account.entry(id).or_default().push(r);
    }
    let n: usize = by_account.values().map(Vec::len).sum();
    for (account, records) in &by_account {
        let job = SyncJob::running(domain, *account, JobKind::Import, range, Utc::now());
        store.save_job(&job).await.map_err(|e| e.to_string())?;
        store
            .replace_window(domain, *account, job.id, range, records)
            .await
            .map_err(|e| e.to_string())?;
    }
    let import_s = t.elapsed().as_secs_f64();
    drop(by_account);

    // Engine from the store's partitions (what a report does), best of 3.
    let (mut build_s, mut fetch_s) = (f64::MAX, f64::MAX);
    for _ in 0..3 {
        let t = Instant::now();
        let parts = store
            .cost_partitions(domain, None)
            .await
            .map_err(|e| e.to_string())?;
        fetch_s = fetch_s.min(t.elapsed().as_secs_f64());
        let engine = cloudbill_aggregate::Engine::from_partitions(
            &parts,
            cloudbill_aggregate::Catalog::default(),
        )
        .map_err(|e| e.to_string())?;
        assert_eq!(engine.len(), n);
        build_s = build_s.min(t.elapsed().as_secs_f64());
    }
    store.close().await;

    // End to end: a fresh `cloudbill report` process (q2) against a fresh DuckDB process.
    let cli = std::env::current_exe()
        .map_err(|e| e.to_string())?
        .with_file_name("cloudbill");
    let duck = format!("{dir}/bench.duckdb");
    if !std::path::Path::new(&duck).exists() {
        let status = Command::new("python3")
            .args(["-c", &format!(
                "import duckdb; c=duckdb.connect('{duck}'); c.execute(\"CREATE TABLE c AS SELECT SubAccountId::VARCHAR a, ChargePeriodStart::TIMESTAMP ts, BilledCost::DECIMAL(38,10) cost, ServiceName svc FROM read_csv('{dir}/focus.csv', types={{'BilledCost':'VARCHAR','SubAccountId':'VARCHAR'}})\"); c.execute(\"CREATE TABLE acc AS SELECT account_id::VARCHAR account_id, project_id FROM read_csv('{dir}/accounts.csv', types={{'account_id':'VARCHAR'}})\"); c.close()")])
            .status()
            .map_err(|e| e.to_string())?;
        if !status.success() {
            return Err("could not build the DuckDB file (pip install duckdb)".into());
        }
    }
    let report = |group_by: &str, format: &str| -> Result<f64, String> {
        time_process(
            Command::new(&cli)
                .args([
                    "--database-url",
                    &url,
                    "report",
                    "--start",
                    "2025-01-01",
                    "--end",
                    "2026-01-01",
                    "--granularity",
                    "monthly",
                    "--group-by",
                    group_by,
                    "--format",
                    format,
                ])
                .env("CLOUDBILL_SECRET_KEY", &key_hex),
        )
    };
    let duckdb = |sql: &str| -> Result<f64, String> {
        time_process(Command::new("python3").args([
            "-c",
            &format!(
                "import duckdb; c=duckdb.connect('{duck}', read_only=True); c.execute(\"{sql}\").fetchall()"
            ),
        ]))
    };
    let cli_s = report("project", "json")?;
    let duck_s = duckdb("SELECT project_id, strftime(ts,'%Y-%m') m, sum(cost) FROM c JOIN acc ON a=account_id GROUP BY 1,2 ORDER BY 1,2")?;
    // The heavy shape (#14): one row per (account, service), a year of months — tens of
    // thousands of result rows, megabytes of output — in every output format.
    let duck_wide = duckdb(
        "SELECT a, svc, strftime(ts,'%Y-%m') m, sum(cost) FROM c GROUP BY 1,2,3 ORDER BY 1,2,3",
    )?;
    let mut wide = Vec::new();
    for format in ["json", "csv", "table"] {
        wide.push((format, report("cloud_account,service", format)?));
    }

    let reference: serde_json::Value = match reference {
        Some(p) => serde_json::from_str(&std::fs::read_to_string(p).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?,
        None => serde_json::Value::Null,
    };
    let duck_load = reference["duckdb"]["load"].as_f64();
    println!("\nSQLite store: {n} records");
    println!(
        "store set-up (parse {parse_s:.2} s + 200 in-process replaces through the records API; \
         DuckDB CSV load {}): {import_s:.2} s — the import path is measured by `cloudbill-bench import`",
        duck_load.map_or("-".into(), |v| format!("{v:.2} s"))
    );
    println!("engine build from the store's partitions: {build_s:.3} s, of which reading the blobs {fetch_s:.3} s (goal < 0.2 s)");
    println!("end to end q2: cloudbill report process {cli_s:.3} s vs DuckDB process {duck_s:.3} s: {:.2}x (goal <= 0.5x)", cli_s / duck_s);
    for (format, t) in wide {
        println!(
            "end to end monthly x cloud_account x service, --format {format}: {t:.3} s vs DuckDB process {duck_wide:.3} s: {:.2}x (goal <= 0.5x)",
            t / duck_wide
        );
    }
    Ok(())
}
