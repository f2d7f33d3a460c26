//! Regressions of the adversarial pass (#13), each named after the defect it pins down.

use std::fmt::Write as _;

use crate::harness::Env;

/// A FOCUS file: one row per `(day, cost)`, billed in that day's month.
fn focus_file(env: &Env, name: &str, rows: &[(&str, &str)]) -> String {
    let mut csv = String::from(
        "BillingPeriodStart,BillingPeriodEnd,ChargePeriodStart,ChargePeriodEnd,BilledCost,BillingCurrency,ServiceName\n",
    );
    for (day, cost) in rows {
        let month = &day[..7];
        let next = next_month(month);
        writeln!(
            csv,
            "{month}-01T00:00:00Z,{next}-01T00:00:00Z,{day}T00:00:00Z,{day}T23:59:59Z,{cost},USD,AmazonEC2"
        )
        .unwrap();
    }
    let path = env.dir.path().join(name);
    std::fs::write(&path, csv).unwrap();
    path.display().to_string()
}

fn next_month(month: &str) -> String {
    let (y, m) = month.split_once('-').unwrap();
    let (y, m): (i32, u32) = (y.parse().unwrap(), m.parse().unwrap());
    if m == 12 {
        format!("{:04}-01", y + 1)
    } else {
        format!("{y:04}-{:02}", m + 1)
    }
}

async fn year_total(env: &Env, start: &str, end: &str) -> String {
    let json = env
        .run(&[
            "report",
            "--start",
            start,
            "--end",
            end,
            "--account",
            "bill",
            "--format",
            "json",
        ])
        .await
        .ok()
        .json();
    json["results"][0]["total"][0]["cost"]
        .as_str()
        .unwrap_or("0")
        .to_owned()
}

/// #13 critical 1: a 2-row file dated 2025-03-15 and 2025-09-15 deleted the 182 days between
/// them; a typo'd year wiped years.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_replaces_only_the_days_its_file_holds() {
    let env = Env::new().await;
    env.file_account().await;
    let days: Vec<String> = (0..365)
        .map(|i| {
            (harness_date("2025-01-01") + chrono::Duration::days(i))
                .format("%Y-%m-%d")
                .to_string()
        })
        .collect();
    let year: Vec<(&str, &str)> = days.iter().map(|d| (d.as_str(), "1.00")).collect();
    let full = focus_file(&env, "year.csv", &year);
    env.run(&["import", "focus", &full, "--account", "bill"])
        .await
        .ok();
    assert_eq!(year_total(&env, "2025-01-01", "2026-01-01").await, "365.00");

    let two = focus_file(
        &env,
        "two.csv",
        &[("2025-03-15", "5.00"), ("2025-09-15", "5.00")],
    );
    let out = env
        .run(&[
            "import",
            "focus",
            &two,
            "--account",
            "bill",
            "--format",
            "json",
        ])
        .await
        .ok()
        .json();
    assert_eq!(out["days_replaced"], 2, "{out}");
    assert_eq!(out["changed_days"], 2, "{out}");
    assert_eq!(year_total(&env, "2025-01-01", "2026-01-01").await, "373.00");

    // A mistyped year far from the row's billing period is refused; nothing is written.
    let typo = focus_file(&env, "typo.csv", &[("2025-04-02", "9.00")]);
    let text = std::fs::read_to_string(&typo)
        .unwrap()
        .replace("2025-04-02T", "2052-04-02T");
    std::fs::write(&typo, text).unwrap();
    env.run(&["import", "focus", &typo, "--account", "bill"])
        .await
        .fails(
            2,
            "more than 31 days outside the row's billing period 2025-04-01..2025-05-01",
        );
    assert_eq!(year_total(&env, "2025-01-01", "2026-01-01").await, "373.00");
    assert_eq!(year_total(&env, "2052-01-01", "2053-01-01").await, "0");

    // --window replaces a declared range: March (35.00) becomes the one row given.
    let march = focus_file(&env, "march.csv", &[("2025-03-02", "7.00")]);
    let out = env
        .run(&[
            "import",
            "focus",
            &march,
            "--account",
            "bill",
            "--window",
            "2025-03-01..2025-04-01",
            "--format",
            "json",
        ])
        .await
        .ok()
        .json();
    assert_eq!(out["days_replaced"], 31, "{out}");
    assert_eq!(year_total(&env, "2025-03-01", "2025-04-01").await, "7.00");
    assert_eq!(year_total(&env, "2025-01-01", "2026-01-01").await, "345.00");
    // Every row must lie in the window.
    env.run(&[
        "import",
        "focus",
        &march,
        "--account",
        "bill",
        "--window",
        "2025-04-01..2025-05-01",
    ])
    .await
    .fails(2, "2025-03-02 lies outside --window 2025-04-01..2025-05-01");
    env.run(&[
        "import",
        "focus",
        &march,
        "--account",
        "bill",
        "--window",
        "2025-04-01",
    ])
    .await
    .fails(2, "is not START..END");
    // A window may cover what the billing-period check would refuse.
    env.run(&[
        "import",
        "focus",
        &typo,
        "--account",
        "bill",
        "--window",
        "2052-04-01..2052-05-01",
    ])
    .await
    .ok();
    assert_eq!(year_total(&env, "2052-01-01", "2053-01-01").await, "9.00");
    assert_eq!(year_total(&env, "2025-01-01", "2026-01-01").await, "345.00");
}

