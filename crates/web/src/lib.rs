//! cloudbill's HTTP surface as a library: the REST API under `/api/v1`, API-token auth, the
//! billing dashboard and explorer, health and metrics, the OpenAPI document, and the
//! connection loop (`serve`). The `cloudbill-server` binary composes it with flags and the
//! store; an embedder mounts [`app`] in its own axum application (the facade's `server`
//! feature). Thin: routing, authentication, (de)serialization and HTML; behaviour is
//! `cloudbill-service`.
//!
//! **Architecture invariant:** only this crate knows HTTP status codes (`error.rs`); it opens
//! no store and reads no flag (that is the binary's).

mod auth;
mod dashboard;
mod error;
mod explore;
mod guard;
mod metrics;
pub mod openapi;
mod routes;
mod serve;
mod state;

use axum::extract::DefaultBodyLimit;
use axum::Router;

pub use error::ApiError;
pub use guard::{DEFAULT_REQUEST_TIMEOUT, MAX_HEADER_BYTES, MAX_URI_BYTES};
pub use metrics::Metrics;
pub use serve::{serve, ServeLimits};
pub use state::{AppState, DEFAULT_MAX_ANSWER_CELLS};

/// Largest request body accepted (JSON bodies are small; bills are imported with the CLI).
pub const BODY_LIMIT: usize = 256 * 1024;

/// The whole application: API, dashboard, health and metrics.
pub fn app(state: AppState) -> Router {
    with_middleware(
        Router::new()
            .nest("/api/v1", routes::router())
            .merge(routes::system_router())
            .merge(dashboard::router()),
        state,
    )
}

/// What every route of [`app`] passes, around `routes`: request metrics, the body limit, the
/// URI and header limits, the request deadline, security headers, one JSON error shape, and a
/// panic in a handler answered as a `500` JSON error (the connection and the server keep
/// serving). For an embedder that serves routes of its own beside the API.
pub fn with_middleware(routes: Router<AppState>, state: AppState) -> Router {
    routes
        // route_layer: the middleware sees the matched route pattern, for metric labels.
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard::guard,
        ))
        .with_state(state)
}
