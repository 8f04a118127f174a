//! Runs a chosen set of steps in one process.

use std::time::Duration;

use async_nats::jetstream;
use fleet_bus::{Handler, Worker, WorkerConfig, WorkerHandle};
use fleet_events::Step;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::error;

use crate::health::{Checker, HealthSettings, Tracker};
use crate::{Deps, Meter, Save, Status, Sync, Validate, Webhooks};

/// How many messages each step handles at once in this process, and how
/// long in-flight work may run on shutdown.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Concurrency of each step. Sync pulls ahead at most a quarter of it,
    /// since its messages wait with their ack-wait clock running.
    pub concurrency: usize,
    /// Grace period for in-flight handlers on shutdown.
    pub grace: Duration,
    /// The most syncs of one tenant that run at once, across every worker
    /// process (they count through Postgres). Further sync requests of the
    /// tenant wait for one to end.
    pub max_syncs_per_tenant: u32,
    /// The connection health checks, which run beside the sync step, and
    /// when failures in a row make a connection degraded.
    pub health: HealthSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            concurrency: 32,
            grace: Duration::from_secs(20),
            max_syncs_per_tenant: 4,
            health: HealthSettings::default(),
        }
    }
}

/// Starts a worker for each of `steps` and returns their handles, with the
/// sync step the connection health checks ([`crate::health`]), and with
/// the webhook step the webhook delivery loop when `deps` says how to send;
/// they stop when `shutdown` is cancelled, and `tracker` says when they
/// have all finished.
pub fn spawn_steps(
    js: &jetstream::Context,
    deps: &Deps,
    steps: &[Step],
    settings: Settings,
    tracker: &TaskTracker,
    shutdown: &CancellationToken,
) -> Vec<(Step, WorkerHandle)> {
    steps
        .iter()
        .map(|&step| {
            let mut config = WorkerConfig::for_step(step);
            config.concurrency = settings.concurrency;
            config.prefetch = match step {
                // A sync can run for minutes: pull only for free handlers.
                Step::Sync => 0,
                Step::Validate | Step::Save | Step::Status | Step::Meter | Step::Webhook => {
                    settings.concurrency
                }
            };
            config.grace = settings.grace;
            let handle = match step {
                Step::Validate => spawn(js, config, Validate::new(deps.clone()), tracker, shutdown),
                Step::Save => spawn(js, config, Save::new(deps.clone()), tracker, shutdown),
                Step::Sync => {
                    let publisher = fleet_bus::Publisher::new(js.clone());
                    let checker = Checker::new(deps.clone(), publisher.clone(), settings.health);
                    tracker.spawn(checker.run(shutdown.clone()));
                    let health = Tracker {
                        publisher,
                        degraded_after: settings.health.degraded_after.max(1),
                    };
                    let sync = Sync::new(deps.clone(), settings.max_syncs_per_tenant, health);
                    spawn(js, config, sync, tracker, shutdown)
                }
                Step::Status => spawn(js, config, Status::new(deps.clone()), tracker, shutdown),
                Step::Meter => {
                    let meter = Meter::new(deps.meter.clone());
                    spawn(js, config, meter, tracker, shutdown)
                }
                Step::Webhook => {
                    if let Some(delivery) = &deps.webhooks {
                        let dispatcher =
                            crate::webhook::Dispatcher::new(deps.store.clone(), delivery.clone());
                        tracker.spawn(dispatcher.run(shutdown.clone()));
                    }
                    spawn(js, config, Webhooks::new(deps), tracker, shutdown)
                }
            };
            (step, handle)
        })
        .collect()
}

fn spawn<H: Handler>(
    js: &jetstream::Context,
    config: WorkerConfig,
    handler: H,
    tracker: &TaskTracker,
    shutdown: &CancellationToken,
) -> WorkerHandle {
    let consumer = config.consumer.clone();
    let (worker, handle) = Worker::build(config, js.clone(), handler);
    let shutdown = shutdown.clone();
    tracker.spawn(async move {
        if let Err(e) = worker.run(shutdown.clone()).await {
            error!(consumer, error.message = %e, error.cause_chain = ?e, "Worker stopped with an error; stopping the process.");
            shutdown.cancel();
        }
    });
    handle
}
