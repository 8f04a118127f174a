//! The benchmark behind `fleet bench`: how many setup chains per second the
//! fleet carries and how long one takes, against a raw JetStream ceiling
//! measured in the same run on the same server.
//!
//! | scenario | chain |
//! | --- | --- |
//! | [`Scenario::Raw`] (c) | 4 hops of pull, publish the next hop with its ack awaited, ack; plain async-nats |
//! | [`Scenario::Noop`] (a) | validate → save → sync → status through [`fleet_bus::Worker`], handlers that only emit the next event |
//! | [`Scenario::Full`] (b) | the real steps of `fleet-workers` with Vault, PostgreSQL and the simulated provider |
//! | [`Scenario::SyncOnly`] | scheduled syncs of connections set up before: sync → status, the steady-state load |
//! | [`Scenario::BridgeTenants`] | one `fleet bridge` process, 10,000 WebSocket clients of 1,000 tenants, 1,000 status events/s |
//! | [`Scenario::BridgeBroadcast`] | one `fleet bridge` process, 2,000 WebSocket clients of one tenant, 50 status events/s |
//! | [`Scenario::SyncFull`] | the real steps syncing one simulated WordPress site of [`Plan::sync_records`] posts |
//! | [`Scenario::SyncIncremental`] | the same, then the next sync after 1 % of the posts changed |
//!
//! Each scenario is measured at a fixed in-flight cap (a new chain starts
//! whenever one finishes), then one chain at a time; the full chain also at
//! a fixed arrival rate. A run has a warm-up whose chains are not measured,
//! then a window: throughput counts the chains that complete inside it,
//! latency covers the chains that start inside it, from the publish of the
//! first event to the final step. The [`Report`] says, per scenario, how
//! start and end are taken, where the CPU time went, and compares the
//! results with the targets.
//!
//! The full chain's scenario also runs the chain's Vault work and its
//! PostgreSQL work alone, each at the same in-flight cap ([`Parts`]): each
//! saturates the machine by itself, so together they bound what the full
//! chain can reach here.
//!
//! The runs of the full chain, its parts and `sync-only` also count the
//! servers' work per chain with the servers' own counters: the requests
//! OpenBao handled and the statements PostgreSQL executed ([`Work`]).
//!
//! The bridge scenarios measure something else: how fast status events
//! reach dashboards through one bridge process, which the bench spawns
//! from its own binary, with every client in the bench process checking
//! that it gets each event of its tenant once and in order.
//!
//! Scenarios do not share state: each creates its streams on the server
//! and deletes them after it, and refuses to start when they exist (so it
//! never touches a deployment's streams); each full-chain run writes to a
//! tenant of its own.
//!
//! What it does not do: start servers (`scripts/bench` does) or read the
//! environment (the `fleet` binary passes [`Plan`] and [`Services`]).
//!
//! [`compare`] puts the reports of two builds side by side, for
//! `scripts/bench --baseline <rev>`.
//!
//! Start from [`run`], [`Plan`] and [`Report`].

#![warn(missing_docs)]

mod bridge;
mod compare;
mod counters;
mod cpu;
mod driver;
mod error;
mod full;
mod gateway;
mod inflight;
mod noop;
mod parts;
mod raw;
mod report;
mod rig;
mod streams;
mod sync;
mod sync_only;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::info;

pub use compare::{Comparison, Measured, Side, compare};
pub use cpu::Process;
pub use error::Error;
pub use report::{
    BridgeProcess, BridgeReport, Connect, Cpu, Latency, Load, Machine, Part, Parts, Ratios, Report,
    Run, ScenarioReport, Scenarios, Settings, Target, Work, WorkerCounts,
};
pub use sync::{SyncMeasure, SyncReport};

use driver::{Bench, Phase};

/// One of the chains the bench measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scenario {
    /// (c) The ceiling: 4 JetStream hops in plain async-nats.
    Raw,
    /// (a) The fleet's runtime with handlers that do nothing but emit.
    Noop,
    /// (b) The real steps with Vault, PostgreSQL and the simulator.
    Full,
    /// Scheduled syncs of existing connections: sync → status.
    SyncOnly,
    /// The bridge: 10,000 dashboards of 1,000 tenants.
    BridgeTenants,
    /// The bridge: 2,000 dashboards of one tenant.
    BridgeBroadcast,
    /// A full sync of one large account.
    SyncFull,
    /// A full sync, then an incremental one after 1 % changed.
    SyncIncremental,
}

