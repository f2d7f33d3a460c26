//! A provider defined here, in a test, and nowhere in the libraries: registered through the
//! composition root, it is listed (API and OpenAPI document), refuses bad settings, is added
//! with its settings (its secret sealed, never returned), syncs and reports — the proof that
//! adding a provider is its own code plus one registration.

use std::sync::Arc;

use async_trait::async_trait;
use cloudbill_core::{
    ChargeCategory, CostRecord, Currency, DateRange, Decimal, Money, ProviderKind, ProviderSpec,
    SettingKind, SettingSpec, Settings, TokenRole,
};
use cloudbill_provider::{BillingProvider, FetchScope, ProviderError};
use cloudbill_service::Principal;
use serde_json::{json, Value};

const TOKEN: &str = "acme-token-never-shown-5f2c";

/// "Acme Cloud": two lines a day per tenant — compute at 1.10 EUR and storage at 0.0125 EUR
/// times the tenant's size (its last digit) — in a region the account picks.
struct AcmeCloud;

static SPEC: ProviderSpec = ProviderSpec {
    kind: ProviderKind::named("acme-cloud"),
    title: "Acme Cloud",
    settings: &[
        SettingSpec::new("tenant", "the Acme tenant billed")
            .required()
            .kind(SettingKind::Digits),
        SettingSpec::new("region", "where the tenant runs")
            .kind(SettingKind::OneOf(&["north", "south"])),
        SettingSpec::new("token", "the tenant's API token")
            .required()
            .secret(),
    ],
};

#[async_trait]
impl BillingProvider for AcmeCloud {
    fn spec(&self) -> &'static ProviderSpec {
        &SPEC
    }

    fn max_window_days(&self) -> u32 {
        10
    }

    async fn verify(&self, settings: &Settings) -> Result<Vec<String>, ProviderError> {
        if settings
            .secret("token")
            .map(cloudbill_core::ClientSecret::expose)
            != Some(TOKEN)
        {
            return Err(ProviderError::Unauthorized {
                provider: "Acme Cloud",
                account: settings.value("tenant").unwrap_or_default().to_owned(),
            });
        }
        Ok(settings
            .value("tenant")
            .into_iter()
            .map(str::to_owned)
            .collect())
    }

    async fn fetch(
        &self,
        settings: &Settings,
        scope: FetchScope,
        window: DateRange,
    ) -> Result<Vec<CostRecord>, ProviderError> {
        self.verify(settings).await?;
        let tenant = settings.value("tenant").unwrap_or_default().to_owned();
        let size = Decimal::from(tenant.bytes().last().map_or(0, |b| b - b'0'));
        let region = settings.value("region").unwrap_or("north").to_owned();
        let eur = Currency::parse("EUR").unwrap();
        let line = |date, service: &str, cost: Decimal| CostRecord {
            domain: scope.domain,
            service_account: scope.service_account,
            provider: SPEC.kind,
            cloud_account: tenant.clone(),
            date,
            region: region.clone(),
            service: service.into(),
            usage_type: format!("{service}-hours"),
            instance_type: None,
            usage_quantity: Decimal::ONE,
            cost: Money::new(cost, eur),
            effective_cost: None,
            list_cost: None,
            charge_category: ChargeCategory::Usage,
            tags: std::collections::BTreeMap::default(),
            attributes: std::collections::BTreeMap::default(),
            measures: std::collections::BTreeMap::default(),
            extensions: std::collections::BTreeMap::default(),
        };
        Ok(window
            .iter_days()
            .flat_map(|day| {
                [
                    line(day, "compute", Decimal::new(110, 2)),
                    line(day, "storage", Decimal::new(125, 4) * size),
                ]
            })
            .collect())
    }
}

struct Api {
    addr: std::net::SocketAddr,
    token: String,
    http: reqwest::Client,
}

impl Api {
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .http
            .request(
                method.parse().unwrap(),
                format!("http://{}/api/v1{path}", self.addr),
            )
            .bearer_auth(&self.token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::too_many_lines)] // One story: listed, refused, added, synced, reported.
