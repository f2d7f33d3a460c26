//! Feeding partitions into an engine one at a time, column by column.

use cloudbill_columnar::{Column, Partition};
use cloudbill_core::{AccountId, CostMetric, Decimal};
use ethnum::I256;

use super::builder::Builder;
use super::catalog::Catalog;
use super::columns::{BySlot, Slot};
use super::{day_number, Engine};
use crate::{GroupKey, QueryError};

/// Builds an [`Engine`] from partitions fed one at a time ([`Engine::loader`]).
pub struct EngineLoader {
    pub(super) b: Builder,
    pub(super) catalog: Catalog,
    pub(super) months: Vec<(i32, usize)>,
    /// Each account's run of rows per month (see `Engine::runs`).
    pub(super) runs: Vec<super::Run>,
    /// Engine column slots (3–7) left out ([`EngineLoader::only`]).
    pub(super) skipped: BySlot<bool>,
    /// Whether the tag columns are left out ([`EngineLoader::only`]).
    pub(super) tags_skipped: bool,
    /// Whether the attribute columns are left out ([`EngineLoader::only`]).
    pub(super) attrs_skipped: bool,
    /// The cost loaded into the cost column ([`EngineLoader::metric`]).
    pub(super) metric: CostMetric,
}

impl std::fmt::Debug for EngineLoader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineLoader")
            .field("rows", &self.b.day.len())
            .field("months", &self.months.len())
            .finish_non_exhaustive()
    }
}

impl EngineLoader {
    /// Loads only the dimensions `keys` need (plus days, costs, currencies, accounts, projects,
    /// providers and categories, which are cheap): an engine built for one known query, as
    /// the CLI's, skips reading the other text columns. The engine refuses a query that needs
    /// a dimension it left out.
    #[must_use]
    pub fn only(mut self, keys: &[GroupKey]) -> Self {
        for slot in Slot::OPTIONAL {
            self.skipped[slot] = true;
        }
        self.tags_skipped = !keys.iter().any(|k| matches!(k, GroupKey::Tag(_)));
        self.attrs_skipped = !keys.iter().any(|k| matches!(k, GroupKey::Attribute(_)));
        for key in keys {
            if let Some(slot) = Slot::optional(key) {
                self.skipped[slot] = false;
            }
        }
        self
    }

    /// Loads `metric` as the engine's cost: billed (the default) or effective (FOCUS
    /// EffectiveCost; a record without one counts its billed cost). The engine answers only
    /// queries of that metric.
    #[must_use]
    pub fn metric(mut self, metric: CostMetric) -> Self {
        self.metric = metric;
        self
    }

