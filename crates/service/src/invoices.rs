//! Provider invoices and reconciliation: per (account, currency) of a month, the invoice's total
//! against the stored sum of BilledCost (every charge category), with the exact difference.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};
use cloudbill_aggregate::{GroupKey, Query};
use cloudbill_core::{AccountId, Currency, DateRange, Decimal, Granularity, Invoice};
use serde::Serialize;

use crate::{Billing, Principal, ServiceError};

/// An (account, currency)'s invoice and stored sum, as they are found.
type Line<'a> = (Option<&'a Invoice>, Option<Decimal>);

/// One line of a reconciliation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reconciled {
    /// The account's name.
    pub account: String,
    /// The currency.
    pub currency: Currency,
    /// The invoice's id (`null`: no invoice).
    pub invoice_id: Option<String>,
    /// The invoice's total (`null`: no invoice).
    pub invoice_total: Option<Decimal>,
    /// The stored sum of BilledCost for the month (`null`: no records).
    pub billed: Option<Decimal>,
    /// `billed − invoice_total` when both exist.
    pub difference: Option<Decimal>,
    /// `matched`, `mismatched`, `no_invoice` or `no_data`.
    pub status: &'static str,
}

/// A month's reconciliation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reconciliation {
    /// `YYYY-MM`.
    pub period: String,
    /// Per (account, currency), by account name.
    pub accounts: Vec<Reconciled>,
}

/// A month given as `YYYY-MM`: its first day.
pub fn parse_period(raw: &str) -> Result<NaiveDate, ServiceError> {
    let raw = raw.trim();
    let ok = raw.len() == 7 && raw.as_bytes()[4] == b'-';
    ok.then(|| cloudbill_core::parse_date(&format!("{raw}-01")).ok())
        .flatten()
        .ok_or_else(|| {
            ServiceError::Invalid(format!(
                "period {:?} is not a month (expected YYYY-MM, 1970-01 to 2099-12)",
                cloudbill_core::cut(raw, 20)
            ))
        })
}

fn month_range(first: NaiveDate) -> Result<DateRange, ServiceError> {
    let next = first
        .checked_add_months(chrono::Months::new(1))
        .ok_or_else(|| ServiceError::Invalid("period out of range".into()))?;
    Ok(DateRange::new(first, next)?)
}

fn bad(file: &str, line: usize, what: &str, value: &str) -> ServiceError {
    ServiceError::Invalid(format!(
        "{file}:{line}: {what} ({:?}); nothing was written",
        cloudbill_core::cut(value, 60)
    ))
}

/// An invoice as a user spells it.
#[derive(Debug, Clone, Default)]
pub struct NewInvoice {
    /// Account name or id.
    pub account: String,
    /// `YYYY-MM`.
    pub period: String,
    /// ISO 4217 code.
    pub currency: String,
    /// The provider's invoice id.
    pub invoice_id: String,
    /// The total, a decimal.
    pub total: String,
    /// Who issued it.
    pub issuer: Option<String>,
    /// Its tax, a decimal.
    pub tax: Option<String>,
}

