//! The REST API: every endpoint × role, error shapes, exact numbers.

use cloudbill_core::Decimal;
use serde_json::json;

use crate::harness::{range, Server, RANGE};

fn dec(v: &serde_json::Value) -> Decimal {
    v.as_str().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_by_role() {
    role_matrix(&Server::start().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_by_role_on_postgres() {
    if let Some(s) = Server::start_on_postgres("every_endpoint_by_role_on_postgres").await {
        role_matrix(&s).await;
        s.cleanup().await;
    }
}

async fn role_matrix(s: &Server) {
    let web = s.id_of("projects", "web").await;
    let data = s.id_of("projects", "data").await;
    let acme = s.id_of("service-accounts", "acme-main").await;
    let globex = s.id_of("service-accounts", "globex").await;
    let admin = Some(s.admin.as_str());
    let member = Some(s.web_member.as_str());
    let q = |filters: serde_json::Value| json!({"start": RANGE.0, "end": RANGE.1, "granularity": "MONTHLY", "filters": filters});

    // (method, path, body, anonymous, admin, web member)
    let cases: Vec<(&str, String, Option<serde_json::Value>, u16, u16, u16)> = vec![
        ("GET", "/api/v1/billing".into(), None, 401, 200, 200),
        ("GET", "/api/v1/providers".into(), None, 401, 200, 403),
        (
            "POST",
            "/api/v1/providers/file/enable".into(),
            None,
            401,
            200,
            403,
        ),
        ("GET", "/api/v1/project-groups".into(), None, 401, 200, 403),
        (
            "POST",
            "/api/v1/project-groups".into(),
            Some(json!({"name": "eng"})),
            401,
            201,
            403,
        ),
        ("GET", "/api/v1/projects".into(), None, 401, 200, 200),
        (
            "POST",
            "/api/v1/projects".into(),
            Some(json!({"name": "new", "group": "eng"})),
            401,
            201,
            403,
        ),
        (
            "GET",
            format!("/api/v1/projects/{web}"),
            None,
            401,
            200,
            200,
        ),
        (
            "GET",
            format!("/api/v1/projects/{data}"),
            None,
            401,
            200,
            404,
        ),
        (
            "GET",
            "/api/v1/service-accounts".into(),
            None,
            401,
            200,
            200,
        ),
        (
            "GET",
            format!("/api/v1/service-accounts/{acme}"),
            None,
            401,
            200,
            200,
        ),
        (
            "GET",
            format!("/api/v1/service-accounts/{globex}"),
            None,
            401,
            200,
            404,
        ),
        (
            "POST",
            format!("/api/v1/service-accounts/{acme}/verify"),
            None,
            401,
            200,
            403,
        ),
        (
            "POST",
            format!("/api/v1/service-accounts/{acme}/disable"),
            None,
            401,
            200,
            403,
        ),
        (
            "POST",
            format!("/api/v1/service-accounts/{acme}/enable"),
            None,
            401,
            200,
            403,
        ),
        (
            "POST",
            format!("/api/v1/service-accounts/{acme}/sync"),
            Some(json!({"start": "2025-05-01", "end": "2025-05-03"})),
            401,
            202,
            403,
        ),
        (
            "POST",
            "/api/v1/sync".into(),
            Some(json!({"accounts": ["globex"], "start": "2025-05-01", "end": "2025-05-03"})),
            401,
            202,
            403,
        ),
        ("GET", "/api/v1/jobs".into(), None, 401, 200, 200),
        (
            "POST",
            "/api/v1/billing/query".into(),
            Some(q(json!({}))),
            401,
            200,
            403,
        ),
        (
            "POST",
            "/api/v1/billing/query".into(),
            Some(q(json!({"project": ["web"]}))),
            401,
            200,
            200,
        ),
        (
            "POST",
            "/api/v1/billing/query".into(),
            Some(q(json!({"project": ["data"]}))),
            401,
            200,
            404,
        ),
        (
            "GET",
            format!(
                "/api/v1/billing/query?start={}&end={}&filter.project={web}",
                RANGE.0, RANGE.1
            ),
            None,
            401,
            200,
            200,
        ),
        (
            "POST",
            format!("/api/v1/service-accounts/{globex}/move"),
            Some(json!({"project": "web", "from": "2025-05-01"})),
            401,
            200,
            403,
        ),
        (
            "DELETE",
            format!("/api/v1/projects/{data}"),
            None,
            401,
            409,
            403,
        ),
        (
            "POST",
            "/api/v1/billing/disable".into(),
            None,
            401,
            200,
            403,
        ),
        ("POST", "/api/v1/billing/enable".into(), None, 401, 200, 403),
    ];
    for (method, path, body, anon, as_admin, as_member) in cases {
        let got_anon = s.call(method, &path, None, body.clone()).await;
        assert_eq!(
            got_anon.0, anon,
            "{method} {path} anonymous: {}",
            got_anon.1
        );
        assert_eq!(got_anon.1["error"]["code"], "unauthenticated");
        // Members first, so a write by the admin does not change what the member sees.
        let got_member = s.call(method, &path, member, body.clone()).await;
        assert_eq!(
            got_member.0, as_member,
            "{method} {path} member: {}",
            got_member.1
        );
        if as_member == 403 {
            assert_eq!(got_member.1["error"]["code"], "forbidden");
        }
        if as_member == 404 {
            // Another project's object answers as if it did not exist (#13): the same code
            // and a message that only repeats what the member asked for.
            assert_eq!(got_member.1["error"]["code"], "not_found");
        }
        let got_admin = s.call(method, &path, admin, body).await;
        assert_eq!(
            got_admin.0, as_admin,
            "{method} {path} admin: {}",
            got_admin.1
        );
    }
    // A member sees only its own project and account in lists.
    let (_, projects) = s.call("GET", "/api/v1/projects", member, None).await;
    assert_eq!(projects["items"].as_array().unwrap().len(), 1);
    let (_, accounts) = s
        .call("GET", "/api/v1/service-accounts", member, None)
        .await;
    assert!(accounts["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["project_id"] == web));
    // The other member cannot reach the first member's project either.
    let (status, _) = s
        .call(
            "GET",
            &format!("/api/v1/projects/{web}"),
            Some(&s.data_member),
            None,
        )
        .await;
    assert_eq!(status, 404);
    // A revoked token is refused.
    let tokens = s
        .billing
        .tokens(&cloudbill_service::Principal::Admin)
        .await
        .unwrap();
    let web_token = tokens.iter().find(|t| t.label == "web").unwrap();
    s.billing
        .revoke_token(
            &cloudbill_service::Principal::Admin,
            &web_token.id.to_string(),
        )
        .await
        .unwrap();
    assert_eq!(s.call("GET", "/api/v1/projects", member, None).await.0, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_answers_exactly_in_the_documented_shape() {
    let s = Server::start().await;
    let admin = Some(s.admin.as_str());
    let (status, body) = s
        .call("POST", "/api/v1/billing/query", admin, Some(json!({"start": RANGE.0, "end": RANGE.1, "granularity": "monthly", "group_by": ["project"], "sort": "key"})))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["granularity"], "MONTHLY");
    assert_eq!(body["group_by"], json!(["project"]));
    assert_eq!(body["total_count"], 2);
    assert_eq!(body["results"][0]["group"], json!({"project": "data"}));
    assert_eq!(
        dec(&body["results"][0]["total"][0]["cost"]),
        s.sim.expected_total("333333333333", range())
    );
    assert_eq!(
        dec(&body["results"][1]["total"][0]["cost"]),
        s.sim.expected_total("111111111111", range())
    );
    assert_eq!(body["results"][1]["billing_data"][0]["date"], "2025-03");
    assert!(
        body["results"][1]["billing_data"][0]["cost"].is_string(),
        "amounts are strings"
    );
    // The GET form answers the same.
    let (_, get) = s
        .call("GET", &format!("/api/v1/billing/query?start={}&end={}&granularity=MONTHLY&group_by=project&sort=key", RANGE.0, RANGE.1), admin, None)
        .await;
    assert_eq!(get, body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_have_one_shape_and_the_right_status() {
    let s = Server::start().await;
    let admin = Some(s.admin.as_str());
    let check = |got: (u16, serde_json::Value), status: u16, code: &str, needle: &str| {
        assert_eq!(got.0, status, "{}", got.1);
        assert_eq!(got.1["error"]["code"], code, "{}", got.1);
        let msg = got.1["error"]["message"].as_str().unwrap().to_owned();
        assert!(msg.contains(needle), "{msg:?} lacks {needle:?}");
    };
    let query =
        |body: serde_json::Value| s.call("POST", "/api/v1/billing/query", admin, Some(body));
    check(
        query(json!({"start": "2025-02-01", "end": "2025-01-01"})).await,
        422,
        "invalid_query",
        "must be after start",
    );
    check(
        query(json!({"start": "2025-13-01", "end": "2026-01-01"})).await,
        422,
        "invalid_query",
        "is not a date",
    );
    check(
        query(json!({"start": RANGE.0, "end": RANGE.1, "group_by": ["colour"]})).await,
        422,
        "invalid_query",
        "unknown key \"colour\"",
    );
    check(
        query(json!({"start": RANGE.0, "end": RANGE.1, "filters": {"project": ["nope"]}})).await,
        404,
        "not_found",
        "unknown project \"nope\"",
    );
    check(
        query(json!({"start": RANGE.0, "end": RANGE.1, "limit": 0})).await,
        422,
        "invalid_query",
        "limit must be at least 1",
    );
    check(
        query(json!({"start": RANGE.0, "end": RANGE.1, "colour": "red"})).await,
        400,
        "malformed_request",
        "unknown field `colour`",
    );
    let raw = s
        .http
        .post(s.url("/api/v1/billing/query"))
        .bearer_auth(&s.admin)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 400);
    check(
        s.call(
            "GET",
            "/api/v1/projects/00000000-0000-0000-0000-000000000000",
            admin,
            None,
        )
        .await,
        404,
        "not_found",
        "project",
    );
    check(
        s.call(
            "POST",
            "/api/v1/projects",
            admin,
            Some(json!({"name": "web"})),
        )
        .await,
        409,
        "conflict",
        "already exists",
    );
    check(
        s.call(
            "POST",
            "/api/v1/service-accounts",
            admin,
            Some(
                json!({"name": "x", "credentials": {"account": "1", "email": "a@b.c", "key": "k"}}),
            ),
        )
        .await,
        422,
        "invalid",
        "a project is required",
    );
    let bad = s.id_of("service-accounts", "bad").await;
    check(
        s.call(
            "POST",
            &format!("/api/v1/service-accounts/{bad}/verify"),
            admin,
            None,
        )
        .await,
        502,
        "provider_unauthorized",
        "invalid Hyperbilling credentials",
    );
    check(
        s.call("GET", "/api/v1/projects?limit=0", admin, None).await,
        422,
        "invalid",
        "limit",
    );
    let big = "x".repeat(cloudbill_web::BODY_LIMIT + 10);
    let resp = s
        .http
        .post(s.url("/api/v1/projects"))
        .bearer_auth(&s.admin)
        .header("content-type", "application/json")
        .body(format!("{{\"name\":\"{big}\"}}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    s.call("POST", "/api/v1/billing/disable", admin, None).await;
    check(
        query(json!({"start": RANGE.0, "end": RANGE.1})).await,
        409,
        "billing_disabled",
        "a domain admin can turn it on",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_never_show_keys_lists_paginate_and_sync_runs_in_the_background() {
    let s = Server::start().await;
    let admin = Some(s.admin.as_str());
    let (status, created) = s
        .call("POST", "/api/v1/service-accounts", admin, Some(json!({"name": "new", "project": "web", "credentials": {"account": "111111111111", "email": "ops@acme.example", "key": "demo-key-acme"}})))
        .await;
    assert_eq!(status, 201, "{created}");
    let (_, all) = s.call("GET", "/api/v1/service-accounts", admin, None).await;
    for text in [created.to_string(), all.to_string()] {
        assert!(!text.contains("demo-key"), "a key came back: {text}");
    }
    // Pagination.
    let (_, first) = s
        .call("GET", "/api/v1/service-accounts?limit=3", admin, None)
        .await;
    assert_eq!(first["items"].as_array().unwrap().len(), 3);
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    let (_, second) = s
        .call(
            "GET",
            &format!("/api/v1/service-accounts?limit=3&cursor={cursor}"),
            admin,
            None,
        )
        .await;
    assert_eq!(second["items"].as_array().unwrap().len(), 1);
    assert!(second["next_cursor"].is_null());

    // Sync returns job ids at once; the jobs finish in the background.
    let (status, started) = s
        .call(
            "POST",
            "/api/v1/sync",
            admin,
            Some(json!({"start": "2025-06-01", "end": "2025-06-03"})),
        )
        .await;
    assert_eq!(status, 202);
    let ids: Vec<String> = started["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|j| j["job_id"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(ids.len(), 4);
    for id in &ids {
        let mut state = String::new();
        for _ in 0..200 {
            let (code, job) = s
                .call("GET", &format!("/api/v1/jobs/{id}"), admin, None)
                .await;
            assert_eq!(code, 200, "{job}");
            state = job["state"].as_str().unwrap().to_owned();
            if state != "running" {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        assert_ne!(state, "running");
    }
    // One job by id: a member sees exactly the jobs its listing shows; other ids, and ids
    // that are not ids, are 404.
    let data_member = Some(s.data_member.as_str());
    let (_, listed) = s.call("GET", "/api/v1/jobs", data_member, None).await;
    let visible: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|j| j["id"].as_str())
        .collect();
    let mut hidden = 0;
    for id in &ids {
        let (code, _) = s
            .call("GET", &format!("/api/v1/jobs/{id}"), data_member, None)
            .await;
        if visible.contains(&id.as_str()) {
            assert_eq!(code, 200);
        } else {
            assert_eq!(code, 404);
            hidden += 1;
        }
    }
    assert!(hidden > 0, "some of the jobs are another project's");
    for bad in ["not-a-job", "01a2f0c4-0000-7000-8000-000000000000"] {
        let (code, body) = s
            .call("GET", &format!("/api/v1/jobs/{bad}"), admin, None)
            .await;
        assert_eq!(code, 404, "{body}");
    }
    let (_, jobs) = s
        .call("GET", "/api/v1/jobs?account=bad&limit=1", admin, None)
        .await;
    assert_eq!(jobs["items"][0]["state"], "failed");
    assert!(jobs["items"][0]["error"]
        .as_str()
        .unwrap()
        .contains("invalid Hyperbilling credentials"));

    // Health, readiness and metrics; not ready while the engine warms up.
    assert_eq!(
        s.http.get(s.url("/healthz")).send().await.unwrap().status(),
        200
    );
    s.ready.store(false, std::sync::atomic::Ordering::Release);
    assert_eq!(
        s.http.get(s.url("/readyz")).send().await.unwrap().status(),
        503
    );
    s.ready.store(true, std::sync::atomic::Ordering::Release);
    assert_eq!(
        s.http.get(s.url("/readyz")).send().await.unwrap().status(),
        200
    );
    let metrics = s
        .http
        .get(s.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("cloudbill_http_requests_total{method=\"GET\",route=\"/api/v1/service-accounts\",status=\"200\"}"), "{metrics}");
    assert!(metrics.contains("cloudbill_http_request_duration_seconds_bucket"));
    // The background syncs above were counted: 3 succeeded, `bad` failed, rows written.
    assert!(
        metrics.contains("cloudbill_sync_accounts_total{outcome=\"succeeded\"} 3"),
        "{metrics}"
    );
    assert!(
        metrics.contains("cloudbill_sync_accounts_total{outcome=\"failed\"} 1"),
        "{metrics}"
    );
    assert!(
        !metrics.contains("cloudbill_rows_synced_total 0\n"),
        "{metrics}"
    );
}

/// Errors name the API's remedy, as a request, never the CLI's flags or commands (#14).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_tell_an_http_client_what_to_send() {
    let s = Server::start().await;
    let (status, body) = s
        .call(
            "POST",
            "/api/v1/service-accounts",
            Some(&s.admin),
            Some(
                serde_json::json!({"name": "x", "project": "web", "provider": "hyperbilling-aws"}),
            ),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["details"]["hint"], "give_settings", "{body}");
    let (status, body) = s
        .call(
            "POST",
            "/api/v1/providers/hyperbilling-aws/disable",
            Some(&s.admin),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = s
        .call(
            "POST",
            "/api/v1/service-accounts",
            Some(&s.admin),
            Some(
                serde_json::json!({"name": "y", "project": "web", "provider": "hyperbilling-aws",
                "credentials": {"account": "1", "email": "a@b.c", "key": "k"}}),
            ),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(
        body["error"]["details"]["request"], "POST /api/v1/providers/hyperbilling-aws/enable",
        "{body}"
    );
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        !message.contains("cloudbill ") && !message.contains("--"),
        "{message}"
    );
}

/// #15: tags over HTTP — `GET /api/v1/billing/tags` and `tag:KEY` in a query — and a member
/// sees only the tags of its own projects' costs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_are_dimensions_and_members_see_only_their_own() {
    let s = Server::start().await;
    s.tagged_bill().await;
    let tags = "/api/v1/billing/tags?start=2025-03-01&end=2025-05-01";
    let (status, all) = s.call("GET", tags, Some(&s.admin), None).await;
    assert_eq!(status, 200, "{all}");
    let keys: Vec<&str> = all["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["Team", "cost-center", "env", "team"]);
    // The data member sees the same (the tagged bill is in its project); the web member's
    // projects hold no tagged costs, and it cannot ask for another project's.
    let (status, data) = s.call("GET", tags, Some(&s.data_member), None).await;
    assert_eq!((status, &data), (200, &all));
    let (status, web) = s.call("GET", tags, Some(&s.web_member), None).await;
    assert_eq!((status, web), (200, json!({"tags": []})));
    let (status, err) = s
        .call(
            "GET",
            &format!("{tags}&project=data"),
            Some(&s.web_member),
            None,
        )
        .await;
    assert_eq!(status, 404, "{err}");
    let (status, err) = s
        .call("GET", &format!("{tags}&bogus=1"), Some(&s.admin), None)
        .await;
    assert_eq!(status, 400, "{err}");
    // A query grouped and filtered by a tag, in both forms.
    let body = json!({"start": "2025-03-01", "end": "2025-05-01", "group_by": ["tag:team"],
        "filters": {"tag:env": ["prod"], "project": ["data"]}});
    let (status, post) = s
        .call(
            "POST",
            "/api/v1/billing/query",
            Some(&s.data_member),
            Some(body),
        )
        .await;
    assert_eq!(status, 200, "{post}");
    let (status, get) = s
        .call(
            "GET",
            "/api/v1/billing/query?start=2025-03-01&end=2025-05-01&group_by=tag:team&filter.tag:env=prod&filter.project=data",
            Some(&s.data_member),
            None,
        )
        .await;
    assert_eq!((status, &get), (200, &post));
    let groups: Vec<&str> = post["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["group"]["tag:team"].as_str().unwrap())
        .collect();
    assert!(!groups.is_empty() && groups.iter().all(|g| ["web", "data", "ops"].contains(g)));
    let (status, err) = s
        .call(
            "POST",
            "/api/v1/billing/query",
            Some(&s.admin),
            Some(json!({"start": "2025-03-01", "end": "2025-05-01", "group_by": ["tag:"]})),
        )
        .await;
    assert_eq!(status, 422, "{err}");
}

/// `GET /api/v1/export/focus`: a domain admin exports the domain, a member only its own
/// project; CSV by default, Parquet on request; bad parameters are 4xx.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn focus_export_over_http_respects_projects() {
    let s = Server::start().await;
    let admin = cloudbill_service::Principal::Admin;
    s.tagged_bill().await;
    let get = |path: String, token: String| {
        let s = &s;
        async move {
            let resp = s
                .http
                .get(s.url(&path))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            let kind = resp
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default();
            (status, kind, resp.bytes().await.unwrap().to_vec())
        }
    };
    let base = "/api/v1/export/focus?start=2025-03-01&end=2025-05-01";
    let (status, kind, csv) = get(base.into(), s.admin.clone()).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&csv));
    assert!(kind.starts_with("text/csv"), "{kind}");
    let text = String::from_utf8(csv.clone()).unwrap();
    let rows = text.lines().count() - 1;
    let stored = s
        .billing
        .export(
            &admin,
            cloudbill_service::DateRange::parse("2025-03-01", "2025-05-01").unwrap(),
            &[],
        )
        .await
        .unwrap()
        .len();
    assert!(rows > 0 && rows == stored, "{rows} rows, {stored} stored");
    // A member of project data gets the admin's export of that project, naming it.
    let (status, _, admin_data) = get(format!("{base}&project=data"), s.admin.clone()).await;
    assert_eq!(status, 200);
    let (status, _, member_data) = get(format!("{base}&project=data"), s.data_member.clone()).await;
    assert_eq!(status, 200);
    assert!(
        member_data == admin_data,
        "the member's export differs from the admin's"
    );
    let data_rows = String::from_utf8(admin_data).unwrap().lines().count() - 1;
    assert!(data_rows > 0 && data_rows < rows, "{data_rows} of {rows}");
    // The web member may not export the domain, nor the data project.
    let (status, _, body) = get(base.into(), s.web_member.clone()).await;
    assert_eq!(status, 403, "{}", String::from_utf8_lossy(&body));
    let (status, _, _) = get(format!("{base}&project=data"), s.web_member.clone()).await;
    assert!(matches!(status, 403 | 404), "{status}");
    // Parquet: the file's magic at both ends.
    let (status, kind, parquet) = get(format!("{base}&format=parquet"), s.admin.clone()).await;
    assert_eq!(
        (status, kind.as_str()),
        (200, "application/vnd.apache.parquet")
    );
    assert!(parquet.starts_with(b"PAR1") && parquet.ends_with(b"PAR1"));
    let (status, _, _) = get(format!("{base}&format=xlsx"), s.admin.clone()).await;
    assert_eq!(status, 422);
    // Report filters narrow the export, as they narrow a report: only AmazonS3 rows.
    let (status, _, s3) = get(format!("{base}&filter.service=AmazonS3"), s.admin.clone()).await;
    assert_eq!(status, 200);
    let mut reader = csv::Reader::from_reader(s3.as_slice());
    let service = reader
        .headers()
        .unwrap()
        .iter()
        .position(|h| h == "ServiceName")
        .unwrap();
    let services: Vec<String> = reader
        .records()
        .map(|r| r.unwrap()[service].to_owned())
        .collect();
    assert!(!services.is_empty());
    assert!(services.iter().all(|s| s == "AmazonS3"), "{services:?}");
    assert!(services.len() < rows);
    for (query, code) in [
        ("&filter.project_group=x", 422),
        ("&filter.nope=1", 422),
        ("&bogus=1", 400),
    ] {
        let (status, _, _) = get(format!("{base}{query}"), s.admin.clone()).await;
        assert_eq!(status, code, "{query}");
    }
    let (status, _, _) = get(
        "/api/v1/export/focus?start=2025-05-01&end=2025-03-01".into(),
        s.admin.clone(),
    )
    .await;
    assert_eq!(status, 422);
}

/// `GET /api/v1/forecast`: per currency, scoped like reports (a member names its project and
/// gets what the admin gets for it); bad parameters are 4xx.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forecast_over_http_is_scoped_like_reports() {
    let s = Server::start().await;
    // The last synced day's successor, so the history holds the synced days.
    let as_of = "2025-04-01";
    let path = format!("/api/v1/forecast?as_of={as_of}");
    let (status, all) = s.call("GET", &path, Some(&s.admin), None).await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(all["period"]["start"], "2025-04-01");
    assert!(!all["currencies"].as_array().unwrap().is_empty(), "{all}");
    // A member names its project, as in reports.
    let (status, body) = s.call("GET", &path, Some(&s.web_member), None).await;
    assert_eq!(status, 403, "{body}");
    let (status, web) = s
        .call(
            "GET",
            &format!("{path}&filter.project=web"),
            Some(&s.web_member),
            None,
        )
        .await;
    assert_eq!(status, 200, "{web}");
    let (status, body) = s
        .call(
            "GET",
            &format!("{path}&filter.project=data"),
            Some(&s.web_member),
            None,
        )
        .await;
    assert!(matches!(status, 403 | 404), "{status} {body}");
    let (status, admin_web) = s
        .call(
            "GET",
            &format!("{path}&filter.project=web"),
            Some(&s.admin),
            None,
        )
        .await;
    assert_eq!((status, &web), (200, &admin_web));
    assert_ne!(web, all, "the member sees its project, not the domain");
    for (query, code) in [
        ("&period=weekly", 422),
        ("&restate_days=99", 422),
        ("&restate_days=x", 422),
        ("&bogus=1", 400),
        ("&filter.nope=1", 422),
    ] {
        let (status, body) = s
            .call("GET", &format!("{path}{query}"), Some(&s.admin), None)
            .await;
        assert_eq!(status, code, "{query}: {body}");
    }
    let (status, _) = s
        .call(
            "GET",
            "/api/v1/forecast?as_of=2025-13-01",
            Some(&s.admin),
            None,
        )
        .await;
    assert_eq!(status, 422);
}

/// `GET /api/v1/anomalies`: the CLI's detection over HTTP, scoped like reports.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anomalies_over_http_are_scoped_like_reports() {
    let s = Server::start().await;
    let path = "/api/v1/anomalies?start=2025-04-01&end=2025-06-01&direction=both";
    let (status, all) = s.call("GET", path, Some(&s.admin), None).await;
    assert_eq!(status, 200, "{all}");
    assert!(all["anomalies"].is_array());
    let (status, body) = s.call("GET", path, Some(&s.web_member), None).await;
    assert_eq!(status, 403, "{body}");
    let scoped = format!("{path}&filter.project=web");
    let (status, mine) = s.call("GET", &scoped, Some(&s.web_member), None).await;
    assert_eq!(status, 200, "{mine}");
    let (_, admin_web) = s.call("GET", &scoped, Some(&s.admin), None).await;
    assert_eq!(mine, admin_web);
    for (query, code) in [
        ("&direction=up", 422),
        ("&min_amount=-1", 422),
        ("&group_by=nope", 422),
        ("&state=closed", 422),
        ("&bogus=1", 400),
    ] {
        let (status, body) = s
            .call("GET", &format!("{path}{query}"), Some(&s.admin), None)
            .await;
        assert_eq!(status, code, "{query}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn budgets_and_channels_over_http_follow_the_member_rules_and_hide_secrets() {
    let s = Server::start().await;
    let admin = Some(s.admin.as_str());
    let web_member = Some(s.web_member.as_str());
    let data_member = Some(s.data_member.as_str());
    let secret = "whsec-never-returned-0123";
    let hook = json!({"name": "ops", "webhook": "http://127.0.0.1:9/hook", "secret": secret});
    assert_eq!(
        s.call("POST", "/api/v1/channels", web_member, Some(hook.clone()))
            .await
            .0,
        403
    );
    let (status, channel) = s.call("POST", "/api/v1/channels", admin, Some(hook)).await;
    assert_eq!(status, 201, "{channel}");
    let channel_id = channel["id"].as_str().unwrap().to_owned();
    for (who, token) in [("admin", admin), ("member", web_member)] {
        let (_, list) = s.call("GET", "/api/v1/channels", token, None).await;
        let (_, one) = s
            .call(
                "GET",
                &format!("/api/v1/channels/{channel_id}"),
                token,
                None,
            )
            .await;
        for body in [&list, &one, &channel] {
            assert!(!body.to_string().contains(secret), "{who}: {body}");
        }
        if who == "member" {
            assert_eq!(list["items"][0]["target"], "", "members see names only");
        }
    }
    let (status, err) = s
        .call(
            "POST",
            "/api/v1/channels",
            admin,
            Some(json!({"name": "x", "webhook": "ftp://h/x", "secret": secret})),
        )
        .await;
    assert_eq!(status, 422, "{err}");

    let web_budget = json!({"name": "web", "project": "web", "amount": "100.00", "currency": "USD",
        "notifications": ["actual:80%", {"threshold": "forecast:100%", "channels": ["ops"]}], "channels": ["ops"]});
    let (status, created) = s
        .call("POST", "/api/v1/budgets", admin, Some(web_budget))
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["amount"], "100.00");
    assert_eq!(created["notifications"][1]["channels"][0], "ops");
    let id = created["id"].as_str().unwrap().to_owned();
    let data_budget = json!({"name": "data", "project": "data", "amount": "5", "currency": "USD",
        "notifications": ["actual:50%"], "channels": ["ops"]});
    assert_eq!(
        s.call(
            "POST",
            "/api/v1/budgets",
            web_member,
            Some(data_budget.clone())
        )
        .await
        .0,
        404
    );
    assert_eq!(
        s.call("POST", "/api/v1/budgets", data_member, Some(data_budget))
            .await
            .0,
        201
    );
    let domain_budget = json!({"name": "all", "amount": "5", "currency": "USD", "notifications": ["actual:50%"], "channels": ["ops"]});
    assert_eq!(
        s.call("POST", "/api/v1/budgets", web_member, Some(domain_budget))
            .await
            .0,
        403
    );

    let (_, mine) = s.call("GET", "/api/v1/budgets", web_member, None).await;
    let names: Vec<&str> = mine["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["web"]);
    let (status, st) = s
        .call(
            "GET",
            &format!("/api/v1/budgets/{id}/status"),
            web_member,
            None,
        )
        .await;
    assert_eq!(status, 200, "{st}");
    assert!(st["actual"].is_string() && st["amount"] == "100.00", "{st}");
    assert_eq!(st["notifications"].as_array().unwrap().len(), 2);
    assert_eq!(
        s.call(
            "GET",
            &format!("/api/v1/budgets/{id}/status"),
            data_member,
            None
        )
        .await
        .0,
        404
    );
    assert_eq!(
        s.call(
            "DELETE",
            &format!("/api/v1/budgets/{id}"),
            data_member,
            None
        )
        .await
        .0,
        404
    );
    let (_, all) = s
        .call("GET", "/api/v1/budgets/status?period=2025-05", admin, None)
        .await;
    assert_eq!(all["budgets"].as_array().unwrap().len(), 2);
    assert_eq!(all["budgets"][0]["forecast_status"], "period_over");
    assert_eq!(
        s.call("GET", "/api/v1/budgets/status?period=2025-13", admin, None)
            .await
            .0,
        422
    );
    let (status, events) = s
        .call("GET", &format!("/api/v1/budgets/{id}/events"), admin, None)
        .await;
    assert_eq!(status, 200);
    assert!(events["events"].is_array());

    // Bad input: a clear error, nothing written.
    for (body, status, needle) in [
        (
            json!({"name": "b", "amount": 100, "currency": "USD", "notifications": ["actual:80%"], "channels": ["ops"]}),
            400,
            "amount",
        ),
        (
            json!({"name": "b", "amount": "0", "currency": "USD", "notifications": ["actual:80%"], "channels": ["ops"]}),
            422,
            "at least 0.01",
        ),
        (
            json!({"name": "b", "amount": "10", "currency": "USD", "notifications": ["80"], "channels": ["ops"]}),
            422,
            "threshold",
        ),
        (
            json!({"name": "b", "amount": "10", "currency": "USD", "notifications": ["actual:80%"], "channels": ["nope"]}),
            404,
            "nope",
        ),
        (
            json!({"name": "b", "amount": "10", "currency": "EURO", "notifications": ["actual:80%"], "channels": ["ops"]}),
            422,
            "ISO 4217",
        ),
    ] {
        let (got, err) = s.call("POST", "/api/v1/budgets", admin, Some(body)).await;
        assert_eq!(got, status, "{err}");
        assert!(
            err["error"]["message"].as_str().unwrap().contains(needle),
            "{err}"
        );
    }
    let (_, listed) = s.call("GET", "/api/v1/budgets", admin, None).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 2);

    assert_eq!(
        s.call(
            "DELETE",
            &format!("/api/v1/channels/{channel_id}"),
            admin,
            None
        )
        .await
        .0,
        409
    );
    assert_eq!(
        s.call("GET", "/api/v1/notifications", web_member, None)
            .await
            .0,
        403
    );
    assert_eq!(
        s.call("GET", "/api/v1/notifications", admin, None).await.0,
        200
    );
    for path in [
        "/api/v1/notifications?limit=0",
        "/api/v1/budget-events?limit=10001",
    ] {
        assert_eq!(s.call("GET", path, admin, None).await.0, 422, "{path}");
    }
    let metrics = s
        .http
        .get(s.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("cloudbill_notification_deliveries{state=\"pending\"}"),
        "{metrics}"
    );
    // Update: the same id, a new amount; a member cannot touch another project's budget.
    let changed = json!({"name": "web", "project": "web", "amount": "250", "currency": "USD",
        "notifications": ["actual:90%"], "channels": ["ops"]});
    assert_eq!(
        s.call(
            "PUT",
            &format!("/api/v1/budgets/{id}"),
            data_member,
            Some(changed.clone())
        )
        .await
        .0,
        404
    );
    let (status, updated) = s
        .call(
            "PUT",
            &format!("/api/v1/budgets/{id}"),
            web_member,
            Some(changed),
        )
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(
        (updated["id"].as_str(), updated["amount"].as_str()),
        (Some(id.as_str()), Some("250"))
    );
    assert_eq!(
        s.call("DELETE", &format!("/api/v1/budgets/{id}"), admin, None)
            .await
            .0,
        204
    );
    s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anomaly_monitors_over_http_follow_the_member_rules() {
    let s = Server::start().await;
    let admin = Some(s.admin.as_str());
    let web_member = Some(s.web_member.as_str());
    let data_member = Some(s.data_member.as_str());
    // Billing was turned on: the default monitor exists; members do not see a domain monitor.
    let (_, all) = s.call("GET", "/api/v1/anomaly-monitors", admin, None).await;
    assert_eq!(all["items"][0]["name"], "default");
    let (_, mine) = s
        .call("GET", "/api/v1/anomaly-monitors", web_member, None)
        .await;
    assert_eq!(mine["items"], json!([]));
    let web = json!({"name": "web", "project": "web", "dimension": "region", "z": "4", "direction": "both"});
    assert_eq!(
        s.call(
            "POST",
            "/api/v1/anomaly-monitors",
            data_member,
            Some(web.clone())
        )
        .await
        .0,
        404
    );
    let (status, created) = s
        .call("POST", "/api/v1/anomaly-monitors", web_member, Some(web))
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(
        (
            created["dimension"].as_str(),
            created["direction"].as_str(),
            created["z"].as_str()
        ),
        (Some("region"), Some("both"), Some("4"))
    );
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(
        s.call(
            "GET",
            &format!("/api/v1/anomaly-monitors/{id}"),
            data_member,
            None
        )
        .await
        .0,
        404
    );
    let (status, kept) = s
        .call(
            "GET",
            &format!("/api/v1/anomaly-monitors/{id}/anomalies?state=all"),
            web_member,
            None,
        )
        .await;
    assert_eq!(status, 200, "{kept}");
    assert!(kept["anomalies"].is_array());
    assert_eq!(
        s.call(
            "GET",
            &format!("/api/v1/anomaly-monitors/{id}/anomalies?state=x"),
            web_member,
            None
        )
        .await
        .0,
        422
    );
    for (body, needle) in [
        (json!({"name": "x", "dimension": "colour"}), "colour"),
        (json!({"name": "x", "z": "0"}), "out of range"),
        (json!({"name": "x", "z": 4}), "z"),
        (json!({"name": "x", "direction": "up"}), "spikes or both"),
    ] {
        let (status, err) = s
            .call("POST", "/api/v1/anomaly-monitors", admin, Some(body))
            .await;
        assert!(status == 400 || status == 422, "{status} {err}");
        assert!(
            err["error"]["message"].as_str().unwrap().contains(needle),
            "{err}"
        );
    }
    assert_eq!(
        s.call("POST", "/api/v1/anomalies/an_nope/ack", admin, None)
            .await
            .0,
        404
    );
    assert_eq!(
        s.call("POST", "/api/v1/anomaly-monitors/run", web_member, None)
            .await
            .0,
        403
    );
    let (status, run) = s
        .call("POST", "/api/v1/anomaly-monitors/run", admin, None)
        .await;
    assert_eq!(status, 200, "{run}");
    assert_eq!(run["monitors"], 2);
    assert_eq!(
        s.call(
            "DELETE",
            &format!("/api/v1/anomaly-monitors/{id}"),
            web_member,
            None
        )
        .await
        .0,
        204
    );
    s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_over_http_convert_with_stated_rates() {
    let s = Server::start().await;
    let admin = Some(s.admin.as_str());
    let member = Some(s.web_member.as_str());
    let rate = json!({"date": "2025-03-01", "base": "EUR", "quote": "USD", "rate": "1.25"});
    assert_eq!(
        s.call("POST", "/api/v1/fx/rates", member, Some(rate.clone()))
            .await
            .0,
        403
    );
    assert_eq!(
        s.call("POST", "/api/v1/fx/rates", admin, Some(rate))
            .await
            .0,
        201
    );
    let (status, err) = s
        .call(
            "POST",
            "/api/v1/fx/rates",
            admin,
            Some(json!({"date": "2025-03-01", "base": "EUR", "quote": "USD", "rate": "0"})),
        )
        .await;
    assert_eq!(status, 422, "{err}");
    let (_, listed) = s.call("GET", "/api/v1/fx/rates", member, None).await;
    assert_eq!(listed["rates"][0]["rate"], "1.25");
    // A day's USD in EUR: amount / 1.25 to 10 places; the rates used are stated.
    let body = json!({"start": "2025-03-02", "end": "2025-03-03", "filters": {"project": ["web"]}, "currency": "EUR"});
    let (status, converted) = s
        .call("POST", "/api/v1/billing/query", member, Some(body))
        .await;
    assert_eq!(status, 200, "{converted}");
    let (_, plain) = s
        .call("POST", "/api/v1/billing/query", member, Some(json!({"start": "2025-03-02", "end": "2025-03-03", "filters": {"project": ["web"]}})))
        .await;
    let usd: Decimal = plain["results"][0]["total"][0]["cost"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let eur: Decimal = converted["results"][0]["total"][0]["cost"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        eur,
        (usd / Decimal::new(125, 2)).round_dp(10) /* half to even */
    );
    assert_eq!(
        converted["conversion"]["rates"][0]["first_rate_date"],
        "2025-03-01"
    );
    // Eight days after the only rate: 422, naming the currency and the day.
    let (status, err) = s
        .call(
            "GET",
            "/api/v1/billing/query?start=2025-03-09&end=2025-03-10&filter.project=web&currency=EUR",
            member,
            None,
        )
        .await;
    assert_eq!(status, 422, "{err}");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no USD → EUR rate for 2025-03-09"),
        "{err}"
    );
    s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_answers_page_with_limit_and_offset() {
    let s = Server::start().await;
    let admin = Some(s.admin.as_str());
    let base = format!(
        "/api/v1/billing/query?start={}&end={}&group_by=service_account,service",
        RANGE.0, RANGE.1
    );
    let (_, whole) = s.call("GET", &base, admin, None).await;
    let n = whole["total_count"].as_u64().unwrap();
    assert!(n >= 3, "{whole}");
    let (_, page) = s
        .call("GET", &format!("{base}&limit=2&offset=1"), admin, None)
        .await;
    assert_eq!(page["total_count"], whole["total_count"]);
    assert_eq!(page["results"].as_array().unwrap().len(), 2);
    assert_eq!(page["results"][0], whole["results"][1]);
    assert_eq!(page["results"][1], whole["results"][2]);
    let body = json!({"start": RANGE.0, "end": RANGE.1, "group_by": ["service_account", "service"], "limit": 1, "offset": n - 1});
    let (_, last) = s
        .call("POST", "/api/v1/billing/query", admin, Some(body))
        .await;
    assert_eq!(
        last["results"][0],
        whole["results"][usize::try_from(n - 1).unwrap()]
    );
    let (status, _) = s
        .call("GET", &format!("{base}&offset=-1"), admin, None)
        .await;
    assert_eq!(status, 400);
    s.cleanup().await;
}
