//! The pending OAuth authorizations, between `/oauth/authorize` and
//! `/oauth/callback`, in a JetStream key-value bucket.
//!
//! Any gateway replica can finish a flow another one started: the `state`
//! parameter is the key, and the entry says whose flow it is (tenant and
//! connector), which browser started it (the digest of its binding cookie,
//! see [`crate::binding`]) and what the code exchange needs (the PKCE
//! verifier, or an OAuth 1.0a request token's secret). An entry is single
//! use (taking it purges it with a check on its revision, so two callbacks
//! racing with the same `state` cannot both win) and expires: the bucket
//! drops entries older than the configured lifetime, and
//! [`PendingStates::take`] refuses one that is older even if the bucket has
//! not dropped it yet. A callback from another browser (no binding cookie,
//! or another one) is refused without consuming the entry, so it cannot
//! spoil the flow of the browser that started it.
//!
//! The verifier and the request-token secret are short-lived and open
//! nothing on their own (a code exchange also needs the code, which only
//! reaches the registered redirect URI, and the client secret).

use std::time::Duration;

use async_nats::jetstream::{self, kv};
use chrono::{DateTime, Utc};
use fleet_events::{ConnectorId, TenantId};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

/// The bucket's name; the gateway's NATS user may use only this one.
pub const BUCKET: &str = "oauth_state";

/// Why the pending-state bucket failed.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The bucket could not be opened or created.
    #[error("failed to open the JetStream key-value bucket {BUCKET}")]
    Open(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A state could not be written.
    #[error("failed to store an OAuth state in {BUCKET}")]
    Put(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A state could not be read or consumed.
    #[error("failed to read an OAuth state from {BUCKET}")]
    Take(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// One authorization in progress.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Pending {
    /// Whose flow it is.
    pub(crate) tenant: TenantId,
    /// Which catalog entry.
    pub(crate) connector: ConnectorId,
    /// When `/oauth/authorize` answered.
    pub(crate) created_at: DateTime<Utc>,
    /// The digest of the browser's binding cookie; entries written before
    /// bindings existed have none and match no browser.
    #[serde(default)]
    pub(crate) binding: Option<String>,
    /// What the exchange needs.
    pub(crate) flow: Flow,
}

/// The protocol-specific part of a [`Pending`].
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Flow {
    /// OAuth 2.0: the PKCE verifier, when the provider uses PKCE.
    #[serde(rename = "oauth2")]
    OAuth2 {
        #[serde(default, with = "fleet_connectors::clear_text::optional_secret")]
        pkce_verifier: Option<SecretString>,
    },
    /// OAuth 1.0a: the request token and its secret.
    #[serde(rename = "oauth1")]
    OAuth1 {
        request_token: String,
        #[serde(with = "fleet_connectors::clear_text::secret")]
        token_secret: SecretString,
    },
}

/// What [`PendingStates::take`] found.
#[derive(Debug)]
pub(crate) enum Taken {
    /// The state was pending and is now consumed.
    Found(Pending),
    /// Unknown, already used, or expired and dropped by the bucket.
    Unknown,
    /// Known but older than the lifetime; consumed all the same.
    Expired,
    /// Pending, but the request does not carry the binding of the browser
    /// that started it; left in place.
    OtherBrowser(Pending),
}

/// The bucket of pending states; cheap to clone.
#[derive(Debug, Clone)]
pub struct PendingStates {
    kv: kv::Store,
    ttl: Duration,
}

impl PendingStates {
    /// Opens the bucket, creating it with `ttl` as its entries' lifetime
    /// when it does not exist.
    ///
    /// # Errors
    ///
    /// [`StateError::Open`] when NATS refuses or cannot be reached.
    pub async fn open(js: &jetstream::Context, ttl: Duration) -> Result<Self, StateError> {
        let kv = match js.get_key_value(BUCKET).await {
            Ok(kv) => kv,
            Err(error) if error.kind() == jetstream::context::KeyValueErrorKind::GetBucket => js
                .create_key_value(kv::Config {
                    bucket: BUCKET.to_owned(),
                    description: "Pending OAuth authorizations, by state".to_owned(),
                    history: 1,
                    max_age: ttl,
                    max_value_size: 4096,
                    storage: jetstream::stream::StorageType::File,
                    ..kv::Config::default()
                })
                .await
                .map_err(|e| StateError::Open(Box::new(e)))?,
            Err(error) => return Err(StateError::Open(Box::new(error))),
        };
        Ok(Self { kv, ttl })
    }

    /// How long a state stays usable.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    pub(crate) async fn put(&self, state: &str, pending: &Pending) -> Result<(), StateError> {
        let value = serde_json::to_vec(pending).map_err(|e| StateError::Put(Box::new(e)))?;
        self.kv
            .create(state, value.into())
            .await
            .map_err(|e| StateError::Put(Box::new(e)))?;
        Ok(())
    }

    /// Consumes `state` when `binding` (the value of the request's binding
    /// cookie) is the one it was started with: at most one caller ever gets
    /// [`Taken::Found`] for a given state.
    pub(crate) async fn take(
        &self,
        state: &str,
        binding: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Taken, StateError> {
        if !valid_key(state) {
            return Ok(Taken::Unknown);
        }
        let Some(entry) = self
            .kv
            .entry(state)
            .await
            .map_err(|e| StateError::Take(Box::new(e)))?
        else {
            return Ok(Taken::Unknown);
        };
        if entry.operation != kv::Operation::Put {
            // A purge marker: the state was used.
            return Ok(Taken::Unknown);
        }
        let pending: Pending =
            serde_json::from_slice(&entry.value).map_err(|e| StateError::Take(Box::new(e)))?;
        let bound = match (&pending.binding, binding) {
            (Some(stored), Some(presented)) => crate::binding::matches(stored, presented),
            _ => false,
        };
        if !bound {
            return Ok(Taken::OtherBrowser(pending));
        }
        match self
            .kv
            .purge_expect_revision(state, Some(entry.revision))
            .await
        {
            Ok(()) => {}
            // Someone consumed it between the read and the purge.
            Err(error) if error.kind() == kv::PurgeErrorKind::WrongLastRevision => {
                return Ok(Taken::Unknown);
            }
            Err(error) => return Err(StateError::Take(Box::new(error))),
        }
        let age = now.signed_duration_since(pending.created_at);
        let expired = age.to_std().map_or(true, |age| age > self.ttl);
        Ok(if expired {
            Taken::Expired
        } else {
            Taken::Found(pending)
        })
    }
}

/// A value NATS accepts as a key, which every `state` this gateway issues
/// is (base64url); anything else cannot be one of ours.
fn valid_key(state: &str) -> bool {
    !state.is_empty()
        && state.len() <= 128
        && state
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_url_safe_keys_are_looked_up() {
        assert!(valid_key("aZ09-_xyz"));
        assert!(!valid_key(""));
        assert!(!valid_key("a.b"));
        assert!(!valid_key("a b"));
        assert!(!valid_key(&"a".repeat(129)));
    }
}
