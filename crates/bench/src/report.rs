//! The report: one JSON object with every scenario's runs, the ratios to
//! the raw ceiling and the targets.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Everything one `fleet bench` measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The machine the run was on; the servers share it with the bench.
    pub machine: Machine,
    /// Version of the NATS server, as it announces itself.
    pub nats_server: String,
    /// Each scenario that ran.
    pub scenarios: Scenarios,
    /// Throughput of the fleet's chains over the raw ceiling's.
    pub ratios: Ratios,
    /// The targets of the benchmark, and whether this run met them.
    pub targets: Vec<Target>,
}

/// The machine the run was on.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// CPU cores available to this process.
    pub cores: usize,
    /// The CPU model, when `/proc/cpuinfo` says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
    /// Operating system and architecture.
    pub os: String,
}

/// Each scenario that ran.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Scenarios {
    /// (c) A 4-hop JetStream chain in plain async-nats: the ceiling.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw: Option<ScenarioReport>,
    /// (a) The 4 steps through the fleet's runtime with handlers that only
    /// publish the next event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub noop: Option<ScenarioReport>,
    /// (b) The real steps with Vault, PostgreSQL and the simulated provider.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub full: Option<ScenarioReport>,
    /// Scheduled syncs of existing connections: sync → status.
    #[serde(rename = "sync-only", skip_serializing_if = "Option::is_none")]
    pub sync_only: Option<ScenarioReport>,
    /// The bridge fanning status out to 10,000 dashboards of 1,000 tenants.
    #[serde(rename = "bridge-tenants", skip_serializing_if = "Option::is_none")]
    pub bridge_tenants: Option<BridgeReport>,
    /// The bridge fanning status out to 2,000 dashboards of one tenant.
    #[serde(rename = "bridge-broadcast", skip_serializing_if = "Option::is_none")]
    pub bridge_broadcast: Option<BridgeReport>,
    /// A full sync of one large account, and the incremental sync after it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sync: Option<crate::SyncReport>,
}

/// What a bridge scenario measured.
#[derive(Debug, Clone, Serialize)]
pub struct BridgeReport {
    /// The load, in words.
    pub setup: &'static str,
    /// How the figures are taken.
    pub method: &'static str,
    /// WebSocket clients, each with a session of its own.
    pub clients: usize,
    /// Tenants the clients belong to, evenly.
    pub tenants: usize,
    /// Connections of each tenant in Postgres, which its events are about.
    pub connections_per_tenant: usize,
    /// Status events published per second, the tenants in turn.
    pub events_per_s: u32,
    /// Opening every session.
    pub connect: Connect,
    /// Length of the measurement window, after the warm-up.
    pub seconds: f64,
    /// Events published, warm-up included.
    pub events_published: u64,
    /// Events published inside the window.
    pub events_in_window: u64,
    /// Receipts of the window's events by clients.
    pub deliveries: u64,
    /// Receipts due: each event of the window times the clients of its tenant.
    pub expected_deliveries: u64,
    /// `deliveries / seconds`.
    pub deliveries_per_s: f64,
    /// From the publish of an event to its receipt by a client.
    pub latency_ms: Latency,
    /// Events of their tenant that clients never received, over the whole run.
    pub missed: u64,
    /// Clients that missed at least one event.
    pub clients_missing_events: u64,
    /// Events received twice, or after a later one.
    pub duplicates: u64,
    /// Sessions the bridge closed during the run (a slow consumer's 4008).
    pub clients_closed: u64,
    /// Sessions that failed on the client's side.
    pub clients_failed: u64,
    /// The bridge process's memory and CPU.
    pub bridge: BridgeProcess,
    /// Share of one core each process used during the window, in percent:
    /// `bridge`, `clients` (the bench process), the servers named with
    /// `--cpu`, `other`, and `machine` (all cores: 200 is two busy).
    pub cpu_pct: BTreeMap<String, f64>,
}

/// Opening the sessions of a bridge scenario.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Connect {
    /// From the first connect until every client has its snapshot.
    pub seconds: f64,
    /// Sessions opened per second, snapshot included.
    pub sessions_per_s: f64,
}

impl Connect {
    pub(crate) fn new(clients: usize, took: std::time::Duration) -> Self {
        let seconds = took.as_secs_f64();
        Self {
            seconds: round3(seconds),
            sessions_per_s: round3(clients as f64 / seconds.max(f64::EPSILON)),
        }
    }
}

