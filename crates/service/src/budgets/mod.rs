//! Budgets: a limit per period on a scope's spend, its status (actual and forecast), and the
//! evaluation that records each threshold crossing once — with its event and deliveries, in
//! one transaction — after syncs, imports and on the scheduler's tick (`evaluate`).
//!
//! This module is the budgets' definition and status (what a budget is and how it stands);
//! `views` the values they are shown as; `evaluate` is what turns a status into recorded
//! crossings. Definition and status share the scope rules, the names and the forecast
//! plumbing, hence one module for both.

mod evaluate;
mod views;

use views::percent;
pub(crate) use views::Names;
pub use views::{
    BudgetStatus, BudgetView, Evaluation, EventView, NewBudget, NewNotification,
    NotificationStatus, NotificationView, ScopeView,
};

use std::collections::{BTreeMap, BTreeSet};

use chrono::{NaiveDate, Utc};
use cloudbill_aggregate::{GroupKey, Query};
use cloudbill_core::{
    AccountId, Budget, BudgetId, BudgetScope, ChannelId, CostMetric, Currency, Decimal, EventId,
    Granularity, Money, Name, Notification, Period, Threshold, ThresholdBasis, MAX_NOTIFICATIONS,
    MAX_NOTIFICATION_CHANNELS,
};
use cloudbill_store::{FiredThreshold, Transition};

use crate::billing::matches;
use crate::{Billing, ForecastRequest, PeriodBounds, Principal, ServiceError};

impl Billing {
    pub(crate) async fn names(&self) -> Result<Names, ServiceError> {
        let (catalog, notify) = (self.catalog_store(), self.notify_store());
        let d = self.domain_id();
        Ok(Names {
            projects: catalog
                .projects(d)
                .await?
                .into_iter()
                .map(|p| (p.id, p.name))
                .collect(),
            groups: catalog.groups(d).await?.into_iter().map(|g| (g,)).collect(),
            accounts: catalog
                .accounts(d)
                .await?
                .into_iter()
                .map(|a| (a.id, a.name, a.project))
                .collect(),
            channels: notify
                .channels(d)
                .await?
                .into_iter()
                .map(|c| (c.id, c.name))
                .collect(),
        })
    }

    fn visible(p: &Principal, b: &Budget) -> bool {
        Self::visible_scope(p, b.scope)
    }

    /// Whether `p` may see what is scoped to `scope`: an admin everything, a member what is
    /// scoped to one of its projects.
    pub(crate) fn visible_scope(p: &Principal, scope: BudgetScope) -> bool {
        match (p, scope) {
            (Principal::Admin, _) => true,
            (Principal::ProjectMember { .. }, BudgetScope::Project(id)) => p.may_read(id),
            _ => false,
        }
    }

    /// A scope from at most one of a project, a project group and an account (by name or
    /// id; none: the domain), for a `what` (budget, monitor).
    pub(crate) async fn resolve_scope(
        &self,
        p: &Principal,
        what: &str,
        [project, group, account]: [&Option<String>; 3],
        names: &Names,
    ) -> Result<BudgetScope, ServiceError> {
        if [project, group, account]
            .iter()
            .filter(|s| s.is_some())
            .count()
            > 1
        {
            return Err(ServiceError::Invalid(format!(
                "a {what}'s scope is one of a project, a project group or an account"
            )));
        }
        Ok(if let Some(key) = project {
            BudgetScope::Project(self.project(p, key).await?.id)
        } else if let Some(key) = group {
            let g = names
                .groups
                .iter()
                .find(|g| matches(&g.0.name, g.0.id.as_uuid(), key))
                .ok_or_else(|| ServiceError::NotFound {
                    what: "project group",
                    key: key.clone(),
                })?;
            BudgetScope::Group(g.0.id)
        } else if let Some(key) = account {
            BudgetScope::Account(self.account(p, key).await?.id)
        } else {
            BudgetScope::Domain
        })
    }

    /// The channels named by `keys` (names or ids).
    pub(crate) fn channel_ids(
        keys: &[String],
        names: &Names,
    ) -> Result<Vec<ChannelId>, ServiceError> {
        keys.iter()
            .map(|key| {
                names
                    .channels
                    .iter()
                    .find(|c| matches(&c.1, c.0.as_uuid(), key))
                    .map(|c| c.0)
                    .ok_or_else(|| ServiceError::NotFound {
                        what: "channel",
                        key: key.clone(),
                    })
            })
            .collect()
    }

