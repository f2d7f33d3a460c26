//! Prometheus metrics: request counts and latencies per route, sync outcomes, rows synced.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::AppState;

const BUCKETS: [f64; 8] = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0];

#[derive(Default, Debug)]
struct Series {
    count: u64,
    sum: f64,
    buckets: [u64; BUCKETS.len()],
}

/// Counters exported at `/metrics`.
#[derive(Default, Debug)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), Series>>,
    /// Accounts synced successfully through the API or scheduler.
    pub syncs_succeeded: AtomicU64,
    /// Accounts whose sync failed.
    pub syncs_failed: AtomicU64,
    /// Records written by syncs.
    pub rows_synced: AtomicU64,
}

impl Metrics {
    fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let mut map = self
            .requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let s = map
            .entry((method.to_owned(), route.to_owned(), status))
            .or_default();
        s.count += 1;
        s.sum += seconds;
        for (i, le) in BUCKETS.iter().enumerate() {
            if seconds <= *le {
                s.buckets[i] += 1;
            }
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP cloudbill_http_requests_total HTTP requests by method, route and status.\n# TYPE cloudbill_http_requests_total counter\n");
        let map = self
            .requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for ((m, r, s), v) in map.iter() {
            let _ = writeln!(
                out,
                "cloudbill_http_requests_total{{method=\"{m}\",route=\"{r}\",status=\"{s}\"}} {}",
                v.count
            );
        }
        out.push_str("# HELP cloudbill_http_request_duration_seconds Request latency.\n# TYPE cloudbill_http_request_duration_seconds histogram\n");
        for ((m, r, s), v) in map.iter() {
            for (le, n) in BUCKETS.iter().zip(v.buckets) {
                let _ = writeln!(out, "cloudbill_http_request_duration_seconds_bucket{{method=\"{m}\",route=\"{r}\",status=\"{s}\",le=\"{le}\"}} {n}");
            }
            let _ = writeln!(out, "cloudbill_http_request_duration_seconds_bucket{{method=\"{m}\",route=\"{r}\",status=\"{s}\",le=\"+Inf\"}} {}", v.count);
            let _ = writeln!(out, "cloudbill_http_request_duration_seconds_sum{{method=\"{m}\",route=\"{r}\",status=\"{s}\"}} {}", v.sum);
            let _ = writeln!(out, "cloudbill_http_request_duration_seconds_count{{method=\"{m}\",route=\"{r}\",status=\"{s}\"}} {}", v.count);
        }
        drop(map);
        let _ = writeln!(out, "# HELP cloudbill_sync_accounts_total Account syncs by outcome.\n# TYPE cloudbill_sync_accounts_total counter");
        let _ = writeln!(
            out,
            "cloudbill_sync_accounts_total{{outcome=\"succeeded\"}} {}",
            self.syncs_succeeded.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "cloudbill_sync_accounts_total{{outcome=\"failed\"}} {}",
            self.syncs_failed.load(Ordering::Relaxed)
        );
        let _ = writeln!(out, "# HELP cloudbill_rows_synced_total Cost records written by syncs.\n# TYPE cloudbill_rows_synced_total counter");
        let _ = writeln!(
            out,
            "cloudbill_rows_synced_total {}",
            self.rows_synced.load(Ordering::Relaxed)
        );
        out
    }
}

impl cloudbill_service::SyncObserver for Metrics {
    fn window_done(&self, _account: &str, rows: u64) {
        self.rows_synced.fetch_add(rows, Ordering::Relaxed);
    }

    fn finished(&self, outcome: &cloudbill_service::AccountOutcome) {
        let counter = if outcome.state == cloudbill_core::JobState::Succeeded {
            &self.syncs_succeeded
        } else {
            &self.syncs_failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Middleware: times every request under its route pattern (not the raw path).
pub(crate) async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    state.metrics.observe(
        &method,
        &route,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}
