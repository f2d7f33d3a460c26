//! Black-box tests: the real `cloudbill` binary against a temporary SQLite database and the
//! Hyperbilling simulator (started in this process on a loopback port).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]
#![allow(clippy::too_many_lines)]

mod harness;

mod allocation33;
mod anomalies;
mod budgets;
mod clouds32;
mod domains;
mod errors;
mod files;
mod flow;
mod forecast;
mod fx;
mod hardening;
mod hardening30;
mod invoices;
mod monitors;
mod periods;
mod processes;
mod providers31;
mod tags;
