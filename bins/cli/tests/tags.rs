//! #15: tags as report dimensions through the binary — `--group-by tag:KEY`, `--tag`,
//! `--filter`, `cloudbill tags` — against sums computed independently from the fixture.

use std::collections::BTreeMap;

use cloudbill_core::Decimal;

use crate::harness::Env;

fn fixture() -> String {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../crates/focus/tests/fixtures/tagged.csv")
        .display()
        .to_string()
}

/// The fixture's rows as (tags, currency, cost), read with the csv crate and serde_json, not
/// with cloudbill's importer. The FOCUS columns ServiceCategory, AvailabilityZone and SkuId
/// are added to the tags as `@Column` entries, so one helper sums by either.
fn rows() -> Vec<(BTreeMap<String, String>, String, Decimal)> {
    let mut reader = csv::Reader::from_path(fixture()).unwrap();
    let headers = reader.headers().unwrap().clone();
    let at = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let (tags, currency, cost) = (at("Tags"), at("BillingCurrency"), at("BilledCost"));
    let focus = ["ServiceCategory", "AvailabilityZone", "SkuId"].map(|c| (c, at(c)));
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            let mut t: BTreeMap<String, String> = if r[tags].is_empty() {
                BTreeMap::new()
            } else {
                serde_json::from_str(&r[tags]).unwrap()
            };
            for (name, i) in focus {
                if !r[i].is_empty() {
                    t.insert(format!("@{name}"), r[i].to_owned());
                }
            }
            (t, r[currency].to_owned(), r[cost].parse().unwrap())
        })
        .collect()
}

/// Independent sums per (value of `key`, currency), `(none)` for rows without it, of the rows
/// `keep` selects.
fn expected(
    key: &str,
    keep: impl Fn(&BTreeMap<String, String>) -> bool,
) -> BTreeMap<(String, String), Decimal> {
    let mut out = BTreeMap::new();
    for (tags, currency, cost) in rows() {
        if !keep(&tags) {
            continue;
        }
        let value = tags.get(key).cloned().unwrap_or_else(|| "(none)".into());
        *out.entry((value, currency)).or_default() += cost;
    }
    out
}

/// A report's totals per (value of `key`, currency).
fn got(report: &serde_json::Value, key: &str) -> BTreeMap<(String, String), Decimal> {
    let mut out = BTreeMap::new();
    for row in report["results"].as_array().unwrap() {
        for t in row["total"].as_array().unwrap() {
            out.insert(
                (
                    // Records without the key group under null in JSON.
                    match &row["group"][key] {
                        serde_json::Value::Null => "(none)".to_owned(),
                        v => {
                            assert_ne!(v, "(none)", "no value is null in JSON, not a string");
                            v.as_str().unwrap().to_owned()
                        }
                    },
                    t["currency"].as_str().unwrap().to_owned(),
                ),
                t["cost"].as_str().unwrap().parse().unwrap(),
            );
        }
    }
    out
}

/// `report --format json` over the fixture's two months, with `extra` flags.
async fn report(env: &Env, extra: &[&str]) -> serde_json::Value {
    let mut args = vec![
        "--format",
        "json",
        "report",
        "--start",
        "2025-03-01",
        "--end",
        "2025-05-01",
    ];
    args.extend_from_slice(extra);
    let out = env.run(&args).await;
    out.ok();
    out.json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_group_and_filter_by_tags_exactly() {
    let env = Env::new().await;
    env.file_account().await;
    env.run(&["import", "focus", &fixture(), "--account", "bill"])
        .await
        .ok();
    // Group by a tag: every value, and (none) for rows without it; keys are case-sensitive.
    for key in ["team", "env", "cost-center", "Team"] {
        let r = report(&env, &["--group-by", &format!("tag:{key}")]).await;
        assert_eq!(
            got(&r, &format!("tag:{key}")),
            expected(key, |_| true),
            "{key}"
        );
    }
    // FOCUS dimensions, the same way.
    for (key, column) in [
        ("service_category", "@ServiceCategory"),
        ("availability_zone", "@AvailabilityZone"),
        ("sku", "@SkuId"),
    ] {
        let r = report(&env, &["--group-by", key]).await;
        assert_eq!(got(&r, key), expected(column, |_| true), "{key}");
    }
    let r = report(
        &env,
        &["--group-by", "sku", "--filter", "service_category=Compute"],
    )
    .await;
    assert_eq!(
        got(&r, "sku"),
        expected("@SkuId", |t| t.get("@ServiceCategory").map(String::as_str)
            == Some("Compute"))
    );

    // Filter by a tag: values of one key OR, different keys AND, (none) for rows without it.
    let r = report(
        &env,
        &[
            "--group-by",
            "tag:team",
            "--tag",
            "team=web",
            "--tag",
            "team=(none)",
            "--tag",
            "env=prod",
        ],
    )
    .await;
    assert_eq!(
        got(&r, "tag:team"),
        expected("team", |t| {
            matches!(t.get("team").map(String::as_str), Some("web") | None)
                && t.get("env").map(String::as_str) == Some("prod")
        })
    );
    // --filter takes any key, tags too; a tag beside another dimension.
    let r = report(
        &env,
        &["--group-by", "tag:env,service", "--filter", "tag:env=dev"],
    )
    .await;
    let results = r["results"].as_array().unwrap();
    assert!(!results.is_empty());
    assert!(results.iter().all(|row| row["group"]["tag:env"] == "dev"));

    // The tags of the range: each key, its values, how many records carry each.
    let out = env
        .run(&[
            "--format",
            "json",
            "tags",
            "--start",
            "2025-03-01",
            "--end",
            "2025-05-01",
        ])
        .await;
    out.ok();
    let tags = out.json();
    let mut counts: BTreeMap<(String, String), u64> = BTreeMap::new();
    for (t, _, _) in rows() {
        for (k, v) in t.into_iter().filter(|(k, _)| !k.starts_with('@')) {
            *counts.entry((k, v)).or_default() += 1;
        }
    }
    let mut listed: BTreeMap<(String, String), u64> = BTreeMap::new();
    for key in tags["tags"].as_array().unwrap() {
        for v in key["values"].as_array().unwrap() {
            listed.insert(
                (
                    key["key"].as_str().unwrap().to_owned(),
                    v["value"].as_str().unwrap().to_owned(),
                ),
                v["records"].as_u64().unwrap(),
            );
        }
    }
    assert_eq!(listed, counts);
    let table = env
        .run(&["tags", "--start", "2025-03-01", "--end", "2025-05-01"])
        .await;
    table.ok();

    // Mistakes are named, with a usage exit.
    env.run(&[
        "report",
        "--start",
        "2025-03-01",
        "--end",
        "2025-05-01",
        "--tag",
        "team",
    ])
    .await
    .fails(2, "--tag expects KEY=VALUE, got \"team\"");
    env.run(&[
        "report",
        "--start",
        "2025-03-01",
        "--end",
        "2025-05-01",
        "--group-by",
        "tag:",
    ])
    .await
    .fails(2, "tag:KEY with a non-empty KEY");
}
