//! Per-tenant request limits: one tenant cannot use up what all share.
//!
//! Two token buckets per tenant (GCRA, through `governor`): one for every
//! authenticated request, and a smaller one for the requests that start
//! work elsewhere (connecting an account, "Sync now", starting an OAuth
//! flow, disconnecting), which cost Vault writes, provider calls and
//! sync runs. A request over a limit is answered 429 with `Retry-After`.
//!
//! The buckets live in this gateway process: with several gateways behind
//! a load balancer a tenant gets each limit once per gateway.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use fleet_events::TenantId;
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use serde::Deserialize;

use crate::Error;

/// The limits, per tenant. Zero in any field is refused at start-up.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Authenticated API requests per second, sustained.
    pub requests_per_second: u32,
    /// Authenticated API requests allowed at once above the sustained rate.
    pub request_burst: u32,
    /// Requests that start work (create, sync, authorize, delete) per
    /// minute, sustained.
    pub changes_per_minute: u32,
    /// Such requests allowed at once above the sustained rate.
    pub change_burst: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            requests_per_second: 20,
            request_burst: 40,
            changes_per_minute: 30,
            change_burst: 10,
        }
    }
}

/// A limit that cannot work.
#[derive(Debug, thiserror::Error)]
#[error("gateway.limits.{field} must be at least 1")]
pub struct LimitsError {
    field: &'static str,
}

/// The buckets of every tenant.
#[derive(Debug)]
pub(crate) struct TenantLimits {
    requests: DefaultKeyedRateLimiter<TenantId>,
    changes: DefaultKeyedRateLimiter<TenantId>,
    checks: AtomicU64,
}

/// How many checks pass between two sweeps of idle tenants' buckets.
const SWEEP_EVERY: u64 = 4096;

impl LimitsConfig {
    /// Checks that every limit is at least 1.
    ///
    /// # Errors
    ///
    /// [`LimitsError`] naming the first zero.
    pub fn check(&self) -> Result<(), LimitsError> {
        for (value, field) in [
            (self.requests_per_second, "requests_per_second"),
            (self.request_burst, "request_burst"),
            (self.changes_per_minute, "changes_per_minute"),
            (self.change_burst, "change_burst"),
        ] {
            if value == 0 {
                return Err(LimitsError { field });
            }
        }
        Ok(())
    }
}

impl TenantLimits {
    /// The buckets for `config`; a zero that [`LimitsConfig::check`] would
    /// refuse counts as 1.
    pub(crate) fn new(config: &LimitsConfig) -> Self {
        let at_least_one = |value: u32| NonZeroU32::new(value).unwrap_or(NonZeroU32::MIN);
        let requests = Quota::per_second(at_least_one(config.requests_per_second))
            .allow_burst(at_least_one(config.request_burst));
        let changes = Quota::per_minute(at_least_one(config.changes_per_minute))
            .allow_burst(at_least_one(config.change_burst));
        Self {
            requests: DefaultKeyedRateLimiter::keyed(requests),
            changes: DefaultKeyedRateLimiter::keyed(changes),
            checks: AtomicU64::new(0),
        }
    }

    /// Counts one API request of `tenant`.
    pub(crate) fn request(&self, tenant: &TenantId) -> Result<(), Error> {
        self.sweep();
        check(&self.requests, tenant, "API requests")
    }

    /// Counts one request of `tenant` that starts work.
    pub(crate) fn change(&self, tenant: &TenantId) -> Result<(), Error> {
        check(
            &self.changes,
            tenant,
            "requests that connect, sync or disconnect accounts",
        )
    }

    /// Forgets the buckets of tenants that have not been seen for long
    /// enough that their buckets are full again, now and then, so memory
    /// follows the active tenants, not every tenant ever seen.
    fn sweep(&self) {
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.requests.retain_recent();
            self.changes.retain_recent();
        }
    }
}

fn check(
    limiter: &DefaultKeyedRateLimiter<TenantId>,
    tenant: &TenantId,
    what: &str,
) -> Result<(), Error> {
    limiter.check_key(tenant).map_err(|not_until| {
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        // Whole seconds, rounded up: what Retry-After can say.
        let retry_after = Duration::from_secs(wait.as_secs() + u64::from(wait.subsec_nanos() > 0));
        Error::TooManyRequests {
            message: format!(
                "too many {what} for this tenant; retry in {} s",
                retry_after.as_secs()
            ),
            retry_after,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(id: &str) -> TenantId {
        TenantId::parse(id).unwrap()
    }

    #[test]
    fn a_tenant_over_its_burst_waits_and_others_do_not() {
        let limits = TenantLimits::new(&LimitsConfig {
            requests_per_second: 1,
            request_burst: 3,
            ..LimitsConfig::default()
        });
        let acme = tenant("acme");

        for _ in 0..3 {
            limits.request(&acme).unwrap();
        }
        let refused = limits.request(&acme).unwrap_err();

        let Error::TooManyRequests { retry_after, .. } = refused else {
            panic!("{refused:?}")
        };
        assert_eq!(retry_after, Duration::from_secs(1));
        assert!(limits.request(&tenant("globex")).is_ok());
    }

    #[test]
    fn zero_is_refused() {
        let error = LimitsConfig {
            change_burst: 0,
            ..LimitsConfig::default()
        }
        .check()
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "gateway.limits.change_burst must be at least 1"
        );
    }
}