    fn view(b: &Budget, names: &Names) -> BudgetView {
        let scope = Self::scope_view(b.scope, names);
        let mut filters: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (k, v) in &b.filters {
            filters.entry(k.clone()).or_default().push(v.clone());
        }
        BudgetView {
            id: b.id,
            name: b.name.to_string(),
            scope,
            filters,
            period: b.period,
            amount: b.amount.amount(),
            currency: b.amount.currency(),
            metric: b.metric,
            notifications: b
                .notifications
                .iter()
                .map(|n| NotificationView {
                    threshold: n.threshold.to_string(),
                    channels: Self::channel_names(&n.channels, names),
                })
                .collect(),
            created_at: b.created_at,
        }
    }

    /// Channel names of `ids` (an id when the channel is gone).
    pub(crate) fn channel_names(ids: &[ChannelId], names: &Names) -> Vec<String> {
        ids.iter()
            .map(|c| {
                names
                    .channels
                    .iter()
                    .find(|x| x.0 == *c)
                    .map_or_else(|| c.to_string(), |x| x.1.to_string())
            })
            .collect()
    }

    /// A scope as shown.
    pub(crate) fn scope_view(scope: BudgetScope, names: &Names) -> ScopeView {
        match scope {
            BudgetScope::Domain => ScopeView {
                kind: "domain",
                id: None,
                name: None,
            },
            BudgetScope::Project(id) => ScopeView {
                kind: "project",
                id: Some(id.as_uuid()),
                name: names
                    .projects
                    .iter()
                    .find(|x| x.0 == id)
                    .map(|x| x.1.to_string()),
            },
            BudgetScope::Group(id) => ScopeView {
                kind: "project_group",
                id: Some(id.as_uuid()),
                name: names
                    .groups
                    .iter()
                    .find(|x| x.0.id == id)
                    .map(|x| x.0.name.to_string()),
            },
            BudgetScope::Account(id) => ScopeView {
                kind: "account",
                id: Some(id.as_uuid()),
                name: names
                    .accounts
                    .iter()
                    .find(|x| x.0 == id)
                    .map(|x| x.1.to_string()),
            },
        }
    }

    /// Creates a budget. A member may create budgets of its own projects only. The budget is
    /// evaluated at once: a threshold already crossed fires now.
    pub async fn create_budget(
        &self,
        p: &Principal,
        new: NewBudget,
    ) -> Result<BudgetView, ServiceError> {
        let names = self.names().await?;
        let budget = self.budget_from(p, new, &names).await?;
        self.notify_store().create_budget(&budget).await?;
        let view = Self::view(&budget, &names);
        self.after_change("budget_created", None).await;
        Ok(view)
    }

    /// Replaces the budget `key` with `new` (same id and creation time); its thresholds are
    /// judged afresh at once (a threshold still crossed fires again under the new definition).
    pub async fn update_budget(
        &self,
        p: &Principal,
        key: &str,
        new: NewBudget,
    ) -> Result<BudgetView, ServiceError> {
        let old = self.find_budget(p, key).await?;
        let names = self.names().await?;
        let mut budget = self.budget_from(p, new, &names).await?;
        budget.id = old.id;
        budget.created_at = old.created_at;
        self.notify_store().update_budget(&budget).await?;
        let view = Self::view(&budget, &names);
        self.after_change("budget_updated", None).await;
        Ok(view)
    }

