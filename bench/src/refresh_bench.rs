//! `cloudbill-bench refresh DIR [POSTGRES_URL]`: what a one-account 31-day re-sync costs the
//! warm engine — updated in place (the changed slices read again, the rest copied) against
//! loaded whole — and how soon a second replica answers with it.
//!
//! Uses the store `cloudbill-bench store DIR` left in `DIR/cloudbill.db` (200 accounts). With
//! `POSTGRES_URL` (a database of its own: it is filled once, from the SQLite store's segments)
//! the two replicas are two stores on that database and the second learns of the change by
//! `LISTEN/NOTIFY`; without it, both share the SQLite store and the second polls.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{NaiveDate, Utc};
use cloudbill_aggregate::{GroupKey, Query};
use cloudbill_core::{DateRange, Decimal, Granularity, JobKind, Money, SyncJob};
use cloudbill_provider::ProviderRegistry;
use cloudbill_service::{Billing, BillingConfig, NewAccount, Principal, Refreshed, Tenants};
use cloudbill_store::{Chunk, Cipher, PgStore, SqliteStore, Store};

pub(crate) const KEY_HEX: &str = "abababababababababababababababababababababababababababababababab";

pub(crate) fn run(dir: &str, pg: Option<&str>) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(run_async(dir, pg))
}

fn cipher() -> Result<Cipher, String> {
    Cipher::from_hex(KEY_HEX).map_err(|e| e.to_string())
}

async fn open_billing(store: Arc<dyn Store>) -> Result<Billing, String> {
    let config = BillingConfig {
        warm_engine: true,
        ..BillingConfig::default()
    };
    Billing::open(store, ProviderRegistry::new(), "default", config)
        .await
        .map_err(|e| e.to_string())
}

async fn open_pg(url: &str) -> Result<Arc<dyn Store>, String> {
    Ok(Arc::new(
        PgStore::open(url, None, cipher()?)
            .await
            .map_err(|e| e.to_string())?,
    ))
}

