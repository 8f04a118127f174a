//! Lago's events API: `POST /api/v1/events`, one usage event per request.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use fleet_events::TenantId;
use reqwest::StatusCode;
use secrecy::ExposeSecret as _;
use serde_json::{Value, json};
use url::Url;

use super::Config;

/// Longest part of Lago's answer kept in an error message.
const MAX_DETAIL_CHARS: usize = 300;

/// What one sync run used, as reported to Lago.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usage {
    /// Lago's idempotency key: the sync run's id.
    pub transaction_id: String,
    /// The connection synced.
    pub connection: String,
    /// Its provider (catalog id).
    pub connector: String,
    /// How the run ended: `synced` or `partial`.
    pub result: &'static str,
    /// When the run ended, in Unix seconds.
    pub timestamp: i64,
    /// Records read from the provider.
    pub records: u64,
    /// Requests sent to the provider's API.
    pub api_calls: u64,
    /// Records stored for the first time.
    pub added: u64,
    /// Records whose content changed.
    pub updated: u64,
    /// Records marked deleted.
    pub deleted: u64,
}

impl Usage {
    /// The request body of Lago's "create event" call.
    fn body(&self, subscription: &str, code: &str) -> Value {
        json!({
            "event": {
                "transaction_id": self.transaction_id,
                "external_subscription_id": subscription,
                "code": code,
                "timestamp": self.timestamp,
                "properties": {
                    "records": self.records,
                    "api_calls": self.api_calls,
                    "records_added": self.added,
                    "records_updated": self.updated,
                    "records_deleted": self.deleted,
                    "connector": self.connector,
                    "connection": self.connection,
                    "result": self.result,
                },
            }
        })
    }
}

/// How Lago took a usage event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Lago stored it.
    New,
    /// Lago already had an event with its transaction id (an earlier
    /// delivery's report whose answer was lost).
    AlreadyThere,
}

/// Why Lago did not take a usage event.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Lago could not be reached or did not answer in time: try again.
    #[error("failed to reach Lago at {url}")]
    Unreachable {
        /// The events endpoint.
        url: String,
        /// Cause.
        #[source]
        source: reqwest::Error,
    },
    /// Lago answered 408, 429 or 5xx: try again, no sooner than
    /// `retry_after` when Lago says.
    #[error("Lago is unavailable: it answered {status}")]
    Unavailable {
        /// Its status.
        status: u16,
        /// Its `Retry-After`, when readable.
        retry_after: Option<Duration>,
    },
    /// Lago refused the event (a 4xx but 408 and 429): sending it again
    /// gets the same answer.
    #[error("Lago refused the usage event with {status}: {detail}")]
    Refused {
        /// Its status.
        status: u16,
        /// The start of its answer, which says why.
        detail: String,
    },
}

impl SendError {
    /// The least wait Lago asked for.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Unavailable { retry_after, .. } => *retry_after,
            Self::Unreachable { .. } | Self::Refused { .. } => None,
        }
    }
}

/// A client of Lago's events API; cheap to clone.
#[derive(Debug, Clone)]
pub struct Lago {
    client: reqwest::Client,
    endpoint: Url,
    config: Arc<Config>,
}

