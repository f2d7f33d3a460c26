//! The engine against a plain reference implementation (BTreeMap + Decimal), plus its errors.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]
#![allow(
    clippy::many_single_char_names,
    clippy::similar_names,
    clippy::too_many_lines,
    clippy::items_after_statements
)]

use std::collections::BTreeMap;

use cloudbill_aggregate::{
    Answer, Catalog, CatalogAccount, CatalogGroup, CatalogProject, Engine, GroupKey, Query,
    QueryError, Report, Sort,
};
use cloudbill_core::{
    AccountId, Assignment, ChargeCategory, CostRecord, Currency, DateRange, Decimal, DomainId,
    Granularity, GroupId, Money, NaiveDate, ProjectId, ProviderKind, ServiceAccount,
};
use proptest::prelude::*;

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

struct World {
    catalog: Catalog,
    records: Vec<CostRecord>,
}

const SERVICES: [&str; 3] = ["AmazonEC2", "AmazonS3", "AWSLambda"];
const REGIONS: [&str; 3] = ["us-east-1", "eu-west-1", ""];
const TEAMS: [&str; 3] = ["web-team", "data-team", "ops-team"];

/// Three accounts, four projects in a two-level group tree; account 0 moves on day 40.
fn world(raw: &[(u8, u16, u8, u8, i64, u8, bool)]) -> World {
    let root = GroupId::new();
    let child = GroupId::new();
    let groups = vec![
        CatalogGroup {
            id: root,
            name: "eng".into(),
            parent: None,
        },
        CatalogGroup {
            id: child,
            name: "platform".into(),
            parent: Some(root),
        },
    ];
    let projects: Vec<CatalogProject> = [
        ("web", Some(root)),
        ("api", Some(child)),
        ("data", None),
        ("ops", Some(child)),
    ]
    .into_iter()
    .map(|(n, g)| CatalogProject {
        id: ProjectId::new(),
        name: n.into(),
        group: g,
    })
    .collect();
    let base = date("2025-01-01");
    let accounts: Vec<CatalogAccount> = (0..3)
        .map(|i| CatalogAccount {
            id: AccountId::new(),
            name: format!("acc{i}"),
            history: if i == 0 {
                vec![
                    Assignment {
                        project: projects[0].id,
                        from: None,
                    },
                    Assignment {
                        project: projects[1].id,
                        from: Some(base + chrono::Duration::days(40)),
                    },
                ]
            } else {
                vec![Assignment {
                    project: projects[i + 1].id,
                    from: None,
                }]
            },
        })
        .collect();
    // An account the catalog does not know: its costs are "(unassigned)" but consolidated.
    let stray = AccountId::new();
    let domain = DomainId::new();
    let records = raw
        .iter()
        .map(|(acc, day, svc, region, mantissa, scale, eur)| CostRecord {
            domain,
            service_account: if *acc == 3 {
                stray
            } else {
                accounts[*acc as usize].id
            },
            provider: if *acc == 2 {
                ProviderKind::File
            } else {
                ProviderKind::HyperbillingAws
            },
            cloud_account: format!("{acc:012}"),
            date: base + chrono::Duration::days(i64::from(*day)),
            region: REGIONS[*region as usize].into(),
            service: SERVICES[*svc as usize].into(),
            usage_type: "u".into(),
            instance_type: None,
            usage_quantity: Decimal::ONE,
            cost: Money::new(
                Decimal::new(*mantissa, u32::from(*scale)),
                if *eur {
                    Currency::parse("EUR").unwrap()
                } else {
                    Currency::USD
                },
            ),
            effective_cost: None,
            list_cost: None,
            charge_category: if *mantissa < 0 {
                ChargeCategory::Credit
            } else {
                ChargeCategory::Usage
            },
            // Tags vary with the record: some have none, some one key, some both.
            tags: match (day % 4, svc) {
                (0, _) => BTreeMap::new(),
                (1, _) => BTreeMap::from([("team".to_owned(), TEAMS[*svc as usize].to_owned())]),
                (_, s) => BTreeMap::from([
                    ("team".to_owned(), TEAMS[(*s as usize + 1) % 3].to_owned()),
                    (
                        "env".to_owned(),
                        if *eur { "prod" } else { "dev" }.to_owned(),
                    ),
                ]),
            },
            // FOCUS attributes: a category per service, a zone per region (none without a
            // region), a SKU per (service, account).
            attributes: {
                let mut a = cloudbill_core::Attributes::new();
                a.insert(
                    cloudbill_core::Attribute::ServiceCategory,
                    ["Compute", "Storage", "Compute"][*svc as usize].to_owned(),
                );
                if !REGIONS[*region as usize].is_empty() {
                    a.insert(
                        cloudbill_core::Attribute::AvailabilityZone,
                        format!("{}a", REGIONS[*region as usize]),
                    );
                }
                a.insert(cloudbill_core::Attribute::SkuId, format!("SKU-{svc}-{acc}"));
                a
            },
            measures: std::collections::BTreeMap::new(),
            extensions: std::collections::BTreeMap::new(),
        })
        .collect();
    World {
        catalog: Catalog {
            accounts,
            projects,
            groups,
        },
        records,
    }
}

/// The reference: a plain loop over records, Decimal sums in BTreeMaps.
fn naive(w: &World, q: &Query) -> BTreeMap<(Vec<String>, String, String), Decimal> {
    let group_of = |p: ProjectId| {
        w.catalog
            .projects
            .iter()
            .find(|x| x.id == p)
            .and_then(|x| x.group)
    };
    let mut out = BTreeMap::new();
    for r in &w.records {
        if !q.range.contains(r.date) {
            continue;
        }
        let account = w
            .catalog
            .accounts
            .iter()
            .find(|a| a.id == r.service_account);
        let project = account.and_then(|a| ServiceAccount::project_on(&a.history, r.date));
        let project_name = project
            .and_then(|p| w.catalog.projects.iter().find(|x| x.id == p))
            .map_or("(unassigned)".to_string(), |p| p.name.clone());
        let group_name = project
            .and_then(group_of)
            .and_then(|g| w.catalog.groups.iter().find(|x| x.id == g))
            .map_or("(none)".to_string(), |g| g.name.clone());
        let value = |k: &GroupKey| -> String {
            match k {
                GroupKey::Tag(t) => r.tags.get(t.key()).cloned().unwrap_or("(none)".into()),
                GroupKey::Attribute(a) => r.attributes.get(a).cloned().unwrap_or("(none)".into()),
                GroupKey::Provider => r.provider.as_str().into(),
                GroupKey::Project => project_name.clone(),
                GroupKey::ProjectGroup => group_name.clone(),
                GroupKey::ServiceAccount => {
                    account.map_or(r.service_account.to_string(), |a| a.name.clone())
                }
                GroupKey::CloudAccount => r.cloud_account.clone(),
                GroupKey::Region => r.region.clone(),
                GroupKey::Service => r.service.clone(),
                GroupKey::UsageType => r.usage_type.clone(),
                GroupKey::InstanceType => "(none)".into(),
                GroupKey::Currency => r.currency().to_string(),
                GroupKey::ChargeCategory => r.charge_category.to_string(),
            }
        };
        let mut pass = true;
        for (k, vals) in &q.filters {
            let ok = match k {
                GroupKey::ProjectGroup => {
                    // The group or any group below it.
                    let mut g = project.and_then(group_of);
                    let mut hit = false;
                    while let Some(id) = g {
                        let node = w.catalog.groups.iter().find(|x| x.id == id).unwrap();
                        if vals.contains(&node.name) {
                            hit = true;
                        }
                        g = node.parent;
                    }
                    hit
                }
                _ => vals.contains(&value(k)),
            };
            pass &= ok;
        }
        if !pass {
            continue;
        }
        let group: Vec<String> = q.group_by.iter().map(&value).collect();
        let bucket = q.granularity.label(r.date);
        *out.entry((group, bucket, r.currency().to_string()))
            .or_insert(Decimal::ZERO) += r.cost.amount();
    }
    out.retain(|_, _| true);
    out
}

