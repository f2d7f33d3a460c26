//! Invoices and reconciliation with the real binary: matched, mismatched (with the exact
//! difference), no invoice, no data; bad files name the line and write nothing.

use serde_json::json;

use crate::harness::Env;

const BILL: &str = "ChargePeriodStart,BilledCost,BillingCurrency,ServiceName,ChargeCategory\n\
2025-03-05,100,USD,AmazonEC2,Usage\n\
2025-03-05,20,USD,Tax,Tax\n\
2025-03-06,-5,USD,AmazonEC2,Credit\n\
2025-03-07,7.5,EUR,AmazonS3,Usage\n\
2025-03-08,300,JPY,AmazonS3,Usage\n\
2025-04-01,999,USD,AmazonEC2,Usage\n";

const INVOICES: &str = "account,period,currency,invoice_id,total,issuer,tax\n\
bill,2025-03,USD,INV-1,115.00,Amazon Web Services,20\n\
bill,2025-03,EUR,INV-3,10,Amazon Web Services,\n\
other,2025-03,USD,INV-2,50,,\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_month_reconciles_per_account_and_currency_exactly() {
    let env = Env::new().await;
    env.file_account().await;
    env.run(&[
        "account",
        "add",
        "--provider",
        "file",
        "--name",
        "other",
        "--project",
        "web",
    ])
    .await
    .ok();
    env.import_bill(BILL).await.ok();
    let invoices = env.dir.path().join("invoices.csv");
    std::fs::write(&invoices, INVOICES).unwrap();
    let imported = env
        .run(&[
            "invoice",
            "import",
            invoices.to_str().unwrap(),
            "--format",
            "json",
        ])
        .await
        .ok()
        .json();
    assert_eq!(
        (imported["invoices"].as_u64(), imported["new"].as_u64()),
        (Some(3), Some(3))
    );
    let again = env
        .run(&[
            "invoice",
            "import",
            invoices.to_str().unwrap(),
            "--format",
            "json",
        ])
        .await
        .ok()
        .json();
    assert_eq!(again["new"], 0, "the same file again adds nothing");

    let r = env
        .run(&["reconcile", "--period", "2025-03", "--format", "json"])
        .await
        .ok()
        .json();
    assert_eq!(r["period"], "2025-03");
    let lines: Vec<(
        String,
        String,
        serde_json::Value,
        serde_json::Value,
        serde_json::Value,
        String,
    )> = r["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["account"].as_str().unwrap().to_owned(),
                a["currency"].as_str().unwrap().to_owned(),
                a["invoice_total"].clone(),
                a["billed"].clone(),
                a["difference"].clone(),
                a["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        lines,
        [
            (
                "bill".into(),
                "EUR".into(),
                json!("10"),
                json!("7.5"),
                json!("-2.5"),
                "mismatched".into()
            ),
            (
                "bill".into(),
                "JPY".into(),
                json!(null),
                json!("300.0"),
                json!(null),
                "no_invoice".into()
            ),
            // Usage, tax and credits all count: 100 + 20 − 5 (at the scale of the file's amounts).
            (
                "bill".into(),
                "USD".into(),
                json!("115.00"),
                json!("115.0"),
                json!("0.00"),
                "matched".into()
            ),
            (
                "other".into(),
                "USD".into(),
                json!("50"),
                json!(null),
                json!(null),
                "no_data".into()
            ),
        ]
    );
    assert_eq!(r["accounts"][2]["invoice_id"], "INV-1");
    let listed = env
        .run(&["invoice", "list", "--period", "2025-03", "--format", "json"])
        .await
        .ok()
        .json();
    assert_eq!(listed.as_array().unwrap().len(), 3);
    env.run(&["reconcile", "--period", "2025-13"])
        .await
        .fails(2, "not a month");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_invoice_files_name_the_line_and_write_nothing() {
    let env = Env::new().await;
    env.file_account().await;
    let file = env.dir.path().join("invoices.csv");
    let head = "account,period,currency,invoice_id,total\n";
    for (rows, needle) in [
        (
            "bill,2025-03,USD,INV-1,115\nghost,2025-03,USD,INV-2,1\n",
            "invoices.csv:3: no such account (\"ghost\")",
        ),
        (
            "bill,2025-13,USD,INV-1,115\n",
            "invoices.csv:2: the period is not a month",
        ),
        (
            "bill,2025-03,USDX,INV-1,115\n",
            "invoices.csv:2: not an ISO 4217",
        ),
        (
            "bill,2025-03,USD,INV-1,abc\n",
            "invoices.csv:2: the total is not a decimal number",
        ),
        ("bill,2025-03,USD,,115\n", "invoices.csv:2: an invoice id"),
        (
            "bill,2025-03,USD,INV-1,115\nbill,2025-03,USD,INV-9,116\n",
            "invoices.csv:3: a second, different invoice",
        ),
        (
            "bill,2025-03,USD,INV-1\n",
            "invoices.csv:2: expected 5 cells",
        ),
    ] {
        std::fs::write(&file, format!("{head}{rows}")).unwrap();
        env.run(&["invoice", "import", file.to_str().unwrap()])
            .await
            .fails(2, needle);
    }
    std::fs::write(&file, "account,period,total\nbill,2025-03,1\n").unwrap();
    env.run(&["invoice", "import", file.to_str().unwrap()])
        .await
        .fails(2, "missing column(s) currency, invoice_id");
    let listed = env
        .run(&["invoice", "list", "--format", "json"])
        .await
        .ok()
        .json();
    assert_eq!(listed, serde_json::json!([]), "nothing written");
    env.run(&[
        "invoice",
        "add",
        "--account",
        "bill",
        "--period",
        "2025-03",
        "--currency",
        "USD",
        "--invoice-id",
        "A",
        "--total",
        "10",
    ])
    .await
    .ok();
    env.run(&[
        "invoice",
        "add",
        "--account",
        "bill",
        "--period",
        "2025-03",
        "--currency",
        "USD",
        "--invoice-id",
        "B",
        "--total",
        "11",
    ])
    .await
    .fails(1, "stored as invoice A of 10");
}
