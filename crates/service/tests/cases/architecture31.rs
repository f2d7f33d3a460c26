//! Issue #31's silent fallbacks: a sync or an import whose lease another process takes stops
//! (it used to drop the renewal's answer and carry on beside the other writer).

use super::*;

use std::fmt::Write as _;

use async_trait::async_trait;
use cloudbill_core::{
    ChargeCategory, CostRecord, Currency, Money, ProviderKind, ProviderSpec, SettingSpec, Settings,
};
use cloudbill_provider::{BillingProvider, FetchScope, ProviderError};

/// A dollar a day; on its second fetch another process takes the account's lease (its clock
/// says the lease lapsed long ago).
struct Intruded {
    store: Arc<dyn Store>,
    fetches: std::sync::atomic::AtomicUsize,
}

static INTRUDED: ProviderSpec = ProviderSpec {
    kind: ProviderKind::named("intruded"),
    title: "Intruded",
    settings: &[SettingSpec::new("tenant", "a tenant").required()],
};

#[async_trait]
impl BillingProvider for Intruded {
    fn spec(&self) -> &'static ProviderSpec {
        &INTRUDED
    }
    fn max_window_days(&self) -> u32 {
        10
    }
    async fn verify(&self, _: &Settings) -> Result<Vec<String>, ProviderError> {
        Ok(vec![])
    }
    async fn fetch(
        &self,
        _: &Settings,
        scope: FetchScope,
        window: DateRange,
    ) -> Result<Vec<CostRecord>, ProviderError> {
        if self
            .fetches
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            == 1
        {
            let later = chrono::Utc::now() + chrono::Duration::days(1);
            assert!(self
                .store
                .try_lease(scope.service_account, "another-process", later, later)
                .await
                .unwrap());
        }
        Ok(window
            .iter_days()
            .map(|date| CostRecord {
                domain: scope.domain,
                service_account: scope.service_account,
                provider: INTRUDED.kind,
                cloud_account: "1".into(),
                date,
                region: "r".into(),
                service: "s".into(),
                usage_type: "u".into(),
                instance_type: None,
                usage_quantity: Decimal::ONE,
                cost: Money::new(Decimal::ONE, Currency::USD),
                effective_cost: None,
                list_cost: None,
                charge_category: ChargeCategory::Usage,
                tags: std::collections::BTreeMap::default(),
                attributes: std::collections::BTreeMap::default(),
                measures: std::collections::BTreeMap::default(),
                extensions: std::collections::BTreeMap::default(),
            })
            .collect())
    }
}

async fn total(b: &Billing, window: DateRange) -> Decimal {
    let report = b
        .report(&Principal::Admin, &Query::new(window, Granularity::Monthly))
        .await
        .unwrap();
    report
        .results
        .iter()
        .map(|r| r.total[0].cost)
        .sum::<Decimal>()
}

#[tokio::test]
async fn a_sync_whose_lease_is_taken_stops_before_its_next_write() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let provider = Arc::new(Intruded {
        store: Arc::clone(&store),
        fetches: std::sync::atomic::AtomicUsize::new(0),
    });
    let b = Billing::open(
        Arc::clone(&store),
        ProviderRegistry::new().with(provider.clone()),
        "default",
        BillingConfig {
            today: Some(date(TODAY)),
            ..BillingConfig::default()
        },
    )
    .await
    .unwrap();
    let admin = Principal::Admin;
    b.set_billing(&admin, true).await.unwrap();
    b.create_project(&admin, "web", None).await.unwrap();
    b.add_account(
        &admin,
        NewAccount {
            name: "acme".into(),
            provider: "intruded".into(),
            project: Some("web".into()),
            settings: Settings::default().with_value("tenant", "t"),
        },
        false,
    )
    .await
    .unwrap();
    let march = range("2025-03-01", "2025-04-01");
    let report = b
        .sync(&admin, &SyncRequest::range(march), &NoProgress)
        .await
        .unwrap();
    let outcome = &report.outcomes[0];
    assert_eq!(outcome.state, JobState::Partial, "{outcome:?}");
    let error = outcome.error.as_deref().unwrap();
    assert!(
        error.contains("lost its lease to another process after 1 window(s)"),
        "{error}"
    );
    // The first window (10 days) is kept whole; nothing after the lease was lost.
    assert_eq!(
        provider.fetches.load(std::sync::atomic::Ordering::SeqCst),
        2
    );
    assert_eq!(total(&b, march).await, Decimal::from(10));
}

/// A slow file: each read waits, so the import outlives several lease renewals.
struct Slow(std::io::Cursor<Vec<u8>>);

impl std::io::Read for Slow {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        std::thread::sleep(Duration::from_millis(20));
        let n = buf.len().min(64);
        self.0.read(&mut buf[..n])
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_whose_lease_is_taken_writes_nothing() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let b = Billing::open(
        Arc::clone(&store),
        ProviderRegistry::new(),
        "default",
        BillingConfig {
            today: Some(date(TODAY)),
            import_lease_ttl: Duration::from_millis(150),
            ..BillingConfig::default()
        },
    )
    .await
    .unwrap();
    let admin = Principal::Admin;
    b.set_billing(&admin, true).await.unwrap();
    b.create_project(&admin, "web", None).await.unwrap();
    let account = b
        .add_account(
            &admin,
            NewAccount {
                name: "bill".into(),
                provider: "file".into(),
                project: Some("web".into()),
                settings: Settings::default(),
            },
            false,
        )
        .await
        .unwrap();
    let mut csv = String::from(
        "BilledCost,BillingCurrency,ChargePeriodStart,ChargePeriodEnd,ChargeCategory,ServiceName\n",
    );
    for day in 1..=30 {
        writeln!(
            csv,
            "1,USD,2025-03-{day:02}T00:00:00Z,2025-03-{:02}T00:00:00Z,Usage,S3",
            day + 1
        )
        .unwrap();
    }
    let bytes = csv.into_bytes();
    let source: cloudbill_service::BillSource = Arc::new(move || {
        Ok(Box::new(Slow(std::io::Cursor::new(bytes.clone()))) as Box<dyn std::io::Read + Send>)
    });
    // Another process takes the lease while the file is read (its clock says it lapsed).
    let intruder = {
        let store = Arc::clone(&store);
        let id = account.id;
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let later = chrono::Utc::now() + chrono::Duration::days(1);
            store.try_lease(id, "another-process", later, later).await
        })
    };
    let err = b
        .import(
            &admin,
            "bill",
            cloudbill_service::BillFormat::Focus,
            source,
            "march.csv",
            cloudbill_service::ImportOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(intruder.await.unwrap().unwrap());
    assert!(matches!(err, ServiceError::Conflict(_)), "{err}");
    assert!(
        err.to_string()
            .contains("lost its lease to another process; nothing was written"),
        "{err}"
    );
    assert_eq!(
        total(&b, range("2025-03-01", "2025-04-01")).await,
        Decimal::ZERO
    );
}
