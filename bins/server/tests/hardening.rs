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
