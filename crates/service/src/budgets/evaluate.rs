//! Budget evaluation: after a change (a sync, an import, a new budget, the scheduler's tick),
//! the budgets whose scope the change touched are judged and each threshold that crossed or went
//! back under becomes a `Transition` the store applies once, with its event and deliveries.

#[allow(clippy::wildcard_imports)] // The parent's vocabulary: budgets, scopes, statuses.
use super::*;

impl Billing {
    /// After a change of cost data, budgets or monitors: evaluates the budgets and runs the
    /// anomaly monitors (those whose scope holds a `touched` account, from the earliest changed
    /// day; or all) and delivers what that queued. Never fails the caller: a sync's or
    /// import's data is committed already; problems are logged, and undelivered events wait
    /// in the outbox.
    pub(crate) async fn after_change(
        &self,
        cause: &str,
        touched: Option<(&BTreeSet<AccountId>, Option<NaiveDate>)>,
    ) {
        // The warm engine first: the writer's next report sees its change (only the slices
        // it changed are read again), and the budgets below are evaluated on it.
        if let Err(e) = self.refresh().await {
            tracing::warn!(error = %e, "warm engine not refreshed; the next report loads it");
        }
        let accounts = touched.map(|t| t.0);
        let mut queued = 0;
        match self.evaluate_budgets(cause, accounts).await {
            Ok(e) => {
                for error in &e.errors {
                    tracing::warn!(error = %error, "budget not evaluated");
                }
                queued += e.events.len();
            }
            Err(e) => tracing::warn!(error = %e, "budgets not evaluated"),
        }
        match self.run_monitors(cause, touched).await {
            Ok(d) => {
                for error in &d.errors {
                    tracing::warn!(error = %error, "anomaly monitor not run");
                }
                queued += d.events.len();
            }
            Err(e) => tracing::warn!(error = %e, "anomaly monitors not run"),
        }
        if queued == 0 {
            return;
        }
        if self.inner.notifier.get().is_some() {
            if self.inner.config.deliver_in_background {
                let me = self.clone();
                tokio::spawn(async move {
                    if let Err(e) = me.deliver_due().await {
                        tracing::warn!(error = %e, "notifications not delivered; they stay queued");
                    }
                });
            } else if let Err(e) = self.deliver_due().await {
                tracing::warn!(error = %e, "notifications not delivered; they stay queued");
            }
        }
    }

    /// Evaluates budgets now (admin only; the scheduler does it on its tick) and returns the
    /// events it recorded; delivery follows separately.
    pub async fn evaluate_all_budgets(&self, p: &Principal) -> Result<Evaluation, ServiceError> {
        p.require_admin("evaluate budgets")?;
        let e = self.evaluate_budgets("evaluate", None).await?;
        if !e.events.is_empty() && self.inner.notifier.get().is_some() {
            self.deliver_due().await?;
        }
        Ok(e)
    }

    /// Evaluates the budgets whose scope may hold a `touched` account (every budget with
    /// `None`) for the current period — and the previous one while its days may still be
    /// restated — and records each threshold that crossed or went back under, once.
    pub(crate) async fn evaluate_budgets(
        &self,
        cause: &str,
        touched: Option<&BTreeSet<AccountId>>,
    ) -> Result<Evaluation, ServiceError> {
        let domain = self.domain().await?;
        if !domain.billing_enabled {
            return Ok(Evaluation::default());
        }
        let store = self.notify_store();
        let budgets = store.budgets(self.domain_id()).await?;
        if budgets.is_empty() {
            return Ok(Evaluation::default());
        }
        let scopes: Vec<(BudgetId, BudgetScope)> =
            budgets.iter().map(|b| (b.id, b.scope)).collect();
        let relevant = self.relevant(&scopes, touched).await?;
        let fired = store.fired_thresholds(self.domain_id()).await?;
        let today = self.today();
        let recent = today - chrono::Duration::days(self.inner.config.restate_days.max(0));
        let mut eval = Evaluation::default();
        let mut transitions = Vec::new();
        let chosen: Vec<&Budget> = budgets
            .iter()
            .filter(|b| relevant.contains(&b.id))
            .collect();
        for b in chosen {
            eval.budgets += 1;
            let mut days = vec![today];
            if b.period.bounds(recent).0 != b.period.bounds(today).0 {
                days.push(recent);
            }
            for day in days {
                match self.status_of(b, day, &fired).await {
                    Ok(status) => transitions.extend(self.transitions(b, &status, cause)),
                    Err(e) => eval.errors.push(format!("budget {}: {e}", b.name)),
                }
            }
        }
        eval.events = store
            .record_transitions(self.domain_id(), &transitions)
            .await?;
        Ok(eval)
    }

