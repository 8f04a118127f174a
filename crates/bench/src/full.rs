//! (b) The real chain: fleet-workers' four steps with Vault, PostgreSQL and
//! a simulated WordPress site served from this process.

use std::sync::Arc;
use std::time::Duration;

use fleet_bus::{Context, Handler, HandlerError, WorkerConfig, WorkerHandle};
use fleet_connectors::Credentials;
use fleet_events::{ConnectionState, ConnectorId, Envelope, StatusChanged, Step, TenantId};
use fleet_sim::{Sim, SimHandle, SiteConfig, UserConfig};
use fleet_store::Store;
use fleet_workers::{Deps, Settings as StepSettings};
use tracing::info;
use uuid::Uuid;

use crate::driver::{Bench, Phase};
use crate::gateway::{Setups, Staging};
use crate::inflight::{End, Inflight};
use crate::report::{Part, Parts, Run, ScenarioReport, Settings};
use crate::rig::{GRACE, Rig};
use crate::{Error, FullServices, Plan, parts};

pub(crate) const SITE: &str = "bench";
pub(crate) const USER: &str = "bench";
/// A simulated application password, not a secret.
pub(crate) const PASSWORD: &str = "abcd EFGH 1234 ijkl MNOP 5678";
/// Posts and pages of the site: each stream fits in one page of 100.
const POSTS: u32 = 8;
const PAGES: u32 = 2;

/// How often the save step schedules each connection's next syncs: `fleet
/// worker`'s default, so each setup also writes its schedule. None fires
/// during a run.
const SYNC_INTERVAL: Duration = Duration::from_secs(6 * 3600);

const CHAIN: &str = "the gateway's staging in Vault (untimed), then validate (Vault read, provider \
                     call) -> save (Postgres: promotion and row, sync schedule) -> sync (the \
                     credentials from the process's cache, one page per stream, records upserted with their cursor) -> status \
                     (Postgres), with the status reports of every step; fleet_workers handlers on \
                     the streams of nats/, the simulator serving WordPress in this process";
const METHOD: &str = "start: after staging, just before the driver publishes connector.validate; \
                      end: the status handler stored the chain's `synced` status in Postgres \
                      (observed by wrapping fleet_workers::Status, before its ack), keyed by the \
                      correlation id; stages: the occurred_at of each status the wrapper stores; \
                      after each run, rows_synced counts the run's tenant's rows that read \
                      `synced`";

/// Measures the full chain.
pub(crate) async fn run(
    plan: &Plan,
    nats: &fleet_bus::Config,
    services: &FullServices,
    bench: &Bench,
) -> Result<ScenarioReport, Error> {
    let sim = simulator().await?;
    let settings = Settings {
        worker_concurrency: plan.full_in_flight,
        database_pool: Some(services.database.max_connections),
        records_per_chain: Some(POSTS + PAGES),
    };
    let rig = Rig::fleet(nats, &bench.shutdown).await?;
    let credentials = Credentials::app_password(sim.site_url(SITE), USER, PASSWORD);
    let measured = async {
        let deps = deps(
            services,
            &rig,
            fleet_workers::SyncSchedule::Every(SYNC_INTERVAL),
        )
        .await?;
        measure(plan, bench, &rig, &deps, &credentials, settings).await
    }
    .await;
    rig.stop().await;
    measured
}

async fn measure(
    plan: &Plan,
    bench: &Bench,
    rig: &Rig,
    deps: &Deps,
    credentials: &Credentials,
    settings: Settings,
) -> Result<ScenarioReport, Error> {
    let concurrency = settings.worker_concurrency;
    let workers = spawn(rig, deps, concurrency, &bench.inflight);
    let run = |phase: Phase, name: &'static str| {
        let staging = Staging {
            secrets: deps.secrets.clone(),
            store: deps.store.clone(),
            credentials: credentials.clone(),
        };
        measure_phase(bench, rig, &deps.store, staging, phase, name)
    };
    let throughput = run(plan.throughput(concurrency), "throughput").await?;
    let alone = run(plan.alone(), "alone").await?;
    let paced = run(plan.paced(), "paced").await?;
    let parts = measure_parts(plan, bench, deps, credentials).await?;
    Ok(ScenarioReport {
        chain: CHAIN,
        method: METHOD,
        settings,
        throughput,
        alone,
        paced: Some(paced),
        parts: Some(parts),
        postgres_alone: None,
        over_postgres_alone: None,
        workers: workers
            .into_iter()
            .map(|(step, handle)| (step.as_str(), handle.stats().into()))
            .collect(),
    })
}

/// Runs the chain's Vault work and PostgreSQL work alone, each at the
/// chain's in-flight cap, on tenants of their own.
async fn measure_parts(
    plan: &Plan,
    bench: &Bench,
    deps: &Deps,
    credentials: &Credentials,
) -> Result<Parts, Error> {
    let phase = plan.throughput(plan.full_in_flight);
    let connector = ConnectorId::parse("wordpress").expect("a valid connector id");
    let wordpress = deps
        .connectors
        .get(&connector)
        .expect("the built-in catalog has WordPress");
    info!("The chain's Vault work alone.");
    let vault = parts::VaultPart {
        secrets: deps.secrets.clone(),
        tenant: part_tenant("vault"),
        credentials: credentials.clone(),
    };
    let vault = Part {
        work: parts::VAULT,
        run: bench.measure(alone(bench, vault), phase).await?,
    };
    info!("The chain's PostgreSQL work alone.");
    let postgres = parts::PostgresPart {
        store: deps.store.clone(),
        tenant: part_tenant("postgres"),
        connector,
        pages: parts::first_pages(&*wordpress, credentials, None).await?,
    };
    let postgres = Part {
        work: parts::POSTGRES,
        run: bench.measure(alone(bench, postgres), phase).await?,
    };
    Ok(Parts::new(vault, postgres))
}

