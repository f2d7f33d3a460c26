//! The Hyperbilling client against the simulator, over real loopback sockets.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]
// Test code favours short names and local helper items next to their use.
#![allow(
    clippy::many_single_char_names,
    clippy::similar_names,
    clippy::items_after_statements
)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cloudbill_core::{AccountId, DateRange, Decimal, DomainId, NaiveDate, Settings};
use cloudbill_hyperbilling::sim::{Fault, SimConfig, Simulator};
use cloudbill_hyperbilling::{ClientConfig, Hyperbilling};
use cloudbill_provider::{BillingProvider, FetchScope, ProviderError};

const ACCOUNT: &str = "111111111111";
const KEY: &str = "demo-key-acme";

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn range(a: &str, b: &str) -> DateRange {
    DateRange::parse(a, b).unwrap()
}

fn scope() -> FetchScope {
    FetchScope {
        domain: DomainId::new(),
        service_account: AccountId::new(),
    }
}

fn fast_config() -> ClientConfig {
    ClientConfig {
        max_attempts: 4,
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
        max_retry_after: Duration::from_secs(5),
        request_timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(2),
        max_pages: 10_000,
        ..ClientConfig::default()
    }
}

async fn sim(page_size: usize) -> Simulator {
    let mut config = SimConfig::demo(date("2025-12-31"));
    config.page_size = page_size;
    Simulator::start(config).await.unwrap()
}

fn creds(sim: &Simulator, account: &str, key: &str) -> Settings {
    cloudbill_hyperbilling::settings(account, "ops@acme.example", key, Some(&sim.endpoint()))
}

fn client() -> Hyperbilling {
    Hyperbilling::new(fast_config()).unwrap()
}

fn total(records: &[cloudbill_core::CostRecord]) -> Decimal {
    records.iter().map(|r| r.cost.amount()).sum()
}

#[tokio::test]
async fn pages_are_followed_and_every_row_arrives_exactly() {
    let sim = sim(3).await;
    let window = range("2025-03-01", "2025-04-01");
    let got = client()
        .fetch(&creds(&sim, ACCOUNT, KEY), scope(), window)
        .await
        .unwrap();
    let expected = sim.expected_lines(ACCOUNT, window);
    assert!(expected.len() > 100, "the window spans many pages");
    assert_eq!(got.len(), expected.len());
    for (g, e) in got.iter().zip(&expected) {
        assert_eq!(g.date, e.date);
        assert_eq!(g.cost.amount(), e.cost);
        assert_eq!(
            g.cost.amount().to_string(),
            e.cost.to_string(),
            "all 10 decimals kept"
        );
        assert_eq!(g.usage_quantity, e.quantity);
        assert_eq!(g.service, e.service);
        assert_eq!(g.cloud_account, ACCOUNT);
    }
    assert_eq!(total(&got), sim.expected_total(ACCOUNT, window));
    let billing: Vec<_> = sim
        .requests()
        .into_iter()
        .filter(|r| r.path == "/v1/search/billing")
        .collect();
    assert_eq!(billing.len(), expected.len().div_ceil(3));
    assert_eq!(billing[0].token, None);
    assert_eq!(billing[1].token.as_deref(), Some("tok-3"));
    assert!(
        billing
            .iter()
            .all(|r| r.end.as_deref() == Some("2025-03-31")),
        "inclusive End"
    );
}

