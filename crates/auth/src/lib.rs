//! Tenant bearer tokens of connector-fleet: JSON Web Tokens accepted by
//! the gateway and the bridge.
//!
//! A token names its tenant in the `tenant` claim, not in `sub`: `sub` is
//! left to the platform for the user who holds the token (shown to people,
//! never used to decide anything), and a claim named for what it scopes
//! cannot be confused with it. The optional `connections` claim narrows
//! the token to some of the tenant's connections. `exp`, `iat` and `aud`
//! are required: `aud` must name the configured audience
//! ([`DEFAULT_AUDIENCE`] unless set), `exp - iat` may not exceed the
//! configured maximum lifetime (24 h by default), `iat` and `nbf` may not
//! be in the future; `iss` is checked when [`Config`] sets it.
//!
//! Tokens are signed with one configured [`Algorithm`]: HS256 with a key
//! every service shares (local use), or EdDSA (Ed25519) or RS256, where
//! the gateway and the bridge hold only public keys and so cannot mint
//! tokens: one PEM public key, or the issuer's JSON Web Key Set (JWKS)
//! fetched from a URL, where a token's `kid` header names its key and the
//! issuer rotates keys by publishing the next one beside the current one.
//! A token never chooses its algorithm (`alg: none`, or HS256 "signed"
//! with a public key, is refused).
//!
//! What it does not do: read the environment (callers pass a [`Config`]);
//! fetch anything but the key set (no OpenID discovery, no `jku` or `x5u`
//! from tokens: the key set URL comes from the settings only).
//!
//! Start from:
//! - [`Verifier`]: [`new`](Verifier::new) from a [`Config`] with a static
//!   key, or [`connect`](Verifier::connect) for any settings (it fetches
//!   the key set), and [`verify`](Verifier::verify), which stays
//!   synchronous;
//! - [`Refresher`]: the task that keeps a key set current;
//! - [`Signer`]: minting, with the HS256 key or a private key (and its
//!   `kid`);
//! - [`Claims`]: what a valid token says;
//! - [`Error`]: why a token was refused, in words safe to show the holder
//!   (never the token itself); [`KeyError`]: why the settings are unusable
//!   or the key set could not be fetched at start-up.
//!
//! ```
//! use fleet_auth::{Claims, Config, Signer, Verifier};
//! use fleet_events::TenantId;
//!
//! let config = Config::new("a key of at least thirty-two bytes!!".into());
//! let verifier = Verifier::new(&config)?;
//! let claims = Claims::for_tenant(TenantId::parse("acme")?, std::time::Duration::from_secs(600));
//! let token = Signer::new(&config)?.sign(&claims)?;
//! assert_eq!(verifier.verify(&token)?.tenant.as_str(), "acme");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]

mod claims;
mod config;
mod error;
mod key_set;
mod keys;
mod refresher;
mod signer;
mod verifier;

pub use claims::Claims;
pub use config::{Algorithm, Config, DEFAULT_AUDIENCE, MIN_KEY_LEN};
pub use error::{Error, FetchError, KeyError, SignError};
pub use refresher::Refresher;
pub use signer::Signer;
pub use verifier::Verifier;
