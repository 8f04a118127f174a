//! Webhooks: connection state changes and sync completions, delivered to
//! each tenant's endpoints, signed, in order per connection, at least once.
//!
//! Two parts:
//!
//! - the webhook step ([`Webhooks`]) reads the status changes on its own
//!   durable consumer (`webhook`, one message at a time) and files each one
//!   a tenant's endpoints receive as a delivery per endpoint in Postgres
//!   ([`fleet_store::Store::file_webhook_event`]); filing is idempotent, so
//!   a redelivered status files nothing twice;
//! - the delivery loop ([`Dispatcher`]) sends due deliveries, the oldest
//!   pending one of each endpoint and connection at a time, signed with the
//!   endpoint's secret, and retries a failed one with exponential backoff up
//!   to [`Config::max_attempts`], after which it is `failed` in the
//!   endpoint's delivery log until redelivered by hand.
//!
//! Deliveries wait in Postgres rather than on the consumer, so an endpoint
//! that is down holds back only its own deliveries, and each has a log
//! entry the tenant can read (`GET /api/webhooks/{id}/deliveries`).
//!
//! What is sent: `{"id", "type", "occurred_at", "tenant", "connection",
//! "connector", "data"}` where `type` is `connection.state_changed`
//! (`data.state`: `connected` once the credentials are stored,
//! `reauth_required` with `reason`, `disconnected`) or `sync.completed`
//! (`data`: `result` `synced` or `partial`, `records`, `added`, `updated`,
//! `deleted`, `seen`, `run_id`, `duration_ms`, `completed_at`, and
//! `reason` when partial). `id` is the status event's id, the same on
//! every attempt: the receiver's deduplication key.

use std::time::Duration;

use fleet_bus::{Context, Handler, HandlerError};
use fleet_connectors::webhook::{Delivered, Sender, Signer};
use fleet_events::{ConnectionStatus, Envelope, StatusChanged};
use fleet_store::{DeliveryEnd, DueDelivery, Store, WebhookEvent};
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::{Deps, failure};

/// Webhook delivery settings (`FLEET_WEBHOOKS__*`); webhooks are off
/// without them.
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    /// The operator's key from which each endpoint's signing secret is
    /// derived (HMAC-SHA256 of the endpoint id). Changing it changes every
    /// endpoint's secret. Never logged.
    pub signing_key: SecretString,
    /// How often the delivery loop looks for due deliveries when it found
    /// none.
    #[serde(
        rename = "poll_interval_ms",
        default = "defaults::poll",
        with = "millis"
    )]
    pub poll_interval: Duration,
    /// Longest time one delivery may take.
    #[serde(
        rename = "request_timeout_ms",
        default = "defaults::timeout",
        with = "millis"
    )]
    pub request_timeout: Duration,
    /// Wait after the first failed attempt; it doubles per attempt.
    #[serde(
        rename = "min_backoff_ms",
        default = "defaults::min_backoff",
        with = "millis"
    )]
    pub min_backoff: Duration,
    /// Longest wait between attempts.
    #[serde(
        rename = "max_backoff_ms",
        default = "defaults::max_backoff",
        with = "millis"
    )]
    pub max_backoff: Duration,
    /// Attempts before a delivery is given up (`failed`).
    #[serde(default = "defaults::max_attempts")]
    pub max_attempts: u32,
}

mod defaults {
    use std::time::Duration;

    pub(super) fn poll() -> Duration {
        Duration::from_secs(1)
    }
    pub(super) fn timeout() -> Duration {
        Duration::from_secs(10)
    }
    pub(super) fn min_backoff() -> Duration {
        Duration::from_secs(5)
    }
    pub(super) fn max_backoff() -> Duration {
        Duration::from_secs(3600)
    }
    pub(super) fn max_attempts() -> u32 {
        15
    }
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

impl Config {
    /// Settings with `signing_key` and every default.
    pub fn new(signing_key: SecretString) -> Self {
        Self {
            signing_key,
            poll_interval: defaults::poll(),
            request_timeout: defaults::timeout(),
            min_backoff: defaults::min_backoff(),
            max_backoff: defaults::max_backoff(),
            max_attempts: defaults::max_attempts(),
        }
    }

