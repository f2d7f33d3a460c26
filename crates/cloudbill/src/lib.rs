//! # cloudbill
//!
//! Multi-cloud billing you embed: register billing accounts (each assigned to a project),
//! sync their daily cost records exactly, and ask for per-project and consolidated reports —
//! the library the `cloudbill` CLI and `cloudbill-server` are built on.
//!
//! Start from [`Billing`]: [`open`] gives one on a database URL with every provider this build
//! has; [`Billing::open`] takes a store and providers of your own.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use cloudbill::hyperbilling::sim::{SimConfig, Simulator};
//! use cloudbill::{DateRange, GroupKey, NewAccount, Principal, Query};
//!
//! let sim = Simulator::start(SimConfig::demo("2025-06-30".parse()?)).await?; // a test provider
//! let billing = cloudbill::open("memory:", "acme").await?;
//! let admin = Principal::Admin;
//! billing.set_billing(&admin, true).await?;
//! billing.create_project(&admin, "web-shop", None).await?;
//! billing.add_account(&admin, NewAccount {
//!     name: "aws-prod".into(),
//!     provider: "hyperbilling-aws".into(),
//!     project: Some("web-shop".into()),
//!     // Hyperbilling's Account / Email / Key and endpoint, as its settings.
//!     settings: cloudbill::hyperbilling::settings("111111111111", "ops@acme.example",
//!         "demo-key-acme", Some(&sim.endpoint())),
//! }, true).await?;
//! let range = DateRange::parse("2025-04-01", "2025-06-01")?;
//! billing.sync(&admin, &cloudbill::SyncRequest::range(range), &cloudbill::NoProgress).await?;
//! let mut query = Query::new(range, "monthly".parse()?);
//! query.group_by = vec![GroupKey::Project];
//! let report = billing.report(&admin, &query).await?;
//! for row in &report.results {
//!     println!("{}: {} {}", row.group["project"], row.total[0].cost, row.total[0].currency);
//! }
//! # assert_eq!(report.results.len(), 1);
//! # Ok(())
//! # }
//! ```
//!
//! ## Reports, exactly
//!
//! A [`Query`] names a range, a time bucket, the dimensions to group by (any [`GroupKey`],
//! `tag:KEY` for a tag) and filters; its [`Report`] holds exact sums per group, bucket and
//! currency. Sums are [`Decimal`]s: add them, compare them, never round them.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # use cloudbill::hyperbilling::sim::{SimConfig, Simulator};
//! # use cloudbill::{NewAccount, Principal};
//! # let sim = Simulator::start(SimConfig::demo("2025-06-30".parse()?)).await?;
//! # let billing = cloudbill::open("memory:", "acme").await?;
//! # let admin = Principal::Admin;
//! # billing.set_billing(&admin, true).await?;
//! # for (project, account, key) in [("web", "111111111111", "demo-key-acme"), ("data", "333333333333", "demo-key-globex")] {
//! #     billing.create_project(&admin, project, None).await?;
//! #     let email = if project == "web" { "ops@acme.example" } else { "finops@globex.example" };
//! #     billing.add_account(&admin, NewAccount { name: format!("aws-{project}"), provider: "hyperbilling-aws".into(),
//! #         project: Some(project.into()), settings: cloudbill::hyperbilling::settings(account, email, key, Some(&sim.endpoint())) }, false).await?;
//! # }
//! use cloudbill::{DateRange, Decimal, Granularity, GroupKey, Query};
//!
//! let range = DateRange::parse("2025-05-01", "2025-06-01")?;
//! # billing.sync(&admin, &cloudbill::SyncRequest::range(range), &cloudbill::NoProgress).await?;
//! let mut by_service = Query::new(range, Granularity::Daily);
//! by_service.group_by = vec![GroupKey::Project, GroupKey::Service];
//! by_service.filters.insert(GroupKey::Project, vec!["web".into(), "data".into()]);
//! let report = billing.report(&admin, &by_service).await?;
//!
//! // The consolidated total is the sum of the groups, to the last decimal.
//! let consolidated = billing.report(&admin, &Query::new(range, Granularity::Monthly)).await?;
//! let sum: Decimal = report.results.iter().flat_map(|r| &r.total).map(|t| t.cost).sum();
//! assert_eq!(sum, consolidated.results[0].total[0].cost);
//! # Ok(())
//! # }
//! ```
//!
//! ## Your own provider
//!
//! A provider is a [`BillingProvider`]: it declares itself once (a [`ProviderSpec`]: its
//! kind, title and the settings an account gives it, secrets marked), verifies an account's
//! settings and fetches a window of daily cost records. Register one in a
//! [`ProviderRegistry`] — nothing else in cloudbill changes for it: the CLI, the API and its
//! document list it with its settings — here a fixed price list, as an embedder's test might
//! have.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//!
//! use cloudbill::model::{ChargeCategory, CostRecord, ProviderKind};
//! use cloudbill::store::MemoryStore;
//! use cloudbill::*;
//!
//! /// One dollar a day, per account.
//! struct DollarADay;
//! static SPEC: ProviderSpec = ProviderSpec {
//!     kind: ProviderKind::named("dollar-a-day"),
//!     title: "A dollar a day",
//!     settings: &[
//!         SettingSpec::new("account", "the account billed").required().kind(SettingKind::Digits),
//!         SettingSpec::new("token", "the price list's token").required().secret(),
//!     ],
//! };
//!
//! #[async_trait::async_trait]
//! impl BillingProvider for DollarADay {
//!     fn spec(&self) -> &'static ProviderSpec { &SPEC }
//!     fn max_window_days(&self) -> u32 { 31 }
//!     async fn verify(&self, s: &Settings) -> Result<Vec<String>, ProviderError> {
//!         Ok(s.value("account").into_iter().map(str::to_owned).collect())
//!     }
//!     async fn fetch(&self, s: &Settings, scope: FetchScope, window: DateRange)
//!         -> Result<Vec<CostRecord>, ProviderError> {
//!         Ok(window.iter_days().map(|date| CostRecord {
//!             domain: scope.domain,
//!             service_account: scope.service_account,
//!             provider: SPEC.kind,
//!             cloud_account: s.value("account").unwrap_or_default().to_owned(),
//!             date,
//!             region: "us-east-1".into(),
//!             service: "AmazonEC2".into(),
//!             usage_type: "BoxUsage".into(),
//!             instance_type: None,
//!             usage_quantity: Decimal::ONE,
//!             cost: Money::new(Decimal::ONE, Currency::USD),
//!             effective_cost: None,
//!             list_cost: None,
//!             charge_category: ChargeCategory::Usage,
//!             tags: Default::default(),
//!             attributes: Default::default(),
//!             measures: Default::default(),
//!             extensions: Default::default(),
//!         }).collect())
//!     }
//! }
//!
//! let providers = ProviderRegistry::new().with(Arc::new(DollarADay));
//! let billing = Billing::open(Arc::new(MemoryStore::new()), providers, "acme",
//!     BillingConfig::default()).await?;
//! let admin = Principal::Admin;
//! billing.set_billing(&admin, true).await?;
//! billing.create_project(&admin, "web", None).await?;
//! billing.add_account(&admin, NewAccount {
//!     name: "prod".into(),
//!     provider: "dollar-a-day".into(),
//!     project: Some("web".into()),
//!     settings: Settings::default()
//!         .with_value("account", "111111111111")
//!         .with_secret("token", ClientSecret::new("k")?),
//! }, true).await?;
//! let march = DateRange::parse("2025-03-01", "2025-04-01")?;
//! let sync = billing.sync(&admin, &SyncRequest::range(march), &NoProgress).await?;
//! assert!(sync.all_succeeded());
//! let mut by_provider = Query::new(march, Granularity::Monthly);
//! by_provider.group_by = vec![GroupKey::Provider];
//! let report = billing.report(&admin, &by_provider).await?;
//! assert_eq!(report.results[0].group["provider"], "dollar-a-day");
//! assert_eq!(report.results[0].total[0].cost, Decimal::from(31));
//! # Ok(())
//! # }
//! ```
//!
//! ## Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `sqlite` | yes | the embedded SQLite store (`sqlite://PATH`) |
//! | `postgres` | | the PostgreSQL store (`postgres://…`) |
//! | `hyperbilling` | yes | the Hyperbilling-for-AWS provider (module `hyperbilling`) |
//! | `focus` | | FOCUS and AWS CUR bill files (module `focus`) |
//! | `sim` | | the in-process Hyperbilling simulator, for your own tests |
//! | `server` | | the REST API and dashboard as an axum router (module `server`) |
//!
//! ## Guarantees
//!
//! Amounts are exact decimals with a currency ([`Decimal`], [`Money`]); different currencies
//! are never added; a restated day replaces the old numbers; one failing account never hides
//! the others in a sync. Credentials are encrypted at rest and never printed.
//!
//! While the version is 0.x, a minor release may change the API; the items this crate
//! re-exports are the surface it keeps stable within a minor release (see CHANGELOG.md).