impl Lago {
    /// A client for the Lago of `config`.
    ///
    /// # Errors
    ///
    /// The HTTP client cannot be built (no TLS backend).
    pub fn new(config: Config) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(config.request_timeout)
            .user_agent(concat!("connector-fleet/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let mut endpoint = config.url.clone();
        if let Ok(mut segments) = endpoint.path_segments_mut() {
            segments.pop_if_empty().extend(["api", "v1", "events"]);
        }
        Ok(Self {
            client,
            endpoint,
            config: Arc::new(config),
        })
    }

    /// `tenant`'s Lago subscription; see [`Config::subscription`].
    pub fn subscription(&self, tenant: &TenantId) -> Option<String> {
        self.config.subscription(tenant)
    }

    /// Sends `usage` as an event of `subscription`.
    ///
    /// # Errors
    ///
    /// [`SendError`]: whether it is worth sending again, and why.
    pub async fn send(&self, usage: &Usage, subscription: &str) -> Result<Recorded, SendError> {
        let body = usage.body(subscription, &self.config.billable_metric_code);
        let response = self
            .client
            .post(self.endpoint.clone())
            .bearer_auth(self.config.api_key.expose_secret())
            .json(&body)
            .send()
            .await
            .map_err(|source| self.unreachable(source))?;
        let status = response.status();
        if status.is_success() {
            return Ok(Recorded::New);
        }
        if is_transient(status) {
            let retry_after = fleet_connectors::retry_after(response.headers(), Utc::now())
                .map(|wait| wait.min(fleet_connectors::MAX_RETRY_AFTER));
            return Err(SendError::Unavailable {
                status: status.as_u16(),
                retry_after,
            });
        }
        // Enough for Lago's JSON error and the detail kept from it.
        let answer = fleet_connectors::body_prefix(response, 16 * 1024).await;
        if status == StatusCode::UNPROCESSABLE_ENTITY && is_duplicate(&answer) {
            return Ok(Recorded::AlreadyThere);
        }
        Err(SendError::Refused {
            status: status.as_u16(),
            detail: String::from_utf8_lossy(&answer)
                .chars()
                .take(MAX_DETAIL_CHARS)
                .collect(),
        })
    }

    fn unreachable(&self, source: reqwest::Error) -> SendError {
        SendError::Unreachable {
            url: self.endpoint.to_string(),
            source: source.without_url(),
        }
    }
}

/// Whether a status means "try again later": 408, 429 and 5xx.
fn is_transient(status: StatusCode) -> bool {
    status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
        || status.is_server_error()
}

/// Whether Lago's 422 says an event with this transaction id exists:
/// `{"code": "validation_errors", "error_details": {"transaction_id":
/// ["value_already_exist"]}}`.
fn is_duplicate(answer: &[u8]) -> bool {
    let Ok(answer) = serde_json::from_slice::<Value>(answer) else {
        return false;
    };
    answer["error_details"]["transaction_id"]
        .as_array()
        .is_some_and(|codes| codes.iter().any(|code| code == "value_already_exist"))
}

#[cfg(test)]
mod tests {

    use super::*;

    #[test]
    fn the_endpoint_is_below_the_base_url_with_or_without_a_slash() {
        for (base, endpoint) in [
            (
                "https://api.getlago.com",
                "https://api.getlago.com/api/v1/events",
            ),
            (
                "https://lago.example/",
                "https://lago.example/api/v1/events",
            ),
            (
                "http://10.0.0.5:3000/lago/",
                "http://10.0.0.5:3000/lago/api/v1/events",
            ),
        ] {
            let config = Config::new(base.parse().unwrap(), "key".to_owned().into());
            assert_eq!(Lago::new(config).unwrap().endpoint.as_str(), endpoint);
        }
    }

    #[test]
    fn only_lagos_already_exists_answer_is_a_duplicate() {
        let duplicate = br#"{"status":422,"error":"Unprocessable Entity","code":"validation_errors","error_details":{"transaction_id":["value_already_exist"]}}"#;
        let other = br#"{"status":422,"code":"validation_errors","error_details":{"code":["metric_not_found"]}}"#;
        assert!(is_duplicate(duplicate));
        assert!(!is_duplicate(other));
        assert!(!is_duplicate(b"not json"));
    }

    #[test]
    fn the_body_has_lagos_event_shape() {
        let usage = Usage {
            transaction_id: "run-1".into(),
            connection: "c-1".into(),
            connector: "wordpress".into(),
            result: "synced",
            timestamp: 1_700_000_000,
            records: 262,
            api_calls: 5,
            added: 262,
            updated: 0,
            deleted: 0,
        };
        let body = usage.body("sub_acme", "connector_sync");
        assert_eq!(body["event"]["transaction_id"], "run-1");
        assert_eq!(body["event"]["external_subscription_id"], "sub_acme");
        assert_eq!(body["event"]["code"], "connector_sync");
        assert_eq!(body["event"]["timestamp"], 1_700_000_000);
        assert_eq!(body["event"]["properties"]["records"], 262);
        assert_eq!(body["event"]["properties"]["api_calls"], 5);
    }
}
