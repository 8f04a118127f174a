use std::time::Duration;

use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::{Client, Error};

/// Keeps a [`Client`]'s token alive until shutdown.
///
/// Two thirds into the token's TTL it renews the token (`auth/token/renew-self`). With AppRole
/// it logs in again instead when the token is not renewable, when renewal is refused, or when
/// renewal grants less time than before (the token is reaching its max TTL). A token that never
/// expires (TTL 0, such as a root token) needs nothing. Transient failures are retried every
/// sixth of the TTL (at most every 5 s) while the token lasts.
///
/// Without a running renewer, requests fail with [`Error::PermissionDenied`] once the token
/// expires.
#[derive(Debug)]
pub struct Renewer {
    client: Client,
}

impl Renewer {
    pub(crate) fn new(client: Client) -> Self {
        Self { client }
    }

    /// Renews or replaces the token until `shutdown` is cancelled.
    ///
    /// # Errors
    ///
    /// Returns when the token can no longer be kept alive: with token auth, when Vault refuses
    /// to renew it (it expired, was revoked or reached its max TTL); with AppRole, when Vault
    /// refuses the login ([`Error::Login`]). Transient failures never end the loop.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), Error> {
        let mut retry_at = None;
        loop {
            let lease = self.client.lease();
            let Some(at) = retry_at.take().or_else(|| self.refresh_at(&lease)) else {
                break;
            };
            tokio::select! {
                biased;
                () = shutdown.cancelled() => return Ok(()),
                () = sleep_until(at) => {}
            }
            match self.refresh(&lease).await {
                Ok(()) => {}
                Err(error) if error.is_transient() => {
                    warn!(error.message = %error, "Refreshing the Vault token failed; trying again.");
                    retry_at = Some(Instant::now() + lease.retry_delay());
                }
                Err(error) => return Err(error),
            }
        }
        shutdown.cancelled().await;
        Ok(())
    }

    /// When to refresh the token next; `None` when there is nothing to do: the token never
    /// expires, or it is a configured token that cannot be renewed.
    fn refresh_at(&self, lease: &Lease) -> Option<Instant> {
        if lease.ttl.is_zero() {
            debug!("The Vault token does not expire; nothing to renew.");
            return None;
        }
        if !lease.renewable && !self.client.can_login() {
            warn!(
                ttl_secs = lease.ttl.as_secs(),
                "The configured Vault token is not renewable; requests fail once it expires."
            );
            return None;
        }
        Some(lease.refresh_at())
    }

    async fn refresh(&self, lease: &Lease) -> Result<(), Error> {
        let can_login = self.client.can_login();
        if lease.renewable {
            match self.client.renew().await {
                Ok(renewed) if !can_login || renewed.ttl >= lease.ttl => {
                    debug!(ttl_secs = renewed.ttl.as_secs(), "Renewed the Vault token.");
                    return Ok(());
                }
                Ok(renewed) => {
                    info!(
                        ttl_secs = renewed.ttl.as_secs(),
                        "The Vault token is reaching its max TTL; logging in again."
                    );
                }
                Err(error) if error.is_transient() || !can_login => return Err(error),
                Err(error) => {
                    warn!(error.message = %error, "Vault refused to renew the token; logging in again.");
                }
            }
        }
        self.client.login().await?;
        info!("Logged in to Vault again.");
        Ok(())
    }
}

/// What is known about the current token's lifetime.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lease {
    /// The TTL granted by the last login, lookup or renewal; zero when the token never expires.
    ttl: Duration,
    /// When that TTL was granted.
    granted_at: Instant,
    renewable: bool,
}

impl Lease {
    pub(crate) fn new(ttl_secs: u64, renewable: bool) -> Self {
        Self {
            ttl: Duration::from_secs(ttl_secs),
            granted_at: Instant::now(),
            renewable,
        }
    }

    /// Two thirds into the TTL: late enough not to renew needlessly, early enough to leave a
    /// third of the TTL for retries and a new login.
    fn refresh_at(&self) -> Instant {
        self.granted_at + self.ttl * 2 / 3
    }

    /// The pause after a transient failure: at least two more tries fit in the last third.
    fn retry_delay(&self) -> Duration {
        (self.ttl / 6).min(Duration::from_secs(5))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_is_refreshed_two_thirds_into_its_ttl() {
        let lease = Lease::new(3, true);

        assert_eq!(
            lease.refresh_at() - lease.granted_at,
            Duration::from_secs(2)
        );
        assert_eq!(lease.retry_delay(), Duration::from_millis(500));
        assert_eq!(
            Lease::new(3_600, true).retry_delay(),
            Duration::from_secs(5)
        );
    }
}
