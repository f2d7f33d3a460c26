//! Anomaly monitors: a scope split by one dimension, run after every sync and import (over the
//! days the job changed), on the scheduler and on demand; each anomaly kept with its life cycle
//! (open → acknowledged | ignored → closed) and told once through the monitor's channels.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{NaiveDate, Utc};
use cloudbill_aggregate::anomaly::{Direction, Settings};
use cloudbill_aggregate::GroupKey;
use cloudbill_core::{
    AccountId, AnomalyState, BudgetScope, DateRange, Decimal, Monitor, MonitorId, Name,
    StoredAnomaly,
};
use cloudbill_store::AnomalyChange;
use serde::Serialize;

use crate::billing::matches;
use crate::budgets::Names;
use crate::{AnomalyRequest, Billing, FoundAnomaly, Principal, ScopeView, ServiceError};

/// Complete days a monitor judges each run (before today).
pub const MONITOR_WINDOW_DAYS: i64 = 35;
/// Normal days after an anomaly's last day that close it (`recovered`).
pub const CLOSE_AFTER_NORMAL_DAYS: i64 = 7;
/// An anomaly is told again when its |impact| reaches this multiple of the |impact| told last.
pub const RENOTIFY_GROWTH: u32 = 2;
/// The name of the monitor billing starts with (the domain, split by service).
pub const DEFAULT_MONITOR: &str = "default";

/// A monitor to create, as a user spells it.
#[derive(Debug, Clone, Default)]
pub struct NewMonitor {
    /// Unique name in the domain.
    pub name: String,
    /// Scope: one project …
    pub project: Option<String>,
    /// … or a project group with its sub-groups …
    pub project_group: Option<String>,
    /// … or one account; none: the domain.
    pub account: Option<String>,
    /// Further filters, `KEY=VALUE`.
    pub filters: Vec<(String, String)>,
    /// The key spend is split by (default `service`).
    pub dimension: Option<String>,
    /// Least robust z-score (default 3.5; above 0, at most 100).
    pub z: Option<String>,
    /// Least excess over expected in the currency (default 10; 0 or more).
    pub min_amount: Option<String>,
    /// Least excess in percent of expected (default 20; 0 to 10,000).
    pub min_percent: Option<String>,
    /// `spikes` (default) or `both`.
    pub direction: Option<String>,
    /// Channels `anomaly.detected` goes to.
    pub channels: Vec<String>,
}

/// A monitor as shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MonitorView {
    /// Identifier.
    pub id: MonitorId,
    /// Name.
    pub name: String,
    /// Whose spend.
    pub scope: ScopeView,
    /// Further filters.
    pub filters: BTreeMap<String, Vec<String>>,
    /// The split key.
    pub dimension: String,
    /// Least robust z-score.
    pub z: Decimal,
    /// Least excess amount.
    pub min_amount: Decimal,
    /// Least excess percentage.
    pub min_percent: Decimal,
    /// `spikes` or `both`.
    pub direction: &'static str,
    /// Channel names.
    pub channels: Vec<String>,
    /// Creation time.
    pub created_at: chrono::DateTime<Utc>,
}

/// A kept anomaly as shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AnomalyView {
    /// Its monitor's name.
    pub monitor: String,
    /// The anomaly.
    #[serde(flatten)]
    pub anomaly: StoredAnomaly,
}

/// What a run of the monitors did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Detection {
    /// Monitors run.
    pub monitors: usize,
    /// Anomalies found for the first time.
    pub opened: usize,
    /// Anomalies closed (recovered or restated).
    pub closed: usize,
    /// Events queued (`anomaly.detected`).
    pub events: Vec<cloudbill_core::EventId>,
    /// Monitors that could not run, with why.
    pub errors: Vec<String>,
}

fn decimal(raw: Option<&String>, what: &str, default: Decimal) -> Result<Decimal, ServiceError> {
    match raw {
        None => Ok(default),
        Some(r) => cloudbill_core::parse_decimal(r.trim()).map_err(|_| {
            ServiceError::Invalid(format!(
                "{what} {:?} is not a decimal number",
                cloudbill_core::cut(r, 40)
            ))
        }),
    }
}

