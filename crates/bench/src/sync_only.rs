//! `sync-only`: scheduled syncs of existing connections, sync → status,
//! the shape of the fleet's steady-state load.
//!
//! The connections are set up first (untimed) through the real setup
//! chain, so each has credentials in use, its rows and its cursors from a
//! first sync. Then each chain is one scheduled sync of one of them, taken
//! in turn: the bench publishes the `connector.sync.*` request that a
//! connection's schedule makes the server publish, and the chain ends when
//! the status step stores its `synced` status. The simulated site does not
//! change, so each sync reads its streams' first pages and finds nothing
//! new, as most scheduled syncs do.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use fleet_bus::Publisher;
use fleet_connectors::Credentials;
use fleet_events::{
    ConnectionId, ConnectionState, ConnectorId, CorrelationId, Envelope, SyncRequested,
    SyncTrigger, TenantId,
};
use fleet_store::Store;
use fleet_workers::{Deps, SyncSchedule};
use futures::{StreamExt as _, TryStreamExt as _};
use tracing::info;
use uuid::Uuid;

use crate::driver::{Bench, Chains, Phase};
use crate::full::{self, PASSWORD, SITE, USER};
use crate::gateway::{Setups, Staging};
use crate::report::{Load, Part, Run, ScenarioReport, Settings, round3};
use crate::rig::Rig;
use crate::{Error, FullServices, Plan, parts};

const CHAIN: &str = "a scheduled sync of a connection set up before the run (credentials in use, \
                     its records and cursors stored): sync (the credentials from the process's \
                     cache, filled by the setup; the first page of each \
                     stream, nothing new) -> status (Postgres), with the sync's statuses; the \
                     connections taken in turn; fleet_workers handlers on the streams of nats/, \
                     the simulator serving WordPress in this process";
const METHOD: &str = "start: just before the driver publishes connector.sync with trigger \
                      `scheduled`, as a connection's schedule makes the server do; end: the status \
                      handler stored the sync's `synced` status in Postgres (observed by wrapping \
                      fleet_workers::Status, before its ack), keyed by the correlation id; the \
                      paced run offers half the syncs per second that the in-flight run carried";

/// How long setting up the connections may take, per connection.
const SETUP_PER_CONNECTION: Duration = Duration::from_millis(100);
/// At least this long, however few connections.
const SETUP_MIN: Duration = Duration::from_secs(60);

/// Measures scheduled syncs of [`Plan::sync_only_connections`] connections.
pub(crate) async fn run(
    plan: &Plan,
    nats: &fleet_bus::Config,
    services: &FullServices,
    bench: &Bench,
) -> Result<ScenarioReport, Error> {
    let sim = full::simulator().await?;
    let settings = Settings {
        worker_concurrency: plan.full_in_flight,
        database_pool: Some(services.database.max_connections),
        records_per_chain: Some(0),
    };
    let rig = Rig::fleet(nats, &bench.shutdown).await?;
    let credentials = Credentials::app_password(sim.site_url(SITE), USER, PASSWORD);
    let measured = async {
        let deps = full::deps(services, &rig, SyncSchedule::Off).await?;
        let workers = full::spawn(&rig, &deps, plan.full_in_flight, &bench.inflight);
        let tenant = TenantId::parse(&format!(
            "bench-sync-only-{}",
            &Uuid::new_v4().simple().to_string()[..8]
        ))
        .expect("a valid tenant id");
        let connections = set_up(plan, &rig, &deps, &tenant, credentials.clone()).await?;
        let connections_len = connections.len();
        let syncs = Arc::new(Syncs::new(rig.publisher(), tenant, connections));
        let throughput = bench
            .measure(syncs.clone(), plan.throughput(plan.full_in_flight))
            .await?;
        let alone = bench.measure(syncs.clone(), plan.alone()).await?;
        let paced = bench
            .measure(syncs.clone(), half_of(&throughput, plan, connections_len))
            .await?;
        info!("The syncs' PostgreSQL work alone.");
        let part = parts::ScheduledSyncPart {
            store: deps.store.clone(),
            tenant: syncs.tenant.clone(),
            connector: ConnectorId::parse("wordpress").expect("a valid connector id"),
            idle: std::sync::Mutex::new(syncs.connections.iter().cloned().collect()),
            pages: scheduled_pages(&deps, &credentials).await?,
        };
        let part = Arc::new(parts::Alone {
            work: part,
            inflight: bench.inflight.clone(),
        });
        let postgres_alone = Part {
            work: parts::SCHEDULED_SYNC,
            run: bench
                .measure(part, plan.throughput(plan.full_in_flight))
                .await?,
        };
        let over_postgres_alone = (postgres_alone.run.chains_per_s > 0.0)
            .then(|| round3(throughput.chains_per_s / postgres_alone.run.chains_per_s));
        Ok(ScenarioReport {
            chain: CHAIN,
            method: METHOD,
            settings,
            throughput,
            alone,
            paced: Some(paced),
            parts: None,
            postgres_alone: Some(postgres_alone),
            over_postgres_alone,
            workers: workers
                .into_iter()
                .map(|(step, handle)| (step.as_str(), handle.stats().into()))
                .collect(),
        })
    }
    .await;
    rig.stop().await;
    measured
}