#[tokio::test]
async fn four_hundred_days_in_windows_total_exactly() {
    let sim = sim(200).await;
    let c = creds(&sim, ACCOUNT, KEY);
    let whole = DateRange::new(date("2024-11-26"), date("2025-12-31")).unwrap();
    assert_eq!(whole.days(), 400);
    let client = client();
    let mut all = vec![];
    for w in whole.windows(client.max_window_days()) {
        all.extend(client.fetch(&c, scope(), w).await.unwrap());
    }
    assert_eq!(total(&all), sim.expected_total(ACCOUNT, whole));
    assert_eq!(all.len(), sim.expected_lines(ACCOUNT, whole).len());
    // No day lost or repeated: the requested inclusive windows tile the range.
    let mut windows: Vec<(NaiveDate, NaiveDate)> = sim
        .requests()
        .iter()
        .filter(|r| r.token.is_none())
        .map(|r| {
            (
                date(r.start.as_deref().unwrap()),
                date(r.end.as_deref().unwrap()),
            )
        })
        .collect();
    windows.sort();
    assert_eq!(windows.first().unwrap().0, whole.start());
    assert_eq!(windows.last().unwrap().1, whole.last_day());
    for pair in windows.windows(2) {
        assert_eq!(pair[0].1.succ_opt().unwrap(), pair[1].0);
    }
    for (s, e) in &windows {
        assert!((*e - *s).num_days() < 31);
    }
    let mut days: Vec<_> = all.iter().map(|r| r.date).collect();
    days.dedup();
    assert_eq!(
        days.len(),
        400,
        "every day present once (the demo has data every day)"
    );
}

#[tokio::test]
async fn inclusive_end_keeps_the_last_day_and_no_first_day_twice() {
    let sim = sim(500).await;
    let c = creds(&sim, ACCOUNT, KEY);
    let client = client();
    let a = client
        .fetch(&c, scope(), range("2025-05-01", "2025-05-02"))
        .await
        .unwrap();
    let b = client
        .fetch(&c, scope(), range("2025-05-02", "2025-05-03"))
        .await
        .unwrap();
    assert!(a.iter().all(|r| r.date == date("2025-05-01")));
    assert!(b.iter().all(|r| r.date == date("2025-05-02")));
    assert_eq!(
        total(&a),
        sim.expected_total(ACCOUNT, range("2025-05-01", "2025-05-02"))
    );
    let req = &sim.requests()[0];
    assert_eq!(
        (req.start.as_deref(), req.end.as_deref()),
        (Some("2025-05-01"), Some("2025-05-01"))
    );
}

#[tokio::test]
async fn no_data_is_204_and_an_empty_result() {
    let sim = sim(50).await;
    let got = client()
        .fetch(
            &creds(&sim, ACCOUNT, KEY),
            scope(),
            range("2020-01-01", "2020-01-31"),
        )
        .await
        .unwrap();
    assert!(got.is_empty());
    assert_eq!(sim.requests()[0].status, 204);
}

#[tokio::test]
async fn null_and_empty_regions_map_to_us_east_1_and_credits_are_negative() {
    let sim = sim(500).await;
    let window = range("2025-06-01", "2025-07-01");
    let got = client()
        .fetch(&creds(&sim, ACCOUNT, KEY), scope(), window)
        .await
        .unwrap();
    let expected = sim.expected_lines(ACCOUNT, window);
    for (g, e) in got.iter().zip(&expected) {
        match e.region_code {
            None | Some("") => assert_eq!(g.region, "us-east-1"),
            Some("APN2") => assert_eq!(g.region, "ap-northeast-2"),
            Some("EU") => assert_eq!(g.region, "eu-west-1"),
            _ => {}
        }
    }
    assert!(expected.iter().any(|l| l.region_code.is_none()));
    assert!(expected.iter().any(|l| l.region_code == Some("")));
    let credits: Vec<_> = got
        .iter()
        .filter(|r| r.cost.amount().is_sign_negative())
        .collect();
    assert!(!credits.is_empty());
    assert!(credits
        .iter()
        .all(|r| r.charge_category == cloudbill_core::ChargeCategory::Credit));
}