    /// A budget from a user's spelling, every field checked; `p` must be allowed to own it.
    #[allow(clippy::too_many_lines)] // One validation pass over every field, in order.
    async fn budget_from(
        &self,
        p: &Principal,
        new: NewBudget,
        names: &Names,
    ) -> Result<Budget, ServiceError> {
        let name = Name::parse(&new.name, "budget name")?;
        let amount = cloudbill_core::parse_decimal(new.amount.trim()).map_err(|_| {
            ServiceError::Invalid(format!(
                "budget amount {:?} is not a decimal number",
                cloudbill_core::cut(&new.amount, 40)
            ))
        })?;
        cloudbill_core::check_entered_amount(amount, "budget amount")?;
        let amount = Money::new(amount, Currency::parse(&new.currency)?);
        let period: Period = new.period.as_deref().unwrap_or("monthly").parse()?;
        let metric: CostMetric = new.metric.as_deref().unwrap_or("billed").parse()?;
        let scope = self
            .resolve_scope(
                p,
                "budget",
                [&new.project, &new.project_group, &new.account],
                names,
            )
            .await?;
        for (k, v) in &new.filters {
            let key: GroupKey = k.parse()?;
            if v.trim().is_empty() {
                return Err(ServiceError::Invalid(format!(
                    "filter {key} has an empty value"
                )));
            }
        }
        if new.notifications.len() > MAX_NOTIFICATIONS {
            return Err(ServiceError::Invalid(format!(
                "a budget has at most {MAX_NOTIFICATIONS} notifications ({} given)",
                new.notifications.len()
            )));
        }
        let defaults = Self::channel_ids(&new.channels, names)?;
        let mut notifications = Vec::new();
        for n in &new.notifications {
            let threshold = Threshold::parse(&n.threshold)?;
            let channels = if n.channels.is_empty() {
                defaults.clone()
            } else {
                Self::channel_ids(&n.channels, names)?
            };
            if channels.is_empty() {
                return Err(ServiceError::Invalid(format!(
                    "notification {threshold} has no channel (give --channel NAME)"
                )));
            }
            // Each channel is told once, however often it is named (or by name and id).
            let mut channels = channels;
            let mut seen = BTreeSet::new();
            channels.retain(|c| seen.insert(*c));
            if channels.len() > MAX_NOTIFICATION_CHANNELS {
                return Err(ServiceError::Invalid(format!(
                    "notification {threshold} names {} channels (at most {MAX_NOTIFICATION_CHANNELS})",
                    channels.len()
                )));
            }
            notifications.push(Notification {
                threshold,
                channels,
            });
        }
        let budget = Budget {
            id: BudgetId::new(),
            domain: self.domain_id(),
            name,
            scope,
            filters: new
                .filters
                .iter()
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .collect(),
            period,
            amount,
            metric,
            notifications,
            created_at: self.now(),
        };
        budget.validate()?;
        if !Self::visible(p, &budget) {
            return Err(ServiceError::Forbidden(
                "a project member may create budgets of its own projects only".into(),
            ));
        }
        Ok(budget)
    }

    /// The budgets `p` may see, by name.
    pub async fn budgets(&self, p: &Principal) -> Result<Vec<BudgetView>, ServiceError> {
        let names = self.names().await?;
        Ok(self
            .notify_store()
            .budgets(self.domain_id())
            .await?
            .iter()
            .filter(|b| Self::visible(p, b))
            .map(|b| Self::view(b, &names))
            .collect())
    }

    async fn find_budget(&self, p: &Principal, key: &str) -> Result<Budget, ServiceError> {
        self.notify_store()
            .budgets(self.domain_id())
            .await?
            .into_iter()
            .find(|b| Self::visible(p, b) && matches(&b.name, b.id.as_uuid(), key))
            .ok_or_else(|| ServiceError::NotFound {
                what: "budget",
                key: key.to_owned(),
            })
    }

    /// One budget by name or id.
    pub async fn budget(&self, p: &Principal, key: &str) -> Result<BudgetView, ServiceError> {
        let b = self.find_budget(p, key).await?;
        Ok(Self::view(&b, &self.names().await?))
    }

    /// Deletes a budget (its events are kept).
    pub async fn delete_budget(&self, p: &Principal, key: &str) -> Result<(), ServiceError> {
        let b = self.find_budget(p, key).await?;
        self.notify_store()
            .delete_budget(self.domain_id(), b.id)
            .await?;
        Ok(())
    }

    /// The status of one budget (`key`) or of every budget `p` may see, in the period holding
    /// `day` (today by default).
    pub async fn budget_status(
        &self,
        p: &Principal,
        key: Option<&str>,
        day: Option<NaiveDate>,
    ) -> Result<Vec<BudgetStatus>, ServiceError> {
        self.require_billing().await?;
        let budgets = match key {
            Some(k) => vec![self.find_budget(p, k).await?],
            None => self
                .notify_store()
                .budgets(self.domain_id())
                .await?
                .into_iter()
                .filter(|b| Self::visible(p, b))
                .collect(),
        };
        let fired = self
            .notify_store()
            .fired_thresholds(self.domain_id())
            .await?;
        let day = day.unwrap_or_else(|| self.today());
        let mut out = Vec::with_capacity(budgets.len());
        for b in &budgets {
            out.push(self.status_of(b, day, &fired).await?);
        }
        Ok(out)
    }

