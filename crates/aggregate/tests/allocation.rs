//! Shared-cost allocation in the engine: hand-computed splits per method, the remainder, a
//! day without targets, priority, versions, filters, and totals unchanged on random data.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::BTreeMap;
use std::sync::Arc;

use cloudbill_aggregate::{
    Allocation, Catalog, CatalogAccount, CatalogProject, Engine, GroupKey, Method, Query, Report,
    Slice,
};
use cloudbill_core::{
    AccountId, Assignment, ChargeCategory, CostRecord, Currency, DateRange, Decimal, DomainId,
    Granularity, Money, NaiveDate, ProjectId, ProviderKind,
};
use proptest::prelude::*;

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

const PROJECTS: [&str; 4] = ["shared", "a", "b", "c"];

/// One account per project (`acc-shared`, `acc-a`, …) and records `(project index, day of
/// June 2026, service, cost, currency)`; tag `team` is the project's name except on `shared`.
fn engine(rows: &[(usize, u32, &str, &str, &str)]) -> Engine {
    let projects: Vec<CatalogProject> = PROJECTS
        .iter()
        .map(|n| CatalogProject {
            id: ProjectId::new(),
            name: (*n).into(),
            group: None,
        })
        .collect();
    let accounts: Vec<CatalogAccount> = projects
        .iter()
        .map(|p| CatalogAccount {
            id: AccountId::new(),
            name: format!("acc-{}", p.name),
            history: vec![Assignment {
                project: p.id,
                from: None,
            }],
        })
        .collect();
    let domain = DomainId::new();
    let records: Vec<CostRecord> = rows
        .iter()
        .map(|(p, day, service, cost, currency)| CostRecord {
            domain,
            service_account: accounts[*p].id,
            provider: ProviderKind::HyperbillingAws,
            cloud_account: "123456789012".into(),
            date: date("2026-06-01") + chrono::Duration::days(i64::from(*day) - 1),
            region: "us-east-1".into(),
            service: (*service).into(),
            usage_type: "u".into(),
            instance_type: None,
            usage_quantity: Decimal::ONE,
            cost: Money::new(cost.parse().unwrap(), Currency::parse(currency).unwrap()),
            effective_cost: None,
            list_cost: None,
            charge_category: ChargeCategory::Usage,
            tags: if *p == 0 {
                BTreeMap::new()
            } else {
                BTreeMap::from([("team".to_owned(), PROJECTS[*p].to_owned())])
            },
            attributes: BTreeMap::new(),
            measures: BTreeMap::new(),
            extensions: BTreeMap::new(),
        })
        .collect();
    Engine::build(
        &records,
        Catalog {
            projects,
            groups: vec![],
            accounts,
        },
    )
    .unwrap()
}

fn slice(
    rule: &str,
    source: &[(&str, &str)],
    target: &str,
    targets: &[&str],
    method: Method,
) -> Slice {
    let mut filters: BTreeMap<GroupKey, Vec<String>> = BTreeMap::new();
    for (k, v) in source {
        filters
            .entry(k.parse().unwrap())
            .or_default()
            .push((*v).to_owned());
    }
    Slice {
        rule: rule.into(),
        from: date("2026-01-01"),
        until: None,
        source: filters,
        target: target.parse().unwrap(),
        targets: targets.iter().map(|t| (*t).to_owned()).collect(),
        method,
    }
}

fn query(group_by: &[&str], slices: Vec<Slice>) -> Query {
    let mut q = Query::new(
        DateRange::new(date("2026-06-01"), date("2026-07-01")).unwrap(),
        Granularity::Daily,
    );
    q.group_by = group_by.iter().map(|k| k.parse().unwrap()).collect();
    if !slices.is_empty() {
        q.allocation = Some(Arc::new(Allocation { slices }));
    }
    q
}

/// `(group value joined by '/', date, cost, currency)` of every cell, sorted.
fn cells(r: &Report) -> Vec<(String, String, String, String)> {
    let mut out: Vec<_> = r
        .results
        .iter()
        .flat_map(|row| {
            let g: Vec<&str> = row.group.values().map(String::as_str).collect();
            let g = g.join("/");
            row.billing_data.iter().map(move |b| {
                (
                    g.clone(),
                    b.date.clone(),
                    b.cost.to_string(),
                    b.currency.to_string(),
                )
            })
        })
        .collect();
    out.sort();
    out
}

fn cell(r: &Report, group: &str, day: &str) -> Option<String> {
    cells(r)
        .into_iter()
        .find(|(g, d, _, _)| g == group && d == day)
        .map(|(_, _, c, _)| c)
}

