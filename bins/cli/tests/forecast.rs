//! `cloudbill forecast` over an imported series with a known answer.

use std::fmt::Write;

use cloudbill_core::Decimal;

use crate::harness::Env;

/// A FOCUS bill: USD 100 on Mondays and 10 on other days from 2025-04-14 to 2025-06-15, and
/// EUR on five days only.
fn bill() -> String {
    let mut csv = String::from("ChargePeriodStart,BilledCost,BillingCurrency,ServiceName\n");
    let mut day = chrono::NaiveDate::from_ymd_opt(2025, 4, 14).unwrap();
    let end = chrono::NaiveDate::from_ymd_opt(2025, 6, 16).unwrap();
    while day < end {
        let cost = if chrono::Datelike::weekday(&day) == chrono::Weekday::Mon {
            "100.00"
        } else {
            "10.00"
        };
        writeln!(csv, "{day},{cost},USD,AmazonEC2").unwrap();
        day = day.succ_opt().unwrap();
    }
    for d in 9..=13 {
        writeln!(csv, "2025-06-{d:02},1.5,EUR,AmazonS3").unwrap();
    }
    csv
}

fn dec(v: &serde_json::Value) -> Decimal {
    v.as_str().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forecast_continues_a_weekly_pattern_and_says_when_it_cannot() {
    let env = Env::new().await;
    env.file_account().await;
    let file = env.dir.path().join("series.csv");
    std::fs::write(&file, bill()).unwrap();
    env.run(&[
        "import",
        "focus",
        file.to_str().unwrap(),
        "--account",
        "bill",
    ])
    .await
    .ok();
    let out = env
        .run(&[
            "--format",
            "json",
            "forecast",
            "--as-of",
            "2025-06-16",
            "--project",
            "web",
        ])
        .await;
    let json = out.ok().json();
    assert_eq!(json["period"]["start"], "2025-06-01");
    assert_eq!(json["period"]["end"], "2025-07-01");
    assert_eq!(json["restate_days"], 2);
    let currencies = json["currencies"].as_array().unwrap();
    assert_eq!(currencies.len(), 2, "{json}");
    let eur = &currencies[0];
    assert_eq!(eur["currency"], "EUR");
    assert_eq!(eur["status"], "insufficient_history");
    assert_eq!(eur["forecast"], serde_json::Value::Null);
    assert_eq!(dec(&eur["actual"]), "7.5".parse::<Decimal>().unwrap());
    let usd = &currencies[1];
    assert_eq!(usd["status"], "ok", "{usd}");
    assert_eq!(usd["method"], "linear_trend_weekday");
    // June 1–13 complete: Mondays 2 and 9 at 100, 11 days at 10 = 310; June 14–30 predicted:
    // Mondays 16, 23, 30 at 100, 14 days at 10 = 440. No noise: the interval is the point.
    assert_eq!(dec(&usd["forecast"]), "750".parse::<Decimal>().unwrap());
    assert_eq!(usd["low"], usd["forecast"]);
    assert_eq!(usd["high"], usd["forecast"]);
    // Actual so far: June 1–15 (the restatable 14th and 15th included) = 310 + 20.
    assert_eq!(dec(&usd["actual"]), "330".parse::<Decimal>().unwrap());
    assert_eq!(usd["days_used"], 61);
    assert_eq!(usd["days_predicted"], 17);

    // The table says the same; bad input is a usage error.
    let table = env.run(&["forecast", "--as-of", "2025-06-16"]).await;
    table.ok();
    assert!(
        table.stdout.contains("insufficient history"),
        "{}",
        table.stdout
    );
    assert!(table.stdout.contains("750"), "{}", table.stdout);
    let bad = env
        .run(&["forecast", "--as-of", "2025-06-16", "--period", "weekly"])
        .await;
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(bad.stderr.contains("not a valid period"), "{}", bad.stderr);
    let bad = env
        .run(&["forecast", "--as-of", "2025-06-16", "--filter", "nope=1"])
        .await;
    assert_eq!(bad.code, 2, "{}", bad.stderr);
}
