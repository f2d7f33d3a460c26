//! `cloudbill-bench import DIR [PG_URL]`: `cloudbill import focus DIR/focus.csv` as a user runs
//! it (a fresh process, a fresh database, one `file` account), into SQLite and — with a
//! PostgreSQL URL — into PostgreSQL, next to DuckDB loading the same CSV into a table and
//! PostgreSQL `COPY` of the same file into a table of its columns, all in this run. The
//! cloudbill and reference runs alternate (the machine's noise hits both alike); best of 5;
//! peak RSS of the import process from `/usr/bin/time` when present.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use sqlx::Connection;

const RUNS: usize = 5;

struct Measured {
    secs: f64,
    peak_kib: Option<u64>,
}

/// Runs `cloudbill ARGS` against `url`, failing on a non-zero exit.
fn cli(cloudbill: &Path, url: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(cloudbill)
        .arg("--database-url")
        .arg(url)
        .args(args)
        .env("CLOUDBILL_SECRET_KEY", "ab".repeat(32))
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "cloudbill {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Times one `cloudbill import focus` into a database that `fresh` empties first; keeps the
/// best run in `best`.
fn time_import(
    cloudbill: &Path,
    url: &str,
    csv: &str,
    fresh: impl FnOnce() -> Result<(), String>,
    best: &mut Measured,
) -> Result<(), String> {
    let gnu_time = Path::new("/usr/bin/time").exists();
    {
        fresh()?;
        cli(cloudbill, url, &["billing", "enable"])?;
        cli(cloudbill, url, &["project", "create", "big"])?;
        cli(
            cloudbill,
            url,
            &[
                "account",
                "add",
                "--provider",
                "file",
                "--name",
                "big",
                "--project",
                "big",
            ],
        )?;
        let mut cmd = if gnu_time {
            let mut c = Command::new("/usr/bin/time");
            c.args(["-f", "peak_kib=%M"]).arg(cloudbill);
            c
        } else {
            Command::new(cloudbill)
        };
        cmd.args(["--database-url", url, "--format", "json"])
            .args(["import", "focus", csv, "--account", "big"])
            .env("CLOUDBILL_SECRET_KEY", "ab".repeat(32));
        let t = Instant::now();
        let out = cmd.output().map_err(|e| e.to_string())?;
        let secs = t.elapsed().as_secs_f64();
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            return Err(format!("cloudbill import failed: {stderr}"));
        }
        let report: serde_json::Value =
            serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
        if report["written"].as_u64() != report["rows"].as_u64() {
            return Err(format!("import wrote fewer rows than it read: {report}"));
        }
        let peak = stderr
            .lines()
            .find_map(|l| l.strip_prefix("peak_kib="))
            .and_then(|v| v.trim().parse().ok());
        if secs < best.secs {
            *best = Measured {
                secs,
                peak_kib: peak,
            };
        }
    }
    Ok(())
}

fn unmeasured() -> Measured {
    Measured {
        secs: f64::MAX,
        peak_kib: None,
    }
}

/// DuckDB loading the CSV into a table (the statement of `reference.py`), timed inside a
/// Python process.
fn duckdb_load(csv: &str) -> Result<f64, String> {
    let script = format!(
        "import duckdb, time\nc = duckdb.connect()\nbest = 1e9\nfor _ in range(1):\n    \
         t = time.perf_counter()\n    c.execute(\"\"\"CREATE OR REPLACE TABLE c AS SELECT \
         SubAccountId::VARCHAR a, ChargePeriodStart::TIMESTAMP ts, BilledCost::DECIMAL(38,10) \
         cost, ServiceName svc FROM read_csv('{csv}', types={{'BilledCost':'VARCHAR',\
         'SubAccountId':'VARCHAR'}})\"\"\")\n    best = min(best, time.perf_counter() - t)\n\
         print(best)\n"
    );
    let out = Command::new("python3")
        .args(["-c", &script])
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "DuckDB load failed (pip install duckdb): {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .map_err(|e| format!("DuckDB load time: {e}"))
}

/// A PostgreSQL URL naming database `name` instead of the given one.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, ""), |(b, q)| (b, q));
    let base = base.rsplit_once('/').map_or(base, |(b, _)| b);
    if query.is_empty() {
        format!("{base}/{name}")
    } else {
        format!("{base}/{name}?{query}")
    }
}

