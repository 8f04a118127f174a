//! `fleet worker`: runs the chosen steps until SIGTERM or SIGINT.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use fleet_events::Step;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::info;

use crate::config::Config;

/// What `fleet worker` was asked to run.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Steps to run in this process, comma separated.
    #[arg(long, value_delimiter = ',', default_values = ["validate", "save", "sync", "status", "meter", "webhook"])]
    steps: Vec<Step>,
    /// Messages each step handles at once in this process.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Seconds in-flight work may run after a shutdown signal.
    #[arg(long, default_value_t = 20)]
    grace_seconds: u64,
    /// Syncs of one tenant that run at once, across every worker process;
    /// the tenant's further sync requests wait for one to end.
    #[arg(long, env = "FLEET_MAX_SYNCS_PER_TENANT", default_value_t = 4)]
    max_syncs_per_tenant: u32,
    /// Seconds between the scheduled syncs of every newly set-up
    /// connection, instead of its catalog entry's
    /// `default_sync_interval_secs`; 0 schedules none.
    #[arg(long, env = "FLEET_SYNC_INTERVAL_SECONDS")]
    sync_interval_seconds: Option<u64>,
    /// Seconds without a successful provider call (a sync or a check)
    /// after which a synced connection's grant is checked with the
    /// provider's validate call; 0 runs no checks. Runs with the sync step.
    #[arg(long, env = "FLEET_HEALTH_CHECK_SECONDS", default_value_t = 3600)]
    health_check_seconds: u64,
    /// Failed sync runs and health checks in a row that make a connection
    /// degraded (a `connector.health.changed` event).
    #[arg(long, env = "FLEET_DEGRADED_AFTER_FAILURES", default_value_t = 3,
          value_parser = clap::value_parser!(u32).range(1..))]
    degraded_after_failures: u32,
    /// Address to serve /healthz, /readyz and /metrics on; none without it.
    #[arg(long, env = "FLEET_WORKER_LISTEN")]
    listen: Option<std::net::SocketAddr>,
}

/// Connects to NATS, Vault and Postgres, provisions the streams, and runs
/// the steps until `shutdown`; then waits for in-flight work and drains.
pub(crate) async fn run(
    args: Args,
    config: Config,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let client = fleet_bus::connect(&config.nats).await?;
    let js = async_nats::jetstream::new(client.clone());
    config.nats.definitions()?.provision(&js).await?;
    let vault = config
        .vault
        .context("FLEET_VAULT__ADDR and FLEET_VAULT__AUTH__* are required to run workers")?;
    let database = config
        .database
        .context("FLEET_DATABASE__URL is required to run workers")?;
    let secrets = fleet_secrets::Client::connect(vault).await?;
    let store = fleet_store::Store::connect(&database).await?;
    let ops = match args.listen {
        Some(listen) => {
            let readiness = crate::ops::nats(fleet_serve::ops::Readiness::new(), &client);
            let readiness = crate::ops::vault(readiness, &secrets);
            let readiness = crate::ops::postgres(readiness, &store);
            let readiness = crate::ops::consumers(readiness, &js, &args.steps);
            let metrics = crate::ops::metrics()?;
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("failed to listen on {listen}"))?;
            info!(%listen, "Fleet worker serving /healthz, /readyz and /metrics.");
            Some((listener, fleet_serve::ops::router(readiness, Some(metrics))))
        }
        None => None,
    };
    let connectors = fleet_connectors::Registry::new(&config.connectors)?;
    let meter = match config.metering {
        Some(metering) => {
            info!(lago = metering.url.host_str().unwrap_or_default(), metric = %metering.billable_metric_code, "Usage metering to Lago is on.");
            Some(
                fleet_workers::meter::Lago::new(metering)
                    .context("failed to build the Lago client")?,
            )
        }
        None => None,
    };
    let webhooks = config
        .webhooks
        .map(|webhooks| fleet_workers::webhook::Delivery::new(webhooks, &config.connectors))
        .transpose()
        .context("failed to build the webhook client")?;
    let deps = fleet_workers::Deps {
        secrets: secrets.clone(),
        store,
        connectors: Arc::new(connectors),
        schedules: fleet_bus::Schedules::new(js.clone()),
        schedule: match args.sync_interval_seconds {
            None => fleet_workers::SyncSchedule::CatalogDefault,
            Some(0) => fleet_workers::SyncSchedule::Off,
            Some(seconds) => fleet_workers::SyncSchedule::Every(Duration::from_secs(seconds)),
        },
        meter,
        webhooks,
    };

    let tracker = TaskTracker::new();
    let renewer = secrets.renewer();
    let renewal = shutdown.clone();
    tracker.spawn(async move {
        if let Err(e) = renewer.run(renewal).await {
            tracing::error!(error.message = %e, error.cause_chain = ?e, "Vault token renewal stopped.");
        }
    });
    let settings = fleet_workers::Settings {
        concurrency: args.concurrency,
        grace: Duration::from_secs(args.grace_seconds),
        max_syncs_per_tenant: args.max_syncs_per_tenant,
        health: fleet_workers::HealthSettings {
            every: (args.health_check_seconds > 0)
                .then(|| Duration::from_secs(args.health_check_seconds)),
            degraded_after: args.degraded_after_failures,
            ..fleet_workers::HealthSettings::default()
        },
    };
    fleet_workers::spawn_steps(&js, &deps, &args.steps, settings, &tracker, &shutdown);
    if let Some((listener, routes)) = ops {
        let timeouts = fleet_serve::Timeouts {
            header_read: Duration::from_secs(10),
            idle: Duration::from_secs(60),
        };
        tracker.spawn(fleet_serve::run::<fleet_serve::Watched>(
            "worker",
            listener,
            routes,
            timeouts,
            shutdown.clone(),
        ));
        tracker.spawn(fleet_bus::gauges::watch(
            js.clone(),
            args.steps.clone(),
            fleet_bus::gauges::WATCH_EVERY,
            shutdown.clone(),
        ));
    }
    info!(steps = ?args.steps, concurrency = args.concurrency, "Fleet worker running.");
    tracker.close();
    tracker.wait().await;
    client
        .drain()
        .await
        .context("failed to drain the NATS connection")?;
    info!("Fleet worker stopped.");
    Ok(())
}