/// The `fleet bridge` process of a scenario.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct BridgeProcess {
    /// Resident memory once it listens, before any session (`VmRSS`), in
    /// MB (10^6 bytes).
    pub rss_idle_mb: Option<f64>,
    /// Resident memory once every session is open, before any event
    /// (`VmRSS`), in MB.
    pub rss_connected_mb: Option<f64>,
    /// Peak resident memory over the run (`VmHWM`), in MB.
    pub peak_rss_mb: Option<f64>,
    /// Share of one core it used during the window, in percent.
    pub cpu_pct: Option<f64>,
    /// CPU milliseconds it spent per 1,000 deliveries.
    pub cpu_ms_per_1000_deliveries: Option<f64>,
}

/// What one scenario measured.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioReport {
    /// What the chain is.
    pub chain: &'static str,
    /// How a chain's start and end are taken.
    pub method: &'static str,
    /// How the scenario was set up.
    pub settings: Settings,
    /// At a fixed in-flight cap: throughput and latency under load.
    pub throughput: Run,
    /// One chain at a time: the latency floor.
    pub alone: Run,
    /// At a fixed arrival rate (the full chain only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paced: Option<Run>,
    /// The chain's Vault work and PostgreSQL work, each alone (the full
    /// chain).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parts: Option<Parts>,
    /// The chain's PostgreSQL work alone, at the same in-flight cap (the
    /// `sync-only` scenario): what PostgreSQL could carry of these chains
    /// with nothing else running.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postgres_alone: Option<Part>,
    /// `throughput` over `postgres_alone`, as chains per second.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub over_postgres_alone: Option<f64>,
    /// The fleet workers' counters over all runs, by step.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub workers: BTreeMap<&'static str, WorkerCounts>,
}

/// The full chain's Vault work and PostgreSQL work, each run alone at the
/// full chain's in-flight cap, with nothing else of the chain around it.
#[derive(Debug, Clone, Serialize)]
pub struct Parts {
    /// The chain's Vault requests alone.
    pub vault: Part,
    /// The chain's PostgreSQL statements alone.
    pub postgres: Part,
    /// The most full chains per second the two could carry together on
    /// this machine with nothing else running: `1 / (1 / vault + 1 /
    /// postgres)` of their chains per second, each having saturated the
    /// machine alone. NATS, the provider and the steps' own work come on
    /// top.
    pub bound_chains_per_s: f64,
}

impl Parts {
    pub(crate) fn new(vault: Part, postgres: Part) -> Self {
        let (v, p) = (vault.run.chains_per_s, postgres.run.chains_per_s);
        let bound = if v > 0.0 && p > 0.0 {
            1.0 / (1.0 / v + 1.0 / p)
        } else {
            0.0
        };
        Self {
            vault,
            postgres,
            bound_chains_per_s: round3(bound),
        }
    }
}

/// One part of the full chain, run alone.
#[derive(Debug, Clone, Serialize)]
pub struct Part {
    /// What one chain of the part does.
    pub work: &'static str,
    /// The run, at the full chain's in-flight cap.
    #[serde(flatten)]
    pub run: Run,
}

/// How a scenario was set up.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    /// Messages each step handles at once (for the raw chain: pulled ahead
    /// per hop, each handled in its own task).
    pub worker_concurrency: usize,
    /// Connections of the PostgreSQL pool (the full chain).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_pool: Option<u32>,
    /// Records each chain syncs from the simulated site (the full chain).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub records_per_chain: Option<u32>,
}

/// A fleet worker's counters.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct WorkerCounts {
    /// Messages handled successfully.
    pub acked: u64,
    /// Messages nak'd for a retry.
    pub retried: u64,
    /// Messages given up.
    pub terminated: u64,
    /// Messages dead-lettered.
    pub dead_lettered: u64,
}

impl From<fleet_bus::WorkerStats> for WorkerCounts {
    fn from(stats: fleet_bus::WorkerStats) -> Self {
        Self {
            acked: stats.acked,
            retried: stats.retried,
            terminated: stats.terminated,
            dead_lettered: stats.dead_lettered,
        }
    }
}

/// How chains were offered during a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Load {
    /// Keep this many chains in flight: start one whenever one finishes.
    InFlight {
        /// The cap.
        chains: usize,
    },
    /// Start chains at this rate, whether earlier ones finished or not,
    /// with at most one second of arrivals in flight.
    Paced {
        /// Chains started per second.
        per_second: u32,
    },
}

