//! `fx`, `invoice` and `reconcile`: exchange rates, provider invoices and reconciliation.

use std::io::Write;

use cloudbill_service::Billing;
use serde_json::json;

use crate::args::{Format, FxAction, InvoiceAction, PeriodAction};
use crate::render::{self, Grid};
use crate::CliError;

use super::ADMIN;

pub(super) async fn fx_cmd(
    b: &Billing,
    action: FxAction,
    format: Format,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    match action {
        FxAction::Import { file, source } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", file.display())))?;
            let r = b
                .import_rates(
                    &ADMIN,
                    &file.display().to_string(),
                    &text,
                    source.as_deref(),
                )
                .await?;
            let mut g = Grid::new(
                &["file", "layout", "rates", "new", "first", "last"],
                &["rates", "new"],
                serde_json::to_value(&r).unwrap_or_default(),
            );
            g.row(vec![
                r.file.clone(),
                r.layout.into(),
                r.rates.to_string(),
                r.new.to_string(),
                r.first.map(|d| d.to_string()).unwrap_or_default(),
                r.last.map(|d| d.to_string()).unwrap_or_default(),
            ]);
            render::print(out, format, &g)
        }
        FxAction::Set {
            date,
            base,
            quote,
            rate,
            source,
        } => {
            let r = b
                .set_rate(&ADMIN, &date, &base, &quote, &rate, source.as_deref())
                .await?;
            let mut g = Grid::new(
                &["date", "base", "quote", "rate", "source"],
                &["rate"],
                serde_json::to_value(&r).unwrap_or_default(),
            );
            g.row(vec![
                r.date.to_string(),
                r.base.to_string(),
                r.quote.to_string(),
                r.rate.to_string(),
                r.source,
            ]);
            render::print(out, format, &g)
        }
        FxAction::List { source } => {
            let rates = b.fx_rates(source.as_deref()).await?;
            let mut g = Grid::new(
                &["date", "base", "quote", "rate", "source"],
                &["rate"],
                serde_json::to_value(&rates).unwrap_or_default(),
            );
            for r in rates {
                g.row(vec![
                    r.date.to_string(),
                    r.base.to_string(),
                    r.quote.to_string(),
                    r.rate.to_string(),
                    r.source,
                ]);
            }
            render::print(out, format, &g)
        }
    }
}

pub(super) async fn invoice_cmd(
    b: &Billing,
    action: InvoiceAction,
    format: Format,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let grid = |invoices: &[cloudbill_core::Invoice],
                accounts: &[cloudbill_core::ServiceAccount]| {
        let mut g = Grid::new(
            &[
                "period", "account", "currency", "invoice", "total", "tax", "issuer",
            ],
            &["total", "tax"],
            serde_json::to_value(invoices).unwrap_or_default(),
        );
        for i in invoices {
            g.row(vec![
                i.period.format("%Y-%m").to_string(),
                accounts
                    .iter()
                    .find(|a| a.id == i.account)
                    .map_or_else(|| i.account.to_string(), |a| a.name.to_string()),
                i.currency.to_string(),
                i.invoice_id.clone(),
                i.total.to_string(),
                i.tax.map(|t| t.to_string()).unwrap_or_default(),
                i.issuer.clone().unwrap_or_default(),
            ]);
        }
        g
    };
    let accounts = b.accounts(&ADMIN).await?;
    match action {
        InvoiceAction::Import { file } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", file.display())))?;
            let (read, new) = b
                .import_invoices(&ADMIN, &file.display().to_string(), &text)
                .await?;
            let mut g = Grid::new(
                &["file", "invoices", "new"],
                &["invoices", "new"],
                json!({"file": file.display().to_string(), "invoices": read, "new": new}),
            );
            g.row(vec![
                file.display().to_string(),
                read.to_string(),
                new.to_string(),
            ]);
            render::print(out, format, &g)
        }
        InvoiceAction::Add {
            account,
            period,
            currency,
            invoice_id,
            total,
            issuer,
            tax,
        } => {
            let i = b
                .add_invoice(
                    &ADMIN,
                    &cloudbill_service::NewInvoice {
                        account,
                        period,
                        currency,
                        invoice_id,
                        total,
                        issuer,
                        tax,
                    },
                )
                .await?;
            render::print(out, format, &grid(std::slice::from_ref(&i), &accounts))
        }
        InvoiceAction::List { period } => {
            let invoices = b.invoices(&ADMIN, period.as_deref()).await?;
            render::print(out, format, &grid(&invoices, &accounts))
        }
        InvoiceAction::Delete {
            account,
            period,
            currency,
        } => {
            let i = b
                .delete_invoice(&ADMIN, &account, &period, &currency)
                .await?;
            render::print(out, format, &grid(std::slice::from_ref(&i), &accounts))
        }
    }
}

pub(super) async fn reconcile_cmd(
    b: &Billing,
    period: &str,
    format: Format,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let r = b.reconcile(&ADMIN, period).await?;
    let opt = |d: Option<cloudbill_core::Decimal>| d.map(|v| v.to_string()).unwrap_or_default();
    let mut g = Grid::new(
        &[
            "account",
            "currency",
            "invoice",
            "invoice total",
            "billed",
            "difference",
            "status",
        ],
        &["invoice total", "billed", "difference"],
        serde_json::to_value(&r).unwrap_or_default(),
    );
    for a in &r.accounts {
        g.row(vec![
            a.account.clone(),
            a.currency.to_string(),
            a.invoice_id.clone().unwrap_or_default(),
            opt(a.invoice_total),
            opt(a.billed),
            opt(a.difference),
            a.status.into(),
        ]);
    }
    render::print(out, format, &g)
}

pub(super) async fn period_cmd(
    b: &Billing,
    action: PeriodAction,
    format: Format,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let view = match action {
        PeriodAction::Close { period } => b.close_period(&ADMIN, &period).await?,
        PeriodAction::Reopen { period, reason } => {
            b.reopen_period(&ADMIN, &period, &reason).await?
        }
        PeriodAction::Show { period } => b.period(&ADMIN, &period).await?,
        PeriodAction::List => {
            let closed = b.closed_periods(&ADMIN).await?;
            let mut g = Grid::new(&["closed period"], &[], json!(closed));
            for c in closed {
                g.row(vec![c]);
            }
            return render::print(out, format, &g);
        }
    };
    let accounts = b.accounts(&ADMIN).await?;
    let mut g = Grid::new(
        &[
            "period",
            "state",
            "event",
            "day",
            "account",
            "currency",
            "stored",
            "held (not written)",
        ],
        &["stored", "held (not written)"],
        serde_json::to_value(&view).unwrap_or_default(),
    );
    for c in &view.log {
        g.row(vec![
            view.period.clone(),
            view.state.into(),
            format!(
                "{} {}{}",
                c.at.format("%Y-%m-%d %H:%M:%S"),
                c.action,
                c.reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            ),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
        ]);
    }
    for h in &view.held {
        g.row(vec![
            view.period.clone(),
            view.state.into(),
            format!("held by job {}", h.job),
            h.day.date.to_string(),
            accounts
                .iter()
                .find(|a| a.id == h.account)
                .map_or_else(|| h.account.to_string(), |a| a.name.to_string()),
            h.day.currency.to_string(),
            h.day.old_total.to_string(),
            h.day.new_total.to_string(),
        ]);
    }
    render::print(out, format, &g)
}
