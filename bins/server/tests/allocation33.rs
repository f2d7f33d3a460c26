//! Issue #33 over HTTP: allocation rules created, changed and deleted through the API (each a
//! version with who and when), allocated reports exact against the plain ones, a member seeing
//! only what lands on its project, bad rules refused with nothing written, and a closed month
//! never moved.

use std::collections::BTreeMap;

use cloudbill_core::Decimal;
use serde_json::{json, Value};

use crate::harness::{Server, RANGE};

/// `group value → total` of a JSON report (one currency: the simulator's USD).
fn totals(report: &Value) -> BTreeMap<String, Decimal> {
    let mut out = BTreeMap::new();
    for row in report["results"].as_array().unwrap() {
        let key: Vec<String> = row["group"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_str().unwrap_or("(none)").to_owned())
            .collect();
        for t in row["total"].as_array().unwrap() {
            assert_eq!(t["currency"], "USD");
            *out.entry(key.join("/")).or_insert(Decimal::ZERO) +=
                t["cost"].as_str().unwrap().parse::<Decimal>().unwrap();
        }
    }
    out
}

async fn query(s: &Server, token: &str, body: Value) -> (u16, Value) {
    let mut b = json!({"start": RANGE.0, "end": RANGE.1});
    for (k, v) in body.as_object().unwrap() {
        b[k] = v.clone();
    }
    s.call("POST", "/api/v1/billing/query", Some(token), Some(b))
        .await
}

async fn ok(s: &Server, token: &str, body: Value) -> BTreeMap<String, Decimal> {
    let (status, r) = query(s, token, body).await;
    assert_eq!(status, 200, "{r}");
    totals(&r)
}

