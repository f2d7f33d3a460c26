//! `allocation`: shared-cost allocation rules.

use std::collections::BTreeMap;
use std::io::Write;

use cloudbill_core::{AllocationMethod, AllocationRule, AllocationSpec, Decimal};
use cloudbill_service::{AllocationUpdate, Billing};

use crate::args::{AllocationAction, AllocationCreateArgs, AllocationUpdateArgs, Format};
use crate::render::{self, Grid};
use crate::CliError;

fn json(value: &impl serde::Serialize) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or_default()
}

use super::ADMIN;

/// Who the CLI says made a change.
fn actor() -> String {
    let user = std::env::var("USER").unwrap_or_default();
    if user.is_empty() {
        "cli".into()
    } else {
        format!("cli ({user})")
    }
}

/// `--source KEY=VALUE …`: key → values (a key repeated adds values).
fn source(flags: &[String]) -> Result<BTreeMap<String, Vec<String>>, CliError> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for f in flags {
        let (k, v) = f.split_once('=').ok_or_else(|| {
            CliError::Usage(format!(
                "--source {f:?}: expected KEY=VALUE (project=shared)"
            ))
        })?;
        out.entry(k.trim().to_owned())
            .or_default()
            .push(v.to_owned());
    }
    Ok(out)
}

/// `--target KEY=V1,V2 …`: the key (one for all flags) and the values in order.
fn targets(flags: &[String]) -> Result<(String, Vec<String>), CliError> {
    let mut key: Option<String> = None;
    let mut values = Vec::new();
    for f in flags {
        let (k, v) = f.split_once('=').ok_or_else(|| {
            CliError::Usage(format!(
                "--target {f:?}: expected KEY=V1,V2 (project=web,data)"
            ))
        })?;
        let k = k.trim().to_owned();
        if key.as_ref().is_some_and(|x| *x != k) {
            return Err(CliError::Usage(format!(
                "--target: one key for all targets ({} and {k})",
                key.unwrap_or_default()
            )));
        }
        key = Some(k);
        values.extend(v.split(',').map(|x| x.trim().to_owned()));
    }
    Ok((key.unwrap_or_default(), values))
}

/// `--weight TARGET=PERCENT …` in the targets' order.
fn weights(flags: &[String], targets: &[String]) -> Result<Vec<Decimal>, CliError> {
    let mut by: BTreeMap<String, Decimal> = BTreeMap::new();
    for f in flags {
        let (t, w) = f.split_once('=').ok_or_else(|| {
            CliError::Usage(format!("--weight {f:?}: expected TARGET=PERCENT (web=60)"))
        })?;
        let w = cloudbill_core::parse_decimal(w.trim())
            .map_err(|e| CliError::Usage(format!("--weight {f:?}: {e}")))?;
        if by.insert(t.trim().to_owned(), w).is_some() {
            return Err(CliError::Usage(format!("--weight: {t:?} is given twice")));
        }
    }
    let mut out = Vec::with_capacity(targets.len());
    for t in targets {
        out.push(
            by.remove(t)
                .ok_or_else(|| CliError::Usage(format!("--weight: no weight for target {t:?}")))?,
        );
    }
    if let Some(extra) = by.keys().next() {
        return Err(CliError::Usage(format!(
            "--weight: {extra:?} is not one of the targets"
        )));
    }
    Ok(out)
}

fn method(raw: &str) -> Result<AllocationMethod, CliError> {
    raw.parse()
        .map_err(|e: cloudbill_core::ValidationError| CliError::Usage(e.to_string()))
}

fn spec(args: &AllocationCreateArgs) -> Result<AllocationSpec, CliError> {
    let (target, targets) = targets(&args.target)?;
    let method = method(&args.method)?;
    let weights = match (method, args.weight.is_empty()) {
        (AllocationMethod::Fixed, _) => weights(&args.weight, &targets)?,
        (_, true) => Vec::new(),
        (_, false) => return Err(CliError::Usage("--weight goes with --method fixed".into())),
    };
    Ok(AllocationSpec {
        source: source(&args.source)?,
        target,
        targets,
        method,
        weights,
        priority: args.priority,
    })
}

