//! Budgets end to end with the real binary: a loopback webhook receiver that checks every
//! signature and fails the first attempt, an SMTP sink, a process killed between commit and
//! delivery.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hmac::{Hmac, Mac};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use crate::harness::Env;

pub(crate) const SECRET: &str = "whsec-test-0123456789abcdef";
const TODAY: &str = "2025-06-20";

/// One request the receiver saw.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    pub(crate) event_id: String,
    pub(crate) body: serde_json::Value,
    pub(crate) status: u16,
}

/// How the receiver answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// 500 to the very first request, 200 after.
    FailFirst,
    /// Never answers (holds the connection).
    Hang,
    /// 200 to everything.
    Ok,
}

pub(crate) struct Receiver {
    pub(crate) url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    mode: Arc<Mutex<Mode>>,
    hits: tokio::sync::watch::Receiver<usize>,
}

impl Receiver {
    pub(crate) fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub(crate) fn delivered(&self) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.status == 200)
            .collect()
    }
}

/// A loopback HTTP/1.1 receiver that verifies `X-Cloudbill-Signature` against `SECRET` (a
/// request with a bad signature fails the test) and answers as its mode says.
pub(crate) async fn receiver(mode: Mode) -> Receiver {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mode = Arc::new(Mutex::new(mode));
    let (tx, hits) = tokio::sync::watch::channel(0usize);
    let (seen2, mode2) = (Arc::clone(&seen), Arc::clone(&mode));
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let (seen, mode, tx) = (Arc::clone(&seen2), Arc::clone(&mode2), tx.clone());
            tokio::spawn(async move {
                let mut reader = BufReader::new(stream);
                loop {
                    let mut headers = Vec::new();
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        if line == "\r\n" {
                            break;
                        }
                        headers.push(line.trim_end().to_owned());
                    }
                    let header = |name: &str| {
                        headers.iter().find_map(|h| {
                            let (k, v) = h.split_once(':')?;
                            k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
                        })
                    };
                    let len: usize = header("content-length").unwrap().parse().unwrap();
                    let mut body = vec![0; len];
                    reader.read_exact(&mut body).await.unwrap();
                    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
                    mac.update(&body);
                    let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
                    assert_eq!(
                        header("x-cloudbill-signature").as_deref(),
                        Some(expected.as_str()),
                        "the signature is the HMAC-SHA256 of the raw body"
                    );
                    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
                    let event_id = header("x-cloudbill-event-id").unwrap();
                    assert_eq!(body["id"].as_str(), Some(event_id.as_str()));
                    let current = *mode.lock().unwrap();
                    let status = {
                        let mut seen = seen.lock().unwrap();
                        let status = match current {
                            Mode::FailFirst if seen.is_empty() => 500,
                            Mode::Hang => 0,
                            _ => 200,
                        };
                        seen.push(Seen {
                            event_id,
                            body,
                            status,
                        });
                        tx.send_replace(seen.len());
                        status
                    };
                    if status == 0 {
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                        return;
                    }
                    let reply = format!(
                        "HTTP/1.1 {status} X\r\ncontent-length: 2\r\nconnection: keep-alive\r\n\r\nok"
                    );
                    if reader.get_mut().write_all(reply.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    Receiver {
        url,
        seen,
        mode,
        hits,
    }
}

/// A FOCUS bill of `per_day` USD on each day of June 2025 before the 20th.
fn bill(per_day: &str) -> String {
    let mut csv = String::from("ChargePeriodStart,BilledCost,BillingCurrency,ServiceName\n");
    for d in 1..20 {
        writeln!(csv, "2025-06-{d:02},{per_day},USD,AmazonEC2").unwrap();
    }
    csv
}

impl Env {
    async fn at(&self, args: &[&str]) -> crate::harness::Out {
        self.run_env(args, None, &[("CLOUDBILL_TODAY", TODAY)])
            .await
    }

    async fn import_daily(&self, name: &str, per_day: &str) -> crate::harness::Out {
        let file = self.dir.path().join(name);
        std::fs::write(&file, bill(per_day)).unwrap();
        self.at(&[
            "import",
            "focus",
            file.to_str().unwrap(),
            "--account",
            "bill",
        ])
        .await
    }
}

fn kinds(events: &serde_json::Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap().to_owned(),
                format!(
                    "{}:{}",
                    e["payload"]["threshold"]["kind"].as_str().unwrap(),
                    e["payload"]["threshold"]["value"].as_str().unwrap()
                ),
            )
        })
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crossings_arrive_once_signed_retried_with_their_id_and_clear_on_restatement() {
    let env = Env::new().await;
    env.file_account().await;
    let hook = receiver(Mode::FailFirst).await;
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
    // The secret is never shown.
    let list = env.run(&["channel", "list", "--format", "json"]).await;
    assert!(!list.ok().stdout.contains(SECRET));
    let created = env
        .at(&[
            "budget",
            "create",
            "web-june",
            "--project",
            "web",
            "--amount",
            "2000",
            "--currency",
            "USD",
            "--notify",
            "actual:50%",
            "--notify",
            "actual:90%",
            "--notify",
            "actual:100%",
            "--notify",
            "forecast:100%",
            "--channel",
            "ops",
        ])
        .await;
    created.ok();
    assert!(hook.seen().is_empty(), "no data yet: nothing crossed");

    // 19 days × 100 = 1900 of 2000: 50% and 90% crossed, 100% not; the forecast (100 a day
    // over 30 days) crosses 100%. The first attempt gets a 500 and is retried.
    env.import_daily("june.csv", "100").await.ok();
    let status = env.at(&["budget", "status", "--format", "json"]).await;
    let status = status.ok().json();
    assert_eq!(status[0]["actual"], "1900");
    let dec = |v: &serde_json::Value| {
        v.as_str()
            .unwrap()
            .parse::<cloudbill_core::Decimal>()
            .unwrap()
    };
    assert_eq!(
        dec(&status[0]["percent_used"]),
        cloudbill_core::Decimal::from(95)
    );
    assert_eq!(
        dec(&status[0]["forecast"]),
        cloudbill_core::Decimal::from(3000)
    );
    let notification_states: Vec<&str> = status[0]["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["state"].as_str().unwrap())
        .collect();
    assert_eq!(notification_states, ["fired", "fired", "ok", "fired"]);
    assert_eq!(hook.seen().len(), 3, "three crossings, one attempt each");
    assert_eq!(hook.delivered().len(), 2);
    let failed = hook.seen()[0].event_id.clone();
    let log = env
        .run(&["notify", "log", "--format", "json"])
        .await
        .ok()
        .json();
    let pending: Vec<&serde_json::Value> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["state"] == "pending")
        .collect();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0]["attempts"], 1);
    assert!(pending[0]["last_error"]
        .as_str()
        .unwrap()
        .contains("HTTP 500"));
    // The first retry is due within 5 s.
    tokio::time::sleep(Duration::from_millis(5200)).await;
    let flushed = env.run(&["notify", "flush", "--format", "json"]).await;
    assert_eq!(flushed.ok().json()["sent"], 1);
    let delivered = hook.delivered();
    assert_eq!(delivered.len(), 3);
    assert_eq!(delivered[2].event_id, failed, "a retry keeps its event id");
    let mut ids: Vec<&str> = delivered.iter().map(|s| s.event_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 3, "each crossing arrives once");
    let body = &delivered[0].body;
    for field in [
        "id",
        "type",
        "occurred_at",
        "domain",
        "budget",
        "threshold",
        "period",
        "amount",
        "actual",
        "forecast",
        "currency",
        "link",
    ] {
        assert!(body.get(field).is_some(), "{field} missing from {body}");
    }
    assert_eq!(body["budget"], "web-june");
    assert_eq!(body["period"]["start"], "2025-06-01");
    assert_eq!(body["actual"], "1900");
    assert_eq!(body["amount"], "2000");

    // The same file again changes nothing and sends nothing.
    env.import_daily("june-again.csv", "100").await.ok();
    env.run(&["notify", "flush"]).await.ok();
    assert_eq!(hook.seen().len(), 4);
    let events = env
        .run(&["budget", "events", "--format", "json"])
        .await
        .ok()
        .json();
    assert_eq!(
        kinds(&events),
        [
            ("budget.threshold_crossed".into(), "actual:50%".into()),
            ("budget.threshold_crossed".into(), "actual:90%".into()),
            ("budget.threshold_crossed".into(), "forecast:100%".into()),
        ]
    );

    // A restated bill (40 a day: 760, forecast 1200) takes spend back under every fired
    // threshold: three clearings, once each.
    env.import_daily("june-restated.csv", "40").await.ok();
    env.run(&["notify", "flush"]).await.ok();
    let cleared: Vec<Seen> = hook
        .delivered()
        .into_iter()
        .filter(|s| s.body["type"] == "budget.threshold_cleared")
        .collect();
    assert_eq!(cleared.len(), 3);
    assert!(cleared.iter().all(|s| s.body["actual"] == "760"));
    let events = env
        .run(&["budget", "events", "--format", "json"])
        .await
        .ok()
        .json();
    assert_eq!(events.as_array().unwrap().len(), 6);
    let status = env
        .at(&["budget", "status", "web-june", "--format", "json"])
        .await
        .ok()
        .json();
    assert!(status[0]["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .all(|n| n["state"] == "ok"));

    // Back over a cleared threshold: it fires again.
    env.import_daily("june-up.csv", "60").await.ok();
    let again: Vec<Seen> = hook
        .delivered()
        .into_iter()
        .filter(|s| s.body["type"] == "budget.threshold_crossed")
        .collect();
    assert_eq!(again.len(), 4, "actual:50% (1140 of 2000) fires again");
    *hook.mode.lock().unwrap() = Mode::Ok;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_killed_between_commit_and_delivery_loses_nothing() {
    let env = Env::new().await;
    env.file_account().await;
    let hook = receiver(Mode::Hang).await;
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
    env.at(&[
        "budget",
        "create",
        "web-june",
        "--project",
        "web",
        "--amount",
        "1000",
        "--currency",
        "USD",
        "--notify",
        "actual:100%",
        "--channel",
        "ops",
    ])
    .await
    .ok();
    let file = env.dir.path().join("june.csv");
    std::fs::write(&file, bill("100")).unwrap();
    let mut child = env
        .command(&[
            "import",
            "focus",
            file.to_str().unwrap(),
            "--account",
            "bill",
        ])
        .env("CLOUDBILL_TODAY", TODAY)
        .env("CLOUDBILL_NOTIFY_TIMEOUT_SECS", "2")
        .spawn()
        .unwrap();
    // The import committed and is delivering (the receiver holds the request): kill it.
    let mut hits = hook.hits.clone();
    tokio::time::timeout(Duration::from_secs(60), hits.wait_for(|n| *n >= 1))
        .await
        .expect("the import never delivered")
        .unwrap();
    child.kill().await.unwrap();
    let log = env
        .run(&["notify", "log", "--format", "json"])
        .await
        .ok()
        .json();
    assert_eq!(log.as_array().unwrap().len(), 1);
    assert_eq!(log[0]["state"], "pending", "the event outlived the process");
    // Once the dead process's claim runs out (3 × the attempt timeout), a flush delivers it,
    // with the same event id.
    *hook.mode.lock().unwrap() = Mode::Ok;
    tokio::time::sleep(Duration::from_millis(6500)).await;
    let out = env
        .run_env(
            &["notify", "flush", "--format", "json"],
            None,
            &[("CLOUDBILL_NOTIFY_TIMEOUT_SECS", "2")],
        )
        .await;
    assert_eq!(out.ok().json()["sent"], 1);
    let seen = hook.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].event_id, seen[1].event_id);
    assert_eq!(seen[1].status, 200);
}