#[test]
fn even_split_gives_the_remainder_to_the_first_target() {
    let e = engine(&[
        (0, 1, "AWSSupport", "100.00", "USD"),
        (1, 1, "AmazonEC2", "5.00", "USD"),
    ]);
    let rule = slice(
        "support",
        &[("project", "shared")],
        "project",
        &["a", "b", "c"],
        Method::Even,
    );
    let r = e.query(&query(&["project"], vec![rule])).unwrap();
    assert_eq!(cell(&r, "a", "2026-06-01").as_deref(), Some("38.34"));
    assert_eq!(cell(&r, "b", "2026-06-01").as_deref(), Some("33.33"));
    assert_eq!(cell(&r, "c", "2026-06-01").as_deref(), Some("33.33"));
    assert_eq!(
        cell(&r, "shared", "2026-06-01"),
        None,
        "nothing left on the source"
    );
    assert_eq!(r.totals()[0].cost, "105.00".parse::<Decimal>().unwrap());
}

#[test]
fn proportional_follows_each_targets_own_cost_that_day() {
    let e = engine(&[
        (0, 1, "AWSSupport", "10.00", "USD"),
        (1, 1, "AmazonEC2", "60", "USD"),
        (2, 1, "AmazonEC2", "30", "USD"),
        (3, 1, "AmazonEC2", "10", "USD"),
        // Day 2: only b has cost: all of shared's goes to b.
        (0, 2, "AWSSupport", "0.05", "USD"),
        (2, 2, "AmazonEC2", "1", "USD"),
        // Day 3: no target has cost: shared keeps it, unallocated.
        (0, 3, "AWSSupport", "7.77", "USD"),
        // Day 4: a remainder: 0.01 over 1:1:1 goes to the first target.
        (0, 4, "AWSSupport", "0.01", "USD"),
        (1, 4, "AmazonEC2", "1", "USD"),
        (2, 4, "AmazonEC2", "1", "USD"),
        (3, 4, "AmazonEC2", "1", "USD"),
    ]);
    let rule = slice(
        "support",
        &[("project", "shared")],
        "project",
        &["a", "b", "c"],
        Method::Proportional,
    );
    let r = e.query(&query(&["project"], vec![rule])).unwrap();
    assert_eq!(cell(&r, "a", "2026-06-01").as_deref(), Some("66.00"));
    assert_eq!(cell(&r, "b", "2026-06-01").as_deref(), Some("33.00"));
    assert_eq!(cell(&r, "c", "2026-06-01").as_deref(), Some("11.00"));
    assert_eq!(cell(&r, "b", "2026-06-02").as_deref(), Some("1.05"));
    assert_eq!(cell(&r, "shared", "2026-06-03").as_deref(), Some("7.77"));
    assert_eq!(cell(&r, "a", "2026-06-04").as_deref(), Some("1.01"));
    assert_eq!(
        cell(&r, "b", "2026-06-04").as_deref(),
        Some("1.00"),
        "{:?}",
        cells(&r)
    );
    let plain = e.query(&query(&["project"], vec![])).unwrap();
    assert_eq!(r.totals(), plain.totals());
}

#[test]
fn fixed_weights_split_at_the_records_scale() {
    // 0.07 by 50/30/20 %: 3.5, 2.1, 1.4 cents → 3, 2, 1 and one cent left, to the largest
    // remainder (.5: a).
    let e = engine(&[(0, 1, "AWSSupport", "0.07", "USD")]);
    let rule = slice(
        "split",
        &[("service", "AWSSupport")],
        "project",
        &["a", "b", "c"],
        Method::Fixed(vec![5000, 3000, 2000]),
    );
    let r = e.query(&query(&["project"], vec![rule])).unwrap();
    assert_eq!(cell(&r, "a", "2026-06-01").as_deref(), Some("0.04"));
    assert_eq!(cell(&r, "b", "2026-06-01").as_deref(), Some("0.02"));
    assert_eq!(cell(&r, "c", "2026-06-01").as_deref(), Some("0.01"));
}

#[test]
fn negative_amounts_split_like_positive_ones() {
    let e = engine(&[(0, 1, "Credit", "-1.00", "USD")]);
    let rule = slice(
        "credit",
        &[("project", "shared")],
        "project",
        &["a", "b", "c"],
        Method::Even,
    );
    let r = e.query(&query(&["project"], vec![rule])).unwrap();
    assert_eq!(cell(&r, "a", "2026-06-01").as_deref(), Some("-0.34"));
    assert_eq!(cell(&r, "b", "2026-06-01").as_deref(), Some("-0.33"));
}

