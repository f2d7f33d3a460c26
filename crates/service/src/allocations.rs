//! Shared-cost allocation rules: create, change and delete them (each change a new version
//! with the day it applies from, never inside a closed month), and turn the versions into the
//! engine's [`Allocation`] for an allocated report.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{Datelike, Months, NaiveDate};
use cloudbill_aggregate::{Allocation, GroupKey, Method, Query, Slice};
use cloudbill_core::{
    AllocationId, AllocationMethod, AllocationRule, AllocationSpec, Decimal, Lookup, Name,
};

use crate::{Billing, Principal, ServiceError};

/// The first day a rule may start when nothing is closed and none is given is the first of
/// the current month (as AWS Cost Categories' split charges); `--start` backdates it.
fn month_start(day: NaiveDate) -> NaiveDate {
    day.with_day(1).unwrap_or(day)
}

/// A change to a rule: what is given replaces what the rule had.
#[derive(Debug, Clone, Default)]
pub struct AllocationUpdate {
    /// A new name.
    pub name: Option<String>,
    /// A new source (replaces the whole source).
    pub source: Option<BTreeMap<String, Vec<String>>>,
    /// A new target key.
    pub target: Option<String>,
    /// New targets.
    pub targets: Option<Vec<String>>,
    /// A new method.
    pub method: Option<AllocationMethod>,
    /// New weights (fixed).
    pub weights: Option<Vec<Decimal>>,
    /// A new priority.
    pub priority: Option<u32>,
}

/// A rule as shown: its current version and every version before it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AllocationView {
    /// The version in force from its start on.
    #[serde(flatten)]
    pub current: AllocationRule,
    /// Every version, oldest first (the change log).
    pub versions: Vec<AllocationRule>,
}

impl Billing {
    /// The domain's rules that are not deleted (their latest versions), in priority order.
    pub async fn allocation_rules(
        &self,
        p: &Principal,
    ) -> Result<Vec<AllocationRule>, ServiceError> {
        p.require_admin("list allocation rules")?;
        let mut live: Vec<AllocationRule> = latest(self.allocation_versions().await?)
            .into_iter()
            .filter(|r| !r.deleted)
            .collect();
        live.sort_by(|a, b| {
            (a.spec.priority, a.name.as_str()).cmp(&(b.spec.priority, b.name.as_str()))
        });
        Ok(live)
    }

    /// One rule (by name or id) with its versions.
    pub async fn allocation_rule(
        &self,
        p: &Principal,
        key: &str,
    ) -> Result<AllocationView, ServiceError> {
        p.require_admin("read allocation rules")?;
        let all = self.allocation_versions().await?;
        let current = find(&all, key)?;
        let versions = all.iter().filter(|r| r.id == current.id).cloned().collect();
        Ok(AllocationView { current, versions })
    }

    /// Creates a rule applying from `start` (default: the first day of the current month, or
    /// the first open day after the closed months).
    pub async fn create_allocation(
        &self,
        p: &Principal,
        actor: &str,
        name: &str,
        spec: AllocationSpec,
        start: Option<NaiveDate>,
    ) -> Result<AllocationRule, ServiceError> {
        p.require_admin("create allocation rules")?;
        self.require_billing().await?;
        let name = Name::parse(name, "allocation rule name")?;
        self.check_spec(&spec).await?;
        let first_open = self.first_open_day().await?;
        let start = match start {
            Some(day) => Self::check_start(day, first_open)?,
            None => first_open.map_or_else(
                || month_start(self.today()),
                |open| open.max(month_start(self.today())),
            ),
        };
        let rule = AllocationRule {
            id: AllocationId::new(),
            domain: self.domain_id(),
            version: 1,
            name,
            start,
            spec,
            deleted: false,
            changed_by: actor.to_owned(),
            changed_at: self.now(),
        };
        self.allocation_store()
            .add_allocation_version(&rule)
            .await?;
        Ok(rule)
    }

    /// Changes a rule from `start` on (default: the rule's own start, or the first open day
    /// when that is in a closed month): days before keep the earlier versions.
    pub async fn update_allocation(
        &self,
        p: &Principal,
        actor: &str,
        key: &str,
        update: AllocationUpdate,
        start: Option<NaiveDate>,
    ) -> Result<AllocationRule, ServiceError> {
        p.require_admin("change allocation rules")?;
        self.require_billing().await?;
        let all = self.allocation_versions().await?;
        let current = find(&all, key)?;
        let mut spec = current.spec.clone();
        if let Some(source) = update.source {
            spec.source = source;
        }
        if let Some(target) = update.target {
            spec.target = target;
        }
        if let Some(targets) = update.targets {
            spec.targets = targets;
        }
        if let Some(method) = update.method {
            spec.method = method;
            if method != AllocationMethod::Fixed && update.weights.is_none() {
                spec.weights.clear();
            }
        }
        if let Some(weights) = update.weights {
            spec.weights = weights;
        }
        if let Some(priority) = update.priority {
            spec.priority = priority;
        }
        self.check_spec(&spec).await?;
        let name = match update.name {
            Some(n) => Name::parse(&n, "allocation rule name")?,
            None => current.name.clone(),
        };
        let start = self.change_start(&all, &current, start).await?;
        let changed = AllocationRule {
            name,
            spec,
            ..current
        };
        self.add_version(changed, actor, start, false).await
    }

