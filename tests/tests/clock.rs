//! One clock: the service's `today` (`CLOUDBILL_TODAY`, `BillingConfig::today`) is the day
//! the API, the dashboard and the explorer default to — a replay of a past day shows that
//! day everywhere.

use std::sync::Arc;

use cloudbill_core::{NaiveDate, TokenRole};
use cloudbill_service::{Billing, BillingConfig, Principal, ProviderRegistry};

#[tokio::test]
async fn every_surface_defaults_to_the_services_today() {
    let today = NaiveDate::from_ymd_opt(2025, 6, 15).unwrap();
    let billing = Billing::open(
        Arc::new(cloudbill_store::MemoryStore::new()),
        ProviderRegistry::new(),
        "default",
        BillingConfig {
            today: Some(today),
            ..BillingConfig::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(billing.today(), today);
    billing.set_billing(&Principal::Admin, true).await.unwrap();
    let (_, token) = billing
        .create_token(&Principal::Admin, TokenRole::Admin, None, "clock")
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = cloudbill_web::app(cloudbill_web::AppState::new(billing));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let get = |path: &str| {
        reqwest::Client::new()
            .get(format!("http://{addr}{path}"))
            .bearer_auth(&token)
            .send()
    };

    // The API's forecast is as of that day.
    let forecast: serde_json::Value = get("/api/v1/forecast").await.unwrap().json().await.unwrap();
    assert_eq!(forecast["as_of"], "2025-06-15", "{forecast}");
    // The dashboard and the explorer show the last three months through that day.
    for page in ["/", "/explore"] {
        let html = get(page).await.unwrap().text().await.unwrap();
        assert!(
            html.contains("2025-04-01") && html.contains("2025-06-16"),
            "{page} does not default to the service's day: {}",
            &html[..html.len().min(600)]
        );
    }
    // The explorer's presets are of that day too.
    let html = get("/explore").await.unwrap().text().await.unwrap();
    assert!(html.contains("start=2025-06-01"), "this month's preset");
    assert!(
        html.contains("start=2024-07-01"),
        "the last 12 months' preset"
    );
}