#![deny(missing_docs)]

pub use cloudbill_service::{
    AccountOutcome, Amount, BillFormat, BillSource, Billing, BillingConfig, BillingProvider,
    Bucket, ClientSecret, Currency, DateRange, Decimal, ExportedRecord, FetchScope, Granularity,
    GroupKey, Hint, ImportOptions, ImportReport, JobView, Money, NaiveDate, NewAccount, NoProgress,
    Principal, ProviderError, ProviderRegistry, ProviderSpec, ProviderView, Query, QueryError,
    Report, ReportRequest, ReportRow, RowError, SchedulerConfig, ServiceError, SettingKind,
    SettingSpec, Settings, Sort, SyncObserver, SyncReport, SyncRequest, TagKey, TagSummary,
    TagValue,
};

/// Domain values: ids, names, accounts, projects, cost records.
pub mod model {
    pub use cloudbill_core::{
        AccountId, AccountState, Assignment, ChargeCategory, CostRecord, Domain, DomainId, GroupId,
        JobId, JobKind, JobState, Name, Project, ProjectGroup, ProjectId, ProviderKind,
        ServiceAccount, SyncJob, Tags,
    };
}

/// Stores: the traits, the in-memory store, and the SQL stores this build has.
///
/// The in-memory store passes the same contract suite as the SQL stores, which makes it the
/// store for an embedder's own unit tests:
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
///
/// use cloudbill::store::MemoryStore;
/// use cloudbill::{Billing, BillingConfig, Principal, ProviderRegistry};
///
/// let billing = Billing::open(Arc::new(MemoryStore::new()), ProviderRegistry::new(),
///     "test-domain", BillingConfig::default()).await?;
/// billing.set_billing(&Principal::Admin, true).await?;
/// billing.create_project(&Principal::Admin, "web", None).await?;
/// let err = billing.create_project(&Principal::Admin, "web", None).await.unwrap_err();
/// assert_eq!(err.to_string(), "project \"web\" already exists");
/// # Ok(())
/// # }
/// ```
pub mod store {
    #[cfg(feature = "postgres")]
    pub use cloudbill_store::PgStore;
    #[cfg(feature = "sqlite")]
    pub use cloudbill_store::SqliteStore;
    pub use cloudbill_store::{
        open, CatalogStore, Cipher, CostStore, JobStore, MemoryStore, OpenOptions, Store,
        StoreError, TokenStore,
    };
}

