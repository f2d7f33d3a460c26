//! Issue #32's sync semantics on a real SQLite file, with a provider that streams: a window
//! larger than `STREAM_ABOVE_RECORDS` streams into one transaction and is exact; a window whose
//! revision has not moved is not read; a read that fails mid-stream (large or small) writes
//! nothing; a window with closed days is always read and keeps no revision.

use super::*;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use async_trait::async_trait;
use cloudbill_core::{
    ChargeCategory, CostRecord, Currency, Money, ProviderKind, ProviderSpec, Settings,
};
use cloudbill_provider::{BillingProvider, FetchScope, ProviderError, RecordSink, CHUNK_RECORDS};
use cloudbill_service::STREAM_ABOVE_RECORDS;

/// `per_day` records a day, each of `amount(i)`; its revision is `generation`; a read fails
/// after `fail_after` records when set.
struct Streaming {
    per_day: usize,
    generation: AtomicU64,
    fail_after: AtomicUsize,
    reads: AtomicUsize,
}

static STREAMING: ProviderSpec = ProviderSpec {
    kind: ProviderKind::named("streaming"),
    title: "Streaming",
    settings: &[],
};

fn amount(generation: u64, i: usize) -> Decimal {
    Decimal::new(i64::try_from(i % 997).unwrap() + 1, 7) + Decimal::from(generation)
}

impl Streaming {
    fn record(scope: FetchScope, date: NaiveDate, cost: Decimal) -> CostRecord {
        CostRecord {
            domain: scope.domain,
            service_account: scope.service_account,
            provider: STREAMING.kind,
            cloud_account: "1".into(),
            date,
            region: "r".into(),
            service: "s".into(),
            usage_type: "u".into(),
            instance_type: None,
            usage_quantity: Decimal::ONE,
            cost: Money::new(cost, Currency::USD),
            effective_cost: None,
            list_cost: None,
            charge_category: ChargeCategory::Usage,
            tags: std::collections::BTreeMap::default(),
            attributes: std::collections::BTreeMap::default(),
            measures: std::collections::BTreeMap::default(),
            extensions: std::collections::BTreeMap::default(),
        }
    }

    /// The exact total of a window as generated now.
    fn total(&self, window: DateRange) -> Decimal {
        let g = self.generation.load(Ordering::SeqCst);
        (0..usize::try_from(window.days()).unwrap() * self.per_day)
            .map(|i| amount(g, i))
            .sum()
    }
}

#[async_trait]
impl BillingProvider for Streaming {
    fn spec(&self) -> &'static ProviderSpec {
        &STREAMING
    }
    fn max_window_days(&self) -> u32 {
        31
    }
    fn windows(&self, range: DateRange) -> Vec<DateRange> {
        range.months()
    }
    async fn verify(&self, _: &Settings) -> Result<Vec<String>, ProviderError> {
        Ok(vec![])
    }
    async fn fetch(
        &self,
        settings: &Settings,
        scope: FetchScope,
        window: DateRange,
    ) -> Result<Vec<CostRecord>, ProviderError> {
        let (sink, mut rx) = tokio::sync::mpsc::channel(1_000_000);
        self.fetch_into(settings, scope, window, sink).await?;
        let mut out = Vec::new();
        while let Ok(chunk) = rx.try_recv() {
            out.extend(chunk);
        }
        Ok(out)
    }
    async fn revision(&self, _: &Settings, _: DateRange) -> Result<Option<String>, ProviderError> {
        Ok(Some(format!("g{}", self.generation.load(Ordering::SeqCst))))
    }
    async fn fetch_into(
        &self,
        _: &Settings,
        scope: FetchScope,
        window: DateRange,
        sink: RecordSink,
    ) -> Result<(), ProviderError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        let g = self.generation.load(Ordering::SeqCst);
        let fail_after = self.fail_after.load(Ordering::SeqCst);
        let mut chunk = Vec::new();
        let mut i = 0;
        for date in window.iter_days() {
            for _ in 0..self.per_day {
                if i == fail_after {
                    return Err(ProviderError::InvalidResponse {
                        provider: "Streaming",
                        detail: format!("the source broke after {i} records"),
                    });
                }
                chunk.push(Self::record(scope, date, amount(g, i)));
                i += 1;
                if chunk.len() == CHUNK_RECORDS
                    && sink.send(std::mem::take(&mut chunk)).await.is_err()
                {
                    return Ok(());
                }
            }
        }
        let _ = sink.send(chunk).await;
        Ok(())
    }
}