    /// The wait after failed attempt `attempt` (from 1).
    fn backoff(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(30);
        self.min_backoff
            .saturating_mul(1 << doublings)
            .min(self.max_backoff)
    }
}

/// The webhook step: files the status changes endpoints receive.
#[derive(Debug, Clone)]
pub struct Webhooks {
    store: Store,
}

impl Webhooks {
    /// A webhook step filing deliveries in `deps`' store.
    pub fn new(deps: &Deps) -> Self {
        Self {
            store: deps.store.clone(),
        }
    }
}

impl Handler for Webhooks {
    type Payload = StatusChanged;

    async fn handle(
        &self,
        event: &Envelope<StatusChanged>,
        _ctx: &mut Context,
    ) -> Result<(), HandlerError> {
        let Some((event_type, data)) = described(&event.data.status) else {
            return Ok(());
        };
        let body = json!({
            "id": event.id,
            "type": event_type,
            "occurred_at": event.occurred_at,
            "tenant": event.tenant,
            "connection": event.connection,
            "connector": event.connector,
            "data": data,
        })
        .to_string();
        let connection = event.connection.to_string();
        let filed = WebhookEvent {
            tenant: &event.tenant,
            connection: &connection,
            event_id: event.id.as_uuid(),
            event_type,
            payload: &body,
        };
        let count = failure::in_store(|| self.store.file_webhook_event(filed)).await?;
        if count > 0 {
            tracing::debug!(deliveries = count, event_type, "Filed webhook deliveries.");
        }
        Ok(())
    }
}

/// The webhook type and `data` of a status endpoints receive; `None` for
/// the others (progress, validation, retries).
fn described(status: &ConnectionStatus) -> Option<(&'static str, Value)> {
    const STATE: &str = "connection.state_changed";
    const SYNC: &str = "sync.completed";
    Some(match status {
        // Published by the save step once the credentials are active.
        ConnectionStatus::Saving => (STATE, json!({"state": "connected"})),
        ConnectionStatus::ReauthRequired { reason } => {
            (STATE, json!({"state": "reauth_required", "reason": reason}))
        }
        ConnectionStatus::Disconnected => (STATE, json!({"state": "disconnected"})),
        ConnectionStatus::Synced {
            records,
            counts,
            duration_ms,
            last_sync_at,
            run_id,
        } => (
            SYNC,
            json!({"result": "synced", "records": records, "added": counts.added,
                "updated": counts.updated, "deleted": counts.deleted, "seen": counts.seen,
                "run_id": run_id, "duration_ms": duration_ms, "completed_at": last_sync_at}),
        ),
        ConnectionStatus::Partial {
            records,
            counts,
            duration_ms,
            last_sync_at,
            reason,
            run_id,
        } => (
            SYNC,
            json!({"result": "partial", "records": records, "added": counts.added,
                "updated": counts.updated, "deleted": counts.deleted, "seen": counts.seen,
                "run_id": run_id, "duration_ms": duration_ms, "completed_at": last_sync_at,
                "reason": reason}),
        ),
        _ => return None,
    })
}

/// How the delivery loop sends: the egress-checked client, the signer and
/// the retry settings. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Delivery {
    sender: Sender,
    signer: Signer,
    config: std::sync::Arc<Config>,
}

impl Delivery {
    /// Sends under the egress rule of `connectors` with the settings of
    /// `config`.
    ///
    /// # Errors
    ///
    /// The HTTP client cannot be built.
    pub fn new(
        config: Config,
        connectors: &fleet_connectors::Config,
    ) -> Result<Self, fleet_connectors::BuildError> {
        Ok(Self {
            sender: Sender::new(connectors, config.request_timeout)?,
            signer: Signer::new(config.signing_key.clone()),
            config: std::sync::Arc::new(config),
        })
    }
}

/// Deliveries claimed per round.
const BATCH: u32 = 32;

/// The delivery loop; see the [module docs](self).
#[derive(Debug)]
pub struct Dispatcher {
    store: Store,
    delivery: Delivery,
}