/// Each stream's page of what changed since now, as a scheduled sync of
/// the simulated site reads it.
async fn scheduled_pages(
    deps: &Deps,
    credentials: &Credentials,
) -> Result<Vec<(String, Vec<fleet_store::RecordUpsert>)>, Error> {
    let connector = ConnectorId::parse("wordpress").expect("a valid connector id");
    let wordpress = deps
        .connectors
        .get(&connector)
        .expect("the built-in catalog has WordPress");
    parts::first_pages(&*wordpress, credentials, Some(chrono::Utc::now())).await
}

/// A paced run at half the rate `throughput` carried, at least one and at
/// most half the connections per second: a paced run lets one second of
/// arrivals be in flight, and a second sync of a connection while its first
/// runs would join it rather than end on its own.
fn half_of(throughput: &Run, plan: &Plan, connections: usize) -> Phase {
    let most = (connections / 2).max(1) as f64;
    let per_second = (throughput.chains_per_s / 2.0).round().clamp(1.0, most) as u32;
    Phase {
        load: Load::Paced { per_second },
        ..plan.paced()
    }
}

/// Sets up the plan's connections of `tenant` through the real setup chain
/// and waits until each has synced.
async fn set_up(
    plan: &Plan,
    rig: &Rig,
    deps: &Deps,
    tenant: &TenantId,
    credentials: Credentials,
) -> Result<Vec<ConnectionId>, Error> {
    // Fewer connections than syncs in flight would overlap syncs of one.
    let count = plan.sync_only_connections.max(plan.full_in_flight).max(1);
    info!(%tenant, connections = count, "Setting up the connections to sync.");
    let setups = Setups::new(
        rig.publisher(),
        tenant.clone(),
        Some(Staging {
            secrets: deps.secrets.clone(),
            store: deps.store.clone(),
            credentials,
        }),
    );
    let setups = &setups;
    let connections: Vec<ConnectionId> = futures::stream::iter(0..count)
        .map(|_| async move {
            let (_, request) = setups.prepare().await?;
            let connection = request.connection.clone();
            setups.publish(request).await?;
            Ok::<_, Error>(connection)
        })
        .buffer_unordered(plan.full_in_flight.max(1))
        .try_collect()
        .await?;
    let deadline = SETUP_MIN.max(SETUP_PER_CONNECTION * u32::try_from(count).unwrap_or(u32::MAX));
    tokio::time::timeout(deadline, all_synced(&deps.store, tenant, count))
        .await
        .map_err(|_| Error::SetupTimedOut {
            connections: count,
            seconds: deadline.as_secs(),
        })??;
    info!(connections = count, "Every connection has synced once.");
    Ok(connections)
}

/// Waits until `count` connections of `tenant` read `synced`.
async fn all_synced(store: &Store, tenant: &TenantId, count: usize) -> Result<(), Error> {
    loop {
        let rows = store
            .list_connections(tenant)
            .await
            .map_err(|source| Error::Verify {
                tenant: tenant.to_string(),
                source,
            })?;
        let synced = rows
            .iter()
            .filter(|row| row.status.state() == ConnectionState::Synced)
            .count();
        if synced >= count {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Starts scheduled syncs of a tenant's connections, taken in turn.
#[derive(Debug)]
struct Syncs {
    publisher: Publisher,
    tenant: TenantId,
    connector: ConnectorId,
    connections: Vec<ConnectionId>,
    next: AtomicUsize,
}

impl Syncs {
    fn new(publisher: Publisher, tenant: TenantId, connections: Vec<ConnectionId>) -> Self {
        Self {
            publisher,
            tenant,
            connector: ConnectorId::parse("wordpress").expect("a valid connector id"),
            connections,
            next: AtomicUsize::new(0),
        }
    }
}

impl Chains for Syncs {
    type Chain = Envelope<SyncRequested>;

    async fn prepare(&self) -> Result<(Uuid, Envelope<SyncRequested>), Error> {
        let turn = self.next.fetch_add(1, Ordering::Relaxed) % self.connections.len();
        let request = Envelope::new(
            self.tenant.clone(),
            self.connections[turn].clone(),
            self.connector.clone(),
            CorrelationId::new(),
            SyncRequested {
                trigger: SyncTrigger::Scheduled,
                streams: None,
                cursor: None,
            },
        );
        Ok((request.correlation_id.as_uuid(), request))
    }

    async fn publish(&self, request: Envelope<SyncRequested>) -> Result<(), Error> {
        self.publisher
            .publish(&request, &request.id.to_string())
            .await
            .map_err(Error::Publish)?;
        Ok(())
    }
}
