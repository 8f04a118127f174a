//! Webhooks: signed POSTs to endpoints a tenant chooses, under the same
//! egress rule as provider calls.
//!
//! A tenant's endpoint URL is an address a tenant chooses, as a WordPress
//! site URL is, so [`Sender`] connects only where connectors may: to the
//! public internet and the networks the operator allows
//! ([`Config::allow_private_networks`]), checked on the address actually
//! connected to, never following a redirect. [`Sender::check`] refuses
//! what is refused for certain before an endpoint is stored.
//!
//! Each delivery is signed with the endpoint's secret ([`Signer`]): the
//! receiver recomputes `HMAC-SHA256(secret, "<timestamp>.<body>")` over the
//! [`TIMESTAMP_HEADER`] and the raw body, compares it in constant time with
//! the `v1=` value of [`SIGNATURE_HEADER`], and refuses a timestamp older
//! than a few minutes, so a captured request cannot be replayed later.

use std::time::Duration;

use hmac::{Hmac, Mac as _};
use reqwest::{StatusCode, Url, redirect};
use secrecy::{ExposeSecret as _, SecretString};
use sha2::Sha256;

use crate::{
    BuildError, Config,
    egress::{self, Egress},
    http::{display_url, is_refused},
};

/// The delivery's signature: `v1=<hex HMAC-SHA256>`.
pub const SIGNATURE_HEADER: &str = "fleet-webhook-signature";
/// When the delivery was signed, in Unix seconds; part of the signed text.
pub const TIMESTAMP_HEADER: &str = "fleet-webhook-timestamp";
/// The event's id, the same on every delivery of one event: the receiver's
/// deduplication key.
pub const ID_HEADER: &str = "fleet-webhook-id";

/// Longest part of an endpoint's answer kept for the delivery log.
const MAX_ANSWER_CHARS: usize = 200;

/// Derives each endpoint's signing secret from the operator's key and
/// signs deliveries with it. The secrets are never stored: the key and an
/// endpoint's id give its secret again.
#[derive(Clone)]
pub struct Signer {
    key: SecretString,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer").finish_non_exhaustive()
    }
}

impl Signer {
    /// A signer deriving secrets from `key`, the operator's webhook key.
    pub fn new(key: SecretString) -> Self {
        Self { key }
    }

    /// The signing secret of endpoint `endpoint` (its id), as the tenant
    /// is shown it once: `whsec_` and 64 hex digits.
    pub fn secret(&self, endpoint: &str) -> SecretString {
        let derived = hmac_hex(
            self.key.expose_secret().as_bytes(),
            &[b"fleet-webhook-endpoint:", endpoint.as_bytes()],
        );
        SecretString::from(format!("whsec_{derived}"))
    }

    /// The [`SIGNATURE_HEADER`] value of `body` sent to `endpoint` at
    /// `timestamp` (Unix seconds).
    pub fn signature(&self, endpoint: &str, timestamp: i64, body: &[u8]) -> String {
        signature(&self.secret(endpoint), timestamp, body)
    }
}

/// `v1=` and the hex HMAC-SHA256 of `"<timestamp>.<body>"` under `secret`:
/// what a receiver computes to check a delivery.
pub fn signature(secret: &SecretString, timestamp: i64, body: &[u8]) -> String {
    let signed = hmac_hex(
        secret.expose_secret().as_bytes(),
        &[timestamp.to_string().as_bytes(), b".", body],
    );
    format!("v1={signed}")
}

fn hmac_hex(key: &[u8], parts: &[&[u8]]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Why an endpoint URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// Not `https` (nor `http` where allowed).
    #[error("the endpoint URL must use https")]
    Scheme,
    /// It carries a user name or password.
    #[error("the endpoint URL must not carry credentials")]
    Credentials,
    /// Its host is an address on a private or internal network.
    #[error("the endpoint's host is a private or internal network address")]
    Refused,
}

/// How one delivery went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivered {
    /// The endpoint answered 2xx.
    Accepted {
        /// Its status.
        status: u16,
    },
    /// It answered something else, or nothing; the delivery is retried.
    Failed {
        /// Its status, if it answered.
        status: Option<u16>,
        /// What went wrong, for the delivery log: the status and the start
        /// of the answer, or the transport error. No secret.
        error: String,
    },
}

/// Sends webhook deliveries under the egress rule; cheap to clone.
#[derive(Debug, Clone)]
pub struct Sender {
    client: reqwest::Client,
    egress: Egress,
    allow_http: bool,
}

impl Sender {
    /// A sender with the egress rule, `allow_http` and the user agent of
    /// `config`, and `timeout` per delivery.
    ///
    /// # Errors
    ///
    /// The HTTP client cannot be built.
    pub fn new(config: &Config, timeout: Duration) -> Result<Self, BuildError> {
        let egress = Egress::new(&config.allow_private_networks);
        let client = reqwest::Client::builder()
            .redirect(redirect::Policy::none())
            .no_proxy()
            // The connectors' host pins are for providers, not for a
            // tenant's endpoints: those resolve through DNS alone.
            .dns_resolver(egress::Resolver::new(
                egress.clone(),
                &std::collections::BTreeMap::new(),
            ))
            .timeout(timeout)
            .connect_timeout(config.connect_timeout.min(timeout))
            .user_agent(&config.user_agent)
            .build()?;
        Ok(Self {
            client,
            egress,
            allow_http: config.allow_http,
        })
    }

