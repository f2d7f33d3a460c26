//! Regressions of the adversarial pass (#13) over HTTP.

use serde_json::json;

use crate::harness::{Server, RANGE};

fn days_of(job: &serde_json::Value) -> Vec<String> {
    job["changed_days"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["date"].as_str().unwrap().to_owned())
        .collect()
}

/// #13 critical 3: after a partial move (`move … --from`), the new project's member read the
/// daily totals of days before the move through the jobs of the account. Every route that
/// returns per-day data shows a member only the days its project owned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_sees_only_the_days_its_project_owned() {
    let s = Server::start().await;
    let globex = s.id_of("service-accounts", "globex").await;
    let (status, body) = s
        .call(
            "POST",
            &format!("/api/v1/service-accounts/{globex}/move"),
            Some(&s.admin),
            Some(json!({"project": "web", "from": "2025-05-01"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let jobs = |token: String| {
        let s = &s;
        async move {
            let (status, body) = s
                .call("GET", "/api/v1/jobs?account=globex", Some(&token), None)
                .await;
            assert_eq!(status, 200, "{body}");
            body["items"].as_array().unwrap().clone()
        }
    };
    let admin_jobs = jobs(s.admin.clone()).await;
    let admin_days: Vec<String> = admin_jobs.iter().flat_map(days_of).collect();
    assert!(
        admin_days.iter().any(|d| d.as_str() < "2025-05-01"),
        "{admin_days:?}"
    );
    let member_jobs = jobs(s.web_member.clone()).await;
    assert_eq!(member_jobs.len(), admin_jobs.len());
    let member_days: Vec<String> = member_jobs.iter().flat_map(days_of).collect();
    assert!(!member_days.is_empty());
    assert!(
        member_days.iter().all(|d| d.as_str() >= "2025-05-01"),
        "{member_days:?}"
    );
    assert_eq!(
        member_days,
        admin_days
            .iter()
            .filter(|d| d.as_str() >= "2025-05-01")
            .cloned()
            .collect::<Vec<_>>()
    );
    // One job by id: the same cut.
    let id = member_jobs[0]["id"].as_str().unwrap();
    let (status, one) = s
        .call(
            "GET",
            &format!("/api/v1/jobs/{id}"),
            Some(&s.web_member),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert!(days_of(&one).iter().all(|d| d.as_str() >= "2025-05-01"));
    // The daily report of the member's project holds globex only from the move on.
    let (status, report) = s
        .call(
            "POST",
            "/api/v1/billing/query",
            Some(&s.web_member),
            Some(
                json!({"start": RANGE.0, "end": RANGE.1, "granularity": "DAILY",
                        "group_by": ["service_account"], "filters": {"project": ["web"]}}),
            ),
        )
        .await;
    assert_eq!(status, 200, "{report}");
    let globex_row = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["group"]["service_account"] == "globex")
        .unwrap();
    let dates: Vec<&str> = globex_row["billing_data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["date"].as_str().unwrap())
        .collect();
    assert!(
        !dates.is_empty() && dates.iter().all(|d| *d >= "2025-05-01"),
        "{dates:?}"
    );
    // The old project's member no longer sees the account's jobs at all.
    let (status, _) = s
        .call(
            "GET",
            "/api/v1/jobs?account=globex",
            Some(&s.data_member),
            None,
        )
        .await;
    assert_eq!(status, 404);
}

/// #13 high 9: `next=/%09/evil.com` redirected off-site (browsers strip the tab) and control
/// characters in `next` gave 500. Only a same-site path of visible characters is followed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_next_is_a_same_site_path_or_nothing() {
    let s = Server::start().await;
    for next in [
        "/\t/evil.com",
        "/\n/evil.com",
        "/\r/x",
        "/\u{b}/x",
        "/\u{7f}/x",
        "/ /evil.com",
        "//evil.com",
        "/\\evil.com",
        "https://evil.com/",
        "javascript:alert(1)",
        "/caf\u{e9}",
    ] {
        let resp = s
            .http
            .post(s.url("/login"))
            .form(&[("token", s.admin.as_str()), ("next", next)])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 303, "{next:?}");
        assert_eq!(
            resp.headers()["location"],
            "/",
            "{next:?} must not be followed"
        );
        // The login form with the same `next` renders without it, never a 500.
        let form = s
            .http
            .get(s.url("/login"))
            .query(&[("next", next)])
            .send()
            .await
            .unwrap();
        assert_eq!(form.status(), 200, "{next:?}");
        assert!(
            !form.text().await.unwrap().contains("name=\"next\""),
            "{next:?}"
        );
    }
    let ok = s
        .http
        .post(s.url("/login"))
        .form(&[
            ("token", s.admin.as_str()),
            ("next", "/projects/x?start=2025-01-01"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(ok.headers()["location"], "/projects/x?start=2025-01-01");
}

/// #13 high 10: `POST /sync` accepted 0001-01-01..9999-12-31 and burned a core.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_ranges_are_bounded() {
    let s = Server::start().await;
    let started = std::time::Instant::now();
    let (status, body) = s
        .call(
            "POST",
            "/api/v1/sync",
            Some(&s.admin),
            Some(json!({"start": "0001-01-01", "end": "9999-12-31"})),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    // #30: days outside 1970-01-01..2099-12-31 are nobody's bill.
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("outside the days cloudbill handles"),
        "{body}"
    );
    let (status, body) = s
        .call(
            "POST",
            "/api/v1/sync",
            Some(&s.admin),
            Some(json!({"start": "1970-01-01", "end": "2099-12-31"})),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("longer than the maximum of 3700 days"),
        "{body}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

/// #13 high 10: a request that runs past the deadline (here: a client that never finishes
/// its body) is stopped with the JSON error shape.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_have_a_deadline() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = Server::start().await;
    let mut state = cloudbill_web::AppState::new(s.billing.clone());
    state.request_timeout = std::time::Duration::from_millis(300);
    let app = cloudbill_web::app(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let mut sock = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /api/v1/billing/query HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"start\"",
        s.admin
    );
    sock.write_all(head.as_bytes()).await.unwrap();
    let started = std::time::Instant::now();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        sock.read_to_end(&mut answer),
    )
    .await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("\"code\":\"timeout\""), "{answer}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

/// #13 medium: every error over HTTP has the one JSON shape (bad query string, unknown route,
/// wrong method, 414, 431); every response carries the security headers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_have_one_shape_and_responses_carry_security_headers() {
    let s = Server::start().await;
    let long_query = format!("/api/v1/jobs?account={}", "a".repeat(9000));
    let cases: Vec<(reqwest::Method, String, Option<(&str, String)>, u16, &str)> = vec![
        (
            reqwest::Method::GET,
            "/api/v1/jobs?limit=abc".into(),
            None,
            400,
            "malformed_request",
        ),
        (
            reqwest::Method::GET,
            "/api/v1/jobs?colour=red".into(),
            None,
            400,
            "malformed_request",
        ),
        (
            reqwest::Method::GET,
            "/api/v1/nowhere".into(),
            None,
            404,
            "not_found",
        ),
        (
            reqwest::Method::DELETE,
            "/api/v1/jobs".into(),
            None,
            405,
            "method_not_allowed",
        ),
        (reqwest::Method::GET, long_query, None, 414, "uri_too_long"),
        (
            reqwest::Method::GET,
            "/api/v1/jobs".into(),
            Some(("x-padding", "p".repeat(40 * 1024))),
            431,
            "headers_too_large",
        ),
    ];
    for (method, path, extra, status, code) in cases {
        let mut req = s
            .http
            .request(method.clone(), s.url(&path))
            .bearer_auth(&s.admin);
        if let Some((name, value)) = extra {
            req = req.header(name, value);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(
            resp.status().as_u16(),
            status,
            "{method} {}",
            &path[..path.len().min(60)]
        );
        assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
        assert_eq!(resp.headers()["x-frame-options"], "DENY");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], code, "{body}");
        assert!(body["error"]["message"].is_string(), "{body}");
    }
    let page = s.http.get(s.url("/login")).send().await.unwrap();
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
}

/// #13 medium (CSRF): a state-changing API request authenticated by the dashboard cookie must
/// come from this site with a JSON body; a bearer token is unaffected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookie_requests_from_another_site_are_refused() {
    let s = Server::start().await;
    let cookie = format!("cloudbill_token={}", s.admin);
    let post = |origin: Option<&'static str>, json: bool| {
        let mut req = s
            .http
            .post(s.url("/api/v1/projects"))
            .header("cookie", cookie.clone());
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        if json {
            req = req
                .header("content-type", "application/json")
                .body(r#"{"name": "x"}"#);
        } else {
            req = req
                .header("content-type", "application/x-www-form-urlencoded")
                .body("name=x");
        }
        req.send()
    };
    let here: &'static str = Box::leak(format!("http://{}", s.addr).into_boxed_str());
    for (origin, json) in [
        (None, true),
        (Some("https://evil.example"), true),
        (Some(here), false),
    ] {
        let resp = post(origin, json).await.unwrap();
        assert_eq!(resp.status(), 403, "{origin:?} json={json}");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], "cross_site_request", "{body}");
    }
    assert_eq!(post(Some(here), true).await.unwrap().status(), 201);
    // Reads by cookie and writes by bearer token need neither.
    let read = s
        .http
        .get(s.url("/api/v1/projects"))
        .header("cookie", cookie.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
    let (status, _) = s
        .call(
            "POST",
            "/api/v1/projects",
            Some(&s.admin),
            Some(json!({"name": "y"})),
        )
        .await;
    assert_eq!(status, 201);
}

/// Serves `s`'s application with `limits` on a fresh port; the sender stops it.
async fn serve_with(
    s: &Server,
    limits: cloudbill_web::ServeLimits,
) -> (
    std::net::SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = cloudbill_web::app(cloudbill_web::AppState::new(s.billing.clone()));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(cloudbill_web::serve(listener, app, limits, async move {
        let _ = stopped.await;
    }));
    (addr, stop, task)
}

/// Reads until the peer closes (or 10 s pass); returns what came and how long it took.
async fn read_until_closed(sock: &mut tokio::net::TcpStream) -> (String, std::time::Duration) {
    use tokio::io::AsyncReadExt;
    let started = std::time::Instant::now();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        sock.read_to_end(&mut buf),
    )
    .await;
    (
        String::from_utf8_lossy(&buf).into_owned(),
        started.elapsed(),
    )
}

