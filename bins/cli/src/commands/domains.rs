//! `domain`: the domains (tenants) of the database, as the operator (the system admin).

use std::io::Write;

use cloudbill_service::{Billing, SystemAdmin, Tenants};
use serde_json::json;

use crate::args::{DomainAction, Format};
use crate::render::{self, Grid};
use crate::CliError;

/// The tenants of `b`'s store (the CLI keeps no warm engine: no memory budget to speak of).
pub(super) fn tenants(b: &Billing) -> Tenants {
    Tenants::new(b.clone(), 0)
}

fn domain_json(d: &cloudbill_core::Domain) -> serde_json::Value {
    json!({
        "id": d.id.to_string(), "name": d.name.as_str(), "billing_enabled": d.billing_enabled,
        "created_at": d.created_at.to_rfc3339(),
        "disabled_at": d.disabled_at.map(|t| t.to_rfc3339()),
    })
}

pub(super) async fn domain_cmd(
    b: &Billing,
    action: DomainAction,
    format: Format,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let io = |e: std::io::Error| CliError::Failure(e.to_string());
    let operator = SystemAdmin::operator();
    let tenants = tenants(b);
    let one = |d: &cloudbill_core::Domain| {
        let mut g = Grid::new(&["name", "id", "disabled"], &[], domain_json(d));
        g.row(vec![
            d.name.to_string(),
            d.id.to_string(),
            d.disabled_at
                .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                .unwrap_or_default(),
        ]);
        g
    };
    match action {
        DomainAction::List => {
            let views = tenants.domains(&operator).await?;
            let json = views
                .iter()
                .map(|v| {
                    let mut j = domain_json(&v.domain);
                    j["accounts"] = json!(v.accounts);
                    j
                })
                .collect();
            let mut g = Grid::new(
                &["name", "id", "billing", "accounts", "created", "disabled"],
                &["accounts"],
                serde_json::Value::Array(json),
            );
            for v in &views {
                let d = &v.domain;
                g.row(vec![
                    d.name.to_string(),
                    d.id.to_string(),
                    if d.billing_enabled { "on" } else { "off" }.into(),
                    v.accounts.to_string(),
                    d.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                    d.disabled_at
                        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                        .unwrap_or_default(),
                ]);
            }
            render::print(out, format, &g)
        }
        DomainAction::Create { name, label } => {
            let (_, _, secret) = tenants.create_domain(&operator, &name, &label).await?;
            writeln!(out, "{secret}").map_err(io)
        }
        DomainAction::Disable { name } => {
            let d = tenants.set_disabled(&operator, &name, true).await?;
            render::print(out, format, &one(&d))
        }
        DomainAction::Enable { name } => {
            let d = tenants.set_disabled(&operator, &name, false).await?;
            render::print(out, format, &one(&d))
        }
    }
}
