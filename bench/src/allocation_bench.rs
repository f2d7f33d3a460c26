//! `cloudbill-bench allocation DIR`: the same reports with and without three allocation rules
//! (a shared project split evenly, a service split in proportion to each project's own cost,
//! a region split by fixed weights), warm in the engine, best of 10 each in this run (after
//! the first allocated query, timed on its own, found the rules' source records); prints each
//! query's ratio (goal: ≤ 2×) and checks that every total over all groups is unchanged.

use std::collections::BTreeMap;
use std::sync::Arc;

use cloudbill_aggregate::{Allocation, Engine, GroupKey, Method, Query, Slice};
use cloudbill_core::{DateRange, Decimal, Granularity};

use crate::best_of;

fn slice(
    rule: &str,
    source: (GroupKey, &str),
    targets: &[String],
    method: Method,
) -> Result<Slice, String> {
    Ok(Slice {
        rule: rule.into(),
        from: cloudbill_core::parse_date("2025-01-01").map_err(|e| e.to_string())?,
        until: None,
        source: BTreeMap::from([(source.0, vec![source.1.to_owned()])]),
        target: GroupKey::Project,
        targets: targets.to_vec(),
        method,
    })
}

pub(crate) fn run(dir: &str) -> Result<(), String> {
    let (catalog, records) = crate::bill_with_projects(dir)?;
    let n = records.len();
    let projects: Vec<String> = catalog.projects.iter().map(|p| p.name.clone()).collect();
    if projects.len() < 5 {
        return Err("the bench needs at least 5 projects (gen_focus.py writes 25)".into());
    }
    let engine = Engine::build(&records, catalog).map_err(|e| e.to_string())?;
    drop(records);
    let others: Vec<String> = projects[1..].to_vec();
    let allocation = Arc::new(Allocation {
        slices: vec![
            slice(
                "shared",
                (GroupKey::Project, &projects[0]),
                &others,
                Method::Even,
            )?,
            slice(
                "support",
                (GroupKey::Service, "AmazonCloudWatch"),
                &others,
                Method::Proportional,
            )?,
            slice(
                "network",
                (GroupKey::Region, "global"),
                &projects[1..4],
                Method::Fixed(vec![5000, 3000, 2000]),
            )?,
        ],
    });
    let range = DateRange::parse("2025-01-01", "2026-01-01").map_err(|e| e.to_string())?;
    println!("allocation: {n} records, 3 rules (even, proportional, fixed), best of 10");
    // The first allocated query of an engine also finds the rules' source records and the
    // proportional bases (kept for the next queries over the same rules).
    let mut first = Query::new(range, Granularity::Monthly);
    first.group_by = vec![GroupKey::Project];
    // (The engine's first query after a build pays for the allocator reclaiming the records
    // just freed: a plain query first, then the plain one timed.)
    engine.query(&first).map_err(|e| e.to_string())?;
    let (plain_first, _) = best_of(1, || engine.query(&first));
    first.allocation = Some(Arc::clone(&allocation));
    let (alloc_first, _) = best_of(1, || engine.query(&first));
    println!(
        "first allocated query (finds the sources): {:.2} ms, {:.2}x the plain query",
        alloc_first * 1000.0,
        alloc_first / plain_first
    );
    println!("query                         plain ms   allocated ms   ratio   totals");
    let mut worst: f64 = 0.0;
    for (name, keys, granularity) in [
        (
            "project monthly",
            vec![GroupKey::Project],
            Granularity::Monthly,
        ),
        (
            "project × service monthly",
            vec![GroupKey::Project, GroupKey::Service],
            Granularity::Monthly,
        ),
        ("project daily", vec![GroupKey::Project], Granularity::Daily),
        (
            "service monthly (no move)",
            vec![GroupKey::Service],
            Granularity::Monthly,
        ),
    ] {
        let mut q = Query::new(range, granularity);
        q.group_by = keys;
        let (plain_s, plain) = best_of(10, || engine.query(&q));
        let plain = plain.map_err(|e| e.to_string())?;
        let mut qa = q.clone();
        qa.allocation = Some(Arc::clone(&allocation));
        let (alloc_s, allocated) = best_of(10, || engine.query(&qa));
        let allocated = allocated.map_err(|e| e.to_string())?;
        let same = plain.totals() == allocated.totals();
        let moved: Decimal = allocated
            .results
            .iter()
            .filter(|r| r.group.get("project").is_some_and(|p| *p == projects[0]))
            .flat_map(|r| r.total.iter().map(|a| a.cost))
            .sum();
        let ratio = alloc_s / plain_s;
        worst = worst.max(ratio);
        println!(
            "{name:<28} {:>9.2} {:>14.2} {:>7.2}x   {}{}",
            plain_s * 1000.0,
            alloc_s * 1000.0,
            ratio,
            if same { "unchanged" } else { "DIFFER" },
            if moved.is_zero() {
                ""
            } else {
                " (shared project not emptied)"
            },
        );
        if !same {
            return Err(format!("{name}: totals differ with allocation"));
        }
    }
    println!("worst ratio {worst:.2}x (goal: ≤ 2x)");
    Ok(())
}