/// #13 high 10 / #16: a client that never finishes its headers (slowloris) is cut off after
/// the header deadline; past the connection cap a new connection is closed at once; shutdown
/// waits for an idle client no longer than its grace period.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_bounded_in_number_and_time() {
    use tokio::io::AsyncWriteExt;
    let s = Server::start().await;
    let limits = cloudbill_web::ServeLimits {
        max_connections: 2,
        header_read_timeout: std::time::Duration::from_millis(300),
        shutdown_grace: std::time::Duration::from_millis(500),
    };
    let (addr, stop, task) = serve_with(&s, limits).await;

    // Slowloris: half a request, then nothing.
    let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let (_, took) = read_until_closed(&mut slow).await;
    assert!(took < std::time::Duration::from_secs(3), "held {took:?}");

    // Two connections are the cap: the third is closed without an answer.
    let first = tokio::net::TcpStream::connect(addr).await.unwrap();
    let second = tokio::net::TcpStream::connect(addr).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let mut third = tokio::net::TcpStream::connect(addr).await.unwrap();
    let _ = third
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let (answer, took) = read_until_closed(&mut third).await;
    assert!(answer.is_empty(), "{answer}");
    assert!(took < std::time::Duration::from_secs(1), "{took:?}");
    // Once the idle ones time out, a request is served again.
    drop((first, second));
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let mut ok = tokio::net::TcpStream::connect(addr).await.unwrap();
    ok.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let (answer, _) = read_until_closed(&mut ok).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // Shutdown with a client mid-request: done within the grace period (plus slack).
    let mut hanging = tokio::net::TcpStream::connect(addr).await.unwrap();
    hanging
        .write_all(
            b"POST /api/v1/billing/query HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{",
        )
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let started = std::time::Instant::now();
    stop.send(()).unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(5), task)
        .await
        .expect("serve returns after its grace period")
        .unwrap();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

