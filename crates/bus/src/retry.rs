//! Per-step retry delays.

use std::time::Duration;

/// The delay before each redelivery of a failed step, like a Temporal
/// activity's retry policy but applied by the worker: the message is nak'd
/// with the delay, because a consumer `backoff` array would replace the ack
/// wait and is ignored by a plain nak.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    delays: Vec<Duration>,
    jitter: f64,
}

impl RetryPolicy {
    /// Delays for attempts 1, 2, ...; the last one repeats. `jitter` is the
    /// fraction (0.0..=1.0) by which each delay may randomly shrink or grow,
    /// so retries after a shared outage do not arrive all at once.
    ///
    /// # Panics
    ///
    /// When `delays` is empty or `jitter` is outside 0.0..=1.0.
    pub fn new(delays: Vec<Duration>, jitter: f64) -> Self {
        assert!(
            !delays.is_empty(),
            "a retry policy needs at least one delay"
        );
        assert!((0.0..=1.0).contains(&jitter), "jitter must be within 0..=1");
        Self { delays, jitter }
    }

    /// 1 s, 5 s, 30 s, 2 min, 10 min, with 20 % jitter.
    pub fn standard() -> Self {
        Self::new([1, 5, 30, 120, 600].map(Duration::from_secs).to_vec(), 0.2)
    }

    /// The delay after failed attempt `attempt` (1-based), at least
    /// `at_least` (a provider's Retry-After).
    pub fn delay(&self, attempt: u32, at_least: Option<Duration>) -> Duration {
        let index = (attempt.max(1) as usize - 1).min(self.delays.len() - 1);
        let base = self.delays[index];
        let factor = 1.0 + self.jitter * (fastrand::f64() * 2.0 - 1.0);
        let jittered = base.mul_f64(factor);
        at_least.map_or(jittered, |min| jittered.max(min))
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::standard()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_per_attempt_and_the_last_one_repeats() {
        let policy = RetryPolicy::new([1, 10, 100].map(Duration::from_secs).to_vec(), 0.0);
        let delays: Vec<_> = (1..=5).map(|a| policy.delay(a, None).as_secs()).collect();
        assert_eq!(delays, [1, 10, 100, 100, 100]);
    }

    #[test]
    fn retry_after_longer_than_the_table_wins() {
        let policy = RetryPolicy::new(vec![Duration::from_secs(1)], 0.0);
        assert_eq!(
            policy.delay(1, Some(Duration::from_secs(42))),
            Duration::from_secs(42)
        );
        assert_eq!(
            policy.delay(1, Some(Duration::from_millis(10))),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn jitter_stays_within_its_fraction() {
        let policy = RetryPolicy::new(vec![Duration::from_secs(10)], 0.2);
        for _ in 0..1000 {
            let d = policy.delay(1, None);
            assert!(
                d >= Duration::from_secs(8) && d <= Duration::from_secs(12),
                "{d:?}"
            );
        }
    }
}