    /// The events of one budget or of every budget `p` may see, newest first.
    pub async fn budget_events(
        &self,
        p: &Principal,
        key: Option<&str>,
        limit: u32,
    ) -> Result<Vec<EventView>, ServiceError> {
        let subject = match key {
            Some(k) => Some(self.find_budget(p, k).await?.id.as_uuid()),
            None => None,
        };
        let visible: BTreeSet<uuid::Uuid> = self
            .notify_store()
            .budgets(self.domain_id())
            .await?
            .iter()
            .filter(|b| Self::visible(p, b))
            .map(|b| b.id.as_uuid())
            .collect();
        let events = self
            .notify_store()
            .events(self.domain_id(), subject, limit.clamp(1, 10_000))
            .await?;
        Ok(events
            .into_iter()
            .filter(|e| e.kind.starts_with("budget."))
            // A member sees the events of the budgets it sees now; an admin every one,
            // deleted budgets' included.
            .filter(|e| matches!(p, Principal::Admin) || visible.contains(&e.subject))
            .map(|e| EventView {
                id: e.id,
                payload: match e.said() {
                    Ok(cloudbill_core::EventPayload::Budget(b)) => Some(*b),
                    _ => None,
                },
                kind: e.kind,
                occurred_at: e.occurred_at,
                budget: e.subject_name,
                cause: e.cause,
            })
            .collect())
    }

    fn budget_filters(b: &Budget) -> Result<BTreeMap<GroupKey, Vec<String>>, ServiceError> {
        Self::scope_filters(b.scope, &b.filters)
    }

    /// A scope and its `KEY=VALUE` filters as report filters.
    pub(crate) fn scope_filters(
        scope: BudgetScope,
        extra: &[(String, String)],
    ) -> Result<BTreeMap<GroupKey, Vec<String>>, ServiceError> {
        let mut filters: BTreeMap<GroupKey, Vec<String>> = BTreeMap::new();
        match scope {
            BudgetScope::Domain => {}
            BudgetScope::Project(id) => {
                filters.insert(GroupKey::Project, vec![id.to_string()]);
            }
            BudgetScope::Group(id) => {
                filters.insert(GroupKey::ProjectGroup, vec![id.to_string()]);
            }
            BudgetScope::Account(id) => {
                filters.insert(GroupKey::ServiceAccount, vec![id.to_string()]);
            }
        }
        for (k, v) in extra {
            let key: GroupKey = k.parse()?;
            if v.trim().is_empty() {
                return Err(ServiceError::Invalid(format!(
                    "filter {key} has an empty value"
                )));
            }
            filters.entry(key).or_default().push(v.clone());
        }
        Ok(filters)
    }

    /// Actual and forecast per currency of `b` in the period holding `day`, and the
    /// forecast's status.
    async fn spend(
        &self,
        b: &Budget,
        day: NaiveDate,
    ) -> Result<(BTreeMap<Currency, (Decimal, Option<Decimal>)>, &'static str), ServiceError> {
        let (start, end) = b.period.bounds(day);
        let today = self.today();
        let filters = Self::budget_filters(b)?;
        if start <= today && today < end {
            let mut request = ForecastRequest::new(today);
            request.filters = filters;
            request.period = b.period;
            request.metric = b.metric;
            let f = self.forecast(&Principal::Admin, &request).await?;
            let mine = f
                .currencies
                .iter()
                .find(|c| c.currency == b.amount.currency());
            let status = mine.map_or("insufficient_history", |c| c.status);
            // A period cannot end below what it has recorded already: the model predicts
            // today and the restatable days afresh, which can fall under their records.
            return Ok((
                f.currencies
                    .iter()
                    .map(|c| (c.currency, (c.actual, c.forecast.map(|v| v.max(c.actual)))))
                    .collect(),
                status,
            ));
        }
        if today < start {
            return Ok((BTreeMap::new(), "not_started"));
        }
        let mut query = Query::new(
            cloudbill_core::DateRange::new(start, end)?,
            Granularity::Monthly,
        );
        query.filters = filters;
        query.metric = b.metric;
        let report = self.report(&Principal::Admin, &query).await?;
        let mut out: BTreeMap<Currency, (Decimal, Option<Decimal>)> = BTreeMap::new();
        for row in &report.results {
            for t in &row.total {
                let slot = out.entry(t.currency).or_insert((Decimal::ZERO, None));
                slot.0 = cloudbill_core::exact(slot.0.checked_add(t.cost), || {
                    format!("budget {}'s spend in {}", b.name, t.currency)
                })?;
                slot.1 = Some(slot.0);
            }
        }
        Ok((out, "period_over"))
    }