#[tokio::test]
async fn transient_faults_are_retried_and_survived() {
    let sim = sim(50).await;
    let c = creds(&sim, ACCOUNT, KEY);
    let window = range("2025-01-01", "2025-01-08");
    let expected = sim.expected_total(ACCOUNT, window);
    for fault in [
        Fault::Unavailable,
        Fault::DropConnection,
        Fault::Slow(Duration::from_millis(1500)),
    ] {
        sim.clear_requests();
        sim.inject(fault.clone());
        sim.inject(Fault::Unavailable);
        let config = ClientConfig {
            request_timeout: Duration::from_millis(700),
            ..fast_config()
        };
        let got = Hyperbilling::new(config)
            .unwrap()
            .fetch(&c, scope(), window)
            .await;
        let got = got.unwrap_or_else(|e| panic!("{fault:?} not survived: {e}"));
        assert_eq!(total(&got), expected, "{fault:?}");
        assert!(sim.requests().len() >= 3, "{fault:?}: retried");
    }
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let sim = sim(500).await;
    sim.inject(Fault::RateLimited {
        retry_after_secs: 1,
    });
    let started = Instant::now();
    let got = client()
        .fetch(
            &creds(&sim, ACCOUNT, KEY),
            scope(),
            range("2025-01-01", "2025-01-03"),
        )
        .await
        .unwrap();
    assert!(!got.is_empty());
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "waited for Retry-After"
    );
    assert_eq!(sim.requests()[0].status, 429);
}

#[tokio::test]
async fn persistent_failures_end_with_the_right_error() {
    let sim = sim(500).await;
    let c = creds(&sim, ACCOUNT, KEY);
    let w = range("2025-01-01", "2025-01-03");
    for _ in 0..4 {
        sim.inject(Fault::Unavailable);
    }
    let err = client().fetch(&c, scope(), w).await.unwrap_err();
    assert!(
        matches!(err, ProviderError::Unavailable { attempts: 4, .. }),
        "{err}"
    );

    sim.inject(Fault::RateLimited {
        retry_after_secs: 3600,
    });
    let err = client().fetch(&c, scope(), w).await.unwrap_err();
    assert!(matches!(err, ProviderError::RateLimited { .. }), "{err}");

    sim.clear_requests();
    sim.inject(Fault::MalformedJson);
    let err = client().fetch(&c, scope(), w).await.unwrap_err();
    assert!(
        matches!(err, ProviderError::InvalidResponse { .. }),
        "{err}"
    );

    sim.inject(Fault::BadRequest);
    let err = client().fetch(&c, scope(), w).await.unwrap_err();
    assert!(
        matches!(err, ProviderError::Rejected { status: 400, .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains("unsupported GroupBy key"),
        "the body is in the error: {err}"
    );
}

#[tokio::test]
async fn bad_credentials_fail_at_once_without_retries() {
    let sim = sim(500).await;
    let err = client()
        .fetch(
            &creds(&sim, ACCOUNT, "wrong-key"),
            scope(),
            range("2025-01-01", "2025-01-03"),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid Hyperbilling credentials for account 111111111111"
    );
    assert_eq!(sim.requests().len(), 1, "no retries on 401");

    sim.inject(Fault::Unauthorized);
    let err = client()
        .verify(&creds(&sim, ACCOUNT, KEY))
        .await
        .unwrap_err();
    assert!(err.is_unauthorized());

    // An account the client may not read is refused too (403).
    let err = client()
        .fetch(
            &creds(&sim, "333333333333", KEY),
            scope(),
            range("2025-01-01", "2025-01-03"),
        )
        .await
        .unwrap_err();
    assert!(err.is_unauthorized(), "{err}");
}

#[tokio::test]
async fn verify_lists_linked_accounts_and_checks_the_account() {
    let sim = sim(500).await;
    let linked = client().verify(&creds(&sim, ACCOUNT, KEY)).await.unwrap();
    assert_eq!(linked, ["111111111111", "222222222222"]);
    let err = client()
        .verify(&creds(&sim, "999999999999", KEY))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid Hyperbilling credentials for account 999999999999"
    );
    let req = &sim.requests()[0];
    assert_eq!(
        (req.method.as_str(), req.path.as_str()),
        ("GET", "/v1/search/linkedaccount")
    );
    assert_eq!(req.client_id, "ops@acme.example");
}

#[tokio::test]
async fn an_empty_account_reads_every_linked_account() {
    let sim = sim(40).await;
    let window = range("2025-02-01", "2025-03-01");
    let got = client()
        .fetch(&creds(&sim, "", KEY), scope(), window)
        .await
        .unwrap();
    let expected =
        sim.expected_total("111111111111", window) + sim.expected_total("222222222222", window);
    assert_eq!(total(&got), expected);
    let accounts: std::collections::BTreeSet<_> =
        got.iter().map(|r| r.cloud_account.as_str()).collect();
    assert_eq!(
        accounts.into_iter().collect::<Vec<_>>(),
        ["111111111111", "222222222222"]
    );
}

#[tokio::test]
async fn restated_days_come_back_with_new_numbers() {
    let sim = sim(500).await;
    let c = creds(&sim, ACCOUNT, KEY);
    let w = range("2025-04-01", "2025-04-05");
    let before = client().fetch(&c, scope(), w).await.unwrap();
    let old = sim.expected_daily(ACCOUNT, w);
    sim.restate(ACCOUNT, date("2025-04-02"));
    let after = client().fetch(&c, scope(), w).await.unwrap();
    let new = sim.expected_daily(ACCOUNT, w);
    assert_ne!(old[&date("2025-04-02")], new[&date("2025-04-02")]);
    assert_eq!(old[&date("2025-04-03")], new[&date("2025-04-03")]);
    assert_eq!(total(&before), old.values().copied().sum::<Decimal>());
    assert_eq!(total(&after), new.values().copied().sum::<Decimal>());
}

#[tokio::test]
async fn windows_longer_than_31_days_are_refused_by_client_and_simulator() {
    let sim = sim(500).await;
    let err = client()
        .fetch(
            &creds(&sim, ACCOUNT, KEY),
            scope(),
            range("2025-01-01", "2025-02-02"),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::InvalidRequest(_)), "{err}");
    assert!(sim.requests().is_empty(), "refused before sending");

    let body = serde_json::json!({
        "Filter": {"LinkedAccount": [ACCOUNT], "Granularity": "DAILY",
                   "TimePeriod": {"Start": "2025-01-01", "End": "2025-02-01"}},
        "GroupBy": ["USAGE_DATE","REGION","SERVICE_CODE","USAGE_TYPE","INSTANCE_TYPE"],
        "Result": ["USAGE_COST","USAGE_QUANTITY"]
    });
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/search/billing", sim.endpoint()))
        .header("X-Client-Id", "ops@acme.example")
        .header("X-Client-Secret", KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("at most 31 days"));
}