    /// Whether `url` may be an endpoint: https (or http where allowed), no
    /// credentials, and not an IP literal the egress rule refuses (a name
    /// is checked each time it is resolved).
    ///
    /// # Errors
    ///
    /// [`UrlError`] says what is refused.
    pub fn check(&self, url: &Url) -> Result<(), UrlError> {
        let scheme_ok = url.scheme() == "https" || (self.allow_http && url.scheme() == "http");
        if !scheme_ok {
            return Err(UrlError::Scheme);
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(UrlError::Credentials);
        }
        match url.host() {
            Some(host) if self.egress.permits_host(&host) => Ok(()),
            _ => Err(UrlError::Refused),
        }
    }

    /// POSTs `body` (JSON) to `url`, signed by `signer` for `endpoint` now,
    /// with `id` in [`ID_HEADER`].
    pub async fn send(
        &self,
        signer: &Signer,
        endpoint: &str,
        url: &Url,
        id: &str,
        body: Vec<u8>,
    ) -> Delivered {
        if let Err(e) = self.check(url) {
            return Delivered::Failed {
                status: None,
                error: e.to_string(),
            };
        }
        let timestamp = chrono::Utc::now().timestamp();
        let signature = signer.signature(endpoint, timestamp, &body);
        let sent = self
            .client
            .post(url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(ID_HEADER, id)
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(SIGNATURE_HEADER, signature)
            .body(body)
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(e) => {
                let error = if is_refused(&e) {
                    UrlError::Refused.to_string()
                } else {
                    format!("{} failed: {}", display_url(url), e.without_url())
                };
                return Delivered::Failed {
                    status: None,
                    error,
                };
            }
        };
        let status = response.status();
        if status.is_success() {
            return Delivered::Accepted {
                status: status.as_u16(),
            };
        }
        // Only the start of the answer is kept, so only that much is read.
        let answer = crate::http::body_prefix(response, MAX_ANSWER_CHARS * 4).await;
        let answer = String::from_utf8_lossy(&answer);
        Delivered::Failed {
            status: Some(status.as_u16()),
            error: failed_answer(status, &answer),
        }
    }
}

fn failed_answer(status: StatusCode, answer: &str) -> String {
    let answer = answer.trim();
    if answer.is_empty() {
        format!("the endpoint answered {status}")
    } else {
        format!(
            "the endpoint answered {status}: {}",
            crate::text::cap(answer, MAX_ANSWER_CHARS)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sender(allow_http: bool, allowed: &[&str]) -> Sender {
        let config = Config {
            allow_http,
            allow_private_networks: allowed.iter().map(|n| n.parse().unwrap()).collect(),
            ..Config::default()
        };
        Sender::new(&config, Duration::from_secs(5)).unwrap()
    }

    #[test]
    fn endpoint_urls_follow_the_egress_rule() {
        let strict = sender(false, &[]);
        let ok = |s: &Sender, url: &str| s.check(&url.parse().unwrap());
        assert_eq!(ok(&strict, "https://hooks.example.com/fleet"), Ok(()));
        assert_eq!(
            ok(&strict, "http://hooks.example.com/"),
            Err(UrlError::Scheme)
        );
        assert_eq!(
            ok(&strict, "ftp://hooks.example.com/"),
            Err(UrlError::Scheme)
        );
        assert_eq!(
            ok(&strict, "https://user:pw@hooks.example.com/"),
            Err(UrlError::Credentials)
        );
        for internal in [
            "https://127.0.0.1/",
            "https://169.254.169.254/latest/meta-data",
            "https://10.0.0.8/",
            "https://[::1]/",
            "https://[::ffff:127.0.0.1]/",
        ] {
            assert_eq!(ok(&strict, internal), Err(UrlError::Refused), "{internal}");
        }
        let local = sender(true, &["127.0.0.0/8"]);
        assert_eq!(ok(&local, "http://127.0.0.1:8080/hook"), Ok(()));
        assert_eq!(ok(&local, "http://10.0.0.8/"), Err(UrlError::Refused));
    }

    #[test]
    fn signatures_are_hmac_sha256_of_the_timestamp_and_body_under_the_endpoints_secret() {
        let signer = Signer::new("operator-key".to_owned().into());
        let secret = signer.secret("e-1");
        assert!(secret.expose_secret().starts_with("whsec_"));
        assert_eq!(secret.expose_secret().len(), "whsec_".len() + 64);
        assert_ne!(
            signer.secret("e-2").expose_secret(),
            secret.expose_secret(),
            "each endpoint has its own secret"
        );
        let body = br#"{"id":"x"}"#;
        let expected = format!(
            "v1={}",
            hmac_hex(secret.expose_secret().as_bytes(), &[b"1700000000.", body])
        );
        assert_eq!(signer.signature("e-1", 1_700_000_000, body), expected);
        assert_eq!(signature(&secret, 1_700_000_000, body), expected);
        assert_ne!(signer.signature("e-1", 1_700_000_001, body), expected);
    }
}