/// Encodes records per (account, month), as the store does — each month in two segments when
/// it has more than one record, as a big import writes them.
fn partitions(records: &[CostRecord]) -> Vec<(AccountId, Vec<u8>)> {
    use chrono::Datelike;
    let mut groups: BTreeMap<(NaiveDate, AccountId), Vec<&CostRecord>> = BTreeMap::new();
    for r in records {
        groups
            .entry((r.date.with_day(1).unwrap(), r.service_account))
            .or_default()
            .push(r);
    }
    // Deliberately not in month order: the engine must sort.
    let mut out: Vec<(AccountId, Vec<u8>)> = groups
        .into_iter()
        .flat_map(|((month, account), rows)| {
            rows.chunks(rows.len().div_ceil(2))
                .map(|half| {
                    (
                        account,
                        cloudbill_columnar::encode_partition(month, half).into_bytes(),
                    )
                })
                .collect::<Vec<_>>()
        })
        .collect();
    out.reverse();
    out
}

fn flatten(q: &Query, report: &Report) -> BTreeMap<(Vec<String>, String, String), Decimal> {
    let mut out = BTreeMap::new();
    for row in &report.results {
        let group: Vec<String> = q
            .group_by
            .iter()
            .map(|k| row.group[k.as_str()].clone())
            .collect();
        for b in &row.billing_data {
            let prev = out.insert(
                (group.clone(), b.date.clone(), b.currency.to_string()),
                b.cost,
            );
            assert!(prev.is_none(), "duplicate cell");
        }
    }
    out
}

fn raw_records() -> impl Strategy<Value = Vec<(u8, u16, u8, u8, i64, u8, bool)>> {
    prop::collection::vec(
        (
            0u8..4,
            0u16..90,
            0u8..3,
            0u8..3,
            -5_000_000_000_000i64..50_000_000_000_000,
            0u8..12,
            prop::bool::weighted(0.15),
        ),
        0..300,
    )
}

fn query_strategy() -> impl Strategy<Value = Query> {
    let mut all = GroupKey::ALL.to_vec();
    all.extend([
        GroupKey::tag("team").unwrap(),
        GroupKey::tag("env").unwrap(),
    ]);
    let keys = prop::sample::subsequence(all, 0..=3).prop_shuffle();
    let filters = prop::collection::btree_map(
        prop::sample::select(vec![
            GroupKey::Project,
            GroupKey::ProjectGroup,
            GroupKey::Region,
            GroupKey::Service,
            GroupKey::Currency,
            GroupKey::tag("team").unwrap(),
            GroupKey::tag("env").unwrap(),
            "service_category".parse().unwrap(),
            "availability_zone".parse().unwrap(),
        ]),
        prop::collection::vec(
            prop::sample::select(vec![
                "web",
                "api",
                "eng",
                "platform",
                "us-east-1",
                "AmazonS3",
                "EUR",
                "USD",
                "web-team",
                "data-team",
                "prod",
                "(none)",
                "Compute",
                "us-east-1a",
            ]),
            1..3,
        ),
        0..2,
    );
    (0i64..80, 1i64..100, 0usize..3, keys, filters).prop_map(
        |(start, len, g, group_by, filters)| {
            let s = date("2025-01-01") + chrono::Duration::days(start);
            let mut q = Query::new(
                DateRange::new(s, s + chrono::Duration::days(len)).unwrap(),
                [
                    Granularity::Daily,
                    Granularity::Monthly,
                    Granularity::Yearly,
                ][g],
            );
            q.group_by = group_by;
            // Keep only filter values that make sense for the key (others are refused, tested below).
            q.filters = filters
                .into_iter()
                .filter_map(|(k, vals)| {
                    let ok: Vec<String> = vals
                        .into_iter()
                        .filter(|v| match &k {
                            GroupKey::Project => ["web", "api"].contains(v),
                            GroupKey::ProjectGroup => ["eng", "platform"].contains(v),
                            _ => true,
                        })
                        .map(str::to_owned)
                        .collect();
                    (!ok.is_empty()).then_some((k, ok))
                })
                .collect();
            q
        },
    )
}

/// An answer's JSON as [`Answer::write_json`] writes it.
fn json_of(answer: &Answer) -> String {
    let mut out = Vec::new();
    answer.write_json(&mut out).unwrap();
    String::from_utf8(out).unwrap()
}

