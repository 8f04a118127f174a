//! Token settings.

use std::path::PathBuf;

use secrecy::SecretString;
use serde::Deserialize;

/// Shortest accepted HMAC key, in bytes: HS256 keys shorter than the hash
/// output (32 bytes) weaken the signature.
pub const MIN_KEY_LEN: usize = 32;

/// The audience tokens must name when the configuration does not say
/// otherwise.
pub const DEFAULT_AUDIENCE: &str = "connector-fleet";

/// How tenant tokens are signed and checked.
///
/// With [`Algorithm::Hs256`] every service that checks tokens holds the
/// [`key`](Self::key) that also signs them. With [`Algorithm::EdDsa`] or
/// [`Algorithm::Rs256`] services hold only public keys, either one
/// [`public_key`](Self::public_key) or the issuer's key set at
/// [`jwks_url`](Self::jwks_url): they can check tokens but not mint them,
/// and the private keys stay with the platform that issues them.
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    /// How tokens are signed: `HS256` (the default, a shared key, for local
    /// use), `EdDSA` (Ed25519) or `RS256`. Tokens signed any other way are
    /// refused, whatever their header says.
    #[serde(default)]
    pub algorithm: Algorithm,
    /// The HMAC-SHA256 key of `HS256`, at least [`MIN_KEY_LEN`] bytes.
    /// Must not be set with the other algorithms. Secret: never logged.
    #[serde(default)]
    pub key: Option<SecretString>,
    /// The PEM public key of `EdDSA` (an Ed25519 `PUBLIC KEY`) or `RS256`
    /// (an RSA `PUBLIC KEY` or `RSA PUBLIC KEY`, 2048 bits or more).
    #[serde(default)]
    pub public_key: Option<String>,
    /// A file holding [`public_key`](Self::public_key), instead of the key
    /// itself.
    #[serde(default)]
    pub public_key_file: Option<PathBuf>,
    /// The URL of the issuer's JSON Web Key Set (JWKS), instead of a
    /// public key, so that the issuer can rotate keys: a token's `kid`
    /// header names the key of the set that checks it. `https`, or `http`
    /// for a loopback host only (tests, local issuers). Fetched when the
    /// service starts (it does not start without it), every
    /// [`jwks_refresh_seconds`](Self::jwks_refresh_seconds), and early
    /// (at most every 30 s) when a token names a key the set does not list.
    /// Only `EdDSA` and `RS256`.
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// How often the key set at [`jwks_url`](Self::jwks_url) is fetched
    /// again, in seconds. A failed fetch keeps the last good set.
    #[serde(default = "default_jwks_refresh_seconds")]
    pub jwks_refresh_seconds: u64,
    /// Required `iss` claim; `None` accepts any issuer, or none.
    #[serde(default)]
    pub issuer: Option<String>,
    /// Required `aud` claim: a token whose `aud` does not name this
    /// audience, or that has none, is refused.
    #[serde(default = "default_audience")]
    pub audience: String,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
    #[serde(default = "default_leeway_seconds")]
    pub leeway_seconds: u64,
    /// The longest a token may be valid, from `iat` to `exp`, in seconds;
    /// longer-lived tokens are refused.
    #[serde(default = "default_max_lifetime_seconds")]
    pub max_lifetime_seconds: u64,
}

/// A signature algorithm tenant tokens may use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum Algorithm {
    /// HMAC-SHA256 with a key shared by the issuer and every verifier.
    #[default]
    #[serde(rename = "HS256", alias = "hs256")]
    Hs256,
    /// Ed25519 signatures, checked with the issuer's public key.
    #[serde(rename = "EdDSA", alias = "eddsa", alias = "EDDSA")]
    EdDsa,
    /// RSASSA-PKCS1-v1_5 with SHA-256, checked with the issuer's public key.
    #[serde(rename = "RS256", alias = "rs256")]
    Rs256,
}

impl Algorithm {
    /// Its name in a token's header (`alg`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Hs256 => "HS256",
            Self::EdDsa => "EdDSA",
            Self::Rs256 => "RS256",
        }
    }

    pub(crate) fn jwt(self) -> jsonwebtoken::Algorithm {
        match self {
            Self::Hs256 => jsonwebtoken::Algorithm::HS256,
            Self::EdDsa => jsonwebtoken::Algorithm::EdDSA,
            Self::Rs256 => jsonwebtoken::Algorithm::RS256,
        }
    }
}

impl std::fmt::Display for Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

fn default_audience() -> String {
    DEFAULT_AUDIENCE.to_owned()
}

const fn default_leeway_seconds() -> u64 {
    30
}

const fn default_max_lifetime_seconds() -> u64 {
    24 * 60 * 60
}

const fn default_jwks_refresh_seconds() -> u64 {
    600
}

impl Config {
    /// HS256 settings with `key`, no issuer, the default audience
    /// ([`DEFAULT_AUDIENCE`]), leeway and maximum lifetime.
    pub fn new(key: SecretString) -> Self {
        Self {
            key: Some(key),
            ..Self::empty(Algorithm::Hs256)
        }
    }

    /// Verify-only settings for `algorithm` (`EdDSA` or `RS256`) with the
    /// PEM `public_key`, and the defaults otherwise.
    pub fn with_public_key(algorithm: Algorithm, public_key: impl Into<String>) -> Self {
        Self {
            public_key: Some(public_key.into()),
            ..Self::empty(algorithm)
        }
    }

    /// Verify-only settings for `algorithm` (`EdDSA` or `RS256`) with the
    /// issuer's key set at `jwks_url`, and the defaults otherwise.
    pub fn with_jwks_url(algorithm: Algorithm, jwks_url: impl Into<String>) -> Self {
        Self {
            jwks_url: Some(jwks_url.into()),
            ..Self::empty(algorithm)
        }
    }

    fn empty(algorithm: Algorithm) -> Self {
        Self {
            algorithm,
            key: None,
            public_key: None,
            public_key_file: None,
            jwks_url: None,
            jwks_refresh_seconds: default_jwks_refresh_seconds(),
            issuer: None,
            audience: default_audience(),
            leeway_seconds: default_leeway_seconds(),
            max_lifetime_seconds: default_max_lifetime_seconds(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_key_is_needed_for_hs256_and_the_rest_has_strict_defaults() {
        let config: Config = serde_json::from_value(serde_json::json!({"key": "k"})).unwrap();

        assert_eq!(config.algorithm, Algorithm::Hs256);
        assert_eq!(config.audience, "connector-fleet");
        assert_eq!(config.max_lifetime_seconds, 86_400);
        assert_eq!(config.leeway_seconds, 30);
        assert!(config.issuer.is_none());
        assert!(config.jwks_url.is_none());
        assert_eq!(config.jwks_refresh_seconds, 600);
    }

    #[test]
    fn algorithms_are_named_as_in_token_headers() {
        for (name, algorithm) in [
            ("HS256", Algorithm::Hs256),
            ("EdDSA", Algorithm::EdDsa),
            ("eddsa", Algorithm::EdDsa),
            ("RS256", Algorithm::Rs256),
        ] {
            let config: Config =
                serde_json::from_value(serde_json::json!({"algorithm": name})).unwrap();
            assert_eq!(config.algorithm, algorithm, "{name}");
        }
        assert!(
            serde_json::from_value::<Config>(serde_json::json!({"algorithm": "none"})).is_err()
        );
    }
}
