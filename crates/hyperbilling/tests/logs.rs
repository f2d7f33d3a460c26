//! The key never reaches the logs: its own test binary, so no other test of the process
//! registers the client's log callsites first (`tracing` caches a callsite's interest per
//! process; a test running beside it on another thread made the capture flaky).

#![allow(clippy::unwrap_used, missing_docs, unreachable_pub)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cloudbill_core::{AccountId, DateRange, DomainId, NaiveDate, Settings};
use cloudbill_hyperbilling::sim::{Fault, SimConfig, Simulator};
use cloudbill_hyperbilling::{ClientConfig, Hyperbilling};
use cloudbill_provider::{BillingProvider, FetchScope};

const ACCOUNT: &str = "111111111111";
const KEY: &str = "demo-key-acme";

fn range(a: &str, b: &str) -> DateRange {
    DateRange::parse(a, b).unwrap()
}

fn scope() -> FetchScope {
    FetchScope {
        domain: DomainId::new(),
        service_account: AccountId::new(),
    }
}

async fn sim(page_size: usize) -> Simulator {
    let mut config = SimConfig::demo(NaiveDate::from_ymd_opt(2025, 12, 31).unwrap());
    config.page_size = page_size;
    Simulator::start(config).await.unwrap()
}

fn creds(sim: &Simulator, account: &str, key: &str) -> Settings {
    cloudbill_hyperbilling::settings(account, "ops@acme.example", key, Some(&sim.endpoint()))
}

fn client() -> Hyperbilling {
    Hyperbilling::new(ClientConfig {
        max_attempts: 4,
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
        max_retry_after: Duration::from_secs(5),
        request_timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(2),
        max_pages: 10_000,
        ..ClientConfig::default()
    })
    .unwrap()
}

/// A `tracing` writer that appends to a shared buffer.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn the_key_never_appears_in_logs_or_errors() {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let sim = sim(20).await;
    let c = creds(&sim, ACCOUNT, KEY);
    sim.inject(Fault::Unavailable);
    sim.inject(Fault::DropConnection);
    let w = range("2025-01-01", "2025-01-10");
    client().fetch(&c, scope(), w).await.unwrap();
    let mut errors = vec![];
    sim.inject(Fault::MalformedJson);
    errors.push(
        client()
            .fetch(&c, scope(), w)
            .await
            .unwrap_err()
            .to_string(),
    );
    errors.push(
        client()
            .fetch(&creds(&sim, ACCOUNT, "not-the-key"), scope(), w)
            .await
            .unwrap_err()
            .to_string(),
    );
    errors.push(format!("{c:?}"));

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("retrying"), "logs were captured: {logs}");
    assert!(!logs.contains(KEY), "key leaked into logs");
    assert!(!logs.contains("not-the-key"));
    for e in &errors {
        assert!(
            !e.contains(KEY) && !e.contains("not-the-key"),
            "key leaked: {e}"
        );
    }
}
