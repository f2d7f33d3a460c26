//! The cloudbill domain model: what a billing account, a project and a cost record are.
//!
//! Every value type here validates on construction (names are trimmed and bounded, money carries
//! a currency and never adds across currencies, date ranges are half-open and non-empty), so code
//! that holds one can trust it.
//!
//! **Architecture invariant:** this crate does no IO, knows no async runtime, no database and no
//! wire format. It depends on no other cloudbill crate.

mod account;
mod allocation;
pub mod aws;
mod budget;
mod cell;
mod cost_record;
mod date_range;
mod domain;
mod error;
mod events;
mod ids;
mod job;
mod lookup;
mod money;
mod monitor;
mod name;
pub mod net;
mod project;
mod provider;
mod settings;
mod token;

pub use account::{AccountState, Assignment, ClientSecret, ServiceAccount};
pub use allocation::{
    AllocationMethod, AllocationRule, AllocationSpec, MAX_ALLOCATION_TARGETS,
    MAX_ALLOCATION_VALUE_LEN, MAX_PRIORITY, MAX_SOURCE_KEYS, MAX_SOURCE_VALUES,
};
pub use budget::{
    check_email, check_http_url, check_secret_url, Budget, BudgetScope, Channel, ChannelKind,
    CostMetric, Delivery, DeliveryState, Event, Notification, Period, SmtpSettings, Threshold,
    ThresholdBasis, ThresholdValue, MAX_NOTIFICATIONS, MAX_NOTIFICATION_CHANNELS,
    MIN_BUDGET_AMOUNT,
};
pub use cell::{formula_safe, formula_unsafe};
pub use cost_record::{
    Attribute, Attributes, ChargeCategory, CostRecord, Extensions, Measure, Measures, Tags,
    EXTENSION_PREFIX,
};
pub use date_range::{
    check_day, parse_date, DateRange, Granularity, FIRST_DAY, LAST_DAY, MAX_RANGE_DAYS,
};
pub use domain::Domain;
pub use error::ValidationError;
pub use events::{
    AnomalyEvent, AnomalySaid, BudgetEvent, ChannelTestEvent, EventPayload, PeriodSaid,
    ThresholdSaid,
};
pub use ids::{
    AccountId, AllocationId, BudgetId, ChannelId, DeliveryId, DomainId, EventId, GroupId, JobId,
    MonitorId, ProjectId, TokenId,
};
pub use job::{ChangedDay, HeldDay, JobKind, JobState, PeriodChange, SyncJob};
pub use lookup::Lookup;
pub use money::{
    check_bill_amount, check_entered_amount, exact, parse_decimal, parse_entered_amount, Currency,
    FxRate, Invoice, Money, MAX_ENTERED_AMOUNT, MAX_ENTERED_SCALE, MAX_EXPONENT,
};
pub use monitor::{AnomalyState, Contributor, Monitor, StoredAnomaly};
pub use name::{cut, Name, MAX_DOMAIN_NAME_LEN, MAX_NAME_LEN};
pub use project::{Project, ProjectGroup};
pub use provider::{ProviderEntry, ProviderKind, ProviderState, FILE_SPEC, MAX_PROVIDER_NAME};
pub use settings::{ProviderSpec, SettingKind, SettingSpec, Settings};
pub use token::{ApiToken, TokenRole};

/// Re-exported so that users of the domain model name the same decimal and date types.
pub use chrono::NaiveDate;
pub use rust_decimal::Decimal;
