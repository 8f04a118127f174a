//! Offers chains to a scenario at a fixed in-flight cap or a fixed rate,
//! and measures one run.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Interval, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};
use uuid::Uuid;

use crate::Error;
use crate::counters::Counters;
use crate::cpu::CpuMeter;
use crate::inflight::{Inflight, Recorder};
use crate::report::{Latency, Load, Run, Stage, round3};

/// How long the chains still in flight at the end of a run may take to
/// finish before they are counted as incomplete.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// How a scenario starts one chain.
pub(crate) trait Chains: Send + Sync + 'static {
    /// What [`Chains::prepare`] hands to [`Chains::publish`].
    type Chain: Send;

    /// Does the part of starting a chain that its latency does not cover
    /// (the full chain stages credentials in Vault, as the gateway does
    /// before publishing), and returns the key its final step reports.
    fn prepare(&self) -> impl Future<Output = Result<(Uuid, Self::Chain), Error>> + Send;

    /// Publishes the chain's first event and waits for the stream's ack.
    fn publish(&self, chain: Self::Chain) -> impl Future<Output = Result<(), Error>> + Send;
}

/// One measured run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Phase {
    /// How chains are offered.
    pub(crate) load: Load,
    /// Time before the measurement window, whose chains are not measured.
    pub(crate) warmup: Duration,
    /// Length of the measurement window.
    pub(crate) duration: Duration,
}

/// Everything a run shares with the scenario around it.
#[derive(Debug, Clone)]
pub(crate) struct Bench {
    pub(crate) inflight: Arc<Inflight>,
    pub(crate) cpu: Arc<CpuMeter>,
    /// The servers' counters, read around each run; `None` for the
    /// scenarios that use neither Vault nor PostgreSQL.
    pub(crate) counters: Option<Arc<Counters>>,
    pub(crate) shutdown: CancellationToken,
}

impl Bench {
    /// Offers chains as `phase` says until its window closes, waits for the
    /// chains in flight, and reports what the window measured.
    ///
    /// # Errors
    ///
    /// The first error of a chain's start, or [`Error::Interrupted`].
    pub(crate) async fn measure<C: Chains>(
        &self,
        chains: Arc<C>,
        phase: Phase,
    ) -> Result<Run, Error> {
        let start = Instant::now().into_std();
        let window = start + phase.warmup..start + phase.warmup + phase.duration;
        let cpu = self.cpu.during(window.clone());
        let recorder = Arc::new(Recorder::new(window));
        let failure = Failure::new(&self.shutdown);
        info!(
            load = ?phase.load,
            warmup_s = phase.warmup.as_secs_f64(),
            duration_s = phase.duration.as_secs_f64(),
            "Run starting."
        );
        let counted_before = match &self.counters {
            Some(counters) => Some(counters.sample().await),
            None => None,
        };
        let slots = self.offer(chains, phase, &recorder, &failure).await;
        let incomplete = self
            .drain(&slots, phase.load, &recorder, &failure.stop)
            .await;
        failure.check(&self.shutdown)?;
        let recorded = recorder.recorded();
        let work = match (&self.counters, counted_before) {
            (Some(counters), Some(before)) => {
                let after = counters.sample().await;
                before.per_chain(&after, recorded.completed + recorded.failed)
            }
            _ => None,
        };
        let chains = recorded.completed_in_window;
        let seconds = phase.duration.as_secs_f64();
        Ok(Run {
            load: phase.load,
            seconds,
            chains,
            chains_per_s: round3(chains as f64 / seconds),
            latency_ms: Latency::of(&recorded.latency),
            stages_ms: recorded
                .stages
                .iter()
                .map(|(until, micros)| Stage {
                    until,
                    latency: Latency::of(micros),
                })
                .collect(),
            completed_in_run: recorded.completed,
            failed: recorded.failed,
            incomplete,
            cpu: cpu
                .await
                .ok()
                .flatten()
                .map(|spent| spent.per_chain(chains)),
            work,
            rows_synced: None,
        })
    }