fn update(args: &AllocationUpdateArgs) -> Result<AllocationUpdate, CliError> {
    let mut u = AllocationUpdate {
        name: args.rename.clone(),
        priority: args.priority,
        method: args.method.as_deref().map(method).transpose()?,
        ..AllocationUpdate::default()
    };
    if !args.source.is_empty() {
        u.source = Some(source(&args.source)?);
    }
    if !args.target.is_empty() {
        let (key, values) = targets(&args.target)?;
        u.target = Some(key);
        u.targets = Some(values);
    }
    if !args.weight.is_empty() {
        let Some(targets) = &u.targets else {
            // Weights by name need the targets: the rule's own are read by the service.
            return Err(CliError::Usage(
                "--weight on update goes with --target (the weights follow the targets' order)"
                    .into(),
            ));
        };
        u.weights = Some(weights(&args.weight, targets)?);
    }
    Ok(u)
}

fn source_label(rule: &AllocationRule) -> String {
    rule.spec
        .source
        .iter()
        .map(|(k, v)| format!("{k}={}", v.join("|")))
        .collect::<Vec<_>>()
        .join(" & ")
}

fn targets_label(rule: &AllocationRule) -> String {
    let values: Vec<String> = if rule.spec.method == AllocationMethod::Fixed {
        rule.spec
            .targets
            .iter()
            .zip(&rule.spec.weights)
            .map(|(t, w)| format!("{t} {w}%"))
            .collect()
    } else {
        rule.spec.targets.clone()
    };
    format!("{}: {}", rule.spec.target, values.join(", "))
}

fn grid(rules: &[AllocationRule], json: serde_json::Value, versions: bool) -> Grid {
    let mut headers = vec!["name", "priority", "source", "targets", "method", "from"];
    if versions {
        headers.extend(["version", "change", "by", "at"]);
    }
    let mut g = Grid::new(&headers, &["priority", "version"], json);
    for r in rules {
        let mut row = vec![
            render::printable(r.name.as_str()).into_owned(),
            r.spec.priority.to_string(),
            render::printable(&source_label(r)).into_owned(),
            render::printable(&targets_label(r)).into_owned(),
            r.spec.method.as_str().to_owned(),
            r.start.to_string(),
        ];
        if versions {
            row.extend([
                r.version.to_string(),
                if r.deleted {
                    "deleted".into()
                } else if r.version == 1 {
                    "created".into()
                } else {
                    "changed".into()
                },
                render::printable(&r.changed_by).into_owned(),
                r.changed_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            ]);
        }
        g.row(row);
    }
    g
}

pub(super) async fn allocation_cmd(
    b: &Billing,
    action: AllocationAction,
    format: Format,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    match action {
        AllocationAction::Create(args) => {
            let rule = b
                .create_allocation(&ADMIN, &actor(), &args.name, spec(&args)?, args.start)
                .await?;
            render::print(
                out,
                format,
                &grid(std::slice::from_ref(&rule), json(&rule), false),
            )
        }
        AllocationAction::List => {
            let rules = b.allocation_rules(&ADMIN).await?;
            let value = serde_json::json!({ "allocations": rules });
            render::print(out, format, &grid(&rules, value, false))
        }
        AllocationAction::Show { name } => {
            let view = b.allocation_rule(&ADMIN, &name).await?;
            render::print(out, format, &grid(&view.versions, json(&view), true))
        }
        AllocationAction::Update(args) => {
            let rule = b
                .update_allocation(&ADMIN, &actor(), &args.name, update(&args)?, args.start)
                .await?;
            render::print(
                out,
                format,
                &grid(std::slice::from_ref(&rule), json(&rule), true),
            )
        }
        AllocationAction::Delete { name, start } => {
            let rule = b.delete_allocation(&ADMIN, &actor(), &name, start).await?;
            render::print(
                out,
                format,
                &grid(std::slice::from_ref(&rule), json(&rule), true),
            )
        }
    }
}