/// One measured run.
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    /// How chains were offered.
    pub load: Load,
    /// Length of the measurement window, after the warm-up.
    pub seconds: f64,
    /// Chains that completed inside the window.
    pub chains: u64,
    /// `chains / seconds`.
    pub chains_per_s: f64,
    /// End-to-end latency of the chains started inside the window.
    pub latency_ms: Latency,
    /// The same latency cut at the statuses the chain publishes (the full
    /// chain): each stage runs from the previous point (the start, or the
    /// previous status's `occurred_at`) to the named status's `occurred_at`,
    /// and the last, `stored`, to the final status stored. A status stored
    /// after its chain finished is not counted, so its time goes to the
    /// next stage.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stages_ms: Vec<Stage>,
    /// Chains of the run that completed, warm-up and drain included.
    pub completed_in_run: u64,
    /// Chains that ended in a state other than the final one.
    pub failed: u64,
    /// Chains still unfinished 30 s after the window closed.
    pub incomplete: u64,
    /// Where the CPU time of the window went, per completed chain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<Cpu>,
    /// What the run's chains cost OpenBao and PostgreSQL, by their own
    /// counters (the full chain, its parts and `sync-only`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub work: Option<Work>,
    /// Connections of the run whose PostgreSQL row reads `synced` after the
    /// run (the full chain): checks the completion signal against the
    /// table, so it equals `completed_in_run`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows_synced: Option<u64>,
}

/// The servers' work per chain: what their own counters added up during a
/// run, from before its first chain started to after its last one ended,
/// divided by the chains that ended.
#[derive(Debug, Clone, Serialize)]
pub struct Work {
    /// Chains of the run that ended, warm-up and drain included: what the
    /// counts are divided by.
    pub chains: u64,
    /// Requests OpenBao's core handled (`vault.core.handle_request`, from
    /// its telemetry): KV reads and writes, token lookups and renewals,
    /// logins.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vault_requests_per_chain: Option<f64>,
    /// The same by operation and mount (`vault.route.*`), such as `read
    /// secret`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub vault_requests_by_route: BTreeMap<String, f64>,
    /// Statements PostgreSQL executed (`pg_stat_statements` calls),
    /// `BEGIN` and `COMMIT` included. sqlx sends each and waits for its
    /// answer, so each is one round trip; the pool's check of an idle
    /// connection before handing it out (an empty `Sync` exchange) is one
    /// more that no statistic shows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postgres_statements_per_chain: Option<f64>,
    /// The same by statement, keyed by the start of its normalised text.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub postgres_statements_by_text: BTreeMap<String, f64>,
    /// Milliseconds PostgreSQL spent executing and planning the statements
    /// (`pg_stat_statements` `total_exec_time` + `total_plan_time`), per
    /// chain. Execution includes waiting for locks (a claim queued behind
    /// the tenant's lock), and a function's own statements count as its
    /// execution (`pg_stat_statements.track` is `top`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postgres_ms_per_chain: Option<f64>,
    /// Of that, planning of the statements sent (0 unless
    /// `pg_stat_statements.track_planning` is on, as `scripts/bench` sets
    /// it); the planning of a function's own statements is in its
    /// execution.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postgres_plan_ms_per_chain: Option<f64>,
    /// The milliseconds by statement, keyed as `postgres_statements_by_text`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub postgres_ms_by_text: BTreeMap<String, f64>,
}

/// A latency distribution, in milliseconds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Latency {
    /// Chains measured.
    pub samples: u64,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Slowest.
    pub max: f64,
}

impl Latency {
    /// The distribution of a histogram of microseconds.
    pub(crate) fn of(micros: &Histogram<u64>) -> Self {
        let ms = |us: u64| round3(us as f64 / 1000.0);
        Self {
            samples: micros.len(),
            mean: round3(micros.mean() / 1000.0),
            p50: ms(micros.value_at_quantile(0.50)),
            p90: ms(micros.value_at_quantile(0.90)),
            p99: ms(micros.value_at_quantile(0.99)),
            max: ms(micros.max()),
        }
    }
}

/// One stage of a chain's latency.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Stage {
    /// The point the stage ends at.
    pub until: &'static str,
    /// Its distribution.
    #[serde(flatten)]
    pub latency: Latency,
}