impl Dispatcher {
    /// A delivery loop over `store`'s deliveries.
    pub fn new(store: Store, delivery: Delivery) -> Self {
        Self { store, delivery }
    }

    /// Sends due deliveries until `shutdown`; a round under way finishes
    /// first (each delivery is bounded by the request timeout).
    pub async fn run(self, shutdown: CancellationToken) {
        tracing::info!("Webhook delivery loop started.");
        loop {
            let sent = self.round().await;
            if sent > 0 && !shutdown.is_cancelled() {
                continue;
            }
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(self.delivery.config.poll_interval) => {}
            }
        }
        tracing::info!("Webhook delivery loop stopped.");
    }

    /// Claims and sends one batch of due deliveries; returns how many.
    async fn round(&self) -> usize {
        // A lease longer than one delivery can take, so no other process
        // sends it meanwhile.
        let lease = self.delivery.config.request_timeout * 3;
        let due = match self.store.claim_webhook_deliveries(BATCH, lease).await {
            Ok(due) => due,
            Err(e) => {
                tracing::warn!(error.message = %e, error.cause_chain = ?e, "Could not claim webhook deliveries.");
                return 0;
            }
        };
        futures::future::join_all(due.iter().map(|delivery| self.deliver(delivery))).await;
        due.len()
    }

    #[tracing::instrument(skip_all, fields(delivery = due.id, endpoint = %due.endpoint_id, event_id = %due.event_id, attempt = due.attempts))]
    async fn deliver(&self, due: &DueDelivery) {
        let config = &self.delivery.config;
        let delivered = match url::Url::parse(&due.url) {
            Ok(url) => {
                self.delivery
                    .sender
                    .send(
                        &self.delivery.signer,
                        &due.endpoint_id.to_string(),
                        &url,
                        &due.event_id.to_string(),
                        due.payload.clone().into_bytes(),
                    )
                    .await
            }
            Err(e) => Delivered::Failed {
                status: None,
                error: format!("the endpoint URL is invalid: {e}"),
            },
        };
        let (end, outcome) = match &delivered {
            Delivered::Accepted { status } => {
                (DeliveryEnd::Delivered { status: *status }, "delivered")
            }
            Delivered::Failed { status, error } => {
                let give_up = due.attempts >= config.max_attempts;
                tracing::warn!(status, error, give_up, "Webhook delivery failed.");
                let end = DeliveryEnd::Failed {
                    status: *status,
                    error,
                    retry_in: config.backoff(due.attempts),
                    give_up,
                };
                (end, if give_up { "given_up" } else { "failed" })
            }
        };
        metrics::counter!("fleet_webhook_deliveries_total", "outcome" => outcome).increment(1);
        if let Err(e) = self.store.finish_webhook_delivery(due.id, end).await {
            tracing::warn!(error.message = %e, "Could not record the webhook delivery; its lease lapses and it is sent again.");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_its_minimum_up_to_its_maximum() {
        let config = Config {
            min_backoff: Duration::from_secs(5),
            max_backoff: Duration::from_secs(60),
            ..Config::new("k".to_owned().into())
        };
        let waits: Vec<u64> = (1..=6).map(|a| config.backoff(a).as_secs()).collect();
        assert_eq!(waits, [5, 10, 20, 40, 60, 60]);
        assert_eq!(config.backoff(u32::MAX), Duration::from_secs(60));
    }

    #[test]
    fn only_state_changes_and_sync_completions_are_sent() {
        assert!(described(&ConnectionStatus::Validating).is_none());
        assert!(
            described(&ConnectionStatus::Syncing {
                records: 1,
                pages: 1,
                stream: None
            })
            .is_none()
        );
        let (kind, data) = described(&ConnectionStatus::Saving).unwrap();
        assert_eq!(
            (kind, data["state"].as_str()),
            ("connection.state_changed", Some("connected"))
        );
        let (kind, data) = described(&ConnectionStatus::Disconnected).unwrap();
        assert_eq!(
            (kind, data["state"].as_str()),
            ("connection.state_changed", Some("disconnected"))
        );
    }
}
