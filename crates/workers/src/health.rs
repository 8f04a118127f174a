//! Connection health: a periodic, cheap check of each connection's grant
//! between syncs, and the degraded and recovered events.
//!
//! The [`Checker`] runs in every worker process that runs the sync step.
//! Each round it claims the connections whose last successful provider call
//! (a sync run, a validation, a check) and last check are both older than
//! the interval ([`fleet_store::Store::claim_health_checks`]; `SKIP LOCKED`,
//! so processes never check one connection twice) and checks each with the
//! connector's validate call, renewing an OAuth token first when it is about
//! to expire, and once more when the provider rejects it:
//!
//! - accepted: the connection is healthy again;
//! - refused for good: the connection becomes `reauth_required` (a status
//!   event, like a sync that finds the grant revoked), so a revoked grant
//!   shows within one interval instead of at the next daily sync;
//! - any other failure counts as a failure in a row.
//!
//! Failures in a row (failed sync runs and checks) that reach the
//! threshold make the connection *degraded*: a
//! [`HealthChanged`] event on `connector.health.<tenant>.<connection>`,
//! once per episode; the next success publishes `recovered`.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use fleet_bus::Publisher;
use fleet_connectors::{Credentials, ErrorClass};
use fleet_events::{
    ConnectionId, ConnectionStatus, ConnectorId, CorrelationId, Envelope, HealthChanged,
    HealthState, Payload, StatusChanged, TenantId,
};
use fleet_secrets::Version;
use fleet_store::{CheckResult, CredentialsInUse, Degraded, DueCheck, FailureSource};
use futures::StreamExt as _;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::refresh::{self, Need, RefreshError, Target};
use crate::{Deps, credentials, failure};

/// How the health checks run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthSettings {
    /// How old a connection's last provider success and last check must
    /// both be before it is checked; `None` runs no checks (failures in a
    /// row are still counted from sync runs).
    pub every: Option<Duration>,
    /// Failures in a row that make a connection degraded (at least 1).
    pub degraded_after: u32,
    /// Checks claimed per round.
    pub batch: u32,
    /// Checks one process runs at once.
    pub concurrency: usize,
}

impl Default for HealthSettings {
    fn default() -> Self {
        Self {
            every: Some(Duration::from_secs(3600)),
            degraded_after: 3,
            batch: 64,
            concurrency: 8,
        }
    }
}

impl HealthSettings {
    /// How long a round waits when it found nothing due: a tenth of the
    /// interval, between 1 s and 30 s.
    fn idle_wait(&self) -> Duration {
        self.every.map_or(Duration::from_secs(30), |every| {
            (every / 10).clamp(Duration::from_secs(1), Duration::from_secs(30))
        })
    }
}

/// Records failures and successes of provider calls and publishes the
/// degraded and recovered events they cause.
#[derive(Debug, Clone)]
pub(crate) struct Tracker {
    pub(crate) publisher: Publisher,
    pub(crate) degraded_after: u32,
}

impl Tracker {
    /// Records a failed provider call of a connection, and publishes
    /// `degraded` when it is the one that reached the threshold.
    ///
    /// Best effort: health is an observation, so a database or NATS
    /// failure here is logged, never the caller's failure.
    pub(crate) async fn failed(
        &self,
        deps: &Deps,
        who: Who<'_>,
        reason: &str,
        source: FailureSource,
    ) {
        let recorded = deps
            .store
            .record_failure(
                who.tenant,
                who.connection,
                reason,
                source,
                self.degraded_after,
            )
            .await;
        match recorded {
            Ok(Some(Degraded {
                consecutive_failures,
                since,
            })) => {
                warn!(
                    tenant = %who.tenant, connection = %who.connection, connector = %who.connector,
                    consecutive_failures, "The connection is degraded: its provider calls fail in a row."
                );
                metrics::counter!("fleet_connections_degraded_total", "provider" => who.connector.to_string())
                    .increment(1);
                let change = HealthChanged {
                    health: HealthState::Degraded,
                    consecutive_failures,
                    degraded_since: since,
                    last_failure: Some(reason.to_owned()),
                };
                self.publish(who, change, Some(episode(who, since, "degraded")))
                    .await;
            }
            Ok(None) => {}
            Err(e) => {
                warn!(error.message = %failure::describe(&e), "Could not record a failed provider call in the connection's health.");
            }
        }
    }

