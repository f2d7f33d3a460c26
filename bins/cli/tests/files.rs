//! `import focus|cur` and `export focus` through the binary.

use cloudbill_core::Decimal;

use crate::harness::Env;

fn sample() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/samples/sample-anonymous-aws-export-dataset.csv")
}

fn total(env_out: &serde_json::Value) -> Decimal {
    env_out["results"][0]["total"][0]["cost"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_export_round_trip_and_bad_files() {
    let env = Env::new().await;
    env.run(&["billing", "enable"]).await.ok();
    env.run(&["project", "create", "web"]).await.ok();
    env.run(&[
        "account",
        "add",
        "--provider",
        "file",
        "--name",
        "cur",
        "--project",
        "web",
    ])
    .await
    .ok();
    env.run(&[
        "account",
        "add",
        "--provider",
        "file",
        "--name",
        "again",
        "--project",
        "web",
    ])
    .await
    .ok();
    let sample = sample();
    let out = env
        .run(&[
            "import",
            "cur",
            sample.to_str().unwrap(),
            "--account",
            "cur",
            "--format",
            "json",
        ])
        .await;
    let json = out.ok().json();
    assert_eq!(json["rows"], 1281);
    assert_eq!(json["start"], "2023-11-01");
    let report = |account: &'static str| {
        let env = &env;
        async move {
            env.run(&[
                "report",
                "--start",
                "2023-11-01",
                "--end",
                "2023-12-01",
                "--account",
                account,
                "--format",
                "json",
            ])
            .await
            .ok()
            .json()
        }
    };
    assert_eq!(
        total(&report("cur").await),
        "1.6823086974".parse::<Decimal>().unwrap()
    );

    // Re-import is idempotent; the job records it.
    env.run(&[
        "import",
        "cur",
        sample.to_str().unwrap(),
        "--account",
        "cur",
    ])
    .await
    .ok();
    assert_eq!(
        total(&report("cur").await),
        "1.6823086974".parse::<Decimal>().unwrap()
    );
    let jobs = env
        .run(&["jobs", "--account", "cur", "--format", "json"])
        .await
        .ok()
        .json();
    assert_eq!(jobs[0]["kind"], "import");
    assert_eq!(jobs[0]["rows"], 1281);

    // Export → import into another account: identical totals.
    env.run(&[
        "export",
        "focus",
        "--start",
        "2023-11-01",
        "--end",
        "2023-12-01",
        "out.csv",
    ])
    .await
    .ok();
    env.run(&["import", "focus", "out.csv", "--account", "again"])
        .await
        .ok();
    assert_eq!(total(&report("again").await), total(&report("cur").await));
    // The CUR's FOCUS attributes survive the export and the re-import: the same groups with
    // the same sums by SKU (the sample's `product/sku`; it has no zones or resource ids).
    for key in ["sku"] {
        let by = |account: &'static str| {
            let env = &env;
            async move {
                let out = env
                    .run(&[
                        "report",
                        "--start",
                        "2023-11-01",
                        "--end",
                        "2023-12-01",
                        "--account",
                        account,
                        "--group-by",
                        key,
                        "--sort",
                        "key",
                        "--format",
                        "json",
                    ])
                    .await;
                out.ok();
                out.json()["results"].clone()
            }
        };
        let (cur, again) = (by("cur").await, by("again").await);
        assert!(
            cur.as_array().unwrap().len() > 1,
            "{key}: the sample has several values"
        );
        assert_eq!(cur, again, "{key}");
    }

    // Gzipped input works the same.
    let gz = env.dir.path().join("out.csv.gz");
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).unwrap(),
        flate2::Compression::fast(),
    );
    std::io::copy(
        &mut std::fs::File::open(env.dir.path().join("out.csv")).unwrap(),
        &mut enc,
    )
    .unwrap();
    enc.finish().unwrap();
    env.run(&[
        "import",
        "focus",
        gz.to_str().unwrap(),
        "--account",
        "again",
    ])
    .await
    .ok();
    assert_eq!(total(&report("again").await), total(&report("cur").await));

    // A bad file stops with file, line and column and writes nothing.
    std::fs::write(
        env.dir.path().join("bad.csv"),
        "ChargePeriodStart,BilledCost,BillingCurrency\n2023-11-02,1,USD\n2023-11-03,x1,USD\n",
    )
    .unwrap();
    env.run(&["import", "focus", "bad.csv", "--account", "again"])
        .await
        .fails(2, "bad.csv: line 3, column BilledCost");
    assert_eq!(total(&report("again").await), total(&report("cur").await));
    // --skip-invalid imports the rest and reports what it skipped.
    let out = env
        .run(&[
            "import",
            "focus",
            "bad.csv",
            "--account",
            "again",
            "--skip-invalid",
            "--format",
            "json",
        ])
        .await;
    let json = out.ok().json();
    assert_eq!(
        (
            json["rows"].as_u64(),
            json["written"].as_u64(),
            json["skipped"].as_u64()
        ),
        (Some(2), Some(1), Some(1))
    );
    assert_eq!(json["skipped_rows"][0]["line"], 3);

    // Imports go into file accounts only; missing files are clear.
    env.run(&[
        "account",
        "add",
        "--name",
        "hb",
        "--project",
        "web",
        "--account",
        "1",
        "--email",
        "a@b.c",
        "--key",
        "k",
    ])
    .await
    .ok();
    env.run(&["import", "focus", "out.csv", "--account", "hb"])
        .await
        .fails(2, "bills are imported into an account of provider file");
    env.run(&["import", "focus", "nope.csv", "--account", "again"])
        .await
        .fails(1, "cannot open nope.csv");
    env.run(&["import", "cur", "out.csv", "--account", "again"])
        .await
        .fails(2, "missing mandatory column lineItem/UsageStartDate");
}

/// FOCUS keys over a CUR import: the billing account and the sub-account are dimensions, and
/// the export goes to Parquet for a `.parquet` file (typed; the CSV beside it for `-`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cur_accounts_are_dimensions_and_export_writes_parquet() {
    let env = Env::new().await;
    env.file_account().await;
    env.run(&[
        "import",
        "cur",
        sample().to_str().unwrap(),
        "--account",
        "bill",
    ])
    .await
    .ok();
    for key in ["billing_account", "sub_account"] {
        let r = env
            .run(&[
                "--format",
                "json",
                "report",
                "--start",
                "2023-11-01",
                "--end",
                "2023-12-01",
                "--group-by",
                key,
            ])
            .await
            .ok()
            .json();
        let results = r["results"].as_array().unwrap();
        assert_eq!(results.len(), 1, "{key}: {r}");
        let label = if key == "sub_account" {
            "cloud_account"
        } else {
            key
        };
        assert_eq!(results[0]["group"][label], "123412340534", "{key}");
        assert_eq!(total(&r), "1.6823086974".parse::<Decimal>().unwrap());
    }
    let file = env.dir.path().join("out.parquet");
    env.run(&[
        "export",
        "focus",
        "--start",
        "2023-11-01",
        "--end",
        "2023-12-01",
        file.to_str().unwrap(),
    ])
    .await
    .ok();
    let bytes = std::fs::read(&file).unwrap();
    assert!(bytes.starts_with(b"PAR1") && bytes.ends_with(b"PAR1"));
    let csv = env
        .run(&[
            "export",
            "focus",
            "--start",
            "2023-11-01",
            "--end",
            "2023-12-01",
            "-",
        ])
        .await;
    csv.ok();
    assert_eq!(csv.stdout.lines().count(), 1282, "a header and 1281 rows");
}
