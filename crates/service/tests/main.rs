//! The sync and report use cases end to end: simulator over HTTP, real SQLite and PostgreSQL.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]
#![allow(
    clippy::many_single_char_names,
    clippy::similar_names,
    clippy::too_many_lines,
    clippy::items_after_statements
)]

use std::sync::Arc;
use std::time::Duration;

use cloudbill_core::{
    AccountState, ClientSecret, DateRange, Decimal, Granularity, JobState, NaiveDate, ProviderState,
};
use cloudbill_hyperbilling::sim::{Fault, SimConfig, Simulator};
use cloudbill_hyperbilling::{ClientConfig, Hyperbilling};
use cloudbill_provider::ProviderRegistry;
use cloudbill_service::{
    Billing, BillingConfig, GroupKey, NewAccount, NoProgress, Principal, Query, ServiceError,
    SyncRequest,
};
use cloudbill_store::{Cipher, MemoryStore, PgStore, SqliteStore, Store};

// In a folder of its own: a file beside main.rs would be built as a test binary too.
#[path = "cases/architecture31.rs"]
mod architecture31;
#[path = "cases/connectors32.rs"]
mod connectors32;
#[path = "cases/hardening30.rs"]
mod hardening30;

const TODAY: &str = "2025-06-15";

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn range(a: &str, b: &str) -> DateRange {
    DateRange::parse(a, b).unwrap()
}

enum Backend {
    Memory,
    Sqlite(tempfile::TempDir),
    Postgres(String),
}

impl Backend {
    async fn store(&self) -> Arc<dyn Store> {
        let key = Cipher::from_hex(&"ab".repeat(32)).unwrap();
        match self {
            Backend::Memory => Arc::new(MemoryStore::new()),
            Backend::Sqlite(dir) => Arc::new(
                SqliteStore::open(
                    &format!("sqlite://{}", dir.path().join("b.db").display()),
                    key,
                )
                .await
                .unwrap(),
            ),
            Backend::Postgres(schema) => {
                let url = std::env::var("CLOUDBILL_TEST_DATABASE_URL").unwrap();
                Arc::new(PgStore::open(&url, Some(schema), key).await.unwrap())
            }
        }
    }
}

fn backends(case: &str) -> Vec<Backend> {
    let mut out = vec![
        Backend::Memory,
        Backend::Sqlite(tempfile::tempdir().unwrap()),
    ];
    match std::env::var("CLOUDBILL_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => {
            out.push(Backend::Postgres(format!(
                "svc_{}",
                uuid::Uuid::new_v4().simple()
            )));
        }
        _ => {
            assert!(
                std::env::var("CLOUDBILL_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                "CLOUDBILL_REQUIRE_POSTGRES=1 but CLOUDBILL_TEST_DATABASE_URL is unset"
            );
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED postgres part of {case}: set CLOUDBILL_TEST_DATABASE_URL"
            );
        }
    }
    out
}

async fn drop_schema(b: &Backend) {
    if let Backend::Postgres(schema) = b {
        let url = std::env::var("CLOUDBILL_TEST_DATABASE_URL").unwrap();
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    }
}

fn registry(sim: &Simulator) -> ProviderRegistry {
    let config = ClientConfig {
        max_attempts: 3,
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
        default_endpoint: Some(sim.endpoint()),
        ..ClientConfig::default()
    };
    ProviderRegistry::new().with(Arc::new(Hyperbilling::new(config).unwrap()))
}

async fn billing(store: Arc<dyn Store>, sim: &Simulator) -> Billing {
    let config = BillingConfig {
        today: Some(date(TODAY)),
        ..BillingConfig::default()
    };
    Billing::open(store, registry(sim), "default", config)
        .await
        .unwrap()
}

fn hb(name: &str, project: &str, account: &str, email: &str, key: &str) -> NewAccount {
    NewAccount {
        name: name.into(),
        provider: "hyperbilling-aws".into(),
        project: Some(project.into()),
        settings: cloudbill_hyperbilling::settings(account, email, key, None),
    }
}

/// Two projects, three accounts; `bad` has a wrong key.
async fn setup(b: &Billing) {
    let admin = Principal::Admin;
    b.set_billing(&admin, true).await.unwrap();
    b.create_project(&admin, "web", None).await.unwrap();
    b.create_project(&admin, "data", None).await.unwrap();
    b.add_account(
        &admin,
        hb(
            "acme-main",
            "web",
            "111111111111",
            "ops@acme.example",
            "demo-key-acme",
        ),
        false,
    )
    .await
    .unwrap();
    b.add_account(
        &admin,
        hb(
            "globex",
            "data",
            "333333333333",
            "finops@globex.example",
            "demo-key-globex",
        ),
        false,
    )
    .await
    .unwrap();
    b.add_account(
        &admin,
        hb(
            "bad",
            "data",
            "222222222222",
            "ops@acme.example",
            "wrong-key",
        ),
        false,
    )
    .await
    .unwrap();
}

fn totals(report: &cloudbill_service::Report) -> std::collections::BTreeMap<String, Decimal> {
    report
        .results
        .iter()
        .map(|r| {
            (
                r.group.values().cloned().collect::<Vec<_>>().join("/"),
                r.total[0].cost,
            )
        })
        .collect()
}

async fn report(b: &Billing, q: &Query) -> cloudbill_service::Report {
    b.report(&Principal::Admin, q).await.unwrap()
}

