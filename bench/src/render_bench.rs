//! `cloudbill-bench render DIR`: what a report answer costs after the scan, as the server
//! answers the varied mix of `bench/varied_load.sh` — the JSON written straight from the
//! answer's sums (`Answer::write_json`, the server's path) against the report built first and
//! serialized by serde (the path before it), in the same process; and whether the bytes an
//! answer says it holds (the answer cache's bound counts them) are what holding it costs.
//!
//! Uses the store `cloudbill-bench store DIR` left in `DIR/cloudbill.db`.

use std::sync::Arc;
use std::time::Instant;

use cloudbill_provider::ProviderRegistry;
use cloudbill_service::{Answer, Billing, BillingConfig, Principal};
use cloudbill_store::{Cipher, SqliteStore, Store};

use crate::refresh_bench::{varied_queries, KEY_HEX};

pub(crate) fn run(dir: &str) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(run_async(dir))
}

/// This process's resident memory, in bytes.
fn rss() -> usize {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<usize>().ok())
        .map_or(0, |pages| pages * 4096)
}

async fn run_async(dir: &str) -> Result<(), String> {
    let db = format!("{dir}/cloudbill.db");
    if !std::path::Path::new(&db).exists() {
        return Err(format!("no {db}: run `cloudbill-bench store {dir}` first"));
    }
    let cipher = Cipher::from_hex(KEY_HEX).map_err(|e| e.to_string())?;
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(&format!("sqlite://{db}"), cipher)
            .await
            .map_err(|e| e.to_string())?,
    );
    // No answer cache: every answer is computed.
    let config = BillingConfig {
        warm_engine: true,
        answer_cache_bytes: 0,
        ..BillingConfig::default()
    };
    let billing = Billing::open(store, ProviderRegistry::new(), "default", config)
        .await
        .map_err(|e| e.to_string())?;
    billing.warm_up().await.map_err(|e| e.to_string())?;
    let admin = Principal::Admin;

    // The scans: 2,000 queries of the mix (answers over the server's 50,000-amount bound are
    // refused there, as here).
    let mix = varied_queries(2_000);
    let t = Instant::now();
    let mut answers: Vec<Arc<Answer>> = Vec::new();
    let before = rss();
    for q in &mix {
        match billing.answer_shared(&admin, q).await {
            Ok(a) => answers.push(a),
            Err(cloudbill_service::ServiceError::Query(_)) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    let scan_s = t.elapsed().as_secs_f64();
    let held = rss().saturating_sub(before);
    let counted: usize = answers.iter().map(|a| a.memory_bytes()).sum();
    let amounts: usize = answers.iter().map(|a| a.amounts()).sum();
    println!(
        "{} varied queries: {} answered ({amounts} amounts), {:.0} ms of scans",
        mix.len(),
        answers.len(),
        scan_s * 1000.0
    );
    println!(
        "holding them: {:.1} MiB of resident memory, {:.1} MiB counted by Answer::memory_bytes ({:.2}x)",
        held as f64 / 1_048_576.0,
        counted as f64 / 1_048_576.0,
        held as f64 / counted.max(1) as f64
    );

    // The renderings, best of 3 each, alternating.
    let mut best = [f64::MAX; 2];
    let mut bytes = [0usize; 2];
    for _ in 0..3 {
        let t = Instant::now();
        let mut total = 0;
        for a in &answers {
            let mut out = Vec::with_capacity(a.amounts() * 56 + 256);
            a.write_json(&mut out).map_err(|e| e.to_string())?;
            total += out.len();
        }
        best[0] = best[0].min(t.elapsed().as_secs_f64());
        bytes[0] = total;
        let t = Instant::now();
        let mut total = 0;
        for a in &answers {
            let report = a.to_report().map_err(|e| e.to_string())?;
            total += serde_json::to_vec(&report)
                .map_err(|e| e.to_string())?
                .len();
        }
        best[1] = best[1].min(t.elapsed().as_secs_f64());
        bytes[1] = total;
    }
    if bytes[0] != bytes[1] {
        return Err(format!(
            "the two renderings differ in size: {} vs {} bytes",
            bytes[0], bytes[1]
        ));
    }
    let mb = bytes[0] as f64 / 1e6;
    println!(
        "JSON of every answer ({mb:.1} MB): written from the sums {:.0} ms = {:.0} MB/s; report built then serde {:.0} ms = {:.0} MB/s ({:.1}x faster; goal >= 100 MB/s)",
        best[0] * 1000.0,
        mb / best[0],
        best[1] * 1000.0,
        mb / best[1],
        best[1] / best[0]
    );
    Ok(())
}
