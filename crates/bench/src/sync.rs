//! Syncing one large account: a full sync of a simulated WordPress site
//! with [`Plan::sync_records`] posts, then, for `sync-incremental`, an
//! incremental sync after 1 % of them changed.
//!
//! Both run through the real steps (`fleet_workers` on the fleet's
//! streams, Vault, PostgreSQL) against the simulator in this process. A
//! sync's time is the run's own `duration_ms` from its `synced` status;
//! its requests are what the simulated site counted, against the fewest a
//! sync could make: one per page of 100 records to read, plus the one that
//! ends the pass.

use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::pull;
use fleet_connectors::Credentials;
use fleet_events::{
    ConnectionId, ConnectionStatus, ConnectorId, CorrelationId, Envelope, SetupOrigin,
    StatusChanged, Step, SyncCounts, SyncRequested, SyncTrigger, TenantId, ValidateRequested,
    subject,
};
use fleet_sim::{Collection, Sim, SimHandle, SiteChange, SiteConfig, UserConfig};
use fleet_store::{NewConnection, Store};
use fleet_workers::{Deps, Settings as StepSettings, SyncSchedule};
use futures::StreamExt as _;
use serde::Serialize;
use tracing::info;

use crate::rig::{GRACE, Rig};
use crate::{Error, FullServices, Plan};

const SITE: &str = "big";
const USER: &str = "bench";
/// A simulated application password, not a secret.
const PASSWORD: &str = "abcd EFGH 1234 ijkl MNOP 5678";
/// Records per WordPress page, as the connector asks for them.
const PER_PAGE: u64 = 100;
/// How long one sync may take before the bench gives up on it.
const SYNC_DEADLINE: Duration = Duration::from_secs(1800);

/// What the sync scenarios measured.
#[derive(Debug, Clone, Serialize)]
pub struct SyncReport {
    /// The account: posts of one simulated WordPress site.
    pub records: u64,
    /// The first sync, which reads everything.
    pub full: SyncMeasure,
    /// The next sync after 1 % of the posts were edited; `None` for
    /// `sync-full` alone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incremental: Option<SyncMeasure>,
    /// The incremental sync's time over the full sync's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incremental_over_full: Option<f64>,
}

/// One sync.
#[derive(Debug, Clone, Serialize)]
pub struct SyncMeasure {
    /// The run's time, from its `synced` status.
    pub seconds: f64,
    /// Records read per second of the run.
    pub records_per_s: f64,
    /// What the run read, added, updated and deleted.
    pub counts: SyncCounts,
    /// Requests the simulated site answered during the sync.
    pub requests: u64,
    /// The fewest requests that read what the run had to read: a page per
    /// 100 changed records, and one to end the pass.
    pub minimum_requests: u64,
    /// Live records stored after the run.
    pub stored_records: u64,
    /// Bytes their payloads take in PostgreSQL.
    pub stored_bytes: u64,
}

/// Runs the full sync, and the incremental one when `incremental`.
pub(crate) async fn run(
    plan: &Plan,
    nats: &fleet_bus::Config,
    services: &FullServices,
    incremental: bool,
    shutdown: &tokio_util::sync::CancellationToken,
) -> Result<SyncReport, Error> {
    let records = u64::from(plan.sync_records);
    info!(records, "Building the simulated site.");
    let sim = simulator(plan.sync_records).await?;
    let rig = Rig::fleet(nats, shutdown).await?;
    let deps = crate::full::deps(services, &rig, SyncSchedule::Off).await?;
    let settings = StepSettings {
        concurrency: 4,
        grace: GRACE,
        ..StepSettings::default()
    };
    fleet_workers::spawn_steps(
        &rig.workers,
        &deps,
        &Step::ALL,
        settings,
        &rig.tasks,
        &rig.stop,
    );
    let result = measure(&rig, &deps, &sim, records, incremental).await;
    rig.stop().await;
    result
}

async fn measure(
    rig: &Rig,
    deps: &Deps,
    sim: &SimHandle,
    records: u64,
    incremental: bool,
) -> Result<SyncReport, Error> {
    let tenant = TenantId::parse("bench-sync").expect("a valid tenant id");
    let connection = ConnectionId::new();
    let mut statuses = Statuses::open(rig, &tenant, &connection).await?;

    let before = sim.requests(SITE);
    connect(rig, deps, sim, &tenant, &connection).await?;
    let synced = statuses.next_synced().await?;
    let full = measured(
        &deps.store,
        &tenant,
        &connection,
        &synced,
        sim.requests(SITE) - before,
        records.div_ceil(PER_PAGE) + 1,
    )
    .await?;
    info!(seconds = full.seconds, "Full sync done.");
    if !incremental {
        return Ok(SyncReport {
            records,
            full,
            incremental: None,
            incremental_over_full: None,
        });
    }

    // 1 % of the posts, spread over the whole site.
    let posts = sim.published(SITE, Collection::Posts);
    let changed: Vec<u64> = posts.iter().step_by(100).map(|(id, _)| *id).collect();
    for id in &changed {
        sim.change_site(SITE, &SiteChange::Edit { id: *id });
    }
    let before = sim.requests(SITE);
    let request = Envelope::new(
        tenant.clone(),
        connection.clone(),
        wordpress(),
        CorrelationId::new(),
        SyncRequested {
            trigger: SyncTrigger::Manual,
            streams: None,
            cursor: None,
        },
    );
    rig.publisher()
        .publish(&request, &request.id.to_string())
        .await
        .map_err(Error::Publish)?;
    let synced = statuses.next_synced().await?;
    let incremental = measured(
        &deps.store,
        &tenant,
        &connection,
        &synced,
        sim.requests(SITE) - before,
        (changed.len() as u64).div_ceil(PER_PAGE) + 1,
    )
    .await?;
    info!(seconds = incremental.seconds, "Incremental sync done.");
    Ok(SyncReport {
        records,
        incremental_over_full: Some(incremental.seconds / full.seconds.max(f64::EPSILON)),
        full,
        incremental: Some(incremental),
    })
}