/// `COPY` of the whole CSV file into a table of its 12 columns (typed as the mapping needs
/// them), from the client as `psql \copy` sends it, into a fresh table.
async fn pg_copy(url: &str, csv: &str) -> Result<f64, String> {
    let mut conn = sqlx::PgConnection::connect(url)
        .await
        .map_err(|e| e.to_string())?;
    let bytes = std::fs::read(csv).map_err(|e| e.to_string())?;
    let mut best = f64::MAX;
    {
        sqlx::raw_sql(
            "DROP TABLE IF EXISTS bench_copy; CREATE TABLE bench_copy (billing_account text, \
             sub_account text, period_start timestamptz, period_end timestamptz, billed_cost \
             numeric, effective_cost numeric, currency text, service text, region text, \
             category text, quantity numeric, usage_type text)",
        )
        .execute(&mut conn)
        .await
        .map_err(|e| e.to_string())?;
        let t = Instant::now();
        let mut copy = conn
            .copy_in_raw("COPY bench_copy FROM STDIN WITH (FORMAT csv, HEADER true)")
            .await
            .map_err(|e| e.to_string())?;
        for chunk in bytes.chunks(1 << 20) {
            copy.send(chunk).await.map_err(|e| e.to_string())?;
        }
        let rows = copy.finish().await.map_err(|e| e.to_string())?;
        best = best.min(t.elapsed().as_secs_f64());
        if rows == 0 {
            return Err("COPY loaded no rows".into());
        }
    }
    sqlx::raw_sql("DROP TABLE IF EXISTS bench_copy")
        .execute(&mut conn)
        .await
        .map_err(|e| e.to_string())?;
    Ok(best)
}

async fn recreate_database(admin_url: &str, name: &str) -> Result<(), String> {
    let mut conn = sqlx::PgConnection::connect(admin_url)
        .await
        .map_err(|e| e.to_string())?;
    for statement in [
        format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        format!("CREATE DATABASE {name}"),
    ] {
        sqlx::raw_sql(&statement)
            .execute(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or("-".into(), |k| format!("{:.0} MiB", k as f64 / 1024.0))
}

pub(crate) fn run(dir: &str, pg: Option<&str>) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let cloudbill = std::env::current_exe()
        .map_err(|e| e.to_string())?
        .with_file_name("cloudbill");
    let csv = format!("{dir}/focus.csv");
    println!("\nImport of {csv}, best of {RUNS}, each run into a fresh database:");

    let db = format!("{dir}/import.db");
    let url = format!("sqlite://{db}");
    let fresh_sqlite = || {
        for suffix in ["", "-wal", "-shm", ".key"] {
            let _ = std::fs::remove_file(format!("{db}{suffix}"));
        }
        Ok(())
    };
    let (mut duck, mut sqlite) = (f64::MAX, unmeasured());
    for _ in 0..RUNS {
        duck = duck.min(duckdb_load(&csv)?);
        time_import(&cloudbill, &url, &csv, fresh_sqlite, &mut sqlite)?;
    }
    println!("DuckDB CSV load into a table:        {duck:.3} s");
    println!(
        "cloudbill import focus into SQLite:  {:.3} s = {:.2}x DuckDB (goal <= 2x), peak RSS {} (goal < 200 MiB)",
        sqlite.secs,
        sqlite.secs / duck,
        mib(sqlite.peak_kib)
    );

    if let Some(admin) = pg {
        let bench_url = with_database(admin, "cloudbill_import_bench");
        let (mut copy, mut pg_import) = (f64::MAX, unmeasured());
        for _ in 0..RUNS {
            copy = copy.min(rt.block_on(pg_copy(admin, &csv))?);
            time_import(
                &cloudbill,
                &bench_url,
                &csv,
                || rt.block_on(recreate_database(admin, "cloudbill_import_bench")),
                &mut pg_import,
            )?;
        }
        rt.block_on(async {
            let mut conn = sqlx::PgConnection::connect(admin)
                .await
                .map_err(|e| e.to_string())?;
            sqlx::raw_sql("DROP DATABASE IF EXISTS cloudbill_import_bench WITH (FORCE)")
                .execute(&mut conn)
                .await
                .map_err(|e| e.to_string())
        })?;
        println!("PostgreSQL COPY of the file:          {copy:.3} s");
        println!(
            "cloudbill import focus into PostgreSQL: {:.3} s = {:.2}x COPY (goal <= 1x), peak RSS {}",
            pg_import.secs,
            pg_import.secs / copy,
            mib(pg_import.peak_kib)
        );
    } else {
        println!("PostgreSQL: skipped (pass a URL, e.g. postgres://postgres@127.0.0.1:5432/test)");
    }
    Ok(())
}