    /// The objects (budgets, monitors) whose scope may hold one of `touched` (every one with
    /// `None`).
    pub(crate) async fn relevant<K: Ord + Copy>(
        &self,
        scopes: &[(K, BudgetScope)],
        touched: Option<&BTreeSet<AccountId>>,
    ) -> Result<BTreeSet<K>, ServiceError> {
        let Some(touched) = touched else {
            return Ok(scopes.iter().map(|b| b.0).collect());
        };
        let histories = self
            .catalog_store()
            .assignment_histories(self.domain_id())
            .await?;
        // Every project a touched account was ever in.
        let projects: BTreeSet<cloudbill_core::ProjectId> = touched
            .iter()
            .filter_map(|a| histories.get(a))
            .flatten()
            .map(|x| x.project)
            .collect();
        let all_projects = self.catalog_store().projects(self.domain_id()).await?;
        let groups = self.catalog_store().groups(self.domain_id()).await?;
        let in_group = |g: cloudbill_core::GroupId, project: cloudbill_core::ProjectId| {
            let mut at = all_projects
                .iter()
                .find(|x| x.id == project)
                .and_then(|x| x.group);
            // Up the group tree (bounded: a tree of groups has no cycle, but never trust it).
            for _ in 0..64 {
                match at {
                    Some(id) if id == g => return true,
                    Some(id) => at = groups.iter().find(|x| x.id == id).and_then(|x| x.parent),
                    None => return false,
                }
            }
            false
        };
        Ok(scopes
            .iter()
            .filter(|b| match b.1 {
                BudgetScope::Domain => true,
                BudgetScope::Project(id) => projects.contains(&id),
                BudgetScope::Account(id) => touched.contains(&id),
                BudgetScope::Group(g) => projects.iter().any(|p| in_group(g, *p)),
            })
            .map(|b| b.0)
            .collect())
    }

    /// The transitions of `b`'s notifications given its status: crossed and not fired →
    /// fire; fired and now under → clear; unknown (no forecast) → nothing.
    fn transitions(&self, b: &Budget, status: &BudgetStatus, cause: &str) -> Vec<Transition> {
        let mut out = Vec::new();
        for (i, n) in b.notifications.iter().enumerate() {
            let fired = status.notifications[i].fired_at.is_some();
            let fire = match crossed(n, status.amount, status.actual, status.forecast) {
                Some(true) if !fired => true,
                Some(false) if fired => false,
                _ => continue,
            };
            let kind = if fire {
                "budget.threshold_crossed"
            } else {
                "budget.threshold_cleared"
            };
            let event = self.budget_event(b, n, status, kind, cause);
            out.push(Transition {
                budget: b.id,
                notification: u32::try_from(i).unwrap_or(u32::MAX),
                period_start: status.period.start,
                fire,
                event,
                channels: n.channels.clone(),
            });
        }
        out
    }

    fn budget_event(
        &self,
        b: &Budget,
        n: &Notification,
        status: &BudgetStatus,
        kind: &str,
        cause: &str,
    ) -> cloudbill_core::Event {
        let id = EventId::new();
        // The real time: the outbox schedules and gives up by it (`today` may be set).
        let now = Utc::now();
        let path = match b.scope {
            BudgetScope::Project(p) => format!("/projects/{p}"),
            _ => "/".to_owned(),
        };
        let link = format!(
            "{}{path}",
            self.inner
                .config
                .public_url
                .as_deref()
                .unwrap_or("")
                .trim_end_matches('/')
        );
        let payload = cloudbill_core::EventPayload::Budget(Box::new(cloudbill_core::BudgetEvent {
            id,
            kind: kind.to_owned(),
            occurred_at: now,
            domain: self.inner.domain.name.to_string(),
            budget: b.name.to_string(),
            budget_id: b.id,
            threshold: cloudbill_core::ThresholdSaid {
                kind: n.threshold.basis.as_str().to_owned(),
                value: n.threshold.level(),
            },
            limit: n.threshold.limit(b.amount.amount()),
            period: cloudbill_core::PeriodSaid {
                start: status.period.start,
                end: status.period.end,
            },
            amount: b.amount.amount(),
            actual: status.actual,
            forecast: status.forecast,
            currency: b.amount.currency().as_str().to_owned(),
            metric: b.metric.as_str().to_owned(),
            link,
        }));
        cloudbill_core::Event {
            id,
            domain: self.domain_id(),
            kind: kind.to_owned(),
            subject: b.id.as_uuid(),
            subject_name: b.name.to_string(),
            occurred_at: now,
            cause: cause.to_owned(),
            payload: payload.to_json(),
        }
    }
}