#[tokio::test]
async fn three_accounts_two_projects_one_bad_key() {
    for backend in backends("three_accounts_two_projects_one_bad_key") {
        let sim = Simulator::start(SimConfig::demo(date(TODAY)))
            .await
            .unwrap();
        let b = billing(backend.store().await, &sim).await;
        setup(&b).await;
        let r = range("2025-03-01", "2025-06-01");
        let out = b
            .sync(
                &Principal::Admin,
                &SyncRequest {
                    accounts: vec![],
                    range: Some(r),
                },
                &NoProgress,
            )
            .await
            .unwrap();
        assert!(!out.all_succeeded());
        let states: Vec<_> = out
            .outcomes
            .iter()
            .map(|o| (o.account.as_str(), o.state))
            .collect();
        assert_eq!(
            states,
            [
                ("acme-main", JobState::Succeeded),
                ("bad", JobState::Failed),
                ("globex", JobState::Succeeded)
            ]
        );
        let bad = &out.outcomes[1];
        assert_eq!(
            bad.error.as_deref(),
            Some("invalid Hyperbilling credentials for account 222222222222")
        );

        // Per project and consolidated, exactly the simulator's totals.
        let acme = sim.expected_total("111111111111", r);
        let globex = sim.expected_total("333333333333", r);
        let mut q = Query::new(r, Granularity::Monthly);
        q.group_by = vec![GroupKey::Project];
        let per_project = totals(&report(&b, &q).await);
        assert_eq!(per_project["web"], acme);
        assert_eq!(per_project["data"], globex);
        let consolidated = report(&b, &Query::new(r, Granularity::Monthly)).await;
        assert_eq!(consolidated.results[0].total[0].cost, acme + globex);
        assert_eq!(consolidated.results[0].billing_data.len(), 3);

        // The failure is on the job, for `jobs` to show.
        let jobs = b.jobs(&Principal::Admin, Some("bad"), 10).await.unwrap();
        assert_eq!(jobs[0].job.state, JobState::Failed);
        assert!(jobs[0]
            .job
            .error
            .as_deref()
            .unwrap()
            .contains("invalid Hyperbilling credentials"));
        drop_schema(&backend).await;
    }
}

#[tokio::test]
async fn resync_is_idempotent_and_restatements_replace() {
    for backend in backends("resync_is_idempotent_and_restatements_replace") {
        let sim = Simulator::start(SimConfig::demo(date(TODAY)))
            .await
            .unwrap();
        let b = billing(backend.store().await, &sim).await;
        setup(&b).await;
        let r = range("2025-04-01", "2025-06-01");
        let req = SyncRequest {
            accounts: vec!["acme-main".into()],
            range: Some(r),
        };
        let first = b.sync(&Principal::Admin, &req, &NoProgress).await.unwrap();
        assert!(first.all_succeeded());
        let daily = |b: Billing| async move {
            let mut q = Query::new(r, Granularity::Daily);
            q.filters
                .insert(GroupKey::ServiceAccount, vec!["acme-main".into()]);
            report(&b, &q).await.results[0].billing_data.clone()
        };
        let before = daily(b.clone()).await;

        let second = b.sync(&Principal::Admin, &req, &NoProgress).await.unwrap();
        assert_eq!(
            second.outcomes[0].changed_days, 0,
            "unchanged data changes nothing"
        );
        assert_eq!(daily(b.clone()).await, before);

        sim.restate("111111111111", date("2025-05-10"));
        let third = b.sync(&Principal::Admin, &req, &NoProgress).await.unwrap();
        assert_eq!(third.outcomes[0].changed_days, 1);
        let after = daily(b.clone()).await;
        let day = |v: &[cloudbill_aggregate::Bucket], d: &str| {
            v.iter().find(|x| x.date == d).unwrap().cost
        };
        let expected = sim.expected_daily("111111111111", r);
        assert_eq!(
            day(&after, "2025-05-10"),
            expected[&date("2025-05-10")],
            "replaced, not doubled"
        );
        assert_ne!(day(&after, "2025-05-10"), day(&before, "2025-05-10"));
        assert_eq!(day(&after, "2025-05-11"), day(&before, "2025-05-11"));
        let job = &b
            .jobs(&Principal::Admin, Some("acme-main"), 1)
            .await
            .unwrap()[0]
            .job;
        assert_eq!(job.changed_days.len(), 1);
        assert_eq!(job.changed_days[0].date, date("2025-05-10"));
        assert_eq!(job.changed_days[0].new_total, expected[&date("2025-05-10")]);
        drop_schema(&backend).await;
    }
}

#[tokio::test]
async fn a_failing_window_keeps_earlier_windows_and_previous_data() {
    let sim = Simulator::start(SimConfig::demo(date(TODAY)))
        .await
        .unwrap();
    let b = billing(Arc::new(MemoryStore::new()), &sim).await;
    setup(&b).await;
    let r = range("2025-01-01", "2025-04-01");
    let req = SyncRequest {
        accounts: vec!["acme-main".into()],
        range: Some(r),
    };
    assert!(b
        .sync(&Principal::Admin, &req, &NoProgress)
        .await
        .unwrap()
        .all_succeeded());
    sim.restate("111111111111", date("2025-03-20"));
    // Window 1 succeeds after a page; then the provider keeps failing.
    let pages_in_first_window = sim
        .expected_lines("111111111111", range("2025-01-01", "2025-02-01"))
        .len()
        .div_ceil(50);
    for _ in 0..pages_in_first_window {
        sim.inject(Fault::Slow(Duration::from_millis(1)));
    }
    for _ in 0..30 {
        sim.inject(Fault::Unavailable);
    }
    let out = b.sync(&Principal::Admin, &req, &NoProgress).await.unwrap();
    assert_eq!(
        out.outcomes[0].state,
        JobState::Partial,
        "{:?}",
        out.outcomes[0]
    );
    let mut q = Query::new(r, Granularity::Daily);
    q.filters
        .insert(GroupKey::ServiceAccount, vec!["acme-main".into()]);
    let rows = report(&b, &q).await;
    let day = rows.results[0]
        .billing_data
        .iter()
        .find(|x| x.date == "2025-03-20")
        .unwrap()
        .cost;
    let old = {
        // The restated day was not re-fetched: it still holds the pre-restatement number.
        let mut fresh = Simulator::start(SimConfig::demo(date(TODAY)))
            .await
            .unwrap()
            .expected_daily("111111111111", r);
        fresh.remove(&date("2025-03-20")).unwrap()
    };
    assert_eq!(day, old);
}