    /// Adds one partition of `account`. Partitions must come in month order (the store's);
    /// several of one month and account (segments) may follow each other.
    pub fn add(&mut self, account: AccountId, blob: &[u8]) -> Result<(), QueryError> {
        let corrupt = |e: cloudbill_core::ValidationError| QueryError::Corrupt(e.to_string());
        let p = Partition::decode(blob).map_err(corrupt)?;
        let costs = p.costs().map_err(corrupt)?;
        let month = day_number(p.month);
        let new_month = self.enter_month(month)?;
        let b = &mut self.b;
        b.rescale(costs.max_scale())?;
        let account = b.account(account);
        let project_of_day = b.projects_of_month(account, p.month);
        let days = p.days();
        let before = b.day.len();
        Self::note_run(
            &mut self.runs,
            account,
            before..before + p.rows,
            days,
            &project_of_day,
            new_month,
            costs.max_scale(),
        );
        b.day.extend(days.iter().map(|d| month + i32::from(*d) - 1));
        b.cols[Slot::Account].extend_repeat(account, p.rows);
        b.cols[Slot::Project].extend_indexed(days, &project_of_day);
        // Partition text column → engine column slot.
        for (field, slot) in [
            (Column::Provider, Slot::Provider),
            (Column::ChargeCategory, Slot::Category),
            (Column::CloudAccount, Slot::CloudAccount),
            (Column::Region, Slot::Region),
            (Column::Service, Slot::Service),
            (Column::UsageType, Slot::UsageType),
            (Column::InstanceType, Slot::InstanceType),
            (Column::Currency, Slot::Currency),
        ] {
            if self.skipped[slot] {
                continue;
            }
            let column = p.text(field).map_err(corrupt)?;
            let lookup: Vec<u32> = column
                .values
                .iter()
                .map(|v| b.dict_for(slot).id(v))
                .collect();
            b.cols[slot].extend_mapped(&column, &lookup, p.rows);
        }
        if !self.tags_skipped {
            let sets = p.text(Column::Tags).map_err(corrupt)?;
            b.tags.extend(&sets, p.rows, before)?;
        }
        if !self.attrs_skipped {
            for key in &GroupKey::ALL {
                if let GroupKey::Attribute(a) = key {
                    let column = p.attribute(*a).map_err(corrupt)?;
                    b.attrs
                        .extend_values(a.snake_name(), &column, p.rows, before);
                }
            }
            b.attrs.pad(before + p.rows);
        }
        if self.metric == CostMetric::Effective {
            // Row by row: each record's effective cost, else its billed cost.
            let effective = p.effective_costs().map_err(corrupt)?;
            let mut amounts = Vec::with_capacity(p.rows);
            for (row, e) in effective.into_iter().enumerate() {
                amounts.push(match e {
                    Some(v) => v,
                    None => costs.amount(row).map_err(corrupt)?,
                });
            }
            b.rescale(amounts.iter().map(Decimal::scale).max().unwrap_or(0))?;
            for amount in amounts {
                let v = super::builder::scaled(amount, b.scale);
                match i128::try_from(v) {
                    Ok(v) => b.push_cost(v),
                    Err(_) => b.push_wide(v),
                }
            }
            return Ok(());
        }
        if costs.is_wide() {
            // Costs that share no i128 scale (see cloudbill-columnar): row by row, in 256 bits.
            for row in 0..p.rows {
                let amount = costs.amount(row).map_err(corrupt)?;
                b.push_wide(super::builder::scaled(amount, b.scale));
            }
            return Ok(());
        }
        let factor = 10i128
            .checked_pow(b.scale - costs.scale)
            .ok_or(QueryError::Overflow)?;
        costs.for_each(|m| match m.checked_mul(factor) {
            Some(v) => b.push_cost(v),
            None => b.push_wide(I256::from(m) * I256::from(factor)),
        });
        Ok(())
    }

    /// Starts `month` unless it is the current one (then `false`); months must not go back.
    pub(super) fn enter_month(&mut self, month: i32) -> Result<bool, QueryError> {
        match self.months.last() {
            Some((last, _)) if *last > month => Err(QueryError::Corrupt(
                "partitions arrived out of month order".into(),
            )),
            Some((last, _)) if *last == month => Ok(false),
            _ => {
                self.months.push((month, self.b.day.len()));
                Ok(true)
            }
        }
    }

    /// Records rows `range` of `account` (days `days`, projects per day `project_of_day`, costs
    /// of at most `scale` decimals) in the run index: a next segment of the same month extends
    /// the run.
    pub(super) fn note_run(
        runs: &mut Vec<super::Run>,
        account: u32,
        range: std::ops::Range<usize>,
        days: &[u8],
        project_of_day: &[u32; 32],
        new_month: bool,
        scale: u32,
    ) {
        let mut projects = days.iter().map(|d| project_of_day[usize::from(*d).min(31)]);
        let first = projects.next().unwrap_or(super::Run::MIXED);
        let project = if projects.all(|x| x == first) {
            first
        } else {
            super::Run::MIXED
        };
        if range.is_empty() {
            return;
        }
        let scale = u8::try_from(scale).unwrap_or(u8::MAX);
        match runs.last_mut() {
            Some(run) if run.account == account && run.hi == range.start && !new_month => {
                run.hi = range.end;
                run.scale = run.scale.max(scale);
                if run.project != project {
                    run.project = super::Run::MIXED;
                }
            }
            _ => runs.push(super::Run {
                lo: range.start,
                hi: range.end,
                account,
                project,
                scale,
            }),
        }
    }

    /// The engine.
    pub fn finish(self) -> Engine {
        let mut engine = self.b.finish(self.catalog, Some(self.months));
        engine.runs = self.runs;
        engine.skipped = self.skipped;
        engine.tags_skipped = self.tags_skipped;
        engine.attrs_skipped = self.attrs_skipped;
        engine.metric = self.metric;
        engine
    }
}