/// `q`'s answer written as JSON is the report's JSON, byte for byte, or both fail alike.
fn assert_json_is_the_reports(engine: &Engine, q: &Query) {
    let direct = engine.answer(q).and_then(|a| {
        let mut out = Vec::new();
        a.write_json(&mut out)
            .map(|()| String::from_utf8(out).unwrap())
    });
    match (engine.query(q), direct) {
        (Ok(report), Ok(json)) => assert_eq!(json, serde_json::to_string(&report).unwrap()),
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
        (a, b) => panic!("the report {a:?} and its JSON {b:?} disagree"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn engine_equals_the_reference(raw in raw_records(), q in query_strategy()) {
        let w = world(&raw);
        let engine = Engine::build(&w.records, w.catalog.clone()).unwrap();
        let report = engine.query(&q).unwrap();
        let expected = naive(&w, &q);
        // The answer written as JSON straight from its sums is the report's JSON, byte for byte.
        prop_assert_eq!(json_of(&engine.answer(&q).unwrap()), serde_json::to_string(&report).unwrap());
        prop_assert_eq!(flatten(&q, &report), expected.clone());
        prop_assert_eq!(report.total_count, report.results.len());
        // The same answer from the store's columnar partitions.
        let from_parts = Engine::from_partitions(&partitions(&w.records), w.catalog.clone()).unwrap();
        prop_assert_eq!(flatten(&q, &from_parts.query(&q).unwrap()), expected);
    }

    #[test]
    fn order_does_not_matter(raw in raw_records(), q in query_strategy(), seed in any::<u64>()) {
        let w = world(&raw);
        let mut shuffled = w.records.clone();
        let n = shuffled.len();
        if n > 1 {
            let mut s = seed;
            for i in (1..n).rev() {
                s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                shuffled.swap(i, (s >> 33) as usize % (i + 1));
            }
        }
        let a = Engine::build(&w.records, w.catalog.clone()).unwrap().query(&q).unwrap();
        let b = Engine::build(&shuffled, w.catalog.clone()).unwrap().query(&q).unwrap();
        prop_assert_eq!(flatten(&q, &a), flatten(&q, &b));
    }

    #[test]
    fn halves_add_up_to_the_whole(raw in raw_records(), split in 1i64..89) {
        let w = world(&raw);
        let engine = Engine::build(&w.records, w.catalog.clone()).unwrap();
        let s = date("2025-01-01");
        let m = s + chrono::Duration::days(split);
        let e = s + chrono::Duration::days(90);
        let total = |a, b| {
            let q = Query::new(DateRange::new(a, b).unwrap(), Granularity::Yearly);
            let r = engine.query(&q).unwrap();
            r.totals().into_iter().map(|x| (x.currency, x.cost)).collect::<BTreeMap<_, _>>()
        };
        let whole = total(s, e);
        let mut halves = total(s, m);
        for (c, v) in total(m, e) {
            *halves.entry(c).or_insert(Decimal::ZERO) += v;
        }
        prop_assert_eq!(whole, halves);
    }

    #[test]
    fn consolidated_equals_the_sum_of_projects(raw in raw_records()) {
        let w = world(&raw);
        let engine = Engine::build(&w.records, w.catalog.clone()).unwrap();
        let range = DateRange::parse("2025-01-01", "2025-04-01").unwrap();
        let consolidated = engine.query(&Query::new(range, Granularity::Monthly)).unwrap();
        let mut by_project = Query::new(range, Granularity::Monthly);
        by_project.group_by = vec![GroupKey::Project];
        let per_project = engine.query(&by_project).unwrap();
        prop_assert_eq!(consolidated.totals(), per_project.totals());
        prop_assert!(consolidated.results.len() <= 1);
    }
}

#[test]
fn a_million_records_sum_exactly() {
    let account = AccountId::new();
    let project = ProjectId::new();
    let catalog = Catalog {
        accounts: vec![CatalogAccount {
            id: account,
            name: "a".into(),
            history: vec![Assignment {
                project,
                from: None,
            }],
        }],
        projects: vec![CatalogProject {
            id: project,
            name: "p".into(),
            group: None,
        }],
        groups: vec![],
    };
    let domain = DomainId::new();
    let base = date("2025-01-01");
    let n: i64 = 1_000_000;
    let records: Vec<CostRecord> = (0..n)
        .map(|i| CostRecord {
            domain,
            service_account: account,
            provider: ProviderKind::HyperbillingAws,
            cloud_account: "1".into(),
            date: base + chrono::Duration::days(i % 365),
            region: "us-east-1".into(),
            service: SERVICES[usize::try_from(i % 3).unwrap()].into(),
            usage_type: "u".into(),
            instance_type: None,
            usage_quantity: Decimal::ONE,
            // 10-digit decimals; every 50th line a credit.
            cost: Money::new(
                if i % 50 == 0 {
                    Decimal::new(-5_000_000_001, 10)
                } else {
                    Decimal::new(12_345_678_901 + i % 1000, 10)
                },
                Currency::USD,
            ),
            effective_cost: None,
            list_cost: None,
            charge_category: ChargeCategory::Usage,
            tags: BTreeMap::new(),
            attributes: std::collections::BTreeMap::new(),
            measures: std::collections::BTreeMap::new(),
            extensions: std::collections::BTreeMap::new(),
        })
        .collect();
    // Closed form: 20,000 credits of -0.5000000001; 980,000 lines of 1.2345678901 plus
    // (i mod 1000) × 1e-10, where the i ≡ 0 (mod 50) lines are the credits.
    let credits = Decimal::new(-5_000_000_001, 10) * Decimal::from(20_000);
    let per_thousand_offsets: i64 = (0..1000).filter(|k| k % 50 != 0).sum();
    let base_lines = Decimal::new(12_345_678_901, 10) * Decimal::from(980_000);
    let offsets = Decimal::new(per_thousand_offsets * 1000, 10);
    let expected = credits + base_lines + offsets;
    assert_eq!(expected.to_string(), "1199876.5812960000");
    let engine = Engine::build(&records, catalog).unwrap();
    let q = Query::new(
        DateRange::parse("2025-01-01", "2026-01-01").unwrap(),
        Granularity::Yearly,
    );
    let report = engine.query(&q).unwrap();
    assert_eq!(
        report.results[0].total[0].cost.to_string(),
        expected.to_string()
    );
}

#[test]
fn the_loader_takes_partitions_in_month_order_only() {
    let w = world(&[(0, 40, 0, 0, 5, 0, false), (0, 80, 1, 0, 7, 0, false)]);
    let parts = partitions(&w.records);
    let month_of = |blob: &[u8]| cloudbill_columnar::Partition::decode(blob).unwrap().month;
    let mut sorted = parts.clone();
    sorted.sort_by_key(|(_, blob)| month_of(blob));
    assert_ne!(month_of(&sorted[0].1), month_of(&sorted[1].1));
    let mut loader = Engine::loader(w.catalog.clone());
    for (account, blob) in &sorted {
        loader.add(*account, blob).unwrap();
    }
    assert_eq!(loader.finish().len(), 2);
    let mut backwards = Engine::loader(w.catalog.clone());
    backwards.add(sorted[1].0, &sorted[1].1).unwrap();
    let err = backwards.add(sorted[0].0, &sorted[0].1).unwrap_err();
    assert!(matches!(err, QueryError::Corrupt(_)), "{err}");
    assert!(matches!(
        Engine::loader(w.catalog.clone()).add(sorted[0].0, b"CBP2 damaged"),
        Err(QueryError::Corrupt(_))
    ));
    // An engine loaded for one query's dimensions answers it like a full one, and refuses a
    // query needing a dimension it left out.
    let full = Engine::from_partitions(&parts, w.catalog.clone()).unwrap();
    let mut lean = Engine::loader(w.catalog.clone()).only(&[GroupKey::Project, GroupKey::Region]);
    for (account, blob) in &sorted {
        lean.add(*account, blob).unwrap();
    }
    let lean = lean.finish();
    let mut q = Query::new(
        DateRange::new(date("2025-01-01"), date("2025-06-01")).unwrap(),
        Granularity::Monthly,
    );
    q.group_by = vec![GroupKey::Project, GroupKey::Region, GroupKey::Currency];
    assert_eq!(lean.query(&q).unwrap(), full.query(&q).unwrap());
    q.group_by = vec![GroupKey::Service];
    assert!(matches!(lean.query(&q), Err(QueryError::NotLoaded(_))));
    q.group_by = vec![];
    q.filters.insert(GroupKey::UsageType, vec!["x".into()]);
    assert!(matches!(lean.query(&q), Err(QueryError::NotLoaded(_))));
}

/// Twelve records over three accounts, two services and three regions, spread over years
/// of days: enough groups to page and to bound.
fn twelve_records() -> Engine {
    let raw: Vec<(u8, u16, u8, u8, i64, u8, bool)> = (0..12u8)
        .map(|i| {
            (
                i % 3,
                10 + u16::from(i) * 20,
                i % 2,
                (i / 3) % 3,
                5 + i64::from(i),
                0,
                false,
            )
        })
        .collect();
    let w = world(&raw);
    Engine::build(&w.records, w.catalog.clone()).unwrap()
}

#[test]
fn offset_and_limit_page_through_the_sorted_answer() {
    let engine = twelve_records();
    let mut q = Query::new(
        DateRange::new(date("2024-01-01"), date("2027-01-01")).unwrap(),
        Granularity::Yearly,
    );
    q.group_by = vec![
        GroupKey::ServiceAccount,
        GroupKey::Region,
        GroupKey::Service,
    ];
    let whole = engine.query(&q).unwrap();
    assert!(whole.results.len() >= 3, "enough groups to page");
    let mut paged = Vec::new();
    for page in 0.. {
        q.limit = Some(2);
        q.offset = page * 2;
        let r = engine.query(&q).unwrap();
        assert_eq!(
            r.total_count, whole.total_count,
            "the whole answer's count on every page"
        );
        assert_json_is_the_reports(&engine, &q);
        q.sort = Sort::Key;
        assert_json_is_the_reports(&engine, &q);
        q.sort = Sort::Total;
        if r.results.is_empty() {
            break;
        }
        paged.extend(r.results);
    }
    assert_eq!(paged, whole.results, "the pages are the answer, in order");
    q.offset = u32::MAX;
    assert!(engine.query(&q).unwrap().results.is_empty());
}

/// Names with quotes, backslashes, control characters and non-ASCII text, a key named
/// twice, values without a key's value (`null`), negative sums: the JSON written from the
/// sums is the report's, byte for byte.
#[test]
fn an_answers_json_is_its_reports_for_any_names() {
    let raw: Vec<(u8, u16, u8, u8, i64, u8, bool)> = (0..40u8)
        .map(|i| {
            (
                i % 3,
                u16::from(i) * 3,
                i % 2,
                i % 3,
                7 - i64::from(i),
                i % 4,
                i % 5 == 0,
            )
        })
        .collect();
    let mut w = world(&raw);
    for (p, name) in
        w.catalog
            .projects
            .iter_mut()
            .zip(["we\"b", "a\\p\ni\u{1}", "données €", "\u{7f}\t/<tag>"])
    {
        p.name = name.into();
    }
    let engine = Engine::build(&w.records, w.catalog.clone()).unwrap();
    for g in [
        Granularity::Daily,
        Granularity::Monthly,
        Granularity::Yearly,
    ] {
        for group_by in [
            vec![],
            vec![GroupKey::Project],
            vec![GroupKey::Service, GroupKey::Project, GroupKey::Currency],
            vec![GroupKey::InstanceType, GroupKey::tag("team").unwrap()],
            vec![GroupKey::Project, GroupKey::Project],
        ] {
            let mut q = Query::new(DateRange::parse("2025-01-01", "2025-05-01").unwrap(), g);
            q.group_by = group_by;
            assert_json_is_the_reports(&engine, &q);
            q.limit = Some(3);
            q.offset = 1;
            assert_json_is_the_reports(&engine, &q);
        }
    }
}

#[test]
fn many_sparse_cells_sum_exactly_on_every_scan_path() {
    // Daily over three years × three keys: more cells than the dense scan takes for so few
    // rows (the hashed i128 path), with and without the answer bound, built and loaded.
    let raw: Vec<(u8, u16, u8, u8, i64, u8, bool)> = (0..300u16)
        .map(|i| {
            let i8_ = u8::try_from(i % 251).unwrap();
            (
                i8_ % 3,
                i * 3,
                i8_ % 2,
                i8_ % 3,
                1 + i64::from(i) * 7919,
                i8_ % 4,
                i % 17 == 0,
            )
        })
        .collect();
    let w = world(&raw);
    let mut q = Query::new(
        DateRange::new(date("2024-01-01"), date("2027-01-01")).unwrap(),
        Granularity::Daily,
    );
    q.group_by = vec![
        GroupKey::ServiceAccount,
        GroupKey::Region,
        GroupKey::Service,
    ];
    let expected = naive(&w, &q);
    assert!(!expected.is_empty());
    for engine in [
        Engine::build(&w.records, w.catalog.clone()).unwrap(),
        Engine::from_partitions(&partitions(&w.records), w.catalog.clone()).unwrap(),
    ] {
        assert_eq!(flatten(&q, &engine.query(&q).unwrap()), expected);
        let mut bounded = q.clone();
        bounded.max_cells = Some(1_000_000);
        assert_eq!(flatten(&q, &engine.query(&bounded).unwrap()), expected);
        bounded.max_cells = Some(3);
        assert!(matches!(
            engine.query(&bounded),
            Err(QueryError::AnswerTooLarge { .. })
        ));
    }
}

#[test]
fn a_cancelled_query_stops_with_cancelled() {
    let raw: Vec<(u8, u16, u8, u8, i64, u8, bool)> = (0..12u8)
        .map(|i| (i % 3, 10 + u16::from(i) * 20, i % 2, 0, 5, 0, false))
        .collect();
    let w = world(&raw);
    let engine = Engine::from_partitions(&partitions(&w.records), w.catalog.clone()).unwrap();
    let mut q = Query::new(
        DateRange::new(date("2024-01-01"), date("2027-01-01")).unwrap(),
        Granularity::Monthly,
    );
    let go = std::sync::atomic::AtomicBool::new(false);
    let stop = std::sync::atomic::AtomicBool::new(true);
    for keys in [vec![], vec![GroupKey::ServiceAccount, GroupKey::Region]] {
        q.group_by = keys;
        assert_eq!(
            engine.query_until(&q, &go).unwrap(),
            engine.query(&q).unwrap()
        );
        assert!(matches!(
            engine.query_until(&q, &stop),
            Err(QueryError::Cancelled)
        ));
    }
}

#[test]
fn an_answer_over_max_cells_is_refused_and_a_page_of_it_is_not() {
    let engine = twelve_records();
    let mut q = Query::new(
        DateRange::new(date("2024-01-01"), date("2027-01-01")).unwrap(),
        Granularity::Daily,
    );
    q.group_by = vec![GroupKey::ServiceAccount, GroupKey::Service];
    let whole = engine.query(&q).unwrap();
    // Amounts: each period's and each total.
    let cells: usize = whole
        .results
        .iter()
        .map(|r| r.billing_data.len() + r.total.len())
        .sum();
    assert!(cells > 4, "{cells}");
    q.max_cells = Some(cells as u64);
    assert_eq!(
        engine.query(&q).unwrap(),
        whole,
        "at the bound: answered whole"
    );
    q.max_cells = Some(cells as u64 - 1);
    match engine.query(&q) {
        Err(QueryError::AnswerTooLarge { cells: c, max }) => {
            assert_eq!((c, max), (cells as u64, cells as u64 - 1));
        }
        other => panic!("expected AnswerTooLarge, got {other:?}"),
    }
    // A page under the bound is answered: the first row alone.
    q.limit = Some(1);
    let first = engine.query(&q).unwrap();
    assert_eq!(first.results, whole.results[..1]);
    assert_eq!(first.total_count, whole.total_count);
    // A page whose rows hold more than the bound is refused too.
    q.max_cells = Some(whole.results[0].billing_data.len() as u64);
    assert!(matches!(
        engine.query(&q),
        Err(QueryError::AnswerTooLarge { .. })
    ));
}

#[test]
fn an_engine_loaded_for_effective_cost_sums_it_and_falls_back_to_billed() {
    let mut w = world(&[(0, 40, 0, 0, 5, 0, false), (0, 80, 1, 0, 7, 0, false)]);
    // Every third record has an EffectiveCost (a third of its billed cost, to 10 decimals).
    let mut expected: BTreeMap<String, Decimal> = BTreeMap::new();
    for (i, r) in w.records.iter_mut().enumerate() {
        if i % 3 == 0 {
            r.effective_cost = Some((r.cost.amount() / Decimal::from(3)).round_dp(10));
        }
        *expected.entry(r.currency().to_string()).or_default() +=
            r.effective_cost.unwrap_or(r.cost.amount());
    }
    let mut parts = partitions(&w.records);
    parts.sort_by_key(|(_, blob)| cloudbill_columnar::Partition::decode(blob).unwrap().month);
    let mut loader =
        Engine::loader(w.catalog.clone()).metric(cloudbill_core::CostMetric::Effective);
    for (account, blob) in &parts {
        loader.add(*account, blob).unwrap();
    }
    let engine = loader.finish();
    let mut q = Query::new(
        DateRange::new(date("2024-01-01"), date("2027-01-01")).unwrap(),
        Granularity::Yearly,
    );
    q.group_by = vec![GroupKey::Currency];
    // The billed engine refuses an effective query and the other way round.
    assert!(matches!(
        engine.query(&q),
        Err(QueryError::OtherMetric { .. })
    ));
    q.metric = cloudbill_core::CostMetric::Effective;
    let report = engine.query(&q).unwrap();
    let got: BTreeMap<String, Decimal> = report
        .results
        .iter()
        .flat_map(|r| r.total.iter().map(|t| (t.currency.to_string(), t.cost)))
        .fold(BTreeMap::new(), |mut m, (c, v)| {
            *m.entry(c).or_default() += v;
            m
        });
    assert_eq!(got, expected);
    let billed = Engine::from_partitions(&parts, w.catalog.clone()).unwrap();
    assert!(matches!(
        billed.query(&q),
        Err(QueryError::OtherMetric { .. })
    ));
}

#[test]
fn errors_are_specific() {
    let w = world(&[(0, 1, 0, 0, 100, 2, false)]);
    let engine = Engine::build(&w.records, w.catalog.clone()).unwrap();
    let range = DateRange::parse("2025-01-01", "2025-02-01").unwrap();
    let mut q = Query::new(range, Granularity::Daily);
    q.limit = Some(0);
    assert_eq!(engine.query(&q).unwrap_err(), QueryError::ZeroLimit);
    let mut q = Query::new(range, Granularity::Daily);
    q.filters.insert(GroupKey::Project, vec!["nope".into()]);
    assert_eq!(
        engine.query(&q).unwrap_err().to_string(),
        "unknown project \"nope\" in filter"
    );
    let err = "colour".parse::<GroupKey>().unwrap_err();
    assert!(
        err.to_string()
            .starts_with("unknown key \"colour\" (expected one of: provider, project"),
        "{err}"
    );
    assert_eq!(
        "Project-Group".parse::<GroupKey>().unwrap(),
        GroupKey::ProjectGroup
    );
}

#[test]
fn empty_ranges_give_empty_results_and_json_has_the_documented_shape() {
    let w = world(&[
        (1, 1, 0, 0, 12_345_600_000_000, 10, false),
        (1, 35, 1, 1, -1, 10, false),
    ]);
    let engine = Engine::build(&w.records, w.catalog.clone()).unwrap();
    let empty = engine
        .query(&Query::new(
            DateRange::parse("2030-01-01", "2030-02-01").unwrap(),
            Granularity::Monthly,
        ))
        .unwrap();
    assert!(empty.results.is_empty());
    assert_eq!(empty.total_count, 0);
    let mut q = Query::new(
        DateRange::parse("2025-01-01", "2025-04-01").unwrap(),
        Granularity::Monthly,
    );
    q.group_by = vec![GroupKey::Project];
    q.sort = Sort::Key;
    q.limit = Some(5);
    let json = serde_json::to_value(engine.query(&q).unwrap()).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "start": "2025-01-01", "end": "2025-04-01", "granularity": "MONTHLY", "group_by": ["project"],
            "results": [{"group": {"project": "data"},
                          "billing_data": [{"date": "2025-01", "cost": "1234.5600000000", "currency": "USD"},
                                           {"date": "2025-02", "cost": "-0.0000000001", "currency": "USD"}],
                          "total": [{"cost": "1234.5599999999", "currency": "USD"}]}],
            "total_count": 1
        })
    );
}

