//! Why a token was refused.

use fleet_events::ParseError;

/// Why [`Verifier::verify`](crate::Verifier::verify) refused a token.
///
/// Messages say what to do and never quote the token.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `exp` has passed (beyond the configured leeway).
    #[error("the token has expired; request a new one and reconnect")]
    Expired,
    /// The signature does not match the configured key.
    #[error(
        "the token's signature does not match: it was signed with another key or changed after signing"
    )]
    BadSignature,
    /// The token is not an HS256 JWT with the required claims.
    #[error("the token is not a valid tenant token: {reason}")]
    Malformed {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `iss` or `aud` is not the configured one.
    #[error("the token's `{claim}` claim is not the one this service expects")]
    WrongClaim {
        /// The claim: `iss` or `aud`.
        claim: &'static str,
    },
    /// The `tenant` claim is missing.
    #[error("the token has no `tenant` claim; tenant tokens name their tenant in `tenant`")]
    MissingTenant,
    /// The `tenant` claim is not a tenant id.
    #[error("the token's `tenant` claim is not a tenant id")]
    InvalidTenant(#[source] ParseError),
    /// An entry of the `connections` claim is not a connection id.
    #[error("the token's `connections` claim holds a value that is not a connection id")]
    InvalidConnection(#[source] ParseError),
}

/// The configured key is too short to sign with.
#[derive(Debug, thiserror::Error)]
#[error(
    "the token signing key has {len} bytes; use at least {min} random bytes",
    min = crate::MIN_KEY_LEN
)]
pub struct KeyTooShort {
    /// Length of the configured key, in bytes.
    pub len: usize,
}