#[tokio::test]
async fn moving_an_account_from_a_date_splits_its_costs() {
    let sim = Simulator::start(SimConfig::demo(date(TODAY)))
        .await
        .unwrap();
    let b = billing(Arc::new(MemoryStore::new()), &sim).await;
    setup(&b).await;
    let r = range("2025-01-01", "2025-04-01");
    b.sync(
        &Principal::Admin,
        &SyncRequest {
            accounts: vec!["acme-main".into()],
            range: Some(r),
        },
        &NoProgress,
    )
    .await
    .unwrap();
    b.move_account(
        &Principal::Admin,
        "acme-main",
        "data",
        Some(date("2025-03-01")),
    )
    .await
    .unwrap();
    let mut q = Query::new(r, Granularity::Monthly);
    q.group_by = vec![GroupKey::Project];
    let t = totals(&report(&b, &q).await);
    assert_eq!(
        t["web"],
        sim.expected_total("111111111111", range("2025-01-01", "2025-03-01"))
    );
    assert_eq!(
        t["data"],
        sim.expected_total("111111111111", range("2025-03-01", "2025-04-01"))
    );
    // Without a date the whole history moves.
    b.move_account(&Principal::Admin, "acme-main", "data", None)
        .await
        .unwrap();
    let t = totals(&report(&b, &q).await);
    assert!(!t.contains_key("web"));
    assert_eq!(t["data"], sim.expected_total("111111111111", r));
}

#[tokio::test]
async fn default_range_goes_back_twelve_months_then_from_the_last_sync() {
    let sim = Simulator::start(SimConfig::demo(date(TODAY)))
        .await
        .unwrap();
    let b = billing(Arc::new(MemoryStore::new()), &sim).await;
    setup(&b).await;
    let req = SyncRequest {
        accounts: vec!["acme-main".into()],
        range: None,
    };
    let first = b.sync(&Principal::Admin, &req, &NoProgress).await.unwrap();
    assert_eq!(
        first.outcomes[0].range,
        Some(range("2024-06-01", "2025-06-16"))
    );
    let second = b.sync(&Principal::Admin, &req, &NoProgress).await.unwrap();
    // Last good sync covered through 2025-06-15; minus 10 days → 2025-06-06 → the 1st.
    assert_eq!(
        second.outcomes[0].range,
        Some(range("2025-06-01", "2025-06-16"))
    );
}

#[tokio::test]
async fn billing_off_disabled_things_and_leases_are_refused_clearly() {
    let sim = Simulator::start(SimConfig::demo(date(TODAY)))
        .await
        .unwrap();
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let b = billing(store.clone(), &sim).await;
    let admin = Principal::Admin;
    let r = Some(range("2025-05-01", "2025-05-03"));
    let err = b
        .sync(&admin, &SyncRequest::default(), &NoProgress)
        .await
        .unwrap_err();
    assert!(matches!(err, ServiceError::BillingDisabled { .. }));
    assert_eq!(
        err.to_string(),
        "billing is not enabled for domain \"default\""
    );
    // The remedy is data, for each binary to render in its own terms (#14).
    assert_eq!(err.parts().1, Some(cloudbill_service::Hint::EnableBilling));
    assert!(matches!(
        b.report(
            &admin,
            &Query::new(range("2025-01-01", "2025-02-01"), Granularity::Daily)
        )
        .await
        .unwrap_err(),
        ServiceError::BillingDisabled { .. }
    ));
    setup(&b).await;

    b.set_account_state(&admin, "globex", AccountState::Disabled)
        .await
        .unwrap();
    let out = b
        .sync(
            &admin,
            &SyncRequest {
                accounts: vec![],
                range: r,
            },
            &NoProgress,
        )
        .await
        .unwrap();
    assert!(
        out.outcomes.iter().all(|o| o.account != "globex"),
        "disabled accounts are skipped"
    );
    let out = b
        .sync(
            &admin,
            &SyncRequest {
                accounts: vec!["globex".into()],
                range: r,
            },
            &NoProgress,
        )
        .await
        .unwrap();
    assert!(out.outcomes[0]
        .error
        .as_deref()
        .unwrap()
        .contains("account is disabled"));

    b.set_provider_state(&admin, "hyperbilling-aws", ProviderState::Disabled)
        .await
        .unwrap();
    let out = b
        .sync(
            &admin,
            &SyncRequest {
                accounts: vec!["acme-main".into()],
                range: r,
            },
            &NoProgress,
        )
        .await
        .unwrap();
    assert!(out.outcomes[0]
        .error
        .as_deref()
        .unwrap()
        .contains("provider hyperbilling-aws is disabled"));
    let err = b
        .add_account(&admin, hb("x", "web", "1", "a@b", "k"), false)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("disabled"), "{err}");
    b.set_provider_state(&admin, "hyperbilling-aws", ProviderState::Enabled)
        .await
        .unwrap();

    // Another holder (another process on the same database) holds the lease.
    let acme = b.account(&admin, "acme-main").await.unwrap();
    let now = chrono::Utc::now();
    assert!(store
        .try_lease(
            acme.id,
            "other-process",
            now,
            now + chrono::Duration::minutes(5)
        )
        .await
        .unwrap());
    let out = b
        .sync(
            &admin,
            &SyncRequest {
                accounts: vec!["acme-main".into()],
                range: r,
            },
            &NoProgress,
        )
        .await
        .unwrap();
    assert!(out.outcomes[0]
        .error
        .as_deref()
        .unwrap()
        .contains("already running in another process"));
    store.release_lease(acme.id, "other-process").await.unwrap();
    let out = b
        .sync(
            &admin,
            &SyncRequest {
                accounts: vec!["acme-main".into()],
                range: r,
            },
            &NoProgress,
        )
        .await
        .unwrap();
    assert!(out.all_succeeded());
}

