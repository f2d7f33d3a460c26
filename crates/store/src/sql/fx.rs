//! Exchange rates.

use async_trait::async_trait;
use cloudbill_core::{Currency, DomainId, FxRate};

use super::dialect::{Arg, Col, Dialect, Run, SqlRow};
use super::{corrupt, SqlStore};
use crate::StoreError;

fn rate_from(row: &impl SqlRow) -> Result<FxRate, StoreError> {
    let currency = |col: &str| -> Result<Currency, StoreError> {
        let raw: String = row.col(col)?;
        Currency::parse(&raw).map_err(|e| corrupt("rate currency", e))
    };
    let rate: String = row.col("rate")?;
    Ok(FxRate {
        date: row.col("day")?,
        base: currency("base")?,
        quote: currency("quote")?,
        rate: rate.parse().map_err(|e| corrupt("rate", e))?,
        source: row.col("source")?,
    })
}

#[async_trait]
impl<D: Dialect> crate::FxStore for SqlStore<D> {
    async fn put_rates(&self, domain: DomainId, rates: &[FxRate]) -> Result<usize, StoreError> {
        let mut tx = D::write_tx(&self.pool).await?;
        let mut new = 0;
        for r in rates {
            let existing = sqlx::query::<D>(
                "SELECT rate FROM fx_rates WHERE domain_id = $1 AND base = $2 AND quote = $3 \
                 AND source = $4 AND day = $5",
            )
            .arg(domain.as_uuid())
            .arg(r.base.as_str())
            .arg(r.quote.as_str())
            .arg(r.source.as_str())
            .arg(r.date)
            .optional(&mut *tx)
            .await?;
            if let Some(row) = existing {
                let stored: String = row.col("rate")?;
                let stored: cloudbill_core::Decimal =
                    stored.parse().map_err(|e| corrupt("rate", e))?;
                if stored != r.rate {
                    return Err(StoreError::Conflict(format!(
                        "{} {}/{} ({}) is stored as {stored}, not {}: nothing was written",
                        r.date, r.base, r.quote, r.source, r.rate
                    )));
                }
                continue;
            }
            sqlx::query::<D>(
                "INSERT INTO fx_rates (domain_id, day, base, quote, source, rate) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .arg(domain.as_uuid())
            .arg(r.date)
            .arg(r.base.as_str())
            .arg(r.quote.as_str())
            .arg(r.source.as_str())
            .arg(r.rate.to_string())
            .run(&mut *tx)
            .await?;
            new += 1;
        }
        tx.commit().await?;
        Ok(new)
    }

    async fn rates(
        &self,
        domain: DomainId,
        source: Option<&str>,
    ) -> Result<Vec<FxRate>, StoreError> {
        let rows = sqlx::query::<D>(
            "SELECT day, base, quote, source, rate FROM fx_rates WHERE domain_id = $1 \
             AND ($2 IS NULL OR source = $2) ORDER BY base, quote, source, day",
        )
        .arg(domain.as_uuid())
        .arg(source)
        .all(&self.pool)
        .await?;
        rows.iter().map(rate_from).collect()
    }
}