/// A one-route HTTP server on loopback: answers every request with `reply(path)` and keeps
/// each request's head (request line and headers, lower-cased).
async fn raw_server(
    reply: impl Fn(&str) -> String + Send + Sync + 'static,
) -> (std::net::SocketAddr, Arc<Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (reply, log) = (Arc::new(reply), Arc::clone(&seen));
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let (reply, log) = (Arc::clone(&reply), Arc::clone(&log));
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16 << 10];
                let mut n = 0;
                while !String::from_utf8_lossy(&buf[..n]).contains("\r\n\r\n") {
                    match sock.read(&mut buf[n..]).await {
                        Ok(0) | Err(_) => return,
                        Ok(k) => n += k,
                    }
                }
                let head = String::from_utf8_lossy(&buf[..n]).to_lowercase();
                let path = head.split(' ').nth(1).unwrap_or("/").to_owned();
                log.lock().unwrap().push(head);
                let _ = sock.write_all(reply(&path).as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    (addr, seen)
}

fn creds_at(endpoint: &str) -> Settings {
    cloudbill_hyperbilling::settings(ACCOUNT, "ops@acme.example", KEY, Some(endpoint))
}

/// #13 critical 2: the client followed a redirect to another origin with `X-Client-Secret`
/// (and a Referer). A redirect to another origin is now refused; one on the same origin is
/// followed with the credentials, and no request carries a Referer.
#[tokio::test]
async fn credentials_never_cross_to_another_origin_on_a_redirect() {
    let ok = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 31\r\nconnection: close\r\n\r\n{\"Results\": [\"111111111111\"]}\r\n";
    let (other, other_seen) = raw_server(move |_| ok.to_owned()).await;
    let (origin, origin_seen) = raw_server(move |path| {
        if path.starts_with("/moved") {
            ok.to_owned()
        } else if path.contains("same") {
            "HTTP/1.1 307 Temporary Redirect\r\nlocation: /moved/v1/search/linkedaccount\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_owned()
        } else {
            format!("HTTP/1.1 307 Temporary Redirect\r\nlocation: http://{other}/v1/search/linkedaccount\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
        }
    })
    .await;
    let err = client()
        .verify(&creds_at(&format!("http://{origin}")))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("redirect refused") && text.contains("another origin"),
        "{text}"
    );
    assert!(!text.contains(KEY));
    assert!(
        other_seen.lock().unwrap().is_empty(),
        "the other origin was never called"
    );
    // The same origin (another path) is followed, with the credentials.
    let linked = client()
        .verify(&creds_at(&format!("http://{origin}/same")))
        .await
        .unwrap();
    assert_eq!(linked, vec![ACCOUNT.to_owned()]);
    let heads = origin_seen.lock().unwrap().clone();
    assert!(
        heads.iter().any(|h| h.starts_with("get /moved")),
        "{heads:?}"
    );
    assert!(heads
        .iter()
        .all(|h| h.contains("x-client-secret: demo-key-acme")));
    assert!(heads.iter().all(|h| !h.contains("referer")), "{heads:?}");
}

/// #13 medium: endpoints may not reach link-local / metadata addresses unless allowed.
#[tokio::test]
async fn link_local_endpoints_are_refused_unless_allowed() {
    for endpoint in [
        "http://169.254.169.254",
        "http://[fd00:ec2::254]",
        "http://[fe80::1]:8080",
    ] {
        let err = client().verify(&creds_at(endpoint)).await.unwrap_err();
        assert!(err.to_string().contains("link-local"), "{endpoint}: {err}");
    }
    // Allowed explicitly, the request is attempted (and fails on the unreachable address).
    let mut config = fast_config();
    config.allow_link_local = true;
    config.max_attempts = 1;
    config.connect_timeout = Duration::from_millis(200);
    config.request_timeout = Duration::from_millis(300);
    let err = Hyperbilling::new(config)
        .unwrap()
        .verify(&creds_at("http://169.254.169.254"))
        .await
        .unwrap_err();
    assert!(!err.to_string().contains("link-local"), "{err}");
}

/// Hostile provider: a page larger than the configured bound fails, without reading it all.
#[tokio::test]
async fn oversized_responses_are_refused() {
    let body = format!("{{\"Results\": [\"{}\"]}}", "1".repeat(4096));
    let reply = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let (addr, _) = raw_server(move |_| reply.clone()).await;
    let mut config = fast_config();
    config.max_response_bytes = 1024;
    let err = Hyperbilling::new(config)
        .unwrap()
        .verify(&creds_at(&format!("http://{addr}")))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("larger than 1024 bytes"), "{err}");
}