    /// Deletes a rule from `start` on (default as [`Billing::update_allocation`]'s): closed
    /// months keep their allocation.
    pub async fn delete_allocation(
        &self,
        p: &Principal,
        actor: &str,
        key: &str,
        start: Option<NaiveDate>,
    ) -> Result<AllocationRule, ServiceError> {
        p.require_admin("delete allocation rules")?;
        self.require_billing().await?;
        let all = self.allocation_versions().await?;
        let current = find(&all, key)?;
        let start = self.change_start(&all, &current, start).await?;
        self.add_version(current, actor, start, true).await
    }

    /// Writes `rule` as its next version, from `start`, by `actor`, now.
    async fn add_version(
        &self,
        rule: AllocationRule,
        actor: &str,
        start: NaiveDate,
        deleted: bool,
    ) -> Result<AllocationRule, ServiceError> {
        let rule = AllocationRule {
            version: rule.version + 1,
            start,
            deleted,
            changed_by: actor.to_owned(),
            changed_at: self.now(),
            ..rule
        };
        self.allocation_store()
            .add_allocation_version(&rule)
            .await?;
        Ok(rule)
    }

    /// The engine's allocation for an allocated query: every rule's versions as slices of
    /// days, in priority order; `None` without rules.
    pub(crate) async fn allocation_plan(&self) -> Result<Option<Arc<Allocation>>, ServiceError> {
        let all = self.allocation_versions().await?;
        let mut by_rule: BTreeMap<AllocationId, Vec<AllocationRule>> = BTreeMap::new();
        for r in all {
            by_rule.entry(r.id).or_default().push(r);
        }
        let mut slices: Vec<(u32, String, Slice)> = Vec::new();
        for versions in by_rule.into_values() {
            // Where each version starts, and which one is in force from there: the latest
            // version whose start is on or before the day.
            let starts: BTreeSet<NaiveDate> = versions.iter().map(|v| v.start).collect();
            let starts: Vec<NaiveDate> = starts.into_iter().collect();
            for (i, from) in starts.iter().enumerate() {
                let until = starts.get(i + 1).copied();
                let Some(v) = versions
                    .iter()
                    .filter(|v| v.start <= *from)
                    .max_by_key(|v| v.version)
                else {
                    continue;
                };
                if v.deleted {
                    continue;
                }
                slices.push((
                    v.spec.priority,
                    v.name.to_string(),
                    to_slice(v, *from, until)?,
                ));
            }
        }
        if slices.is_empty() {
            return Ok(None);
        }
        slices.sort_by(|a, b| (a.0, &a.1, a.2.from).cmp(&(b.0, &b.1, b.2.from)));
        Ok(Some(Arc::new(Allocation {
            slices: slices.into_iter().map(|(_, _, s)| s).collect(),
        })))
    }

    /// `query` with the domain's rules when it asks to be allocated. A project member's
    /// allocated query groups and filters only by what the shares are allocated to (projects,
    /// project groups, currency and the rules' target keys): the source's breakdown is the
    /// domain's.
    pub(crate) async fn with_allocation(
        &self,
        p: &Principal,
        query: &Query,
    ) -> Result<Option<Query>, ServiceError> {
        if !query.allocated || query.allocation.is_some() {
            return Ok(None);
        }
        let plan = self.allocation_plan().await?;
        if let (Principal::ProjectMember { .. }, Some(plan)) = (p, &plan) {
            let shown = |k: &GroupKey| {
                matches!(
                    k,
                    GroupKey::Project | GroupKey::ProjectGroup | GroupKey::Currency
                ) || plan
                    .slices
                    .iter()
                    .any(|s| Allocation::reads_target(&s.target, k))
            };
            if let Some(k) = query.group_by.iter().find(|k| !shown(k)).or_else(|| {
                query
                    .filters
                    .keys()
                    .find(|k| !matches!(k, GroupKey::Project | GroupKey::ProjectGroup))
            }) {
                return Err(ServiceError::Forbidden(format!(
                    "an allocated report for a project member groups by project, project_group, currency or a rule's target key and filters by project or project_group only (not {k}): the shared costs' breakdown is the domain's"
                )));
            }
        }
        let mut q = query.clone();
        q.allocation = plan;
        Ok(Some(q))
    }

    async fn allocation_versions(&self) -> Result<Vec<AllocationRule>, ServiceError> {
        Ok(self
            .allocation_store()
            .allocation_versions(self.domain_id())
            .await?)
    }

