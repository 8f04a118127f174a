//! The bridge scenarios: one `fleet bridge` process on this machine, many
//! WebSocket dashboards in this one, and status events published to the
//! status stream at a fixed rate.
//!
//! Each event carries its publish time (`occurred_at`, set just before the
//! publish) and, as the record count of a `synced` status, its number among
//! its tenant's events. Every client checks that it gets its tenant's
//! numbers one after another, with no gap and no duplicate, and measures
//! the latency from the publish to its receipt on the same clock.

mod clients;
mod feed;
mod process;

use std::collections::BTreeMap;
use std::time::Duration;

use fleet_bus::{Definitions, STATUS_STREAM};
use hdrhistogram::Histogram;
use tokio::time::Instant;
use tracing::{info, warn};
use uuid::Uuid;

use crate::cpu::{CpuMeter, Process, Spent};
use crate::report::{BridgeProcess, BridgeReport, Connect, Latency, round3};
use crate::rig::Rig;
use crate::{BridgeServices, Error, Plan};

use clients::{Clients, Tally};
use feed::{Feed, Sent};
use process::BridgeChild;

/// How long clients may take, after the last publish, to receive every
/// event before the missing ones count as missed.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest latency the histogram tells apart (a minute, in microseconds);
/// longer ones count as a minute.
const MAX_LATENCY_US: u64 = 60_000_000;

/// The shape of a bridge scenario.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shape {
    /// What the report calls it.
    pub(crate) setup: &'static str,
    /// WebSocket clients, spread evenly over the tenants.
    pub(crate) clients: usize,
    /// Tenants.
    pub(crate) tenants: usize,
    /// Connections of each tenant, seeded in Postgres; a tenant's events
    /// take them in turn.
    pub(crate) connections_per_tenant: usize,
    /// Status events published per second, the tenants in turn.
    pub(crate) events_per_s: u32,
}

/// 10,000 dashboards of 1,000 tenants, 1,000 events/s over the tenants.
pub(crate) const TENANTS: Shape = Shape {
    setup: "10,000 WebSocket clients of 1,000 tenants (10 each), 1,000 status events/s \
            spread evenly over the tenants: about 10,000 deliveries/s",
    clients: 10_000,
    tenants: 1_000,
    connections_per_tenant: 5,
    events_per_s: 1_000,
};

/// 2,000 dashboards of one tenant, 50 events/s.
pub(crate) const BROADCAST: Shape = Shape {
    setup: "2,000 WebSocket clients of one tenant, 50 status events/s: 100,000 deliveries/s",
    clients: 2_000,
    tenants: 1,
    connections_per_tenant: 5,
    events_per_s: 50,
};

const METHOD: &str = "one `fleet bridge` process (spawned by the bench, same FLEET_* settings) on \
                      a fresh CONNECTOR_STATUS stream; the clients in the bench process connect \
                      and get their snapshot first, then the bench publishes `synced` statuses \
                      (record count = the event's number in its tenant) for the warm-up and the \
                      window; latency: occurred_at (set just before the publish) to the client's \
                      receipt, for the events published inside the window; deliveries/s: those \
                      events' receipts over the window; missed: numbers a client never received \
                      (gaps, and the tail still missing 10 s after the last publish); bridge RSS \
                      from /proc/<pid>/status (VmRSS once listening and once every session is \
                      open, VmHWM at the end), CPU from /proc/<pid>/stat over the window";

/// Runs one bridge scenario.
///
/// # Errors
///
/// A failure to set up (NATS, Postgres, the bridge process), a client that
/// cannot open its session, or [`Error::Interrupted`].
pub(crate) async fn run(
    plan: &Plan,
    nats: &fleet_bus::Config,
    services: &BridgeServices,
    shape: Shape,
    cpu: &[Process],
    shutdown: &tokio_util::sync::CancellationToken,
) -> Result<BridgeReport, Error> {
    raise_open_files_limit();
    let rig = Rig::start(nats, vec![STATUS_STREAM.to_owned()], shutdown).await?;
    let scene = Scene {
        plan,
        rig: &rig,
        shape,
        cpu,
    };
    let measured = async {
        create_status_stream(&rig).await?;
        scene.measure(services).await
    }
    .await;
    rig.stop().await;
    measured
}