async fn a_provider_defined_in_a_test_is_listed_added_synced_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("billing.db").display());
    // The one registration: the composition root's list of providers, plus this one.
    let mut settings = cloudbill_compose::Settings::new(&url, "default");
    settings.providers.push(Arc::new(AcmeCloud));
    let billing = cloudbill_compose::open(settings).await.unwrap();
    let admin = Principal::Admin;
    billing.set_billing(&admin, true).await.unwrap();
    let (_, token) = billing
        .create_token(&admin, TokenRole::Admin, None, "plugin")
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = cloudbill_web::app(cloudbill_web::AppState::new(billing));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let api = Api {
        addr,
        token,
        http: reqwest::Client::new(),
    };

    // Listed beside the providers the build ships, with its settings.
    let (status, list) = api.call("GET", "/providers", None).await;
    assert_eq!(status, 200, "{list}");
    let kinds: Vec<&str> = list["providers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"acme-cloud") && kinds.contains(&"hyperbilling-aws"),
        "{list}"
    );
    let (status, acme) = api.call("GET", "/providers/acme-cloud", None).await;
    assert_eq!(status, 200, "{acme}");
    assert_eq!(acme["title"], "Acme Cloud");
    assert_eq!(acme["enabled"], true);
    let names: Vec<(&str, bool, bool)> = acme["settings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap(),
                s["required"].as_bool().unwrap(),
                s["secret"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            ("tenant", true, false),
            ("region", false, false),
            ("token", true, true)
        ]
    );
    // The API document describes its accounts too.
    let doc: Value = api
        .http
        .get(format!("http://{addr}/api/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        doc.to_string().contains("acme-cloud"),
        "the document names the provider"
    );

    let (status, web) = api
        .call("POST", "/projects", Some(json!({"name": "web"})))
        .await;
    assert_eq!(status, 201, "{web}");
    // Its settings are checked by its own schema, each refusal naming the setting.
    for (body, needle) in [
        (
            json!({"tenant": "12x"}),
            "setting \"tenant\" is not valid: \"12x\" is not up to 32 digits",
        ),
        (
            json!({"tenant": "1234", "region": "east"}),
            "\"east\" is not one of north, south",
        ),
        (
            json!({"tenant": "1234", "color": "red"}),
            "has no such setting",
        ),
        (
            json!({"region": "north"}),
            "setting \"tenant\" is not valid: it is required",
        ),
    ] {
        let (status, err) = api
            .call(
                "POST",
                "/service-accounts",
                Some(
                    json!({"name": "acme", "provider": "acme-cloud", "project": "web",
                    "settings": body, "secrets": {"token": TOKEN}}),
                ),
            )
            .await;
        assert_eq!(status, 422, "{err}");
        assert!(
            err["error"]["message"].as_str().unwrap().contains(needle),
            "{err}"
        );
    }
    // A wrong token fails verification; nothing is added.
    let (status, err) = api
        .call(
            "POST",
            "/service-accounts",
            Some(
                json!({"name": "acme", "provider": "acme-cloud", "project": "web",
                "settings": {"tenant": "1234", "region": "south"},
                "secrets": {"token": "wrong"}, "verify": true}),
            ),
        )
        .await;
    // The provider refused: the API says so as it does for every provider (502, its code).
    assert_eq!(status, 502, "{err}");
    assert_eq!(err["error"]["code"], "provider_unauthorized", "{err}");
    assert!(!err.to_string().contains("wrong"), "{err}");
    let (_, accounts) = api.call("GET", "/service-accounts", None).await;
    assert_eq!(
        accounts["items"].as_array().map_or(0, Vec::len),
        0,
        "{accounts}"
    );

    let (status, account) = api
        .call(
            "POST",
            "/service-accounts",
            Some(
                json!({"name": "acme", "provider": "acme-cloud", "project": "web",
                "settings": {"tenant": "1234", "region": "south"},
                "secrets": {"token": TOKEN}, "verify": true}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{account}");
    assert_eq!(account["provider"], "acme-cloud");
    assert_eq!(
        account["settings"],
        json!({"tenant": "1234", "region": "south"})
    );
    assert_eq!(account["secrets"], json!(["token"]));
    assert!(!account.to_string().contains(TOKEN));
    // Sealed at rest: the database file never holds the token in clear.
    let db = std::fs::read(dir.path().join("billing.db")).unwrap();
    assert!(!db.windows(TOKEN.len()).any(|w| w == TOKEN.as_bytes()));

    // Synced in windows of its own size (10 days: March is four windows), then reported.
    let (status, started) = api
        .call(
            "POST",
            "/sync",
            Some(json!({"start": "2025-03-01", "end": "2025-04-01"})),
        )
        .await;
    assert_eq!(status, 202, "{started}");
    let job = started["jobs"][0]["job_id"].as_str().unwrap().to_owned();
    let mut state = Value::Null;
    for _ in 0..200 {
        let (_, j) = api.call("GET", &format!("/jobs/{job}"), None).await;
        state = j["state"].clone();
        if state != "running" && state != "queued" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(state, "succeeded");
    let (status, report) = api
        .call(
            "POST",
            "/billing/query",
            Some(json!({"start": "2025-03-01", "end": "2025-04-01",
                "granularity": "MONTHLY", "group_by": ["provider", "service", "region"]})),
        )
        .await;
    assert_eq!(status, 200, "{report}");
    let rows: Vec<(String, String, String, String)> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["group"]["provider"].as_str().unwrap().to_owned(),
                r["group"]["service"].as_str().unwrap().to_owned(),
                r["group"]["region"].as_str().unwrap().to_owned(),
                format!(
                    "{} {}",
                    r["total"][0]["cost"].as_str().unwrap(),
                    r["total"][0]["currency"].as_str().unwrap()
                ),
            )
        })
        .collect();
    // 31 days × 1.10 and 31 × 0.0125 × 4, exactly (at the largest scale the provider sent).
    let want = |service: &str, cost: &str| {
        (
            "acme-cloud".to_owned(),
            service.to_owned(),
            "south".to_owned(),
            format!("{cost} EUR"),
        )
    };
    assert_eq!(
        rows,
        [want("compute", "34.1000"), want("storage", "1.5500")],
        "{report}"
    );
}
