use std::path::PathBuf;
use std::time::Duration;

use backon::ExponentialBuilder;
use secrecy::SecretString;
use serde::Deserialize;

/// Where the credential store lives and how [`Client`](crate::Client) logs in.
///
/// `Debug` shows no secret: the token and the secret id are [`SecretString`]s.
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    /// Base address of the Vault or OpenBao server, `http(s)://host:port`, without `/v1`.
    pub addr: String,
    /// Path of the KV version 2 secrets engine that holds the credentials; `secret` by default.
    #[serde(default = "default_mount")]
    pub mount: String,
    /// How the client gets its token.
    pub auth: Auth,
    /// Namespace sent as `X-Vault-Namespace` on every request; `None` for the root namespace.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Timeout of one HTTP request, in seconds; 10 by default. A request that times out is a
    /// transient failure, retried as [`retry`](Self::retry) says.
    #[serde(default = "default_request_timeout_secs")]
    pub request_timeout_secs: u64,
    /// Retries of transient failures within one call.
    #[serde(default)]
    pub retry: Retry,
    /// The process's cache of credential versions it has read.
    #[serde(default)]
    pub cache: CacheConfig,
}

impl Config {
    pub(crate) fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }
}

/// How the client authenticates; serde tag `method = "token" | "approle"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "method", rename_all = "lowercase")]
pub enum Auth {
    /// A token issued elsewhere, such as a development root token or one written by an agent.
    /// The client renews it while it is renewable and cannot get another one.
    Token {
        /// The Vault token.
        token: SecretString,
    },
    /// AppRole login. The client logs in again when its token cannot be renewed any more.
    AppRole {
        /// Mount path of the AppRole auth method; `approle` by default.
        #[serde(default = "default_approle_mount")]
        mount: String,
        /// The role id: it names the role and is not a secret on its own.
        role_id: String,
        /// The secret id. Give it here or in
        /// [`secret_id_file`](Auth::AppRole::secret_id_file), not both.
        #[serde(default)]
        secret_id: Option<SecretString>,
        /// A file holding the secret id (surrounding whitespace ignored),
        /// such as a mounted Kubernetes or Docker secret. It is read at every
        /// login, so a secret id rotated in the file is used from the next
        /// login on.
        #[serde(default)]
        secret_id_file: Option<PathBuf>,
    },
}

impl Auth {
    /// AppRole login with the role `role_id` and its secret id.
    pub fn approle(role_id: impl Into<String>, secret_id: impl Into<SecretString>) -> Self {
        Self::AppRole {
            mount: default_approle_mount(),
            role_id: role_id.into(),
            secret_id: Some(secret_id.into()),
            secret_id_file: None,
        }
    }

    /// The auth method's name, as in the serde tag.
    pub(crate) fn method(&self) -> &'static str {
        match self {
            Self::Token { .. } => "token",
            Self::AppRole { .. } => "approle",
        }
    }
}

/// Retries of transient failures (no answer, a timeout, 412, 429, 5xx, a sealed server) within
/// one call: exponential backoff with jitter. Other failures are never retried.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Retry {
    /// Attempts per call, the first included; 3 by default. `1` (or `0`) turns retries off.
    pub max_attempts: usize,
    /// Delay before the first retry, in milliseconds; 50 by default. It doubles with every
    /// retry, and jitter adds up to the same again.
    pub min_delay_ms: u64,
    /// Upper bound of one delay before jitter, in milliseconds; 1000 by default.
    pub max_delay_ms: u64,
}

impl Default for Retry {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            min_delay_ms: 50,
            max_delay_ms: 1_000,
        }
    }
}

impl Retry {
    pub(crate) fn backoff(&self) -> ExponentialBuilder {
        ExponentialBuilder::new()
            .with_jitter()
            .with_min_delay(Duration::from_millis(self.min_delay_ms))
            .with_max_delay(Duration::from_millis(self.max_delay_ms))
            .with_max_times(self.max_attempts.saturating_sub(1))
    }
}

/// The per-process cache of credential versions. A version never changes once written, so a
/// cached copy is never stale; the bounds limit how many secrets a process holds in memory and
/// for how long. Entries are zeroized when they leave.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(default)]
pub struct CacheConfig {
    /// Versions kept at most; 10,000 by default. `0` turns the cache off.
    pub capacity: usize,
    /// How long a version is kept after it was read from Vault, in seconds, however often it is
    /// used; 900 (15 minutes) by default. `0` turns the cache off.
    pub ttl_secs: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            capacity: 10_000,
            ttl_secs: 900,
        }
    }
}

impl CacheConfig {
    /// No cache: every read goes to Vault.
    pub const OFF: Self = Self {
        capacity: 0,
        ttl_secs: 0,
    };

    pub(crate) fn ttl(self) -> Duration {
        Duration::from_secs(self.ttl_secs)
    }
}

fn default_mount() -> String {
    "secret".to_owned()
}

fn default_approle_mount() -> String {
    "approle".to_owned()
}

fn default_request_timeout_secs() -> u64 {
    10
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn approle_config_deserializes_with_defaults() {
        let config: Config = serde_json::from_value(serde_json::json!({
            "addr": "http://127.0.0.1:8200",
            "auth": { "method": "approle", "role_id": "role", "secret_id": "s3cr3t-id" },
        }))
        .unwrap();

        assert_eq!(config.mount, "secret");
        assert_eq!(config.request_timeout(), Duration::from_secs(10));
        assert_eq!(config.retry.max_attempts, 3);
        assert_eq!(config.cache.capacity, 10_000);
        assert_eq!(config.cache.ttl(), Duration::from_secs(900));
        let Auth::AppRole { mount, role_id, .. } = &config.auth else {
            panic!("expected approle auth, got {:?}", config.auth);
        };
        assert_eq!((mount.as_str(), role_id.as_str()), ("approle", "role"));
    }

    #[test]
    fn debug_of_config_shows_no_secret() {
        let config: Config = serde_json::from_value(serde_json::json!({
            "addr": "http://127.0.0.1:8200",
            "auth": { "method": "token", "token": "hvs.very-secret-token" },
        }))
        .unwrap();

        let debug = format!("{config:?}");
        assert!(!debug.contains("very-secret"), "{debug}");
    }
}