fn settings_of(m: &Monitor) -> Settings {
    Settings {
        z: m.z,
        min_amount: m.min_amount,
        min_percent: m.min_percent,
        direction: if m.both_directions {
            Direction::Both
        } else {
            Direction::Spikes
        },
        ..Settings::default()
    }
}

impl Billing {
    fn monitor_view(m: &Monitor, names: &Names) -> MonitorView {
        let mut filters: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (k, v) in &m.filters {
            filters.entry(k.clone()).or_default().push(v.clone());
        }
        MonitorView {
            id: m.id,
            name: m.name.to_string(),
            scope: Self::scope_view(m.scope, names),
            filters,
            dimension: m.dimension.clone(),
            z: m.z,
            min_amount: m.min_amount,
            min_percent: m.min_percent,
            direction: if m.both_directions { "both" } else { "spikes" },
            channels: Self::channel_names(&m.channels, names),
            created_at: m.created_at,
        }
    }

    /// Creates a monitor (a member: of one of its projects) and runs it at once.
    #[allow(clippy::too_many_lines)] // One validation pass over every field, in order.
    pub async fn create_monitor(
        &self,
        p: &Principal,
        new: NewMonitor,
    ) -> Result<MonitorView, ServiceError> {
        let names = self.names().await?;
        let name = Name::parse(&new.name, "monitor name")?;
        let scope = self
            .resolve_scope(
                p,
                "monitor",
                [&new.project, &new.project_group, &new.account],
                &names,
            )
            .await?;
        if !Self::visible_scope(p, scope) {
            return Err(ServiceError::Forbidden(
                "a project member may create monitors of its own projects only".into(),
            ));
        }
        let dimension: GroupKey = new.dimension.as_deref().unwrap_or("service").parse()?;
        let filters: Vec<(String, String)> = new
            .filters
            .iter()
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect();
        Self::scope_filters(scope, &filters)?;
        let defaults = Settings::default();
        let z = decimal(new.z.as_ref(), "z", defaults.z)?;
        let min_amount = decimal(new.min_amount.as_ref(), "min amount", defaults.min_amount)?;
        let min_percent = decimal(
            new.min_percent.as_ref(),
            "min percent",
            defaults.min_percent,
        )?;
        if z <= Decimal::ZERO || z > Decimal::ONE_HUNDRED {
            return Err(ServiceError::Invalid(format!(
                "z {z} is out of range (above 0, at most 100)"
            )));
        }
        if min_amount < Decimal::ZERO {
            return Err(ServiceError::Invalid(format!(
                "min amount {min_amount} is out of range (0 or more)"
            )));
        }
        if min_percent < Decimal::ZERO || min_percent > Decimal::from(10_000) {
            return Err(ServiceError::Invalid(format!(
                "min percent {min_percent} is out of range (0 to 10000)"
            )));
        }
        let both_directions = match new.direction.as_deref().unwrap_or("spikes") {
            "spikes" => false,
            "both" => true,
            other => {
                return Err(ServiceError::Invalid(format!(
                    "direction {:?}: expected spikes or both",
                    cloudbill_core::cut(other, 40)
                )))
            }
        };
        let channels = Self::channel_ids(&new.channels, &names)?;
        let monitor = Monitor {
            id: MonitorId::new(),
            domain: self.domain_id(),
            name,
            scope,
            filters,
            dimension: dimension.as_str().to_owned(),
            z,
            min_amount,
            min_percent,
            both_directions,
            channels,
            created_at: self.now(),
        };
        self.anomaly_store().create_monitor(&monitor).await?;
        if self.domain().await?.billing_enabled {
            self.after_change("monitor_created", None).await;
        }
        Ok(Self::monitor_view(&monitor, &names))
    }

