//! `cloudbill-bench aggregate DIR [REFERENCE_JSON]`: times the warm aggregation engine on q1–q3
//! over `DIR/focus.csv` (from `../shared/bench/gen_focus.py`), checks every result against
//! `DIR/oracle.json` (DuckDB's exact sums) and prints the ratios to the DuckDB and pandas times
//! of `reference.py` measured in the same run, plus a plain single-threaded loop as the limit
//! line. Exits non-zero if any result differs from the oracle.
//!
//! `store`, `import` and `refresh`: see their modules.

#![allow(clippy::print_stdout, clippy::cast_precision_loss)] // A report printer; ratios only.

use std::collections::{BTreeMap, HashMap};
use std::process::ExitCode;
use std::time::Instant;

use cloudbill_aggregate::{Catalog, CatalogAccount, CatalogProject, Engine, GroupKey, Query};
use cloudbill_core::{AccountId, Assignment, DateRange, Decimal, DomainId, Granularity, ProjectId};
use cloudbill_focus::{read, BillFormat, ImportOptions};

mod allocation_bench;
mod anomaly_bench;
mod import_bench;
mod refresh_bench;
mod render_bench;
mod store_bench;
mod tags_bench;

fn best_of<T>(n: usize, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut best = f64::MAX;
    let mut out = None;
    for _ in 0..n {
        let t = Instant::now();
        let v = f();
        best = best.min(t.elapsed().as_secs_f64());
        out = Some(v);
    }
    (best, out.unwrap_or_else(|| unreachable!("n >= 1")))
}

/// [`best_of`] for an async measurement.
async fn best_of_async<T, F: std::future::Future<Output = T>>(
    n: usize,
    mut f: impl FnMut() -> F,
) -> (f64, T) {
    let mut best = f64::MAX;
    let mut out = None;
    for _ in 0..n {
        let t = Instant::now();
        let v = f().await;
        best = best.min(t.elapsed().as_secs_f64());
        out = Some(v);
    }
    (best, out.unwrap_or_else(|| unreachable!("n >= 1")))
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(str::to_owned)
        })
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

fn current_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .map(str::to_owned)
        })
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

/// The records of the generated `DIR/focus.csv`, through the FOCUS reader.
fn read_bill(dir: &str) -> Result<Vec<cloudbill_core::CostRecord>, String> {
    let file = std::fs::File::open(format!("{dir}/focus.csv")).map_err(|e| e.to_string())?;
    let bill = read(
        std::io::BufReader::with_capacity(1 << 20, file),
        "focus.csv",
        BillFormat::Focus,
        DomainId::new(),
        AccountId::new(),
        ImportOptions::default(),
    )
    .map_err(|e| e.to_string())?;
    Ok(bill.records)
}

/// The bench's records with the accounts and projects of `accounts.csv` (as gen_focus.py
/// wrote them): each record's account by its sub-account, each account in its project.
fn bill_with_projects(dir: &str) -> Result<(Catalog, Vec<cloudbill_core::CostRecord>), String> {
    // Accounts → projects, as gen_focus.py wrote them.
    let accounts_csv =
        std::fs::read_to_string(format!("{dir}/accounts.csv")).map_err(|e| e.to_string())?;
    let mut project_ids: BTreeMap<String, ProjectId> = BTreeMap::new();
    let mut account_ids: HashMap<String, AccountId> = HashMap::new();
    let mut catalog = Catalog::default();
    for line in accounts_csv.lines().skip(1) {
        let (acc, proj) = line.split_once(',').ok_or("bad accounts.csv")?;
        let pid = *project_ids.entry(proj.to_owned()).or_insert_with(|| {
            let id = ProjectId::new();
            catalog.projects.push(CatalogProject {
                id,
                name: proj.to_owned(),
                group: None,
            });
            id
        });
        let aid = AccountId::new();
        account_ids.insert(acc.to_owned(), aid);
        catalog.accounts.push(CatalogAccount {
            id: aid,
            name: acc.to_owned(),
            history: vec![Assignment {
                project: pid,
                from: None,
            }],
        });
    }

    let mut records = read_bill(dir)?;
    for r in &mut records {
        r.service_account = *account_ids
            .get(&r.cloud_account)
            .ok_or("unknown sub-account")?;
    }
    Ok((catalog, records))
}