impl Scenario {
    /// Every scenario, in the order they run.
    pub const ALL: [Self; 8] = [
        Self::Raw,
        Self::Noop,
        Self::Full,
        Self::SyncOnly,
        Self::BridgeTenants,
        Self::BridgeBroadcast,
        Self::SyncFull,
        Self::SyncIncremental,
    ];

    /// The name used on the command line and in the report.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Raw => "raw",
            Self::Noop => "noop",
            Self::Full => "full",
            Self::SyncOnly => "sync-only",
            Self::BridgeTenants => "bridge-tenants",
            Self::BridgeBroadcast => "bridge-broadcast",
            Self::SyncFull => "sync-full",
            Self::SyncIncremental => "sync-incremental",
        }
    }

    /// Whether it runs the real steps, and so needs [`FullServices`].
    pub const fn needs_full_services(self) -> bool {
        matches!(
            self,
            Self::Full | Self::SyncOnly | Self::SyncFull | Self::SyncIncremental
        )
    }

    /// Whether it measures the bridge, and so needs [`BridgeServices`].
    pub const fn is_bridge(self) -> bool {
        matches!(self, Self::BridgeTenants | Self::BridgeBroadcast)
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A scenario name that is not one of [`Scenario::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown scenario {0:?}; expected raw, noop, full, sync-only, bridge-tenants, \
     bridge-broadcast, sync-full or sync-incremental"
)]
pub struct UnknownScenario(String);

impl FromStr for Scenario {
    type Err = UnknownScenario;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == value)
            .ok_or_else(|| UnknownScenario(value.to_owned()))
    }
}

/// What to measure, and how long.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Scenarios to run; each runs once, in the order of [`Scenario::ALL`].
    pub scenarios: Vec<Scenario>,
    /// Chains in flight for the raw and no-op chains; also the concurrency
    /// of each no-op step and the prefetch of each raw hop.
    pub in_flight: usize,
    /// Chains in flight for the full chain, and the concurrency of each of
    /// its steps.
    pub full_in_flight: usize,
    /// Chains started per second in the full chain's paced run.
    pub paced_rate: u32,
    /// Warm-up before each run's window.
    pub warmup: Duration,
    /// Window of the loaded runs (in-flight cap and paced).
    pub duration: Duration,
    /// Window of the one-chain-at-a-time runs.
    pub alone: Duration,
    /// Servers whose CPU time the report shows apart from this process.
    pub cpu: Vec<Process>,
    /// Posts of the simulated site the sync scenarios sync.
    pub sync_records: u32,
    /// Connections `sync-only` sets up and then syncs in turn; at least
    /// [`Plan::full_in_flight`], so that no two syncs of one connection
    /// overlap (the second would join the first).
    pub sync_only_connections: usize,
}

impl Plan {
    fn throughput(&self, in_flight: usize) -> Phase {
        Phase {
            load: Load::InFlight { chains: in_flight },
            warmup: self.warmup,
            duration: self.duration,
        }
    }

    fn alone(&self) -> Phase {
        Phase {
            load: Load::InFlight { chains: 1 },
            warmup: self.warmup,
            duration: self.alone,
        }
    }

    fn paced(&self) -> Phase {
        Phase {
            load: Load::Paced {
                per_second: self.paced_rate,
            },
            warmup: self.warmup,
            duration: self.duration,
        }
    }
}

/// Where the servers are.
#[derive(Debug, Clone)]
pub struct Services {
    /// The NATS server every scenario runs on.
    pub nats: fleet_bus::Config,
    /// What the full chain needs besides NATS; `None` when it does not run.
    pub full: Option<FullServices>,
    /// What the bridge scenarios need besides NATS; `None` when they do not
    /// run.
    pub bridge: Option<BridgeServices>,
}

/// What the bridge scenarios need besides NATS.
#[derive(Debug, Clone)]
pub struct BridgeServices {
    /// The `fleet` binary, run as `fleet bridge --listen <addr>` with this
    /// process's environment (so its `FLEET_NATS__*` and
    /// `FLEET_DATABASE__*`) and a token key of the run's own.
    pub program: std::path::PathBuf,
    /// PostgreSQL, where each run records its tenants' connections; the
    /// bridge reads them for its snapshots.
    pub database: fleet_store::Config,
}

/// What the full chain needs besides NATS.
#[derive(Debug, Clone)]
pub struct FullServices {
    /// Vault or OpenBao, where each chain's credentials are staged.
    pub vault: fleet_secrets::Config,
    /// PostgreSQL; its migrations are applied first.
    pub database: fleet_store::Config,
    /// Provider HTTP settings; plain HTTP is allowed, for the simulator.
    pub connectors: fleet_connectors::Config,
}

/// Runs the scenarios of `plan` on `services` and reports what they
/// measured; progress goes to the log.
///
/// # Errors
///
/// [`Error::MissingServices`] when the full chain is planned without
/// [`FullServices`] or a bridge scenario without [`BridgeServices`];
/// otherwise the first error of a scenario, after which
/// its streams are deleted all the same; [`Error::Interrupted`] when
/// `shutdown` is cancelled.
pub async fn run(
    plan: &Plan,
    services: &Services,
    shutdown: CancellationToken,
) -> Result<Report, Error> {
    let client = fleet_bus::connect(&services.nats)
        .await
        .map_err(Error::Connect)?;
    let nats_server = client.server_info().version;
    let counters = match &services.full {
        Some(full) if plan.scenarios.iter().any(|s| s.needs_full_services()) => {
            Some(Arc::new(counters::Counters::connect(full).await))
        }
        _ => None,
    };
    // Only the scenarios with Vault and PostgreSQL count their work.
    let uncounted = Bench {
        inflight: Arc::default(),
        cpu: Arc::new(cpu::CpuMeter::new(&plan.cpu)),
        counters: None,
        shutdown,
    };
    let bench = Bench {
        counters,
        ..uncounted.clone()
    };
    let mut scenarios = Scenarios::default();
    for scenario in Scenario::ALL
        .into_iter()
        .filter(|s| plan.scenarios.contains(s))
    {
        info!(%scenario, "Scenario starting.");
        match scenario {
            Scenario::Raw => {
                scenarios.raw = Some(raw::run(plan, &services.nats, &uncounted).await?);
            }
            Scenario::Noop => {
                scenarios.noop = Some(noop::run(plan, &services.nats, &uncounted).await?);
            }
            Scenario::Full => {
                let full = services.full.as_ref().ok_or(Error::MissingServices)?;
                scenarios.full = Some(full::run(plan, &services.nats, full, &bench).await?);
            }
            Scenario::SyncOnly => {
                let full = services.full.as_ref().ok_or(Error::MissingServices)?;
                let report = sync_only::run(plan, &services.nats, full, &bench).await?;
                scenarios.sync_only = Some(report);
            }
            Scenario::BridgeTenants => {
                let report = run_bridge(plan, services, bridge::TENANTS, &bench).await?;
                scenarios.bridge_tenants = Some(report);
            }
            Scenario::BridgeBroadcast => {
                let report = run_bridge(plan, services, bridge::BROADCAST, &bench).await?;
                scenarios.bridge_broadcast = Some(report);
            }
            Scenario::SyncFull | Scenario::SyncIncremental => {
                // sync-incremental measures the full sync too.
                if scenario == Scenario::SyncFull
                    && plan.scenarios.contains(&Scenario::SyncIncremental)
                {
                    continue;
                }
                let full = services.full.as_ref().ok_or(Error::MissingServices)?;
                let incremental = scenario == Scenario::SyncIncremental;
                let report =
                    sync::run(plan, &services.nats, full, incremental, &bench.shutdown).await?;
                scenarios.sync = Some(report);
            }
        }
    }
    Ok(Report::new(machine(), nats_server, scenarios))
}

async fn run_bridge(
    plan: &Plan,
    services: &Services,
    shape: bridge::Shape,
    bench: &Bench,
) -> Result<BridgeReport, Error> {
    let bridge = services.bridge.as_ref().ok_or(Error::MissingServices)?;
    bridge::run(
        plan,
        &services.nats,
        bridge,
        shape,
        &plan.cpu,
        &bench.shutdown,
    )
    .await
}

fn machine() -> Machine {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split_once(':'))
                .map(|(_, model)| model.trim().to_owned())
        });
    Machine {
        cores: std::thread::available_parallelism().map_or(1, usize::from),
        cpu,
        os: format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
    }
}