/// The Hyperbilling-for-AWS provider (feature `hyperbilling`).
#[cfg(feature = "hyperbilling")]
pub mod hyperbilling {
    pub use cloudbill_hyperbilling::{settings, ClientConfig, Hyperbilling, SPEC};
    /// The in-process simulator of the Hyperbilling API (feature `sim`), for tests.
    #[cfg(feature = "sim")]
    pub mod sim {
        pub use cloudbill_hyperbilling::sim::{SimConfig, Simulator};
    }
}

/// FOCUS and AWS CUR bill files (feature `focus`): read a bill into cost records, or write
/// records as FOCUS. [`Billing::import`] stores a bill in a `file` account:
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
///
/// use cloudbill::{BillFormat, BillSource, DateRange, Granularity, ImportOptions, NewAccount};
/// use cloudbill::{Principal, Query};
///
/// let billing = cloudbill::open("memory:", "acme").await?;
/// let admin = Principal::Admin;
/// billing.set_billing(&admin, true).await?;
/// billing.create_project(&admin, "web", None).await?;
/// billing.add_account(&admin, NewAccount { name: "bill".into(), provider: "file".into(),
///     project: Some("web".into()), settings: Default::default() }, false).await?;
/// let csv = "BillingPeriodStart,BillingPeriodEnd,ChargePeriodStart,ChargePeriodEnd,\
/// BilledCost,BillingCurrency,ServiceName,Tags
/// 2025-03-01T00:00:00Z,2025-04-01T00:00:00Z,2025-03-02T00:00:00Z,2025-03-03T00:00:00Z,\
/// 0.1000000001,USD,AmazonS3,\"{\"\"team\"\":\"\"web\"\"}\"
/// ";
/// let source: BillSource = Arc::new(move || Ok(Box::new(std::io::Cursor::new(csv))));
/// billing.import(&admin, "bill", BillFormat::Focus, source, "march.csv",
///     ImportOptions::default()).await?;
/// let march = DateRange::parse("2025-03-01", "2025-04-01")?;
/// let mut by_team = Query::new(march, Granularity::Monthly);
/// by_team.group_by = vec!["tag:team".parse()?];
/// let report = billing.report(&admin, &by_team).await?;
/// assert_eq!(report.results[0].group["tag:team"], "web");
/// assert_eq!(report.results[0].total[0].cost.to_string(), "0.1000000001");
/// # Ok(())
/// # }
/// ```
#[cfg(feature = "focus")]
pub mod focus {
    pub use cloudbill_focus::{
        export_columns, read, write_focus, ExportRow, ImportError, ImportedBill, COLUMNS,
    };
}

