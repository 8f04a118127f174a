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
    /// The key set is in use and the token's header names no key (`kid`).
    #[error(
        "the token names no key (no `kid` header), which this service needs to pick the issuer's key; request a new token"
    )]
    MissingKeyId,
    /// The key set is in use and does not list the token's `kid` (yet, or
    /// any more): an early refetch of the set is under way.
    #[error(
        "the token is signed with key {kid:?}, which the issuer's key set does not list; request a new token"
    )]
    UnknownKey {
        /// The token's `kid`, cut to 64 characters.
        kid: String,
    },
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
    /// An asymmetric algorithm without a public key or key set.
    #[error(
        "tokens are signed with {algorithm} but none of `public_key`, `public_key_file` and `jwks_url` is set: set the issuer's PEM public key or the URL of its key set"
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
    /// A key set URL next to a public key.
    #[error(
        "both `jwks_url` and a public key (`public_key` or `public_key_file`) are set: keep one"
    )]
    KeySetAndPublicKey,
    /// A key set URL next to HS256.
    #[error(
        "`jwks_url` is set, but tokens are signed with HS256: set `algorithm` to EdDSA or RS256, or remove `jwks_url`"
    )]
    KeySetForHs256,
    /// The key set URL is not an absolute `http(s)` URL.
    #[error("`jwks_url` is not an absolute http(s) URL")]
    BadKeySetUrl,
    /// The key set URL is plain `http` to a host that is not loopback.
    #[error(
        "`jwks_url` must use https: plain http is accepted only for a loopback host (localhost, 127.0.0.1, ::1)"
    )]
    InsecureKeySetUrl,
    /// A zero refresh interval.
    #[error(
        "`jwks_refresh_seconds` is 0: set how often the key set is fetched again (default 600)"
    )]
    NoRefreshInterval,
    /// [`Verifier::new`](crate::Verifier::new) with a key set URL.
    #[error(
        "`jwks_url` is set: the key set is fetched when the service starts (`Verifier::connect`)"
    )]
    KeySetNotFetched,
    /// The key set could not be fetched or has no usable key when the
    /// service starts.
    #[error("failed to fetch the token key set from {url} (`jwks_url`)")]
    FetchKeySet {
        /// `jwks_url`, without user, password, query or fragment.
        url: String,
        /// Cause.
        #[source]
        source: FetchError,
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

/// Why a fetch of the issuer's key set (`jwks_url`) gave no usable set.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// No answer (refused, timed out, TLS failure, ...).
    #[error("the request failed")]
    Request(#[source] reqwest::Error),
    /// An answer other than 200 (redirects are not followed).
    #[error("the server answered HTTP {status}, not 200 with the key set")]
    Status {
        /// The HTTP status code.
        status: u16,
    },
    /// A body over the limit.
    #[error("the answer is larger than {limit} bytes, far more than a key set needs")]
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// A body that is not a JWK set.
    #[error("the answer is not a JWK set (a JSON object with a `keys` array)")]
    NotAKeySet(#[source] serde_json::Error),
    /// A set without one key this service can use.
    #[error(
        "the key set lists no {expected} signature key with a `kid` ({ignored} other keys ignored)"
    )]
    NoUsableKey {
        /// The keys the configured algorithm needs.
        expected: &'static str,
        /// How many keys of the set were ignored.
        ignored: usize,
    },
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
    /// Verifiers check tokens with the issuer's key set, and the signer has
    /// no key id to name its key with.
    #[error(
        "tokens are checked with the issuer's key set (`jwks_url`), which finds the key by its id: give the signer its key id (`Signer::with_key_id`, `fleet token --key-id`)"
    )]
    MissingKeyId,
    /// The signing library failed.
    #[error("failed to sign the token")]
    Sign(#[source] jsonwebtoken::errors::Error),
}
