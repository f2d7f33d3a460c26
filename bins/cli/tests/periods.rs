//! Closed billing periods with the real binary and the simulator: a restating sync leaves a
//! closed month to the last digit and holds the restatement; reopen + re-sync applies it; an
//! import holds a closed month's rows and writes the others.

use cloudbill_core::{DateRange, Decimal};

use crate::harness::{date, Env};

fn total(report: &serde_json::Value) -> Decimal {
    report["results"][0]["total"][0]["cost"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_month_holds_restatements_until_it_is_reopened() {
    let env = Env::new().await;
    env.setup().await;
    let sync = [
        "sync",
        "--account",
        "acme-main",
        "--start",
        "2025-05-01",
        "--end",
        "2025-06-10",
    ];
    env.run(&sync).await.ok();
    let may = DateRange::parse("2025-05-01", "2025-06-01").unwrap();
    let report = [
        "report",
        "--start",
        "2025-05-01",
        "--end",
        "2025-06-01",
        "--account",
        "acme-main",
        "--format",
        "json",
    ];
    let before = total(&env.run(&report).await.ok().json());
    assert_eq!(before, env.sim.expected_total("111111111111", may));

    env.run(&["period", "close", "2025-05"]).await.ok();
    env.run(&["period", "close", "2025-05"])
        .await
        .fails(1, "closed already");
    let listed = env
        .run(&["period", "list", "--format", "json"])
        .await
        .ok()
        .json();
    assert_eq!(listed, serde_json::json!(["2025-05"]));

    // The provider restates a May day and a June day; the sync writes June, holds May.
    env.sim.restate("111111111111", date("2025-05-10"));
    env.sim.restate("111111111111", date("2025-06-05"));
    env.run(&sync).await.ok();
    let after = total(&env.run(&report).await.ok().json());
    assert_eq!(after, before, "a closed month does not move");
    let june = DateRange::parse("2025-06-01", "2025-06-10").unwrap();
    let june_report = [
        "report",
        "--start",
        "2025-06-01",
        "--end",
        "2025-06-10",
        "--account",
        "acme-main",
        "--format",
        "json",
    ];
    assert_eq!(
        total(&env.run(&june_report).await.ok().json()),
        env.sim.expected_total("111111111111", june),
        "open days are synced"
    );
    let jobs = env.run(&["jobs", "--format", "json"]).await.ok().json();
    assert!(jobs.to_string().contains("held, not written"), "{jobs}");
    let shown = env
        .run(&["period", "show", "2025-05", "--format", "json"])
        .await
        .ok()
        .json();
    assert_eq!(shown["state"], "closed");
    let held = shown["held"].as_array().unwrap();
    assert_eq!(held.len(), 1, "{shown}");
    assert_eq!(held[0]["date"], "2025-05-10");
    let restated = env.sim.expected_daily(
        "111111111111",
        DateRange::parse("2025-05-10", "2025-05-11").unwrap(),
    );
    assert_eq!(
        held[0]["new_total"]
            .as_str()
            .unwrap()
            .parse::<Decimal>()
            .unwrap(),
        restated[&date("2025-05-10")]
    );

    // Reopened with a reason (kept in the log), the next sync applies the restatement.
    env.run(&["period", "reopen", "2025-05"])
        .await
        .fails(2, "--reason");
    env.run(&[
        "period",
        "reopen",
        "2025-05",
        "--reason",
        "the provider's late credit",
    ])
    .await
    .ok();
    env.run(&sync).await.ok();
    let applied = total(&env.run(&report).await.ok().json());
    assert_eq!(applied, env.sim.expected_total("111111111111", may));
    assert_ne!(applied, before);
    let shown = env
        .run(&["period", "show", "2025-05", "--format", "json"])
        .await
        .ok()
        .json();
    assert_eq!(shown["state"], "open");
    let log: Vec<(&str, Option<&str>)> = shown["log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["action"].as_str().unwrap(), c["reason"].as_str()))
        .collect();
    assert_eq!(
        log,
        [
            ("close", None),
            ("reopen", Some("the provider's late credit"))
        ]
    );
    env.run(&["period", "close", "2025-13"])
        .await
        .fails(2, "not a month");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_holds_a_closed_months_rows_and_writes_the_rest() {
    let env = Env::new().await;
    env.file_account().await;
    env.import_bill("ChargePeriodStart,BilledCost,BillingCurrency,ServiceName\n2025-05-10,100,USD,AmazonEC2\n2025-06-10,50,USD,AmazonEC2\n").await
    .ok();
    env.run(&["period", "close", "2025-05"]).await.ok();
    env.import_bill("ChargePeriodStart,BilledCost,BillingCurrency,ServiceName\n2025-05-10,80,USD,AmazonEC2\n2025-06-10,60,USD,AmazonEC2\n").await
    .ok();
    let month = |start: &'static str, end: &'static str| {
        let env = &env;
        async move {
            total(
                &env.run(&["report", "--start", start, "--end", end, "--format", "json"])
                    .await
                    .ok()
                    .json(),
            )
        }
    };
    assert_eq!(
        month("2025-05-01", "2025-06-01").await,
        Decimal::from(100),
        "May kept"
    );
    assert_eq!(
        month("2025-06-01", "2025-07-01").await,
        Decimal::from(60),
        "June written"
    );
    let shown = env
        .run(&["period", "show", "2025-05", "--format", "json"])
        .await
        .ok()
        .json();
    assert_eq!(
        (
            shown["held"][0]["old_total"].as_str(),
            shown["held"][0]["new_total"].as_str()
        ),
        (Some("100"), Some("80"))
    );
    // The FOCUS export marks each row's billing month.
    let out = env.dir.path().join("export.csv");
    env.run(&[
        "export",
        "focus",
        "--start",
        "2025-05-01",
        "--end",
        "2025-07-01",
        out.to_str().unwrap(),
    ])
    .await
    .ok();
    let mut reader = csv::Reader::from_path(&out).unwrap();
    let header = reader.headers().unwrap().clone();
    let col = header
        .iter()
        .position(|h| h == "x_BillingPeriodStatus")
        .expect("the status column");
    let start = header
        .iter()
        .position(|h| h == "ChargePeriodStart")
        .unwrap();
    let statuses: Vec<(String, String)> = reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            (r[start][..7].to_owned(), r[col].to_owned())
        })
        .collect();
    assert_eq!(
        statuses,
        [
            ("2025-05".into(), "Closed".into()),
            ("2025-06".into(), "Open".into())
        ]
    );
    // A window over a closed month is refused, nothing written.
    let bill = env.dir.path().join("bill.csv");
    env.run(&[
        "import",
        "focus",
        bill.to_str().unwrap(),
        "--account",
        "bill",
        "--window",
        "2025-05-01..2025-07-01",
    ])
    .await
    .fails(2, "overlaps closed period(s) 2025-05");
}