    /// Publishes `recovered` for a connection degraded since `since`.
    pub(crate) async fn recovered(&self, who: Who<'_>, since: DateTime<Utc>) {
        info!(tenant = %who.tenant, connection = %who.connection, "The connection recovered.");
        let change = HealthChanged {
            health: HealthState::Recovered,
            consecutive_failures: 0,
            degraded_since: since,
            last_failure: None,
        };
        self.publish(who, change, Some(episode(who, since, "recovered")))
            .await;
    }

    /// Publishes `data` about the connection, deduplicated by `msg_id`
    /// within the stream's window (a random one when `None`).
    async fn publish<P: Payload>(&self, who: Who<'_>, data: P, msg_id: Option<String>) {
        let event = Envelope::new(
            who.tenant.clone(),
            who.connection.clone(),
            who.connector.clone(),
            CorrelationId::new(),
            data,
        );
        let msg_id = msg_id.unwrap_or_else(|| event.id.to_string());
        if let Err(e) = self.publisher.publish(&event, &msg_id).await {
            warn!(error.message = %failure::describe(&e), event = P::TYPE, "Could not publish a health event.");
        }
    }
}

/// The deduplication id of one change of one degraded episode: a change
/// reported twice (two workers that both saw it) is stored once.
fn episode(who: Who<'_>, since: DateTime<Utc>, change: &str) -> String {
    format!(
        "health:{}:{}:{}:{change}",
        who.tenant,
        who.connection,
        since.timestamp_micros()
    )
}

/// The connection a health record is about.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Who<'a> {
    pub(crate) tenant: &'a TenantId,
    pub(crate) connection: &'a ConnectionId,
    pub(crate) connector: &'a ConnectorId,
}

impl<'a> From<Who<'a>> for Target<'a> {
    fn from(who: Who<'a>) -> Self {
        Target {
            tenant: who.tenant,
            connection: who.connection,
            connector: who.connector,
        }
    }
}

/// Runs the periodic health checks; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct Checker {
    deps: Deps,
    tracker: Tracker,
    settings: HealthSettings,
}

/// How one check ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Checked {
    Ok,
    Failed(String),
    /// Refused for good, with the credentials' version the check used.
    Reauth(String, Version),
    /// The check could not run for a reason of ours (the secret store or
    /// the database); it is due again an interval after it started.
    NotRun,
}

impl Checker {
    /// A checker publishing its events with `publisher`.
    pub fn new(deps: Deps, publisher: Publisher, settings: HealthSettings) -> Self {
        Self {
            deps,
            tracker: Tracker {
                publisher,
                degraded_after: settings.degraded_after.max(1),
            },
            settings,
        }
    }