#[tokio::test]
async fn registration_rules() {
    let sim = Simulator::start(SimConfig::demo(date(TODAY)))
        .await
        .unwrap();
    let b = billing(Arc::new(MemoryStore::new()), &sim).await;
    setup(&b).await;
    let admin = Principal::Admin;
    let mut no_project = hb(
        "np",
        "web",
        "111111111111",
        "ops@acme.example",
        "demo-key-acme",
    );
    no_project.project = None;
    let err = b.add_account(&admin, no_project, false).await.unwrap_err();
    assert!(
        err.to_string().starts_with("a project is required"),
        "{err}"
    );
    let err = b
        .add_account(&admin, hb("x", "nope", "1", "a@b", "k"), false)
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "project \"nope\" not found");
    let err = b
        .add_account(&admin, hb("acme-main", "web", "1", "a@b", "k"), false)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "service account \"acme-main\" already exists"
    );
    // --verify refuses bad credentials and stores nothing.
    let err = b
        .add_account(
            &admin,
            hb("v", "web", "111111111111", "ops@acme.example", "bad"),
            true,
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("invalid Hyperbilling credentials"),
        "{err}"
    );
    assert!(b.account(&admin, "v").await.is_err());
    b.add_account(
        &admin,
        hb(
            "v",
            "web",
            "111111111111",
            "ops@acme.example",
            "demo-key-acme",
        ),
        true,
    )
    .await
    .unwrap();
    assert_eq!(
        b.verify_account(&admin, "v").await.unwrap(),
        ["111111111111", "222222222222"]
    );
    // A file account takes no credentials.
    let file = NewAccount {
        name: "f".into(),
        provider: "file".into(),
        project: Some("web".into()),
        settings: cloudbill_core::Settings::default(),
    };
    b.add_account(&admin, file, false).await.unwrap();
}

#[tokio::test]
async fn project_members_see_only_their_projects() {
    let sim = Simulator::start(SimConfig::demo(date(TODAY)))
        .await
        .unwrap();
    let b = billing(Arc::new(MemoryStore::new()), &sim).await;
    setup(&b).await;
    let r = range("2025-05-01", "2025-06-01");
    b.sync(
        &Principal::Admin,
        &SyncRequest {
            accounts: vec![],
            range: Some(r),
        },
        &NoProgress,
    )
    .await
    .unwrap();
    let web = b.project(&Principal::Admin, "web").await.unwrap();
    let member = Principal::ProjectMember {
        projects: vec![web.id],
    };
    // Consolidated view: forbidden.
    let err = b
        .report(&member, &Query::new(r, Granularity::Monthly))
        .await
        .unwrap_err();
    assert!(matches!(err, ServiceError::Forbidden(_)));
    // Own project: allowed and exact.
    let mut q = Query::new(r, Granularity::Monthly);
    q.filters.insert(GroupKey::Project, vec!["web".into()]);
    let rep = b.report(&member, &q).await.unwrap();
    assert_eq!(
        rep.results[0].total[0].cost,
        sim.expected_total("111111111111", r)
    );
    // Another project: as if it did not exist (#13: no 403-vs-404 oracle for names).
    q.filters.insert(GroupKey::Project, vec!["data".into()]);
    let other = b.report(&member, &q).await.unwrap_err();
    q.filters
        .insert(GroupKey::Project, vec!["no-such-project".into()]);
    let missing = b.report(&member, &q).await.unwrap_err();
    assert!(matches!(other, ServiceError::NotFound { .. }), "{other}");
    assert_eq!(
        other.to_string().replace("data", "X"),
        missing.to_string().replace("no-such-project", "X")
    );
    assert!(matches!(
        b.project(&member, "data").await.unwrap_err(),
        ServiceError::NotFound { .. }
    ));
    assert_eq!(b.projects(&member).await.unwrap().len(), 1);
    assert_eq!(b.accounts(&member).await.unwrap().len(), 1);
    // Read-only: no writes.
    assert!(matches!(
        b.create_project(&member, "x", None).await.unwrap_err(),
        ServiceError::Forbidden(_)
    ));
    assert!(matches!(
        b.sync(&member, &SyncRequest::default(), &NoProgress)
            .await
            .unwrap_err(),
        ServiceError::Forbidden(_)
    ));
    assert!(matches!(
        b.set_billing(&member, false).await.unwrap_err(),
        ServiceError::Forbidden(_)
    ));
}