/// A `synced` status: the run's counts and time.
struct Synced {
    counts: SyncCounts,
    duration_ms: u64,
}

async fn measured(
    store: &Store,
    tenant: &TenantId,
    connection: &ConnectionId,
    synced: &Synced,
    requests: u64,
    minimum_requests: u64,
) -> Result<SyncMeasure, Error> {
    let (stored_records, stored_bytes) = store
        .records_size(tenant, connection)
        .await
        .map_err(Error::Database)?;
    let seconds = synced.duration_ms as f64 / 1000.0;
    Ok(SyncMeasure {
        seconds,
        records_per_s: synced.counts.seen as f64 / seconds.max(f64::EPSILON),
        counts: synced.counts,
        requests,
        minimum_requests,
        stored_records,
        stored_bytes,
    })
}

/// What the gateway does for a manual connection: stage the credentials,
/// record the connection, publish the validate request.
async fn connect(
    rig: &Rig,
    deps: &Deps,
    sim: &SimHandle,
    tenant: &TenantId,
    connection: &ConnectionId,
) -> Result<(), Error> {
    let credentials = Credentials::app_password(sim.site_url(SITE), USER, PASSWORD);
    let staged = deps
        .secrets
        .stage(tenant, connection, &credentials)
        .await
        .map_err(Error::Stage)?;
    let new = NewConnection {
        tenant,
        id: connection,
        connector: &wordpress(),
        display_name: "bench",
        sync_interval: None,
    };
    deps.store
        .stage_connection(new, staged.get())
        .await
        .map_err(Error::Database)?;
    let request = Envelope::new(
        tenant.clone(),
        connection.clone(),
        wordpress(),
        CorrelationId::new(),
        ValidateRequested {
            origin: SetupOrigin::Manual,
            staged_version: staged.get(),
        },
    );
    rig.publisher()
        .publish(&request, &request.id.to_string())
        .await
        .map_err(Error::Publish)?;
    Ok(())
}

/// The connection's status events, from the first.
struct Statuses {
    messages: pull::Ordered,
}

impl Statuses {
    async fn open(rig: &Rig, tenant: &TenantId, connection: &ConnectionId) -> Result<Self, Error> {
        let failed = |what: &str, e: Box<dyn std::error::Error + Send + Sync>| Error::JetStream {
            what: what.to_owned(),
            source: e,
        };
        let consumer = rig
            .driver
            .create_consumer_on_stream(
                pull::OrderedConfig {
                    filter_subject: subject::status(tenant, connection),
                    ..Default::default()
                },
                fleet_bus::STATUS_STREAM,
            )
            .await
            .map_err(|e| failed("read the connection's statuses", Box::new(e)))?;
        let messages = consumer
            .messages()
            .await
            .map_err(|e| failed("read the connection's statuses", Box::new(e)))?;
        Ok(Self { messages })
    }

    /// The next `synced` status; any other final state ends the bench.
    async fn next_synced(&mut self) -> Result<Synced, Error> {
        let started = Instant::now();
        let next = tokio::time::timeout(SYNC_DEADLINE, async {
            while let Some(message) = self.messages.next().await {
                let Ok(message) = message else { continue };
                let Ok(event) = Envelope::<StatusChanged>::decode(&message.payload) else {
                    continue;
                };
                match event.data.status {
                    ConnectionStatus::Synced {
                        counts,
                        duration_ms,
                        ..
                    } => {
                        return Ok(Synced {
                            counts,
                            duration_ms,
                        });
                    }
                    status if status.state().is_terminal() => {
                        return Err(Error::SyncEnded {
                            state: status.state().to_string(),
                        });
                    }
                    _ => {}
                }
            }
            Err(Error::SyncEnded {
                state: "no status".to_owned(),
            })
        })
        .await;
        next.unwrap_or(Err(Error::SyncTimedOut {
            seconds: started.elapsed().as_secs(),
        }))
    }
}

fn wordpress() -> ConnectorId {
    ConnectorId::parse("wordpress").expect("a valid connector id")
}

/// A WordPress site with `posts` posts, served on a free port.
async fn simulator(posts: u32) -> Result<SimHandle, Error> {
    let site = SiteConfig::new(SITE)
        .user(UserConfig::administrator(USER, PASSWORD))
        .posts(posts);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(Error::Listen)?;
    Sim::start(listener, &fleet_sim::Config::default().site(site)).map_err(Error::Simulator)
}
