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
//!
//! Neither the `state` nor the entry's secrets appear in NATS in clear,
//! where a subject or a payload may be logged (`async-nats` logs every
//! subject, and every payload it receives, at `trace`) or read by whoever
//! may read the bucket: an entry's key is a digest of its `state`
//! ([`key`]), and its value is encrypted and authenticated
//! (ChaCha20-Poly1305) with a key derived from the `state` ([`seal`]). Only
//! a callback that presents the `state` finds and opens its entry, and an
//! entry altered in the bucket does not open.

use std::fmt;

use std::time::Duration;

use async_nats::jetstream::{self, kv};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::{Aead as _, KeyInit as _, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use chrono::{DateTime, Utc};
use fleet_connectors::ConnectionValues;
use fleet_events::{ConnectorId, TenantId};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

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
    /// The digest of the browser's binding cookie.
    pub(crate) binding: String,
    /// What the exchange needs.
    pub(crate) flow: Flow,
}

/// The protocol-specific part of a [`Pending`]. Its `Debug` shows no
/// secret: the request token is a temporary credential too.
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Flow {
    /// OAuth 2.0: the PKCE verifier, when the provider uses PKCE, and the
    /// connection's settings, which the code exchange needs again.
    #[serde(rename = "oauth2")]
    OAuth2 {
        #[serde(default, with = "fleet_connectors::clear_text::optional_secret")]
        pkce_verifier: Option<SecretString>,
        #[serde(default)]
        settings: ConnectionValues,
    },
    /// OAuth 1.0a: the request token and its secret.
    #[serde(rename = "oauth1")]
    OAuth1 {
        request_token: String,
        #[serde(with = "fleet_connectors::clear_text::secret")]
        token_secret: SecretString,
    },
}

impl fmt::Debug for Flow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OAuth2 {
                pkce_verifier,
                settings,
            } => f
                .debug_struct("OAuth2")
                .field("pkce_verifier", pkce_verifier)
                .field("settings", settings)
                .finish(),
            Self::OAuth1 { token_secret, .. } => f
                .debug_struct("OAuth1")
                .field("request_token", &"[REDACTED]")
                .field("token_secret", token_secret)
                .finish(),
        }
    }
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
            .create(key(state), seal(state, &value)?.into())
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
        let key = key(state);
        let Some(entry) = self
            .kv
            .entry(&key)
            .await
            .map_err(|e| StateError::Take(Box::new(e)))?
        else {
            return Ok(Taken::Unknown);
        };
        if entry.operation != kv::Operation::Put {
            // A purge marker: the state was used.
            return Ok(Taken::Unknown);
        }
        let Some(value) = open(state, &entry.value) else {
            // Altered in the bucket: nothing this gateway can trust.
            tracing::warn!("A pending OAuth authorization did not open; treating it as unknown.");
            return Ok(Taken::Unknown);
        };
        let pending: Pending =
            serde_json::from_slice(&value).map_err(|e| StateError::Take(Box::new(e)))?;
        let bound =
            binding.is_some_and(|presented| crate::binding::matches(&pending.binding, presented));
        if !bound {
            return Ok(Taken::OtherBrowser(pending));
        }
        match self
            .kv
            .purge_expect_revision(&key, Some(entry.revision))
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

/// The bucket key of `state`: base64url(SHA-256(label, state)), so the
/// `state` itself never appears in a subject.
pub(crate) fn key(state: &str) -> String {
    let digest = Sha256::new()
        .chain_update(b"connector-fleet oauth_state key v1\0")
        .chain_update(state.as_bytes())
        .finalize();
    URL_SAFE_NO_PAD.encode(digest)
}

/// The ChaCha20-Poly1305 key of `state`'s entry: SHA-256 of a label and
/// the `state`. Every `state` is 256 random bits, so its hash is a uniform
/// key, used for this one entry only.
fn cipher(state: &str) -> ChaCha20Poly1305 {
    let key = Sha256::new()
        .chain_update(b"connector-fleet oauth_state cipher v1\0")
        .chain_update(state.as_bytes())
        .finalize();
    ChaCha20Poly1305::new(&key)
}

