//! Chains in flight: when each started, which points it passed, and where
//! its latency goes when its last step reports it finished.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use hdrhistogram::Histogram;
use tokio::sync::OwnedSemaphorePermit;
use uuid::Uuid;

/// How a chain ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// The chain reached its final status.
    Completed,
    /// The chain stopped in another terminal state (the full chain's
    /// `invalid` or `failed`).
    Failed,
}

/// Every chain started and not yet finished, by key. The driver calls
/// [`Inflight::begin`] just before publishing a chain's first event, a
/// scenario's steps may [`Inflight::mark`] the points a chain passes, and
/// its final step calls [`Inflight::finish`].
#[derive(Debug, Default)]
pub(crate) struct Inflight {
    pending: Mutex<HashMap<Uuid, Pending>>,
}

#[derive(Debug)]
struct Pending {
    started: Instant,
    /// `started` on the wall clock, which events' `occurred_at` use.
    started_at: DateTime<Utc>,
    /// Points the chain passed, each once, when its events say they were
    /// passed.
    marks: Vec<(&'static str, DateTime<Utc>)>,
    recorder: Arc<Recorder>,
    /// The driver's slot: dropping it lets the driver start another chain.
    _permit: OwnedSemaphorePermit,
}

impl Inflight {
    /// Starts the clock of chain `key`, which holds `permit` until it ends.
    pub(crate) fn begin(&self, key: Uuid, recorder: Arc<Recorder>, permit: OwnedSemaphorePermit) {
        let pending = Pending {
            started: Instant::now(),
            started_at: Utc::now(),
            marks: Vec::new(),
            recorder,
            _permit: permit,
        };
        self.lock().insert(key, pending);
    }

    /// Notes that chain `key` passed `point` at `at`; only the first time
    /// counts (a long sync reports `syncing` again and again). Keys not in
    /// flight are ignored.
    pub(crate) fn mark(&self, key: Uuid, point: &'static str, at: DateTime<Utc>) {
        if let Some(pending) = self.lock().get_mut(&key)
            && !pending.marks.iter().any(|(p, _)| *p == point)
        {
            pending.marks.push((point, at));
        }
    }

    /// Stops the clock of chain `key` and records its latency and stages.
    /// Keys not in flight (a redelivered final step) are ignored.
    pub(crate) fn finish(&self, key: Uuid, end: End) {
        let (ended, ended_at) = (Instant::now(), Utc::now());
        let Some(pending) = self.lock().remove(&key) else {
            return;
        };
        let stages = pending.stages(ended_at);
        pending
            .recorder
            .record(pending.started..ended, end, &stages);
    }

    /// Forgets chain `key`, whose first event could not be published.
    pub(crate) fn forget(&self, key: Uuid) {
        self.lock().remove(&key);
    }

