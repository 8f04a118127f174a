//! Waiting for what a test expects, with a deadline instead of a sleep.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// The first pause between two probes; it doubles up to [`LONGEST_PAUSE`],
/// so a quick outcome is seen at once and a slow one costs few probes.
const FIRST_PAUSE: Duration = Duration::from_millis(10);
/// The longest pause between two probes.
const LONGEST_PAUSE: Duration = Duration::from_millis(200);

/// Probes until `probe` returns `Some`, and returns its value; panics with
/// `what` once `deadline` has passed without it.
///
/// ```no_run
/// # use std::time::Duration;
/// # async fn example(rows: impl Fn() -> usize) {
/// let count = fleet_testkit::eventually(Duration::from_secs(10), "three rows", || async {
///     let n = rows();
///     (n == 3).then_some(n)
/// })
/// .await;
/// # }
/// ```
///
/// # Panics
///
/// When `deadline` passes first: "timed out after {deadline:?} waiting for
/// {what}".
pub async fn eventually<T, F, Fut>(deadline: Duration, what: impl Display, probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    within(deadline, probe)
        .await
        .unwrap_or_else(|| panic!("timed out after {deadline:?} waiting for {what}"))
}

/// [`eventually`] for a caller that reports a timeout itself: `None` once
/// `deadline` has passed.
pub async fn within<T, F, Fut>(deadline: Duration, mut probe: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let until = Instant::now() + deadline;
    let mut pause = FIRST_PAUSE;
    loop {
        if let Some(value) = probe().await {
            return Some(value);
        }
        let now = Instant::now();
        if now >= until {
            return None;
        }
        tokio::time::sleep(pause.min(until - now)).await;
        pause = (pause * 2).min(LONGEST_PAUSE);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test]
    async fn returns_the_first_value_the_probe_finds() {
        let probes = AtomicU32::new(0);
        let found = eventually(Duration::from_secs(5), "the third probe", || async {
            let n = probes.fetch_add(1, Ordering::SeqCst) + 1;
            (n == 3).then_some(n)
        })
        .await;
        assert_eq!(found, 3);
    }

    #[tokio::test]
    async fn gives_up_at_its_deadline() {
        let started = Instant::now();
        let found: Option<()> = within(Duration::from_millis(100), || async { None }).await;
        assert_eq!(found, None);
        assert!(started.elapsed() >= Duration::from_millis(100));
    }

    #[tokio::test]
    #[should_panic(expected = "timed out after 50ms waiting for nothing")]
    async fn panics_with_what_it_waited_for() {
        eventually(Duration::from_millis(50), "nothing", || async {
            None::<()>
        })
        .await;
    }
}
