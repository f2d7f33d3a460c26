//! Closed billing periods: a month an admin closes stops moving — syncs and imports keep its
//! stored records and record the restatements they held off it — until it is reopened, with a
//! reason, and synced again.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Datelike, NaiveDate, Utc};
use cloudbill_core::{
    AccountId, ChangedDay, Currency, DateRange, Decimal, HeldDay, JobId, JobState, PeriodChange,
};
use serde::Serialize;

use crate::invoices::parse_period;
use crate::{Billing, Principal, ServiceError};

/// A month's standing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PeriodView {
    /// `YYYY-MM`.
    pub period: String,
    /// `closed` or `open`.
    pub state: &'static str,
    /// Its closes and reopens, oldest first.
    pub log: Vec<PeriodChange>,
    /// The restatements held off it (by syncs and imports while it was closed).
    pub held: Vec<HeldDay>,
}

/// The days of `range` in closed months, as runs of open days and the closed days.
pub(crate) struct Split {
    /// Ranges of open days, in order.
    pub(crate) open: Vec<DateRange>,
    /// The closed days.
    pub(crate) closed: BTreeSet<NaiveDate>,
}

pub(crate) fn split(range: DateRange, closed: &BTreeSet<NaiveDate>) -> Split {
    let mut open = Vec::new();
    let mut closed_days = BTreeSet::new();
    let mut run: Option<NaiveDate> = None;
    for day in range.iter_days() {
        let month = day.with_day(1).unwrap_or(day);
        if closed.contains(&month) {
            closed_days.insert(day);
            if let Some(start) = run.take() {
                open.extend(DateRange::new(start, day).ok());
            }
        } else if run.is_none() {
            run = Some(day);
        }
    }
    if let Some(start) = run {
        open.extend(DateRange::new(start, range.end()).ok());
    }
    Split {
        open,
        closed: closed_days,
    }
}

impl Billing {
    /// The closed months (first days).
    pub(crate) async fn closed_months(&self) -> Result<BTreeSet<NaiveDate>, ServiceError> {
        Ok(self
            .period_store()
            .closed_periods(self.domain_id())
            .await?
            .into_iter()
            .collect())
    }

    /// The held days of `account` on `days`: its stored totals against `incoming` ones
    /// (per day and currency), where they differ.
    pub(crate) async fn held_days(
        &self,
        account: AccountId,
        job: JobId,
        days: &BTreeSet<NaiveDate>,
        incoming: &BTreeMap<(NaiveDate, Currency), Decimal>,
    ) -> Result<Vec<HeldDay>, ServiceError> {
        let (Some(first), Some(last)) = (days.first(), days.last()) else {
            return Ok(Vec::new());
        };
        let range = DateRange::new(*first, last.succ_opt().unwrap_or(*last))?;
        let stored = self
            .cost_store()
            .cost_records(self.domain_id(), range, Some(account))
            .await?;
        let before =
            cloudbill_store::daily_totals(stored.iter().filter(|r| days.contains(&r.date)))?;
        let incoming: BTreeMap<(NaiveDate, Currency), Decimal> = incoming
            .iter()
            .filter(|((d, _), _)| days.contains(d))
            .map(|(k, v)| (*k, *v))
            .collect();
        let now = Utc::now();
        Ok(cloudbill_store::changed_days(&before, &incoming)
            .into_iter()
            .map(|day: ChangedDay| HeldDay {
                job,
                account,
                day,
                recorded_at: now,
            })
            .collect())
    }

    /// Closes a month (admin only); refused while a sync or import of the domain runs.
    pub async fn close_period(
        &self,
        p: &Principal,
        period: &str,
    ) -> Result<PeriodView, ServiceError> {
        p.require_admin("close billing periods")?;
        let month = parse_period(period)?;
        // A job still marked running is running only if its account's lease is held: a job a
        // dead process left behind does not block the close.
        let store = self.job_store();
        let now = Utc::now();
        let mut running = Vec::new();
        for j in store
            .jobs(self.domain_id(), None, 200)
            .await?
            .into_iter()
            .filter(|j| j.state == JobState::Running)
        {
            // A holder of its own: this process's syncs hold the lease under its usual name.
            let prober = format!("{}-close-probe", self.inner.holder);
            let until = now + chrono::Duration::seconds(1);
            if store.try_lease(j.account, &prober, now, until).await? {
                store.release_lease(j.account, &prober).await?;
            } else {
                running.push(j.id.to_string());
            }
        }
        if !running.is_empty() {
            return Err(ServiceError::Conflict(format!(
                "a sync or import is running (job {}); close the period when it is done",
                running.join(", ")
            )));
        }
        self.period_store()
            .close_period(self.domain_id(), month, Utc::now())
            .await?;
        self.period(p, period).await
    }

    /// Reopens a closed month (admin only) with a reason, kept in its log; the next sync of
    /// its days applies what was held.
    pub async fn reopen_period(
        &self,
        p: &Principal,
        period: &str,
        reason: &str,
    ) -> Result<PeriodView, ServiceError> {
        p.require_admin("reopen billing periods")?;
        let month = parse_period(period)?;
        let reason = reason.trim();
        if reason.is_empty() || reason.len() > 500 || reason.chars().any(char::is_control) {
            return Err(ServiceError::Invalid(
                "a reopen needs a reason (1 to 500 printable characters)".into(),
            ));
        }
        self.period_store()
            .reopen_period(self.domain_id(), month, reason, Utc::now())
            .await?;
        self.period(p, period).await
    }

    /// The closed months.
    pub async fn closed_periods(&self, p: &Principal) -> Result<Vec<String>, ServiceError> {
        p.require_admin("read billing periods")?;
        Ok(self
            .closed_months()
            .await?
            .into_iter()
            .map(|m| m.format("%Y-%m").to_string())
            .collect())
    }

    /// One month: open or closed, its log and its held restatements.
    pub async fn period(&self, p: &Principal, period: &str) -> Result<PeriodView, ServiceError> {
        p.require_admin("read billing periods")?;
        let month = parse_period(period)?;
        let next = month
            .checked_add_months(chrono::Months::new(1))
            .ok_or_else(|| ServiceError::Invalid("period out of range".into()))?;
        let closed = self.closed_months().await?.contains(&month);
        Ok(PeriodView {
            period: month.format("%Y-%m").to_string(),
            state: if closed { "closed" } else { "open" },
            log: self
                .period_store()
                .period_log(self.domain_id(), month)
                .await?,
            held: self
                .period_store()
                .held(self.domain_id(), DateRange::new(month, next)?)
                .await?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_splits_around_closed_months() {
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        let closed: BTreeSet<NaiveDate> = [d("2025-05-01")].into();
        let s = split(
            DateRange::new(d("2025-04-20"), d("2025-06-03")).unwrap(),
            &closed,
        );
        assert_eq!(
            s.open,
            [
                DateRange::new(d("2025-04-20"), d("2025-05-01")).unwrap(),
                DateRange::new(d("2025-06-01"), d("2025-06-03")).unwrap()
            ]
        );
        assert_eq!(s.closed.len(), 31);
        let s = split(
            DateRange::new(d("2025-05-03"), d("2025-05-05")).unwrap(),
            &closed,
        );
        assert!(s.open.is_empty());
        assert_eq!(s.closed.len(), 2);
    }
}
