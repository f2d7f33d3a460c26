//! cloudbill storage: the [`Store`] trait and its adapters.
//!
//! - [`MemoryStore`]: in-process, for tests and embedding.
//! - `SqliteStore` (feature `sqlite`, the embedded default): one file, created on first use, WAL.
//! - `PgStore` (feature `postgres`): for a team server.
//!
//! All three pass one contract suite (`tests/contract`). Credentials are sealed with
//! XChaCha20-Poly1305 before they reach a database ([`Cipher`]). Cost records of one
//! (account, window) are replaced in one transaction ([`CostStore::replace_window`]).
//!
//! **Architecture invariant:** this crate depends only on `cloudbill-core`; it knows nothing of
//! providers, HTTP or the CLI. Only the SQL adapters know SQL.

mod crypto;
mod error;
mod memory;
mod open;
mod rules;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;
mod store;

#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;

pub use crypto::{Cipher, SECRET_KEY_ENV};
pub use error::StoreError;
pub use memory::MemoryStore;
pub use open::{default_data_dir, open, redacted_url, rotate_key, OpenOptions, RotatedKey};
#[cfg(feature = "postgres")]
pub use postgres::PgStore;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub use sql::{set_spill_bytes, SqlStore};
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;
pub use store::{
    changed_days, daily_totals, AllocationStore, AnomalyChange, AnomalyStore, CatalogStore,
    ChangeFeed, Chunk, ChunkSource, CostStore, DataChange, DataChanges, DeliveryOutcome,
    DueDelivery, FiredThreshold, FxStore, InvoiceStore, JobStore, NotifyStore, PartitionSink,
    PeriodStore, SinkRef, Store, TokenStore, Transition, WriteOutcome, CHANGE_LOG_VERSIONS,
};
#[cfg(any(test, feature = "mock"))]
pub use store::{MockCatalogStore, MockJobStore, MockTokenStore};
