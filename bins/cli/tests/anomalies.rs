//! `cloudbill anomalies` over an imported bill with known anomalies.

use std::fmt::Write;

use cloudbill_core::Decimal;

use crate::harness::Env;

/// January–February 2025: EC2 100 a day (us-east-1 60, eu-west-1 40) but 600 on Feb 20 (the
/// jump all in us-east-1), S3 50 a day with noise, Bedrock from Feb 25 on.
fn bill() -> String {
    let mut csv =
        String::from("ChargePeriodStart,BilledCost,BillingCurrency,ServiceName,RegionId\n");
    let mut day = chrono::NaiveDate::from_ymd_opt(2025, 1, 1).unwrap();
    let end = chrono::NaiveDate::from_ymd_opt(2025, 3, 1).unwrap();
    let mut i = 0;
    while day < end {
        let east = if day.to_string() == "2025-02-20" {
            "560"
        } else {
            "60"
        };
        writeln!(csv, "{day},{east},USD,AmazonEC2,us-east-1").unwrap();
        writeln!(csv, "{day},40,USD,AmazonEC2,eu-west-1").unwrap();
        writeln!(
            csv,
            "{day},{},USD,AmazonS3,us-east-1",
            [50, 52, 48, 51][i % 4]
        )
        .unwrap();
        if day >= chrono::NaiveDate::from_ymd_opt(2025, 2, 25).unwrap() {
            writeln!(csv, "{day},30,USD,AmazonBedrock,us-east-1").unwrap();
        }
        day = day.succ_opt().unwrap();
        i += 1;
    }
    csv
}

fn dec(v: &serde_json::Value) -> Decimal {
    v.as_str().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anomalies_are_found_and_explained() {
    let env = Env::new().await;
    env.file_account().await;
    env.import_bill(bill()).await.ok();
    let args = ["--start", "2025-02-01", "--end", "2025-03-01"];
    let out = env
        .run(&[&["--format", "json", "anomalies"][..], &args[..]].concat())
        .await;
    let json = out.ok().json();
    let found = json["anomalies"].as_array().unwrap();
    assert_eq!(found.len(), 2, "{json}");
    // Largest impact first: the EC2 spike of Feb 20.
    let spike = &found[0];
    assert_eq!(spike["kind"], "spike");
    assert_eq!(spike["group"]["service"], "AmazonEC2");
    assert_eq!(
        (&spike["start"], &spike["end"]),
        (&"2025-02-20".into(), &"2025-02-20".into())
    );
    assert_eq!(dec(&spike["expected"]), Decimal::from(100));
    assert_eq!(dec(&spike["actual"]), Decimal::from(600));
    assert_eq!(dec(&spike["impact"]), Decimal::from(500));
    assert_eq!(spike["currency"], "USD");
    assert_eq!(spike["state"], "open");
    // Explained: us-east-1 moved by the whole 500, eu-west-1 not at all (so not listed).
    let contributors = spike["contributors"].as_array().unwrap();
    assert_eq!(contributors[0]["group"]["region"], "us-east-1", "{spike}");
    assert_eq!(dec(&contributors[0]["expected"]), Decimal::from(60));
    assert_eq!(dec(&contributors[0]["actual"]), Decimal::from(560));
    assert!(contributors
        .iter()
        .all(|c| c["group"]["region"] != "eu-west-1"));
    // Bedrock is new on Feb 25 (30 a day after nothing): one anomaly, not four.
    let new = &found[1];
    assert_eq!(
        (&new["kind"], &new["group"]["service"]),
        (&"new".into(), &"AmazonBedrock".into())
    );
    assert_eq!(new["start"], "2025-02-25");
    // The same data gives the same ids; S3's noise is no anomaly.
    let again = env
        .run(&[&["--format", "json", "anomalies"][..], &args[..]].concat())
        .await
        .ok()
        .json();
    assert_eq!(again, json);
    // Drops on request: none here. Thresholds: an amount above 500 hides the spike.
    let both = env
        .run(
            &[
                &["--format", "json", "anomalies", "--direction", "both"][..],
                &args[..],
            ]
            .concat(),
        )
        .await
        .ok()
        .json();
    assert_eq!(both["anomalies"].as_array().unwrap().len(), 2);
    let high = env
        .run(
            &[
                &["--format", "json", "anomalies", "--min-amount", "501"][..],
                &args[..],
            ]
            .concat(),
        )
        .await
        .ok()
        .json();
    assert!(high["anomalies"]
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["kind"] != "spike"));
    // The table; bad input.
    let table = env.run(&[&["anomalies"][..], &args[..]].concat()).await;
    table.ok();
    assert!(table.stdout.contains("AmazonEC2") && table.stdout.contains("region=us-east-1"));
    for (extra, message) in [
        (&["--group-by", "nope"][..], "unknown key"),
        (&["--direction", "up"][..], "--direction"),
        (&["--min-amount", "-1"][..], "--min-amount"),
    ] {
        let bad = env
            .run(&[&["anomalies"][..], &args[..], extra].concat())
            .await;
        assert_eq!(bad.code, 2, "{extra:?}: {}", bad.stderr);
        assert!(bad.stderr.contains(message), "{extra:?}: {}", bad.stderr);
    }
}
