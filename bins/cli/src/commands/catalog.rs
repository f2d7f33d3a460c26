//! `project` and `group`: the domain's projects and project groups.

use std::io::Write;

use cloudbill_core::ServiceAccount;
use cloudbill_service::Billing;
use serde_json::json;

use crate::args::{Format, GroupAction, ProjectAction};
use crate::render::{self, Grid};
use crate::CliError;

use super::ADMIN;

pub(super) async fn project_cmd(
    b: &Billing,
    action: ProjectAction,
    format: Format,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let groups = b.groups(&ADMIN).await?;
    let group_name = |id: Option<cloudbill_core::GroupId>| {
        id.and_then(|id| groups.iter().find(|g| g.id == id))
            .map(|g| g.name.to_string())
    };
    let (projects, accounts) = match action {
        ProjectAction::Create { name, group } => (
            vec![b.create_project(&ADMIN, &name, group.as_deref()).await?],
            None,
        ),
        ProjectAction::List => (b.projects(&ADMIN).await?, None),
        ProjectAction::Show { name } => {
            let p = b.project(&ADMIN, &name).await?;
            let accounts: Vec<ServiceAccount> = b
                .accounts(&ADMIN)
                .await?
                .into_iter()
                .filter(|a| a.project == p.id)
                .collect();
            (vec![p], Some(accounts))
        }
    };
    let json: Vec<_> = projects
        .iter()
        .map(|p| {
            let mut v = json!({"id": p.id.to_string(), "name": p.name.as_str(), "group": group_name(p.group)});
            if let Some(accounts) = &accounts {
                v["accounts"] = accounts.iter().map(|a| json!(a.name.as_str())).collect();
            }
            v
        })
        .collect();
    let json = if accounts.is_some() {
        json.into_iter().next().unwrap_or_default()
    } else {
        serde_json::Value::Array(json)
    };
    let mut g = Grid::new(&["name", "group", "accounts", "id"], &[], json);
    for p in &projects {
        let acc = accounts
            .as_ref()
            .map(|a| {
                a.iter()
                    .map(|x| x.name.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        g.row(vec![
            p.name.to_string(),
            group_name(p.group).unwrap_or_default(),
            acc,
            p.id.to_string(),
        ]);
    }
    if accounts.is_none() {
        g.headers.remove(2);
        g.numeric.remove(2);
        for r in &mut g.rows {
            r.remove(2);
        }
    }
    render::print(out, format, &g)
}

pub(super) async fn group_cmd(
    b: &Billing,
    action: GroupAction,
    format: Format,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let created = match action {
        GroupAction::Create { name, parent } => {
            Some(b.create_group(&ADMIN, &name, parent.as_deref()).await?)
        }
        GroupAction::List => None,
    };
    // One read serves both the listing and the parents' names.
    let parents = b.groups(&ADMIN).await?;
    let all = match created {
        Some(group) => vec![group],
        None => parents.clone(),
    };
    let parent_name = |id: Option<cloudbill_core::GroupId>| {
        id.and_then(|id| parents.iter().find(|g| g.id == id))
            .map(|g| g.name.to_string())
    };
    let json = all
        .iter()
        .map(|g| json!({"id": g.id.to_string(), "name": g.name.as_str(), "parent": parent_name(g.parent)}))
        .collect();
    let mut grid = Grid::new(
        &["name", "parent", "id"],
        &[],
        serde_json::Value::Array(json),
    );
    for g in &all {
        grid.row(vec![
            g.name.to_string(),
            parent_name(g.parent).unwrap_or_default(),
            g.id.to_string(),
        ]);
    }
    render::print(out, format, &grid)
}