#[test]
fn currencies_are_split_apart() {
    let e = engine(&[
        (0, 1, "AWSSupport", "1.00", "USD"),
        (0, 1, "AWSSupport", "3.00", "EUR"),
        (1, 1, "AmazonEC2", "1", "USD"),
        (2, 1, "AmazonEC2", "1", "EUR"),
    ]);
    let rule = slice(
        "s",
        &[("project", "shared")],
        "project",
        &["a", "b"],
        Method::Proportional,
    );
    let r = e
        .query(&query(&["project", "currency"], vec![rule]))
        .unwrap();
    assert_eq!(cell(&r, "USD/a", "2026-06-01").as_deref(), Some("2.00"));
    assert_eq!(cell(&r, "EUR/b", "2026-06-01").as_deref(), Some("4.00"));
    assert_eq!(
        cell(&r, "EUR/a", "2026-06-01"),
        None,
        "a has no EUR cost: no EUR share"
    );
}

#[test]
fn the_first_rule_takes_a_record_and_its_shares_are_never_moved_again() {
    let e = engine(&[
        (0, 1, "AWSSupport", "10.00", "USD"),
        (0, 1, "AmazonS3", "4.00", "USD"),
        (1, 1, "AmazonEC2", "1", "USD"),
    ]);
    let support = slice(
        "support",
        &[("service", "AWSSupport")],
        "project",
        &["a", "b"],
        Method::Even,
    );
    // Would take the support record too (it is in shared), and would take a's share of it
    // if shares were sources: neither happens.
    let rest = slice(
        "rest",
        &[("project", "shared")],
        "project",
        &["c"],
        Method::Even,
    );
    let second = slice(
        "again",
        &[("project", "a")],
        "project",
        &["b"],
        Method::Even,
    );
    let r = e
        .query(&query(&["project"], vec![support, rest, second]))
        .unwrap();
    // a keeps its share of support (5.00) though `again` takes a's own 1.00 to b.
    assert_eq!(cell(&r, "a", "2026-06-01").as_deref(), Some("5.00"));
    assert_eq!(cell(&r, "b", "2026-06-01").as_deref(), Some("6.00"));
    assert_eq!(cell(&r, "c", "2026-06-01").as_deref(), Some("4.00"));
}

#[test]
fn a_rule_the_query_does_not_see_still_takes_its_records_first() {
    let e = engine(&[
        (0, 1, "AWSSupport", "10.00", "USD"),
        (0, 1, "AmazonS3", "4.00", "USD"),
    ]);
    // Support is split across teams (a tag): a report by project does not see that move,
    // but the record is still the first rule's, never the second's.
    let teams = slice(
        "teams",
        &[("service", "AWSSupport")],
        "tag:team",
        &["a", "b"],
        Method::Even,
    );
    let rest = slice(
        "rest",
        &[("project", "shared")],
        "project",
        &["c"],
        Method::Even,
    );
    let q = query(&["project"], vec![teams, rest]);
    let r = e.query(&q).unwrap();
    assert_eq!(cell(&r, "shared", "2026-06-01").as_deref(), Some("10.00"));
    assert_eq!(cell(&r, "c", "2026-06-01").as_deref(), Some("4.00"));
    // Asked again (the engine keeps what it found for these rules), the same.
    assert_eq!(cells(&e.query(&q).unwrap()), cells(&r));
}

#[test]
fn a_group_by_the_target_is_what_moves_other_keys_keep_the_source() {
    let e = engine(&[
        (0, 1, "AWSSupport", "9.00", "USD"),
        (1, 1, "AmazonEC2", "1", "USD"),
    ]);
    let rule = slice(
        "s",
        &[("project", "shared")],
        "project",
        &["a", "b", "c"],
        Method::Even,
    );
    let by_service = e.query(&query(&["service"], vec![rule.clone()])).unwrap();
    let plain = e.query(&query(&["service"], vec![])).unwrap();
    assert_eq!(
        cells(&by_service),
        cells(&plain),
        "service keeps the source's"
    );
    let both = e
        .query(&query(&["project", "service"], vec![rule]))
        .unwrap();
    assert_eq!(
        cell(&both, "b/AWSSupport", "2026-06-01").as_deref(),
        Some("3.00")
    );
}

#[test]
fn a_filter_on_the_target_sees_the_shares_allocated_to_it() {
    let e = engine(&[
        (0, 1, "AWSSupport", "9.00", "USD"),
        (1, 1, "AmazonEC2", "1", "USD"),
        (2, 1, "AmazonEC2", "2", "USD"),
    ]);
    let rule = slice(
        "s",
        &[("project", "shared")],
        "project",
        &["a", "b", "c"],
        Method::Even,
    );
    let mut q = query(&[], vec![rule]);
    q.filters.insert(GroupKey::Project, vec!["a".into()]);
    let r = e.query(&q).unwrap();
    assert_eq!(r.totals()[0].cost, "4.00".parse::<Decimal>().unwrap());
    q.filters.insert(GroupKey::Project, vec!["shared".into()]);
    let r = e.query(&q).unwrap();
    assert!(r.results.is_empty(), "{r:?}");
}

