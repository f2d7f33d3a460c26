//! Decoding + mapping throughput of Hyperbilling billing pages (goal: ≥ 1M rows/s on one core).
//!
//! `cargo bench -p cloudbill-hyperbilling --bench decode [ROWS]`
//!
//! Prints rows/s for `decode_page` (JSON → exact `CostRecord`s) and, as a same-process reference,
//! for parsing the same bytes into a generic `serde_json::Value` (which keeps numbers as f64 and
//! builds no records). Machines are noisy: compare the ratio, not the absolute numbers.

#![allow(clippy::expect_used)] // A benchmark: a failed decode should abort loudly.

use std::fmt::Write as _;
use std::time::Instant;

use cloudbill_core::{AccountId, DateRange, DomainId};
use cloudbill_hyperbilling::bench_support::decode_page;
use cloudbill_provider::FetchScope;

const PAGE_ROWS: usize = 1000;
const REGIONS: [&str; 5] = ["\"USE1\"", "\"APN2\"", "\"\"", "null", "\"EUW2\""];
const SERVICES: [&str; 4] = ["AmazonEC2", "AmazonS3", "AmazonRDS", "AWSLambda"];

fn pages(rows: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut i = 0usize;
    while i < rows {
        let mut body = String::with_capacity(PAGE_ROWS * 240);
        body.push_str("{\"Results\":[");
        for j in 0..PAGE_ROWS.min(rows - i) {
            if j > 0 {
                body.push(',');
            }
            let n = i + j;
            let day = 1 + n % 28;
            let _ = write!(
                body,
                "{{\"GroupBy\":{{\"USAGE_DATE\":\"2025-01-{day:02}\",\"REGION\":{},\"SERVICE_CODE\":\"{}\",\"USAGE_TYPE\":\"BoxUsage:t3.micro\",\"INSTANCE_TYPE\":\"t3.micro\"}},\"Value\":{{\"USAGE_COST\":{}.{:010},\"USAGE_QUANTITY\":{}.{:04}}}}}",
                REGIONS[n % REGIONS.len()],
                SERVICES[n % SERVICES.len()],
                n % 500,
                (n * 7_919) % 10_000_000_000,
                n % 24,
                n % 10_000,
            );
        }
        i += PAGE_ROWS.min(rows - i);
        body.push_str("],\"NextDataToken\":\"tok\"}");
        out.push(body.into_bytes());
    }
    out
}

fn main() {
    let rows: usize = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let bodies = pages(rows);
    let bytes: usize = bodies.iter().map(Vec::len).sum();
    let scope = FetchScope {
        domain: DomainId::new(),
        service_account: AccountId::new(),
    };
    let window = DateRange::parse("2025-01-01", "2025-02-01").expect("valid window");

    let mut best = f64::MAX;
    let mut decoded = 0;
    for _ in 0..3 {
        let started = Instant::now();
        let mut records = Vec::with_capacity(PAGE_ROWS);
        decoded = 0;
        for body in &bodies {
            records.clear();
            decode_page(body, scope, "111111111111", window, &mut records).expect("page decodes");
            decoded += records.len();
        }
        best = best.min(started.elapsed().as_secs_f64());
    }
    assert_eq!(decoded, rows);

    let mut reference = f64::MAX;
    for _ in 0..3 {
        let started = Instant::now();
        let mut n = 0;
        for body in &bodies {
            let v: serde_json::Value = serde_json::from_slice(body).expect("json");
            n += v["Results"].as_array().map_or(0, Vec::len);
        }
        assert_eq!(n, rows);
        reference = reference.min(started.elapsed().as_secs_f64());
    }

    #[allow(clippy::cast_precision_loss)] // Reporting only.
    let rate = |secs: f64| rows as f64 / secs;
    println!("rows: {rows}, bytes: {bytes}, pages: {}", bodies.len());
    println!(
        "decode_page (exact records): {:.3} s, {:.2} M rows/s",
        best,
        rate(best) / 1e6
    );
    println!(
        "reference serde_json::Value: {:.3} s, {:.2} M rows/s",
        reference,
        rate(reference) / 1e6
    );
    println!("ratio decode/reference time: {:.2}", best / reference);
    println!(
        "goal >= 1.00 M rows/s: {}",
        if rate(best) >= 1e6 { "met" } else { "NOT met" }
    );
}