async fn send(w: &mut tokio::net::TcpStream, line: &str) {
    w.write_all(line.as_bytes()).await.unwrap();
}

/// A minimal SMTP sink: accepts one session and returns the DATA it received.
async fn smtp_sink() -> (u16, tokio::sync::oneshot::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let mut reader = BufReader::new(stream);
        send(reader.get_mut(), "220 sink ESMTP\r\n").await;
        let mut data = String::new();
        let mut in_data = false;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                break;
            }
            if in_data {
                if line == ".\r\n" {
                    in_data = false;
                    send(reader.get_mut(), "250 queued\r\n").await;
                } else {
                    data.push_str(&line);
                }
                continue;
            }
            let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
            match verb.as_str() {
                "EHLO" | "HELO" => send(reader.get_mut(), "250-sink\r\n250 8BITMIME\r\n").await,
                "MAIL" | "RCPT" | "RSET" | "NOOP" => send(reader.get_mut(), "250 ok\r\n").await,
                "DATA" => {
                    in_data = true;
                    send(reader.get_mut(), "354 go ahead\r\n").await;
                }
                "QUIT" => {
                    send(reader.get_mut(), "221 bye\r\n").await;
                    break;
                }
                _ => send(reader.get_mut(), "502 no\r\n").await,
            }
        }
        let _ = tx.send(data);
    });
    (port, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_channel_delivers_through_smtp() {
    let env = Env::new().await;
    env.file_account().await;
    let (port, received) = smtp_sink().await;
    let smtp = format!("127.0.0.1:{port}");
    env.run(&[
        "channel",
        "add",
        "mail",
        "--email",
        "finops@example.com",
        "--smtp",
        &smtp,
        "--smtp-security",
        "none",
    ])
    .await
    .ok();
    env.run(&["channel", "test", "mail"]).await.ok();
    let data = tokio::time::timeout(Duration::from_secs(30), received)
        .await
        .unwrap()
        .unwrap();
    assert!(data.contains("To: finops@example.com"), "{data}");
    assert!(
        data.contains("cloudbill test message for channel mail"),
        "{data}"
    );
    // Nothing listens there any more: a clear error, exit 1 (a failure, not bad input).
    env.run(&["channel", "test", "mail"])
        .await
        .fails(1, "did not accept the test message");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_budgets_and_channels_are_refused_and_nothing_is_written() {
    let env = Env::new().await;
    env.file_account().await;
    let secret = Some("whsec-test-0123456789abcdef\n");
    for (args, needle) in [
        (
            vec!["--webhook", "ftp://example.com/x", "--secret-stdin"],
            "expected http(s)://",
        ),
        (
            vec!["--webhook", "not a url", "--secret-stdin"],
            "webhook URL",
        ),
        (
            vec!["--email", "nobody", "--smtp", "127.0.0.1:25"],
            "e-mail address",
        ),
        (
            vec!["--email", "a@example.com", "--smtp", "smtp.example.com"],
            "HOST:PORT",
        ),
        (
            vec![
                "--email",
                "a@example.com",
                "--smtp",
                "127.0.0.1:25",
                "--smtp-security",
                "tls",
            ],
            "starttls or none",
        ),
    ] {
        let mut full = vec!["channel", "add", "x"];
        full.extend(args);
        env.run_with_stdin(&full, secret).await.fails(2, needle);
    }
    env.run_with_stdin(
        &[
            "channel",
            "add",
            "short",
            "--webhook",
            "http://127.0.0.1:9/x",
            "--secret-stdin",
        ],
        Some("short\n"),
    )
    .await
    .fails(2, "at least 16 characters");
    let channels = env
        .run(&["channel", "list", "--format", "json"])
        .await
        .ok()
        .json();
    assert_eq!(channels, serde_json::json!([]));
    env.run_with_stdin(
        &[
            "channel",
            "add",
            "ops",
            "--webhook",
            "http://127.0.0.1:9/hook",
            "--secret-stdin",
        ],
        secret,
    )
    .await
    .ok();
    let base = [
        "budget",
        "create",
        "b",
        "--currency",
        "USD",
        "--channel",
        "ops",
    ];
    let eleven: Vec<String> = (1..=11).map(|i| format!("actual:{i}0%")).collect();
    let mut many = vec!["--amount", "10"];
    for t in &eleven {
        many.extend(["--notify", t.as_str()]);
    }
    for (args, needle) in [
        (
            vec!["--amount", "0", "--notify", "actual:80%"],
            "at least 0.01",
        ),
        (
            vec!["--amount=-5", "--notify", "actual:80%"],
            "at least 0.01",
        ),
        (
            vec!["--amount", "abc", "--notify", "actual:80%"],
            "not a decimal",
        ),
        (vec!["--amount", "10", "--notify", "80"], "threshold"),
        (vec!["--amount", "10", "--notify=-5%"], "threshold"),
        (
            vec!["--amount", "10", "--notify", "actual:abc"],
            "threshold",
        ),
        (vec!["--amount", "10", "--notify", "actual:-5%"], "above 0"),
        (many, "at most 10"),
        (
            vec![
                "--amount",
                "10",
                "--notify",
                "actual:80%",
                "--period",
                "weekly",
            ],
            "period",
        ),
        (
            vec![
                "--amount",
                "10",
                "--notify",
                "actual:80%",
                "--filter",
                "nokey",
            ],
            "KEY=VALUE",
        ),
        (
            vec![
                "--amount",
                "10",
                "--notify",
                "actual:80%",
                "--filter",
                "colour=red",
            ],
            "colour",
        ),
        (
            vec![
                "--amount",
                "10",
                "--notify",
                "actual:80%",
                "--metric",
                "list",
            ],
            "metric",
        ),
    ] {
        let mut full = base.to_vec();
        full.extend(args);
        env.run(&full).await.fails(2, needle);
    }
    let mut full = base.to_vec();
    full.extend(["--amount", "10", "--notify", "actual:80%"]);
    full[4] = "XYZ";
    env.run(&full).await.fails(2, "ISO 4217");
    env.run(&[
        "budget",
        "create",
        "b",
        "--amount",
        "10",
        "--currency",
        "USD",
        "--notify",
        "actual:80%",
        "--channel",
        "nope",
    ])
    .await
    .fails(1, "channel \"nope\" not found");
    env.run(&[
        "budget",
        "create",
        "b",
        "--amount",
        "10",
        "--currency",
        "USD",
        "--notify",
        "actual:80%",
        "--channel",
        "ops",
        "--project",
        "nope",
    ])
    .await
    .fails(1, "project \"nope\" not found");
    let budgets = env
        .run(&["budget", "list", "--format", "json"])
        .await
        .ok()
        .json();
    assert_eq!(budgets, serde_json::json!([]), "nothing written");
    env.run(&["budget", "status", "--period", "2025-13"])
        .await
        .fails(2, "YYYY-MM");
    // A channel in use is not removed.
    env.run(&[
        "budget",
        "create",
        "b",
        "--amount",
        "10",
        "--currency",
        "USD",
        "--notify",
        "actual:80%",
        "--channel",
        "ops",
    ])
    .await
    .ok();
    env.run(&["channel", "remove", "ops"])
        .await
        .fails(1, "used by budget");
}