/// #15: synced records carry the FOCUS ServiceCategory of their AWS service code (the table
/// in `service_category`) and AWS as their publisher.
#[tokio::test]
async fn records_carry_their_focus_service_category_and_publisher() {
    use cloudbill_core::Attribute;
    let sim = sim(50).await;
    let window = range("2025-03-01", "2025-03-08");
    let got = client()
        .fetch(&creds(&sim, ACCOUNT, KEY), scope(), window)
        .await
        .unwrap();
    assert!(!got.is_empty());
    for r in &got {
        let expected = match r.service.as_str() {
            "AmazonEC2" | "AWSLambda" => "Compute",
            "AmazonS3" => "Storage",
            "AmazonRDS" => "Databases",
            "AWSDataTransfer" => "Networking",
            "AmazonCloudWatch" => "Management and Governance",
            _ => "Other",
        };
        assert_eq!(
            r.attributes
                .get(&Attribute::ServiceCategory)
                .map(String::as_str),
            Some(expected),
            "{}",
            r.service
        );
        assert_eq!(
            r.attributes
                .get(&Attribute::PublisherName)
                .map(String::as_str),
            Some("Amazon Web Services")
        );
    }
    assert_eq!(
        cloudbill_hyperbilling::service_category("SomethingNew"),
        "Other"
    );
}
