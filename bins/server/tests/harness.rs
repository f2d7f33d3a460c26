//! Starts the application in-process with a populated domain and three tokens.

use std::net::SocketAddr;
use std::sync::Arc;

use cloudbill_core::{DateRange, NaiveDate, TokenRole};
use cloudbill_hyperbilling::sim::{SimConfig, Simulator};
use cloudbill_hyperbilling::{ClientConfig, Hyperbilling};
use cloudbill_service::ProviderRegistry;
use cloudbill_service::{Billing, BillingConfig, NewAccount, NoProgress, Principal, SyncRequest};
use cloudbill_store::{Cipher, SqliteStore};

pub struct Server {
    pub addr: SocketAddr,
    pub http: reqwest::Client,
    pub admin: String,
    pub web_member: String,
    pub data_member: String,
    pub sim: Simulator,
    pub billing: Billing,
    pub dir: tempfile::TempDir,
    /// The PostgreSQL schema to drop when done, if any.
    pub schema: Option<String>,
    /// The app's readiness switch (`/readyz`).
    pub ready: Arc<std::sync::atomic::AtomicBool>,
    /// The store under `billing` (for data no request may write, such as values stored
    /// before a bound existed).
    pub store: Arc<dyn cloudbill_store::Store>,
}

pub const RANGE: (&str, &str) = ("2025-03-01", "2025-06-01");

pub fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

pub fn range() -> DateRange {
    DateRange::parse(RANGE.0, RANGE.1).unwrap()
}

impl Server {
    /// A `file` account `bill` in project `data` holding the FOCUS bill `csv`.
    pub async fn file_bill(&self, csv: Vec<u8>) {
        let admin = cloudbill_service::Principal::Admin;
        self.billing
            .add_account(
                &admin,
                cloudbill_service::NewAccount {
                    name: "bill".into(),
                    provider: "file".into(),
                    project: Some("data".into()),
                    settings: cloudbill_core::Settings::default(),
                },
                false,
            )
            .await
            .unwrap();
        let source: cloudbill_service::BillSource = std::sync::Arc::new(move || {
            Ok(Box::new(std::io::Cursor::new(csv.clone())) as Box<dyn std::io::Read + Send>)
        });
        self.billing
            .import(
                &admin,
                "bill",
                cloudbill_service::BillFormat::Focus,
                source,
                "bill.csv",
                cloudbill_service::ImportOptions::default(),
            )
            .await
            .unwrap();
    }

    /// [`Server::file_bill`] of the repo's tagged FOCUS fixture.
    pub async fn tagged_bill(&self) {
        let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../crates/focus/tests/fixtures/tagged.csv");
        self.file_bill(std::fs::read(path).unwrap()).await;
    }

    pub async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(
            &format!("sqlite://{}", dir.path().join("server.db").display()),
            Cipher::from_hex(&"cd".repeat(32)).unwrap(),
        )
        .await
        .unwrap();
        Self::start_with(Arc::new(store), dir).await
    }

    /// The same server on PostgreSQL (a schema of its own), or `None` (after saying so) when
    /// `CLOUDBILL_TEST_DATABASE_URL` is unset; CI sets `CLOUDBILL_REQUIRE_POSTGRES=1`.
    pub async fn start_on_postgres(case: &str) -> Option<Self> {
        let Ok(url) = std::env::var("CLOUDBILL_TEST_DATABASE_URL") else {
            assert!(
                std::env::var("CLOUDBILL_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                "PostgreSQL required"
            );
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED {case}: set CLOUDBILL_TEST_DATABASE_URL"
            );
            return None;
        };
        let schema = format!("srv_{}", uuid::Uuid::new_v4().simple());
        let store = cloudbill_store::PgStore::open(
            &url,
            Some(&schema),
            Cipher::from_hex(&"cd".repeat(32)).unwrap(),
        )
        .await
        .unwrap();
        let mut server = Self::start_with(Arc::new(store), tempfile::tempdir().unwrap()).await;
        server.schema = Some(schema);
        Some(server)
    }

    /// Drops the PostgreSQL schema of a `start_on_postgres` server.
    pub async fn cleanup(&self) {
        if let (Some(schema), Ok(url)) =
            (&self.schema, std::env::var("CLOUDBILL_TEST_DATABASE_URL"))
        {
            let pool = sqlx::PgPool::connect(&url).await.unwrap();
            sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        }
    }

    async fn start_with(store: Arc<dyn cloudbill_store::Store>, dir: tempfile::TempDir) -> Self {
        let sim = Simulator::start(SimConfig::demo(date("2025-06-30")))
            .await
            .unwrap();
        // The providers the server ships (compose registers the same), Hyperbilling's on
        // the simulator.
        let providers = ProviderRegistry::new()
            .with(Arc::new(
                Hyperbilling::new(ClientConfig {
                    max_attempts: 2,
                    default_endpoint: Some(sim.endpoint()),
                    ..ClientConfig::default()
                })
                .unwrap(),
            ))
            .with(Arc::new(cloudbill_aws::DataExports::from_env()))
            .with(Arc::new(cloudbill_azure::CostExports::from_env()))
            .with(Arc::new(cloudbill_gcp::BillingExport::from_env().unwrap()));
        let config = BillingConfig {
            warm_engine: true,
            ..BillingConfig::default()
        };
        let billing = Billing::open(Arc::clone(&store), providers, "default", config)
            .await
            .unwrap();
        let admin = Principal::Admin;
        billing.set_billing(&admin, true).await.unwrap();
        billing.create_project(&admin, "web", None).await.unwrap();
        billing.create_project(&admin, "data", None).await.unwrap();
        for (name, project, account, email, key) in [
            (
                "acme-main",
                "web",
                "111111111111",
                "ops@acme.example",
                "demo-key-acme",
            ),
            (
                "globex",
                "data",
                "333333333333",
                "finops@globex.example",
                "demo-key-globex",
            ),
            (
                "bad",
                "data",
                "222222222222",
                "ops@acme.example",
                "wrong-key",
            ),
        ] {
            let new = NewAccount {
                name: name.into(),
                provider: "hyperbilling-aws".into(),
                project: Some(project.into()),
                settings: cloudbill_hyperbilling::settings(account, email, key, None),
            };
            billing.add_account(&admin, new, false).await.unwrap();
        }
        billing
            .sync(
                &admin,
                &SyncRequest {
                    accounts: vec![],
                    range: Some(range()),
                },
                &NoProgress,
            )
            .await
            .unwrap();
        let (_, admin_token) = billing
            .create_token(&admin, TokenRole::Admin, None, "admin")
            .await
            .unwrap();
        let (_, web_member) = billing
            .create_token(&admin, TokenRole::ProjectMember, Some("web"), "web")
            .await
            .unwrap();
        let (_, data_member) = billing
            .create_token(&admin, TokenRole::ProjectMember, Some("data"), "data")
            .await
            .unwrap();

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = cloudbill_web::AppState::new(billing.clone());
        let ready = state.ready.clone();
        let app = cloudbill_web::app(state);
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self {
            addr,
            http,
            admin: admin_token,
            web_member,
            data_member,
            sim,
            billing,
            dir,
            schema: None,
            ready,
            store,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Sends a request as `token` (None: anonymous); returns status and JSON (Null if none).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut req = self.http.request(method.parse().unwrap(), self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
        )
    }

    pub async fn id_of(&self, kind: &str, name: &str) -> String {
        let (_, list) = self
            .call("GET", &format!("/api/v1/{kind}"), Some(&self.admin), None)
            .await;
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == name)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}
