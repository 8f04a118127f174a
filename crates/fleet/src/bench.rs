//! `fleet bench`: measures the setup chain against the raw JetStream
//! ceiling, and the bridge's fan-out to dashboards, and prints one JSON
//! report on stdout.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use fleet_bench::{BridgeServices, FullServices, Plan, Process, Scenario, Services, Side};
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

/// What `fleet bench-compare` was asked to compare.
#[derive(Debug, clap::Args)]
pub(crate) struct CompareArgs {
    /// A directory with `current/<scenario>.json` and
    /// `baseline/<scenario>.json`, the reports of each scenario's run by
    /// each build, and `baseline/<scenario>.skipped`, why the baseline did
    /// not run a scenario.
    dir: PathBuf,
    /// The git revision of this run's build.
    #[arg(long)]
    current_revision: String,
    /// The git revision of the baseline's build.
    #[arg(long)]
    baseline_revision: String,
    /// An option the baseline's runs went without, because its `fleet
    /// bench` does not have it; repeatable.
    #[arg(long = "without-option", value_name = "OPTION")]
    without_options: Vec<String>,
}

/// Prints this run's reports and the baseline's side by side, with ratios.
pub(crate) fn compare(args: CompareArgs) -> anyhow::Result<()> {
    let current = Side {
        revision: args.current_revision,
        reports: reports(&args.dir.join("current"))?,
    };
    let baseline_dir = args.dir.join("baseline");
    let baseline = Side {
        revision: args.baseline_revision,
        reports: reports(&baseline_dir)?,
    };
    let mut skipped = BTreeMap::new();
    for (scenario, path) in files(&baseline_dir, "skipped")? {
        let reason = std::fs::read_to_string(&path)
            .with_context(|| format!("failed to read {}", path.display()))?;
        skipped.insert(scenario, reason.trim().to_owned());
    }
    let comparison = fleet_bench::compare(current, baseline, skipped, args.without_options);
    println!("{}", serde_json::to_string_pretty(&comparison)?);
    Ok(())
}

/// The JSON reports in `dir`.
fn reports(dir: &Path) -> anyhow::Result<Vec<serde_json::Value>> {
    files(dir, "json")?
        .into_iter()
        .map(|(_, path)| {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("failed to read {}", path.display()))?;
            serde_json::from_str(&text)
                .with_context(|| format!("{} is not a JSON report", path.display()))
        })
        .collect()
}

/// The files of `dir` named `<stem>.<extension>`, by stem; none when `dir`
/// does not exist.
fn files(dir: &Path, extension: &str) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("failed to read {}", dir.display())),
    };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry
            .with_context(|| format!("failed to read {}", dir.display()))?
            .path();
        if path.extension().and_then(|e| e.to_str()) == Some(extension)
            && let Some(stem) = path.file_stem().and_then(|s| s.to_str())
        {
            files.push((stem.to_owned(), path.clone()));
        }
    }
    files.sort();
    Ok(files)
}
