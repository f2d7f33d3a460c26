//! `token`: API tokens for the server.

use std::io::Write;

use cloudbill_service::Billing;
use serde_json::json;

use crate::args::{Format, TokenAction};
use crate::render::{self, Grid};
use crate::CliError;

use super::ADMIN;

pub(super) async fn token_cmd(
    b: &Billing,
    action: TokenAction,
    format: Format,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let io = |e: std::io::Error| CliError::Failure(e.to_string());
    match action {
        TokenAction::Create {
            role,
            project,
            label,
        } => {
            let role: cloudbill_core::TokenRole = role.parse()?;
            let (_, secret) = if role == cloudbill_core::TokenRole::SystemAdmin {
                if project.is_some() {
                    return Err(cloudbill_service::ServiceError::Invalid(
                        "a system-admin token has no project".into(),
                    )
                    .into());
                }
                super::domains::tenants(b)
                    .create_system_token(&cloudbill_service::SystemAdmin::operator(), &label)
                    .await?
            } else {
                b.create_token(&ADMIN, role, project.as_deref(), &label)
                    .await?
            };
            writeln!(out, "{secret}").map_err(io)
        }
        TokenAction::Revoke { id } => {
            b.revoke_token(&ADMIN, &id).await?;
            let mut g = Grid::new(&["revoked"], &[], json!({"revoked": id}));
            g.row(vec![id]);
            render::print(out, format, &g)
        }
        TokenAction::List => {
            let tokens = b.tokens(&ADMIN).await?;
            let projects = b.projects(&ADMIN).await?;
            let project_name = |id: Option<cloudbill_core::ProjectId>| {
                id.and_then(|id| projects.iter().find(|p| p.id == id))
                    .map(|p| p.name.to_string())
            };
            let json = tokens
                .iter()
                .map(|t| json!({
                    "id": t.id.to_string(), "role": t.role.as_str(), "project": project_name(t.project),
                    "label": t.label, "created_at": t.created_at.to_rfc3339(),
                    "revoked_at": t.revoked_at.map(|r| r.to_rfc3339()),
                }))
                .collect();
            let mut g = Grid::new(
                &["id", "role", "project", "label", "created", "revoked"],
                &[],
                serde_json::Value::Array(json),
            );
            for t in &tokens {
                g.row(vec![
                    t.id.to_string(),
                    t.role.as_str().into(),
                    project_name(t.project).unwrap_or_default(),
                    t.label.clone(),
                    t.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                    t.revoked_at
                        .map(|r| r.format("%Y-%m-%d %H:%M:%S").to_string())
                        .unwrap_or_default(),
                ]);
            }
            render::print(out, format, &g)
        }
    }
}