/// Regression (#13): two amounts each within Decimal's range made every report fail with
/// "sum overflow" — for every range and project, because one record with 10 decimals put the
/// whole engine at a scale where they left i128. Now sums are exact in 256 bits and only a
/// total that no decimal can hold fails, naming where it is.
#[test]
fn amounts_at_decimals_limit_fail_only_the_totals_that_cannot_be_written() {
    let mut w = world(&[
        (1, 0, 0, 0, 1, 0, false),
        (1, 1, 0, 0, 1, 0, false),
        (1, 3, 0, 0, 1, 0, false),
        (2, 2, 1, 0, 1, 10, false),
    ]);
    let max = Decimal::MAX;
    for (r, amount) in w.records.iter_mut().zip([max, max, -max]) {
        r.cost = Money::new(amount, Currency::USD);
    }
    let engines = [
        Engine::build(&w.records, w.catalog.clone()).unwrap(),
        Engine::from_partitions(&partitions(&w.records), w.catalog.clone()).unwrap(),
    ];
    let month = DateRange::parse("2025-01-01", "2025-02-01").unwrap();
    let project = |name: &str, range: DateRange| {
        let mut q = Query::new(range, Granularity::Monthly);
        q.filters.insert(GroupKey::Project, vec![name.into()]);
        q
    };
    for engine in &engines {
        // Every query below, written straight from its sums as from its report (both fail
        // alike where a total cannot be written).
        for (range, g) in [
            (month, Granularity::Monthly),
            (month, Granularity::Daily),
            (
                DateRange::parse("2025-01-01", "2025-01-03").unwrap(),
                Granularity::Daily,
            ),
        ] {
            let mut q = Query::new(range, g);
            assert_json_is_the_reports(engine, &q);
            q.group_by = vec![GroupKey::Project, GroupKey::Service];
            assert_json_is_the_reports(engine, &q);
            for name in ["data", "ops"] {
                q.filters.insert(GroupKey::Project, vec![name.into()]);
                assert_json_is_the_reports(engine, &q);
            }
        }
        // The other project is untouched by the huge amounts.
        let ops = engine.query(&project("ops", month)).unwrap();
        assert_eq!(ops.results[0].total[0].cost.to_string(), "0.0000000001");
        // MAX + MAX − MAX: the i128 sums overflow on the way, the 256-bit ones do not.
        let data = engine.query(&project("data", month)).unwrap();
        assert_eq!(data.results[0].total[0].cost, max);
        // Days 1–2 alone: each day is exact, their total (2 × MAX) cannot be written.
        let two_days = DateRange::parse("2025-01-01", "2025-01-03").unwrap();
        let mut daily = project("data", two_days);
        daily.granularity = Granularity::Daily;
        let err = engine.query(&daily).unwrap_err();
        assert!(
            matches!(&err, QueryError::TotalOutOfRange { date, .. } if date == "the whole range"),
            "{err}"
        );
        daily.range = DateRange::parse("2025-01-01", "2025-01-02").unwrap();
        assert_eq!(
            engine.query(&daily).unwrap().results[0].billing_data[0].cost,
            max
        );
        // The consolidated month: MAX + 0.0000000001 needs 39 digits.
        let err = engine
            .query(&Query::new(month, Granularity::Monthly))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "the total of the consolidated billing for 2025-01 in USD is too large to represent \
             exactly (an exact decimal holds 28-29 significant digits); narrow the query with \
             filters, a shorter range or a finer group-by"
        );
        // Grouped by project, the consolidated month fails only for the group that holds it.
        let mut by_project = Query::new(month, Granularity::Monthly);
        by_project.group_by = vec![GroupKey::Project];
        by_project
            .filters
            .insert(GroupKey::Project, vec!["ops".into(), "data".into()]);
        let report = engine.query(&by_project).unwrap();
        assert_eq!(report.results.len(), 2);
    }
}