#[test]
fn versions_apply_over_their_own_days() {
    let e = engine(&[
        (0, 1, "AWSSupport", "10.00", "USD"),
        (0, 20, "AWSSupport", "10.00", "USD"),
    ]);
    let mut v1 = slice(
        "s",
        &[("project", "shared")],
        "project",
        &["a"],
        Method::Even,
    );
    v1.until = Some(date("2026-06-15"));
    let mut v2 = slice(
        "s",
        &[("project", "shared")],
        "project",
        &["b"],
        Method::Even,
    );
    v2.from = date("2026-06-15");
    let r = e.query(&query(&["project"], vec![v1, v2])).unwrap();
    assert_eq!(cell(&r, "a", "2026-06-01").as_deref(), Some("10.00"));
    assert_eq!(cell(&r, "b", "2026-06-20").as_deref(), Some("10.00"));
}

#[test]
fn tag_targets_may_name_values_no_record_has() {
    let e = engine(&[
        (0, 1, "AWSSupport", "1.00", "USD"),
        (1, 1, "AmazonEC2", "1", "USD"),
    ]);
    let rule = slice(
        "s",
        &[("project", "shared")],
        "tag:team",
        &["a", "platform"],
        Method::Even,
    );
    let r = e.query(&query(&["tag:team"], vec![rule])).unwrap();
    assert_eq!(cell(&r, "a", "2026-06-01").as_deref(), Some("1.50"));
    assert_eq!(cell(&r, "platform", "2026-06-01").as_deref(), Some("0.50"));
}

#[test]
fn a_rule_naming_a_gone_target_is_a_clear_error() {
    let e = engine(&[(0, 1, "AWSSupport", "1.00", "USD")]);
    let rule = slice(
        "s",
        &[("project", "shared")],
        "project",
        &["nope"],
        Method::Even,
    );
    let err = e.query(&query(&["project"], vec![rule])).unwrap_err();
    assert!(err.to_string().contains("\"nope\""), "{err}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// On random records and any rule, every total over all groups is unchanged to the last
    /// decimal, per currency and per day, whatever the group-by.
    #[test]
    fn totals_never_change(
        rows in proptest::collection::vec(
            (0usize..4, 1u32..5, 0usize..3, -100_000i64..1_000_000, 0u32..4, any::<bool>()),
            1..60,
        ),
        method in 0u8..3,
        by in 0usize..4,
    ) {
        let services = ["AWSSupport", "AmazonEC2", "AmazonS3"];
        let owned: Vec<(usize, u32, &str, String, &str)> = rows
            .iter()
            .map(|(p, d, s, m, sc, eur)| {
                (*p, *d, services[*s], Decimal::new(*m, *sc).to_string(), if *eur { "EUR" } else { "USD" })
            })
            .collect();
        let refs: Vec<(usize, u32, &str, &str, &str)> =
            owned.iter().map(|(p, d, s, c, cur)| (*p, *d, *s, c.as_str(), *cur)).collect();
        let e = engine(&refs);
        let method = match method {
            0 => Method::Even,
            1 => Method::Proportional,
            _ => Method::Fixed(vec![3333, 3333, 3334]),
        };
        let rule = slice("s", &[("service", "AWSSupport")], "project", &["a", "b", "c"], method);
        let group_by: &[&str] = [&["project"][..], &["project", "service"], &["currency"], &["tag:team", "project"]][by];
        let with = e.query(&query(group_by, vec![rule])).unwrap();
        let without = e.query(&query(group_by, vec![])).unwrap();
        prop_assert_eq!(with.totals(), without.totals());
        let per_day = |r: &Report| {
            let mut m: BTreeMap<(String, String), Decimal> = BTreeMap::new();
            for row in &r.results {
                for b in &row.billing_data {
                    *m.entry((b.date.clone(), b.currency.to_string())).or_default() += b.cost;
                }
            }
            m.retain(|_, v| !v.is_zero());
            m
        };
        prop_assert_eq!(per_day(&with), per_day(&without));
        // No share has more decimals than its record.
        for row in &with.results {
            for b in &row.billing_data {
                prop_assert!(b.cost.scale() <= 3 || b.cost.normalize().scale() <= 3);
            }
        }
    }
}