fn alone<W: parts::Work>(bench: &Bench, work: W) -> Arc<parts::Alone<W>> {
    Arc::new(parts::Alone {
        work,
        inflight: bench.inflight.clone(),
    })
}

fn part_tenant(part: &str) -> TenantId {
    TenantId::parse(&format!(
        "bench-{part}-{}",
        &Uuid::new_v4().simple().to_string()[..8]
    ))
    .expect("a valid tenant id")
}

/// Runs the four steps as `fleet worker` does, each handling `concurrency`
/// messages at once, with the status step observed.
pub(crate) fn spawn(
    rig: &Rig,
    deps: &Deps,
    concurrency: usize,
    inflight: &Arc<Inflight>,
) -> Vec<(Step, WorkerHandle)> {
    let settings = StepSettings {
        concurrency,
        grace: GRACE,
        // Every chain is a connection of the one bench tenant: the cap on a
        // tenant's concurrent syncs would measure itself.
        max_syncs_per_tenant: u32::try_from(concurrency).unwrap_or(u32::MAX),
        // Hourly: no connection of a run is old enough to be checked.
        ..StepSettings::default()
    };
    let steps = [Step::Validate, Step::Save, Step::Sync];
    let mut workers =
        fleet_workers::spawn_steps(&rig.workers, deps, &steps, settings, &rig.tasks, &rig.stop);
    let status = WorkerConfig {
        concurrency,
        prefetch: concurrency,
        grace: GRACE,
        ..WorkerConfig::for_step(Step::Status)
    };
    let observed = Observed {
        status: fleet_workers::Status::new(deps.clone()),
        inflight: inflight.clone(),
    };
    workers.push((Step::Status, rig.worker(status, observed)));
    workers
}

/// One run on a tenant of its own, then the check of its rows.
async fn measure_phase(
    bench: &Bench,
    rig: &Rig,
    store: &Store,
    staging: Staging,
    phase: Phase,
    name: &str,
) -> Result<Run, Error> {
    let tenant = TenantId::parse(&format!(
        "bench-{name}-{}",
        &Uuid::new_v4().simple().to_string()[..8]
    ))
    .expect("a valid tenant id");
    info!(%tenant, "Full chain run on its own tenant.");
    let chains = Arc::new(Setups::new(rig.publisher(), tenant.clone(), Some(staging)));
    let mut run = bench.measure(chains, phase).await?;
    let rows = store
        .list_connections(&tenant)
        .await
        .map_err(|source| Error::Verify {
            tenant: tenant.to_string(),
            source,
        })?;
    let synced = rows
        .iter()
        .filter(|row| row.status.state() == ConnectionState::Synced)
        .count();
    run.rows_synced = Some(synced as u64);
    Ok(run)
}

/// A WordPress site with a few posts and pages, served on a free port.
pub(crate) async fn simulator() -> Result<SimHandle, Error> {
    let site = SiteConfig::new(SITE)
        .user(UserConfig::administrator(USER, PASSWORD))
        .posts(POSTS)
        .pages(PAGES);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(Error::Listen)?;
    Sim::start(listener, &fleet_sim::Config::default().site(site)).map_err(Error::Simulator)
}

/// The steps' dependencies on `services`, scheduling syncs as `schedule`
/// says.
pub(crate) async fn deps(
    services: &FullServices,
    rig: &Rig,
    schedule: fleet_workers::SyncSchedule,
) -> Result<Deps, Error> {
    let secrets = fleet_secrets::Client::connect(services.vault.clone())
        .await
        .map_err(Error::Vault)?;
    let store = Store::connect(&services.database)
        .await
        .map_err(Error::Database)?;
    // The simulator serves plain HTTP on loopback.
    let connectors = fleet_connectors::Config {
        allow_http: true,
        allow_private_networks: ["127.0.0.0/8", "::1/128"]
            .iter()
            .filter_map(|network| network.parse().ok())
            .collect(),
        ..services.connectors.clone()
    };
    let connectors = fleet_connectors::Registry::new(&connectors).map_err(Error::Connectors)?;
    Ok(Deps {
        secrets,
        store,
        connectors: Arc::new(connectors),
        schedules: fleet_bus::Schedules::new(rig.workers.clone()),
        schedule,
        meter: None,
        webhooks: None,
    })
}

/// The status step, telling the bench which statuses a chain passed and
/// when its terminal status is stored.
#[derive(Debug)]
struct Observed {
    status: fleet_workers::Status,
    inflight: Arc<Inflight>,
}

impl Handler for Observed {
    type Payload = StatusChanged;

    async fn handle(
        &self,
        event: &Envelope<StatusChanged>,
        ctx: &mut Context,
    ) -> Result<(), HandlerError> {
        self.status.handle(event, ctx).await?;
        let key = event.correlation_id.as_uuid();
        let state = event.data.status.state();
        self.inflight.mark(key, state.as_str(), event.occurred_at);
        if state.is_terminal() {
            let end = if state == ConnectionState::Synced {
                End::Completed
            } else {
                End::Failed
            };
            self.inflight.finish(key, end);
        }
        Ok(())
    }
}
