//! `cloudbill-server`: reads flags, opens the store, starts the scheduler and serves.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use cloudbill_core::TokenRole;
use cloudbill_service::{BillingConfig, NoProgress, Principal, SchedulerConfig};

/// Serve the cloudbill REST API and billing dashboard.
#[derive(Debug, Parser)]
#[command(name = "cloudbill-server", version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "CLOUDBILL_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Database: sqlite://PATH or postgres://… [default: a SQLite file in the data directory]
    #[arg(long, env = "CLOUDBILL_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// The default domain (tenant): created if missing and warmed at start. Every domain is
    /// served; a request acts in its token's domain.
    #[arg(long, env = "CLOUDBILL_DOMAIN", default_value = "default")]
    domain: String,
    /// Memory for the warm engines of all domains together, in MiB; past it the least
    /// recently used domains' engines are dropped (reloaded on their next report).
    #[arg(long, env = "CLOUDBILL_ENGINE_MEMORY_MB", default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..=1_048_576))]
    engine_memory_mb: u64,
    /// Do not run the sync scheduler.
    #[arg(long)]
    no_scheduler: bool,
    /// Seconds one request may take before it is stopped (503).
    #[arg(long, env = "CLOUDBILL_REQUEST_TIMEOUT_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    request_timeout_secs: u64,
    /// Connections open at once; past it a new connection is closed at once.
    #[arg(long, env = "CLOUDBILL_MAX_CONNECTIONS", default_value_t = 512, value_parser = clap::value_parser!(u16).range(1..))]
    max_connections: u16,
    /// Seconds a client has to send a request's headers (an idle keep-alive connection closes
    /// after as long).
    #[arg(long, env = "CLOUDBILL_HEADER_TIMEOUT_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=600))]
    header_timeout_secs: u64,
    /// Seconds shutdown waits for requests under way.
    #[arg(long, env = "CLOUDBILL_SHUTDOWN_GRACE_SECS", default_value_t = 20, value_parser = clap::value_parser!(u64).range(0..=600))]
    shutdown_grace_secs: u64,
    /// Memory each domain's answer cache may hold, in MiB (answers over 1 MiB are never
    /// cached); past it the cache starts over.
    #[arg(long, env = "CLOUDBILL_ANSWER_CACHE_MB", default_value_t = 64, value_parser = clap::value_parser!(u64).range(0..=65_536))]
    answer_cache_mb: u64,
    /// The most amounts (each period's and each total) one report answer holds; a bigger one
    /// is refused with 422 `answer_too_large`, saying how to page it.
    #[arg(long, env = "CLOUDBILL_MAX_ANSWER_CELLS", default_value_t = cloudbill_web::DEFAULT_MAX_ANSWER_CELLS, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    max_answer_cells: u64,
    /// Hours between scheduled syncs.
    #[arg(long, env = "CLOUDBILL_SYNC_EVERY_HOURS", default_value_t = 6)]
    sync_every_hours: u64,
    /// Seconds between scheduled syncs, instead of hours (small set-ups and tests).
    #[arg(long, env = "CLOUDBILL_SYNC_EVERY_SECS", conflicts_with = "sync_every_hours", value_parser = clap::value_parser!(u64).range(1..))]
    sync_every_secs: Option<u64>,
    /// The first scheduled round starts after a random delay up to this many seconds, so
    /// replicas started together do not call the provider at once.
    #[arg(long, env = "CLOUDBILL_SYNC_JITTER_SECS", default_value_t = 300)]
    sync_jitter_secs: u64,
    /// Start the built-in Hyperbilling simulator, set up the demo domain, sync three months,
    /// and print an admin token.
    #[arg(long)]
    demo: bool,
}

async fn shutdown_signal(tx: tokio::sync::watch::Sender<bool>) {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
    let _ = tx.send(true);
}