    /// Checks due connections until `shutdown`; returns at once when
    /// checks are off.
    pub async fn run(self, shutdown: CancellationToken) {
        let Some(every) = self.settings.every else {
            return;
        };
        info!(
            every_secs = every.as_secs(),
            "Connection health checks are on."
        );
        let this = Arc::new(self);
        while !shutdown.is_cancelled() {
            let claimed = this
                .deps
                .store
                .claim_health_checks(every, this.settings.batch)
                .await;
            let due = match claimed {
                Ok(due) => due,
                Err(e) => {
                    warn!(error.message = %failure::describe(&e), "Could not claim health checks; trying again.");
                    Vec::new()
                }
            };
            let full = u32::try_from(due.len()).unwrap_or(u32::MAX) >= this.settings.batch;
            let checks = futures::stream::iter(due).for_each_concurrent(
                this.settings.concurrency.max(1),
                |due| {
                    let this = Arc::clone(&this);
                    async move { this.check(due).await }
                },
            );
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = checks => {}
            }
            if full {
                continue;
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(this.settings.idle_wait()) => {}
            }
        }
    }

    async fn check(&self, due: DueCheck) {
        let who = Who {
            tenant: &due.tenant,
            connection: &due.connection,
            connector: &due.connector,
        };
        let checked = self.ask(who).await;
        let outcome = match &checked {
            Checked::Ok => "ok",
            Checked::Failed(_) => "failed",
            Checked::Reauth(..) => "reauth_required",
            Checked::NotRun => "not_run",
        };
        metrics::counter!("fleet_health_checks_total", "provider" => due.connector.to_string(), "outcome" => outcome)
            .increment(1);
        match checked {
            Checked::Ok => match self
                .deps
                .store
                .record_success(who.tenant, who.connection, true)
                .await
            {
                Ok(Some(since)) => self.tracker.recovered(who, since).await,
                Ok(None) => {}
                Err(e) => {
                    warn!(error.message = %failure::describe(&e), "Could not record a health check.");
                }
            },
            Checked::Failed(reason) => {
                self.tracker
                    .failed(
                        &self.deps,
                        who,
                        &reason,
                        FailureSource::Check(CheckResult::Failed),
                    )
                    .await;
            }
            Checked::Reauth(reason, used) => {
                // The user may have connected again while the check ran:
                // new credentials are not refused by the old ones' answer.
                let now = self
                    .deps
                    .store
                    .credentials_in_use(who.tenant, who.connection)
                    .await;
                if !matches!(now, Ok(Some(CredentialsInUse::Version(v))) if v == used.get()) {
                    info!(tenant = %who.tenant, connection = %who.connection, "A health check's refused credentials were replaced meanwhile; it reports nothing.");
                    return;
                }
                info!(tenant = %who.tenant, connection = %who.connection, "A health check found the grant revoked.");
                let status = StatusChanged {
                    status: ConnectionStatus::ReauthRequired {
                        reason: reason.clone(),
                    },
                };
                self.tracker.publish(who, status, None).await;
                self.tracker
                    .failed(
                        &self.deps,
                        who,
                        &reason,
                        FailureSource::Check(CheckResult::ReauthRequired),
                    )
                    .await;
            }
            Checked::NotRun => {}
        }
    }

    /// Asks the provider whether the connection's credentials work.
    async fn ask(&self, who: Who<'_>) -> Checked {
        let connector = match self.deps.connector(who.connector) {
            Ok(connector) => connector,
            Err(e) => {
                warn!(error.message = %e, "A health check found no connector for the connection.");
                return Checked::NotRun;
            }
        };
        let current = match credentials::in_use(&self.deps, who.tenant, who.connection, None).await
        {
            Ok(current) => current,
            Err(e) => {
                warn!(error.message = %e, "A health check could not read the credentials.");
                return Checked::NotRun;
            }
        };
        let version = current.version;
        let mut credentials =
            match refresh::fresh(&self.deps, who.into(), current, Need::BeforeExpiry).await {
                Ok(credentials) => credentials,
                Err(error) => return refused(error, version),
            };
        self.note_expiry(who, &credentials.value).await;
        let mut renewed = false;
        loop {
            match connector.validate(&credentials.value).await {
                Ok(_) => return Checked::Ok,
                Err(error) if error.wants_token_refresh() && !renewed => {
                    renewed = true;
                    let version = credentials.version;
                    credentials =
                        match refresh::fresh(&self.deps, who.into(), credentials, Need::Rejected)
                            .await
                        {
                            Ok(credentials) => credentials,
                            Err(error) => return refused(error, version),
                        };
                    self.note_expiry(who, &credentials.value).await;
                }
                Err(error) => {
                    return match error.class() {
                        ErrorClass::ReauthRequired => {
                            Checked::Reauth(error.to_string(), credentials.version)
                        }
                        ErrorClass::Retryable { .. } => Checked::Failed(failure::describe(&error)),
                        ErrorClass::Permanent => Checked::Failed(error.to_string()),
                    };
                }
            }
        }
    }

    async fn note_expiry(&self, who: Who<'_>, credentials: &Credentials) {
        note_expiry(&self.deps, who, credentials).await;
    }
}

/// Notes when the credentials' access token expires, best effort (the sync
/// step records it with the run's completion instead).
async fn note_expiry(deps: &Deps, who: Who<'_>, credentials: &Credentials) {
    if let Err(e) = deps
        .store
        .note_token_expiry(who.tenant, who.connection, credentials.expires_at())
        .await
    {
        warn!(error.message = %failure::describe(&e), "Could not record the token's expiry.");
    }
}

/// What a failed renewal of the credentials at `version` means for a check.
fn refused(error: RefreshError, version: Version) -> Checked {
    match error {
        RefreshError::Reauth(reason) => Checked::Reauth(reason, version),
        RefreshError::Failed(error) => Checked::Failed(error.to_string()),
        // Our own dependencies, or a cooldown: not the provider's doing.
        RefreshError::NotAsked(error) => {
            warn!(error.message = %error, "A health check could not renew the token now.");
            Checked::NotRun
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idle_round_waits_a_tenth_of_the_interval_between_one_and_thirty_seconds() {
        let wait = |secs| {
            HealthSettings {
                every: Some(Duration::from_secs(secs)),
                ..HealthSettings::default()
            }
            .idle_wait()
        };
        assert_eq!(wait(3600), Duration::from_secs(30));
        assert_eq!(wait(100), Duration::from_secs(10));
        assert_eq!(wait(2), Duration::from_secs(1));
    }
}