/// One scenario's settings and connections.
#[derive(Debug, Clone, Copy)]
struct Scene<'a> {
    plan: &'a Plan,
    rig: &'a Rig,
    shape: Shape,
    /// Servers whose CPU the report shows apart.
    cpu: &'a [Process],
}

impl Scene<'_> {
    /// Seeds the tenants, starts the bridge, measures, and stops it.
    async fn measure(self, services: &BridgeServices) -> Result<BridgeReport, Error> {
        let run = Uuid::new_v4().simple().to_string()[..8].to_owned();
        let feed = Feed::seed(services, &run, self.shape).await?;
        let key = auth_key();
        let bridge = BridgeChild::spawn(&services.program, &key).await?;
        let measured = self.drive(&feed, &key, &bridge).await;
        bridge.stop().await;
        measured
    }

    /// Opens every session, publishes through the warm-up and the window,
    /// waits for the clients to catch up, and reports.
    async fn drive(
        self,
        feed: &Feed,
        key: &str,
        bridge: &BridgeChild,
    ) -> Result<BridgeReport, Error> {
        let rss_idle_mb = bridge.rss_mb("VmRSS");
        let started = Instant::now();
        let stop = &self.rig.stop;
        let clients = Clients::connect(bridge.addr(), feed, key, self.shape, stop).await?;
        let connect = Connect::new(self.shape.clients, started.elapsed());
        info!(seconds = connect.seconds, "Every client has its snapshot.");
        let rss_connected_mb = bridge.rss_mb("VmRSS");
        let window = Window::after(self.plan.warmup, self.plan.duration);
        clients.measure(&window);
        let spent = self
            .cpu_meter(bridge)
            .during(window.start.into_std()..window.end.into_std());
        let publisher = self.rig.publisher();
        let sent = feed.publish(publisher, self.shape, &window, stop).await?;
        clients.drain(&sent, DRAIN_TIMEOUT).await;
        let tallies = clients.stop().await;
        let process = BridgeProcess {
            rss_idle_mb,
            rss_connected_mb,
            peak_rss_mb: bridge.rss_mb("VmHWM"),
            cpu_pct: None,
            cpu_ms_per_1000_deliveries: None,
        };
        let cpu = spent.await.ok().flatten();
        Ok(report(
            self.shape, &window, &sent, &tallies, connect, process, cpu,
        ))
    }

    /// A meter of the watched servers and the bridge.
    fn cpu_meter(&self, bridge: &BridgeChild) -> CpuMeter {
        let bridge = Process {
            name: "bridge".to_owned(),
            pid: bridge.pid(),
        };
        let watched: Vec<Process> = self.cpu.iter().cloned().chain([bridge]).collect();
        CpuMeter::new(&watched)
    }
}

/// The measurement window: after the warm-up, for the run's duration.
#[derive(Debug, Clone)]
pub(crate) struct Window {
    pub(crate) start: Instant,
    pub(crate) end: Instant,
    /// The same window on the wall clock, which `occurred_at` uses.
    pub(crate) wall: std::ops::Range<chrono::DateTime<chrono::Utc>>,
    pub(crate) seconds: f64,
}

impl Window {
    fn after(warmup: Duration, duration: Duration) -> Self {
        let now = Instant::now();
        let wall_now = chrono::Utc::now();
        let to_wall = |d: Duration| wall_now + chrono::Duration::from_std(d).unwrap_or_default();
        Self {
            start: now + warmup,
            end: now + warmup + duration,
            wall: to_wall(warmup)..to_wall(warmup + duration),
            seconds: duration.as_secs_f64(),
        }
    }
}

