//! The dashboard: login by token, pages whose numbers equal the API's, offline rendering in
//! headless Chromium.

use std::collections::BTreeMap;

use std::fmt::Write as _;

use chrono::Datelike as _;
use cloudbill_core::Decimal;
use serde_json::json;

use crate::harness::{Server, RANGE};

/// `(data-key, data-cost)` pairs of a table in the page.
fn table_values(html: &str, table: &str) -> BTreeMap<String, Decimal> {
    let start = html
        .find(&format!("data-table=\"{table}\""))
        .unwrap_or_else(|| panic!("no table {table}"));
    let end = html[start..].find("</table>").unwrap() + start;
    let mut out = BTreeMap::new();
    for row in html[start..end].split("<tr data-key=\"").skip(1) {
        let key = row.split('"').next().unwrap().to_owned();
        let cost = row
            .split("data-cost=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        out.insert(key, cost.parse().unwrap());
    }
    out
}

async fn api_totals(
    s: &Server,
    token: &str,
    group: &str,
    filters: serde_json::Value,
) -> BTreeMap<String, Decimal> {
    let (_, body) = s
        .call(
            "POST",
            "/api/v1/billing/query",
            Some(token),
            Some(
                json!({"start": RANGE.0, "end": RANGE.1, "group_by": [group], "filters": filters}),
            ),
        )
        .await;
    body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["group"][group].as_str().unwrap().to_owned(),
                r["total"][0]["cost"].as_str().unwrap().parse().unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_sets_a_safe_cookie_and_pages_show_the_apis_numbers() {
    let s = Server::start().await;
    // Without a login, pages send to the login form.
    let resp = s
        .http
        .get(s.url("/projects/x?start=2025-01-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(
        resp.headers()["location"],
        "/login?next=/projects/x%3Fstart%3D2025-01-01"
    );
    let form = s
        .http
        .get(s.url("/login?next=/projects/x%3Fstart%3D2025-01-01"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        form.contains("name=\"next\" value=\"/projects/x?start=2025-01-01\""),
        "{form}"
    );
    // After login the user lands where they were going; only local paths are followed.
    let deep = s
        .http
        .post(s.url("/login"))
        .form(&[("token", s.admin.as_str()), ("next", "/projects/x")])
        .send()
        .await
        .unwrap();
    assert_eq!(deep.headers()["location"], "/projects/x");
    let evil = s
        .http
        .post(s.url("/login"))
        .form(&[("token", s.admin.as_str()), ("next", "//evil.example/")])
        .send()
        .await
        .unwrap();
    assert_eq!(evil.headers()["location"], "/");
    let bad = s
        .http
        .post(s.url("/login"))
        .form(&[("token", "cbt_wrong")])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.headers()["location"], "/login?error=1");

    let resp = s
        .http
        .post(s.url("/login"))
        .form(&[("token", s.admin.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
    for attr in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attr), "{cookie} lacks {attr}");
    }
    let pair = cookie.split(';').next().unwrap().to_owned();
    let page = |path: String| {
        let s = &s;
        let pair = pair.clone();
        async move {
            s.http
                .get(s.url(&path))
                .header("cookie", pair)
                .send()
                .await
                .unwrap()
        }
    };
    let home = page(format!(
        "/?start={}&end={}&granularity=MONTHLY",
        RANGE.0, RANGE.1
    ))
    .await;
    assert_eq!(home.status(), 200);
    let html = home.text().await.unwrap();
    assert!(!html.contains("<script"), "numbers need no JavaScript");
    assert!(
        !html.contains("http://") || !html.contains("cdn"),
        "no external assets"
    );
    assert_eq!(
        table_values(&html, "project"),
        api_totals(&s, &s.admin, "project", json!({})).await
    );
    assert_eq!(
        table_values(&html, "service_account"),
        api_totals(&s, &s.admin, "service_account", json!({})).await
    );
    assert!(
        html.contains("invalid Hyperbilling credentials for account 222222222222"),
        "the failed account shows its error"
    );
    assert!(html.contains("<svg"), "the trend chart renders inline");

    // A project page shows that project's own numbers; a member lands there and nowhere else.
    let web = s.id_of("projects", "web").await;
    let data = s.id_of("projects", "data").await;
    let html = page(format!("/projects/{web}?start={}&end={}", RANGE.0, RANGE.1))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(
        table_values(&html, "service_account"),
        api_totals(&s, &s.admin, "service_account", json!({"project": ["web"]})).await
    );
    let member = s
        .http
        .post(s.url("/login"))
        .form(&[("token", s.web_member.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(
        member.headers()["location"].to_str().unwrap(),
        format!("/projects/{web}")
    );
    let member_cookie = member.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let get = |path: String| {
        let s = &s;
        let c = member_cookie.clone();
        async move {
            s.http
                .get(s.url(&path))
                .header("cookie", c)
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(
        get("/".into()).await.headers()["location"]
            .to_str()
            .unwrap(),
        format!("/projects/{web}")
    );
    assert_eq!(get(format!("/projects/{data}")).await.status(), 404);
    assert_eq!(get(format!("/projects/{web}")).await.status(), 200);
    // The cookie also works for the API (the links behind every number).
    assert_eq!(
        get(format!(
            "/api/v1/billing/query?start={}&end={}&filter.project=web",
            RANGE.0, RANGE.1
        ))
        .await
        .status(),
        200
    );
}

/// A site in front of the server (as a reverse proxy is): `/__login` is a page on that site
/// whose form posts the token to the site's own `/login` at once (headless Chromium cannot
/// type), and every other request is passed to the server with the site's `Host`. The login
/// form's post is then same-site, as a user's is; a form on another site is refused (the
/// server's login-CSRF check, tested in the API tests).
async fn login_page(
    server: std::net::SocketAddr,
    token: String,
    next: String,
) -> std::net::SocketAddr {
    let html = format!(
        "<!doctype html><html><body onload=\"document.forms[0].submit()\"><form method=\"post\" action=\"/login\">\
         <input type=\"hidden\" name=\"token\" value=\"{token}\"><input type=\"hidden\" name=\"next\" value=\"{next}\"></form></body></html>"
    );
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let app = axum::Router::new()
        .route(
            "/__login",
            axum::routing::get(move || async move { axum::response::Html(html) }),
        )
        .fallback(move |req: axum::extract::Request| {
            let client = client.clone();
            async move { pass_on(&client, server, req).await }
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// One request passed to the server as it came (method, path, headers, body), and its answer
/// passed back as it came.
async fn pass_on(
    client: &reqwest::Client,
    server: std::net::SocketAddr,
    req: axum::extract::Request,
) -> axum::response::Response {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut out = client.request(parts.method, format!("http://{server}{path}"));
    for (name, value) in &parts.headers {
        if name != axum::http::header::CONTENT_LENGTH {
            out = out.header(name, value);
        }
    }
    let answer = out.body(body).send().await.unwrap();
    let mut response = axum::response::Response::builder().status(answer.status());
    for (name, value) in answer.headers() {
        if name != axum::http::header::TRANSFER_ENCODING
            && name != axum::http::header::CONTENT_LENGTH
        {
            response = response.header(name, value);
        }
    }
    response
        .body(axum::body::Body::from(answer.bytes().await.unwrap()))
        .unwrap()
}

async fn chromium_run(
    chromium: &str,
    profile: &std::path::Path,
    extra: &[String],
    url: &str,
) -> String {
    let out = tokio::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            "--disable-sync",
            "--virtual-time-budget=15000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(url)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headless_chromium_logs_in_and_shows_the_apis_numbers() {
    let chromium = std::env::var("CLOUDBILL_CHROMIUM")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| {
            ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
                .iter()
                .find(|p| std::path::Path::new(p).exists())
                .map(|p| (*p).to_owned())
        });
    let Some(chromium) = chromium else {
        assert!(
            std::env::var("CI").is_err(),
            "CI must have chromium (apt-get install chromium)"
        );
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED headless_chromium_logs_in_and_shows_the_apis_numbers: no chromium"
        );
        return;
    };
    let s = Server::start().await;
    // Budgets: this month's spend of project data is 10.00 a day so far (a bill); one budget
    // per project.
    let today = chrono::Utc::now().date_naive();
    let mut bill = String::from("ChargePeriodStart,BilledCost,BillingCurrency,ServiceName\n");
    let mut day = today.with_day(1).unwrap();
    let mut spent = Decimal::ZERO;
    while day <= today {
        writeln!(bill, "{day},10.00,USD,AmazonEC2").unwrap();
        spent += Decimal::new(1000, 2);
        day = day.succ_opt().unwrap();
    }
    s.file_bill(bill.into_bytes()).await;
    let admin = cloudbill_service::Principal::Admin;
    s.billing
        .add_channel(
            &admin,
            cloudbill_service::NewChannel {
                name: "ops".into(),
                spec: cloudbill_service::ChannelSpec::Webhook {
                    url: "http://127.0.0.1:9/hook".into(),
                    secret: cloudbill_core::ClientSecret::new("whsec-0123456789abcdef").unwrap(),
                },
            },
        )
        .await
        .unwrap();
    for (name, project) in [("data-monthly", "data"), ("web-monthly", "web")] {
        s.billing
            .create_budget(
                &admin,
                cloudbill_service::NewBudget {
                    name: name.into(),
                    amount: "1000".into(),
                    currency: "USD".into(),
                    project: Some(project.into()),
                    notifications: vec![cloudbill_service::NewNotification {
                        threshold: "actual:1%".into(),
                        channels: vec![],
                    }],
                    channels: vec!["ops".into()],
                    ..cloudbill_service::NewBudget::default()
                },
            )
            .await
            .unwrap();
    }
    let artifacts =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();

    // The admin logs in through the form and lands on the consolidated view (default range:
    // the last three months of the simulator's data through today, so compare with that).
    let range = format!("start={}&amp;end={}", RANGE.0, RANGE.1);
    let admin_login = login_page(s.addr, s.admin.clone(), format!("/?{range}")).await;
    let profile = s.dir.path().join("chromium-admin");
    let dom = chromium_run(
        &chromium,
        &profile,
        &["--dump-dom".into()],
        &format!("http://{admin_login}/__login"),
    )
    .await;
    assert!(
        dom.contains("Consolidated billing"),
        "not logged in: {}",
        &dom[..dom.len().min(500)]
    );
    let start = dom
        .split("name=\"start\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let end = dom
        .split("name=\"end\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let api = |group: &'static str, filters: serde_json::Value| {
        let s = &s;
        let (start, end) = (start.clone(), end.clone());
        async move {
            let (_, body) = s
                .call("POST", "/api/v1/billing/query", Some(&s.admin), Some(json!({"start": start, "end": end, "group_by": [group], "filters": filters})))
                .await;
            body["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    (
                        r["group"][group].as_str().unwrap().to_owned(),
                        r["total"][0]["cost"]
                            .as_str()
                            .unwrap()
                            .parse::<Decimal>()
                            .unwrap(),
                    )
                })
                .collect::<BTreeMap<_, _>>()
        }
    };
    assert_eq!(
        table_values(&dom, "project"),
        api("project", json!({})).await
    );
    assert_eq!(start, RANGE.0);
    assert_eq!(
        api("project", json!({})).await.len(),
        2,
        "the range has data"
    );
    assert_eq!(
        table_values(&dom, "service_account"),
        api("service_account", json!({})).await
    );
    // Each budget's bar, with the numbers of its status: data's actual is the bill's.
    let budget_attr = |dom: &str, name: &str, attr: &str| {
        dom.split(&format!("data-budget=\"{name}\""))
            .nth(1)
            .and_then(|rest| rest.split(&format!("{attr}=\"")).nth(1))
            .and_then(|v| v.split('"').next())
            .map(str::to_owned)
    };
    assert_eq!(
        budget_attr(&dom, "data-monthly", "data-actual")
            .unwrap()
            .parse::<Decimal>()
            .unwrap(),
        spent
    );
    assert!(budget_attr(&dom, "web-monthly", "data-amount").is_some());
    assert!(
        dom.contains("class=\"threshold fired\""),
        "actual:1% of data-monthly fired"
    );
    chromium_run(
        &chromium,
        &profile,
        &[
            format!("--screenshot={}", artifacts.join("dashboard.png").display()),
            "--window-size=1200,1400".into(),
        ],
        &format!("http://{admin_login}/__login"),
    )
    .await;

    // A project member logs in and lands on its project's page.
    let web = s.id_of("projects", "web").await;
    let member_login = login_page(
        s.addr,
        s.web_member.clone(),
        format!("/projects/{web}?{range}"),
    )
    .await;
    let profile = s.dir.path().join("chromium-member");
    let dom = chromium_run(
        &chromium,
        &profile,
        &["--dump-dom".into()],
        &format!("http://{member_login}/__login"),
    )
    .await;
    assert!(
        dom.contains("Project web"),
        "member not on its project page: {}",
        &dom[..dom.len().min(500)]
    );
    assert!(dom.contains("data-budget=\"web-monthly\""));
    assert!(
        !dom.contains("data-monthly"),
        "another project's budget is not shown"
    );
    assert_eq!(
        table_values(&dom, "service_account"),
        api("service_account", json!({"project": ["web"]})).await
    );
    chromium_run(
        &chromium,
        &profile,
        &[
            format!("--screenshot={}", artifacts.join("project.png").display()),
            "--window-size=1200,1400".into(),
        ],
        &format!("http://{member_login}/__login"),
    )
    .await;
    for shot in ["dashboard.png", "project.png"] {
        assert!(
            std::fs::metadata(artifacts.join(shot)).unwrap().len() > 10_000,
            "{shot} was written"
        );
    }
}

/// Logs in with `token`; the session cookie (`name=value`).
async fn session(s: &Server, token: &str) -> String {
    let resp = s
        .http
        .post(s.url("/login"))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
    cookie.split(';').next().unwrap().to_owned()
}

async fn get_page(s: &Server, cookie: &str, path: &str) -> (u16, String) {
    let resp = s
        .http
        .get(s.url(path))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// Per row of the explorer's table of `currency`: its key and every `data-cost` in order
/// (one per bucket, then total, previous, change).
fn explore_rows(html: &str, currency: &str) -> BTreeMap<String, Vec<Decimal>> {
    let start = html
        .find(&format!(
            "data-table=\"explore\" data-currency=\"{currency}\""
        ))
        .unwrap_or_else(|| panic!("no {currency} table"));
    let end = html[start..].find("</table>").unwrap() + start;
    html[start..end]
        .split("<tr data-key=\"")
        .skip(1)
        .map(|row| {
            let key = row.split('"').next().unwrap().to_owned();
            let costs = row
                .split("data-cost=\"")
                .skip(1)
                .map(|c| c.split('"').next().unwrap().parse().unwrap())
                .collect();
            (key, costs)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_explorer_shows_the_apis_numbers_per_group_and_period() {
    let s = Server::start().await;
    let admin = session(&s, &s.admin).await;
    let base = format!(
        "/explore?start={}&end={}&granularity=monthly",
        RANGE.0, RANGE.1
    );
    let (status, html) = get_page(&s, &admin, &format!("{base}&group_by=service")).await;
    assert_eq!(status, 200, "{html}");
    let rows = explore_rows(&html, "USD");
    let api = api_totals(&s, &s.admin, "service", json!({})).await;
    // Three months, then total, previous, change: the total column equals the API's.
    let totals: BTreeMap<String, Decimal> = rows.iter().map(|(k, v)| (k.clone(), v[3])).collect();
    assert_eq!(totals, api);
    for (key, v) in &rows {
        assert_eq!(
            v[0] + v[1] + v[2],
            v[3],
            "{key}: months add up to the total"
        );
        assert_eq!(v[3] - v[4], v[5], "{key}: change = total − previous");
    }
    // The chart: a stacked bar per group and month, each colour the group's own; a text
    // alternative; axis ticks in the currency; no script.
    assert!(html.contains("<svg role=\"img\""));
    assert!(html.contains("<desc>"));
    assert!(!html.contains("<script"));
    let fill_of = |html: &str, group: &str| {
        let at = html
            .find(&format!("data-group=\"{group}\""))
            .unwrap_or_else(|| panic!("no bar of {group}"));
        let before = &html[..at];
        let fill = before.rfind("fill=\"").unwrap();
        before[fill + 6..fill + 13].to_owned()
    };
    let service = api.keys().next().unwrap().clone();
    let colour = fill_of(&html, &service);
    // Top 1: one group plus "others"; the same group keeps its colour.
    let (_, top1) = get_page(&s, &admin, &format!("{base}&group_by=service&top=1")).await;
    assert!(top1.contains("data-group=\"others\""), "others drawn");
    let biggest = api.iter().max_by_key(|(_, v)| **v).unwrap().0.clone();
    assert_eq!(fill_of(&top1, &biggest), fill_of(&html, &biggest));
    assert_eq!(fill_of(&html, &service), colour);
    // A filter chip and its removal link; the CSV download holds the same numbers.
    let (_, filtered) = get_page(
        &s,
        &admin,
        &format!("{base}&group_by=service&filter.project=web"),
    )
    .await;
    assert!(filtered.contains("class=\"chip\""));
    let web = api_totals(&s, &s.admin, "service", json!({"project": ["web"]})).await;
    let totals: BTreeMap<String, Decimal> = explore_rows(&filtered, "USD")
        .iter()
        .map(|(k, v)| (k.clone(), v[3]))
        .collect();
    assert_eq!(totals, web);
    let resp = s
        .http
        .get(s.url(&format!("{base}&group_by=service&format=csv")))
        .header("cookie", &admin)
        .send()
        .await
        .unwrap();
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let csv = resp.text().await.unwrap();
    assert!(
        csv.starts_with("service,currency,2025-03,2025-04,2025-05,total,previous,change\n"),
        "{csv}"
    );
    for line in csv.lines().skip(1) {
        let cells: Vec<&str> = line.split(',').collect();
        assert_eq!(
            cells[5].parse::<Decimal>().unwrap(),
            api[cells[0]],
            "{line}"
        );
    }
    // A member explores its own project only.
    let member = session(&s, &s.web_member).await;
    let (status, mine) = get_page(&s, &member, &format!("{base}&group_by=service")).await;
    assert_eq!(status, 200);
    let totals: BTreeMap<String, Decimal> = explore_rows(&mine, "USD")
        .iter()
        .map(|(k, v)| (k.clone(), v[3]))
        .collect();
    assert_eq!(totals, web);
    let (status, _) = get_page(&s, &member, &format!("{base}&filter.project=data")).await;
    assert!(matches!(status, 403 | 404), "{status}");
    // Bad parameters.
    for (query, code) in [
        ("&group_by=nope", 422),
        ("&top=0", 422),
        ("&granularity=weekly", 422),
        ("&bogus=1", 400),
    ] {
        let (status, body) = get_page(&s, &admin, &format!("{base}{query}")).await;
        assert_eq!(status, code, "{query}: {body}");
    }
}

/// The explorer in headless Chromium: the numbers shown are the API's (rounded for display),
/// the chart has axis ticks, a legend and one bar per month for each group; a group-by change
/// and a filter chip's removal change the URL and the content; screenshots light and dark.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headless_chromium_explores() {
    let Some(chromium) = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .find(|p| std::path::Path::new(p).exists())
        .map(|p| (*p).to_owned())
        .or_else(|| {
            std::env::var("CLOUDBILL_CHROMIUM")
                .ok()
                .filter(|c| !c.is_empty())
        })
    else {
        assert!(std::env::var("CI").is_err(), "CI must have chromium");
        eprintln!("SKIPPED headless_chromium_explores: no chromium");
        return;
    };
    let s = Server::start().await;
    let artifacts =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let view = format!(
        "/explore?start={}&amp;end={}&amp;granularity=monthly&amp;group_by=service&amp;filter.project=web",
        RANGE.0, RANGE.1
    );
    let login = login_page(s.addr, s.admin.clone(), view.clone()).await;
    let profile = s.dir.path().join("chromium-explore");
    let dom = chromium_run(
        &chromium,
        &profile,
        &["--dump-dom".into()],
        &format!("http://{login}/__login"),
    )
    .await;
    assert!(
        dom.contains("Cost explorer"),
        "{}",
        &dom[..dom.len().min(400)]
    );
    let api = api_totals(&s, &s.admin, "service", json!({"project": ["web"]})).await;
    let rows = explore_rows(&dom, "USD");
    assert_eq!(
        rows.iter()
            .map(|(k, v)| (k.clone(), v[3]))
            .collect::<BTreeMap<_, _>>(),
        api
    );
    // What a reader sees is the same number, rounded to cents with separators.
    for total in api.values() {
        let shown = cloudbill_core::Currency::USD.display(*total);
        assert!(dom.contains(&format!(">{shown}</a>")), "{shown} shown");
    }
    // Axis ticks, a legend, and one bar per month and group.
    assert!(dom.contains("class=\"tick\"") && dom.contains("class=\"legend\""));
    for service in api.keys() {
        assert_eq!(
            dom.matches(&format!("data-group=\"{service}\"")).count(),
            3,
            "{service}: one bar per month"
        );
    }
    // Removing the filter chip: a URL without it, and the whole domain's numbers.
    let chip = dom
        .split("class=\"chip\" href=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&");
    assert!(!chip.contains("filter.project"), "{chip}");
    let (_, all) = get_page(&s, &session(&s, &s.admin).await, &chip).await;
    let domain = api_totals(&s, &s.admin, "service", json!({})).await;
    assert_eq!(
        explore_rows(&all, "USD")
            .iter()
            .map(|(k, v)| (k.clone(), v[3]))
            .collect::<BTreeMap<_, _>>(),
        domain
    );
    assert_ne!(domain, api, "the filter changed the content");
    // Another group-by through the form's URL: other rows.
    let (_, by_account) = get_page(
        &s,
        &session(&s, &s.admin).await,
        &chip.replace("group_by=service", "group_by=service_account"),
    )
    .await;
    assert_eq!(
        explore_rows(&by_account, "USD")
            .keys()
            .cloned()
            .collect::<Vec<_>>(),
        api_totals(&s, &s.admin, "service_account", json!({}))
            .await
            .keys()
            .cloned()
            .collect::<Vec<_>>()
    );
    for (shot, extra) in [
        ("explore.png", None),
        ("explore-dark.png", Some("--force-dark-mode")),
    ] {
        let mut args = vec![
            format!("--screenshot={}", artifacts.join(shot).display()),
            "--window-size=1200,1400".into(),
        ];
        args.extend(extra.map(str::to_owned));
        chromium_run(
            &chromium,
            &profile,
            &args,
            &format!("http://{login}/__login"),
        )
        .await;
        assert!(
            std::fs::metadata(artifacts.join(shot)).unwrap().len() > 10_000,
            "{shot} was written"
        );
    }
}

/// Every user-provided string the explorer shows (group values, filter values) is escaped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_explorer_escapes_hostile_values() {
    let s = Server::start().await;
    let hostile = "<script>alert(1)</script>\\\"'&";
    let bill = format!(
        "ChargePeriodStart,BilledCost,BillingCurrency,ServiceName,Tags\n\
         2025-03-02,1.5,USD,\"{svc}\",\"{{\"\"team\"\": \"\"{tag}\"\"}}\"\n",
        svc = hostile.replace('"', "\"\""),
        tag = "<img src=x onerror=alert(2)>"
    );
    s.file_bill(bill.into_bytes()).await;
    let cookie = session(&s, &s.admin).await;
    for query in [
        "group_by=service",
        "group_by=tag:team",
        "group_by=service&filter.tag:team=%3Cimg%20src%3Dx%20onerror%3Dalert(2)%3E",
        "filter.service=%3Cscript%3Ealert(3)%3C%2Fscript%3E",
    ] {
        let (status, html) = get_page(
            &s,
            &cookie,
            &format!("/explore?start=2025-03-01&end=2025-04-01&{query}"),
        )
        .await;
        assert_eq!(status, 200, "{query}");
        for raw in ["<script>alert", "<img src=x", "onerror=alert(2)>"] {
            assert!(!html.contains(raw), "{query}: {raw} unescaped");
        }
    }
    let (_, html) = get_page(
        &s,
        &cookie,
        "/explore?start=2025-03-01&end=2025-04-01&group_by=tag:team",
    )
    .await;
    assert!(
        html.contains("&lt;img src=x onerror=alert(2)&gt;"),
        "shown, escaped"
    );
}

/// Anomalies are marked on the explorer's chart, over the bars of their days.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_explorer_marks_anomalies() {
    let s = Server::start().await;
    // EC2 100 a day with one 600 on Feb 20; Bedrock new from Feb 25.
    use std::fmt::Write as _;
    let mut csv = String::from("ChargePeriodStart,BilledCost,BillingCurrency,ServiceName\n");
    let mut day = chrono::NaiveDate::from_ymd_opt(2025, 1, 1).unwrap();
    while day < chrono::NaiveDate::from_ymd_opt(2025, 3, 1).unwrap() {
        let ec2 = if day.to_string() == "2025-02-20" {
            600
        } else {
            100
        };
        writeln!(csv, "{day},{ec2},USD,AmazonEC2").unwrap();
        if day.to_string().as_str() >= "2025-02-25" {
            writeln!(csv, "{day},30,USD,AmazonBedrock").unwrap();
        }
        day = day.succ_opt().unwrap();
    }
    s.file_bill(csv.into_bytes()).await;
    let cookie = session(&s, &s.admin).await;
    let (status, html) = get_page(
        &s,
        &cookie,
        "/explore?start=2025-02-01&end=2025-03-01&granularity=daily&group_by=service&filter.service_account=bill",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        html.matches("data-anomaly=\"AmazonEC2\"").count(),
        1,
        "one spike day"
    );
    assert_eq!(
        html.matches("data-anomaly=\"AmazonBedrock\"").count(),
        4,
        "new, Feb 25-28"
    );
    // The anomaly in the mark's title, exact; the mark inside the chart.
    assert!(html.contains("spike AmazonEC2: 2025-02-20 .. 2025-02-20, impact 500.0000000000 USD"));
    let mark = html
        .split("data-anomaly=\"AmazonEC2\" d=\"M")
        .nth(1)
        .unwrap();
    let y: i64 = mark.split(' ').nth(1).unwrap().parse().unwrap();
    assert!(y >= 0, "the mark is drawn inside the chart: {mark:.60}");
    // Monthly: the marks sit on February's bar, once per anomaly.
    let (_, monthly) = get_page(
        &s,
        &cookie,
        "/explore?start=2025-02-01&end=2025-03-01&group_by=service&filter.service_account=bill",
    )
    .await;
    assert_eq!(monthly.matches("data-anomaly=").count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_list_anomalies_with_their_explanation() {
    let s = Server::start().await;
    // Project data: EC2 100 a day for the 60 days before today, 600 three days ago.
    use std::fmt::Write as _;
    let today = chrono::Utc::now().date_naive();
    let spike = today - chrono::Duration::days(3);
    let mut csv = String::from("ChargePeriodStart,BilledCost,BillingCurrency,ServiceName\n");
    let mut day = today - chrono::Duration::days(60);
    while day < today {
        writeln!(
            csv,
            "{day},{},USD,AmazonEC2",
            if day == spike { 600 } else { 100 }
        )
        .unwrap();
        day = day.succ_opt().unwrap();
    }
    s.file_bill(csv.into_bytes()).await;
    // The import ran the default monitor: the consolidated page lists what it keeps.
    let admin = session(&s, &s.admin).await;
    let (status, html) = get_page(&s, &admin, "/").await;
    assert_eq!(status, 200);
    let row = html
        .split("<tr data-anomaly=\"an_")
        .nth(1)
        .unwrap_or_else(|| panic!("no anomaly listed: {html}"))
        .split("</tr>")
        .next()
        .unwrap()
        .to_owned();
    assert!(row.contains(&spike.to_string()), "{row}");
    assert!(row.contains("service AmazonEC2"), "{row}");
    assert!(row.contains("600.00 USD / 100.00 USD"), "{row}");
    assert!(row.contains("open · default"), "{row}");
    assert!(
        row.contains("service_account bill +500.00"),
        "the explanation: {row}"
    );
    // The project's page finds it on demand; another project's member sees none of it.
    let data = s.id_of("projects", "data").await;
    let (_, page) = get_page(&s, &admin, &format!("/projects/{data}")).await;
    assert!(page.contains("<tr data-anomaly=\"an_"), "{page}");
    let web = s.id_of("projects", "web").await;
    let member = session(&s, &s.web_member).await;
    let (_, page) = get_page(&s, &member, &format!("/projects/{web}")).await;
    assert!(!page.contains("data-anomaly"), "{page}");
    s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reconciliation_page_shows_each_month() {
    let s = Server::start().await;
    // acme-main's March as the provider invoiced it (the stored total), globex without one.
    let (_, march) = s
        .call(
            "POST",
            "/api/v1/billing/query",
            Some(&s.admin),
            Some(json!({"start": "2025-03-01", "end": "2025-04-01", "group_by": ["service_account"]})),
        )
        .await;
    let acme = march["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["group"]["service_account"] == "acme-main")
        .unwrap()["total"][0]["cost"]
        .as_str()
        .unwrap()
        .to_owned();
    let body = json!({"account": "acme-main", "period": "2025-03", "currency": "USD", "invoice_id": "INV-7", "total": acme});
    assert_eq!(
        s.call("POST", "/api/v1/invoices", Some(&s.admin), Some(body))
            .await
            .0,
        201
    );
    let cookie = session(&s, &s.admin).await;
    let (status, html) = get_page(&s, &cookie, "/reconcile?period=2025-03").await;
    assert_eq!(status, 200);
    let row = |account: &str| {
        html.split("<tr data-status=")
            .find(|r| r.contains(&format!("<td>{account}</td>")))
            .unwrap_or_else(|| panic!("no row for {account}: {html}"))
            .split('"')
            .nth(1)
            .unwrap()
            .to_owned()
    };
    assert_eq!(row("acme-main"), "matched");
    assert_eq!(row("globex"), "no_invoice");
    assert!(html.contains("INV-7"));
    let (status, _) = get_page(&s, &cookie, "/reconcile?period=2025-13").await;
    assert_eq!(status, 422);
    let member = session(&s, &s.web_member).await;
    let (status, _) = get_page(&s, &member, "/reconcile").await;
    assert_eq!(status, 403);
    s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_explorer_toggles_the_allocation_rules_shares() {
    let s = Server::start().await;
    let (status, rule) = s
        .call(
            "POST",
            "/api/v1/allocations",
            Some(&s.admin),
            Some(
                json!({"name": "lambda", "source": {"service": ["AWSLambda"]},
                "target": "project", "targets": ["web"], "method": "even", "start": "2025-01-01"}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{rule}");
    let admin = session(&s, &s.admin).await;
    let base = format!(
        "/explore?start={}&end={}&granularity=monthly&group_by=project",
        RANGE.0, RANGE.1
    );
    let totals = |html: &str| -> BTreeMap<String, Decimal> {
        explore_rows(html, "USD")
            .into_iter()
            .map(|(k, v)| (k, v[3]))
            .collect()
    };
    let (status, plain) = get_page(&s, &admin, &base).await;
    assert_eq!(status, 200, "{plain}");
    assert!(
        plain.contains("name=\"allocated\" value=\"true\">"),
        "unchecked toggle"
    );
    let (status, allocated) = get_page(&s, &admin, &format!("{base}&allocated=true")).await;
    assert_eq!(status, 200, "{allocated}");
    assert!(allocated.contains("name=\"allocated\" value=\"true\" checked>"));
    // The numbers are the API's, with and without the rules.
    assert_eq!(
        totals(&plain),
        api_totals(&s, &s.admin, "project", json!({})).await
    );
    let (_, body) = s
        .call(
            "POST",
            "/api/v1/billing/query",
            Some(&s.admin),
            Some(json!({"start": RANGE.0, "end": RANGE.1, "group_by": ["project"], "allocated": true})),
        )
        .await;
    let api: BTreeMap<String, Decimal> = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["group"]["project"].as_str().unwrap().to_owned(),
                r["total"][0]["cost"].as_str().unwrap().parse().unwrap(),
            )
        })
        .collect();
    assert_eq!(totals(&allocated), api);
    assert_ne!(totals(&allocated), totals(&plain));
    // Links of the allocated view keep the toggle.
    assert!(allocated.contains("allocated=true&amp;") || allocated.contains("&amp;allocated=true"));
    let (status, _) = get_page(&s, &admin, &format!("{base}&allocated=maybe")).await;
    assert_eq!(status, 422);
}