/// #15: a partition whose costs share no scale within an i128 (Decimal::MAX beside 10^-28) is
/// stored wide by the codec; the engine loads it row by row in 256 bits and answers exactly as
/// from the records themselves.
#[test]
fn partitions_whose_costs_share_no_scale_load_exactly() {
    let mut w = world(&[
        (1, 0, 0, 0, 1, 0, false),
        (1, 1, 0, 0, 1, 0, false),
        (1, 2, 0, 0, 1, 0, false),
    ]);
    let amounts = [
        Decimal::MAX,
        "0.0000000000000000000000000001".parse::<Decimal>().unwrap(),
        "-1.50".parse::<Decimal>().unwrap(),
    ];
    for (r, amount) in w.records.iter_mut().zip(amounts) {
        r.cost = Money::new(amount, Currency::USD);
    }
    let refs: Vec<&CostRecord> = w.records.iter().collect();
    let month = date("2025-01-01");
    let whole = cloudbill_columnar::encode_partition(month, &refs).into_bytes();
    let p = cloudbill_columnar::Partition::decode(&whole).unwrap();
    assert!(p.costs().unwrap().is_wide(), "the codec stores them wide");
    let parts = vec![(w.records[0].service_account, whole)];
    let built = std::sync::Arc::new(Engine::build(&w.records, w.catalog.clone()).unwrap());
    let loaded = Engine::from_partitions(&parts, w.catalog.clone()).unwrap();
    let mut days = Vec::new();
    for (start, end) in [
        ("2025-01-01", "2025-01-02"),
        ("2025-01-02", "2025-01-03"),
        ("2025-01-03", "2025-01-04"),
    ] {
        let mut q = Query::new(DateRange::parse(start, end).unwrap(), Granularity::Daily);
        q.group_by = vec![GroupKey::Project];
        let a = built.query(&q).unwrap();
        let b = loaded.query(&q).unwrap();
        assert_eq!(flatten(&q, &a), flatten(&q, &b));
        days.push(format!("{start} {}", b.results[0].total[0].cost));
    }
    assert_eq!(
        days,
        [
            format!("2025-01-01 {}", Decimal::MAX),
            "2025-01-02 0.0000000000000000000000000001".to_owned(),
            "2025-01-03 -1.5000000000000000000000000000".to_owned(),
        ]
    );
    // Their sum needs more digits than a decimal holds: both engines say so, neither rounds.
    let q = Query::new(
        DateRange::parse("2025-01-01", "2025-01-04").unwrap(),
        Granularity::Monthly,
    );
    for engine in [&built, &loaded] {
        assert!(matches!(
            engine.query(&q),
            Err(QueryError::TotalOutOfRange { .. })
        ));
    }
}

