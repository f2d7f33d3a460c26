//! Shared state of the handlers.

use std::sync::Arc;

use cloudbill_service::{Billing, Tenants};

use crate::Metrics;

/// What every handler can reach.
#[derive(Clone, Debug)]
pub struct AppState {
    /// Every domain's service; a request acts in its token's domain.
    pub tenants: Tenants,
    /// Prometheus counters.
    pub metrics: Arc<Metrics>,
    /// How long one request may take before it is stopped with 503.
    pub request_timeout: std::time::Duration,
    /// Whether the warm engine is loaded: `/readyz` answers 503 until it is (the binary
    /// warms it at start; true by default for an embedder's router).
    pub ready: Arc<std::sync::atomic::AtomicBool>,
    /// The most amounts one report answer may hold ([`DEFAULT_MAX_ANSWER_CELLS`]); a bigger
    /// one is a 422 `answer_too_large` that says how to page it.
    pub max_answer_cells: u64,
}

/// The default bound of one report answer: 50,000 amounts — each period's and each total —
/// about 4 MB of JSON.
pub const DEFAULT_MAX_ANSWER_CELLS: u64 = 50_000;

impl AppState {
    /// State serving every domain of `billing`'s store (`billing`'s the default), the warm
    /// engines under the default memory budget, with fresh metrics.
    pub fn new(billing: Billing) -> Self {
        Self::with_tenants(Tenants::new(
            billing,
            cloudbill_service::DEFAULT_ENGINE_MEMORY,
        ))
    }

    /// State serving `tenants`, with fresh metrics.
    pub fn with_tenants(tenants: Tenants) -> Self {
        Self {
            tenants,
            metrics: Arc::new(Metrics::default()),
            request_timeout: crate::guard::DEFAULT_REQUEST_TIMEOUT,
            ready: Arc::new(std::sync::atomic::AtomicBool::new(true)),
            max_answer_cells: DEFAULT_MAX_ANSWER_CELLS,
        }
    }
}
