//! Anomaly monitors end to end with the real binary: the default monitor, a monitor with a
//! channel, the life cycle (open, acknowledged, grown, restated, recovered) and bad input.

use std::fmt::Write as _;

use crate::budgets::{receiver, Mode, SECRET};
use crate::harness::Env;

/// EC2 10.00 and S3 5.00 a day from 2025-05-01 to 2025-06-19, EC2 `spike` on 2025-06-16.
fn bill(spike: &str) -> String {
    let mut csv = String::from("ChargePeriodStart,BilledCost,BillingCurrency,ServiceName\n");
    let mut day = chrono::NaiveDate::from_ymd_opt(2025, 5, 1).unwrap();
    let end = chrono::NaiveDate::from_ymd_opt(2025, 6, 20).unwrap();
    while day < end {
        let ec2 = if day.to_string() == "2025-06-16" {
            spike
        } else {
            "10.00"
        };
        writeln!(csv, "{day},{ec2},USD,AmazonEC2").unwrap();
        writeln!(csv, "{day},5.00,USD,AmazonS3").unwrap();
        day = day.succ_opt().unwrap();
    }
    csv
}

impl Env {
    async fn on(&self, today: &str, args: &[&str]) -> crate::harness::Out {
        self.run_env(args, None, &[("CLOUDBILL_TODAY", today)])
            .await
    }

    async fn import_spike(&self, name: &str, spike: &str) {
        let file = self.dir.path().join(name);
        std::fs::write(&file, bill(spike)).unwrap();
        self.on(
            "2025-06-20",
            &[
                "import",
                "focus",
                file.to_str().unwrap(),
                "--account",
                "bill",
            ],
        )
        .await
        .ok();
    }

