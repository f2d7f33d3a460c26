//! Embedding cloudbill with a SQLite file: same flow as `embed_memory`, data kept on disk.
//!
//! `cargo run -p cloudbill-service --example embed_sqlite [PATH]`

use std::sync::Arc;

use cloudbill_hyperbilling::sim::{SimConfig, Simulator};
use cloudbill_hyperbilling::{ClientConfig, Hyperbilling};
use cloudbill_service::{Billing, BillingConfig, ProviderRegistry};
use cloudbill_store::{open, OpenOptions};

#[path = "embed_memory.rs"]
#[allow(dead_code, unreachable_pub)] // Shared with the other example, where `run` is used.
mod shared;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("cloudbill-example-{}", std::process::id()));
    let path = std::env::args()
        .nth(1)
        .map_or_else(|| dir.join("billing.db"), Into::into);
    let store = open(&OpenOptions {
        url: format!("sqlite://{}", path.display()),
        ..OpenOptions::default()
    })
    .await?;
    let today = chrono::Utc::now().date_naive();
    let sim = Simulator::start(SimConfig::demo(today)).await?;
    let providers =
        ProviderRegistry::new().with(Arc::new(Hyperbilling::new(ClientConfig::default())?));
    let billing = Billing::open(store, providers, "example", BillingConfig::default()).await?;
    shared::run(&billing, &sim.endpoint()).await?;
    println!("stored in {}", path.display());
    Ok(())
}
