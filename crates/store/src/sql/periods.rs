//! Closed billing months and held restatements.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cloudbill_core::{
    AccountId, ChangedDay, Currency, DateRange, DomainId, HeldDay, JobId, NaiveDate, PeriodChange,
};

use super::dialect::{Arg, Col, Dialect, Run, SqlRow};
use super::rows::not_found;
use super::{corrupt, SqlStore};
use crate::StoreError;

fn held_from(row: &impl SqlRow) -> Result<HeldDay, StoreError> {
    let currency: String = row.col("currency")?;
    let old: String = row.col("old_total")?;
    let new: String = row.col("new_total")?;
    Ok(HeldDay {
        job: JobId::from_uuid(row.col("job_id")?),
        account: AccountId::from_uuid(row.col("account_id")?),
        day: ChangedDay {
            date: row.col("day")?,
            currency: Currency::parse(&currency).map_err(|e| corrupt("held currency", e))?,
            old_total: old.parse().map_err(|e| corrupt("held total", e))?,
            new_total: new.parse().map_err(|e| corrupt("held total", e))?,
        },
        recorded_at: row.col("recorded_at")?,
    })
}

#[async_trait]
impl<D: Dialect> crate::PeriodStore for SqlStore<D> {
    async fn close_period(
        &self,
        domain: DomainId,
        month: NaiveDate,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = D::write_tx(&self.pool).await?;
        let done = sqlx::query::<D>(
            "INSERT INTO closed_periods (domain_id, month, closed_at) VALUES ($1, $2, $3) \
             ON CONFLICT (domain_id, month) DO NOTHING",
        )
        .arg(domain.as_uuid())
        .arg(month)
        .arg(at)
        .run(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!(
                "{} is closed already",
                month.format("%Y-%m")
            )));
        }
        sqlx::query::<D>("INSERT INTO period_log (domain_id, month, action, reason, at) VALUES ($1, $2, 'close', NULL, $3)")
            .arg(domain.as_uuid())
            .arg(month)
            .arg(at)
            .run(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn reopen_period(
        &self,
        domain: DomainId,
        month: NaiveDate,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = D::write_tx(&self.pool).await?;
        let done =
            sqlx::query::<D>("DELETE FROM closed_periods WHERE domain_id = $1 AND month = $2")
                .arg(domain.as_uuid())
                .arg(month)
                .run(&mut *tx)
                .await?;
        if done.rows_affected() == 0 {
            return Err(not_found("closed period", month.format("%Y-%m")));
        }
        sqlx::query::<D>("INSERT INTO period_log (domain_id, month, action, reason, at) VALUES ($1, $2, 'reopen', $3, $4)")
            .arg(domain.as_uuid())
            .arg(month)
            .arg(reason)
            .arg(at)
            .run(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn closed_periods(&self, domain: DomainId) -> Result<Vec<NaiveDate>, StoreError> {
        let rows = sqlx::query::<D>(
            "SELECT month FROM closed_periods WHERE domain_id = $1 ORDER BY month",
        )
        .arg(domain.as_uuid())
        .all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok(r.col("month")?)).collect()
    }

    async fn period_log(
        &self,
        domain: DomainId,
        month: NaiveDate,
    ) -> Result<Vec<PeriodChange>, StoreError> {
        let rows = sqlx::query::<D>(
            "SELECT month, action, reason, at FROM period_log WHERE domain_id = $1 AND month = $2 ORDER BY at",
        )
        .arg(domain.as_uuid())
        .arg(month)
        .all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(PeriodChange {
                    month: r.col("month")?,
                    action: r.col("action")?,
                    reason: r.col("reason")?,
                    at: r.col("at")?,
                })
            })
            .collect()
    }

    async fn put_held(&self, domain: DomainId, held: &[HeldDay]) -> Result<(), StoreError> {
        let mut tx = D::write_tx(&self.pool).await?;
        for h in held {
            sqlx::query::<D>(
                "INSERT INTO held_days (domain_id, job_id, account_id, day, currency, old_total, new_total, recorded_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .arg(domain.as_uuid())
            .arg(h.job.as_uuid())
            .arg(h.account.as_uuid())
            .arg(h.day.date)
            .arg(h.day.currency.as_str())
            .arg(h.day.old_total.to_string())
            .arg(h.day.new_total.to_string())
            .arg(h.recorded_at)
            .run(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn held(&self, domain: DomainId, range: DateRange) -> Result<Vec<HeldDay>, StoreError> {
        let rows = sqlx::query::<D>(
            "SELECT job_id, account_id, day, currency, old_total, new_total, recorded_at FROM held_days \
             WHERE domain_id = $1 AND day >= $2 AND day < $3 ORDER BY day, recorded_at",
        )
        .arg(domain.as_uuid())
        .arg(range.start())
        .arg(range.end())
        .all(&self.pool)
        .await?;
        rows.iter().map(held_from).collect()
    }
}
