//! Provider invoices.

use async_trait::async_trait;
use cloudbill_core::{AccountId, Currency, DomainId, Invoice, NaiveDate};

use super::dialect::{Arg, Col, Dialect, Run, SqlRow};
use super::rows::not_found;
use super::{corrupt, SqlStore};
use crate::StoreError;

fn invoice_from(row: &impl SqlRow) -> Result<Invoice, StoreError> {
    let currency: String = row.col("currency")?;
    let total: String = row.col("total")?;
    let tax: Option<String> = row.col("tax")?;
    Ok(Invoice {
        account: AccountId::from_uuid(row.col("account_id")?),
        period: row.col("period")?,
        currency: Currency::parse(&currency).map_err(|e| corrupt("invoice currency", e))?,
        invoice_id: row.col("invoice_id")?,
        total: total.parse().map_err(|e| corrupt("invoice total", e))?,
        issuer: row.col("issuer")?,
        tax: tax
            .map(|t| t.parse().map_err(|e| corrupt("invoice tax", e)))
            .transpose()?,
    })
}

#[async_trait]
impl<D: Dialect> crate::InvoiceStore for SqlStore<D> {
    async fn put_invoices(
        &self,
        domain: DomainId,
        invoices: &[Invoice],
    ) -> Result<usize, StoreError> {
        let mut tx = D::write_tx(&self.pool).await?;
        let mut new = 0;
        for i in invoices {
            let account = sqlx::query::<D>(
                "SELECT 1 AS one FROM service_accounts WHERE id = $1 AND domain_id = $2",
            )
            .arg(i.account.as_uuid())
            .arg(domain.as_uuid())
            .optional(&mut *tx)
            .await?;
            if account.is_none() {
                return Err(not_found("service account", i.account));
            }
            let existing = sqlx::query::<D>(
                "SELECT account_id, period, currency, invoice_id, total, issuer, tax FROM invoices \
                 WHERE domain_id = $1 AND account_id = $2 AND period = $3 AND currency = $4",
            )
            .arg(domain.as_uuid())
            .arg(i.account.as_uuid())
            .arg(i.period)
            .arg(i.currency.as_str())
            .optional(&mut *tx)
            .await?;
            if let Some(row) = existing {
                let stored = invoice_from(&row)?;
                if stored != *i {
                    return Err(StoreError::Conflict(format!(
                        "{} {} of account {} is stored as invoice {} of {}: nothing was written",
                        i.period.format("%Y-%m"),
                        i.currency,
                        i.account,
                        stored.invoice_id,
                        stored.total
                    )));
                }
                continue;
            }
            sqlx::query::<D>(
                "INSERT INTO invoices (domain_id, account_id, period, currency, invoice_id, total, issuer, tax) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .arg(domain.as_uuid())
            .arg(i.account.as_uuid())
            .arg(i.period)
            .arg(i.currency.as_str())
            .arg(i.invoice_id.as_str())
            .arg(i.total.to_string())
            .arg(i.issuer.clone())
            .arg(i.tax.map(|t| t.to_string()))
            .run(&mut *tx)
            .await?;
            new += 1;
        }
        tx.commit().await?;
        Ok(new)
    }

    async fn invoices(
        &self,
        domain: DomainId,
        period: Option<NaiveDate>,
    ) -> Result<Vec<Invoice>, StoreError> {
        let rows = sqlx::query::<D>(
            "SELECT account_id, period, currency, invoice_id, total, issuer, tax FROM invoices \
             WHERE domain_id = $1 AND ($2 IS NULL OR period = $2) ORDER BY period, account_id, currency",
        )
        .arg(domain.as_uuid())
        .arg(period)
        .all(&self.pool)
        .await?;
        rows.iter().map(invoice_from).collect()
    }

    async fn delete_invoice(
        &self,
        domain: DomainId,
        account: AccountId,
        period: NaiveDate,
        currency: Currency,
    ) -> Result<Option<Invoice>, StoreError> {
        let mut tx = D::write_tx(&self.pool).await?;
        let row = sqlx::query::<D>(
            "SELECT account_id, period, currency, invoice_id, total, issuer, tax FROM invoices \
             WHERE domain_id = $1 AND account_id = $2 AND period = $3 AND currency = $4",
        )
        .arg(domain.as_uuid())
        .arg(account.as_uuid())
        .arg(period)
        .arg(currency.as_str())
        .optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let invoice = invoice_from(&row)?;
        sqlx::query::<D>(
            "DELETE FROM invoices WHERE domain_id = $1 AND account_id = $2 AND period = $3 AND currency = $4",
        )
        .arg(domain.as_uuid())
        .arg(account.as_uuid())
        .arg(period)
        .arg(currency.as_str())
        .run(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(invoice))
    }
}