#[allow(clippy::too_many_lines)] // One benchmark, printed in order.
fn run(dir: &str, reference: Option<&str>) -> Result<bool, String> {
    let t = Instant::now();
    let (catalog, records) = bill_with_projects(dir)?;
    let parse_s = t.elapsed().as_secs_f64();
    let n = records.len();

    let rss_before = current_rss_kib();
    let (build_s, engine) = best_of(1, || Engine::build(&records, catalog.clone()));
    let engine = engine.map_err(|e| e.to_string())?;
    let engine_kib = current_rss_kib().saturating_sub(rss_before);
    drop(records);

    let range = DateRange::parse("2025-01-01", "2026-01-01").map_err(|e| e.to_string())?;
    let mut queries = BTreeMap::new();
    for (name, keys) in [
        ("q1", vec![]),
        ("q2", vec![GroupKey::Project]),
        ("q3", vec![GroupKey::Project, GroupKey::Service]),
    ] {
        let mut q = Query::new(range, Granularity::Monthly);
        q.group_by = keys;
        queries.insert(name, q);
    }

    // Exactness against DuckDB's oracle.
    let oracle: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{dir}/oracle.json"))
            .map_err(|e| format!("oracle.json: {e} (run reference.py first)"))?,
    )
    .map_err(|e| e.to_string())?;
    let mut all_exact = true;
    let mut times = BTreeMap::new();
    for (name, q) in &queries {
        let (secs, report) = best_of(20, || engine.query(q));
        let report = report.map_err(|e| e.to_string())?;
        times.insert(*name, secs);
        let mut ours: BTreeMap<Vec<String>, Decimal> = BTreeMap::new();
        for row in &report.results {
            for b in &row.billing_data {
                let mut key: Vec<String> = q
                    .group_by
                    .iter()
                    .map(|k| row.group[k.as_str()].clone())
                    .collect();
                key.insert(usize::from(!key.is_empty()), b.date.clone());
                ours.insert(key, b.cost);
            }
        }
        let mut theirs: BTreeMap<Vec<String>, Decimal> = BTreeMap::new();
        for row in oracle[name].as_array().ok_or("oracle shape")? {
            let cells: Vec<String> = row
                .as_array()
                .ok_or("oracle row")?
                .iter()
                .map(|c| c.as_str().unwrap_or_default().to_owned())
                .collect();
            let (value, key) = cells.split_last().ok_or("empty oracle row")?;
            theirs.insert(
                key.to_vec(),
                value.parse().map_err(|e| format!("{value}: {e}"))?,
            );
        }
        let exact = ours == theirs;
        all_exact &= exact;
        println!(
            "{name}: {} groups, exact vs DuckDB oracle: {}",
            ours.len(),
            if exact { "yes" } else { "NO" }
        );
    }

    // The limit line: a plain single-threaded loop over dictionary-encoded columns (q2).
    let months: Vec<u8> = (0..n).map(|i| u8::try_from(i % 12).unwrap_or(0)).collect();
    let projects: Vec<u8> = (0..n).map(|i| u8::try_from(i % 25).unwrap_or(0)).collect();
    let costs: Vec<i64> = (0..n).map(|i| i64::try_from(i).unwrap_or(0)).collect();
    let (loop_s, sum) = best_of(20, || {
        let mut cells = [0i128; 12 * 25];
        for i in 0..n {
            cells[usize::from(projects[i]) * 12 + usize::from(months[i])] += i128::from(costs[i]);
        }
        cells.iter().sum::<i128>()
    });
    std::hint::black_box(sum);

    let reference: serde_json::Value = match reference {
        Some(path) => {
            serde_json::from_str(&std::fs::read_to_string(path).map_err(|e| e.to_string())?)
                .map_err(|e| e.to_string())?
        }
        None => serde_json::Value::Null,
    };
    println!("\nrecords: {n}; CSV parse+map {parse_s:.2} s; engine build {build_s:.3} s; engine memory {:.1} bytes/record (RSS delta), peak RSS {} MiB",
        engine_kib as f64 * 1024.0 / n as f64, peak_rss_kib() / 1024);
    println!(
        "{:6} {:>12} {:>12} {:>12} {:>10} {:>10} {:>12}",
        "query", "cloudbill ms", "duckdb ms", "pandas ms", "vs duckdb", "vs pandas", "vs loop"
    );
    for (name, secs) in &times {
        let duck = reference["duckdb"][name].as_f64();
        let pandas = reference["pandas"][name].as_f64();
        let fmt = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{:.2}", v * 1000.0));
        let ratio = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{:.3}", secs / v));
        println!(
            "{name:6} {:>12.3} {:>12} {:>12} {:>10} {:>10} {:>12.2}",
            secs * 1000.0,
            fmt(duck),
            fmt(pandas),
            ratio(duck),
            ratio(pandas),
            secs / loop_s
        );
    }
    println!("limit line: plain loop q2 {:.3} ms (goal: each query within 3x of it, <= 0.1x DuckDB, <= 0.05x pandas)", loop_s * 1000.0);
    Ok(all_exact)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [cmd, dir, rest @ ..] if cmd == "aggregate" => {
            match run(dir, rest.first().map(String::as_str)) {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => {
                    eprintln!("error: results differ from the DuckDB oracle");
                    ExitCode::FAILURE
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        [cmd, dir] if cmd == "anomalies" => match anomaly_bench::run(dir) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        [cmd, dir, rest @ ..] if cmd == "refresh" && rest.len() <= 1 => {
            match refresh_bench::run(dir, rest.first().map(String::as_str)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("refresh benchmark failed: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        [cmd, dir] if cmd == "render" => match render_bench::run(dir) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("render benchmark failed: {e}");
                ExitCode::FAILURE
            }
        },
        [cmd, dir] if cmd == "allocation" => match allocation_bench::run(dir) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        [cmd, dir] if cmd == "tags" => match tags_bench::run(dir) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        [cmd, dir, rest @ ..] if cmd == "store" || cmd == "import" => {
            let arg = rest.first().map(String::as_str);
            let result = if cmd == "store" {
                store_bench::run(dir, arg)
            } else {
                import_bench::run(dir, arg)
            };
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        _ => {
            eprintln!(
                "usage: cloudbill-bench aggregate|store DIR [REFERENCE_JSON] | import DIR [POSTGRES_URL] | refresh DIR [POSTGRES_URL] | render DIR | tags DIR | anomalies DIR"
            );
            ExitCode::from(2)
        }
    }
}
