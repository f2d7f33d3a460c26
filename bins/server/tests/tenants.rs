//! One server, every domain: a token of domain A never reads, counts or learns of domain B's
//! data on any route; system-admin tokens manage domains and read no billing data; a disabled
//! domain's tokens are refused.

use cloudbill_service::{
    BillFormat, BillSource, ImportOptions, NewAccount, Principal, SystemAdmin, Tenants,
};
use cloudbill_web::openapi::{Access, ROUTES};
use serde_json::{json, Value};

use crate::harness::Server;

/// Every name in domain B starts with this: no answer to domain A may contain it.
const MARK: &str = "zeta";

async fn raw(
    s: &Server,
    method: &str,
    path: &str,
    token: &str,
    body: Option<&Value>,
) -> (u16, String) {
    let mut req = s
        .http
        .request(method.parse().unwrap(), s.url(path))
        .bearer_auth(token);
    if let Some(b) = body {
        req = req.json(b);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// Domain B's objects: (path prefix, id) and every id as text.
struct Beta {
    admin: String,
    ids: Vec<(&'static str, String)>,
}

async fn set_up_beta(s: &Server, system: &str) -> Beta {
    let (status, created) = s
        .call(
            "POST",
            "/api/v1/domains",
            Some(system),
            Some(json!({"name": format!("{MARK}-tenant")})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let admin = created["admin_token"]["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let a = Some(admin.as_str());
    assert_eq!(
        s.call("POST", "/api/v1/billing/enable", a, None).await.0,
        200
    );
    let (st, project) = s
        .call(
            "POST",
            "/api/v1/projects",
            a,
            Some(json!({"name": format!("{MARK}-secret-project")})),
        )
        .await;
    assert_eq!(st, 201, "{project}");
    // A bill of its own, imported through the service of that domain.
    let tenants = Tenants::new(s.billing.clone(), 1 << 30);
    let beta = tenants
        .domain(&SystemAdmin::operator(), &format!("{MARK}-tenant"))
        .await
        .unwrap();
    beta.add_account(
        &Principal::Admin,
        NewAccount {
            name: format!("{MARK}-bill"),
            provider: "file".into(),
            project: Some(format!("{MARK}-secret-project")),
            settings: cloudbill_core::Settings::default(),
        },
        false,
    )
    .await
    .unwrap();
    let csv = std::fs::read(
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../crates/focus/tests/fixtures/tagged.csv"),
    )
    .unwrap();
    let source: BillSource = std::sync::Arc::new(move || {
        Ok(Box::new(std::io::Cursor::new(csv.clone())) as Box<dyn std::io::Read + Send>)
    });
    beta.import(
        &Principal::Admin,
        &format!("{MARK}-bill"),
        BillFormat::Focus,
        source,
        "zeta.csv",
        ImportOptions::default(),
    )
    .await
    .unwrap();
    let (st, channel) = s
        .call(
            "POST",
            "/api/v1/channels",
            a,
            Some(json!({"name": format!("{MARK}-hook"), "webhook": "http://127.0.0.1:9/zeta", "secret": "zeta-secret-0123456789"})),
        )
        .await;
    assert_eq!(st, 201, "{channel}");
    let (st, budget) = s
        .call(
            "POST",
            "/api/v1/budgets",
            a,
            Some(
                json!({"name": format!("{MARK}-budget"), "amount": "1", "currency": "USD",
                "notifications": ["actual:50%"], "channels": [format!("{MARK}-hook")]}),
            ),
        )
        .await;
    assert_eq!(st, 201, "{budget}");
    let (st, monitor) = s
        .call(
            "POST",
            "/api/v1/anomaly-monitors",
            a,
            Some(json!({"name": format!("{MARK}-monitor"), "dimension": "service"})),
        )
        .await;
    assert_eq!(st, 201, "{monitor}");
    let (_, accounts) = s.call("GET", "/api/v1/service-accounts", a, None).await;
    let (_, jobs) = s.call("GET", "/api/v1/jobs", a, None).await;
    let id = |v: &Value| v["id"].as_str().unwrap().to_owned();
    Beta {
        admin,
        ids: vec![
            ("/api/v1/projects/", id(&project)),
            ("/api/v1/service-accounts/", id(&accounts["items"][0])),
            ("/api/v1/jobs/", id(&jobs["items"][0])),
            ("/api/v1/budgets/", id(&budget)),
            ("/api/v1/channels/", id(&channel)),
            ("/api/v1/anomaly-monitors/", id(&monitor)),
        ],
    }
}

/// What B's admin sees of B, to compare before and after A's attempts.
async fn beta_state(s: &Server, beta: &Beta) -> Vec<String> {
    let mut out = Vec::new();
    for path in [
        "/api/v1/projects",
        "/api/v1/service-accounts",
        "/api/v1/budgets",
        "/api/v1/channels",
        "/api/v1/anomaly-monitors",
        "/api/v1/providers",
        "/api/v1/billing",
    ] {
        let (status, body) = raw(s, "GET", path, &beta.admin, None).await;
        assert_eq!(status, 200, "{path}: {body}");
        out.push(body);
    }
    out
}

fn concrete(path: &str, beta: &Beta) -> String {
    let mut p = path.to_owned();
    for (prefix, id) in &beta.ids {
        if p.starts_with(prefix) {
            p = p.replace("{id}", id);
        }
    }
    let p = p
        .replace("{id}", "00000000-0000-0000-0000-000000000000")
        .replace("{name}", "file")
        .replace("{period}", "2025-05");
    let query = match path {
        "/api/v1/billing/tags" | "/api/v1/export/focus" => "?start=2025-01-01&end=2026-01-01",
        "/api/v1/anomalies" => "?start=2025-03-01&end=2025-07-01&state=all",
        "/api/v1/reconcile" => "?period=2025-05",
        "/api/v1/billing/query" => "?start=2025-01-01&end=2026-01-01&group_by=project",
        _ => "",
    };
    format!("{p}{query}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_of_one_domain_never_reaches_another_on_any_route() {
    let s = Server::start().await;
    let tenants = Tenants::new(s.billing.clone(), 1 << 30);
    let (_, system) = tenants
        .create_system_token(&SystemAdmin::operator(), "ops")
        .await
        .unwrap();
    let beta = set_up_beta(&s, &system).await;
    let before = beta_state(&s, &beta).await;
    assert!(before[0].contains("zeta-secret-project"), "{}", before[0]);

    // Domain A's admin and members, over every domain route, with B's ids in the paths.
    let tokens = [s.admin.clone(), s.web_member.clone(), s.data_member.clone()];
    let mut tried = 0;
    for route in ROUTES.iter().filter(|r| r.access != Access::System) {
        let has_id = route.path.contains("{id}");
        // Routes without an id act on A's own data: read them, do not change A meanwhile.
        if !has_id && route.method != "get" && route.path != "/api/v1/billing/query" {
            continue;
        }
        let path = concrete(route.path, &beta);
        let body = if route.path == "/api/v1/billing/query" && route.method == "post" {
            Some(
                json!({"start": "2025-01-01", "end": "2026-01-01", "group_by": ["project", "service_account"]}),
            )
        } else if route.body.is_some() {
            Some(
                json!({"project": "web", "name": "x", "amount": "1", "currency": "USD", "notifications": ["actual:50%"]}),
            )
        } else {
            None
        };
        for token in &tokens {
            let (status, text) = raw(
                &s,
                &route.method.to_uppercase(),
                &path,
                token,
                body.as_ref(),
            )
            .await;
            tried += 1;
            assert!(
                !text.to_lowercase().contains(MARK),
                "{} {path} showed domain B to a domain A token: {text}",
                route.method
            );
            // (A 404 may echo the id the caller sent; no other id of B may appear.)
            for (_, id) in beta
                .ids
                .iter()
                .filter(|(_, id)| !path.contains(id.as_str()))
            {
                assert!(
                    !text.contains(id.as_str()),
                    "{} {path} leaked an id of B: {text}",
                    route.method
                );
            }
            let b_object = beta
                .ids
                .iter()
                .any(|(prefix, _)| route.path.starts_with(prefix));
            if has_id && b_object {
                assert!(
                    status == 404 || status == 403 || status == 422 || status == 400,
                    "{} {path} with B's id answered {status} to a domain A token: {text}",
                    route.method
                );
            }
        }
    }
    assert!(tried > 100, "the sweep covered {tried} calls");
    assert_eq!(
        beta_state(&s, &beta).await,
        before,
        "domain A's calls changed domain B"
    );

    // A's consolidated total is A's alone (B's bill is not counted).
    let (_, report) = s
        .call(
            "POST",
            "/api/v1/billing/query",
            Some(&s.admin),
            Some(json!({"start": "2025-01-01", "end": "2026-01-01", "granularity": "YEARLY"})),
        )
        .await;
    let q = cloudbill_service::Query::new(
        cloudbill_core::DateRange::parse("2025-01-01", "2026-01-01").unwrap(),
        cloudbill_core::Granularity::Yearly,
    );
    let direct = s.billing.report(&Principal::Admin, &q).await.unwrap();
    assert_eq!(
        report["results"][0]["total"][0]["cost"],
        direct.results[0].total[0].cost.to_string()
    );

    // B's token sees B only.
    let (_, projects) = s
        .call("GET", "/api/v1/projects", Some(&beta.admin), None)
        .await;
    let names: Vec<&str> = projects["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["zeta-secret-project"]);
    let (status, _) = raw(
        &s,
        "GET",
        &format!("/api/v1/projects/{}", s.id_of("projects", "web").await),
        &beta.admin,
        None,
    )
    .await;
    assert_eq!(status, 404, "B's token reads A's project");
    // The dashboard shows the token's domain.
    let page = s
        .http
        .get(s.url("/"))
        .header("cookie", format!("cloudbill_token={}", beta.admin))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("zeta-tenant"), "{page}");
    assert!(!page.contains("acme-main"), "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn system_admins_manage_domains_and_read_no_billing_data() {
    let s = Server::start().await;
    let tenants = Tenants::new(s.billing.clone(), 1 << 30);
    let (_, system) = tenants
        .create_system_token(&SystemAdmin::operator(), "ops")
        .await
        .unwrap();
    // Every domain route refuses a system-admin token with 403.
    for route in ROUTES.iter().filter(|r| r.access != Access::System) {
        let path = route
            .path
            .replace("{id}", "00000000-0000-0000-0000-000000000000")
            .replace("{name}", "file")
            .replace("{period}", "2025-05");
        let body = route.body.map(|_| json!({}));
        let (status, text) = raw(
            &s,
            &route.method.to_uppercase(),
            &path,
            &system,
            body.as_ref(),
        )
        .await;
        assert!(
            status == 403 || status == 400 || status == 422,
            "{} {path} answered {status} to a system-admin token: {text}",
            route.method
        );
        assert!(
            !text.contains("acme-main") && !text.contains("\"web\""),
            "{text}"
        );
    }
    let (status, text) = raw(&s, "GET", "/api/v1/projects", &system, None).await;
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("system-admin"), "{text}");
    // Domain tokens may not manage domains.
    for token in [&s.admin, &s.web_member] {
        let (status, _) = raw(&s, "GET", "/api/v1/domains", token, None).await;
        assert_eq!(status, 403);
        let (status, _) = raw(
            &s,
            "POST",
            "/api/v1/domains",
            token,
            Some(&json!({"name": "evil"})),
        )
        .await;
        assert_eq!(status, 403);
    }
    // A domain admin cannot mint a system-admin token through the service either.
    assert!(s
        .billing
        .create_token(
            &Principal::Admin,
            cloudbill_core::TokenRole::SystemAdmin,
            None,
            "x"
        )
        .await
        .is_err());

    let (status, created) = s
        .call(
            "POST",
            "/api/v1/domains",
            Some(&system),
            Some(json!({"name": "second"})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let second = created["admin_token"]["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, dup) = s
        .call(
            "POST",
            "/api/v1/domains",
            Some(&system),
            Some(json!({"name": "second"})),
        )
        .await;
    assert_eq!(status, 409, "{dup}");
    let (status, bad) = s
        .call(
            "POST",
            "/api/v1/domains",
            Some(&system),
            Some(json!({"name": "  "})),
        )
        .await;
    assert_eq!(status, 422, "{bad}");
    let (_, list) = s.call("GET", "/api/v1/domains", Some(&system), None).await;
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["default", "second"]);
    assert_eq!(list["items"][0]["accounts"], 3);
    assert!(
        !list.to_string().contains("acme-main"),
        "no billing data in the list"
    );

    // Disabled: its tokens are refused, other domains untouched; enabled again: back.
    assert_eq!(
        raw(&s, "GET", "/api/v1/billing", &second, None).await.0,
        200
    );
    let (status, off) = s
        .call(
            "POST",
            "/api/v1/domains/second/disable",
            Some(&system),
            None,
        )
        .await;
    assert_eq!(status, 200, "{off}");
    assert!(off["disabled_at"].is_string());
    assert_eq!(
        raw(&s, "GET", "/api/v1/billing", &second, None).await.0,
        401
    );
    assert_eq!(
        raw(&s, "GET", "/api/v1/billing", &s.admin, None).await.0,
        200
    );
    assert_eq!(
        s.call(
            "POST",
            "/api/v1/domains/nowhere/disable",
            Some(&system),
            None
        )
        .await
        .0,
        404
    );
    let (status, on) = s
        .call("POST", "/api/v1/domains/second/enable", Some(&system), None)
        .await;
    assert_eq!(status, 200, "{on}");
    assert!(on["disabled_at"].is_null());
    assert_eq!(
        raw(&s, "GET", "/api/v1/billing", &second, None).await.0,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warm_engines_of_many_domains_stay_under_the_memory_budget() {
    let s = Server::start().await;
    // A budget of one byte: only the engine in use is kept.
    let tenants = Tenants::new(s.billing.clone(), 1);
    let op = SystemAdmin::operator();
    let (_, _, second) = tenants.create_domain(&op, "second", "").await.unwrap();
    let q = cloudbill_service::Query::new(
        cloudbill_core::DateRange::parse("2025-03-01", "2025-06-01").unwrap(),
        cloudbill_core::Granularity::Monthly,
    );
    let first = match tenants.authenticate(&s.admin).await.unwrap() {
        cloudbill_service::Caller::Domain {
            billing, principal, ..
        } => {
            let before = billing.report(&principal, &q).await.unwrap();
            assert!(billing.engine_bytes() > 0, "the report warmed the engine");
            (billing, principal, before)
        }
        cloudbill_service::Caller::System(_) => panic!("a domain token"),
    };
    let cloudbill_service::Caller::Domain {
        billing, principal, ..
    } = tenants.authenticate(&second).await.unwrap()
    else {
        panic!("a domain token")
    };
    billing.set_billing(&principal, true).await.unwrap();
    billing.report(&principal, &q).await.unwrap();
    // Using the second domain evicts the first's engine (least recently used) ...
    let _ = tenants.authenticate(&second).await.unwrap();
    assert_eq!(
        first.0.engine_bytes(),
        0,
        "the idle domain's engine was dropped"
    );
    // ... and the first's next report loads it again, with the same numbers.
    let _ = tenants.authenticate(&s.admin).await.unwrap();
    let again = first.0.report(&first.1, &q).await.unwrap();
    assert_eq!(again, first.2);
    assert!(first.0.engine_bytes() > 0);
}
