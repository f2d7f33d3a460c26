//! Three real `cloudbill-server` replicas on one PostgreSQL database (issue #16): scheduled
//! syncs claimed once across them, a replica killed mid-sync taken over after its lease, a
//! change visible on every replica within a second, and domains kept apart on each.

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cloudbill_core::{DateRange, Granularity, JobState, TokenRole};
use cloudbill_hyperbilling::sim::{Fault, SimConfig, Simulator};
use cloudbill_hyperbilling::{ClientConfig, Hyperbilling};
use cloudbill_service::{
    Billing, BillingConfig, NewAccount, NoProgress, Principal, ProviderRegistry, Query,
    SyncRequest, SystemAdmin, Tenants,
};
use cloudbill_store::{Cipher, PgStore};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::harness::date;

const KEY: &str = "5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e";
const TODAY: &str = "2025-06-30";

struct Replica {
    child: tokio::process::Child,
    url: String,
}

async fn start(db: &str, sim: &Simulator, data: &std::path::Path, every_secs: u64) -> Replica {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_cloudbill-server"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            db,
            "--sync-every-secs",
            &every_secs.to_string(),
            "--sync-jitter-secs",
            "0",
        ])
        .env("CLOUDBILL_SECRET_KEY", KEY)
        .env("CLOUDBILL_HYPERBILLING_ENDPOINT", sim.endpoint())
        .env("CLOUDBILL_SYNC_LEASE_SECS", "3")
        .env("CLOUDBILL_TODAY", TODAY)
        .env("XDG_DATA_HOME", data)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .expect("the replica starts")
        .unwrap()
        .expect("it prints its address");
    let url = line
        .strip_prefix("cloudbill-server listening on ")
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .trim_end_matches('/')
        .to_owned();
    let http = reqwest::Client::new();
    for _ in 0..300 {
        if http
            .get(format!("{url}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            return Replica { child, url };
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("replica {url} never became ready");
}

async fn report(http: &reqwest::Client, r: &Replica, token: &str, body: &Value) -> Value {
    let resp = http
        .post(format!("{}/api/v1/billing/query", r.url))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

/// Jobs of every account started at or after `since`, by account name.
/// How long after `since` every replica answered `body` with `want` (each within 1 s).
async fn all_answer(
    http: &reqwest::Client,
    replicas: &[Replica],
    token: &str,
    body: &Value,
    want: &Value,
    since: Instant,
) -> Duration {
    let mut slowest = Duration::ZERO;
    for r in replicas {
        loop {
            if report(http, r, token, body).await == *want {
                slowest = slowest.max(since.elapsed());
                break;
            }
            assert!(
                since.elapsed() < Duration::from_secs(1),
                "{} still answers the old data after 1 s",
                r.url
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    slowest
}

async fn jobs_since(
    billing: &Billing,
    since: chrono::DateTime<chrono::Utc>,
) -> Vec<(String, JobState)> {
    billing
        .jobs(&Principal::Admin, None, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|j| j.job.started_at >= since)
        .map(|j| (j.account_name, j.job.state))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_on_one_postgres_claim_syncs_once_take_over_and_agree() {
    let Ok(base) = std::env::var("CLOUDBILL_TEST_DATABASE_URL") else {
        assert!(
            std::env::var("CLOUDBILL_REQUIRE_POSTGRES").as_deref() != Ok("1"),
            "PostgreSQL required"
        );
        eprintln!("SKIPPED replicas: set CLOUDBILL_TEST_DATABASE_URL");
        return;
    };
    // A database of its own (replicas take a plain URL).
    let name = format!("cbrep_{}", uuid::Uuid::new_v4().simple());
    let admin_pool = sqlx::PgPool::connect(&base).await.unwrap();
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin_pool)
        .await
        .unwrap();
    let (server, _) = base
        .rsplit_once('/')
        .expect("a database URL names its database");
    let db = format!("{server}/{name}");
    let data = tempfile::tempdir().unwrap();

    let sim = Simulator::start(SimConfig::demo(date(TODAY)))
        .await
        .unwrap();
    let store = PgStore::open(&db, None, Cipher::from_hex(KEY).unwrap())
        .await
        .unwrap();
    let providers = ProviderRegistry::new().with(Arc::new(
        Hyperbilling::new(ClientConfig::default()).unwrap(),
    ));
    let billing = Billing::open(
        Arc::new(store),
        providers,
        "default",
        BillingConfig {
            today: Some(date(TODAY)),
            warm_engine: true,
            ..BillingConfig::default()
        },
    )
    .await
    .unwrap();
    let admin = Principal::Admin;
    billing.set_billing(&admin, true).await.unwrap();
    billing.create_project(&admin, "web", None).await.unwrap();
    billing.create_project(&admin, "data", None).await.unwrap();
    for (name, project, account, email, key) in [
        (
            "acme-main",
            "web",
            "111111111111",
            "ops@acme.example",
            "demo-key-acme",
        ),
        (
            "acme-two",
            "data",
            "222222222222",
            "ops@acme.example",
            "demo-key-acme",
        ),
        (
            "globex",
            "data",
            "333333333333",
            "finops@globex.example",
            "demo-key-globex",
        ),
    ] {
        billing
            .add_account(
                &admin,
                NewAccount {
                    name: name.into(),
                    provider: "hyperbilling-aws".into(),
                    project: Some(project.into()),
                    settings: cloudbill_hyperbilling::settings(
                        account,
                        email,
                        key,
                        Some(&sim.endpoint()),
                    ),
                },
                false,
            )
            .await
            .unwrap();
    }
    let (_, token) = billing
        .create_token(&admin, TokenRole::Admin, None, "replicas")
        .await
        .unwrap();
    let http = reqwest::Client::new();

    // 1. Three replicas, one round each at start (hourly cadence): every account synced
    //    exactly once, its first (12-month) sync.
    let since = date(TODAY).and_time(chrono::Utc::now().time()).and_utc();
    let mut replicas = Vec::new();
    for _ in 0..3 {
        replicas.push(start(&db, &sim, data.path(), 3600).await);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let jobs = jobs_since(&billing, since).await;
        let done = jobs.iter().filter(|(_, s)| *s != JobState::Running).count();
        if done >= 3 || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut synced: Vec<String> = jobs_since(&billing, since)
        .await
        .into_iter()
        .map(|(a, s)| {
            assert_eq!(s, JobState::Succeeded, "{a}");
            a
        })
        .collect();
    synced.sort();
    assert_eq!(
        synced,
        ["acme-main", "acme-two", "globex"],
        "each account synced once across three replicas"
    );

    // 2. A replica killed mid-sync: another takes its accounts once the lease expires; every
    //    account ends synced, none left running, the data whole.
    for r in &mut replicas {
        r.child.kill().await.unwrap();
    }
    replicas.clear();
    tokio::time::sleep(Duration::from_secs(4)).await; // past the 3.6 s "recent" mark
    for _ in 0..40 {
        sim.inject(Fault::Slow(Duration::from_millis(150)));
    }
    sim.clear_requests();
    let mut doomed = start(&db, &sim, data.path(), 4).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while sim.requests().iter().filter(|r| r.status == 200).count() < 3 {
        assert!(Instant::now() < deadline, "the doomed replica never synced");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    doomed.child.kill().await.unwrap();
    let _ = doomed.child.wait().await;
    // Jobs are stamped with the service clock: TODAY at the time of day.
    let kill_mark = date(TODAY).and_time(chrono::Utc::now().time()).and_utc();
    for _ in 0..2 {
        replicas.push(start(&db, &sim, data.path(), 4).await);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let views = billing.last_jobs(&admin).await.unwrap();
        let all_done = views.iter().all(|(_, j)| {
            j.as_ref()
                .is_some_and(|j| j.job.state == JobState::Succeeded && j.job.started_at > kill_mark)
        });
        if all_done {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the accounts were not taken over: {views:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        billing
            .jobs(&admin, None, 1000)
            .await
            .unwrap()
            .iter()
            .all(|j| j.job.state != JobState::Running || j.job.started_at > kill_mark),
        "the killed replica's job is not left running"
    );
    for r in &mut replicas {
        r.child.kill().await.unwrap();
    }
    replicas.clear();

    // 3. Three quiet replicas answer alike, and a change is visible on each within 1 s.
    for _ in 0..3 {
        replicas.push(start(&db, &sim, data.path(), 3600).await);
    }
    let range = DateRange::parse("2024-07-01", "2025-07-01").unwrap();
    let body = json!({"start": "2024-07-01", "end": "2025-07-01", "granularity": "YEARLY", "group_by": ["project"]});
    let mut q = Query::new(range, Granularity::Yearly);
    q.group_by = vec![cloudbill_service::GroupKey::Project];
    let expected = serde_json::to_value(billing.report(&admin, &q).await.unwrap()).unwrap();
    for r in &replicas {
        assert_eq!(report(&http, r, &token, &body).await, expected, "{}", r.url);
    }
    let moved_at = Instant::now();
    billing
        .move_account(&admin, "globex", "web", None)
        .await
        .unwrap();
    let after = serde_json::to_value(billing.report(&admin, &q).await.unwrap()).unwrap();
    assert_ne!(after, expected, "the move changes the per-project totals");
    let slowest = all_answer(&http, &replicas, &token, &body, &after, moved_at).await;
    eprintln!("a move was visible on all three replicas after {slowest:?}");
    // A one-account re-sync with a restated day: each replica brings its warm engine up to
    // date from the changed slices only, and answers with it within 1 s.
    let mut by_account = Query::new(range, Granularity::Monthly);
    by_account.group_by = vec![cloudbill_service::GroupKey::ServiceAccount];
    let body = json!({"start": "2024-07-01", "end": "2025-07-01", "granularity": "MONTHLY", "group_by": ["service_account"]});
    let before = serde_json::to_value(billing.report(&admin, &by_account).await.unwrap()).unwrap();
    sim.restate("111111111111", date("2025-03-05"));
    billing
        .sync(
            &admin,
            &SyncRequest {
                accounts: vec!["acme-main".into()],
                range: Some(DateRange::parse("2025-03-01", "2025-04-01").unwrap()),
            },
            &NoProgress,
        )
        .await
        .unwrap();
    let synced_at = Instant::now();
    let after = serde_json::to_value(billing.report(&admin, &by_account).await.unwrap()).unwrap();
    assert_ne!(after, before, "the restatement changes acme-main's March");
    let slowest = all_answer(&http, &replicas, &token, &body, &after, synced_at).await;
    eprintln!("a one-account re-sync was visible on all three replicas after {slowest:?}");

    // 4. Domains stay apart on every replica.
    let tenants = Tenants::new(billing.clone(), 1 << 30);
    let (_, _, other) = tenants
        .create_domain(&SystemAdmin::operator(), "other", "")
        .await
        .unwrap();
    for r in &replicas {
        let resp = http
            .get(format!("{}/api/v1/service-accounts", r.url))
            .bearer_auth(&other)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let list: Value = resp.json().await.unwrap();
        assert_eq!(
            list["items"],
            json!([]),
            "{}: another domain's accounts",
            r.url
        );
    }

    for r in &mut replicas {
        r.child.kill().await.unwrap();
        let _ = r.child.wait().await;
    }
    drop(billing);
    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&admin_pool)
        .await;
}