    async fn status_of(
        &self,
        b: &Budget,
        day: NaiveDate,
        fired: &[FiredThreshold],
    ) -> Result<BudgetStatus, ServiceError> {
        let (start, end) = b.period.bounds(day);
        let (spend, forecast_status) = self.spend(b, day).await?;
        let currency = b.amount.currency();
        let (mut actual, mut forecast) = spend
            .get(&currency)
            .copied()
            .unwrap_or((Decimal::ZERO, None));
        let mut not_counted: Vec<cloudbill_aggregate::Amount> = spend
            .iter()
            .filter(|(c, v)| **c != currency && v.0 != Decimal::ZERO)
            .map(|(c, v)| cloudbill_aggregate::Amount {
                cost: v.0,
                currency: *c,
            })
            .collect();
        let mut note = None;
        if !not_counted.is_empty() {
            let others: Vec<String> = not_counted.iter().map(|a| a.currency.to_string()).collect();
            match self.converted(b, (start, end), &spend).await {
                Ok((a, f)) => {
                    (actual, forecast) = (a, f);
                    note = Some(format!(
                        "spend in {} converted to {currency}: each day at its rate, the forecast's remaining days at the last day's (docs/CURRENCY.md)",
                        others.join(", ")
                    ));
                    not_counted.clear();
                }
                Err(e) => {
                    note = Some(format!(
                        "only {currency} records count: spend in {} is not converted ({e})",
                        others.join(", ")
                    ));
                }
            }
        }
        let forecast = if forecast_status == "period_over" {
            Some(actual)
        } else {
            forecast
        };
        let notifications = b
            .notifications
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let limit = n.threshold.limit(b.amount.amount());
                let fired_at = fired
                    .iter()
                    .find(|f| {
                        f.budget == b.id && f.notification as usize == i && f.period_start == start
                    })
                    .map(|f| f.fired_at);
                let state = match (fired_at, crossed(n, b.amount.amount(), actual, forecast)) {
                    (Some(_), _) => "fired",
                    (None, Some(true)) => "crossed",
                    (None, Some(false)) => "ok",
                    (None, None) => "no_forecast",
                };
                NotificationStatus {
                    threshold: n.threshold.to_string(),
                    limit,
                    state,
                    fired_at,
                }
            })
            .collect();
        Ok(BudgetStatus {
            id: b.id,
            name: b.name.to_string(),
            period: PeriodBounds { start, end },
            amount: b.amount.amount(),
            currency,
            metric: b.metric,
            actual,
            forecast,
            forecast_status,
            percent_used: percent(actual, b.amount.amount()),
            forecast_percent: forecast.and_then(|f| percent(f, b.amount.amount())),
            not_counted,
            note,
            notifications,
        })
    }

    /// The budget's spend with its other currencies converted into its own: the actual as a
    /// converted report (every (day, currency) cell at its day's rate), the forecast as that
    /// plus each currency's predicted remainder at the rate of the last day read.
    async fn converted(
        &self,
        b: &Budget,
        (start, end): (NaiveDate, NaiveDate),
        spend: &BTreeMap<Currency, (Decimal, Option<Decimal>)>,
    ) -> Result<(Decimal, Option<Decimal>), ServiceError> {
        let currency = b.amount.currency();
        let last = end.min(self.today().succ_opt().unwrap_or(end));
        if last <= start {
            return Ok((Decimal::ZERO, None));
        }
        let mut query = Query::new(
            cloudbill_core::DateRange::new(start, last)?,
            Granularity::Monthly,
        );
        query.filters = Self::budget_filters(b)?;
        query.metric = b.metric;
        let report = self
            .report_in(&Principal::Admin, &query, currency, &crate::FxPolicy::Daily)
            .await?;
        let mut actual = Decimal::ZERO;
        for t in report.results.iter().flat_map(|row| row.total.iter()) {
            actual = cloudbill_core::exact(actual.checked_add(t.cost), || {
                format!("budget {}'s converted spend", b.name)
            })?;
        }
        let rate_day = last.pred_opt().unwrap_or(last);
        let mut forecast = Some(actual);
        for (c, (a, f)) in spend {
            let Some(f) = f else {
                forecast = None;
                break;
            };
            let out_of_range = || format!("budget {}'s forecast in {c}", b.name);
            let remaining = cloudbill_core::exact(f.checked_sub(*a), out_of_range)?;
            let converted = if *c == currency {
                remaining
            } else {
                self.convert_amount(remaining, *c, currency, rate_day)
                    .await?
            };
            forecast = match forecast {
                Some(x) => Some(cloudbill_core::exact(
                    x.checked_add(converted),
                    out_of_range,
                )?),
                None => None,
            };
        }
        Ok((actual, forecast))
    }
}

/// Whether `n` of a budget of `amount` is crossed: actual or forecast at or above its limit
/// (`None`: a forecast threshold without a forecast).
fn crossed(
    n: &Notification,
    amount: Decimal,
    actual: Decimal,
    forecast: Option<Decimal>,
) -> Option<bool> {
    let value = match n.threshold.basis {
        ThresholdBasis::Actual => Some(actual),
        ThresholdBasis::Forecast => forecast,
    }?;
    Some(n.threshold.crossed_by(amount, value))
}