fn report(
    shape: Shape,
    window: &Window,
    sent: &Sent,
    tallies: &[Tally],
    connect: Connect,
    mut bridge: BridgeProcess,
    cpu: Option<Spent>,
) -> BridgeReport {
    let mut latency = Histogram::<u64>::new_with_bounds(1, MAX_LATENCY_US, 3)
        .expect("the histogram bounds are valid");
    for micros in tallies.iter().flat_map(|tally| &tally.latencies_us) {
        latency.saturating_record(*micros);
    }
    let deliveries = latency.len();
    let missed: Vec<u64> = tallies
        .iter()
        .map(|tally| tally.missed(sent.count(tally.tenant)))
        .collect();
    let cpu_pct = cpu.map(|spent| shares(&spent, window.seconds));
    if let Some(shares) = &cpu_pct {
        bridge.cpu_pct = shares.get("bridge").copied();
        bridge.cpu_ms_per_1000_deliveries = bridge.cpu_pct.map(|pct| {
            let cpu_ms = pct * 10.0 * window.seconds;
            round3(cpu_ms / (deliveries.max(1) as f64 / 1000.0))
        });
    }
    let in_window = sent.in_window();
    BridgeReport {
        setup: shape.setup,
        method: METHOD,
        clients: shape.clients,
        tenants: shape.tenants,
        connections_per_tenant: shape.connections_per_tenant,
        events_per_s: shape.events_per_s,
        connect,
        seconds: window.seconds,
        events_published: sent.total(),
        events_in_window: in_window,
        deliveries,
        expected_deliveries: in_window * (shape.clients / shape.tenants) as u64,
        deliveries_per_s: round3(deliveries as f64 / window.seconds),
        latency_ms: Latency::of(&latency),
        missed: missed.iter().sum(),
        clients_missing_events: missed.iter().filter(|&&m| m > 0).count() as u64,
        duplicates: tallies.iter().map(|tally| tally.duplicates).sum(),
        clients_closed: tallies.iter().filter(|t| t.closed.is_some()).count() as u64,
        clients_failed: tallies.iter().filter(|t| t.error.is_some()).count() as u64,
        bridge,
        cpu_pct: cpu_pct.unwrap_or_default(),
    }
}

/// Share of one core each process used over the window, in percent: the
/// bench process (its clients and publisher, without the bridge, its
/// child) as `clients`, each watched server, `other` for the rest of the
/// machine, and `machine` for all of it.
fn shares(spent: &Spent, seconds: f64) -> BTreeMap<String, f64> {
    let mut shares = spent.core_pct(seconds);
    let bridge = shares.get("bridge").copied().unwrap_or(0.0);
    if let Some(bench) = shares.remove("fleet") {
        shares.insert("clients".to_owned(), round3((bench - bridge).max(0.0)));
    }
    let machine = shares.get("machine").copied().unwrap_or(0.0);
    let named: f64 = shares
        .iter()
        .filter(|(name, _)| *name != "machine")
        .map(|(_, pct)| pct)
        .sum();
    shares.insert("other".to_owned(), round3((machine - named).max(0.0)));
    shares
}

/// Creates the status stream as `nats/` defines it, without consumers: no
/// status writer runs, the bridge only reads.
async fn create_status_stream(rig: &Rig) -> Result<(), Error> {
    let definitions = Definitions::builtin();
    let config = definitions
        .streams
        .into_iter()
        .find(|stream| stream.name == STATUS_STREAM)
        .expect("nats/ defines the status stream");
    rig.workers
        .create_stream(config)
        .await
        .map_err(|e| Error::jetstream(format!("create stream {STATUS_STREAM}"), e))?;
    Ok(())
}

/// A random token key for this run, shared with the bridge process.
fn auth_key() -> String {
    format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple())
}

/// Raises this process's open-files limit: each client is a socket. The
/// bridge process inherits it, and raises its own as well.
fn raise_open_files_limit() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let raised = Rlimit {
        current: limit.maximum,
        maximum: limit.maximum,
    };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => info!(open_files = ?limit.maximum, "Open-files limit raised to the hard limit."),
        Err(e) => warn!(error.message = %e, "Could not raise the open-files limit."),
    }
}
