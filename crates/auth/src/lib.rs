//! Tenant bearer tokens of connector-fleet: HS256 JSON Web Tokens signed
//! with one configured key, accepted by the gateway and the bridge.
//!
//! A token names its tenant in the `tenant` claim, not in `sub`: `sub` is
//! left to the platform for the user who holds the token, and a claim named
//! for what it scopes cannot be confused with it. The optional
//! `connections` claim narrows the token to some of the tenant's
//! connections. `exp` and `iat` are required; `iss` and `aud` are checked
//! when [`Config`] sets them.
//!
//! What it does not do: read the environment (callers pass a [`Config`]),
//! fetch keys (no JWKS, no key rotation), or support any algorithm but
//! HS256, so a token cannot choose a weaker one (`alg: none`) for itself.
//!
//! Start from:
//! - [`Verifier`]: [`new`](Verifier::new) from a [`Config`],
//!   [`verify`](Verifier::verify) and [`issue`](Verifier::issue);
//! - [`Claims`]: what a valid token says;
//! - [`Error`]: why a token was refused, in words safe to show the holder
//!   (never the token itself).
//!
//! ```
//! use fleet_auth::{Claims, Config, Verifier};
//! use fleet_events::TenantId;
//!
//! let config = Config::new("a key of at least thirty-two bytes!!".into());
//! let verifier = Verifier::new(&config)?;
//! let claims = Claims::for_tenant(TenantId::parse("acme")?, std::time::Duration::from_secs(600));
//! let token = verifier.issue(&claims);
//! assert_eq!(verifier.verify(&token)?.tenant.as_str(), "acme");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]

mod claims;
mod config;
mod error;
mod verifier;

pub use claims::Claims;
pub use config::{Config, MIN_KEY_LEN};
pub use error::{Error, KeyTooShort};
pub use verifier::Verifier;
