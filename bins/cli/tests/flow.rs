//! The whole job from a terminal: set up, sync, report in every format.

use cloudbill_core::{DateRange, Decimal};

use crate::harness::{date, Env, KEY};

fn dec(v: &serde_json::Value) -> Decimal {
    v.as_str().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enable_register_sync_and_report_in_three_formats() {
    let env = Env::new().await;
    env.setup().await;

    // A failing account fails the command (exit 1) but not the others; its line says why.
    let sync = env
        .run(&["sync", "--start", "2025-03-01", "--end", "2025-06-01"])
        .await;
    assert_eq!(sync.code, 1, "{}", sync.stderr);
    let bad_line = sync.stdout.lines().find(|l| l.contains("bad")).unwrap();
    assert!(
        bad_line.contains("failed") && bad_line.contains("invalid Hyperbilling credentials"),
        "{bad_line}"
    );
    assert!(sync
        .stdout
        .lines()
        .any(|l| l.contains("acme-main") && l.contains("succeeded")));

    let range = DateRange::parse("2025-03-01", "2025-06-01").unwrap();
    let acme = env.sim.expected_total("111111111111", range);
    let globex = env.sim.expected_total("333333333333", range);

    // JSON: exactly the documented shape, amounts as strings, equal to the simulator's sums.
    let out = env
        .run(&[
            "report",
            "--start",
            "2025-03-01",
            "--end",
            "2025-06-01",
            "--group-by",
            "project",
            "--format",
            "json",
        ])
        .await;
    let json = out.ok().json();
    assert_eq!(json["group_by"], serde_json::json!(["project"]));
    assert_eq!(json["granularity"], "MONTHLY");
    assert_eq!(json["total_count"], 2);
    let results = json["results"].as_array().unwrap();
    let total_of = |name: &str| {
        let row = results
            .iter()
            .find(|r| r["group"]["project"] == name)
            .unwrap();
        assert_eq!(row["total"][0]["currency"], "USD");
        assert_eq!(row["billing_data"].as_array().unwrap().len(), 3);
        dec(&row["total"][0]["cost"])
    };
    assert_eq!(total_of("web"), acme);
    assert_eq!(total_of("data"), globex);

    // Consolidated (no --group-by): one result with an empty group.
    let json = env
        .run(&[
            "report",
            "--start",
            "2025-03-01",
            "--end",
            "2025-06-01",
            "--format",
            "json",
        ])
        .await
        .ok()
        .json();
    assert_eq!(json["results"][0]["group"], serde_json::json!({}));
    assert_eq!(dec(&json["results"][0]["total"][0]["cost"]), acme + globex);

    // CSV: a header, then one line per group, month and currency.
    let csv = env
        .run(&[
            "report",
            "--start",
            "2025-03-01",
            "--end",
            "2025-06-01",
            "--group-by",
            "project",
            "--format",
            "csv",
            "--sort",
            "key",
        ])
        .await;
    let lines: Vec<&str> = csv.ok().stdout.lines().collect();
    assert_eq!(lines[0], "project,date,currency,cost");
    assert_eq!(lines.len(), 1 + 6);
    assert!(lines[1].starts_with("data,2025-03,USD,"));
    let csv_sum: Decimal = lines[1..]
        .iter()
        .map(|l| l.rsplit(',').next().unwrap().parse::<Decimal>().unwrap())
        .sum();
    assert_eq!(csv_sum, acme + globex);

    // Table: snapshot (deterministic simulator data, fixed dates).
    let table = env
        .run(&[
            "report",
            "--start",
            "2025-03-01",
            "--end",
            "2025-06-01",
            "--group-by",
            "project",
            "--sort",
            "key",
        ])
        .await;
    insta::assert_snapshot!("report_per_project_table", table.ok().stdout);
    // The table rounds to cents with separators; --exact shows every digit, as JSON has them.
    let exact = env
        .run(&[
            "report",
            "--start",
            "2025-03-01",
            "--end",
            "2025-06-01",
            "--group-by",
            "project",
            "--exact",
        ])
        .await;
    exact.ok();
    assert!(
        exact.stdout.contains(&(acme + globex).to_string()),
        "{}",
        exact.stdout
    );
    assert!(table
        .stdout
        .contains(&cloudbill_core::Currency::USD.display(acme + globex)));

    // Filters: one account; a daily report of the last days.
    let json = env
        .run(&[
            "report",
            "--start",
            "2025-05-30",
            "--end",
            "2025-06-01",
            "--granularity",
            "DAILY",
            "--account",
            "acme-main",
            "--format",
            "json",
        ])
        .await
        .ok()
        .json();
    let days = json["results"][0]["billing_data"].as_array().unwrap();
    assert_eq!(days.len(), 2);
    assert_eq!(
        days[1]["date"], "2025-05-31",
        "the last day is there (inclusive End handled)"
    );
    let expected = env.sim.expected_daily(
        "111111111111",
        DateRange::parse("2025-05-30", "2025-06-01").unwrap(),
    );
    assert_eq!(dec(&days[1]["cost"]), expected[&date("2025-05-31")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restated_days_replace_and_jobs_show_the_audit() {
    let env = Env::new().await;
    env.setup().await;
    let args = [
        "sync",
        "--account",
        "acme-main",
        "--start",
        "2025-05-01",
        "--end",
        "2025-06-01",
    ];
    env.run(&args).await.ok();
    env.run(&args).await.ok();
    let jobs = env
        .run(&["jobs", "--account", "acme-main", "--format", "json"])
        .await
        .ok()
        .json();
    assert_eq!(jobs.as_array().unwrap().len(), 2);
    assert_eq!(
        jobs[0]["changed_days"].as_array().unwrap().len(),
        0,
        "re-sync of unchanged data changes nothing"
    );

    env.sim.restate("111111111111", date("2025-05-20"));
    let out = env.run(&args).await;
    out.ok();
    let jobs = env
        .run(&[
            "jobs",
            "--account",
            "acme-main",
            "--limit",
            "1",
            "--format",
            "json",
        ])
        .await
        .ok()
        .json();
    let changed = jobs[0]["changed_days"].as_array().unwrap();
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0]["date"], "2025-05-20");
    let new_total = env.sim.expected_daily(
        "111111111111",
        DateRange::parse("2025-05-20", "2025-05-21").unwrap(),
    );
    assert_eq!(
        dec(&changed[0]["new_total"]),
        new_total[&date("2025-05-20")]
    );
    // The table view names the restated day.
    let table = env
        .run(&["jobs", "--account", "acme-main", "--limit", "1"])
        .await;
    assert!(
        table.ok().stdout.contains("restated: 2025-05-20"),
        "{}",
        table.stdout
    );

    let json = env
        .run(&[
            "report",
            "--start",
            "2025-05-01",
            "--end",
            "2025-06-01",
            "--format",
            "json",
        ])
        .await
        .ok()
        .json();
    assert_eq!(
        dec(&json["results"][0]["total"][0]["cost"]),
        env.sim.expected_total(
            "111111111111",
            DateRange::parse("2025-05-01", "2025-06-01").unwrap()
        ),
        "restated, not doubled"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_never_printed_and_global_flags_go_anywhere() {
    let env = Env::new().await;
    env.setup().await;
    for format in ["table", "json", "csv"] {
        for args in [
            vec!["account", "list"],
            vec!["account", "show", "acme-main"],
        ] {
            let mut a = args.clone();
            a.extend(["--format", format, "-vv"]);
            let out = env.run(&a).await;
            out.ok();
            assert!(
                !out.stdout.contains(KEY) && !out.stderr.contains(KEY),
                "key printed by {a:?}"
            );
            assert!(!out.stdout.contains("demo-key-globex"));
        }
    }
    let show = env.run(&["account", "show", "acme-main"]).await;
    assert!(show.stdout.contains("*** (write-only)"));
    // The key is not in the database file in clear either.
    let bytes = std::fs::read(env.dir.path().join("billing.db")).unwrap();
    assert!(!bytes.windows(KEY.len()).any(|w| w == KEY.as_bytes()));

    // Global flags before or after the subcommand.
    let a = env
        .run(&["--format", "json", "project", "list"])
        .await
        .ok()
        .json();
    let b = env
        .run(&["project", "list", "--format", "json"])
        .await
        .ok()
        .json();
    assert_eq!(a, b);
    assert_eq!(a.as_array().unwrap().len(), 2);

    let comp = env.run(&["completions", "bash"]).await;
    assert!(comp.ok().stdout.contains("cloudbill"));
    let man = env.run(&["man"]).await;
    assert!(man.ok().stdout.contains(".TH cloudbill"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moving_an_account_from_a_date_splits_the_project_view() {
    let env = Env::new().await;
    env.setup().await;
    env.run(&[
        "sync",
        "--account",
        "acme-main",
        "--start",
        "2025-04-01",
        "--end",
        "2025-06-01",
    ])
    .await
    .ok();
    env.run(&[
        "account",
        "move",
        "acme-main",
        "--project",
        "data",
        "--from",
        "2025-05-01",
    ])
    .await
    .ok();
    let json = env
        .run(&[
            "report",
            "--start",
            "2025-04-01",
            "--end",
            "2025-06-01",
            "--group-by",
            "project",
            "--format",
            "json",
        ])
        .await
        .ok()
        .json();
    let total = |p: &str| {
        json["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["group"]["project"] == p)
            .map(|r| dec(&r["total"][0]["cost"]))
    };
    assert_eq!(
        total("web"),
        Some(env.sim.expected_total(
            "111111111111",
            DateRange::parse("2025-04-01", "2025-05-01").unwrap()
        ))
    );
    assert_eq!(
        total("data"),
        Some(env.sim.expected_total(
            "111111111111",
            DateRange::parse("2025-05-01", "2025-06-01").unwrap()
        ))
    );
    let show = env
        .run(&["account", "show", "acme-main", "--format", "json"])
        .await
        .ok()
        .json();
    assert_eq!(show["history"][1]["from"], "2025-05-01");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_runs_end_to_end() {
    let env = Env::new().await;
    let out = env.run(&["demo", "--demo-db", "demo.db"]).await;
    out.ok();
    // Runs again on the same database (CLOUDBILL_DATABASE_URL is set): the old demo accounts,
    // bound to the first run's simulator, are replaced.
    env.run(&["demo"]).await.ok();
    env.run(&["demo"]).await.ok();
    assert!(out.stdout.contains("Consolidated billing"));
    assert!(
        out.stdout.contains("globex-legacy")
            && out.stdout.contains("invalid Hyperbilling credentials")
    );
    assert!(out.stdout.contains("web-shop") && out.stdout.contains("data-platform"));
    let json = env
        .run(&["demo", "--demo-db", "demo.db", "--format", "json"])
        .await
        .ok()
        .json();
    let consolidated = dec(&json["consolidated"]["results"][0]["total"][0]["cost"]);
    let per_project: Decimal = json["per_project"]["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| dec(&r["total"][0]["cost"]))
        .sum();
    assert_eq!(consolidated, per_project);
}
