//! The real router on a random loopback port, a real SQLite file and the simulator.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]
#![allow(clippy::too_many_lines)]
#![allow(clippy::items_after_statements, clippy::type_complexity)]

mod allocation33;
mod api;
mod architecture31;
mod binary;
mod clouds32;
mod dashboard;
mod hardening;
mod hardening30;
mod harness;
mod openapi;
mod replicas;
mod tenants;