#[allow(clippy::too_many_lines)] // One benchmark, printed in order.
async fn run_async(dir: &str, pg: Option<&str>) -> Result<(), String> {
    let db = format!("{dir}/cloudbill.db");
    if !std::path::Path::new(&db).exists() {
        return Err(format!("no {db}: run `cloudbill-bench store {dir}` first"));
    }
    let sqlite: Arc<dyn Store> = Arc::new(
        SqliteStore::open(&format!("sqlite://{db}"), cipher()?)
            .await
            .map_err(|e| e.to_string())?,
    );
    let (store_a, store_b): (Arc<dyn Store>, Arc<dyn Store>) = match pg {
        Some(url) => {
            let a = open_pg(url).await?;
            fill_postgres(&sqlite, &a).await?;
            (a, open_pg(url).await?)
        }
        None => (Arc::clone(&sqlite), Arc::clone(&sqlite)),
    };
    let backend = if pg.is_some() { "PostgreSQL" } else { "SQLite" };

    // Loaded whole, best of 3 (a fresh service each time: catalog and every segment).
    let mut full_s = f64::MAX;
    let mut records = 0;
    for _ in 0..3 {
        let b = open_billing(Arc::clone(&store_a)).await?;
        let t = Instant::now();
        b.warm_up().await.map_err(|e| e.to_string())?;
        full_s = full_s.min(t.elapsed().as_secs_f64());
        records = b.warm_info().map_or(0, |w| w.records);
    }
    println!("{backend}: {records} records; warm engine loaded whole: best {full_s:.3} s");

    // Two replicas, each with its warm engine; the second refreshes as the server does.
    let a = open_billing(Arc::clone(&store_a)).await?;
    let b = open_billing(Arc::clone(&store_b)).await?;
    a.warm_up().await.map_err(|e| e.to_string())?;
    b.warm_up().await.map_err(|e| e.to_string())?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let replica_b = Tenants::new(b.clone(), usize::MAX);
    let refresher = tokio::spawn(async move {
        replica_b
            .run_refresher(Duration::from_millis(100), stopped)
            .await;
    });

    let admin = Principal::Admin;
    let accounts = a.accounts(&admin).await.map_err(|e| e.to_string())?;
    let domain = a.domain().await.map_err(|e| e.to_string())?.id;
    let march = DateRange::new(date(2025, 3, 1), date(2025, 4, 1)).map_err(|e| e.to_string())?;
    let mut per_account = Query::new(march, Granularity::Monthly);
    per_account.group_by = vec![GroupKey::ServiceAccount];
    println!(
        "{:>8} {:>10} {:>8} {:>12} {:>10} {:>14}",
        "account", "rows", "slices", "refresh ms", "÷ whole", "replica 2 ms"
    );
    let mut ratios = Vec::new();
    let mut visible = Vec::new();
    for account in accounts
        .iter()
        .step_by(accounts.len().div_ceil(5).max(1))
        .take(5)
    {
        // The account's March re-synced: every record 0.01 more (an exact, known change).
        let old = store_a
            .cost_records(domain, march, Some(account.id))
            .await
            .map_err(|e| e.to_string())?;
        let bump = Decimal::new(1, 2);
        let new: Vec<_> = old
            .iter()
            .map(|r| {
                let mut r = r.clone();
                r.cost = Money::new(r.cost.amount() + bump, r.cost.currency());
                r
            })
            .collect();
        let expected = total_of(&b, &per_account, account.name.as_str()).await?
            + bump * Decimal::from(new.len());
        let job = SyncJob::running(domain, account.id, JobKind::Import, march, Utc::now());
        store_a.save_job(&job).await.map_err(|e| e.to_string())?;
        store_a
            .replace_window(domain, account.id, job.id, march, &new)
            .await
            .map_err(|e| e.to_string())?;
        let committed = Instant::now();
        // The writer's replica brings its engine up to date before its write returns.
        let t = Instant::now();
        let how = a.refresh_engine().await.map_err(|e| e.to_string())?;
        let refresh_s = t.elapsed().as_secs_f64();
        let Refreshed::Updated { slices, rows } = how else {
            return Err(format!("expected an update in place, got {how:?}"));
        };
        // The other replica: polled until its answer has the change.
        let seen = loop {
            if total_of(&b, &per_account, account.name.as_str()).await? == expected {
                break committed.elapsed().as_secs_f64();
            }
            if committed.elapsed() > Duration::from_secs(30) {
                return Err("the second replica never saw the change".into());
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        };
        if total_of(&a, &per_account, account.name.as_str()).await? != expected {
            return Err("the writer's replica answers without its change".into());
        }
        println!(
            "{:>8} {:>10} {:>8} {:>12.1} {:>10.1} {:>14.1}",
            account.name,
            rows,
            slices,
            refresh_s * 1000.0,
            full_s / refresh_s,
            seen * 1000.0
        );
        ratios.push(full_s / refresh_s);
        visible.push(seen);
    }
    let _ = stop.send(true);
    let _ = refresher.await;
    // The updated engine against one loaded whole now: every account's March, exact.
    let fresh = open_billing(Arc::clone(&store_a)).await?;
    let want = fresh
        .report(&admin, &per_account)
        .await
        .map_err(|e| e.to_string())?;
    for (name, r) in [("writer", &a), ("replica 2", &b)] {
        if r.report(&admin, &per_account)
            .await
            .map_err(|e| e.to_string())?
            != want
        {
            return Err(format!(
                "the {name}'s updated engine differs from a whole load"
            ));
        }
    }
    // The cost of answering from layers: the same varied queries (as varied_load.sh draws
    // them) on the writer's layered engine and on one loaded whole, one at a time.
    fresh.warm_up().await.map_err(|e| e.to_string())?;
    let mix = varied_queries(300);
    let layers = a.warm_info().map_or(0, |w| w.layers);
    let mut times = [0.0f64; 2];
    for _ in 0..2 {
        for (i, b) in [&fresh, &a].into_iter().enumerate() {
            let t = Instant::now();
            for q in &mix {
                match b.report(&admin, q).await {
                    Ok(_) | Err(cloudbill_service::ServiceError::Query(_)) => {}
                    Err(e) => return Err(e.to_string()),
                }
            }
            let s = t.elapsed().as_secs_f64();
            times[i] = if times[i] == 0.0 { s } else { times[i].min(s) };
        }
    }
    println!(
        "{} varied queries: whole engine {:.0} ms, engine with {layers} layer(s) {:.0} ms ({:.2}×)",
        mix.len(),
        times[0] * 1000.0,
        times[1] * 1000.0,
        times[1] / times[0]
    );
    ratios.sort_by(f64::total_cmp);
    visible.sort_by(f64::total_cmp);
    println!(
        "refresh ÷ whole load: worst {:.1}× cheaper (goal ≥ 20×); second replica answers with the change after at most {:.0} ms (goal ≤ 1,000 ms); every account's March equal to a whole load",
        ratios.first().copied().unwrap_or(0.0),
        visible.last().copied().unwrap_or(0.0) * 1000.0
    );
    Ok(())
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default()
}

/// The account's March total (one currency in the generated data).
async fn total_of(b: &Billing, q: &Query, account: &str) -> Result<Decimal, String> {
    let r = b
        .report(&Principal::Admin, q)
        .await
        .map_err(|e| e.to_string())?;
    Ok(r.results
        .iter()
        .filter(|row| row.group.get("service_account").map(String::as_str) == Some(account))
        .flat_map(|row| row.total.iter().map(|t| t.cost))
        .sum())
}

/// Copies the SQLite store's catalog and segments into an empty PostgreSQL database (once).
async fn fill_postgres(from: &Arc<dyn Store>, to: &Arc<dyn Store>) -> Result<(), String> {
    let src = open_billing(Arc::clone(from)).await?;
    let dst = open_billing(Arc::clone(to)).await?;
    let admin = Principal::Admin;
    if !dst
        .accounts(&admin)
        .await
        .map_err(|e| e.to_string())?
        .is_empty()
    {
        return Ok(());
    }
    let t = Instant::now();
    dst.set_billing(&admin, true)
        .await
        .map_err(|e| e.to_string())?;
    for p in src.projects(&admin).await.map_err(|e| e.to_string())? {
        dst.create_project(&admin, p.name.as_str(), None)
            .await
            .map_err(|e| e.to_string())?;
    }
    let projects = src.projects(&admin).await.map_err(|e| e.to_string())?;
    let domain_src = src.domain().await.map_err(|e| e.to_string())?.id;
    let domain_dst = dst.domain().await.map_err(|e| e.to_string())?.id;
    let span = DateRange::new(date(2000, 1, 1), date(2100, 1, 1)).map_err(|e| e.to_string())?;
    for account in src.accounts(&admin).await.map_err(|e| e.to_string())? {
        let project = projects
            .iter()
            .find(|p| p.id == account.project)
            .map(|p| p.name.to_string());
        let copy = dst
            .add_account(
                &admin,
                NewAccount {
                    name: account.name.to_string(),
                    provider: "file".into(),
                    project,
                    settings: cloudbill_core::Settings::default(),
                },
                false,
            )
            .await
            .map_err(|e| e.to_string())?;
        let mut parts = Vec::new();
        from.for_each_slice(
            domain_src,
            &[cloudbill_store::DataChange::Account(account.id)],
            &mut |_, blob: &[u8]| {
                parts.push(blob.to_vec());
                true
            },
        )
        .await
        .map_err(|e| e.to_string())?;
        let (tx, mut rx) = tokio::sync::mpsc::channel(4);
        let job = SyncJob::running(domain_dst, copy.id, JobKind::Import, span, Utc::now());
        to.save_job(&job).await.map_err(|e| e.to_string())?;
        let feed = tokio::spawn(async move {
            for blob in parts {
                let Ok(p) = cloudbill_columnar::EncodedPartition::from_bytes(blob) else {
                    return;
                };
                if tx.send(Chunk::Partition(p)).await.is_err() {
                    return;
                }
            }
            let _ = tx.send(Chunk::End).await;
        });
        to.replace_window_streamed(domain_dst, copy.id, job.id, None, &mut rx)
            .await
            .map_err(|e| e.to_string())?;
        let _ = feed.await;
    }
    println!(
        "PostgreSQL filled from the SQLite store in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `n` queries drawn as `bench/varied_load.sh` draws them (a fixed seed): a range in 2025,
/// granularity, 0–3 group-by keys, a project filter half the time.
pub(crate) fn varied_queries(n: usize) -> Vec<Query> {
    let mut seed: u64 = 0x5eed;
    let mut next = |m: u64| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) % m
    };
    let keys = [
        GroupKey::Project,
        GroupKey::ServiceAccount,
        GroupKey::Service,
        GroupKey::Region,
        GroupKey::CloudAccount,
        GroupKey::UsageType,
    ];
    (0..n)
        .map(|_| {
            let start =
                date(2025, 1, 1) + chrono::Duration::days(i64::try_from(next(365)).unwrap_or(0));
            let end = (start + chrono::Duration::days(i64::try_from(next(365) + 1).unwrap_or(1)))
                .min(date(2026, 1, 1));
            let days = (end - start).num_days();
            let g = next(10);
            let granularity = if days <= 92 && g < 5 {
                Granularity::Daily
            } else if g == 9 {
                Granularity::Yearly
            } else {
                Granularity::Monthly
            };
            let mut q = Query::new(
                DateRange::new(start, end).unwrap_or_else(|_| DateRange::day(start)),
                granularity,
            );
            q.max_cells = Some(50_000);
            let mut group_by = Vec::new();
            for _ in 0..next(4) {
                let k = keys[usize::try_from(next(6)).unwrap_or(0)].clone();
                if !group_by.contains(&k) {
                    group_by.push(k);
                }
            }
            q.group_by = group_by;
            if next(2) == 0 {
                q.filters
                    .insert(GroupKey::Project, vec![format!("project-{:04}", next(25))]);
            }
            q
        })
        .collect()
}
