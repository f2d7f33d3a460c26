//! `cloudbill-bench tags DIR`: a `--group-by tag:team` report over the bench's records with five
//! tag keys, warm in the engine, against DuckDB answering the same group-by over a JSON column
//! of a table it has already loaded (best of 5 each, in this run), checked for equal sums.
//!
//! The tags are derived from each record's position (deterministic): `team` (8 values, absent
//! on every tenth record), `env` (3), `cost-center` (40), `owner` (250) and `app` (1,000).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::Command;

use cloudbill_aggregate::{Catalog, Engine, GroupKey, Query};
use cloudbill_core::{DateRange, Decimal, Granularity};

use crate::best_of;

/// The tags of record `i`.
fn tags_of(i: usize) -> BTreeMap<String, String> {
    let mix = |salt: usize, n: usize| (i.wrapping_mul(2_654_435_761).wrapping_add(salt) >> 7) % n;
    let mut t = BTreeMap::new();
    if !i.is_multiple_of(10) {
        t.insert("team".to_owned(), format!("team-{}", mix(1, 8)));
    }
    t.insert(
        "env".to_owned(),
        ["prod", "staging", "dev"][mix(2, 3)].to_owned(),
    );
    t.insert("cost-center".to_owned(), format!("CC-{:03}", mix(3, 40)));
    t.insert("owner".to_owned(), format!("owner-{}", mix(4, 250)));
    t.insert("app".to_owned(), format!("app-{}", mix(5, 1000)));
    t
}

pub(crate) fn run(dir: &str) -> Result<(), String> {
    let mut records = crate::read_bill(dir)?;
    // The same rows for DuckDB: day, cost, tags as JSON.
    let mut csv = String::with_capacity(records.len() * 160);
    csv.push_str("day,cost,tags\n");
    for (i, r) in records.iter_mut().enumerate() {
        r.tags = tags_of(i);
        let json = serde_json::to_string(&r.tags).map_err(|e| e.to_string())?;
        let _ = writeln!(
            csv,
            "{},{},\"{}\"",
            r.date,
            r.cost.amount(),
            json.replace('"', "\"\"")
        );
    }
    let tagged = format!("{dir}/tagged.csv");
    std::fs::write(&tagged, csv).map_err(|e| e.to_string())?;
    let n = records.len();
    let rss_before = crate::current_rss_kib();
    let (build_s, engine) = best_of(1, || Engine::build(&records, Catalog::default()));
    let engine = engine.map_err(|e| e.to_string())?;
    let engine_kib = crate::current_rss_kib().saturating_sub(rss_before);
    drop(records);

    let range = DateRange::parse("2025-01-01", "2026-01-01").map_err(|e| e.to_string())?;
    let mut q = Query::new(range, Granularity::Monthly);
    q.group_by = vec![GroupKey::tag("team").map_err(|e| e.to_string())?];
    // The engine's first query after a build pays for the allocator reclaiming the records
    // just freed (≈0.4 s, any key): warm up with another key, then time the first tag query.
    let mut warm_up = Query::new(range, Granularity::Monthly);
    warm_up.group_by = vec![GroupKey::Service];
    engine.query(&warm_up).map_err(|e| e.to_string())?;
    let (cold_s, _) = best_of(1, || engine.query(&q));
    let (warm_s, report) = best_of(5, || engine.query(&q));
    let report = report.map_err(|e| e.to_string())?;
    let ours: BTreeMap<(String, String), Decimal> = report
        .results
        .iter()
        .flat_map(|row| {
            let team = row.group["tag:team"].clone();
            row.billing_data
                .iter()
                .map(move |b| ((team.clone(), b.date.clone()), b.cost))
        })
        .collect();

    let (duck_s, theirs) = duckdb_by_team(&tagged)?;
    let exact = ours == theirs;
    println!(
        "records: {n}, 5 tag keys (team on 90%), {} groups x months; engine build {build_s:.3} s, engine memory {:.1} bytes/record (RSS delta, tags included)",
        ours.len(),
        engine_kib as f64 * 1024.0 / n as f64
    );
    println!(
        "group by tag:team, monthly: cloudbill warm {:.2} ms (first tag query {:.2} ms) vs DuckDB warm over a JSON column {:.2} ms: {:.3}x (goal <= 0.1x); exact vs DuckDB: {}",
        warm_s * 1e3,
        cold_s * 1e3,
        duck_s * 1e3,
        warm_s / duck_s,
        if exact { "yes" } else { "NO" }
    );
    if exact {
        Ok(())
    } else {
        Err("tag sums differ from DuckDB's".into())
    }
}

/// DuckDB's answer over `tagged` (loaded into a table with a JSON column first): its best warm
/// time of 5 and its sums per (team, month).
#[allow(clippy::type_complexity)]
fn duckdb_by_team(tagged: &str) -> Result<(f64, BTreeMap<(String, String), Decimal>), String> {
    let script = format!(
        r#"
import duckdb, json, time
c = duckdb.connect()
c.execute("CREATE TABLE t AS SELECT day::DATE AS day, cost::DECIMAL(38,10) AS cost, tags::JSON AS tags FROM read_csv('{tagged}', header=true, columns={{'day':'VARCHAR','cost':'VARCHAR','tags':'VARCHAR'}})")
sql = "SELECT coalesce(json_extract_string(tags, '$.team'), '(none)') AS team, strftime(day, '%Y-%m') AS m, sum(cost) FROM t WHERE day >= DATE '2025-01-01' AND day < DATE '2026-01-01' GROUP BY 1, 2"
best = None
for _ in range(5):
    s = time.perf_counter(); rows = c.execute(sql).fetchall(); e = time.perf_counter() - s
    best = e if best is None else min(best, e)
print(json.dumps({{"seconds": best, "rows": [[a, b, str(x)] for a, b, x in rows]}}))
"#
    );
    let out = Command::new("python3")
        .args(["-c", &script])
        .output()
        .map_err(|e| format!("python3: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "DuckDB reference failed (pip install duckdb): {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let duck: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
    let duck_s = duck["seconds"].as_f64().ok_or("no seconds")?;
    let mut theirs: BTreeMap<(String, String), Decimal> = BTreeMap::new();
    for row in duck["rows"].as_array().ok_or("no rows")? {
        let cell = |i: usize| row[i].as_str().unwrap_or_default().to_owned();
        let cost: Decimal = cell(2).parse().map_err(|e| format!("{e}"))?;
        theirs.insert((cell(0), cell(1)), cost);
    }
    Ok((duck_s, theirs))
}
