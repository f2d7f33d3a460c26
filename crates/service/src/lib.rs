//! cloudbill's use cases: everything the CLI and the server do, in one place.
//!
//! [`Billing`] is the entry point: open it on a store and a provider registry for one domain,
//! then enable billing, manage project groups, projects, providers and billing accounts, sync
//! cost data, and answer report queries. Every call takes a [`Principal`] and enforces access
//! here, not in the HTTP layer.
//!
//! **Architecture invariant:** this crate sees only traits (`Store`, `BillingProvider`); it
//! never names sqlx, reqwest, axum or clap. Binaries pick the concrete adapters.

mod accounts;
mod allocations;
mod anomalies;
mod auth;
mod billing;
mod budgets;
mod catalog;
mod error;
mod files;
mod forecast;
mod fx;
mod hint;
mod invoices;
mod monitors;
mod notify;
mod periods;
pub mod ranges;
mod report;
mod request;
mod scheduler;
mod sync;
mod tenants;
mod tokens;
mod warm;
mod windows;

pub use accounts::ProviderView;
pub use allocations::{AllocationUpdate, AllocationView};
pub use anomalies::{AnomalyRequest, Contributor, FoundAnomaly, MAX_ANOMALY_HISTORY_DAYS};
pub use auth::Principal;
pub use billing::{Billing, BillingConfig, NewAccount};
pub use cloudbill_aggregate::anomaly::{
    Direction as AnomalyDirection, Settings as AnomalySettings,
};
pub use cloudbill_aggregate::{
    Amount, Answer, Bucket, Conversion, GroupKey, Query, QueryError, RatesUsed, Report, ReportRow,
    Sort, TagKey, TagSummary, TagValue, MAX_TAG_KEY_LEN, MAX_TAG_VALUES_LISTED, NO_VALUE,
};
// What an embedder handles besides the use cases: the domain values, the provider trait and
// registry, the store trait family and the in-memory store (for its own tests).
pub use budgets::{
    BudgetStatus, BudgetView, Evaluation, EventView, NewBudget, NewNotification,
    NotificationStatus, NotificationView, ScopeView,
};
pub use cloudbill_core::{
    ClientSecret, Currency, DateRange, Decimal, Granularity, Money, NaiveDate, ProviderSpec,
    SettingKind, SettingSpec, Settings,
};
pub use cloudbill_focus::{BillFormat, ExportFormat as FocusFormat, ImportOptions, RowError};
pub use cloudbill_provider::{BillingProvider, FetchScope, ProviderError, ProviderRegistry};
pub use cloudbill_store::{
    AnomalyStore, CatalogStore, CostStore, FxStore, InvoiceStore, JobStore, MemoryStore,
    NotifyStore, PeriodStore, Store, StoreError, TokenStore,
};
pub use error::ServiceError;
pub use files::{BillSource, ExportFilters, ExportedRecord, ImportReport, BILLING_PERIOD_STATUS};
pub use forecast::{
    CurrencyForecast, ForecastPeriod, ForecastReport, ForecastRequest, PeriodBounds,
    MAX_RESTATE_DAYS,
};
pub use fx::{
    parse_rates, FxPolicy, RateImport, CONVERTED_SCALE, MAX_RATES_PER_FILE, MAX_RATE_LOOKBACK_DAYS,
};
pub use hint::Hint;
pub use invoices::{parse_period, NewInvoice, Reconciled, Reconciliation};
pub use monitors::{
    AnomalyView, Detection, MonitorView, NewMonitor, CLOSE_AFTER_NORMAL_DAYS, DEFAULT_MONITOR,
    MONITOR_WINDOW_DAYS, RENOTIFY_GROWTH,
};
pub use notify::{
    ChannelSpec, DeliveryCounts, DeliveryPolicy, DeliveryView, FlushReport, NewChannel, Notifier,
    Outgoing, MIN_WEBHOOK_SECRET,
};
pub use periods::PeriodView;
pub use report::on_cpu;
pub use request::{integral, ReportRequest};
pub use scheduler::SchedulerConfig;
pub use sync::{AccountOutcome, JobView, NoProgress, SyncObserver, SyncReport, SyncRequest};
pub use tenants::{Caller, DomainView, SystemAdmin, Tenants, DEFAULT_ENGINE_MEMORY};
pub use warm::{Refreshed, WarmInfo, FULL_RELOAD_EVERY};
pub use windows::STREAM_ABOVE_RECORDS;
