//! Keeping a verifier's key set current.

use std::fmt;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::key_set::Parts;

/// The shortest time between two early fetches, made because a token
/// named a key the set does not list. It bounds what tokens with made-up
/// `kid`s can make this service ask of the issuer.
pub(crate) const REFETCH_GAP: Duration = Duration::from_secs(30);

/// Keeps the key set of a [`Verifier`](crate::Verifier) built by
/// [`Verifier::connect`](crate::Verifier::connect) current while
/// [`run`](Self::run) runs: it fetches the set again every
/// `jwks_refresh_seconds`, and early (at most every 30 s) when a token
/// names a key the set does not list, so that a key the issuer has just
/// rotated to works at once. A failed fetch keeps the last good set and
/// logs a warning.
///
/// For a verifier with one static key there is nothing to refresh and
/// `run` returns at once.
#[must_use = "the key set is fetched again only while `run` runs"]
pub struct Refresher {
    task: Option<Task>,
}

impl fmt::Debug for Refresher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Refresher")
            .field(
                "url",
                &self.task.as_ref().map(|task| &task.parts.source.shown),
            )
            .finish_non_exhaustive()
    }
}

struct Task {
    parts: Parts,
    schedule: Schedule,
}

impl Refresher {
    /// A refresher with nothing to do, for static keys.
    pub(crate) fn idle() -> Self {
        Self { task: None }
    }

    /// A refresher of the set that `parts` fetch, last fetched now.
    pub(crate) fn new(parts: Parts, interval: Duration) -> Self {
        let schedule = Schedule::new(Instant::now(), interval, REFETCH_GAP);
        Self {
            task: Some(Task { parts, schedule }),
        }
    }

    /// Fetches the key set on schedule and on request until `shutdown`, or
    /// until every verifier sharing the set is dropped.
    pub async fn run(self, shutdown: CancellationToken) {
        let Some(mut task) = self.task else {
            return;
        };
        let mut requested = false;
        loop {
            let due = task.schedule.due(requested);
            tokio::select! {
                biased;
                () = shutdown.cancelled() => return,
                () = task.parts.alive.cancelled() => return,
                () = task.parts.refetch.notified(), if !requested => requested = true,
                () = tokio::time::sleep_until(due) => {
                    task.refresh(requested).await;
                    requested = false;
                }
            }
        }
    }
}

impl Task {
    /// Fetches the set and, when it is usable, puts it in use.
    async fn refresh(&mut self, early: bool) {
        let source = &self.parts.source;
        let result = source.fetch().await;
        self.schedule.fetched(Instant::now(), early);
        let Some(shared) = self.parts.shared.upgrade() else {
            return;
        };
        let fetched = match result {
            Ok(fetched) => fetched,
            Err(e) => {
                warn!(
                    url = %source.shown,
                    early,
                    error.message = %e,
                    error.cause_chain = ?e,
                    "Token key set fetch failed; the last good set stays in use."
                );
                return;
            }
        };
        let before = shared.current();
        let mut kids_before: Vec<&str> = before.keys().map(String::as_str).collect();
        kids_before.sort_unstable();
        if kids_before == fetched.kids() {
            debug!(url = %source.shown, early, "Token key set unchanged.");
        } else {
            info!(url = %source.shown, early, before = ?kids_before, after = ?fetched.kids(), "Token key set changed.");
        }
        shared.replace(fetched.keys);
    }
}

/// When the next fetch is due: every `interval` after the last fetch, or
/// sooner when requested, but no sooner than `gap` after the last early
/// fetch.
#[derive(Debug)]
struct Schedule {
    interval: Duration,
    gap: Duration,
    next: Instant,
    early_allowed: Instant,
}

impl Schedule {
    fn new(now: Instant, interval: Duration, gap: Duration) -> Self {
        Self {
            interval,
            gap,
            next: now + interval,
            early_allowed: now,
        }
    }

    fn due(&self, requested: bool) -> Instant {
        if requested {
            self.next.min(self.early_allowed)
        } else {
            self.next
        }
    }

    fn fetched(&mut self, now: Instant, early: bool) {
        self.next = now + self.interval;
        if early {
            self.early_allowed = now + self.gap;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INTERVAL: Duration = Duration::from_secs(600);

    #[test]
    fn a_requested_fetch_is_due_at_once_the_first_time() {
        let start = Instant::now();
        let schedule = Schedule::new(start, INTERVAL, REFETCH_GAP);

        assert_eq!(schedule.due(false), start + INTERVAL);
        assert_eq!(schedule.due(true), start);
    }

    #[test]
    fn early_fetches_are_at_least_the_gap_apart() {
        let start = Instant::now();
        let mut schedule = Schedule::new(start, INTERVAL, REFETCH_GAP);
        let early = start + Duration::from_secs(5);

        schedule.fetched(early, true);

        assert_eq!(schedule.due(true), early + REFETCH_GAP);
        assert_eq!(schedule.due(false), early + INTERVAL);
    }

    #[test]
    fn scheduled_fetches_do_not_delay_early_ones() {
        let start = Instant::now();
        let mut schedule = Schedule::new(start, INTERVAL, REFETCH_GAP);
        let scheduled = start + INTERVAL;

        schedule.fetched(scheduled, false);

        assert_eq!(schedule.due(true), start);
        assert_eq!(schedule.due(false), scheduled + INTERVAL);
    }

    #[test]
    fn a_short_interval_wins_over_the_gap() {
        let start = Instant::now();
        let interval = Duration::from_secs(5);
        let mut schedule = Schedule::new(start, interval, REFETCH_GAP);

        schedule.fetched(start, true);

        assert_eq!(schedule.due(true), start + interval);
    }
}