/// #15: `tag_summary` lists each tag key of the selected records with its values and record
/// counts, as a plain count over the records says.
#[test]
fn tag_summary_counts_what_the_records_carry() {
    let raw: Vec<(u8, u16, u8, u8, i64, u8, bool)> = (0..120u16)
        .map(|i| ((i % 3) as u8, i % 60, (i % 3) as u8, 0, 100, 2, i % 5 == 0))
        .collect();
    let w = world(&raw);
    let mut q = Query::new(
        DateRange::parse("2025-01-10", "2025-02-20").unwrap(),
        Granularity::Monthly,
    );
    q.filters
        .insert(GroupKey::Project, vec!["web".into(), "api".into()]);
    let engines = [
        Engine::build(&w.records, w.catalog.clone()).unwrap(),
        Engine::from_partitions(&partitions(&w.records), w.catalog.clone()).unwrap(),
    ];
    // The reference: the records in range whose project (per the naive report) passes.
    let mut expected: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for r in &w.records {
        let mut one = q.clone();
        one.range = DateRange::new(r.date, r.date + chrono::Duration::days(1)).unwrap();
        if !q.range.contains(r.date) {
            continue;
        }
        let single = World {
            catalog: w.catalog.clone(),
            records: vec![r.clone()],
        };
        if naive(&single, &one).is_empty() {
            continue;
        }
        for (k, v) in &r.tags {
            *expected
                .entry(k.clone())
                .or_default()
                .entry(v.clone())
                .or_default() += 1;
        }
    }
    assert!(expected.contains_key("team") && expected.contains_key("env"));
    for engine in &engines {
        let summary = engine.tag_summary(&q).unwrap();
        let got: BTreeMap<String, BTreeMap<String, u64>> = summary
            .iter()
            .map(|s| {
                assert_eq!(s.value_count, s.values.len());
                assert_eq!(s.records, s.values.iter().map(|v| v.records).sum::<u64>());
                (
                    s.key.clone(),
                    s.values
                        .iter()
                        .map(|v| (v.value.clone(), v.records))
                        .collect(),
                )
            })
            .collect();
        assert_eq!(got, expected);
        // A key no record has: everything under (none), selectable as such.
        let mut absent = q.clone();
        absent.group_by = vec![GroupKey::tag("nope").unwrap()];
        let all = engine.query(&absent).unwrap();
        let mut plain = q.clone();
        plain.group_by = vec![];
        let consolidated = engine.query(&plain).unwrap();
        assert_eq!(all.results.len(), 1);
        assert_eq!(all.results[0].group["tag:nope"], "(none)");
        assert_eq!(all.results[0].total, consolidated.results[0].total);
        absent
            .filters
            .insert(GroupKey::tag("nope").unwrap(), vec!["x".into()]);
        assert!(engine.query(&absent).unwrap().results.is_empty());
        absent
            .filters
            .insert(GroupKey::tag("nope").unwrap(), vec!["(none)".into()]);
        assert_eq!(engine.query(&absent).unwrap().results.len(), 1);
    }
}

