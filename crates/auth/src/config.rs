//! Token settings.

use secrecy::SecretString;
use serde::Deserialize;

/// Shortest accepted signing key, in bytes: HS256 keys shorter than the
/// hash output (32 bytes) weaken the signature.
pub const MIN_KEY_LEN: usize = 32;

/// How tenant tokens are signed and checked.
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    /// HMAC-SHA256 key, at least [`MIN_KEY_LEN`] bytes. Every service that
    /// issues or checks tokens holds the same key. Secret: never logged.
    pub key: SecretString,
    /// Required `iss` claim; `None` accepts any issuer, or none.
    #[serde(default)]
    pub issuer: Option<String>,
    /// Required `aud` claim; `None` accepts tokens without `aud` only.
    #[serde(default)]
    pub audience: Option<String>,
    /// Clock skew tolerated on `exp`, in seconds.
    #[serde(default = "default_leeway_seconds")]
    pub leeway_seconds: u64,
}

const fn default_leeway_seconds() -> u64 {
    30
}

impl Config {
    /// Settings with `key`, no issuer or audience, and the default leeway.
    pub fn new(key: SecretString) -> Self {
        Self {
            key,
            issuer: None,
            audience: None,
            leeway_seconds: default_leeway_seconds(),
        }
    }
}