/// Where the CPU time of a run went.
#[derive(Debug, Clone, Serialize)]
pub struct Cpu {
    /// Share of all cores busy during the window.
    pub machine_busy_pct: f64,
    /// CPU milliseconds per completed chain: `fleet` (this process: driver,
    /// workers, simulator), each process named with `--cpu`, and `other`
    /// (the rest of the machine).
    pub ms_per_chain: BTreeMap<String, f64>,
}

/// Throughput of the fleet's chains over the raw ceiling's.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Ratios {
    /// (a) / (c).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub noop_over_raw: Option<f64>,
    /// (b) / (c).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub full_over_raw: Option<f64>,
    /// (b) over the bound its Vault and PostgreSQL work alone set
    /// ([`Parts::bound_chains_per_s`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub full_over_parts_bound: Option<f64>,
}

/// A target of the benchmark and what this run measured against it.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    /// What is measured and the bar, in words.
    pub target: &'static str,
    /// The measured value, in the unit of `target`.
    pub measured: f64,
    /// Whether the measured value meets the bar.
    pub met: bool,
}

impl Report {
    /// Fills in the ratios and targets from the scenarios.
    pub(crate) fn new(machine: Machine, nats_server: String, scenarios: Scenarios) -> Self {
        let rate = |s: &Option<ScenarioReport>| s.as_ref().map(|s| s.throughput.chains_per_s);
        let over_raw = |s: &Option<ScenarioReport>| {
            Some(round3(
                rate(s)? / rate(&scenarios.raw).filter(|&r| r > 0.0)?,
            ))
        };
        let ratios = Ratios {
            noop_over_raw: over_raw(&scenarios.noop),
            full_over_raw: over_raw(&scenarios.full),
            full_over_parts_bound: scenarios.full.as_ref().and_then(|full| {
                let bound = full.parts.as_ref()?.bound_chains_per_s;
                (bound > 0.0).then(|| round3(full.throughput.chains_per_s / bound))
            }),
        };
        let mut targets = Vec::new();
        if let Some(ratio) = ratios.noop_over_raw {
            targets.push(Target::at_least(
                "(a) no-op chains/s over the raw ceiling >= 0.65",
                ratio,
                0.65,
            ));
        }
        if let Some(full) = &scenarios.full {
            if let Some(ratio) = ratios.full_over_parts_bound {
                targets.push(Target::at_least(
                    "(b) full chains/s over the bound of its Vault and PostgreSQL work >= 0.85",
                    ratio,
                    0.85,
                ));
            }
            targets.push(Target::below(
                "(b) p50 ms of one chain alone < 8",
                full.alone.latency_ms.p50,
                8.0,
            ));
        }
        if let Some(syncs) = &scenarios.sync_only {
            targets.push(Target::at_least(
                "sync-only: syncs/s at the in-flight cap >= 1000",
                round3(syncs.throughput.chains_per_s),
                1000.0,
            ));
            if let Some(paced) = &syncs.paced {
                targets.push(Target::below(
                    "sync-only: p99 ms paced at half the in-flight run's rate < 50",
                    paced.latency_ms.p99,
                    50.0,
                ));
            }
        }
        if let Some(tenants) = &scenarios.bridge_tenants {
            targets.push(Target::below(
                "bridge-tenants: p99 ms from publish to a client < 100",
                tenants.latency_ms.p99,
                100.0,
            ));
            if let Some(peak) = tenants.bridge.peak_rss_mb {
                targets.push(Target::below(
                    "bridge-tenants: peak RSS of the bridge, MB < 150",
                    peak,
                    150.0,
                ));
            }
            targets.push(Target::below(
                "bridge-tenants: events missed by clients = 0",
                tenants.missed as f64,
                1.0,
            ));
        }
        Self {
            machine,
            nats_server,
            scenarios,
            ratios,
            targets,
        }
    }
}

impl Target {
    pub(crate) fn at_least(target: &'static str, measured: f64, bar: f64) -> Self {
        Self {
            target,
            measured,
            met: measured >= bar,
        }
    }

    fn below(target: &'static str, measured: f64, bar: f64) -> Self {
        Self {
            target,
            measured,
            met: measured < bar,
        }
    }
}

/// Rounds to three decimals, which is all a report needs.
pub(crate) fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}
