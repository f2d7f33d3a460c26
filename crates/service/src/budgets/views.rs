//! What a budget is entered as (`NewBudget`) and shown as (views, status, events).

use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

use cloudbill_core::{
    AccountId, BudgetId, ChannelId, CostMetric, Currency, Decimal, EventId, Name, Period,
};
use serde::Serialize;

use crate::PeriodBounds;

/// A budget to create, as a user spells it.
#[derive(Debug, Clone, Default)]
pub struct NewBudget {
    /// Unique name in the domain.
    pub name: String,
    /// The amount per period (a decimal above 0).
    pub amount: String,
    /// Its currency (ISO 4217); only records in it count.
    pub currency: String,
    /// `monthly` (default), `quarterly` or `yearly`.
    pub period: Option<String>,
    /// Scope: one project (name or id) …
    pub project: Option<String>,
    /// … or a project group with its sub-groups …
    pub project_group: Option<String>,
    /// … or one account; none of them: the domain.
    pub account: Option<String>,
    /// Further filters, `KEY=VALUE` as in reports (`tag:KEY` included).
    pub filters: Vec<(String, String)>,
    /// `billed` (default) or `effective`.
    pub metric: Option<String>,
    /// The notifications (at most 10).
    pub notifications: Vec<NewNotification>,
    /// Channels of the notifications that name none.
    pub channels: Vec<String>,
}

/// One notification of a new budget.
#[derive(Debug, Clone, Default)]
pub struct NewNotification {
    /// `actual:80%`, `forecast:100%`, `actual:5000`, …
    pub threshold: String,
    /// Channel names or ids (empty: the budget's `channels`).
    pub channels: Vec<String>,
}

/// A budget as shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BudgetView {
    /// Identifier.
    pub id: BudgetId,
    /// Name.
    pub name: String,
    /// Whose spend.
    pub scope: ScopeView,
    /// Further filters, key → values.
    pub filters: BTreeMap<String, Vec<String>>,
    /// `monthly`, `quarterly` or `yearly`.
    pub period: Period,
    /// Amount per period.
    pub amount: Decimal,
    /// Its currency.
    pub currency: Currency,
    /// `billed` or `effective`.
    pub metric: CostMetric,
    /// Thresholds and their channels.
    pub notifications: Vec<NotificationView>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// A budget's scope as shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScopeView {
    /// `domain`, `project`, `project_group` or `account`.
    pub kind: &'static str,
    /// The object's id (not for `domain`).
    pub id: Option<uuid::Uuid>,
    /// Its name.
    pub name: Option<String>,
}

/// A notification as shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotificationView {
    /// `actual:80%`, …
    pub threshold: String,
    /// Channel names.
    pub channels: Vec<String>,
}

/// A budget's standing in one period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BudgetStatus {
    /// Identifier.
    pub id: BudgetId,
    /// Name.
    pub name: String,
    /// The period.
    pub period: PeriodBounds,
    /// The budget amount.
    pub amount: Decimal,
    /// Its currency.
    pub currency: Currency,
    /// `billed` or `effective`.
    pub metric: CostMetric,
    /// Spend recorded in the period (so far), exact, in the budget's currency.
    pub actual: Decimal,
    /// The period-end forecast (`null` when there is none: see `forecast_status`).
    pub forecast: Option<Decimal>,
    /// `ok`, `insufficient_history`, `period_over` (forecast = actual) or `not_started`.
    pub forecast_status: &'static str,
    /// `actual` as a percentage of `amount`, to two decimals (`null` only when it does not
    /// fit a decimal: spend beyond 10^26 times the budget).
    pub percent_used: Option<Decimal>,
    /// `forecast` as a percentage of `amount` (`null` without a forecast, or as above).
    pub forecast_percent: Option<Decimal>,
    /// Spend in other currencies in the scope, not counted (no conversion yet).
    pub not_counted: Vec<cloudbill_aggregate::Amount>,
    /// What the reader should know (currencies not counted).
    pub note: Option<String>,
    /// Each notification's state.
    pub notifications: Vec<NotificationStatus>,
}

/// A notification's state in a period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotificationStatus {
    /// `actual:80%`, …
    pub threshold: String,
    /// The amount at which it is crossed.
    pub limit: Decimal,
    /// `fired` (crossed, event recorded), `crossed` (over, not recorded yet: the next
    /// evaluation will), `ok` (under), `no_forecast` (a forecast threshold without one).
    pub state: &'static str,
    /// When it fired.
    pub fired_at: Option<DateTime<Utc>>,
}

/// A budget event as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventView {
    /// Event id (receivers dedupe on it).
    pub id: EventId,
    /// `budget.threshold_crossed` or `budget.threshold_cleared`.
    #[serde(rename = "type")]
    pub kind: String,
    /// When.
    pub occurred_at: DateTime<Utc>,
    /// The budget's name then.
    pub budget: String,
    /// What caused it: `sync`, `import`, `scheduler`, `budget_created`.
    pub cause: String,
    /// The event as sent (`null` when this version cannot read it).
    pub payload: Option<cloudbill_core::BudgetEvent>,
}

/// What an evaluation did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Evaluation {
    /// Budgets evaluated.
    pub budgets: usize,
    /// Events recorded (crossings and clearings).
    pub events: Vec<EventId>,
    /// Budgets that could not be evaluated, with why.
    pub errors: Vec<String>,
}

/// Names of the catalog, to show scopes and resolve keys.
pub(crate) struct Names {
    pub(crate) projects: Vec<(cloudbill_core::ProjectId, Name)>,
    pub(crate) groups: Vec<(cloudbill_core::ProjectGroup,)>,
    pub(crate) accounts: Vec<(AccountId, Name, cloudbill_core::ProjectId)>,
    pub(crate) channels: Vec<(ChannelId, Name)>,
}

pub(super) fn round2(v: Decimal) -> Decimal {
    v.round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointNearestEven)
}

/// `v` as a percentage of `of`, to two decimals; `None` when it does not fit a decimal.
pub(super) fn percent(v: Decimal, of: Decimal) -> Option<Decimal> {
    if of <= Decimal::ZERO {
        return None;
    }
    v.checked_div(of)
        .and_then(|x| x.checked_mul(Decimal::ONE_HUNDRED))
        .map(round2)
}