#[tokio::test]
async fn rules_over_http_move_exactly_what_they_say() {
    let s = Server::start().await;
    let admin = s.admin.clone();
    let by_project = json!({"group_by": ["project"]});
    let by_both = json!({"group_by": ["project", "service"]});
    let plain = ok(&s, &admin, by_project.clone()).await;
    let plain_services = ok(&s, &admin, by_both.clone()).await;
    let lambda = |project: &str| {
        plain_services
            .get(&format!("{project}/AWSLambda"))
            .copied()
            .unwrap_or_default()
    };
    assert!(lambda("data") > Decimal::ZERO, "{plain_services:?}");

    // Nothing yet: allocated answers as plain.
    let allocated = json!({"group_by": ["project"], "allocated": true});
    assert_eq!(ok(&s, &admin, allocated.clone()).await, plain);

    // All of Lambda to web: web gains data's Lambda to the last digit.
    let (status, rule) = s
        .call(
            "POST",
            "/api/v1/allocations",
            Some(&admin),
            Some(
                json!({"name": "lambda", "source": {"service": ["AWSLambda"]},
                "target": "project", "targets": ["web"], "method": "even", "start": "2025-01-01"}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{rule}");
    assert_eq!(rule["version"], 1);
    assert!(
        rule["changed_by"].as_str().unwrap().contains("\"admin\""),
        "{rule}"
    );
    let moved = ok(&s, &admin, allocated.clone()).await;
    assert_eq!(moved["web"], plain["web"] + lambda("data"));
    assert_eq!(moved["data"], plain["data"] - lambda("data"));
    // The source's other keys stay: by project and service, Lambda is all on web.
    let both = ok(
        &s,
        &admin,
        json!({"group_by": ["project", "service"], "allocated": true}),
    )
    .await;
    assert_eq!(both.get("data/AWSLambda"), None, "{both:?}");
    assert_eq!(both["web/AWSLambda"], lambda("web") + lambda("data"));
    // GET takes it too.
    let (status, got) = s
        .call(
            "GET",
            &format!(
                "/api/v1/billing/query?start={}&end={}&group_by=project&allocated=true",
                RANGE.0, RANGE.1
            ),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(totals(&got), moved);

    // A member of web sees what lands on web; of data, data's after the move.
    let mine =
        |p: &str| json!({"group_by": ["project"], "allocated": true, "filters": {"project": [p]}});
    let web = ok(&s, &s.web_member, mine("web")).await;
    assert_eq!(web, BTreeMap::from([("web".to_owned(), moved["web"])]));
    let data = ok(&s, &s.data_member, mine("data")).await;
    assert_eq!(data, BTreeMap::from([("data".to_owned(), moved["data"])]));
    // A forecast takes the shares too: its actual so far is the allocated report's.
    let month_so_far = ok(
        &s,
        &s.web_member,
        json!({"start": "2025-05-01", "end": "2025-05-21", "group_by": ["project"],
            "allocated": true, "filters": {"project": ["web"]}}),
    )
    .await;
    for (allocated, want) in [("true", month_so_far["web"]), ("false", Decimal::MIN)] {
        let (status, f) = s
            .call(
                "GET",
                &format!(
                    "/api/v1/forecast?as_of=2025-05-20&filter.project=web&allocated={allocated}"
                ),
                Some(&s.web_member),
                None,
            )
            .await;
        assert_eq!(status, 200, "{f}");
        let actual: Decimal = f["currencies"][0]["actual"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        if want == Decimal::MIN {
            assert_ne!(actual, month_so_far["web"], "without allocation: web's own");
        } else {
            assert_eq!(actual, want);
        }
    }
    // … but not the source's breakdown.
    let (status, body) = query(
        &s,
        &s.web_member,
        json!({"group_by": ["service"], "allocated": true, "filters": {"project": ["web"]}}),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(body.to_string().contains("breakdown"), "{body}");
    // Members neither list nor write rules.
    let (status, _) = s
        .call("GET", "/api/v1/allocations", Some(&s.web_member), None)
        .await;
    assert_eq!(status, 403);

    // A change answers at once (no stale cached answer), and is a second version.
    let id = rule["id"].as_str().unwrap().to_owned();
    let (status, changed) = s
        .call(
            "PATCH",
            &format!("/api/v1/allocations/{id}"),
            Some(&admin),
            Some(json!({"targets": ["web", "data"], "method": "fixed",
                "weights": {"web": "12.5", "data": "87.5"}})),
        )
        .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["version"], 2);
    let split = ok(&s, &admin, allocated.clone()).await;
    assert_ne!(split, moved);
    assert_eq!(
        split.values().copied().sum::<Decimal>(),
        plain.values().copied().sum::<Decimal>(),
        "totals over all groups never change"
    );
    let (_, shown) = s
        .call("GET", "/api/v1/allocations/lambda", Some(&admin), None)
        .await;
    assert_eq!(shown["versions"].as_array().unwrap().len(), 2, "{shown}");
    assert_eq!(shown["method"], "fixed");
    assert_eq!(shown["weights"], json!(["12.5", "87.5"]));

    // Bad rules: a specific 4xx and nothing written.
    for (body, want) in [
        (
            json!({"name": "x", "source": {"service": ["AWSLambda"]}, "target": "project",
                "targets": ["web", "data"], "method": "fixed", "weights": {"web": "50", "data": "49.99"}}),
            422,
        ),
        (
            json!({"name": "x", "source": {"service": ["AWSLambda"]}, "target": "project",
                "targets": ["nope"]}),
            404,
        ),
        (
            json!({"name": "x", "source": {"project": ["web"]}, "target": "project",
                "targets": ["web", "data"]}),
            422,
        ),
        (
            json!({"name": "x", "source": {"service": ["AWSLambda"]}, "target": "region",
                "targets": ["us-east-1"]}),
            422,
        ),
        (
            json!({"name": "lambda", "source": {"service": ["AmazonS3"]}, "target": "project",
                "targets": ["web"]}),
            409,
        ),
        (
            json!({"name": "x", "source": {}, "target": "project", "targets": ["web"]}),
            422,
        ),
    ] {
        let (status, e) = s
            .call(
                "POST",
                "/api/v1/allocations",
                Some(&admin),
                Some(body.clone()),
            )
            .await;
        assert_eq!(status, want, "{body} → {e}");
    }
    let (status, e) = s
        .call(
            "POST",
            "/api/v1/allocations",
            Some(&s.web_member),
            Some(json!({"name": "x", "source": {"service": ["AWSLambda"]}, "target": "project", "targets": ["web"]})),
        )
        .await;
    assert_eq!(status, 403, "{e}");
    let (_, list) = s
        .call("GET", "/api/v1/allocations", Some(&admin), None)
        .await;
    assert_eq!(list["allocations"].as_array().unwrap().len(), 1, "{list}");

    // A closed month keeps its allocation: a change starting inside it is refused, and a
    // deletion starts after it.
    let (status, e) = s
        .call("POST", "/api/v1/periods/2025-04/close", Some(&admin), None)
        .await;
    assert!(status < 300, "{e}");
    let april = json!({"start": "2025-04-01", "end": "2025-05-01", "group_by": ["project"], "allocated": true});
    let april_before = ok(&s, &admin, april.clone()).await;
    let (status, e) = s
        .call(
            "PATCH",
            &format!("/api/v1/allocations/{id}"),
            Some(&admin),
            Some(json!({"targets": ["data"], "method": "even", "start": "2025-04-15"})),
        )
        .await;
    assert_eq!(status, 422, "{e}");
    assert!(e.to_string().contains("closed"), "{e}");
    let (status, gone) = s
        .call(
            "DELETE",
            &format!("/api/v1/allocations/{id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, 200, "{gone}");
    assert_eq!(gone["start"], "2025-05-01", "the first open day");
    assert_eq!(
        ok(&s, &admin, april).await,
        april_before,
        "April keeps its shares"
    );
    let may = json!({"start": "2025-05-01", "end": "2025-06-01", "group_by": ["project"]});
    let mut may_allocated = may.clone();
    may_allocated["allocated"] = json!(true);
    assert_eq!(
        ok(&s, &admin, may_allocated).await,
        ok(&s, &admin, may).await
    );
    let (_, list) = s
        .call("GET", "/api/v1/allocations", Some(&admin), None)
        .await;
    assert!(list["allocations"].as_array().unwrap().is_empty(), "{list}");
}
