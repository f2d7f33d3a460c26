//! Shared state of the handlers.

use std::sync::Arc;

use cloudbill_service::Billing;

use crate::Metrics;

/// What every handler can reach.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The billing service of the served domain.
    pub billing: Billing,
    /// Prometheus counters.
    pub metrics: Arc<Metrics>,
    /// How long one request may take before it is stopped with 503.
    pub request_timeout: std::time::Duration,
    /// Whether the warm engine is loaded: `/readyz` answers 503 until it is (the binary
    /// warms it at start; true by default for an embedder's router).
    pub ready: Arc<std::sync::atomic::AtomicBool>,
}

impl AppState {
    /// State for `billing`, with fresh metrics.
    pub fn new(billing: Billing) -> Self {
        Self {
            billing,
            metrics: Arc::new(Metrics::default()),
            request_timeout: crate::guard::DEFAULT_REQUEST_TIMEOUT,
            ready: Arc::new(std::sync::atomic::AtomicBool::new(true)),
        }
    }
}