fn harness_date(s: &str) -> cloudbill_core::NaiveDate {
    crate::harness::date(s)
}

/// #13 high 7 through the binary: a missing key file is an error naming it (no new key), and
/// `cloudbill key rotate` re-seals without printing a key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_file_missing_is_an_error_and_rotate_keeps_credentials() {
    let env = Env::new().await;
    env.setup().await;
    let key = env.dir.path().join("billing.db.key");
    let saved = std::fs::read_to_string(&key).unwrap();
    std::fs::remove_file(&key).unwrap();
    env.run(&["account", "list"])
        .await
        .fails(1, &format!("the key file {} is missing", key.display()));
    assert!(!key.exists());
    std::fs::write(&key, &saved).unwrap();
    let out = env.run(&["key", "rotate"]).await;
    out.ok();
    assert!(
        out.stdout
            .starts_with("re-sealed 3 credentials with a new key, now in"),
        "{}",
        out.stdout
    );
    let new = std::fs::read_to_string(&key).unwrap();
    assert_ne!(new.trim(), saved.trim());
    assert!(!out.stdout.contains(new.trim()) && !out.stderr.contains(new.trim()));
    // The credentials still work: a sync of one account succeeds.
    env.run(&[
        "sync",
        "--account",
        "acme-main",
        "--start",
        "2025-05-01",
        "--end",
        "2025-05-03",
    ])
    .await
    .ok();
}