    /// Forgets every unfinished chain of `recorder`'s run and returns how
    /// many there were.
    pub(crate) fn abandon(&self, recorder: &Arc<Recorder>) -> u64 {
        let mut pending = self.lock();
        let before = pending.len();
        pending.retain(|_, p| !Arc::ptr_eq(&p.recorder, recorder));
        (before - pending.len()) as u64
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Pending>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Name of the last stage: from the last mark to the end.
const LAST_STAGE: &str = "stored";

impl Pending {
    /// The time from the start to the first mark, from each mark to the
    /// next, and from the last mark to `ended_at` ([`LAST_STAGE`]), each
    /// named after the point it ends at. Empty without marks.
    fn stages(&self, ended_at: DateTime<Utc>) -> Vec<(&'static str, Duration)> {
        if self.marks.is_empty() {
            return Vec::new();
        }
        let mut marks = self.marks.clone();
        marks.sort_by_key(|&(_, at)| at);
        marks.push((LAST_STAGE, ended_at));
        let mut previous = self.started_at;
        marks
            .into_iter()
            .map(|(point, at)| {
                let stage = (at - previous).to_std().unwrap_or_default();
                previous = previous.max(at);
                (point, stage)
            })
            .collect()
    }
}

/// What one run measured: the latency of the chains started inside its
/// window, and how many chains finished inside it.
#[derive(Debug)]
pub(crate) struct Recorder {
    window: Range<Instant>,
    state: Mutex<Recorded>,
}

/// What a run recorded so far.
#[derive(Debug, Clone)]
pub(crate) struct Recorded {
    /// Microseconds from the first publish to the final step, of the chains
    /// started inside the window.
    pub(crate) latency: Histogram<u64>,
    /// Chains that completed inside the window, whenever they started.
    pub(crate) completed_in_window: u64,
    /// Chains of the run that completed, warm-up and drain included.
    pub(crate) completed: u64,
    /// Chains that ended in a state other than their final one.
    pub(crate) failed: u64,
    /// Microseconds of each stage of the chains started inside the window,
    /// in the order the stages were first seen.
    pub(crate) stages: Vec<(&'static str, Histogram<u64>)>,
}

/// The longest latency the histogram holds; longer ones count as this.
const MAX_LATENCY: Duration = Duration::from_secs(600);

impl Recorder {
    /// A recorder for a run whose measurement window is `window`.
    pub(crate) fn new(window: Range<Instant>) -> Self {
        Self {
            window,
            state: Mutex::new(Recorded {
                latency: histogram(),
                completed_in_window: 0,
                completed: 0,
                failed: 0,
                stages: Vec::new(),
            }),
        }
    }

    /// The measurement window.
    pub(crate) fn window(&self) -> &Range<Instant> {
        &self.window
    }

    /// What was recorded so far.
    pub(crate) fn recorded(&self) -> Recorded {
        self.lock().clone()
    }

    fn record(&self, chain: Range<Instant>, end: End, stages: &[(&'static str, Duration)]) {
        let mut state = self.lock();
        if end == End::Failed {
            state.failed += 1;
            return;
        }
        state.completed += 1;
        if self.window.contains(&chain.end) {
            state.completed_in_window += 1;
        }
        if !self.window.contains(&chain.start) {
            return;
        }
        record(&mut state.latency, chain.end.duration_since(chain.start));
        for &(point, stage) in stages {
            let position = match state.stages.iter().position(|(p, _)| *p == point) {
                Some(position) => position,
                None => {
                    state.stages.push((point, histogram()));
                    state.stages.len() - 1
                }
            };
            record(&mut state.stages[position].1, stage);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Recorded> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A histogram of microseconds up to [`MAX_LATENCY`].
fn histogram() -> Histogram<u64> {
    let max = u64::try_from(MAX_LATENCY.as_micros()).expect("ten minutes fit in u64");
    Histogram::new_with_bounds(1, max, 3).expect("the histogram bounds are valid")
}

fn record(histogram: &mut Histogram<u64>, elapsed: Duration) {
    let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
    histogram.saturating_record(micros.max(1));
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::Semaphore;

    fn permit(slots: &Arc<Semaphore>) -> OwnedSemaphorePermit {
        slots.clone().try_acquire_owned().unwrap()
    }

    #[test]
    fn only_chains_started_inside_the_window_count_towards_latency() {
        let now = Instant::now();
        let recorder = Arc::new(Recorder::new(now..now + Duration::from_secs(60)));
        let early = Recorder::new(now + Duration::from_secs(1)..now + Duration::from_secs(60));

        recorder.record(now..now + Duration::from_millis(3), End::Completed, &[]);
        early.record(now..now + Duration::from_secs(2), End::Completed, &[]);

        let recorded = recorder.recorded();
        assert_eq!((recorded.completed_in_window, recorded.completed), (1, 1));
        assert_eq!(recorded.latency.len(), 1);
        assert!((2_990..=3_010).contains(&recorded.latency.max()));
        let early = early.recorded();
        assert_eq!(
            early.completed_in_window, 1,
            "it finished inside the window"
        );
        assert_eq!(early.latency.len(), 0, "but started during the warm-up");
    }

    #[test]
    fn finishing_a_chain_frees_its_slot_once() {
        let slots = Arc::new(Semaphore::new(1));
        let inflight = Inflight::default();
        let now = Instant::now();
        let recorder = Arc::new(Recorder::new(now..now + Duration::from_secs(60)));
        let key = Uuid::new_v4();

        inflight.begin(key, recorder.clone(), permit(&slots));
        assert_eq!(slots.available_permits(), 0);
        inflight.finish(key, End::Completed);
        inflight.finish(key, End::Completed);

        assert_eq!(slots.available_permits(), 1);
        assert_eq!(recorder.recorded().completed_in_window, 1);
    }

    #[test]
    fn stages_run_from_mark_to_mark_in_time_order_and_end_where_the_chain_ends() {
        let slots = Arc::new(Semaphore::new(1));
        let inflight = Inflight::default();
        let now = Instant::now();
        let recorder = Arc::new(Recorder::new(now..now + Duration::from_secs(60)));
        let key = Uuid::new_v4();
        inflight.begin(key, recorder, permit(&slots));
        let started_at = inflight.lock()[&key].started_at;
        let at = |ms| started_at + chrono::Duration::milliseconds(ms);

        inflight.mark(key, "saving", at(5));
        inflight.mark(key, "validating", at(2));
        inflight.mark(key, "validating", at(4));
        let stages = inflight.lock()[&key].stages(at(9));

        let stages: Vec<_> = stages.iter().map(|(p, d)| (*p, d.as_millis())).collect();
        assert_eq!(stages, [("validating", 2), ("saving", 3), (LAST_STAGE, 4)]);
    }

    #[test]
    fn failed_chains_are_counted_apart() {
        let slots = Arc::new(Semaphore::new(1));
        let inflight = Inflight::default();
        let now = Instant::now();
        let recorder = Arc::new(Recorder::new(now..now + Duration::from_secs(60)));
        let key = Uuid::new_v4();

        inflight.begin(key, recorder.clone(), permit(&slots));
        inflight.finish(key, End::Failed);

        let recorded = recorder.recorded();
        assert_eq!((recorded.failed, recorded.completed_in_window), (1, 0));
        assert_eq!(recorded.latency.len(), 0);
    }

    #[test]
    fn abandoning_a_run_forgets_only_its_chains() {
        let slots = Arc::new(Semaphore::new(2));
        let inflight = Inflight::default();
        let now = Instant::now();
        let window = now..now + Duration::from_secs(60);
        let (mine, other) = (
            Arc::new(Recorder::new(window.clone())),
            Arc::new(Recorder::new(window)),
        );

        inflight.begin(Uuid::new_v4(), mine.clone(), permit(&slots));
        inflight.begin(Uuid::new_v4(), other, permit(&slots));

        assert_eq!(inflight.abandon(&mine), 1);
        assert_eq!(slots.available_permits(), 1);
    }
}