/// `value` encrypted and authenticated for `state`'s entry, bound to its
/// bucket key: a random nonce followed by the ciphertext and tag.
pub(crate) fn seal(state: &str, value: &[u8]) -> Result<Vec<u8>, StateError> {
    let mut nonce = [0_u8; NONCE_LEN];
    getrandom::fill(&mut nonce).map_err(|e| StateError::Put(Box::new(e)))?;
    let sealed = cipher(state)
        .encrypt(
            &Nonce::from(nonce),
            Payload {
                msg: value,
                aad: key(state).as_bytes(),
            },
        )
        .map_err(|_| StateError::Put("the pending authorization could not be encrypted".into()))?;
    Ok([nonce.as_slice(), &sealed].concat())
}

/// The value of `state`'s entry, or `None` when `sealed` was not sealed
/// for this `state` or was altered.
pub(crate) fn open(state: &str, sealed: &[u8]) -> Option<Vec<u8>> {
    let (nonce, ciphertext) = sealed.split_at_checked(NONCE_LEN)?;
    let nonce: [u8; NONCE_LEN] = nonce.try_into().ok()?;
    cipher(state)
        .decrypt(
            &Nonce::from(nonce),
            Payload {
                msg: ciphertext,
                aad: key(state).as_bytes(),
            },
        )
        .ok()
}

/// Bytes of a ChaCha20-Poly1305 nonce.
const NONCE_LEN: usize = 12;

/// A value NATS accepts as a key, which every `state` this gateway issues
/// is (base64url); anything else cannot be one of ours.
pub(crate) fn valid_key(state: &str) -> bool {
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
    fn an_entry_shows_neither_its_state_nor_its_secrets_and_opens_with_the_state() {
        let state = "hV3bq1yJ5s0f6lZr9kXo2T7wQeC4uA8mNpRgLdYiKxE";
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let pending = Pending {
            tenant: TenantId::parse("acme").unwrap(),
            connector: ConnectorId::parse("google-analytics").unwrap(),
            created_at: Utc::now(),
            binding: "digest".to_owned(),
            flow: Flow::OAuth2 {
                pkce_verifier: Some(verifier.into()),
                settings: ConnectionValues::default(),
            },
        };
        let clear = serde_json::to_vec(&pending).unwrap();

        let sealed = seal(state, &clear).unwrap();
        let key = key(state);

        let stored = format!("{key} {}", String::from_utf8_lossy(&sealed));
        assert!(!stored.contains(state), "{stored}");
        assert!(!stored.contains(verifier), "{stored}");
        assert!(!stored.contains("acme"), "{stored}");
        assert!(valid_key(&key));
        assert_eq!(open(state, &sealed).as_deref(), Some(clear.as_slice()));
        assert_eq!(open("another-state", &sealed), None);
        let mut altered = sealed;
        *altered.last_mut().unwrap() ^= 1;
        assert_eq!(
            open(state, &altered),
            None,
            "an altered entry does not open"
        );
        assert!(!format!("{pending:?}").contains(verifier));
    }

    #[test]
    fn an_oauth1_flow_debugs_without_its_tokens() {
        let flow = Flow::OAuth1 {
            request_token: "request-token-value".to_owned(),
            token_secret: "token-secret-value".into(),
        };

        let debug = format!("{flow:?}");

        assert!(!debug.contains("request-token-value"), "{debug}");
        assert!(!debug.contains("token-secret-value"), "{debug}");
    }

    #[test]
    fn only_url_safe_keys_are_looked_up() {
        assert!(valid_key("aZ09-_xyz"));
        assert!(!valid_key(""));
        assert!(!valid_key("a.b"));
        assert!(!valid_key("a b"));
        assert!(!valid_key(&"a".repeat(129)));
    }
}
