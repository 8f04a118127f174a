//! Failures the simulator injects into the next requests.

use std::{
    collections::{HashMap, VecDeque},
    time::Duration,
};

use axum::response::Response;
use serde::{Deserialize, Serialize};

/// A failure to inject. In JSON (for `POST /_sim/faults`) it is tagged by
/// `kind`: `{"kind": "rate_limited", "retry_after_secs": 1}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// Answer 429 with `Retry-After: {retry_after_secs}` (Google, Trello
    /// and LinkedIn answer without it, as they do). Meta answers HTTP 400
    /// with a throttling code instead: 80000 with the wait, rounded up to
    /// minutes, in `X-Business-Use-Case-Usage`, or 17 when the wait is 0.
    RateLimited {
        /// The `Retry-After` value, in seconds.
        retry_after_secs: u64,
    },
    /// Answer 503, as WordPress does in maintenance mode, with
    /// `Retry-After` when given.
    Unavailable {
        /// The `Retry-After` value, in seconds.
        #[serde(default)]
        retry_after_secs: Option<u64>,
    },
    /// Wait `delay_ms` before answering normally.
    Slow {
        /// The delay, in milliseconds.
        delay_ms: u64,
    },
    /// Answer 301 to `location`, as a site does after moving.
    Redirect {
        /// The `Location` header.
        location: String,
    },
    /// Drop the `Authorization` header before WordPress sees it, as some
    /// hosts (CGI/FastCGI setups) do.
    StripAuthorization,
    /// Google APIs: answer 401 `UNAUTHENTICATED` (Trello's REST API: a
    /// plain-text 401 `invalid token`; LinkedIn: 401 `EXPIRED_ACCESS_TOKEN`;
    /// Meta's Graph API and its `fb_exchange_token` exchange: code 190
    /// subcode 463), as for an access token that expired or was revoked.
    /// Other providers ignore it.
    ExpiredAccessToken,
    /// Google's and LinkedIn's token endpoints: answer a refresh with 400
    /// `invalid_grant`, as for a refresh token that expired or was revoked
    /// (Meta: a used code, 100/36009, or an invalidated session on
    /// `fb_exchange_token`, 190/460). Other requests ignore it.
    InvalidGrant,
}

/// Faults waiting for requests, per target and global. A target is a
/// WordPress site name or `google:{user}`; a request takes its target's
/// first fault, else the first global one.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    global: VecDeque<Pending>,
    sites: HashMap<String, VecDeque<Pending>>,
}

#[derive(Debug)]
struct Pending {
    fault: Fault,
    remaining: u32,
}

impl Faults {
    /// Queues `fault` for the next `times` requests to `site`, or to any
    /// site when `site` is `None`.
    pub(crate) fn push(&mut self, site: Option<&str>, fault: Fault, times: u32) {
        if times == 0 {
            return;
        }
        let queue = match site {
            Some(site) => self.sites.entry(site.to_owned()).or_default(),
            None => &mut self.global,
        };
        queue.push_back(Pending {
            fault,
            remaining: times,
        });
    }

    /// The fault for the next request to `site`, if any.
    pub(crate) fn take(&mut self, site: &str) -> Option<Fault> {
        let queue = match self.sites.get_mut(site) {
            Some(queue) if !queue.is_empty() => queue,
            _ => &mut self.global,
        };
        let pending = queue.front_mut()?;
        pending.remaining -= 1;
        let fault = pending.fault.clone();
        if pending.remaining == 0 {
            queue.pop_front();
        }
        Some(fault)
    }

    /// Forgets every queued fault.
    pub(crate) fn clear(&mut self) {
        self.global.clear();
        self.sites.clear();
    }
}

/// Suffers `fault`: waits out a [`Fault::Slow`] (and lets the request
/// through), or lets `answer` answer any other fault in the provider's
/// place (`None`: the provider ignores it).
pub(crate) async fn suffer(
    fault: Option<Fault>,
    answer: impl FnOnce(&Fault) -> Option<Response>,
) -> Option<Response> {
    match fault? {
        Fault::Slow { delay_ms } => {
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            None
        }
        fault => answer(&fault),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SLOW: Fault = Fault::Slow { delay_ms: 1 };
    const DOWN: Fault = Fault::Unavailable {
        retry_after_secs: None,
    };

    #[test]
    fn site_faults_come_before_global_ones_and_run_out() {
        let mut faults = Faults::default();
        faults.push(None, SLOW, 1);
        faults.push(Some("acme"), DOWN, 2);

        assert_eq!(faults.take("other"), Some(SLOW));
        assert_eq!(faults.take("acme"), Some(DOWN));
        assert_eq!(faults.take("acme"), Some(DOWN));
        assert_eq!(faults.take("acme"), None);
    }

    #[test]
    fn faults_apply_in_the_order_they_were_injected() {
        let mut faults = Faults::default();
        faults.push(None, DOWN, 1);
        faults.push(None, SLOW, 1);
        faults.push(None, SLOW, 0);

        assert_eq!(faults.take("acme"), Some(DOWN));
        assert_eq!(faults.take("acme"), Some(SLOW));
        assert_eq!(faults.take("acme"), None);
    }

    #[test]
    fn clear_forgets_everything() {
        let mut faults = Faults::default();
        faults.push(None, DOWN, 3);
        faults.push(Some("acme"), SLOW, 3);

        faults.clear();

        assert_eq!(faults.take("acme"), None);
    }
}