    async fn kept(&self, today: &str) -> serde_json::Value {
        self.on(
            today,
            &["anomaly", "list", "--state", "all", "--format", "json"],
        )
        .await
        .ok()
        .json()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitors_keep_explain_and_close_anomalies_and_tell_once() {
    let env = Env::new().await;
    env.file_account().await;
    // Billing on: the domain has its default monitor (domain × service).
    let monitors = env
        .run(&["anomaly", "monitor", "list", "--format", "json"])
        .await
        .ok()
        .json();
    assert_eq!(monitors[0]["name"], "default");
    assert_eq!(monitors[0]["dimension"], "service");
    let hook = receiver(Mode::Ok).await;
    env.run_with_stdin(
        &[
            "channel",
            "add",
            "ops",
            "--webhook",
            &hook.url,
            "--secret-stdin",
        ],
        Some(&format!("{SECRET}\n")),
    )
    .await
    .ok();
    env.run(&[
        "anomaly",
        "monitor",
        "create",
        "web-services",
        "--project",
        "web",
        "--channel",
        "ops",
    ])
    .await
    .ok();

    // A ×6 day of EC2: one spike per monitor, explained by the account that moved.
    env.import_spike("bill.csv", "60.00").await;
    let kept = env.kept("2025-06-20").await;
    let kept = kept.as_array().unwrap();
    assert_eq!(kept.len(), 2, "{kept:?}");
    for a in kept {
        assert_eq!(a["kind"], "spike");
        assert_eq!(a["state"], "open");
        assert_eq!(a["group"]["service"], "AmazonEC2");
        assert_eq!(
            (a["start"].as_str(), a["end"].as_str()),
            (Some("2025-06-16"), Some("2025-06-16"))
        );
        assert_eq!(
            (
                a["actual"].as_str(),
                a["expected"].as_str(),
                a["impact"].as_str()
            ),
            (Some("60.00"), Some("10.00"), Some("50.00"))
        );
        let by_account = a["contributors"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["group"]["service_account"] == "bill")
            .unwrap_or_else(|| panic!("no account contributor: {a}"));
        assert_eq!(by_account["impact"], "50.00");
    }
    let id = kept[0]["id"].as_str().unwrap().to_owned();
    // Told once, through the monitor that has a channel.
    let told = hook.delivered();
    assert_eq!(told.len(), 1);
    assert_eq!(told[0].body["type"], "anomaly.detected");
    assert_eq!(told[0].body["monitor"], "web-services");
    assert_eq!(told[0].body["anomaly"]["impact"], "50.00");

    // The same data again: nothing new.
    env.import_spike("bill-again.csv", "60.00").await;
    assert_eq!(hook.seen().len(), 1);

    // Acknowledged: on-demand detection over the default monitor's split shows its state.
    env.run(&["anomaly", "ack", &id]).await.ok();
    let open = env
        .on(
            "2025-06-20",
            &[
                "anomalies",
                "--start",
                "2025-06-01",
                "--end",
                "2025-06-20",
                "--format",
                "json",
            ],
        )
        .await
        .ok()
        .json();
    assert_eq!(
        open["anomalies"],
        serde_json::json!([]),
        "acknowledged is not open"
    );
    let all = env
        .on(
            "2025-06-20",
            &[
                "anomalies",
                "--start",
                "2025-06-01",
                "--end",
                "2025-06-20",
                "--state",
                "all",
                "--format",
                "json",
            ],
        )
        .await
        .ok()
        .json();
    assert_eq!(all["anomalies"][0]["state"], "acknowledged");

    // Severity grows (impact 50 → 110): told again, once.
    env.import_spike("bill-grown.csv", "120.00").await;
    let told = hook.delivered();
    assert_eq!(told.len(), 2);
    assert_eq!(told[1].body["severity_grew"], true);
    assert_eq!(told[1].body["anomaly"]["id"], told[0].body["anomaly"]["id"]);

    // A restatement takes the spike away: closed as restated.
    env.import_spike("bill-restated.csv", "10.00").await;
    let kept = env.kept("2025-06-20").await;
    assert!(
        kept.as_array()
            .unwrap()
            .iter()
            .all(|a| a["state"] == "closed" && a["closed_reason"] == "restated"),
        "{kept}"
    );
    assert_eq!(hook.seen().len(), 2);

    // Back again, then 7 normal days later: closed as recovered.
    env.import_spike("bill-back.csv", "60.00").await;
    assert!(env
        .kept("2025-06-20")
        .await
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["state"] == "open"));
    env.on("2025-06-24", &["anomaly", "detect"]).await.ok();
    let kept = env.kept("2025-06-24").await;
    assert!(
        kept.as_array()
            .unwrap()
            .iter()
            .all(|a| a["closed_reason"] == "recovered"),
        "{kept}"
    );
    env.run(&["anomaly", "ack", &id]).await.fails(1, "closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_monitors_are_refused_and_nothing_is_written() {
    let env = Env::new().await;
    env.file_account().await;
    for (args, code, needle) in [
        (vec!["--dimension", "colour"], 2, "colour"),
        (vec!["--z", "0"], 2, "out of range"),
        (vec!["--z", "abc"], 2, "not a decimal"),
        (vec!["--min-amount", "-1"], 2, "out of range"),
        (vec!["--min-percent", "20000"], 2, "out of range"),
        (vec!["--direction", "up"], 2, "spikes or both"),
        (vec!["--channel", "nope"], 1, "channel \"nope\" not found"),
        (vec!["--project", "nope"], 1, "project \"nope\" not found"),
        (vec!["--filter", "nokey"], 2, "KEY=VALUE"),
    ] {
        let mut full = vec!["anomaly", "monitor", "create", "m"];
        full.extend(args);
        env.run(&full).await.fails(code, needle);
    }
    let monitors = env
        .run(&["anomaly", "monitor", "list", "--format", "json"])
        .await
        .ok()
        .json();
    assert_eq!(
        monitors.as_array().unwrap().len(),
        1,
        "only the default monitor"
    );
    env.run(&["anomaly", "ack", "an_nope"])
        .await
        .fails(1, "not found");
    env.run(&["anomaly", "list", "--state", "some"])
        .await
        .fails(2, "open or all");
    env.run(&["anomaly", "monitor", "create", "default"])
        .await
        .fails(1, "exists");
    // On demand: a range whose first days have no history says from when it can start.
    env.import_bill(bill("10.00")).await.ok();
    env.run(&["anomalies", "--start", "2025-05-10", "--end", "2025-06-01"])
        .await
        .fails(2, "the range can start on 2025-05-29 at the earliest");
    env.run(&["anomalies", "--start", "2025-05-29", "--end", "2025-06-01"])
        .await
        .ok();
}
