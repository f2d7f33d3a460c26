//! The real `cloudbill-server` binary: `--demo` end to end, and a clean stop on SIGTERM.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_serves_the_dashboard_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_cloudbill-server"))
        .args(["--demo", "--listen", "127.0.0.1:0", "--no-scheduler"])
        .env("XDG_DATA_HOME", dir.path())
        .env_remove("CLOUDBILL_DATABASE_URL")
        .env_remove("CLOUDBILL_SECRET_KEY")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut url, mut token) = (None, None);
    while let Ok(Ok(Some(line))) =
        tokio::time::timeout(Duration::from_secs(60), lines.next_line()).await
    {
        if let Some(rest) = line.strip_prefix("cloudbill dashboard: ") {
            url = rest.split_whitespace().next().map(str::to_owned);
        }
        if let Some(rest) = line.strip_prefix("admin token: ") {
            token = Some(rest.trim().to_owned());
            break;
        }
    }
    let (url, token) = (
        url.expect("the URL is printed"),
        token.expect("an admin token is printed"),
    );
    let http = reqwest::Client::new();
    // Ready once the warm engine is loaded (at start, before any report asks for it).
    let mut ready = false;
    for _ in 0..200 {
        let status = http
            .get(format!("{url}readyz"))
            .send()
            .await
            .unwrap()
            .status();
        assert!(status == 200 || status == 503, "{status}");
        if status == 200 {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "/readyz never became ready");
    // The demo domain is there: billing on, two projects, the failing account's error shown.
    let billing: serde_json::Value = http
        .get(format!("{url}api/v1/billing"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(billing["billing_enabled"], true);
    let page = http
        .get(&url)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("web-shop") && page.contains("data-platform"),
        "{page}"
    );
    assert!(page.contains("invalid Hyperbilling credentials for account 333333333333"));

    // SIGTERM: the server stops by itself, successfully.
    let pid = child.id().unwrap().to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("stops within 30 s")
        .unwrap();
    assert!(exit.success(), "{exit:?}");
    assert!(
        http.get(format!("{url}healthz")).send().await.is_err(),
        "no longer listening"
    );
}
