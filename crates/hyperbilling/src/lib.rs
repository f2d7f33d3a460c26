//! "Hyperbilling for AWS": a [`BillingProvider`](cloudbill_provider::BillingProvider) over its
//! REST API, and (feature `sim`) an in-process simulator of that API.
//!
//! Wire format (see DESIGN.md): `X-Client-Id` / `X-Client-Secret` headers, `GET
//! /v1/search/linkedaccount` with a `{}` body, `POST /v1/search/billing` with an **inclusive**
//! `TimePeriod.End`, windows of at most 31 days, `NextDataToken` paging inside `Filter`, `204`
//! for no data. Amounts are bare JSON numbers with up to 10 decimals; they are read from the
//! raw JSON text, never through `f64`.
//!
//! **Architecture invariant:** only this crate knows the Hyperbilling wire format (`wire.rs`).

mod client;
mod convert;
mod settings;
#[cfg(feature = "sim")]
pub mod sim;
mod wire;

pub use client::{ClientConfig, Hyperbilling};
pub use cloudbill_core::aws::service_category;
pub use convert::{region_for_code, DEFAULT_REGION, PUBLISHER};
pub use settings::{settings, SPEC};

/// The longest window one billing request may cover, in days.
pub const MAX_WINDOW_DAYS: u32 = 31;

/// The provider's display name, used in error messages.
pub const PROVIDER_NAME: &str = "Hyperbilling";

#[doc(hidden)]
pub mod bench_support {
    //! Entry points for the decode benchmark; not a stable API.
    pub use crate::convert::decode_page;
}
