//! `cloudbill-bench anomalies DIR`: anomaly detection over the 1M-record store that
//! `cloudbill-bench store DIR` leaves in `DIR/cloudbill.db` (200 accounts × 20 services × 365
//! days), through the service as the server runs it (warm engine):
//!
//! - the default monitor (domain × service) run over its window, first (anomalies written) and
//!   again (nothing changes);
//! - on-demand detection of the whole year split by service, with and without explanations;
//! - the incremental run after an import of one account's day: the import with the monitors
//!   against the same import with none (the difference is the monitors' share).

use std::sync::Arc;
use std::time::Instant;

use cloudbill_core::{DateRange, NaiveDate};
use cloudbill_provider::ProviderRegistry;
use cloudbill_service::{
    AnomalyRequest, BillFormat, BillSource, Billing, BillingConfig, ImportOptions, Principal,
};
use cloudbill_store::{Cipher, SqliteStore};

use crate::{best_of_async, peak_rss_kib};

pub(crate) fn run(dir: &str) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(run_async(dir))
}

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap_or_default()
}

/// A one-day bill of the first account: its 2025-12-30 spend, every cost × `factor`.
fn one_day_bill(dir: &str, factor: u32) -> Result<Vec<u8>, String> {
    let text = std::fs::read_to_string(format!("{dir}/focus.csv")).map_err(|e| e.to_string())?;
    let mut lines = text.lines();
    let header = lines.next().ok_or("empty focus.csv")?;
    let account = lines
        .next()
        .and_then(|l| l.split(',').nth(1))
        .ok_or("no rows")?
        .to_owned();
    let mut out = format!("{header}\n");
    for line in text.lines().skip(1) {
        let cells: Vec<&str> = line.split(',').collect();
        if cells.get(1) == Some(&account.as_str()) && cells.get(2) == Some(&"2025-12-30T00:00:00Z")
        {
            let mut cells: Vec<String> = cells.iter().map(|c| (*c).to_owned()).collect();
            for i in [4, 5] {
                let v: cloudbill_core::Decimal = cells[i].parse().map_err(|_| "bad cost")?;
                cells[i] = (v * cloudbill_core::Decimal::from(factor)).to_string();
            }
            out.push_str(&cells.join(","));
            out.push('\n');
        }
    }
    Ok(out.into_bytes())
}

