//! Regressions of the adversarial pass of issue #30 over HTTP: amounts at the decimal limit,
//! panics, what a member can touch, amplification, and the low findings.

use std::sync::Arc;

use cloudbill_core::{
    Budget, BudgetId, BudgetScope, CostMetric, Currency, Decimal, Money, Name, Notification,
    Period, Threshold,
};
use serde_json::json;

use crate::harness::{date, Server};

async fn project_id(s: &Server, name: &str) -> cloudbill_core::ProjectId {
    s.id_of("projects", name).await.parse().unwrap()
}

/// A budget as a database written before amounts were bounded may hold it.
fn stored_budget(name: &str, scope: BudgetScope, amount: Decimal, levels: &[&str]) -> Budget {
    Budget {
        id: BudgetId::new(),
        domain: cloudbill_core::DomainId::new(),
        name: Name::parse(name, "budget name").unwrap(),
        scope,
        filters: vec![],
        period: Period::Monthly,
        amount: Money::new(amount, Currency::USD),
        metric: CostMetric::Billed,
        notifications: levels
            .iter()
            .map(|l| Notification {
                threshold: Threshold::parse(l).unwrap(),
                channels: vec![],
            })
            .collect(),
        created_at: chrono::Utc::now(),
    }
}

/// #30 high: a budget amount from about 3.96e26 — which a member may create — made `/` and
/// `/projects/{id}` panic for everyone. Such amounts are refused at input; one stored before
/// is drawn without overflowing (its limits too), and its status says what fits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budget_at_the_decimal_limit_is_refused_and_a_stored_one_renders() {
    let s = Server::start().await;
    for amount in ["4e26", "79228162514264337593543950335", "0.001"] {
        let (status, body) = s
            .call(
                "POST",
                "/api/v1/budgets",
                Some(&s.web_member),
                Some(json!({"name": "huge", "amount": amount, "currency": "USD",
                    "project": "web", "notifications": []})),
            )
            .await;
        assert_eq!(status, 422, "{amount}: {body}");
    }
    let domain = s.billing.domain().await.unwrap().id;
    let web = project_id(&s, "web").await;
    for (name, amount) in [
        (
            "near-limit",
            Decimal::from_i128_with_scale(4 * 10_i128.pow(26), 0),
        ),
        ("at-limit", Decimal::MAX),
        ("tiny", Decimal::new(1, 28)),
    ] {
        let mut b = stored_budget(
            name,
            BudgetScope::Project(web),
            amount,
            &["actual:80%", "actual:1000%", "forecast:100%"],
        );
        b.domain = domain;
        s.store.create_budget(&b).await.unwrap();
    }
    for (path, token) in [
        ("/".to_owned(), &s.admin),
        (format!("/projects/{web}"), &s.web_member),
    ] {
        let resp = s
            .http
            .get(s.url(&path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        let html = resp.text().await.unwrap();
        for name in ["near-limit", "at-limit", "tiny"] {
            assert!(html.contains(&format!("data-budget=\"{name}\"")), "{path}");
        }
    }
    let (status, statuses) = s
        .call("GET", "/api/v1/budgets/status", Some(&s.admin), None)
        .await;
    assert_eq!(status, 200, "{statuses}");
    let of = |name: &str| {
        statuses["budgets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["name"] == name)
            .unwrap()
            .clone()
    };
    // A limit of 1e-30 (a 1e-28 budget's 1%…) rounds to nothing: never "fired" or crossed.
    let tiny = of("tiny");
    assert!(tiny["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .all(|n| n["state"] != "fired" && n["state"] != "crossed"));
    // A spend that is 10^28 times the budget has no percentage a decimal holds.
    assert!(tiny["percent_used"].is_null() || tiny["percent_used"].is_string());
    // actual:1000% is ten times the amount.
    let near = of("near-limit");
    let limits: Vec<&str> = near["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["limit"].as_str().unwrap())
        .collect();
    assert_eq!(limits[1], "4000000000000000000000000000");
}

/// #30 low: `actual:1000%` was drawn at the end of the bar as if it were the amount; the
/// bar spans the largest limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_threshold_above_the_amount_is_drawn_past_it() {
    let s = Server::start().await;
    let (status, body) = s
        .call(
            "POST",
            "/api/v1/budgets",
            Some(&s.admin),
            Some(
                json!({"name": "watch", "amount": "1000000", "currency": "USD",
                "project": "web", "notifications": []}),
            ),
        )
        .await;
    // A budget only watched: no notification, no channel (docs/BUDGETS.md: 0 to 10).
    assert_eq!(status, 201, "{body}");
    let domain = s.billing.domain().await.unwrap().id;
    let mut b = stored_budget(
        "tenfold",
        BudgetScope::Project(project_id(&s, "web").await),
        Decimal::from(1_000_000),
        &["actual:1000%"],
    );
    b.domain = domain;
    s.store.create_budget(&b).await.unwrap();
    let html = s
        .http
        .get(s.url("/"))
        .bearer_auth(&s.admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let row = html
        .split("data-budget=\"tenfold\"")
        .nth(1)
        .unwrap()
        .split("</tr>")
        .next()
        .unwrap();
    // The amount's bar is a tenth of the width; the threshold's line near its end.
    assert!(row.contains("width=\"42\" height=\"8\""), "{row}");
    assert!(row.contains("x1=\"419\""), "{row}");
}

/// #30 high: an invoice total of ±7.9e28 made reconcile (API, page, CLI) panic, and there was
/// no way to delete it. Such totals are refused; a stored one makes only its request 422,
/// and `DELETE /invoices/{account}/{period}/{currency}` removes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invoice_at_the_decimal_limit_is_refused_and_a_stored_one_deleted() {
    let s = Server::start().await;
    let (status, body) = s
        .call(
            "POST",
            "/api/v1/invoices",
            Some(&s.admin),
            Some(
                json!({"account": "acme-main", "period": "2025-03", "currency": "USD",
                "invoice_id": "INV-1", "total": "-79228162514264337593543950335"}),
            ),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let domain = s.billing.domain().await.unwrap().id;
    let acme: cloudbill_core::AccountId = s
        .id_of("service-accounts", "acme-main")
        .await
        .parse()
        .unwrap();
    s.store
        .put_invoices(
            domain,
            &[cloudbill_core::Invoice {
                account: acme,
                period: date("2025-03-01"),
                currency: Currency::USD,
                invoice_id: "INV-HUGE".into(),
                total: Decimal::MIN,
                issuer: None,
                tax: None,
            }],
        )
        .await
        .unwrap();
    let (status, body) = s
        .call(
            "GET",
            "/api/v1/reconcile?period=2025-03",
            Some(&s.admin),
            None,
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "amount_out_of_range", "{body}");
    let page = s
        .http
        .get(s.url("/reconcile?period=2025-03"))
        .bearer_auth(&s.admin)
        .send()
        .await
        .unwrap();
    assert!(page.status().is_client_error(), "{}", page.status());
    // Other pages and months are not affected.
    let (status, _) = s
        .call(
            "GET",
            "/api/v1/reconcile?period=2025-04",
            Some(&s.admin),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let (status, deleted) = s
        .call(
            "DELETE",
            "/api/v1/invoices/acme-main/2025-03/USD",
            Some(&s.admin),
            None,
        )
        .await;
    assert_eq!(status, 200, "{deleted}");
    assert_eq!(deleted["invoice_id"], "INV-HUGE");
    let (status, body) = s
        .call(
            "GET",
            "/api/v1/reconcile?period=2025-03",
            Some(&s.admin),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = s
        .call(
            "DELETE",
            "/api/v1/invoices/acme-main/2025-03/USD",
            Some(&s.admin),
            None,
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = s
        .call(
            "DELETE",
            "/api/v1/invoices/acme-main/2025-03/USD",
            Some(&s.web_member),
            None,
        )
        .await;
    assert_eq!(status, 403);
}

/// #30 high: a panic in a handler closed the connection without a response. The middleware
/// every route passes answers it as a 500 JSON error; the connection and the server go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_that_panics_gets_a_500_and_the_server_keeps_serving() {
    let s = Server::start().await;
    let routes = axum::Router::new()
        .route(
            "/boom",
            axum::routing::get(|| async {
                let v: Vec<&'static str> = Vec::new();
                // A program error, the kind no test of a real route can reach any more.
                std::hint::black_box(&v)[3]
            }),
        )
        .route("/fine", axum::routing::get(|| async { "fine" }));
    let app =
        cloudbill_web::with_middleware(routes, cloudbill_web::AppState::new(s.billing.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(cloudbill_web::serve(
        listener,
        app,
        cloudbill_web::ServeLimits::default(),
        std::future::pending(),
    ));
    // One connection for every request (the pool keeps it alive).
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .build()
        .unwrap();
    for _ in 0..3 {
        let resp = http
            .get(format!("http://{addr}/boom"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 500);
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], "internal");
        assert!(!body.to_string().contains("index out of bounds"));
        let resp = http
            .get(format!("http://{addr}/fine"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
}

/// #30 medium: kept anomaly ids repeat across monitors, and a member's `ignore` changed the
/// state in other projects' and the domain's monitors. The state is the monitor's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_members_ignore_changes_only_the_monitors_it_sees() {
    let s = Server::start().await;
    let (status, body) = s
        .call(
            "POST",
            "/api/v1/anomaly-monitors",
            Some(&s.web_member),
            Some(json!({"name": "web-services", "project": "web", "dimension": "service"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let domain = s.billing.domain().await.unwrap().id;
    let monitors = s.store.monitors(domain).await.unwrap();
    assert!(monitors.len() >= 2, "{monitors:?}");
    let at = chrono::Utc::now();
    let changes: Vec<cloudbill_store::AnomalyChange> = monitors
        .iter()
        .map(|m| cloudbill_store::AnomalyChange {
            anomaly: cloudbill_core::StoredAnomaly {
                id: "an_shared".into(),
                domain,
                monitor: m.id,
                kind: "spike".into(),
                group: std::collections::BTreeMap::from([("service".into(), "AmazonEC2".into())]),
                currency: Currency::USD,
                start: date("2025-05-10"),
                end: date("2025-05-10"),
                expected: Decimal::from(10),
                actual: Decimal::from(50),
                impact: Decimal::from(40),
                score: Decimal::from(9),
                contributors: Vec::new(),
                state: cloudbill_core::AnomalyState::Open,
                closed_reason: None,
                detected_at: at,
                updated_at: at,
                notified_impact: None,
                version: 1,
            },
            expected_version: None,
            event: None,
        })
        .collect();
    s.store.apply_anomalies(domain, &changes).await.unwrap();
    let (status, body) = s
        .call(
            "POST",
            "/api/v1/anomalies/an_shared/ignore",
            Some(&s.web_member),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    for a in s.store.stored_anomalies(domain, None).await.unwrap() {
        let mine = monitors
            .iter()
            .find(|m| m.id == a.monitor)
            .is_some_and(|m| m.name.as_str() == "web-services");
        let expected = if mine {
            cloudbill_core::AnomalyState::Ignored
        } else {
            cloudbill_core::AnomalyState::Open
        };
        assert_eq!(a.state, expected, "{:?}", a.monitor);
    }
}

/// #30 medium: a member filtering by another project's account (by name or id) or project
/// group got 200 with no rows, by a name that does not exist 422: an existence oracle. Both
/// are answered alike, on reports, forecasts, anomalies and the explorer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_cannot_tell_others_accounts_and_groups_from_missing_ones() {
    let s = Server::start().await;
    let (status, body) = s
        .call(
            "POST",
            "/api/v1/project-groups",
            Some(&s.admin),
            Some(json!({"name": "data-group"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let globex_id = s.id_of("service-accounts", "globex").await;
    let query = |key: &str, value: &str| {
        json!({"start": "2025-03-01", "end": "2025-06-01", "granularity": "MONTHLY",
            "filters": {"project": ["web"], key: [value]}})
    };
    let mut answers = Vec::new();
    for (key, value) in [
        ("service_account", "globex"),
        ("service_account", globex_id.as_str()),
        ("service_account", "no-such-account"),
        ("project_group", "data-group"),
        ("project_group", "no-such-group"),
    ] {
        let (status, body) = s
            .call(
                "POST",
                "/api/v1/billing/query",
                Some(&s.web_member),
                Some(query(key, value)),
            )
            .await;
        assert_eq!(status, 404, "{key}={value}: {body}");
        let message = body["error"]["message"].as_str().unwrap().to_owned();
        answers.push((body["error"]["code"].clone(), message.replace(value, "X")));
        for path in [
            format!("/api/v1/forecast?filter.project=web&filter.{key}={value}"),
            format!(
                "/api/v1/anomalies?start=2025-04-01&end=2025-06-01&filter.project=web&filter.{key}={value}"
            ),
        ] {
            let (status, body) = s.call("GET", &path, Some(&s.web_member), None).await;
            assert_eq!(status, 404, "{path}: {body}");
        }
        let explore = s
            .http
            .get(s.url(&format!(
                "/explore?start=2025-03-01&end=2025-06-01&filter.{key}={value}"
            )))
            .bearer_auth(&s.web_member)
            .send()
            .await
            .unwrap();
        assert_eq!(explore.status(), 404, "explore {key}={value}");
    }
    // Same code, and the same message but for the value itself.
    assert!(answers[..3].windows(2).all(|w| w[0] == w[1]), "{answers:?}");
    assert_eq!(answers[3], answers[4]);
    // Its own account still filters.
    let (status, _) = s
        .call(
            "POST",
            "/api/v1/billing/query",
            Some(&s.web_member),
            Some(query("service_account", "acme-main")),
        )
        .await;
    assert_eq!(status, 200);
}

/// #30 medium: one notification listing a channel 300 times sent 600 POSTs. A channel is
/// told once however often it is named; a notification names at most 10.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_named_many_times_is_told_once() {
    let s = Server::start().await;
    for i in 0..11 {
        let (status, body) = s
            .call(
                "POST",
                "/api/v1/channels",
                Some(&s.admin),
                Some(
                    json!({"name": format!("hook{i}"), "webhook": format!("http://127.0.0.1:9/{i}"),
                    "secret": "whsec-0123456789abcdef"}),
                ),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let hook0 = s.id_of("channels", "hook0").await;
    let mut named = vec![json!("hook0"); 300];
    named.push(json!(hook0));
    let (status, body) = s
        .call(
            "POST",
            "/api/v1/budgets",
            Some(&s.admin),
            Some(json!({"name": "many", "amount": "100", "currency": "USD",
                "notifications": [{"threshold": "actual:80%", "channels": named}]})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["notifications"][0]["channels"], json!(["hook0"]));
    let eleven: Vec<String> = (0..11).map(|i| format!("hook{i}")).collect();
    let (status, body) = s
        .call(
            "POST",
            "/api/v1/budgets",
            Some(&s.admin),
            Some(
                json!({"name": "too-many", "amount": "100", "currency": "USD",
                "notifications": [{"threshold": "actual:80%", "channels": eleven}]}),
            ),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("at most 10"));
}

/// #30 low: after `move --from`, the new project's member saw the job's start and its row
/// count for days before the move. The window is cut to the days its project owned, the
/// count left out; a job of only earlier days is not shown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_partial_move_a_member_sees_no_earlier_window_or_rows() {
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
    let (_, jobs) = s
        .call(
            "GET",
            "/api/v1/jobs?account=globex",
            Some(&s.web_member),
            None,
        )
        .await;
    let items = jobs["items"].as_array().unwrap();
    assert!(!items.is_empty());
    for job in items {
        assert!(job["start"].as_str().unwrap() >= "2025-05-01", "{job}");
        assert!(job["rows"].is_null(), "{job}");
    }
    let (_, admin_jobs) = s
        .call("GET", "/api/v1/jobs?account=globex", Some(&s.admin), None)
        .await;
    assert!(admin_jobs["items"][0]["rows"].as_u64().unwrap() > 0);
    assert_eq!(admin_jobs["items"][0]["start"], "2025-03-01");
}

/// #30 low: four `POST /sync` of one account at once ran together and marked each other
/// interrupted. Syncs of an account take turns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_syncs_of_one_account_take_turns() {
    let s = Arc::new(Server::start().await);
    // Slow provider answers, so the four would overlap.
    for _ in 0..8 {
        s.sim.inject(cloudbill_hyperbilling::sim::Fault::Slow(
            std::time::Duration::from_millis(300),
        ));
    }
    let calls = (0..4).map(|_| {
        let s = Arc::clone(&s);
        tokio::spawn(async move {
            s.call(
                "POST",
                "/api/v1/sync",
                Some(&s.admin),
                Some(
                    json!({"accounts": ["acme-main"], "start": "2025-05-01", "end": "2025-06-01"}),
                ),
            )
            .await
        })
    });
    for call in calls {
        let (status, body) = call.await.unwrap();
        assert_eq!(status, 202, "{body}");
    }
    // The syncs run in the background: wait until none is running, watching every state
    // they pass through (one marked interrupted by another is later overwritten).
    let mut jobs = serde_json::Value::Null;
    for _ in 0..400 {
        (_, jobs) = s
            .call(
                "GET",
                "/api/v1/jobs?account=acme-main",
                Some(&s.admin),
                None,
            )
            .await;
        assert!(!jobs.to_string().contains("interrupted"), "{jobs}");
        if jobs["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|j| j["state"] != "running")
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(jobs["items"].as_array().unwrap().len(), 5, "{jobs}");
    for job in jobs["items"].as_array().unwrap() {
        assert_eq!(job["state"], "succeeded", "{job}");
        assert!(job["error"].is_null(), "{job}");
    }
}

/// #30 low: `POST /login` accepted a cross-origin `Origin` (login CSRF).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_from_another_site_is_refused() {
    let s = Server::start().await;
    let login = |origin: &'static str| {
        s.http
            .post(s.url("/login"))
            .header("origin", origin)
            .form(&[("token", s.admin.as_str())])
            .send()
    };
    let evil = login("https://evil.example").await.unwrap();
    assert_eq!(evil.status(), 403);
    assert!(evil.headers().get("set-cookie").is_none());
    let null = login("null").await.unwrap();
    assert_eq!(null.status(), 403);
    let mine = s
        .http
        .post(s.url("/login"))
        .header("origin", format!("http://{}", s.addr))
        .form(&[("token", s.admin.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(mine.status(), 303);
    assert!(mine.headers().get("set-cookie").is_some());
}

/// #30 low: a Slack URL with credentials was echoed whole in the 422 message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slack_url_is_never_echoed() {
    let s = Server::start().await;
    for url in [
        "ftp://hooks.slack.com/services/T0/B0/XSECRETX",
        "https://user:XSECRETX@hooks.slack.com/services/T0",
        "hooks.slack.com/XSECRETX",
    ] {
        let (status, body) = s
            .call(
                "POST",
                "/api/v1/channels",
                Some(&s.admin),
                Some(json!({"name": "slack", "slack": url})),
            )
            .await;
        assert_eq!(status, 422, "{body}");
        assert!(!body.to_string().contains("XSECRETX"), "{body}");
    }
}

/// #30 low: `аlpha` (Cyrillic а), `alpha\u{200b}` and `ALPHA` were accepted beside `alpha`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn domain_names_are_slugs_without_look_alikes() {
    let s = Server::start().await;
    let tenants = cloudbill_service::Tenants::new(s.billing.clone(), 1 << 20);
    let (_, secret) = tenants
        .create_system_token(&cloudbill_service::SystemAdmin::operator(), "ops")
        .await
        .unwrap();
    let create = |name: &str| {
        let name = name.to_owned();
        let secret = secret.clone();
        let s = &s;
        async move {
            s.call(
                "POST",
                "/api/v1/domains",
                Some(&secret),
                Some(json!({"name": name})),
            )
            .await
        }
    };
    let (status, body) = create("alpha").await;
    assert_eq!(status, 201, "{body}");
    for (name, status_expected) in [
        ("\u{430}lpha", 422),
        ("alpha\u{200b}", 422),
        ("ALPHA", 409),
        ("al pha", 422),
        ("-alpha", 422),
    ] {
        let (status, body) = create(name).await;
        assert_eq!(status, status_expected, "{name:?}: {body}");
    }
}