/// The REST API and the dashboard as an axum router (feature `server`), to mount in an
/// existing axum application.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let billing = cloudbill::open("memory:", "acme").await?;
/// let api = cloudbill::server::router(cloudbill::server::AppState::new(billing));
/// // Beside the application's own routes; clients call `/api/v1/…` with a bearer token
/// // (`Billing::create_token`).
/// // The dashboard serves `/`: mount the application's own pages beside it.
/// let app: axum::Router = axum::Router::new()
///     .route("/my-app", axum::routing::get(|| async { "my app" }))
///     .merge(api);
/// # drop(app);
/// # Ok(())
/// # }
/// ```
#[cfg(feature = "server")]
pub mod server {
    pub use cloudbill_web::AppState;

    /// The API (`/api/v1/…`, `/api/openapi.json`) and the dashboard over `state`.
    pub fn router(state: AppState) -> axum::Router {
        cloudbill_web::app(state)
    }
}

/// What can go wrong opening billing with [`open`]: the store would not open (its URL shown
/// without a password), a provider could not be set up, the service refused (a bad domain
/// name), or an environment variable holds a value cloudbill does not accept.
pub use cloudbill_compose::ComposeError as OpenError;

/// Every provider this build has (Hyperbilling with feature `hyperbilling`), configured from
/// the environment as the binaries are (`CLOUDBILL_HYPERBILLING_ENDPOINT`,
/// `CLOUDBILL_ALLOW_LINK_LOCAL_ENDPOINTS`); bill files need none.
///
/// # Errors
/// A provider that cannot be set up.
pub fn providers() -> Result<ProviderRegistry, OpenError> {
    cloudbill_compose::providers()
}

/// Billing for `domain` on the database at `url` — `memory:`, `sqlite://PATH` (created on
/// first use, with a key file `PATH.key` for the credentials unless `CLOUDBILL_SECRET_KEY` is
/// set) or `postgres://…` — with every provider this build has, opened by the same
/// composition root as the `cloudbill` and `cloudbill-server` binaries (the same environment
/// variables, the same provider settings, notifications sent with feature `notify`).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let url = format!("sqlite://{}", dir.path().join("billing.db").display());
/// let billing = cloudbill::open(&url, "acme").await?;
/// billing.set_billing(&cloudbill::Principal::Admin, true).await?;
/// // Reopened later, the same data is there.
/// drop(billing);
/// let again = cloudbill::open(&url, "acme").await?;
/// assert!(again.domain().await?.billing_enabled);
/// # Ok(())
/// # }
/// ```
///
/// # Errors
/// [`OpenError`].
pub async fn open(url: &str, domain: &str) -> Result<Billing, OpenError> {
    cloudbill_compose::open(cloudbill_compose::Settings::new(url, domain)).await
}

/// [`open`] with settings of one's own: service tunables, one's own providers beside the
/// build's, `create: false` to refuse a missing database.
///
/// # Errors
/// [`OpenError`].
pub async fn open_with(settings: OpenSettings) -> Result<Billing, OpenError> {
    cloudbill_compose::open(settings).await
}

/// What [`open_with`] opens.
pub use cloudbill_compose::Settings as OpenSettings;