/// #16: an answer past the server's bound is a clear 422 before it is built; a page of it is
/// answered, and so is the same page in the GET form.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_too_large_answer_is_refused_with_how_to_page_it() {
    let s = Server::start().await;
    let mut state = cloudbill_web::AppState::new(s.billing.clone());
    state.max_answer_cells = 50;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = cloudbill_web::app(state);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let post = |body: serde_json::Value| {
        let http = s.http.clone();
        let token = s.admin.clone();
        async move {
            let resp = http
                .post(format!("http://{addr}/api/v1/billing/query"))
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            (status, resp.json::<serde_json::Value>().await.unwrap())
        }
    };
    // Daily, per account, over three months: more than 50 amounts.
    let big = json!({"start": RANGE.0, "end": RANGE.1, "granularity": "DAILY", "group_by": ["service_account"]});
    let (status, err) = post(big.clone()).await;
    assert_eq!(status, 422, "{err}");
    assert_eq!(err["error"]["code"], "answer_too_large");
    let msg = err["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("at most 50") && msg.contains("limit and offset"),
        "{msg}"
    );
    // Monthly is small enough.
    let (status, ok) = post(json!({"start": RANGE.0, "end": RANGE.1, "granularity": "MONTHLY", "group_by": ["service_account"]})).await;
    assert_eq!(status, 200, "{ok}");
    // A page of the daily answer that fits: one account's days... still 92 > 50, refused;
    // a month of one account fits.
    let mut page = big.clone();
    page["limit"] = json!(1);
    assert_eq!(post(page).await.0, 422);
    let (status, one) = post(
        json!({"start": "2025-03-01", "end": "2025-04-01", "granularity": "DAILY",
        "group_by": ["service_account"], "limit": 1}),
    )
    .await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["results"].as_array().unwrap().len(), 1);
    assert!(one["total_count"].as_u64().unwrap() >= 2);
}