#[allow(clippy::too_many_lines)] // Start-up in order: simulator, store, service, listener, demo, scheduler, serve.
async fn run(args: Args) -> Result<(), String> {
    let simulator = if args.demo {
        Some(
            cloudbill_demo::start_simulator()
                .await
                .map_err(|e| format!("cannot start the simulator: {e}"))?,
        )
    } else {
        None
    };
    let url = if args.demo && args.database_url.is_none() {
        let path = cloudbill_store::default_data_dir().join("server-demo.db");
        for suffix in ["", "-wal", "-shm"] {
            let mut p = path.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
        format!("sqlite://{}", path.display())
    } else {
        cloudbill_compose::database_url(args.database_url.as_deref(), "cloudbill.db")
    };
    let billing = cloudbill_compose::open(cloudbill_compose::Settings {
        database_url: url.clone(),
        domain: args.domain.clone(),
        create: true,
        config: BillingConfig {
            warm_engine: true,
            answer_cache_bytes: usize::try_from(args.answer_cache_mb << 20).unwrap_or(usize::MAX),
            deliver_in_background: true,
            ..BillingConfig::default()
        },
        providers: Vec::new(),
    })
    .await
    .map_err(|e| e.to_string())?;

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;

    if let Some(sim) = &simulator {
        let report = cloudbill_demo::populate(
            &billing,
            &sim.endpoint(),
            cloudbill_demo::demo_range(),
            &NoProgress,
        )
        .await
        .map_err(|e| format!("demo set-up failed: {e}"))?;
        for o in &report.outcomes {
            eprintln!(
                "demo sync {}: {}{}",
                o.account,
                o.state.as_str(),
                o.error
                    .as_ref()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default()
            );
        }
        let (_, token) = billing
            .create_token(&Principal::Admin, TokenRole::Admin, None, "demo admin")
            .await
            .map_err(|e| e.to_string())?;
        println!("cloudbill dashboard: http://{addr}/  (log in with the admin token below)");
        println!("admin token: {token}");
        println!(
            "API example: curl -H 'Authorization: Bearer {token}' http://{addr}/api/v1/billing"
        );
    } else {
        println!(
            "cloudbill-server listening on http://{addr}/ (database {})",
            cloudbill_store::redacted_url(&url)
        );
    }

    let tenants = cloudbill_service::Tenants::new(
        billing.clone(),
        usize::try_from(args.engine_memory_mb << 20).unwrap_or(usize::MAX),
    );
    let mut state = cloudbill_web::AppState::with_tenants(tenants.clone());
    state.request_timeout = std::time::Duration::from_secs(args.request_timeout_secs);
    state.max_answer_cells = args.max_answer_cells;
    // Not ready until the warm engine is loaded: a load balancer sends no traffic to a replica
    // that would answer its first reports slowly.
    state
        .ready
        .store(false, std::sync::atomic::Ordering::Release);
    {
        let (billing, ready) = (billing.clone(), state.ready.clone());
        tokio::spawn(async move {
            if let Err(e) = billing.warm_up().await {
                tracing::warn!(error = %e, "engine warm-up failed; reports load it on demand");
            }
            ready.store(true, std::sync::atomic::Ordering::Release);
        });
    }
    let (tx, rx) = tokio::sync::watch::channel(false);
    let scheduler = if args.no_scheduler {
        None
    } else {
        let tenants = tenants.clone();
        let config = SchedulerConfig {
            cadence: std::time::Duration::from_secs(
                args.sync_every_secs
                    .unwrap_or(args.sync_every_hours.max(1) * 3600),
            ),
            jitter: std::time::Duration::from_secs(args.sync_jitter_secs),
        };
        let rx = rx.clone();
        let metrics = state.metrics.clone();
        Some(tokio::spawn(async move {
            tenants.run_scheduler(config, rx, metrics.as_ref()).await;
        }))
    };
    // Notification delivery: retries, and events queued by processes that could not send.
    let delivery = {
        let tenants = tenants.clone();
        let rx = rx.clone();
        tokio::spawn(async move {
            tenants
                .run_delivery(std::time::Duration::from_secs(2), rx)
                .await;
        })
    };
    // Other replicas' commits: their domains' warm engines reload as soon as announced.
    let refresher = {
        let tenants = tenants.clone();
        let rx = rx.clone();
        tokio::spawn(async move {
            tenants
                .run_refresher(std::time::Duration::from_secs(1), rx)
                .await;
        })
    };
    let mut stop = rx.clone();
    let app = cloudbill_web::app(state);
    let limits = cloudbill_web::ServeLimits {
        max_connections: usize::from(args.max_connections),
        header_read_timeout: std::time::Duration::from_secs(args.header_timeout_secs),
        shutdown_grace: std::time::Duration::from_secs(args.shutdown_grace_secs),
    };
    tokio::spawn(shutdown_signal(tx));
    cloudbill_web::serve(listener, app, limits, async move {
        let _ = stop.wait_for(|v| *v).await;
    })
    .await;
    if let Some(task) = scheduler {
        let _ = task.await;
    }
    let _ = delivery.await;
    let _ = refresher.await;
    drop(simulator);
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=error"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}