    /// The monitor billing starts with (domain × service, default thresholds), if the domain
    /// has no monitor of that name.
    pub(crate) async fn ensure_default_monitor(&self) -> Result<(), ServiceError> {
        let monitors = self.anomaly_store().monitors(self.domain_id()).await?;
        if monitors.iter().any(|m| m.name.as_str() == DEFAULT_MONITOR) {
            return Ok(());
        }
        let defaults = Settings::default();
        let monitor = Monitor {
            id: MonitorId::new(),
            domain: self.domain_id(),
            name: Name::parse(DEFAULT_MONITOR, "monitor name")?,
            scope: BudgetScope::Domain,
            filters: Vec::new(),
            dimension: "service".into(),
            z: defaults.z,
            min_amount: defaults.min_amount,
            min_percent: defaults.min_percent,
            both_directions: false,
            channels: Vec::new(),
            created_at: self.now(),
        };
        match self.anomaly_store().create_monitor(&monitor).await {
            Ok(()) | Err(cloudbill_store::StoreError::Conflict(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The monitors `p` may see.
    pub async fn monitors(&self, p: &Principal) -> Result<Vec<MonitorView>, ServiceError> {
        let names = self.names().await?;
        Ok(self
            .anomaly_store()
            .monitors(self.domain_id())
            .await?
            .iter()
            .filter(|m| Self::visible_scope(p, m.scope))
            .map(|m| Self::monitor_view(m, &names))
            .collect())
    }

    async fn find_monitor(&self, p: &Principal, key: &str) -> Result<Monitor, ServiceError> {
        self.anomaly_store()
            .monitors(self.domain_id())
            .await?
            .into_iter()
            .find(|m| Self::visible_scope(p, m.scope) && matches(&m.name, m.id.as_uuid(), key))
            .ok_or_else(|| ServiceError::NotFound {
                what: "anomaly monitor",
                key: key.to_owned(),
            })
    }

    /// One monitor.
    pub async fn monitor(&self, p: &Principal, key: &str) -> Result<MonitorView, ServiceError> {
        let m = self.find_monitor(p, key).await?;
        Ok(Self::monitor_view(&m, &self.names().await?))
    }

    /// Deletes a monitor and its anomalies (their events are kept).
    pub async fn delete_monitor(&self, p: &Principal, key: &str) -> Result<(), ServiceError> {
        let m = self.find_monitor(p, key).await?;
        self.anomaly_store()
            .delete_monitor(self.domain_id(), m.id)
            .await?;
        Ok(())
    }

    /// The kept anomalies `p` may see (of one monitor), newest first; `all` includes the
    /// acknowledged, ignored and closed ones, else only open ones.
    pub async fn kept_anomalies(
        &self,
        p: &Principal,
        monitor: Option<&str>,
        all: bool,
    ) -> Result<Vec<AnomalyView>, ServiceError> {
        let monitors: Vec<Monitor> = match monitor {
            Some(key) => vec![self.find_monitor(p, key).await?],
            None => self
                .anomaly_store()
                .monitors(self.domain_id())
                .await?
                .into_iter()
                .filter(|m| Self::visible_scope(p, m.scope))
                .collect(),
        };
        let mut out = Vec::new();
        for a in self
            .anomaly_store()
            .stored_anomalies(
                self.domain_id(),
                monitor.and(monitors.first().map(|m| m.id)),
            )
            .await?
        {
            let Some(m) = monitors.iter().find(|m| m.id == a.monitor) else {
                continue;
            };
            if all || a.state == AnomalyState::Open {
                out.push(AnomalyView {
                    monitor: m.name.to_string(),
                    anomaly: a,
                });
            }
        }
        out.sort_by(|x, y| (y.anomaly.start, &y.anomaly.id).cmp(&(x.anomaly.start, &x.anomaly.id)));
        Ok(out)
    }

    /// Acknowledges or ignores the anomaly `id` (every monitor's that `p` may see).
    pub async fn set_anomaly_state(
        &self,
        p: &Principal,
        id: &str,
        state: AnomalyState,
    ) -> Result<(), ServiceError> {
        if !matches!(state, AnomalyState::Acknowledged | AnomalyState::Ignored) {
            return Err(ServiceError::Invalid(
                "an anomaly is acknowledged or ignored; it closes by itself".into(),
            ));
        }
        let visible = self.kept_anomalies(p, None, true).await?;
        let mine: Vec<&AnomalyView> = visible.iter().filter(|a| a.anomaly.id == id).collect();
        if mine.is_empty() {
            return Err(ServiceError::NotFound {
                what: "anomaly",
                key: id.to_owned(),
            });
        }
        if mine.iter().all(|a| a.anomaly.state == AnomalyState::Closed) {
            return Err(ServiceError::Conflict(format!(
                "anomaly {id} is closed ({})",
                mine[0].anomaly.closed_reason.as_deref().unwrap_or("over")
            )));
        }
        // Only the monitors `p` sees: the same id kept by another project's (or the
        // domain's) monitor keeps its own state.
        let monitors: Vec<MonitorId> = mine
            .iter()
            .filter(|a| a.anomaly.state != AnomalyState::Closed)
            .map(|a| a.anomaly.monitor)
            .collect();
        self.anomaly_store()
            .set_anomaly_state(self.domain_id(), &monitors, id, state, Utc::now())
            .await?;
        Ok(())
    }

    /// Runs every monitor now (admin only; syncs, imports and the scheduler do it too).
    pub async fn run_all_monitors(&self, p: &Principal) -> Result<Detection, ServiceError> {
        p.require_admin("run anomaly monitors")?;
        let d = self.run_monitors("detect", None).await?;
        if !d.events.is_empty() && self.inner.notifier.get().is_some() {
            self.deliver_due().await?;
        }
        Ok(d)
    }

    /// Runs the monitors whose scope may hold a `touched` account (all with `None`) over their
    /// window — from the earliest changed day when the change says, else the last
    /// [`MONITOR_WINDOW_DAYS`] complete days — and writes what changed.
    pub(crate) async fn run_monitors(
        &self,
        cause: &str,
        touched: Option<(&BTreeSet<AccountId>, Option<NaiveDate>)>,
    ) -> Result<Detection, ServiceError> {
        if !self.domain().await?.billing_enabled {
            return Ok(Detection::default());
        }
        let monitors = self.anomaly_store().monitors(self.domain_id()).await?;
        if monitors.is_empty() {
            return Ok(Detection::default());
        }
        let scopes: Vec<(MonitorId, BudgetScope)> =
            monitors.iter().map(|m| (m.id, m.scope)).collect();
        let relevant = self.relevant(&scopes, touched.map(|t| t.0)).await?;
        let today = self.today();
        let window_start = today - chrono::Duration::days(MONITOR_WINDOW_DAYS);
        let since = touched.and_then(|t| t.1);
        if since.is_some_and(|s| s >= today) {
            return Ok(Detection::default()); // only today changed: not a complete day
        }
        let mut d = Detection::default();
        let chosen: Vec<&Monitor> = monitors
            .iter()
            .filter(|m| relevant.contains(&m.id))
            .collect();
        for m in chosen {
            d.monitors += 1;
            match self
                .run_monitor(
                    m,
                    cause,
                    window_start.max(since.unwrap_or(window_start)),
                    today,
                )
                .await
            {
                Ok((changes, opened, closed)) => {
                    d.opened += opened;
                    d.closed += closed;
                    d.events.extend(
                        self.anomaly_store()
                            .apply_anomalies(self.domain_id(), &changes)
                            .await?,
                    );
                }
                Err(e) => d.errors.push(format!("monitor {}: {e}", m.name)),
            }
        }
        Ok(d)
    }

    /// One monitor over `[from, to)`: the changes to write, how many opened and closed.
    async fn run_monitor(
        &self,
        m: &Monitor,
        cause: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<(Vec<AnomalyChange>, usize, usize), ServiceError> {
        let stored = self
            .anomaly_store()
            .stored_anomalies(self.domain_id(), Some(m.id))
            .await?;
        // An anomaly still running into the window is judged whole: start where it starts.
        let from = stored
            .iter()
            .filter(|a| a.state != AnomalyState::Closed && a.end.succ_opt() >= Some(from))
            .map(|a| a.start)
            .fold(from, NaiveDate::min);
        if from >= to {
            return Ok((Vec::new(), 0, 0));
        }
        let mut request = AnomalyRequest::new(DateRange::new(from, to)?);
        request.group_by = m.dimension.parse()?;
        request.filters = Self::scope_filters(m.scope, &m.filters)?;
        request.settings = settings_of(m);
        let found = self.detect(&Principal::Admin, &request).await?;
        let now = Utc::now();
        let last_complete = to.pred_opt().unwrap_or(to);
        let recovered =
            |end: NaiveDate| (last_complete - end).num_days() >= CLOSE_AFTER_NORMAL_DAYS;
        let (mut changes, mut opened, mut closed) = (Vec::new(), 0, 0);
        let found_ids: BTreeSet<&str> = found.iter().map(|f| f.id.as_str()).collect();
        for f in &found {
            let contributors = f.contributors.clone();
            match stored.iter().find(|a| a.id == f.id) {
                None => {
                    let mut a = self.kept_from(m, f, contributors, now);
                    let event = if recovered(f.end) {
                        // Found after the fact (a late import): kept, closed, not told.
                        a.state = AnomalyState::Closed;
                        a.closed_reason = Some("recovered".into());
                        a.notified_impact = None;
                        closed += 1;
                        None
                    } else {
                        opened += 1;
                        Some((self.anomaly_event(m, &a, cause, false), m.channels.clone()))
                    };
                    changes.push(AnomalyChange {
                        anomaly: a,
                        expected_version: None,
                        event,
                    });
                }
                Some(old) => {
                    if old.state == AnomalyState::Closed
                        && old.closed_reason.as_deref() != Some("restated")
                    {
                        continue; // over; a recovered anomaly stays closed
                    }
                    let mut a = old.clone();
                    (a.end, a.expected, a.actual, a.impact, a.score) =
                        (f.end, f.expected, f.actual, f.impact, f.score);
                    a.contributors = contributors;
                    if a.state == AnomalyState::Closed {
                        a.state = AnomalyState::Open; // a restatement brought it back
                        a.closed_reason = None;
                    }
                    let mut event = None;
                    let grown = old.notified_impact.is_some_and(|n| {
                        n > Decimal::ZERO
                            && n.checked_mul(Decimal::from(RENOTIFY_GROWTH))
                                .is_some_and(|grown| a.impact.abs() >= grown)
                    });
                    if recovered(a.end) {
                        a.state = AnomalyState::Closed;
                        a.closed_reason = Some("recovered".into());
                        closed += 1;
                    } else if grown && a.state != AnomalyState::Ignored {
                        // Acknowledged a smaller one: a grown one is news; ignored is never.
                        a.notified_impact = Some(a.impact.abs());
                        event = Some((self.anomaly_event(m, &a, cause, true), m.channels.clone()));
                    }
                    if a == *old {
                        continue;
                    }
                    a.updated_at = now;
                    a.version = old.version + 1;
                    changes.push(AnomalyChange {
                        anomaly: a,
                        expected_version: Some(old.version),
                        event,
                    });
                }
            }
        }
        let gone = vanished(&stored, &found_ids, from, &recovered, now);
        closed += gone.len();
        changes.extend(gone);
        Ok((changes, opened, closed))
    }

    /// A found anomaly as a monitor keeps it: open, told at its impact.
    fn kept_from(
        &self,
        m: &Monitor,
        f: &FoundAnomaly,
        contributors: Vec<cloudbill_core::Contributor>,
        now: chrono::DateTime<Utc>,
    ) -> StoredAnomaly {
        StoredAnomaly {
            id: f.id.clone(),
            domain: self.domain_id(),
            monitor: m.id,
            kind: f.kind.to_owned(),
            group: f.group.clone(),
            currency: f.currency,
            start: f.start,
            end: f.end,
            expected: f.expected,
            actual: f.actual,
            impact: f.impact,
            score: f.score,
            contributors,
            state: AnomalyState::Open,
            closed_reason: None,
            detected_at: now,
            updated_at: now,
            notified_impact: Some(f.impact.abs()),
            version: 1,
        }
    }

    fn anomaly_event(
        &self,
        m: &Monitor,
        a: &StoredAnomaly,
        cause: &str,
        grown: bool,
    ) -> cloudbill_core::Event {
        let id = cloudbill_core::EventId::new();
        let now = Utc::now();
        let (key, value) = a
            .group
            .iter()
            .next()
            .map(|(k, v)| (k.clone(), v.clone()))
            .unwrap_or_default();
        let link = format!(
            "{}/explore?start={}&end={}&granularity=daily&group_by={key}",
            self.inner
                .config
                .public_url
                .as_deref()
                .unwrap_or("")
                .trim_end_matches('/'),
            a.start - chrono::Duration::days(28),
            a.end.succ_opt().unwrap_or(a.end),
        );
        let payload =
            cloudbill_core::EventPayload::Anomaly(Box::new(cloudbill_core::AnomalyEvent {
                id,
                kind: "anomaly.detected".into(),
                occurred_at: now,
                domain: self.inner.domain.name.to_string(),
                monitor: m.name.to_string(),
                severity_grew: grown,
                anomaly: cloudbill_core::AnomalySaid {
                    id: a.id.clone(),
                    kind: a.kind.clone(),
                    group: a.group.clone(),
                    start: a.start,
                    end: a.end,
                    expected: a.expected,
                    actual: a.actual,
                    impact: a.impact,
                    score: a.score,
                    currency: a.currency.as_str().to_owned(),
                    contributors: a.contributors.clone(),
                },
                dimension: key,
                value,
                link,
            }));
        cloudbill_core::Event {
            id,
            domain: self.domain_id(),
            kind: "anomaly.detected".into(),
            subject: m.id.as_uuid(),
            subject_name: m.name.to_string(),
            occurred_at: now,
            cause: cause.to_owned(),
            payload: payload.to_json(),
        }
    }

    /// The state of on-demand anomalies that a monitor of the same split and scope keeps.
    pub(crate) async fn with_kept_states(
        &self,
        request: &AnomalyRequest,
        found: &mut [FoundAnomaly],
    ) -> Result<(), ServiceError> {
        let monitors = self.anomaly_store().monitors(self.domain_id()).await?;
        let same: Vec<MonitorId> = monitors
            .iter()
            .filter(|m| {
                m.dimension == request.group_by.as_str()
                    && Self::scope_filters(m.scope, &m.filters).ok().as_ref()
                        == Some(&request.filters)
            })
            .map(|m| m.id)
            .collect();
        if same.is_empty() {
            return Ok(());
        }
        let kept = self
            .anomaly_store()
            .stored_anomalies(self.domain_id(), None)
            .await?;
        for f in found.iter_mut() {
            if let Some(a) = kept
                .iter()
                .find(|a| same.contains(&a.monitor) && a.id == f.id)
            {
                f.state = a.state.as_str();
            }
        }
        Ok(())
    }
}

/// The closings of kept anomalies the run did not find: judged again (inside the window) and
/// no longer anomalous → `restated`; before the window and 7 normal days old → `recovered`.
fn vanished(
    stored: &[StoredAnomaly],
    found: &BTreeSet<&str>,
    from: NaiveDate,
    recovered: &dyn Fn(NaiveDate) -> bool,
    now: chrono::DateTime<Utc>,
) -> Vec<AnomalyChange> {
    let mut out = Vec::new();
    for old in stored.iter().filter(|a| a.state != AnomalyState::Closed) {
        if found.contains(old.id.as_str()) {
            continue;
        }
        let mut a = old.clone();
        if old.start >= from {
            a.closed_reason = Some("restated".into());
        } else if recovered(old.end) {
            a.closed_reason = Some("recovered".into());
        } else {
            continue;
        }
        a.state = AnomalyState::Closed;
        a.updated_at = now;
        a.version = old.version + 1;
        out.push(AnomalyChange {
            anomaly: a,
            expected_version: Some(old.version),
            event: None,
        });
    }
    out
}
