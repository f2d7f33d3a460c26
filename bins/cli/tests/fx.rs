//! Reports in one currency with the real binary: ECB rates imported, cells converted with the
//! rate of their day (a weekend with Friday's, a gap with the last business day's), cross
//! rates through EUR, the period-end and fixed policies, the missing-rate error, bad files.

use crate::harness::Env;

const RATES: &str = "Date,USD,JPY,\n\
2025-03-31,1.0800,160.00,\n\
2025-03-17,1.0900,162.00,\n\
2025-03-14,1.0871,161.03,\n\
2025-03-13,1.0854,160.12,\n";

/// USD on Thursday 13th, JPY on Friday 14th, USD on Saturday 15th, EUR on Monday 17th, USD on
/// Tuesday 18th (no rate that day: Monday's).
const BILL: &str = "ChargePeriodStart,BilledCost,BillingCurrency,ServiceName\n\
2025-03-13,100,USD,AmazonEC2\n\
2025-03-14,1000,JPY,AmazonEC2\n\
2025-03-15,50,USD,AmazonEC2\n\
2025-03-17,10,EUR,AmazonEC2\n\
2025-03-18,20,USD,AmazonEC2\n";

fn cells(report: &serde_json::Value) -> Vec<(String, String, String)> {
    report["results"][0]["billing_data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["date"].as_str().unwrap().to_owned(),
                b["cost"].as_str().unwrap().to_owned(),
                b["currency"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_convert_each_day_with_its_rate_and_say_which() {
    let env = Env::new().await;
    env.file_account().await;
    env.import_bill(BILL).await.ok();
    let rates = env.dir.path().join("eurofxref-hist.csv");
    std::fs::write(&rates, RATES).unwrap();
    let imported = env
        .run(&["fx", "import", rates.to_str().unwrap(), "--format", "json"])
        .await
        .ok()
        .json();
    assert_eq!(
        (
            imported["layout"].as_str(),
            imported["rates"].as_u64(),
            imported["new"].as_u64()
        ),
        (Some("ecb"), Some(8), Some(8))
    );
    // Importing it again adds nothing.
    let again = env
        .run(&["fx", "import", rates.to_str().unwrap(), "--format", "json"])
        .await
        .ok()
        .json();
    assert_eq!(again["new"], 0);

    let report = |currency: &str, extra: &[&str]| {
        let mut args = vec![
            "report",
            "--start",
            "2025-03-13",
            "--end",
            "2025-03-19",
            "--granularity",
            "daily",
            "--currency",
            currency,
            "--format",
            "json",
        ];
        args.extend_from_slice(extra);
        let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        let env = &env;
        async move {
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            env.run(&refs).await
        }
    };
    // EUR: amount / rate(EUR→from), rounded half to even to 10 places, per cell.
    let eur = report("EUR", &[]).await.ok().json();
    assert_eq!(
        cells(&eur),
        [
            ("2025-03-13".into(), "92.1319329280".into(), "EUR".into()),
            ("2025-03-14".into(), "6.2100229771".into(), "EUR".into()),
            ("2025-03-15".into(), "45.9939288014".into(), "EUR".into()),
            ("2025-03-17".into(), "10".into(), "EUR".into()),
            ("2025-03-18".into(), "18.3486238532".into(), "EUR".into()),
        ]
    );
    assert_eq!(eur["results"][0]["total"][0]["cost"], "172.6845085597");
    assert_eq!(eur["conversion"]["currency"], "EUR");
    assert_eq!(eur["conversion"]["policy"], "daily");
    let usd = eur["conversion"]["rates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["from"] == "USD")
        .unwrap();
    assert_eq!(
        (
            usd["first_rate_date"].as_str(),
            usd["last_rate_date"].as_str()
        ),
        (Some("2025-03-13"), Some("2025-03-17"))
    );
    assert_eq!(usd["sources"][0], "ecb");
    // JPY: a cross rate through EUR (amount / rate(EUR→USD) × rate(EUR→JPY)).
    let jpy = report("JPY", &[]).await.ok().json();
    let jpy_cells = cells(&jpy);
    assert_eq!(jpy_cells[0].1, "14752.1651004238");
    assert_eq!(jpy_cells[1].1, "1000", "JPY stays JPY");
    assert_eq!(
        jpy_cells[2].1, "7406.4023548892",
        "Saturday: Friday's rates"
    );
    assert_eq!(jpy_cells[3].1, "1620.00", "EUR: × 162.00, exact");
    assert_eq!(jpy_cells[4].1, "2972.4770642202", "Tuesday: Monday's rates");

    // Period end: every March cell with the rates of March 31st.
    let monthly = env
        .run(&[
            "report",
            "--start",
            "2025-03-01",
            "--end",
            "2025-04-01",
            "--currency",
            "EUR",
            "--fx-policy",
            "period-end",
            "--format",
            "json",
        ])
        .await
        .ok()
        .json();
    // 170 USD / 1.08 + 1000 JPY / 160 + 10 EUR
    assert_eq!(monthly["results"][0]["total"][0]["cost"], "173.6574074074");
    assert_eq!(monthly["conversion"]["policy"], "period-end");

    // A fixed set (a budget rate): 1 EUR = 1.25 USD = 125 JPY from January on.
    env.run(&[
        "fx",
        "set",
        "2025-01-01",
        "EUR",
        "USD",
        "1.25",
        "--source",
        "budget2025",
    ])
    .await
    .ok();
    env.run(&[
        "fx",
        "set",
        "2025-01-01",
        "EUR",
        "JPY",
        "125",
        "--source",
        "budget2025",
    ])
    .await
    .ok();
    let fixed = report("EUR", &["--fx-policy", "fixed:budget2025"])
        .await
        .ok()
        .json();
    // 170 / 1.25 + 1000 / 125 + 10
    assert_eq!(fixed["results"][0]["total"][0]["cost"], "154");

    // A budget in EUR over these USD, JPY and EUR records counts them all, converted as the
    // report converts them.
    env.run_with_stdin(
        &[
            "channel",
            "add",
            "ops",
            "--webhook",
            "http://127.0.0.1:9/hook",
            "--secret-stdin",
        ],
        Some("whsec-0123456789abcdef\n"),
    )
    .await
    .ok();
    let today = [("CLOUDBILL_TODAY", "2025-03-19")];
    env.run_env(
        &[
            "budget",
            "create",
            "eur",
            "--amount",
            "1000",
            "--currency",
            "EUR",
            "--notify",
            "actual:90%",
            "--channel",
            "ops",
        ],
        None,
        &today,
    )
    .await
    .ok();
    let status = env
        .run_env(&["budget", "status", "--format", "json"], None, &today)
        .await
        .ok()
        .json();
    assert_eq!(status[0]["actual"], "172.6845085597", "{status}");
    assert_eq!(status[0]["not_counted"], serde_json::json!([]));
    assert!(
        status[0]["note"]
            .as_str()
            .unwrap()
            .contains("converted to EUR"),
        "{status}"
    );
    // No rate within 7 days: an error naming the currency and the day, exit 2.
    env.import_bill(
        "ChargePeriodStart,BilledCost,BillingCurrency,ServiceName\n2025-04-09,5,USD,AmazonS3\n",
    )
    .await
    .ok();
    env.run(&[
        "report",
        "--start",
        "2025-04-01",
        "--end",
        "2025-04-10",
        "--currency",
        "EUR",
    ])
    .await
    .fails(2, "no USD → EUR rate for 2025-04-09");
    env.run(&[
        "report",
        "--start",
        "2025-04-01",
        "--end",
        "2025-04-10",
        "--currency",
        "EURO",
    ])
    .await
    .fails(2, "ISO 4217");
    env.run(&[
        "report",
        "--start",
        "2025-04-01",
        "--end",
        "2025-04-10",
        "--currency",
        "EUR",
        "--fx-policy",
        "weekly",
    ])
    .await
    .fails(2, "fx policy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_rate_files_name_the_line_and_write_nothing() {
    let env = Env::new().await;
    env.file_account().await;
    let file = env.dir.path().join("rates.csv");
    for (text, needle) in [
        (
            "Date,USD\n2025-03-14,1.08\n2025-03-13,0\n",
            "rates.csv:3: a rate is above 0 (\"0\")",
        ),
        (
            "Date,USD\n2025-03-14,-1\n",
            "rates.csv:2: a rate is above 0",
        ),
        (
            "Date,USD\n2025-03-14,1,08\n",
            "rates.csv:2: expected 2 cells like the header, found 3",
        ),
        (
            "Date,USD\n2025-03-14,abc\n",
            "rates.csv:2: the rate is not a decimal number (\"abc\")",
        ),
        (
            "Date,XYZ\n2025-03-14,1\n",
            "rates.csv:1: not an ISO 4217 currency code (\"xyz\")",
        ),
        ("Date,USD\n2025-13-01,1\n", "rates.csv:2: not a date"),
        (
            "date,base,quote,rate\n2025-03-14,USD,JPY,148\n2025-03-14,USD,JPY,149\n",
            "rates.csv:3",
        ),
    ] {
        std::fs::write(&file, text).unwrap();
        env.run(&["fx", "import", file.to_str().unwrap()])
            .await
            .fails(2, needle);
    }
    let rates = env
        .run(&["fx", "list", "--format", "json"])
        .await
        .ok()
        .json();
    assert_eq!(rates, serde_json::json!([]), "nothing written");
    env.run(&["fx", "set", "2025-03-14", "EUR", "USD", "0"])
        .await
        .fails(2, "above 0");
    env.run(&["fx", "set", "2025-03-14", "EUR", "EUR", "1"])
        .await
        .fails(2, "same currency");
    env.run(&["fx", "set", "2025-03-14", "EUR", "USD", "1.08"])
        .await
        .ok();
    env.run(&["fx", "set", "2025-03-14", "EUR", "USD", "1.09"])
        .await
        .fails(1, "stored as 1.08");
}