#[allow(clippy::too_many_lines)] // One benchmark, printed in order.
async fn run_async(dir: &str) -> Result<(), String> {
    let db = format!("{dir}/cloudbill.db");
    if !std::path::Path::new(&db).exists() {
        return Err(format!(
            "{db} is missing: run `cloudbill-bench store {dir}` first"
        ));
    }
    let store = Arc::new(
        SqliteStore::open(
            &format!("sqlite://{db}"),
            Cipher::from_hex(&"ab".repeat(32)).map_err(|e| e.to_string())?,
        )
        .await
        .map_err(|e| e.to_string())?,
    );
    let config = BillingConfig {
        warm_engine: true,
        today: Some(day("2026-01-01")),
        ..BillingConfig::default()
    };
    let billing = Billing::open(store, ProviderRegistry::new(), "default", config)
        .await
        .map_err(|e| e.to_string())?;
    let admin = Principal::Admin;
    billing
        .set_billing(&admin, true)
        .await
        .map_err(|e| e.to_string())?;
    let year = DateRange::new(day("2025-01-29"), day("2026-01-01")).map_err(|e| e.to_string())?;

    // Warm the engine (the server does it once per data version).
    let t = Instant::now();
    let mut warm = AnomalyRequest::new(year);
    warm.explain = false;
    billing
        .anomalies(&admin, &warm)
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "warm engine load (once per data version): {:.3} s",
        t.elapsed().as_secs_f64()
    );

    // The default monitor over its window: first run writes the anomalies, the next none.
    let t = Instant::now();
    let first = billing
        .run_all_monitors(&admin)
        .await
        .map_err(|e| e.to_string())?;
    let first_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let again = billing
        .run_all_monitors(&admin)
        .await
        .map_err(|e| e.to_string())?;
    let again_s = t.elapsed().as_secs_f64();
    println!(
        "default monitor (domain × service, last 35 days, explained): first run {first_s:.3} s ({} opened, {} closed), next run {again_s:.3} s ({} changed)",
        first.opened, first.closed, again.opened + again.closed
    );

    // The whole year on demand.
    let mut detect_only = AnomalyRequest::new(year);
    detect_only.explain = false;
    detect_only.all_states = true;
    let (detect_s, found) = best_of_async(3, || billing.anomalies(&admin, &detect_only)).await;
    let found = found.map_err(|e| e.to_string())?;
    let mut explained = AnomalyRequest::new(year);
    explained.all_states = true;
    let (explain_s, with) = best_of_async(3, || billing.anomalies(&admin, &explained)).await;
    let with = with.map_err(|e| e.to_string())?;
    println!(
        "whole year by service ({} anomalies): detection {detect_s:.3} s, explained {explain_s:.3} s (goal ≤ 0.5 s)",
        found.len()
    );
    assert_eq!(found.len(), with.len());
    // The largest of the explanation's three child reports: daily service × account.
    let mut q = cloudbill_service::Query::new(
        DateRange::new(day("2025-01-01"), day("2026-01-01")).map_err(|e| e.to_string())?,
        cloudbill_core::Granularity::Daily,
    );
    q.group_by = vec![
        cloudbill_service::GroupKey::Service,
        cloudbill_service::GroupKey::ServiceAccount,
    ];
    let (split_s, split) = best_of_async(3, || billing.report(&admin, &q)).await;
    let split = split.map_err(|e| e.to_string())?;
    println!(
        "  of which the daily service × account report ({} groups, {} buckets): {split_s:.3} s (answer cache: the first of three computes)",
        split.results.len(),
        split.results.iter().map(|r| r.billing_data.len()).sum::<usize>()
    );

    // Incremental: an import of one account's day (every cost ×3) with the monitor, against
    // the same import (×4: it changes the day again) without monitors.
    let bill = one_day_bill(dir, 3)?;
    let account = String::from_utf8_lossy(&bill)
        .lines()
        .nth(1)
        .and_then(|l| l.split(',').nth(1).map(str::to_owned))
        .ok_or("no row in the day bill")?;
    let import = |bytes: Vec<u8>| {
        let billing = billing.clone();
        let account = account.clone();
        async move {
            let source: BillSource = Arc::new(move || {
                Ok(Box::new(std::io::Cursor::new(bytes.clone())) as Box<dyn std::io::Read + Send>)
            });
            let t = Instant::now();
            billing
                .import(
                    &Principal::Admin,
                    &account,
                    BillFormat::Focus,
                    source,
                    "day.csv",
                    ImportOptions::default(),
                )
                .await
                .map_err(|e| e.to_string())?;
            Ok::<f64, String>(t.elapsed().as_secs_f64())
        }
    };
    let with_monitor = import(bill).await?;
    let kept = billing
        .kept_anomalies(&admin, None, true)
        .await
        .map_err(|e| e.to_string())?
        .len();
    billing
        .delete_monitor(&admin, "default")
        .await
        .map_err(|e| e.to_string())?;
    let without = import(one_day_bill(dir, 4)?).await?;
    println!(
        "import of one account's day: {with_monitor:.3} s with the default monitor's incremental run ({kept} anomalies kept), {without:.3} s without monitors: the run costs {:.3} s",
        with_monitor - without
    );
    // Put the default monitor back for the next run of this benchmark.
    billing
        .set_billing(&admin, true)
        .await
        .map_err(|e| e.to_string())?;
    // Budgets: one per project (the generator's projects), each with an actual and a forecast
    // threshold, evaluated over the warm engine as after a sync, on 2025-12-20 (a month with
    // 19 days of data: forecasts fitted on 90 days of history).
    let store = billing.store().clone();
    let billing = Billing::open(
        store,
        ProviderRegistry::new(),
        "default",
        BillingConfig {
            warm_engine: true,
            today: Some(day("2025-12-20")),
            ..BillingConfig::default()
        },
    )
    .await
    .map_err(|e| e.to_string())?;
    let projects = billing.projects(&admin).await.map_err(|e| e.to_string())?;
    billing
        .add_channel(
            &admin,
            cloudbill_service::NewChannel {
                name: "bench".into(),
                spec: cloudbill_service::ChannelSpec::Webhook {
                    url: "http://127.0.0.1:9/bench".into(),
                    secret: cloudbill_core::ClientSecret::new("whsec-bench-0123456789")
                        .map_err(|e| e.to_string())?,
                },
            },
        )
        .await
        .map_err(|e| e.to_string())?;
    for p in &projects {
        billing
            .create_budget(
                &admin,
                cloudbill_service::NewBudget {
                    name: format!("b-{}", p.name),
                    amount: "1000000".into(),
                    currency: "USD".into(),
                    project: Some(p.id.to_string()),
                    notifications: ["actual:80%", "forecast:100%"]
                        .iter()
                        .map(|t| cloudbill_service::NewNotification {
                            threshold: (*t).into(),
                            channels: vec![],
                        })
                        .collect(),
                    channels: vec!["bench".into()],
                    ..cloudbill_service::NewBudget::default()
                },
            )
            .await
            .map_err(|e| e.to_string())?;
    }
    // The engine first (its load is not the budgets' cost), then one evaluation with every
    // answer computed, then repeated ones (the warm engine's answer cache).
    let mut warm = AnomalyRequest::new(year);
    warm.explain = false;
    billing
        .anomalies(&admin, &warm)
        .await
        .map_err(|e| e.to_string())?;
    let t = Instant::now();
    billing
        .evaluate_all_budgets(&admin)
        .await
        .map_err(|e| e.to_string())?;
    let first_eval_s = t.elapsed().as_secs_f64();
    let (eval_s, eval) = best_of_async(3, || billing.evaluate_all_budgets(&admin)).await;
    let eval = eval.map_err(|e| e.to_string())?;
    let (status_s, status) = best_of_async(3, || billing.budget_status(&admin, None, None)).await;
    let status = status.map_err(|e| e.to_string())?;
    println!(
        "budgets: {} evaluated in {first_eval_s:.3} s uncached, {eval_s:.3} s again (a forecast and an actual each; {} events), status of {} {status_s:.3} s",
        eval.budgets,
        eval.events.len(),
        status.len()
    );
    for p in &projects {
        billing
            .delete_budget(&admin, &format!("b-{}", p.name))
            .await
            .map_err(|e| e.to_string())?;
    }
    billing
        .remove_channel(&admin, "bench")
        .await
        .map_err(|e| e.to_string())?;
    println!("peak RSS {:.0} MiB", peak_rss_kib() as f64 / 1024.0);
    Ok(())
}
