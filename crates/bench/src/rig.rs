//! What a scenario runs on: two NATS connections (one for the driver, as
//! the gateway would have, one for the workers, as a worker process has),
//! the streams it claimed, and its tasks.

use std::future::Future;
use std::time::Duration;

use async_nats::jetstream;
use fleet_bus::{Definitions, Handler, Publisher, Worker, WorkerConfig, WorkerHandle};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::error;

use crate::Error;
use crate::streams::Claimed;

/// How long workers may finish in-flight messages when a scenario ends.
/// Every chain has finished by then, so this only bounds a stuck step.
pub(crate) const GRACE: Duration = Duration::from_secs(5);

/// Connections, claimed streams and running tasks of one scenario.
#[derive(Debug)]
pub(crate) struct Rig {
    /// JetStream on the driver's connection.
    pub(crate) driver: jetstream::Context,
    /// JetStream on the workers' connection.
    pub(crate) workers: jetstream::Context,
    /// The scenario's tasks; [`Rig::stop`] waits for them.
    pub(crate) tasks: TaskTracker,
    /// Cancelled by [`Rig::stop`], or when the bench is interrupted.
    pub(crate) stop: CancellationToken,
    claimed: Claimed,
}

impl Rig {
    /// Connects and claims `streams`, which the caller then creates.
    ///
    /// # Errors
    ///
    /// [`Error::Connect`] or [`Error::StreamExists`].
    pub(crate) async fn start(
        nats: &fleet_bus::Config,
        streams: Vec<String>,
        shutdown: &CancellationToken,
    ) -> Result<Self, Error> {
        let driver = fleet_bus::connect(nats).await.map_err(Error::Connect)?;
        let workers = fleet_bus::connect(nats).await.map_err(Error::Connect)?;
        let workers = jetstream::new(workers);
        let claimed = Claimed::claim(&workers, streams).await?;
        Ok(Self {
            driver: jetstream::new(driver),
            workers,
            tasks: TaskTracker::new(),
            stop: shutdown.child_token(),
            claimed,
        })
    }

    /// Connects, claims the fleet's streams (from `nats/`) and provisions
    /// them with their consumers.
    ///
    /// # Errors
    ///
    /// As [`Rig::start`], and [`Error::Provision`].
    pub(crate) async fn fleet(
        nats: &fleet_bus::Config,
        shutdown: &CancellationToken,
    ) -> Result<Self, Error> {
        let definitions = Definitions::builtin();
        let names = definitions.streams.iter().map(|s| s.name.clone()).collect();
        let rig = Self::start(nats, names, shutdown).await?;
        if let Err(e) = definitions.provision(&rig.workers).await {
            rig.stop().await;
            return Err(Error::Provision(e));
        }
        Ok(rig)
    }

    /// A publisher on the driver's connection.
    pub(crate) fn publisher(&self) -> Publisher {
        Publisher::new(self.driver.clone())
    }

    /// Runs a fleet worker on the workers' connection until the rig stops.
    pub(crate) fn worker<H: Handler>(&self, config: WorkerConfig, handler: H) -> WorkerHandle {
        let consumer = config.consumer.clone();
        let (worker, handle) = Worker::build(config, self.workers.clone(), handler);
        let stop = self.stop.clone();
        self.spawn(async move {
            if let Err(e) = worker.run(stop).await {
                error!(consumer, error.message = %e, error.cause_chain = ?e, "A bench worker stopped.");
            }
        });
        handle
    }

    /// Runs `task` until the rig stops.
    pub(crate) fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        self.tasks.spawn(task);
    }

    /// Stops the tasks, waits for them, and deletes the claimed streams.
    pub(crate) async fn stop(self) {
        self.stop.cancel();
        self.tasks.close();
        self.tasks.wait().await;
        self.claimed.release().await;
    }
}