#[tokio::test]
async fn the_scheduler_syncs_on_its_cadence_and_stops_on_shutdown() {
    let sim = Simulator::start(SimConfig::demo(date(TODAY)))
        .await
        .unwrap();
    let b = billing(Arc::new(MemoryStore::new()), &sim).await;
    setup(&b).await;
    let (tx, rx) = tokio::sync::watch::channel(false);
    let config = cloudbill_service::SchedulerConfig {
        cadence: Duration::from_millis(50),
        jitter: Duration::from_millis(20),
    };
    let task = tokio::spawn({
        let b = b.clone();
        async move { b.run_scheduler(config, rx, &NoProgress).await }
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let jobs = b
            .jobs(&Principal::Admin, Some("acme-main"), 10)
            .await
            .unwrap();
        if jobs
            .iter()
            .filter(|j| j.job.state == JobState::Succeeded)
            .count()
            >= 2
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the scheduler did not run twice"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .expect("scheduler stops")
        .unwrap();
    // Every enabled account was synced; the bad one recorded its failure.
    let bad = b.jobs(&Principal::Admin, Some("bad"), 10).await.unwrap();
    assert!(bad.iter().all(|j| j.job.state == JobState::Failed));
    assert!(!bad.is_empty());
}

#[tokio::test]
async fn a_job_left_running_by_a_dead_process_is_marked_interrupted() {
    let sim = Simulator::start(SimConfig::demo(date(TODAY)))
        .await
        .unwrap();
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let b = billing(store.clone(), &sim).await;
    setup(&b).await;
    let acme = b.account(&Principal::Admin, "acme-main").await.unwrap();
    let stale = cloudbill_core::SyncJob {
        id: cloudbill_core::JobId::new(),
        domain: acme.domain,
        account: acme.id,
        kind: cloudbill_core::JobKind::Sync,
        window: range("2025-01-01", "2025-02-01"),
        state: JobState::Running,
        rows: 0,
        changed_days: vec![],
        error: None,
        started_at: chrono::Utc::now() - chrono::Duration::hours(1),
        finished_at: None,
    };
    store.save_job(&stale).await.unwrap();
    b.sync(
        &Principal::Admin,
        &SyncRequest {
            accounts: vec!["acme-main".into()],
            range: Some(range("2025-05-01", "2025-05-02")),
        },
        &NoProgress,
    )
    .await
    .unwrap();
    let jobs = b
        .jobs(&Principal::Admin, Some("acme-main"), 10)
        .await
        .unwrap();
    let old = jobs.iter().find(|j| j.job.id == stale.id).unwrap();
    assert_eq!(old.job.state, JobState::Failed);
    assert!(old.job.error.as_deref().unwrap().starts_with("interrupted"));
}

#[tokio::test]
async fn tokens_authenticate_until_revoked_and_are_stored_hashed() {
    let sim = Simulator::start(SimConfig::demo(date(TODAY)))
        .await
        .unwrap();
    let b = billing(Arc::new(MemoryStore::new()), &sim).await;
    setup(&b).await;
    let admin = Principal::Admin;
    let (admin_token, admin_secret) = b
        .create_token(&admin, cloudbill_core::TokenRole::Admin, None, "ops")
        .await
        .unwrap();
    let (_, member_secret) = b
        .create_token(
            &admin,
            cloudbill_core::TokenRole::ProjectMember,
            Some("web"),
            "web team",
        )
        .await
        .unwrap();
    assert!(admin_secret.starts_with("cbt_") && admin_secret.len() == 68);
    assert_eq!(
        b.authenticate(&admin_secret).await.unwrap(),
        Principal::Admin
    );
    let web = b.project(&admin, "web").await.unwrap();
    assert_eq!(
        b.authenticate(&member_secret).await.unwrap(),
        Principal::ProjectMember {
            projects: vec![web.id]
        }
    );
    assert!(matches!(
        b.authenticate("cbt_nope").await.unwrap_err(),
        ServiceError::Unauthenticated(_)
    ));
    assert!(b
        .create_token(&admin, cloudbill_core::TokenRole::ProjectMember, None, "x")
        .await
        .is_err());
    let member = b.authenticate(&member_secret).await.unwrap();
    assert!(matches!(
        b.create_token(&member, cloudbill_core::TokenRole::Admin, None, "x")
            .await
            .unwrap_err(),
        ServiceError::Forbidden(_)
    ));
    b.revoke_token(&admin, &admin_token.id.to_string())
        .await
        .unwrap();
    assert!(matches!(
        b.authenticate(&admin_secret).await.unwrap_err(),
        ServiceError::Unauthenticated(_)
    ));
    let listed = b.tokens(&admin).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(!format!("{listed:?}").contains(&admin_secret[4..]));
}

#[tokio::test]
async fn a_warm_engine_reloads_when_data_changes() {
    for backend in backends("a_warm_engine_reloads_when_data_changes") {
        let sim = Simulator::start(SimConfig::demo(date(TODAY)))
            .await
            .unwrap();
        let config = BillingConfig {
            today: Some(date(TODAY)),
            warm_engine: true,
            ..BillingConfig::default()
        };
        let b = Billing::open(backend.store().await, registry(&sim), "default", config)
            .await
            .unwrap();
        setup(&b).await;
        let r = range("2025-05-01", "2025-06-01");
        let q = Query::new(r, Granularity::Monthly);
        assert!(report(&b, &q).await.results.is_empty());
        b.sync(
            &Principal::Admin,
            &SyncRequest {
                accounts: vec!["acme-main".into()],
                range: Some(r),
            },
            &NoProgress,
        )
        .await
        .unwrap();
        assert_eq!(
            report(&b, &q).await.results[0].total[0].cost,
            sim.expected_total("111111111111", r),
            "reloaded after the sync"
        );
        // A cached answer is the same answer, and billing off still refuses it.
        let again = b.answer_shared(&Principal::Admin, &q).await.unwrap();
        assert!(
            std::sync::Arc::ptr_eq(
                &again,
                &b.answer_shared(&Principal::Admin, &q).await.unwrap()
            ),
            "served from the cache"
        );
        b.set_billing(&Principal::Admin, false).await.unwrap();
        assert!(matches!(
            b.answer_shared(&Principal::Admin, &q).await.unwrap_err(),
            ServiceError::BillingDisabled { .. }
        ));
        b.set_billing(&Principal::Admin, true).await.unwrap();
        sim.restate("111111111111", date("2025-05-05"));
        b.sync(
            &Principal::Admin,
            &SyncRequest {
                accounts: vec!["acme-main".into()],
                range: Some(r),
            },
            &NoProgress,
        )
        .await
        .unwrap();
        assert_eq!(
            report(&b, &q).await.results[0].total[0].cost,
            sim.expected_total("111111111111", r),
            "reloaded after the restatement"
        );
        // A catalog change (a move) is seen too.
        b.move_account(&Principal::Admin, "acme-main", "data", None)
            .await
            .unwrap();
        let mut by_project = Query::new(r, Granularity::Monthly);
        by_project.group_by = vec![GroupKey::Project];
        assert_eq!(
            report(&b, &by_project).await.results[0].group["project"],
            "data"
        );
        drop_schema(&backend).await;
    }
}

/// #16 (begun): the answer cache is bounded in bytes — an answer above `answer_max_bytes` is
/// computed each time (never kept), and one within it is served from the cache.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_answer_cache_keeps_only_answers_within_its_bounds() {
    let sim = Simulator::start(SimConfig::demo(date(TODAY)))
        .await
        .unwrap();
    let config = BillingConfig {
        today: Some(date(TODAY)),
        warm_engine: true,
        answer_max_bytes: 4 << 10,
        ..BillingConfig::default()
    };
    let b = Billing::open(
        Arc::new(cloudbill_store::MemoryStore::new()),
        registry(&sim),
        "default",
        config,
    )
    .await
    .unwrap();
    setup(&b).await;
    let r = range("2025-05-01", "2025-06-01");
    b.sync(
        &Principal::Admin,
        &SyncRequest {
            accounts: vec!["acme-main".into()],
            range: Some(r),
        },
        &NoProgress,
    )
    .await
    .unwrap();
    let small = Query::new(r, Granularity::Monthly);
    let first = b.answer_shared(&Principal::Admin, &small).await.unwrap();
    assert!(std::sync::Arc::ptr_eq(
        &first,
        &b.answer_shared(&Principal::Admin, &small).await.unwrap()
    ));
    // Daily × service × usage type: far above 4 KiB.
    let mut big = Query::new(r, Granularity::Daily);
    big.group_by = vec![GroupKey::Service, GroupKey::UsageType];
    let one = b.answer_shared(&Principal::Admin, &big).await.unwrap();
    let two = b.answer_shared(&Principal::Admin, &big).await.unwrap();
    assert!(!std::sync::Arc::ptr_eq(&one, &two), "too big to keep");
    assert_eq!(one, two, "and the same answer each time");
}

/// Records what would be sent.
#[derive(Default)]
struct Recorder(std::sync::Mutex<Vec<(String, String, serde_json::Value)>>);

#[async_trait::async_trait]
impl cloudbill_service::Notifier for Recorder {
    async fn send(&self, m: cloudbill_service::Outgoing<'_>) -> Result<(), String> {
        self.0.lock().unwrap().push((
            m.channel.name.to_string(),
            m.event.kind.clone(),
            serde_json::from_str(&m.event.payload).unwrap(),
        ));
        Ok(())
    }
}

fn budget(
    name: &str,
    project: Option<&str>,
    amount: Decimal,
    notify: &[&str],
) -> cloudbill_service::NewBudget {
    cloudbill_service::NewBudget {
        name: name.into(),
        amount: amount.to_string(),
        currency: "USD".into(),
        project: project.map(str::to_owned),
        notifications: notify
            .iter()
            .map(|t| cloudbill_service::NewNotification {
                threshold: (*t).to_owned(),
                channels: vec![],
            })
            .collect(),
        channels: vec!["rec".into()],
        ..cloudbill_service::NewBudget::default()
    }
}

#[tokio::test]
async fn budgets_fire_once_per_period_on_every_backend_and_members_see_their_own() {
    for backend in backends("budgets_fire_once_per_period") {
        let sim = Simulator::start(SimConfig::demo(date(TODAY)))
            .await
            .unwrap();
        let b = billing(backend.store().await, &sim).await;
        let recorder = Arc::new(Recorder::default());
        b.set_notifier(recorder.clone());
        setup(&b).await;
        let admin = Principal::Admin;
        b.add_channel(
            &admin,
            cloudbill_service::NewChannel {
                name: "rec".into(),
                spec: cloudbill_service::ChannelSpec::Webhook {
                    url: "http://127.0.0.1:9/hook".into(),
                    secret: ClientSecret::new("whsec-0123456789abcdef").unwrap(),
                },
            },
        )
        .await
        .unwrap();
        let june = range("2025-06-01", "2025-06-15");
        let sync = SyncRequest {
            accounts: vec!["acme-main".into(), "globex".into()],
            range: Some(june),
        };
        assert!(b
            .sync(&admin, &sync, &NoProgress)
            .await
            .unwrap()
            .all_succeeded());
        let web_june = sim.expected_total("111111111111", june);
        // Exactly the amount spent: actual:100% is crossed (at or above the limit).
        let web = b
            .create_budget(
                &admin,
                budget(
                    "web",
                    Some("web"),
                    web_june,
                    &["actual:100%", "actual:150%"],
                ),
            )
            .await
            .unwrap();
        assert_eq!(web.scope.kind, "project");
        b.create_budget(
            &admin,
            budget(
                "data",
                Some("data"),
                Decimal::from(1_000_000),
                &["actual:50%"],
            ),
        )
        .await
        .unwrap();
        let mut effective = budget("web-effective", Some("web"), web_june, &["actual:100%"]);
        effective.metric = Some("effective".into());
        b.create_budget(&admin, effective).await.unwrap();
        let sent = recorder.0.lock().unwrap().clone();
        // web and web-effective (these records carry no EffectiveCost: it is their billed).
        assert_eq!(sent.len(), 2, "{sent:?}");
        assert!(sent
            .iter()
            .all(|(c, k, _)| c == "rec" && k == "budget.threshold_crossed"));
        assert!(sent
            .iter()
            .all(|(_, _, p)| p["actual"] == web_june.to_string().as_str()));
        let mut metrics: Vec<&str> = sent
            .iter()
            .map(|(_, _, p)| p["metric"].as_str().unwrap())
            .collect();
        metrics.sort_unstable();
        assert_eq!(metrics, ["billed", "effective"]);
        assert_eq!(sent[0].2["period"]["start"], "2025-06-01");

        // Unchanged data, evaluated again: nothing new, on any backend.
        b.sync(&admin, &sync, &NoProgress).await.unwrap();
        let e = b.evaluate_all_budgets(&admin).await.unwrap();
        assert_eq!((e.budgets, e.events.len()), (3, 0));
        assert_eq!(recorder.0.lock().unwrap().len(), 2);
        let log = b.delivery_log(&admin, 10).await.unwrap();
        assert_eq!(log.len(), 2);
        assert!(log
            .iter()
            .all(|d| d.delivery.state == cloudbill_core::DeliveryState::Sent));
        assert_eq!(b.delivery_counts().await.unwrap().sent, 2);

        let status = b.budget_status(&admin, Some("web"), None).await.unwrap();
        assert_eq!(status[0].actual, web_june);
        assert_eq!(status[0].percent_used, Some(Decimal::from(100)));
        let states: Vec<&str> = status[0].notifications.iter().map(|n| n.state).collect();
        assert_eq!(states, ["fired", "ok"]);
        // May: a past period, its forecast is its actual.
        let may = b
            .budget_status(&admin, Some("web"), Some(date("2025-05-01")))
            .await
            .unwrap();
        assert_eq!(may[0].forecast_status, "period_over");
        assert_eq!(may[0].forecast, Some(may[0].actual));
        assert_eq!(b.budget_events(&admin, None, 10).await.unwrap().len(), 2);

        // Members: their projects' budgets only; other budgets do not exist for them.
        let data = b.project(&admin, "data").await.unwrap();
        let member = Principal::ProjectMember {
            projects: vec![data.id],
        };
        let mine = b.budgets(&member).await.unwrap();
        assert_eq!(
            mine.iter().map(|v| v.name.as_str()).collect::<Vec<_>>(),
            ["data"]
        );
        assert!(matches!(
            b.budget(&member, "web").await.unwrap_err(),
            ServiceError::NotFound { .. }
        ));
        assert!(b.budget_events(&member, None, 10).await.unwrap().is_empty());
        assert!(matches!(
            b.create_budget(
                &member,
                budget("x", Some("web"), Decimal::ONE, &["actual:1%"])
            )
            .await
            .unwrap_err(),
            ServiceError::NotFound { .. }
        ));
        assert!(matches!(
            b.create_budget(&member, budget("x", None, Decimal::ONE, &["actual:1%"]))
                .await
                .unwrap_err(),
            ServiceError::Forbidden(_)
        ));
        b.create_budget(
            &member,
            budget("data-2", Some("data"), Decimal::from(5), &["forecast:100%"]),
        )
        .await
        .unwrap();
        assert!(matches!(
            b.delete_budget(&member, "web").await.unwrap_err(),
            ServiceError::NotFound { .. }
        ));
        assert!(b
            .channels(&member)
            .await
            .unwrap()
            .iter()
            .all(|c| c.target.is_empty()));
        assert!(matches!(
            b.flush_notifications(&member).await.unwrap_err(),
            ServiceError::Forbidden(_)
        ));
        b.delete_budget(&member, "data-2").await.unwrap();
        // A budget name is unique; a channel in use stays.
        assert!(b
            .create_budget(&admin, budget("web", None, Decimal::ONE, &["actual:1%"]))
            .await
            .is_err());
        assert!(matches!(
            b.remove_channel(&admin, "rec").await.unwrap_err(),
            ServiceError::Conflict(_)
        ));
        drop_schema(&backend).await;
    }
}

#[tokio::test]
async fn replicas_on_one_database_sync_each_account_once_per_interval() {
    let sim = Simulator::start(SimConfig::demo(date(TODAY)))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let backend = Backend::Sqlite(dir);
    let (a, b) = (
        billing(backend.store().await, &sim).await,
        billing(backend.store().await, &sim).await,
    );
    setup(&a).await;
    let every = Duration::from_secs(6 * 3600);
    // Two servers' scheduler rounds at the same moment.
    let (ra, rb) = tokio::join!(
        a.sync_due(every, &NoProgress),
        b.sync_due(every, &NoProgress)
    );
    let synced = ra.unwrap().outcomes.len() + rb.unwrap().outcomes.len();
    assert_eq!(
        synced, 3,
        "each of the 3 accounts once, by one replica or the other"
    );
    let jobs = a.jobs(&Principal::Admin, None, 100).await.unwrap();
    assert_eq!(jobs.len(), 3);
    // The next round of either replica in the same interval syncs nothing.
    assert!(b
        .sync_due(every, &NoProgress)
        .await
        .unwrap()
        .outcomes
        .is_empty());
    assert!(a
        .sync_due(every, &NoProgress)
        .await
        .unwrap()
        .outcomes
        .is_empty());
    // A short interval has passed: due again.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let again = a
        .sync_due(Duration::from_millis(10), &NoProgress)
        .await
        .unwrap();
    assert_eq!(again.outcomes.len(), 3);
}

#[tokio::test]
async fn a_period_is_not_closed_while_a_sync_runs_but_a_dead_jobs_leftover_does_not_block() {
    let sim = Simulator::start(SimConfig::demo(date(TODAY)))
        .await
        .unwrap();
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let b = billing(store.clone(), &sim).await;
    setup(&b).await;
    let acme = b.account(&Principal::Admin, "acme-main").await.unwrap();
    let domain = b.domain().await.unwrap().id;
    // Another process is syncing acme-main: its job runs and it holds the lease.
    let job = cloudbill_core::SyncJob::running(
        domain,
        acme.id,
        cloudbill_core::JobKind::Sync,
        range("2025-05-01", "2025-06-01"),
        chrono::Utc::now(),
    );
    store.save_job(&job).await.unwrap();
    let now = chrono::Utc::now();
    assert!(store
        .try_lease(
            acme.id,
            "other-process",
            now,
            now + chrono::Duration::minutes(5)
        )
        .await
        .unwrap());
    let err = b
        .close_period(&Principal::Admin, "2025-05")
        .await
        .unwrap_err();
    assert!(matches!(err, ServiceError::Conflict(_)), "{err}");
    assert!(err.to_string().contains(&job.id.to_string()), "{err}");
    // The process died: its lease lapses, its job stays "running"; the close goes through.
    store.release_lease(acme.id, "other-process").await.unwrap();
    let closed = b.close_period(&Principal::Admin, "2025-05").await.unwrap();
    assert_eq!(closed.state, "closed");
}

/// #16: after a one-account re-sync, a project move and an account's removal the warm engine
/// is updated in place (only the changed slices read again), and every answer equals one
/// from an engine loaded whole from the same store.
#[tokio::test]
async fn the_warm_engine_is_updated_in_place_and_answers_as_a_full_load() {
    for backend in backends("the_warm_engine_is_updated_in_place") {
        let sim = Simulator::start(SimConfig::demo(date(TODAY)))
            .await
            .unwrap();
        let config = BillingConfig {
            today: Some(date(TODAY)),
            warm_engine: true,
            ..BillingConfig::default()
        };
        let store = backend.store().await;
        let b = Billing::open(
            Arc::clone(&store),
            registry(&sim),
            "default",
            config.clone(),
        )
        .await
        .unwrap();
        setup(&b).await;
        let year = range("2025-01-01", "2025-07-01");
        let sync = |accounts: &[&str], r| SyncRequest {
            accounts: accounts.iter().map(|a| (*a).to_owned()).collect(),
            range: Some(r),
        };
        b.sync(
            &Principal::Admin,
            &sync(&["acme-main", "globex"], year),
            &NoProgress,
        )
        .await
        .unwrap();
        let mut q = Query::new(year, Granularity::Monthly);
        q.group_by = vec![
            GroupKey::Project,
            GroupKey::ServiceAccount,
            GroupKey::Service,
        ];
        report(&b, &q).await; // loads the warm engine
        let loaded = b.warm_info().expect("a warm engine");
        assert_eq!(loaded.updates, 0);
        // A whole engine over the same store, for comparison after each change.
        let whole = || async {
            let fresh = Billing::open(
                Arc::clone(&store),
                registry(&sim),
                "default",
                BillingConfig {
                    warm_engine: false,
                    ..config.clone()
                },
            )
            .await
            .unwrap();
            fresh.report(&Principal::Admin, &q).await.unwrap()
        };
        // One account's month re-synced with a restated day.
        sim.restate("111111111111", date("2025-05-05"));
        b.sync(
            &Principal::Admin,
            &sync(&["acme-main"], range("2025-05-01", "2025-06-01")),
            &NoProgress,
        )
        .await
        .unwrap();
        let after_sync = b.warm_info().unwrap();
        assert_eq!(
            after_sync.updates, 1,
            "updated in place by the sync, not reloaded"
        );
        assert!(after_sync.version > loaded.version);
        assert_eq!(after_sync.records, loaded.records);
        assert_eq!(report(&b, &q).await, whole().await);
        assert_eq!(
            b.refresh_engine().await.unwrap(),
            cloudbill_service::Refreshed::Current
        );
        // A move (catalog only: no cost read again) and a removed account.
        b.move_account(&Principal::Admin, "globex", "web", Some(date("2025-03-10")))
            .await
            .unwrap();
        assert_eq!(
            b.refresh_engine().await.unwrap(),
            cloudbill_service::Refreshed::Updated { slices: 0, rows: 0 }
        );
        assert_eq!(report(&b, &q).await, whole().await);
        b.remove_account(&Principal::Admin, "acme-main")
            .await
            .unwrap();
        assert!(matches!(
            b.refresh_engine().await.unwrap(),
            cloudbill_service::Refreshed::Updated { slices: 1, rows: 0 }
        ));
        let gone = report(&b, &q).await;
        assert_eq!(gone, whole().await);
        assert!(gone
            .results
            .iter()
            .all(|r| r.group["service_account"] != "acme-main"));
        assert_eq!(b.warm_info().unwrap().updates, 3);
        drop_schema(&backend).await;
    }
}