    /// Starts chains as `phase.load` allows until the window closes or a
    /// start fails, waits until every started chain has published its first
    /// event, and returns the in-flight slots.
    async fn offer<C: Chains>(
        &self,
        chains: Arc<C>,
        phase: Phase,
        recorder: &Arc<Recorder>,
        failure: &Failure,
    ) -> Arc<Semaphore> {
        let slots = Arc::new(Semaphore::new(phase.load.max_in_flight()));
        let mut offer = Offer::new(phase.load, slots.clone());
        let launches = TaskTracker::new();
        let end = Instant::from_std(recorder.window().end);
        loop {
            let slot = tokio::select! {
                biased;
                () = failure.stop.cancelled() => break,
                () = tokio::time::sleep_until(end) => break,
                slot = offer.next() => slot,
            };
            let launch =
                self.clone()
                    .launch(chains.clone(), recorder.clone(), slot, failure.clone());
            launches.spawn(launch);
        }
        launches.close();
        launches.wait().await;
        slots
    }

    /// Starts one chain in `slot`.
    async fn launch<C: Chains>(
        self,
        chains: Arc<C>,
        recorder: Arc<Recorder>,
        slot: OwnedSemaphorePermit,
        failure: Failure,
    ) {
        let (key, chain) = match chains.prepare().await {
            Ok(prepared) => prepared,
            Err(e) => return failure.report(e),
        };
        self.inflight.begin(key, recorder, slot);
        if let Err(e) = chains.publish(chain).await {
            self.inflight.forget(key);
            failure.report(e);
        }
    }

    /// Waits until every slot is free again, that is every chain of the run
    /// has finished, or [`DRAIN_TIMEOUT`] passed; returns how many chains
    /// did not finish.
    async fn drain(
        &self,
        slots: &Semaphore,
        load: Load,
        recorder: &Arc<Recorder>,
        stop: &CancellationToken,
    ) -> u64 {
        let total = u32::try_from(load.max_in_flight()).expect("the in-flight cap fits in u32");
        let drained = tokio::select! {
            biased;
            () = stop.cancelled() => false,
            drained = tokio::time::timeout(DRAIN_TIMEOUT, slots.acquire_many(total)) => drained.is_ok(),
        };
        if drained {
            return 0;
        }
        let incomplete = self.inflight.abandon(recorder);
        warn!(incomplete, "Chains did not finish in time.");
        incomplete
    }
}

/// Hands out the slots chains start in: a free in-flight slot, and for a
/// paced load also the next tick of the pacer.
#[derive(Debug)]
struct Offer {
    slots: Arc<Semaphore>,
    pacer: Option<Interval>,
}

impl Offer {
    fn new(load: Load, slots: Arc<Semaphore>) -> Self {
        let pacer = match load {
            Load::InFlight { .. } => None,
            Load::Paced { per_second } => {
                let mut pacer = tokio::time::interval(Duration::from_secs(1) / per_second.max(1));
                pacer.set_missed_tick_behavior(MissedTickBehavior::Burst);
                Some(pacer)
            }
        };
        Self { slots, pacer }
    }

    async fn next(&mut self) -> OwnedSemaphorePermit {
        if let Some(pacer) = &mut self.pacer {
            pacer.tick().await;
        }
        self.slots
            .clone()
            .acquire_owned()
            .await
            .expect("the slots are never closed")
    }
}

impl Load {
    /// The most chains in flight. A paced run allows one second of
    /// arrivals: past it the pacer waits, so a fleet that cannot keep up
    /// shows as an achieved rate below the target rather than as a queue
    /// that grows for the whole run.
    fn max_in_flight(self) -> usize {
        match self {
            Self::InFlight { chains } => chains.max(1),
            Self::Paced { per_second } => usize::try_from(per_second).unwrap_or(usize::MAX).max(1),
        }
    }
}

/// The first error of a run's chain starts, which stops the run.
#[derive(Debug, Clone)]
struct Failure {
    stop: CancellationToken,
    first: Arc<Mutex<Option<Error>>>,
}

impl Failure {
    fn new(shutdown: &CancellationToken) -> Self {
        Self {
            stop: shutdown.child_token(),
            first: Arc::default(),
        }
    }

    fn report(&self, error: Error) {
        self.first
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_or_insert(error);
        self.stop.cancel();
    }

    fn check(self, shutdown: &CancellationToken) -> Result<(), Error> {
        if let Some(error) = self
            .first
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            return Err(error);
        }
        if shutdown.is_cancelled() {
            return Err(Error::Interrupted);
        }
        Ok(())
    }
}