async fn total(b: &Billing, window: DateRange) -> Decimal {
    let report = b
        .report(&Principal::Admin, &Query::new(window, Granularity::Monthly))
        .await
        .unwrap();
    report.results.iter().map(|r| r.total[0].cost).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_windows_stream_exactly_and_unchanged_ones_are_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(
            &format!("sqlite://{}", dir.path().join("c.db").display()),
            Cipher::from_hex(&"ab".repeat(32)).unwrap(),
        )
        .await
        .unwrap(),
    );
    // 30 days × 5,500 records: 165,000 in April, above the streaming threshold.
    let provider = Arc::new(Streaming {
        per_day: 5_500,
        generation: AtomicU64::new(0),
        fail_after: AtomicUsize::new(usize::MAX),
        reads: AtomicUsize::new(0),
    });
    assert!(30 * provider.per_day > STREAM_ABOVE_RECORDS);
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
            name: "big".into(),
            provider: "streaming".into(),
            project: Some("web".into()),
            settings: Settings::default(),
        },
        false,
    )
    .await
    .unwrap();
    let april = DateRange::parse("2025-04-01", "2025-05-01").unwrap();
    let sync = |range: DateRange| {
        let b = b.clone();
        async move {
            let report = b
                .sync(
                    &Principal::Admin,
                    &SyncRequest {
                        accounts: vec!["big".into()],
                        range: Some(range),
                    },
                    &NoProgress,
                )
                .await
                .unwrap();
            report.outcomes.into_iter().next().unwrap()
        }
    };

    let first = sync(april).await;
    assert_eq!(first.state, JobState::Succeeded, "{:?}", first.error);
    assert_eq!(first.rows, 165_000);
    assert_eq!(total(&b, april).await, provider.total(april));
    assert_eq!(provider.reads.load(Ordering::SeqCst), 1);

    // Same revision: not read, nothing written.
    let again = sync(april).await;
    assert_eq!((again.unchanged_windows, again.rows), (1, 0));
    assert_eq!(provider.reads.load(Ordering::SeqCst), 1);

    // A new revision whose read breaks mid-stream (past the threshold, and before it):
    // the account fails and April keeps its old rows, to the digit.
    let before = total(&b, april).await;
    provider.generation.store(1, Ordering::SeqCst);
    for fail_after in [150_000, 20_000] {
        provider.fail_after.store(fail_after, Ordering::SeqCst);
        let broken = sync(april).await;
        assert_eq!(broken.state, JobState::Failed, "{broken:?}");
        assert!(
            broken.error.as_deref().unwrap().contains("broke after"),
            "{broken:?}"
        );
        assert_eq!(total(&b, april).await, before);
    }
    // It reads again once the source works: the new revision replaces April.
    provider.fail_after.store(usize::MAX, Ordering::SeqCst);
    let restated = sync(april).await;
    assert_eq!(restated.state, JobState::Succeeded, "{:?}", restated.error);
    assert_eq!(restated.changed_days, 30);
    assert_eq!(total(&b, april).await, provider.total(april));

    // A closed month is always read (its restatements are held) and keeps no revision.
    b.close_period(&admin, "2025-04").await.unwrap();
    let reads = provider.reads.load(Ordering::SeqCst);
    for _ in 0..2 {
        let held = sync(april).await;
        assert_eq!(held.state, JobState::Succeeded, "{:?}", held.error);
        assert_eq!(held.unchanged_windows, 0, "{held:?}");
    }
    assert_eq!(provider.reads.load(Ordering::SeqCst), reads + 2);
}
