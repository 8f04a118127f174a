//! `fleet bench`: measures the setup chain against the raw JetStream
//! ceiling, and the bridge's fan-out to dashboards, and prints one JSON
//! report on stdout.

use std::time::Duration;

use anyhow::Context as _;
use fleet_bench::{BridgeServices, FullServices, Plan, Process, Scenario, Services};
use tokio_util::sync::CancellationToken;

use crate::config::Config;

/// What `fleet bench` was asked to measure.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Scenarios, comma separated: raw (plain JetStream, the ceiling), noop
    /// (the fleet's runtime, no business logic), full (the real steps),
    /// sync-only (scheduled syncs of existing connections), bridge-tenants (10,000 dashboards of 1,000 tenants on one `fleet
    /// bridge` process), bridge-broadcast (2,000 dashboards of one
    /// tenant), sync-full (a full sync of one large simulated site) and
    /// sync-incremental (that, then an incremental sync after 1 % changed).
    #[arg(
        long,
        value_delimiter = ',',
        default_values = ["raw", "noop", "full", "sync-only", "bridge-tenants", "bridge-broadcast", "sync-incremental"]
    )]
    scenarios: Vec<Scenario>,
    /// Chains kept in flight for the raw and no-op chains.
    #[arg(long, default_value_t = 500)]
    in_flight: usize,
    /// Chains kept in flight for the full chain, and each of its steps'
    /// concurrency. Lower than for the others: Vault, PostgreSQL and the
    /// provider saturate the machine long before, and a deeper queue only
    /// adds latency and, past the pool's acquire timeout, retries.
    #[arg(long, default_value_t = 32)]
    full_in_flight: usize,
    /// Chains started per second in the full chain's paced run.
    #[arg(long, default_value_t = 500)]
    paced_rate: u32,
    /// Seconds of warm-up before each measured window.
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    /// Seconds each loaded run is measured.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Seconds each one-chain-at-a-time run is measured.
    #[arg(long, default_value_t = 5)]
    alone: u64,
    /// A server process whose CPU time the report shows apart, with its
    /// child processes; repeatable.
    #[arg(long = "cpu", value_name = "NAME=PID", value_parser = parse_process)]
    cpu: Vec<Process>,
    /// Posts of the simulated site the sync scenarios sync.
    #[arg(long, default_value_t = 100_000)]
    sync_records: u32,
    /// Connections sync-only sets up first and then syncs in turn (at
    /// least --full-in-flight).
    #[arg(long, default_value_t = 1000)]
    sync_only_connections: usize,
}

/// Runs the benchmark on the configured servers and prints its report.
pub(crate) async fn run(
    args: Args,
    config: Config,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let bridge = if args.scenarios.iter().any(|s| s.is_bridge()) {
        Some(BridgeServices {
            program: std::env::current_exe()
                .context("failed to find the fleet binary to run the bridge from")?,
            database: config
                .database
                .clone()
                .context("FLEET_DATABASE__URL is required for the bridge scenarios")?,
        })
    } else {
        None
    };
    let full = if args.scenarios.iter().any(|s| s.needs_full_services()) {
        Some(FullServices {
            vault: config.vault.context(
                "FLEET_VAULT__ADDR and FLEET_VAULT__AUTH__* are required for the full chain",
            )?,
            database: config
                .database
                .context("FLEET_DATABASE__URL is required for the full chain")?,
            connectors: config.connectors,
        })
    } else {
        None
    };
    let services = Services {
        nats: config.nats,
        full,
        bridge,
    };
    let plan = Plan {
        scenarios: args.scenarios,
        in_flight: args.in_flight,
        full_in_flight: args.full_in_flight,
        paced_rate: args.paced_rate,
        warmup: Duration::from_secs(args.warmup),
        duration: Duration::from_secs(args.duration),
        alone: Duration::from_secs(args.alone),
        cpu: args.cpu,
        sync_records: args.sync_records,
        sync_only_connections: args.sync_only_connections,
    };
    // Boxed: the report it builds up is large.
    let report = Box::pin(fleet_bench::run(&plan, &services, shutdown)).await?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

fn parse_process(value: &str) -> Result<Process, String> {
    let (name, pid) = value
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=PID, got {value:?}"))?;
    let pid = pid
        .parse()
        .map_err(|e| format!("invalid process id {pid:?}: {e}"))?;
    Ok(Process {
        name: name.to_owned(),
        pid,
    })
}
