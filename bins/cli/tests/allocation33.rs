//! Issue #33 with the real binary: a proportional rule over synced simulator data, checked
//! against an oracle computed here from the simulator's own lines (each day's Lambda cost
//! split by largest remainder at its 10 decimals), in JSON, CSV and the table; bad rules fail with a
//! specific message and nothing written; a change is a version shown by `allocation show`.

use std::collections::BTreeMap;

use cloudbill_core::{DateRange, Decimal, NaiveDate};

use crate::harness::Env;

/// `units` split by `weights` (not all zero): floors, then one unit each to the largest
/// remainders, ties to the earlier — written out independently of the engine's.
fn largest_remainder(units: i128, weights: &[i128]) -> Vec<i128> {
    let total: i128 = weights.iter().sum();
    let mut parts: Vec<i128> = weights.iter().map(|w| units * w / total).collect();
    let mut order: Vec<(i128, usize)> = weights
        .iter()
        .enumerate()
        .map(|(i, w)| (-(units * w % total), i))
        .collect();
    order.sort_unstable();
    let left = units - parts.iter().sum::<i128>();
    for (_, i) in order.into_iter().take(usize::try_from(left).unwrap()) {
        parts[i] += 1;
    }
    parts
}

fn scaled(d: Decimal) -> i128 {
    let mut d = d;
    d.rescale(10);
    d.mantissa()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proportional_rule_matches_the_oracle_in_every_format() {
    let env = Env::new().await;
    env.setup().await;
    let (start, end) = ("2025-05-01", "2025-06-01");
    env.run(&["sync", "--start", start, "--end", end]).await;
    let range = DateRange::parse(start, end).unwrap();

    // The oracle: per day, each project's own non-Lambda cost is the basis; every Lambda line
    // (of either project) is split across web and data by it, exactly.
    let projects = [("web", "111111111111"), ("data", "333333333333")];
    let mut basis: BTreeMap<NaiveDate, [i128; 2]> = BTreeMap::new();
    let mut lambda: Vec<(NaiveDate, usize, i128)> = Vec::new();
    for (p, (_, account)) in projects.iter().enumerate() {
        for line in env.sim.expected_lines(account, range) {
            if line.service == "AWSLambda" {
                lambda.push((line.date, p, scaled(line.cost)));
            } else {
                basis.entry(line.date).or_default()[p] += scaled(line.cost);
            }
        }
    }
    assert!(!lambda.is_empty());
    let mut expected: BTreeMap<(String, NaiveDate), i128> = BTreeMap::new();
    for (day, w) in &basis {
        for (p, (name, _)) in projects.iter().enumerate() {
            *expected.entry(((*name).to_owned(), *day)).or_default() += w[p];
        }
    }
    // The report groups by project only (the key the rule replaces): each day's Lambda cost
    // in USD is one amount to split.
    let mut per_day: BTreeMap<NaiveDate, (i128, usize)> = BTreeMap::new();
    for (day, own, cost) in &lambda {
        let e = per_day.entry(*day).or_insert((0, *own));
        e.0 += cost;
    }
    for (day, (cost, own)) in &per_day {
        let w = basis.get(day).copied().unwrap_or_default();
        let weights = [w[0].max(0), w[1].max(0)];
        if weights == [0, 0] {
            *expected
                .entry((projects[*own].0.to_owned(), *day))
                .or_default() += cost;
            continue;
        }
        let parts = largest_remainder(cost.abs(), &weights);
        for (p, part) in parts.iter().enumerate() {
            *expected
                .entry((projects[p].0.to_owned(), *day))
                .or_default() += cost.signum() * part;
        }
    }

    // Bad rules: exit 2, a specific message, nothing written.
    env.run(&[
        "allocation",
        "create",
        "x",
        "--source",
        "service=AWSLambda",
        "--target",
        "project=web,data",
        "--method",
        "fixed",
        "--weight",
        "web=50",
        "--weight",
        "data=49",
    ])
    .await
    .fails(2, "must sum to exactly 100");
    env.run(&[
        "allocation",
        "create",
        "x",
        "--source",
        "service=AWSLambda",
        "--target",
        "project=web,nope",
    ])
    .await
    .fails(1, "project \"nope\" not found");
    env.run(&[
        "allocation",
        "create",
        "x",
        "--source",
        "service",
        "--target",
        "project=web",
    ])
    .await
    .fails(2, "KEY=VALUE");
    let listed = env
        .run(&["allocation", "list", "--format", "json"])
        .await
        .ok()
        .json();
    assert_eq!(listed["allocations"], serde_json::json!([]));

    env.run(&[
        "allocation",
        "create",
        "lambda",
        "--source",
        "service=AWSLambda",
        "--target",
        "project=web,data",
        "--method",
        "proportional",
        "--start",
        "2025-01-01",
    ])
    .await
    .ok();
    let report = |format: &'static str| {
        [
            "report",
            "--start",
            start,
            "--end",
            end,
            "--granularity",
            "DAILY",
            "--group-by",
            "project",
            "--allocated",
            "--format",
            format,
        ]
    };
    let json = env.run(&report("json")).await.ok().json();
    let mut got: BTreeMap<(String, NaiveDate), i128> = BTreeMap::new();
    for row in json["results"].as_array().unwrap() {
        let project = row["group"]["project"].as_str().unwrap().to_owned();
        for b in row["billing_data"].as_array().unwrap() {
            let day = NaiveDate::parse_from_str(b["date"].as_str().unwrap(), "%Y-%m-%d").unwrap();
            let cost: Decimal = b["cost"].as_str().unwrap().parse().unwrap();
            got.insert((project.clone(), day), scaled(cost));
        }
    }
    expected.retain(|_, v| *v != 0);
    assert_eq!(got, expected, "per project and day, to the 10th decimal");

    // CSV: the same cells.
    let csv = env.run(&report("csv")).await.ok().stdout.clone();
    let mut from_csv: BTreeMap<(String, NaiveDate), i128> = BTreeMap::new();
    for line in csv.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let day = NaiveDate::parse_from_str(f[1], "%Y-%m-%d").unwrap();
        from_csv.insert((f[0].to_owned(), day), scaled(f[3].parse().unwrap()));
    }
    assert_eq!(from_csv, expected);
    // The table: each project's total over the month, as shown.
    let table = env
        .run(&[
            "report",
            "--start",
            start,
            "--end",
            end,
            "--group-by",
            "project",
            "--allocated",
            "--exact",
        ])
        .await
        .ok()
        .stdout
        .clone();
    for (name, _) in projects {
        let total: i128 = expected
            .iter()
            .filter(|((p, _), _)| p == name)
            .map(|(_, v)| v)
            .sum();
        let shown = Decimal::from_i128_with_scale(total, 10)
            .normalize()
            .to_string();
        let row = table.lines().find(|l| l.contains(name)).unwrap();
        assert!(row.contains(&shown), "{row:?} lacks {shown}");
    }

    // A change is a version, shown with who made it.
    env.run(&[
        "allocation",
        "update",
        "lambda",
        "--method",
        "even",
        "--start",
        "2025-05-15",
    ])
    .await
    .ok();
    let shown = env
        .run(&["allocation", "show", "lambda", "--format", "json"])
        .await
        .ok()
        .json();
    let versions = shown["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[1]["method"], "even");
    assert_eq!(versions[1]["start"], "2025-05-15");
    assert!(versions[1]["changed_by"]
        .as_str()
        .unwrap()
        .starts_with("cli"));
    // Before the change's start the proportional shares stand.
    let early = env
        .run(&[
            "report",
            "--start",
            start,
            "--end",
            "2025-05-15",
            "--granularity",
            "DAILY",
            "--group-by",
            "project",
            "--allocated",
            "--format",
            "json",
        ])
        .await
        .ok()
        .json();
    let web_early: Decimal = early["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["group"]["project"] == "web")
        .unwrap()["total"][0]["cost"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let want: i128 = expected
        .iter()
        .filter(|((p, d), _)| p == "web" && *d < cloudbill_core::parse_date("2025-05-15").unwrap())
        .map(|(_, v)| v)
        .sum();
    assert_eq!(scaled(web_early), want);
}