    /// The day after the last closed month, if any month is closed.
    async fn first_open_day(&self) -> Result<Option<NaiveDate>, ServiceError> {
        Ok(self
            .closed_months()
            .await?
            .last()
            .and_then(|m| m.checked_add_months(Months::new(1))))
    }

    fn check_start(
        day: NaiveDate,
        first_open: Option<NaiveDate>,
    ) -> Result<NaiveDate, ServiceError> {
        cloudbill_core::check_day(day)?;
        match first_open {
            Some(open) if day < open => Err(ServiceError::Invalid(format!(
                "{day} is in a closed month (every month before {open} is closed): a rule change starts on {open} or later, so a closed month's allocation never moves"
            ))),
            _ => Ok(day),
        }
    }

    /// The start of a change: `start` when given (not in a closed month), else the rule's
    /// first start, moved past the closed months.
    async fn change_start(
        &self,
        all: &[AllocationRule],
        current: &AllocationRule,
        start: Option<NaiveDate>,
    ) -> Result<NaiveDate, ServiceError> {
        let first_open = self.first_open_day().await?;
        if let Some(day) = start {
            return Self::check_start(day, first_open);
        }
        let first = all
            .iter()
            .filter(|r| r.id == current.id)
            .map(|r| r.start)
            .min()
            .unwrap_or(current.start);
        Ok(first_open.map_or(first, |open| first.max(open)))
    }

    /// The spec's shape, its keys as report keys, and its names as the catalog's.
    async fn check_spec(&self, spec: &AllocationSpec) -> Result<(), ServiceError> {
        spec.check()?;
        let target: GroupKey = spec.target.parse()?;
        Allocation::target_key(&target)?;
        let catalog = self.catalog().await?;
        let exists = |key: &GroupKey, value: &str| -> bool {
            let lookup = Lookup::parse(value);
            match key {
                GroupKey::Project => catalog
                    .projects
                    .iter()
                    .any(|p| lookup.matches(&p.name, p.id.as_uuid())),
                GroupKey::ProjectGroup => catalog
                    .groups
                    .iter()
                    .any(|g| lookup.matches(&g.name, g.id.as_uuid())),
                GroupKey::ServiceAccount => catalog
                    .accounts
                    .iter()
                    .any(|a| lookup.matches(&a.name, a.id.as_uuid())),
                _ => true,
            }
        };
        for t in &spec.targets {
            if !exists(&target, t) {
                return Err(ServiceError::NotFound {
                    what: match target {
                        GroupKey::Project => "project",
                        GroupKey::ProjectGroup => "project group",
                        _ => "service account",
                    },
                    key: t.clone(),
                });
            }
        }
        for (k, values) in &spec.source {
            let key: GroupKey = k.parse()?;
            for v in values {
                if !exists(&key, v) {
                    return Err(ServiceError::Invalid(format!(
                        "unknown {key} {v:?} in the rule's source"
                    )));
                }
            }
            if key == target {
                if let Some(t) = values.iter().find(|v| spec.targets.contains(v)) {
                    return Err(ServiceError::Invalid(format!(
                        "{t:?} is both the source ({key}={t}) and a target: a share would go back to where it came from"
                    )));
                }
            }
        }
        Ok(())
    }
}

/// The latest version of each rule.
fn latest(all: Vec<AllocationRule>) -> Vec<AllocationRule> {
    let mut by: BTreeMap<AllocationId, AllocationRule> = BTreeMap::new();
    for r in all {
        match by.get(&r.id) {
            Some(x) if x.version >= r.version => {}
            _ => {
                by.insert(r.id, r);
            }
        }
    }
    by.into_values().collect()
}

/// The rule (not deleted) named `key` (or with that id), at its latest version.
fn find(all: &[AllocationRule], key: &str) -> Result<AllocationRule, ServiceError> {
    let lookup = Lookup::parse(key);
    latest(all.to_vec())
        .into_iter()
        .find(|r| !r.deleted && lookup.matches(r.name.as_str(), r.id.as_uuid()))
        .ok_or_else(|| ServiceError::NotFound {
            what: "allocation rule",
            key: key.to_owned(),
        })
}

fn to_slice(
    v: &AllocationRule,
    from: NaiveDate,
    until: Option<NaiveDate>,
) -> Result<Slice, ServiceError> {
    let mut source = BTreeMap::new();
    for (k, values) in &v.spec.source {
        source.insert(k.parse::<GroupKey>()?, values.clone());
    }
    Ok(Slice {
        rule: v.name.to_string(),
        from,
        until,
        source,
        target: v.spec.target.parse()?,
        targets: v.spec.targets.clone(),
        method: match v.spec.method {
            AllocationMethod::Even => Method::Even,
            AllocationMethod::Proportional => Method::Proportional,
            AllocationMethod::Fixed => Method::Fixed(v.spec.basis_points()),
        },
    })
}