/// #13 medium: read-only commands create no database; a database URL's password is never
/// printed (help, errors).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_commands_create_nothing_and_passwords_stay_hidden() {
    let env = Env::new().await;
    env.run(&["report", "--start", "2025-01-01", "--end", "2025-02-01"])
        .await
        .fails(1, "no database at");
    assert!(!env.dir.path().join("billing.db").exists());
    assert!(!env.dir.path().join("billing.db.key").exists());
    // Port 99999 fails at once (no connection attempts), through the non-URL redaction path.
    let url = "postgres://billing:hunter2@127.0.0.1:99999/none";
    let mut help = env.command(&["--help"]);
    help.env("CLOUDBILL_DATABASE_URL", url);
    let out = help.output().await.unwrap();
    assert!(!String::from_utf8_lossy(&out.stdout).contains("hunter2"));
    let mut failing = env.command(&["project", "list"]);
    failing.env("CLOUDBILL_DATABASE_URL", url);
    let out = failing.output().await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("postgres://***@127.0.0.1:99999/none"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

/// #13 medium: importing from a FIFO works (the file is opened once); a failed export leaves
/// no partial file; a failed import's job is closed, never left running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifo_imports_and_failed_exports_leave_nothing() {
    let env = Env::new().await;
    env.file_account().await;
    let fifo = env.dir.path().join("bill.fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            let csv = "ChargePeriodStart,BilledCost,BillingCurrency\n2025-02-01,1.25,USD\n2025-02-02,2.50,USD\n";
            std::fs::write(&fifo, csv).unwrap();
        })
    };
    let out = env
        .run(&[
            "import",
            "focus",
            fifo.to_str().unwrap(),
            "--account",
            "bill",
            "--format",
            "json",
        ])
        .await;
    writer.join().unwrap();
    assert_eq!(out.ok().json()["rows"], 2);
    assert_eq!(year_total(&env, "2025-02-01", "2025-03-01").await, "3.75");

    // The target is a directory: the write succeeds, the rename fails; nothing is left.
    let target = env.dir.path().join("out");
    std::fs::create_dir(&target).unwrap();
    std::fs::write(target.join("keep"), "x").unwrap();
    env.run(&[
        "export",
        "focus",
        "--start",
        "2025-02-01",
        "--end",
        "2025-03-01",
        target.to_str().unwrap(),
    ])
    .await
    .fails(1, "cannot write");
    let left: Vec<String> = std::fs::read_dir(env.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("partial"))
        .collect();
    assert!(left.is_empty(), "{left:?}");

    // A failed import is closed as failed with its reason.
    let bad = env.dir.path().join("bad.csv");
    std::fs::write(
        &bad,
        "ChargePeriodStart,BilledCost,BillingCurrency\n2025-02-01,x,USD\n",
    )
    .unwrap();
    env.run(&[
        "import",
        "focus",
        bad.to_str().unwrap(),
        "--account",
        "bill",
    ])
    .await
    .fails(2, "line 2, column BilledCost");
    let jobs = env.run(&["jobs", "--format", "json"]).await.ok().json();
    let states: Vec<&str> = jobs
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["state"].as_str().unwrap())
        .collect();
    assert!(!states.contains(&"running"), "{states:?}");
    assert!(states.contains(&"failed"), "{states:?}");
}

/// #13 medium: a killed import is closed as interrupted by the next command once its lease
/// lapses (10 s without renewal), never left "running"; its data was never written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_import_is_closed_as_interrupted() {
    use std::io::Write as _;
    let env = Env::new().await;
    env.file_account().await;
    let fifo = env.dir.path().join("slow.fifo");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let mut child = env
        .command(&[
            "import",
            "focus",
            fifo.to_str().unwrap(),
            "--account",
            "bill",
        ])
        .spawn()
        .unwrap();
    // Half a bill, and the writer stays: the import waits for more.
    let mut writer = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    writer
        .write_all(b"ChargePeriodStart,BilledCost,BillingCurrency\n2025-02-01,1.25,USD\n")
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    drop(writer);
    let state = |jobs: serde_json::Value| jobs[0]["state"].as_str().unwrap().to_owned();
    let jobs = env.run(&["jobs", "--format", "json"]).await.ok().json();
    assert_eq!(state(jobs), "running", "its lease is still fresh");
    tokio::time::sleep(std::time::Duration::from_secs(11)).await;
    let jobs = env.run(&["jobs", "--format", "json"]).await.ok().json();
    assert_eq!(state(jobs.clone()), "failed", "{jobs}");
    assert_eq!(
        jobs[0]["error"],
        "interrupted: the process stopped before this import finished"
    );
    assert_eq!(year_total(&env, "2025-02-01", "2025-03-01").await, "0");
}

/// #13 medium: `demo --demo-db` (said on the command line) wins over `CLOUDBILL_DATABASE_URL`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_db_wins_over_the_environment() {
    let env = Env::new().await;
    let chosen = env.dir.path().join("chosen.db");
    let mut cmd = env.command(&[
        "demo",
        "--demo-db",
        chosen.to_str().unwrap(),
        "--format",
        "json",
    ]);
    cmd.env(
        "CLOUDBILL_DATABASE_URL",
        format!("sqlite://{}", env.dir.path().join("env.db").display()),
    );
    let out = cmd.output().await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        json["database_url"],
        format!("sqlite://{}", chosen.display())
    );
    assert!(chosen.exists());
    assert!(!env.dir.path().join("env.db").exists());
}
