//! The meter step: reports the usage of each completed sync to Lago.
//!
//! It reads the status changes on its own durable consumer (`meter`, next
//! to the status writer's), so a Lago outage holds back usage reports
//! without holding back anything else, and loses none of them: a report
//! Lago could not take is retried with the step's backoff (at least Lago's
//! `Retry-After`) for as long as it takes, and one Lago refuses for good
//! (a 4xx other than 429) goes to the dead letters with Lago's reason.
//!
//! Each report's `transaction_id` is the sync run's id, which Lago keeps
//! unique: a report sent twice (a redelivery after a lost ack, a replayed
//! dead letter) is counted once.

use std::collections::BTreeMap;
use std::time::Duration;

use fleet_bus::{Context, Handler, HandlerError};
use fleet_events::{ConnectionStatus, Envelope, StatusChanged, TenantId};
use secrecy::SecretString;
use serde::Deserialize;
use url::Url;

mod lago;

pub use lago::{Lago, Recorded, SendError, Usage};

/// Where and how usage goes to Lago (`FLEET_METERING__*`). Metering is off
/// when there is no such configuration; when there is, the URL and the API
/// key are both required.
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    /// Lago's API base URL, such as `https://api.getlago.com`; reports go
    /// to `<url>/api/v1/events`.
    pub url: Url,
    /// Lago API key, sent as a bearer token. Never logged.
    pub api_key: SecretString,
    /// The billable metric's code the reports are counted under.
    #[serde(default = "default_metric_code")]
    pub billable_metric_code: String,
    /// Each tenant's Lago subscription (its `external_subscription_id`),
    /// by tenant id: `FLEET_METERING__SUBSCRIPTIONS__ACME=sub_acme`
    /// (environment keys are read in lowercase, as tenant ids are).
    #[serde(default)]
    pub subscriptions: BTreeMap<String, String>,
    /// The subscription of a tenant missing from `subscriptions`, with
    /// `{tenant}` standing for the tenant id (`fleet-{tenant}`). Without
    /// it, such a tenant's reports go to the dead letters, to be replayed
    /// once the subscription is configured.
    #[serde(default)]
    pub subscription_template: Option<String>,
    /// Longest time one request to Lago may take; a slower one is retried.
    #[serde(
        rename = "request_timeout_ms",
        default = "default_timeout",
        with = "millis"
    )]
    pub request_timeout: Duration,
}

fn default_metric_code() -> String {
    "connector_sync".to_owned()
}

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

impl Config {
    /// A configuration reporting to `url` with `api_key` and every default.
    pub fn new(url: Url, api_key: SecretString) -> Self {
        Self {
            url,
            api_key,
            billable_metric_code: default_metric_code(),
            subscriptions: BTreeMap::new(),
            subscription_template: None,
            request_timeout: default_timeout(),
        }
    }

    /// `tenant`'s Lago subscription: its entry in `subscriptions`, else the
    /// template filled in, else `None`.
    pub fn subscription(&self, tenant: &TenantId) -> Option<String> {
        self.subscriptions
            .get(tenant.as_str())
            .cloned()
            .or_else(|| {
                self.subscription_template
                    .as_ref()
                    .map(|template| template.replace("{tenant}", tenant.as_str()))
            })
    }
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

/// Reports the usage of each `synced` or `partial` status to Lago, or,
/// with metering off, acknowledges every status without sending anything,
/// so turning metering on later does not bill what ran before.
#[derive(Debug, Clone)]
pub struct Meter {
    lago: Option<Lago>,
}

impl Meter {
    /// A meter step sending to `lago`; `None` turns metering off.
    pub fn new(lago: Option<Lago>) -> Self {
        Self { lago }
    }
}

impl Handler for Meter {
    type Payload = StatusChanged;

    async fn handle(
        &self,
        event: &Envelope<StatusChanged>,
        _ctx: &mut Context,
    ) -> Result<(), HandlerError> {
        let Some(usage) = Usage::of(event) else {
            return Ok(());
        };
        let Some(lago) = &self.lago else {
            counted("off");
            return Ok(());
        };
        let Some(subscription) = lago.subscription(&event.tenant) else {
            counted("no_subscription");
            return Err(HandlerError::permanent(format!(
                "tenant {} has no Lago subscription: set metering.subscriptions.{} or \
                 metering.subscription_template, then replay this dead letter",
                event.tenant, event.tenant
            )));
        };
        match lago.send(&usage, &subscription).await {
            Ok(recorded) => {
                counted(match recorded {
                    Recorded::New => "recorded",
                    Recorded::AlreadyThere => "already_recorded",
                });
                tracing::info!(
                    transaction_id = %usage.transaction_id,
                    records = usage.records,
                    api_calls = usage.api_calls,
                    ?recorded,
                    "Reported the sync's usage to Lago."
                );
                Ok(())
            }
            Err(error @ SendError::Refused { .. }) => {
                counted("refused");
                Err(HandlerError::permanent(error.to_string()))
            }
            Err(error) => {
                counted("unavailable");
                Err(HandlerError::Transient {
                    retry_after: error.retry_after(),
                    reason: error.to_string(),
                })
            }
        }
    }
}

/// Counts one usage report by its outcome (`fleet_meter_reports_total`).
fn counted(outcome: &'static str) {
    metrics::counter!("fleet_meter_reports_total", "outcome" => outcome).increment(1);
}

impl Usage {
    /// The usage a status reports: `Some` for the end of a sync run
    /// (`synced` or `partial`), `None` for any other status.
    pub fn of(event: &Envelope<StatusChanged>) -> Option<Self> {
        let (counts, last_sync_at, result) = match &event.data.status {
            ConnectionStatus::Synced {
                counts,
                last_sync_at,
                ..
            } => (counts, last_sync_at, "synced"),
            ConnectionStatus::Partial {
                counts,
                last_sync_at,
                ..
            } => (counts, last_sync_at, "partial"),
            _ => return None,
        };
        // An older producer's report has no run id; its event id is
        // stable across redeliveries all the same.
        let transaction_id = event
            .data
            .status
            .run_id()
            .map_or_else(|| event.id.to_string(), |run| run.to_string());
        Some(Self {
            transaction_id,
            connection: event.connection.to_string(),
            connector: event.connector.to_string(),
            result,
            timestamp: last_sync_at.timestamp(),
            records: counts.seen,
            api_calls: counts.requests,
            added: counts.added,
            updated: counts.updated,
            deleted: counts.deleted,
        })
    }
}