/// Partitions in the store's stream order: by month, then account.
fn store_order(mut parts: Vec<(AccountId, Vec<u8>)>) -> Vec<(AccountId, Vec<u8>)> {
    parts.sort_by_key(|(account, blob)| {
        (
            cloudbill_columnar::Partition::decode(blob).unwrap().month,
            *account,
        )
    });
    parts
}

/// Replaces `slices` of `old` (loaded from `old_records`) with those slices of `records` under
/// `catalog`, as a warm engine does after a sync.
fn updated(
    old: &std::sync::Arc<Engine>,
    catalog: Catalog,
    slices: &[(AccountId, Option<NaiveDate>)],
    records: &[CostRecord],
) -> Engine {
    use chrono::Datelike;
    let mut update = old
        .update(catalog, slices)
        .expect("a loaded engine updates");
    for (account, blob) in store_order(partitions(records)) {
        let month = cloudbill_columnar::Partition::decode(&blob).unwrap().month;
        if slices
            .iter()
            .any(|(a, m)| *a == account && m.is_none_or(|m| m == month.with_day(1).unwrap()))
        {
            update.add(account, &blob).unwrap();
        }
    }
    update.finish().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(150))]

    /// An engine updated in place — some (account, month) slices and whole accounts
    /// replaced, an account moved to another project, a project renamed — answers every
    /// query as an engine loaded whole from the same data and catalog; and it can be updated
    /// again.
    #[test]
    fn an_updated_engine_answers_as_a_full_load(
        old_raw in raw_records(),
        new_raw in raw_records(),
        replaced in prop::collection::vec((0u8..4, prop::option::of(0u32..3)), 0..5),
        moved in prop::option::of(1i64..90),
        q in query_strategy(),
    ) {
        use chrono::Datelike;
        let mut raw = old_raw.clone();
        raw.extend(&new_raw);
        let w = world(&raw);
        let (old_records, new_records) = w.records.split_at(old_raw.len());
        // Raw account index → the id the world gave it (indexes without records: no data).
        let ids: BTreeMap<u8, AccountId> = raw
            .iter()
            .zip(&w.records)
            .map(|(r, rec)| (r.0, rec.service_account))
            .collect();
        let slices: Vec<(AccountId, Option<NaiveDate>)> = replaced
            .iter()
            .filter_map(|(a, m)| {
                Some((*ids.get(a)?, m.map(|m| date("2025-01-01").with_month(m + 1).unwrap())))
            })
            .collect();
        let in_slices = |r: &CostRecord| {
            slices.iter().any(|(a, m)| {
                *a == r.service_account && m.is_none_or(|m| m == r.date.with_day(1).unwrap())
            })
        };
        let now: Vec<CostRecord> = old_records
            .iter()
            .filter(|r| !in_slices(r))
            .chain(new_records.iter().filter(|r| in_slices(r)))
            .cloned()
            .collect();
        let mut catalog = w.catalog.clone();
        if let Some(day) = moved {
            let to = catalog.projects[0].id;
            catalog.accounts[1].history.push(Assignment {
                project: to,
                from: Some(date("2025-01-01") + chrono::Duration::days(day)),
            });
            catalog.projects[2].name = "data-renamed".into();
        }
        let old = std::sync::Arc::new(
            Engine::from_partitions(&partitions(old_records), w.catalog.clone()).unwrap(),
        );
        let mut fresh = updated(&old, catalog.clone(), &slices, &now);
        // The same slices replaced again and again (same data): layers pile up, then are
        // copied into one engine at MAX_LAYERS.
        for i in 0..slices.len().min(1) * (cloudbill_aggregate::MAX_LAYERS + 2) {
            let again = [slices[i % slices.len()]];
            fresh = updated(&std::sync::Arc::new(fresh), catalog.clone(), &again, &now);
        }
        let full = Engine::from_partitions(&partitions(&now), catalog.clone()).unwrap();
        prop_assert_eq!(fresh.len(), full.len());
        let (a, b) = (fresh.query(&q), full.query(&q));
        match (a, b) {
            (Ok(a), Ok(b)) => {
                prop_assert_eq!(flatten(&q, &a), flatten(&q, &b));
                prop_assert_eq!(a.total_count, b.total_count);
                prop_assert_eq!(serde_json::to_value(&a).unwrap(), serde_json::to_value(&b).unwrap());
            }
            (a, b) => prop_assert_eq!(a.err().map(|e| e.to_string()), b.err().map(|e| e.to_string())),
        }
        prop_assert_eq!(
            format!("{:?}", fresh.tag_summary(&q)),
            format!("{:?}", full.tag_summary(&q))
        );
        // Allocated: the same over layers as over one load, with every total unchanged.
        let mut qa = q.clone();
        if !qa.group_by.contains(&GroupKey::Project) {
            qa.group_by.insert(0, GroupKey::Project);
        }
        let plain = full.query(&qa);
        qa.allocation = Some(std::sync::Arc::new(cloudbill_aggregate::Allocation {
            slices: vec![cloudbill_aggregate::Slice {
                rule: "s3".into(),
                from: date("2025-01-01"),
                until: None,
                source: BTreeMap::from([(GroupKey::Service, vec!["AmazonS3".into()])]),
                target: GroupKey::Project,
                targets: vec!["web".into(), "api".into(), "ops".into()],
                method: cloudbill_aggregate::Method::Proportional,
            }],
        }));
        match (fresh.query(&qa), full.query(&qa)) {
            (Ok(a), Ok(b)) => {
                prop_assert_eq!(serde_json::to_value(&a).unwrap(), serde_json::to_value(&b).unwrap());
                // (A filter on the target key selects what lands there: totals differ.)
                let reads = qa.filters.contains_key(&GroupKey::Project)
                    || qa.filters.contains_key(&GroupKey::ProjectGroup);
                if let (Ok(plain), false) = (plain, reads) {
                    // A cell whose whole cost moved out is dropped: compare non-zero totals.
                    let nonzero = |r: &cloudbill_aggregate::Report| {
                        r.totals().into_iter().filter(|t| !t.cost.is_zero()).collect::<Vec<_>>()
                    };
                    prop_assert_eq!(nonzero(&a), nonzero(&plain));
                }
            }
            (a, b) => prop_assert_eq!(a.err().map(|e| e.to_string()), b.err().map(|e| e.to_string())),
        }
        // Updated again (nothing replaced, the first catalog back): as a full load of it.
        let again = updated(&std::sync::Arc::new(fresh), w.catalog.clone(), &[], &[]);
        let full_again = Engine::from_partitions(&partitions(&now), w.catalog.clone()).unwrap();
        prop_assert_eq!(
            serde_json::to_value(again.query(&q).ok()).unwrap(),
            serde_json::to_value(full_again.query(&q).ok()).unwrap()
        );
    }
}

