//! Whole-product scenarios: one test binary, a module per concern.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]

mod clock;
mod crate_map;
mod plugin;
mod scenarios;
