//! The aggregation engine: exact sums of cost records grouped by any dimension and a time
//! bucket, for one project, a project group, or the whole domain (consolidated).
//!
//! [`Engine::build`] turns cost records plus a [`Catalog`] (names, project history, group tree)
//! into dictionary-encoded columns with costs as scaled integers; [`Engine::query`] answers a
//! [`Query`] with a [`Report`] in the shape of DESIGN.md.
//!
//! **Architecture invariants:** pure, no IO, no async; amounts of different currencies are never
//! added together; no floating point touches an amount.

pub mod allocation;
pub mod anomaly;
mod answer;
mod engine;
mod error;
pub mod forecast;
mod query;

pub use allocation::{Allocation, Method, Slice};
pub use answer::Answer;
pub use engine::{
    Catalog, CatalogAccount, CatalogGroup, CatalogProject, Engine, EngineLoader, EngineUpdate,
    MAX_LAYERS,
};
pub use error::QueryError;
pub use query::{
    Amount, Bucket, Conversion, GroupKey, Query, RatesUsed, Report, ReportRow, Sort, TagKey,
    TagSummary, TagValue, MAX_TAG_KEY_LEN, MAX_TAG_VALUES_LISTED, NO_VALUE,
};