#[test]
fn an_engine_that_cannot_be_updated_says_so() {
    let w = world(&[(0, 1, 0, 0, 100, 2, false), (1, 40, 1, 1, 5, 0, true)]);
    let built = std::sync::Arc::new(Engine::build(&w.records, w.catalog.clone()).unwrap());
    assert!(
        built.update(w.catalog.clone(), &[]).is_none(),
        "built from records: no runs"
    );
    let mut partial = Engine::loader(w.catalog.clone()).only(&[GroupKey::Service]);
    for (account, blob) in store_order(partitions(&w.records)) {
        partial.add(account, &blob).unwrap();
    }
    assert!(
        std::sync::Arc::new(partial.finish())
            .update(w.catalog.clone(), &[])
            .is_none(),
        "columns left out"
    );
    // A partition of a slice that was not replaced would count twice: refused.
    let loaded = std::sync::Arc::new(
        Engine::from_partitions(&partitions(&w.records), w.catalog.clone()).unwrap(),
    );
    let mut update = loaded.update(w.catalog.clone(), &[]).unwrap();
    let (account, blob) = &partitions(&w.records)[0];
    assert!(matches!(
        update.add(*account, blob),
        Err(QueryError::Corrupt(_))
    ));
}

/// A one-slice re-sync goes beside the old rows as a layer (nothing copied); once replaced
/// rows weigh a quarter, the layers are copied into one engine; every step answers as a full
/// load.
#[test]
fn one_slice_updates_are_layered_then_copied_into_one() {
    use std::sync::Arc;
    // Three accounts, 90 days, every service and region: 810 records.
    let raw: Vec<_> = (0u8..3)
        .flat_map(|acc| {
            (0u16..90).flat_map(move |day| {
                (0u8..3).map(move |svc| (acc, day, svc, svc, i64::from(day) * 7 + 3, 2, false))
            })
        })
        .collect();
    let w = world(&raw);
    let mut q = Query::new(
        DateRange::new(date("2025-01-01"), date("2025-04-01")).unwrap(),
        Granularity::Monthly,
    );
    q.group_by = vec![GroupKey::ServiceAccount, GroupKey::tag("team").unwrap()];
    let full = Engine::from_partitions(&partitions(&w.records), w.catalog.clone()).unwrap();
    let want = serde_json::to_value(full.query(&q).unwrap()).unwrap();
    let mut accounts: Vec<AccountId> = w.records.iter().map(|r| r.service_account).collect();
    accounts.dedup();
    // Another (account, month) each time: each update's rows stay live beside the others.
    let slices: Vec<(AccountId, Option<NaiveDate>)> = ["2025-01-01", "2025-02-01", "2025-03-01"]
        .iter()
        .flat_map(|m| accounts.iter().map(move |a| (*a, Some(date(m)))))
        .collect();
    let mut engine =
        Arc::new(Engine::from_partitions(&partitions(&w.records), w.catalog.clone()).unwrap());
    let mut seen = Vec::new();
    for slice in slices
        .iter()
        .cycle()
        .take(cloudbill_aggregate::MAX_LAYERS + 1)
    {
        engine = Arc::new(updated(&engine, w.catalog.clone(), &[*slice], &w.records));
        seen.push(engine.layers());
        assert_eq!(engine.len(), full.len());
        assert_eq!(
            serde_json::to_value(engine.query(&q).unwrap()).unwrap(),
            want
        );
        assert_eq!(
            format!("{:?}", engine.tag_summary(&q)),
            format!("{:?}", full.tag_summary(&q))
        );
    }
    assert_eq!(seen[..2], [1, 2], "one layer more per update: {seen:?}");
    assert!(
        seen.contains(&0),
        "copied into one engine at MAX_LAYERS: {seen:?}"
    );
}
