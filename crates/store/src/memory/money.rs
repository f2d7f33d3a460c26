//! Exchange rates (`FxStore`), invoices (`InvoiceStore`) and closed periods (`PeriodStore`).

#[allow(clippy::wildcard_imports)]
use super::*;

#[async_trait]
impl crate::FxStore for MemoryStore {
    async fn put_rates(
        &self,
        domain: DomainId,
        rates: &[cloudbill_core::FxRate],
    ) -> Result<usize, StoreError> {
        let mut state = self.lock();
        super::anomalies::put_all(
            &mut state.rates,
            domain,
            rates,
            |_| Ok(()),
            |x, r| {
                x.date == r.date && x.base == r.base && x.quote == r.quote && x.source == r.source
            },
            |x, r| {
                (x.rate != r.rate).then(|| {
                    format!(
                        "{} {}/{} ({}) is stored as {}, not {}: nothing was written",
                        r.date, r.base, r.quote, r.source, x.rate, r.rate
                    )
                })
            },
        )
    }

    async fn rates(
        &self,
        domain: DomainId,
        source: Option<&str>,
    ) -> Result<Vec<cloudbill_core::FxRate>, StoreError> {
        let state = self.lock();
        let mut out: Vec<cloudbill_core::FxRate> = state
            .rates
            .iter()
            .filter(|(d, r)| *d == domain && source.is_none_or(|s| r.source == s))
            .map(|(_, r)| r.clone())
            .collect();
        out.sort_by(|a, b| {
            (a.base.as_str(), a.quote.as_str(), &a.source, a.date).cmp(&(
                b.base.as_str(),
                b.quote.as_str(),
                &b.source,
                b.date,
            ))
        });
        Ok(out)
    }
}

#[async_trait]
impl crate::InvoiceStore for MemoryStore {
    async fn put_invoices(
        &self,
        domain: DomainId,
        invoices: &[cloudbill_core::Invoice],
    ) -> Result<usize, StoreError> {
        let mut state = self.lock();
        let state = &mut *state;
        let accounts = &state.accounts;
        super::anomalies::put_all(
            &mut state.invoices,
            domain,
            invoices,
            |i| {
                if accounts
                    .iter()
                    .any(|a| a.domain == domain && a.id == i.account)
                {
                    Ok(())
                } else {
                    Err(not_found("service account", i.account))
                }
            },
            |x, i| x.account == i.account && x.period == i.period && x.currency == i.currency,
            |x, i| {
                (x != i).then(|| {
                    format!(
                        "{} {} of account {} is stored as invoice {} of {}: nothing was written",
                        i.period.format("%Y-%m"),
                        i.currency,
                        i.account,
                        x.invoice_id,
                        x.total
                    )
                })
            },
        )
    }

    async fn invoices(
        &self,
        domain: DomainId,
        period: Option<NaiveDate>,
    ) -> Result<Vec<cloudbill_core::Invoice>, StoreError> {
        let state = self.lock();
        let mut out: Vec<cloudbill_core::Invoice> = state
            .invoices
            .iter()
            .filter(|(d, i)| *d == domain && period.is_none_or(|p| i.period == p))
            .map(|(_, i)| i.clone())
            .collect();
        out.sort_by(|a, b| {
            (a.period, a.account, a.currency.as_str()).cmp(&(
                b.period,
                b.account,
                b.currency.as_str(),
            ))
        });
        Ok(out)
    }

    async fn delete_invoice(
        &self,
        domain: DomainId,
        account: AccountId,
        period: NaiveDate,
        currency: cloudbill_core::Currency,
    ) -> Result<Option<cloudbill_core::Invoice>, StoreError> {
        let mut state = self.lock();
        let at = state.invoices.iter().position(|(d, i)| {
            *d == domain && i.account == account && i.period == period && i.currency == currency
        });
        Ok(at.map(|at| state.invoices.remove(at).1))
    }
}

#[async_trait]
impl crate::PeriodStore for MemoryStore {
    async fn close_period(
        &self,
        domain: DomainId,
        month: NaiveDate,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut state = self.lock();
        if state.closed.contains(&(domain, month)) {
            return Err(StoreError::Conflict(format!(
                "{} is closed already",
                month.format("%Y-%m")
            )));
        }
        state.closed.push((domain, month));
        state.period_log.push((
            domain,
            cloudbill_core::PeriodChange {
                month,
                action: "close".into(),
                reason: None,
                at,
            },
        ));
        Ok(())
    }

    async fn reopen_period(
        &self,
        domain: DomainId,
        month: NaiveDate,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut state = self.lock();
        let before = state.closed.len();
        state.closed.retain(|c| *c != (domain, month));
        if state.closed.len() == before {
            return Err(not_found("closed period", month.format("%Y-%m")));
        }
        state.period_log.push((
            domain,
            cloudbill_core::PeriodChange {
                month,
                action: "reopen".into(),
                reason: Some(reason.to_owned()),
                at,
            },
        ));
        Ok(())
    }

    async fn closed_periods(&self, domain: DomainId) -> Result<Vec<NaiveDate>, StoreError> {
        let state = self.lock();
        let mut out: Vec<NaiveDate> = state
            .closed
            .iter()
            .filter(|(d, _)| *d == domain)
            .map(|(_, m)| *m)
            .collect();
        out.sort();
        Ok(out)
    }

    async fn period_log(
        &self,
        domain: DomainId,
        month: NaiveDate,
    ) -> Result<Vec<cloudbill_core::PeriodChange>, StoreError> {
        let state = self.lock();
        Ok(state
            .period_log
            .iter()
            .filter(|(d, c)| *d == domain && c.month == month)
            .map(|(_, c)| c.clone())
            .collect())
    }

    async fn put_held(
        &self,
        domain: DomainId,
        held: &[cloudbill_core::HeldDay],
    ) -> Result<(), StoreError> {
        let mut state = self.lock();
        state.held.extend(held.iter().map(|h| (domain, h.clone())));
        Ok(())
    }

    async fn held(
        &self,
        domain: DomainId,
        range: DateRange,
    ) -> Result<Vec<cloudbill_core::HeldDay>, StoreError> {
        let state = self.lock();
        let mut out: Vec<cloudbill_core::HeldDay> = state
            .held
            .iter()
            .filter(|(d, h)| *d == domain && range.contains(h.day.date))
            .map(|(_, h)| h.clone())
            .collect();
        out.sort_by_key(|h| (h.day.date, h.recorded_at));
        Ok(out)
    }
}