impl Billing {
    async fn invoice_of(
        &self,
        p: &Principal,
        new: &NewInvoice,
        file: &str,
        line: usize,
    ) -> Result<Invoice, ServiceError> {
        let account = self
            .account(p, new.account.trim())
            .await
            .map_err(|_| bad(file, line, "no such account", &new.account))?;
        let period = parse_period(&new.period).map_err(|_| {
            bad(
                file,
                line,
                "the period is not a month (YYYY-MM)",
                &new.period,
            )
        })?;
        let currency = Currency::parse(&new.currency)
            .map_err(|_| bad(file, line, "not an ISO 4217 currency code", &new.currency))?;
        let id = new.invoice_id.trim();
        if id.is_empty() || id.len() > 128 || id.chars().any(char::is_control) {
            return Err(bad(
                file,
                line,
                "an invoice id has 1 to 128 printable characters",
                id,
            ));
        }
        let amount = |raw: &str, what: &'static str| {
            cloudbill_core::parse_decimal(raw.trim())
                .map_err(|_| {
                    bad(
                        file,
                        line,
                        &format!("the {what} is not a decimal number"),
                        raw,
                    )
                })
                .and_then(|v| {
                    cloudbill_core::check_entered_amount(v, what)
                        .map(|()| v)
                        .map_err(|e| {
                            ServiceError::Invalid(format!(
                                "{file}:{line}: {e}; nothing was written"
                            ))
                        })
                })
        };
        let total = amount(&new.total, "total")?;
        let tax = new
            .tax
            .as_deref()
            .filter(|t| !t.trim().is_empty())
            .map(|t| amount(t, "tax"))
            .transpose()?;
        Ok(Invoice {
            account: account.id,
            period,
            currency,
            invoice_id: id.to_owned(),
            total,
            issuer: new
                .issuer
                .as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
            tax,
        })
    }

    /// Adds one invoice (admin only).
    pub async fn add_invoice(
        &self,
        p: &Principal,
        new: &NewInvoice,
    ) -> Result<Invoice, ServiceError> {
        p.require_admin("add invoices")?;
        // An account that does not exist is not found (in a file it is a bad line).
        self.account(p, new.account.trim()).await?;
        let invoice = self.invoice_of(p, new, "invoice", 1).await?;
        self.invoice_store()
            .put_invoices(self.domain_id(), std::slice::from_ref(&invoice))
            .await?;
        Ok(invoice)
    }

    /// Imports an invoice CSV (`account,period,currency,invoice_id,total[,issuer,tax]`; admin
    /// only): every line checked first, then one transaction. Returns (read, new).
    pub async fn import_invoices(
        &self,
        p: &Principal,
        file: &str,
        text: &str,
    ) -> Result<(usize, usize), ServiceError> {
        p.require_admin("import invoices")?;
        let mut lines = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty());
        let header: Vec<String> = lines
            .next()
            .map(|(_, h)| {
                h.trim_start_matches('\u{feff}')
                    .split(',')
                    .map(|c| c.trim().to_ascii_lowercase())
                    .collect()
            })
            .ok_or_else(|| ServiceError::Invalid(format!("{file}: the file is empty")))?;
        let required = ["account", "period", "currency", "invoice_id", "total"];
        let col = |name: &str| header.iter().position(|h| h == name);
        let missing: Vec<&str> = required
            .iter()
            .copied()
            .filter(|c| col(c).is_none())
            .collect();
        if !missing.is_empty() {
            return Err(ServiceError::Invalid(format!(
                "{file}:1: missing column(s) {} (expected account,period,currency,invoice_id,total[,issuer,tax])",
                missing.join(", ")
            )));
        }
        let mut invoices = Vec::new();
        for (i, line) in lines {
            let n = i + 1;
            let cells: Vec<&str> = line.split(',').collect();
            if cells.len() != header.len() {
                return Err(bad(
                    file,
                    n,
                    &format!(
                        "expected {} cells like the header, found {}",
                        header.len(),
                        cells.len()
                    ),
                    line,
                ));
            }
            let get = |name: &str| col(name).map(|c| cells[c].to_owned());
            let new = NewInvoice {
                account: get("account").unwrap_or_default(),
                period: get("period").unwrap_or_default(),
                currency: get("currency").unwrap_or_default(),
                invoice_id: get("invoice_id").unwrap_or_default(),
                total: get("total").unwrap_or_default(),
                issuer: get("issuer"),
                tax: get("tax"),
            };
            let invoice = self.invoice_of(p, &new, file, n).await?;
            if invoices.iter().any(|x: &Invoice| {
                x.account == invoice.account
                    && x.period == invoice.period
                    && x.currency == invoice.currency
                    && *x != invoice
            }) {
                return Err(bad(
                    file,
                    n,
                    "a second, different invoice for the same account, month and currency",
                    line,
                ));
            }
            invoices.push(invoice);
        }
        let new = self
            .invoice_store()
            .put_invoices(self.domain_id(), &invoices)
            .await?;
        Ok((invoices.len(), new))
    }

    /// The invoices (of one month), admin only.
    pub async fn invoices(
        &self,
        p: &Principal,
        period: Option<&str>,
    ) -> Result<Vec<Invoice>, ServiceError> {
        p.require_admin("read invoices")?;
        let period = period.map(parse_period).transpose()?;
        Ok(self
            .invoice_store()
            .invoices(self.domain_id(), period)
            .await?)
    }

    /// Deletes the invoice of `account` (name or id) for `period` (`YYYY-MM`) in `currency`
    /// (admin only) and returns it.
    pub async fn delete_invoice(
        &self,
        p: &Principal,
        account: &str,
        period: &str,
        currency: &str,
    ) -> Result<Invoice, ServiceError> {
        p.require_admin("delete invoices")?;
        let acct = self.account(p, account.trim()).await?;
        let first = parse_period(period)?;
        let currency = Currency::parse(currency)?;
        self.invoice_store()
            .delete_invoice(self.domain_id(), acct.id, first, currency)
            .await?
            .ok_or_else(|| ServiceError::NotFound {
                what: "invoice",
                key: format!("{} {} {currency}", acct.name, &period.trim()),
            })
    }

    /// Reconciles a month (admin only): per (account, currency) with an invoice or records,
    /// the invoice total against the stored BilledCost, exactly.
    pub async fn reconcile(
        &self,
        p: &Principal,
        period: &str,
    ) -> Result<Reconciliation, ServiceError> {
        p.require_admin("reconcile invoices")?;
        let first = parse_period(period)?;
        let range = month_range(first)?;
        let mut query = Query::new(range, Granularity::Monthly);
        query.group_by = vec![GroupKey::ServiceAccount, GroupKey::Currency];
        let report = self.report(p, &query).await?;
        let accounts = self.catalog_store().accounts(self.domain_id()).await?;
        let name_of = |id: AccountId| {
            accounts
                .iter()
                .find(|a| a.id == id)
                .map_or_else(|| id.to_string(), |a| a.name.to_string())
        };
        let mut lines: BTreeMap<(String, Currency), Line<'_>> = BTreeMap::new();
        for row in &report.results {
            let account = row
                .group
                .get(GroupKey::ServiceAccount.as_str())
                .cloned()
                .unwrap_or_default();
            for t in &row.total {
                lines.entry((account.clone(), t.currency)).or_default().1 = Some(t.cost);
            }
        }
        let invoices = self
            .invoice_store()
            .invoices(self.domain_id(), Some(first))
            .await?;
        for i in &invoices {
            lines.entry((name_of(i.account), i.currency)).or_default().0 = Some(i);
        }
        let accounts = lines
            .into_iter()
            .map(|((account, currency), (invoice, billed))| {
                let difference = match (invoice, billed) {
                    (Some(i), Some(b)) => {
                        Some(cloudbill_core::exact(b.checked_sub(i.total), || {
                            format!(
                                "the difference of {account}'s {currency} invoice and its records"
                            )
                        })?)
                    }
                    _ => None,
                };
                let status = match (invoice, billed, difference) {
                    (Some(_), Some(_), Some(d)) if d.is_zero() => "matched",
                    (Some(_), Some(_), _) => "mismatched",
                    (None, _, _) => "no_invoice",
                    (Some(_), None, _) => "no_data",
                };
                Ok(Reconciled {
                    account,
                    currency,
                    invoice_id: invoice.map(|i| i.invoice_id.clone()),
                    invoice_total: invoice.map(|i| i.total),
                    billed,
                    difference,
                    status,
                })
            })
            .collect::<Result<_, ServiceError>>()?;
        Ok(Reconciliation {
            period: format!("{:04}-{:02}", first.year(), first.month()),
            accounts,
        })
    }
}
