//! (a) The fleet's runtime with no business logic: the four steps on the
//! real streams and consumers from `nats/`, with the real payload types and
//! subjects, whose handlers only publish the next event.

use std::sync::Arc;

use chrono::Utc;
use fleet_bus::{Context, Handler, HandlerError, WorkerConfig, WorkerHandle};
use fleet_events::{
    AccountInfo, ConnectionStatus, Envelope, Payload, SaveRequested, StatusChanged, Step,
    SyncRequested, SyncTrigger, TenantId, ValidateRequested,
};

use crate::driver::Bench;
use crate::gateway::Setups;
use crate::inflight::{End, Inflight};
use crate::report::{ScenarioReport, Settings};
use crate::rig::{GRACE, Rig};
use crate::{Error, Plan};

const CHAIN: &str = "validate -> save -> sync -> status through fleet_bus::Worker on the streams \
                     and consumers of nats/, real envelopes, subjects, dedupe ids and headers; \
                     each handler only emits the next event; the driver on one connection and \
                     the 4 workers on another, as in one worker process";
const METHOD: &str = "start: just before the driver publishes connector.validate (Publisher, \
                      stream ack awaited); end: the status handler ran (before its ack), keyed by \
                      the chain's correlation id";

/// Measures the no-op chain.
pub(crate) async fn run(
    plan: &Plan,
    nats: &fleet_bus::Config,
    bench: &Bench,
) -> Result<ScenarioReport, Error> {
    let rig = Rig::fleet(nats, &bench.shutdown).await?;
    let measured = measure(plan, bench, &rig).await;
    rig.stop().await;
    measured
}

async fn measure(plan: &Plan, bench: &Bench, rig: &Rig) -> Result<ScenarioReport, Error> {
    let workers = spawn(rig, plan.in_flight, &bench.inflight);
    let chains = Arc::new(Setups::new(
        rig.publisher(),
        TenantId::parse("bench-noop").expect("a valid tenant id"),
        None,
    ));
    let throughput = bench
        .measure(chains.clone(), plan.throughput(plan.in_flight))
        .await?;
    let alone = bench.measure(chains, plan.alone()).await?;
    Ok(ScenarioReport {
        chain: CHAIN,
        method: METHOD,
        settings: Settings {
            worker_concurrency: plan.in_flight,
            database_pool: None,
            records_per_chain: None,
        },
        throughput,
        alone,
        paced: None,
        parts: None,
        postgres_alone: None,
        over_postgres_alone: None,
        workers: workers
            .into_iter()
            .map(|(step, handle)| (step.as_str(), handle.stats().into()))
            .collect(),
    })
}

/// Runs the four no-op steps, each handling `concurrency` messages at once.
fn spawn(rig: &Rig, concurrency: usize, inflight: &Arc<Inflight>) -> Vec<(Step, WorkerHandle)> {
    let config = |step| WorkerConfig {
        concurrency,
        prefetch: concurrency,
        grace: GRACE,
        ..WorkerConfig::for_step(step)
    };
    vec![
        (
            Step::Validate,
            rig.worker(
                config(Step::Validate),
                Relay::new(|v: &ValidateRequested| SaveRequested {
                    staged_version: v.staged_version,
                    account: AccountInfo {
                        id: "bench".to_owned(),
                        name: "bench".to_owned(),
                    },
                }),
            ),
        ),
        (
            Step::Save,
            rig.worker(
                config(Step::Save),
                Relay::new(|_: &SaveRequested| SyncRequested {
                    trigger: SyncTrigger::Setup,
                    streams: None,
                    cursor: None,
                }),
            ),
        ),
        (
            Step::Sync,
            rig.worker(
                config(Step::Sync),
                Relay::new(|_: &SyncRequested| StatusChanged {
                    status: ConnectionStatus::Synced {
                        records: 0,
                        counts: fleet_events::SyncCounts::default(),
                        duration_ms: 0,
                        last_sync_at: Utc::now(),
                        run_id: None,
                    },
                }),
            ),
        ),
        (
            Step::Status,
            rig.worker(
                config(Step::Status),
                Finish {
                    inflight: inflight.clone(),
                },
            ),
        ),
    ]
}

/// A step that only publishes the next event of the chain, made by `next`
/// from its own payload.
#[derive(Debug)]
struct Relay<P, Q> {
    next: fn(&P) -> Q,
}

impl<P, Q> Relay<P, Q> {
    fn new(next: fn(&P) -> Q) -> Self {
        Self { next }
    }
}

impl<P: Payload, Q: Payload> Handler for Relay<P, Q> {
    type Payload = P;

    async fn handle(&self, event: &Envelope<P>, ctx: &mut Context) -> Result<(), HandlerError> {
        ctx.emit(event, (self.next)(&event.data)).await?;
        Ok(())
    }
}

/// The status step of the no-op chain: tells the bench the chain finished.
#[derive(Debug)]
struct Finish {
    inflight: Arc<Inflight>,
}

impl Handler for Finish {
    type Payload = StatusChanged;

    async fn handle(
        &self,
        event: &Envelope<StatusChanged>,
        _ctx: &mut Context,
    ) -> Result<(), HandlerError> {
        self.inflight
            .finish(event.correlation_id.as_uuid(), End::Completed);
        Ok(())
    }
}
