//! Why a token was refused, why the settings cannot be used, and why a
//! token could not be signed.

use std::path::PathBuf;

use fleet_events::ParseError;

/// Why [`Verifier::verify`](crate::Verifier::verify) refused a token.
///
/// Messages say what to do and never quote the token.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `exp` has passed (beyond the configured leeway).
    #[error("the token has expired; request a new one and reconnect")]
    Expired,
    /// `nbf` is in the future (beyond the configured leeway).
    #[error(
        "the token is not valid yet (its `nbf` is in the future); wait, or check the clock of the service that issued it"
    )]
    NotYetValid,
    /// `iat` is in the future (beyond the configured leeway).
    #[error(
        "the token claims to be issued in the future (`iat`); check the clock of the service that issued it"
    )]
    IssuedInTheFuture,
    /// `exp - iat` is longer than the configured maximum.
    #[error(
        "the token is valid for longer than this service accepts (at most {max_seconds} s from `iat` to `exp`); request a shorter-lived one"
    )]
    TooLong {
        /// The configured maximum, in seconds.
        max_seconds: u64,
    },
    /// The signature does not match the configured key.
    #[error(
        "the token's signature does not match: it was signed with another key or changed after signing"
    )]
    BadSignature,
    /// The header names another algorithm than the configured one.
    #[error("the token is not signed with {expected}, the only algorithm this service accepts")]
    WrongAlgorithm {
        /// The configured algorithm.
        expected: &'static str,
    },
    /// The token is not a JWT with the required claims.
    #[error("the token is not a valid tenant token: {reason}")]
    Malformed {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `iss` or `aud` is missing or not the configured one.
    #[error(
        "the token's `{claim}` claim is missing or is not {expected:?}, the one this service expects; request a token for it"
    )]
    WrongClaim {
        /// The claim: `iss` or `aud`.
        claim: &'static str,
        /// The value this service expects.
        expected: String,
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

/// Why the token settings cannot be used. Messages name the setting (its
/// `FLEET_AUTH__*` variable is the name in upper case) and never quote a key.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// HS256 without a key.
    #[error("tokens are signed with HS256 but no `key` is set: set the shared HMAC key (at least {min} random bytes)", min = crate::MIN_KEY_LEN)]
    MissingKey,
    /// The HMAC key is too short.
    #[error(
        "the token signing key has {len} bytes; use at least {min} random bytes",
        min = crate::MIN_KEY_LEN
    )]
    KeyTooShort {
        /// Length of the configured key, in bytes.
        len: usize,
    },
    /// An asymmetric algorithm without a public key.
    #[error(
        "tokens are signed with {algorithm} but neither `public_key` nor `public_key_file` is set: set the issuer's PEM public key"
    )]
    MissingPublicKey {
        /// The configured algorithm.
        algorithm: &'static str,
    },
    /// Both `public_key` and `public_key_file`.
    #[error("both `public_key` and `public_key_file` are set: keep one")]
    TwoPublicKeys,
    /// An HMAC key next to an asymmetric algorithm.
    #[error(
        "`key` (a shared HMAC key) is set, but tokens are signed with {algorithm}: remove it, so that this service holds only the public key and cannot mint tokens"
    )]
    UnusedKey {
        /// The configured algorithm.
        algorithm: &'static str,
    },
    /// A public key next to HS256.
    #[error(
        "a public key is set, but tokens are signed with HS256: set `algorithm` to EdDSA or RS256, or remove the public key"
    )]
    UnusedPublicKey,
    /// The public key file could not be read.
    #[error("failed to read the token public key from {path}")]
    ReadPublicKey {
        /// The configured file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// A private key where the public key belongs.
    #[error(
        "the configured public key is a private key: give this service only the public half (`openssl pkey -in private.pem -pubout`)"
    )]
    PrivateKeyAsPublic,
    /// The public key is not a PEM key of the algorithm.
    #[error("the configured public key is not a PEM-encoded {expected} public key")]
    BadPublicKey {
        /// What it should be.
        expected: &'static str,
    },
    /// The private key is not a PEM key of the algorithm.
    #[error("the private key is not a PEM-encoded {expected} private key (PKCS#8)")]
    BadPrivateKey {
        /// What it should be.
        expected: &'static str,
    },
    /// A signer for an asymmetric algorithm built without its private key.
    #[error(
        "tokens are signed with {algorithm}: signing needs the issuer's private key, which is not part of these settings"
    )]
    NeedsPrivateKey {
        /// The configured algorithm.
        algorithm: &'static str,
    },
    /// The private key does not belong to the configured public key.
    #[error(
        "the private key does not belong to the configured public key: tokens it signs would be refused"
    )]
    KeyPairMismatch,
    /// A private key given for HS256.
    #[error("tokens are signed with HS256, which signs with `key`, not with a private key")]
    PrivateKeyForHs256,
    /// An empty audience.
    #[error("`audience` is empty: set the audience tokens must name (default connector-fleet)")]
    EmptyAudience,
    /// A zero lifetime.
    #[error("`max_lifetime_seconds` is 0, which no token can meet: set it to at least 60")]
    NoLifetime,
}

/// Why [`Signer::sign`](crate::Signer::sign) made no token.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// The claims' lifetime is longer than verifiers accept.
    #[error(
        "a token valid for {seconds} s would be refused: tokens may be valid for at most {max_seconds} s (`max_lifetime_seconds`)"
    )]
    TooLong {
        /// `exp - iat` of the claims.
        seconds: u64,
        /// The configured maximum.
        max_seconds: u64,
    },
    /// The signing library failed.
    #[error("failed to sign the token")]
    Sign(#[source] jsonwebtoken::errors::Error),
}
