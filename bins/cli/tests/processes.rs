//! Process-level guarantees: a killed sync leaves each window fully old or fully new, and two
//! processes never sync the same account at once.

use std::collections::BTreeMap;
use std::time::Duration;

use cloudbill_core::{DateRange, Decimal};
use cloudbill_hyperbilling::sim::Fault;

use crate::harness::{date, Env};

async fn daily(env: &Env) -> BTreeMap<String, Decimal> {
    let json = env
        .run(&[
            "report",
            "--start",
            "2025-01-01",
            "--end",
            "2025-05-01",
            "--granularity",
            "daily",
            "--account",
            "acme-main",
            "--format",
            "json",
        ])
        .await
        .ok()
        .json();
    json["results"][0]["billing_data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["date"].as_str().unwrap().to_owned(),
                b["cost"].as_str().unwrap().parse().unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_sync_leaves_each_window_fully_old_or_fully_new() {
    let env = Env::with_page_size(10).await;
    env.setup().await;
    let args = [
        "sync",
        "--account",
        "acme-main",
        "--start",
        "2025-01-01",
        "--end",
        "2025-05-01",
    ];
    env.run(&args).await.ok();
    let old = daily(&env).await;

    // Restate one day in every window, then sync again slowly and kill the process mid-way.
    let range = DateRange::parse("2025-01-01", "2025-05-01").unwrap();
    let windows = range.windows(31);
    for w in &windows {
        env.sim
            .restate("111111111111", w.start() + chrono::Duration::days(3));
    }
    for _ in 0..400 {
        env.sim.inject(Fault::Slow(Duration::from_millis(15)));
    }
    env.sim.clear_requests();
    let mut child = env.command(&args).spawn().unwrap();
    // Wait until at least one window has been fetched, then kill.
    let first_window_pages = env
        .sim
        .expected_lines("111111111111", windows[0])
        .len()
        .div_ceil(10);
    for _ in 0..400 {
        let answered = env
            .sim
            .requests()
            .iter()
            .filter(|r| r.path == "/v1/search/billing" && r.status == 200)
            .count();
        if answered > first_window_pages + 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    child.kill().await.unwrap();
    let _ = child.wait().await;

    let now = daily(&env).await;
    let new = env.sim.expected_daily("111111111111", range);
    let mut kinds = vec![];
    for w in &windows {
        let days: Vec<String> = w.iter_days().map(|d| d.to_string()).collect();
        let is_old = days.iter().all(|d| now.get(d) == old.get(d));
        let is_new = days.iter().all(|d| now.get(d) == new.get(&date(d)));
        assert!(is_old || is_new, "window {w} is a mix of old and new data");
        kinds.push(if is_new { "new" } else { "old" });
    }
    assert_eq!(
        kinds[0], "new",
        "the first window was written before the kill"
    );
    assert!(
        kinds.contains(&"old"),
        "the kill came before the last window: {kinds:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_never_sync_the_same_account_at_once() {
    let env = Env::with_page_size(10).await;
    env.setup().await;
    for _ in 0..200 {
        env.sim.inject(Fault::Slow(Duration::from_millis(20)));
    }
    let args = [
        "sync",
        "--account",
        "acme-main",
        "--start",
        "2025-01-01",
        "--end",
        "2025-04-01",
    ];
    let first = env.command(&args).spawn().unwrap();
    // Let the first process take the lease.
    for _ in 0..300 {
        if !env.sim.requests().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let second = env.run(&args).await;
    assert_eq!(second.code, 1);
    assert!(
        second.stdout.contains("already running in another process"),
        "{}",
        second.stdout
    );
    let first = first.wait_with_output().await.unwrap();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    // Once the first is done, the account syncs again.
    env.run(&args).await.ok();
}
