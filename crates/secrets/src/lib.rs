//! The credential store of connector-fleet: each connection's third-party credentials in a
//! Vault or OpenBao KV version 2 mount, through `vaultrs`.
//!
//! The gateway [stages](Client::stage) credentials, the validate worker
//! [reads that exact version](Client::read_staged), the save worker
//! [promotes](Client::promote) it to the connection's active credentials, and the sync worker
//! [reads](Client::read_active) and [rotates](Client::rotate) them when it refreshes a token.
//! Events carry only the [`Version`] numbers.
//!
//! The crate does not know what credentials look like: every operation is generic over
//! `T: Serialize + DeserializeOwned`, and the `connectors` crate owns the credential types. It
//! does not manage Vault itself (mounts, policies, AppRoles) and reads no environment variables.
//!
//! Start from [`Config`] and [`Auth`], then [`Client::connect`]; spawn
//! [`Client::renewer`]'s [`Renewer::run`] beside it; branch on [`Error`] and
//! [`Error::is_transient`].
//!
//! # Layout
//!
//! Each connection has two secrets in the mount:
//!
//! ```text
//! <mount>/data/tenants/<tenant>/connections/<connection>/staged   {"credentials": …}
//! <mount>/data/tenants/<tenant>/connections/<connection>/active   {"credentials": …, "staged_version": n}
//! ```
//!
//! `staged` gets one KV version per attempt; promotion destroys the version it promotes, so
//! promoted credentials do not linger in staging (versions that are never promoted, such as
//! those that failed validation, stay until the connection is deleted). `active` records the
//! staged version it descends from, and rotations keep that record.
//!
//! # Check-and-set rules
//!
//! Every write to `active` is a KV v2 check-and-set, so concurrent writers cannot lose an
//! update silently:
//!
//! - [`promote(n)`](Client::promote) writes only over an `active` that does not exist or
//!   descends from a staged version older than `n`. Newly staged credentials are a new grant
//!   from the user, so they replace the rotations of an older grant. When `active` already
//!   descends from `n` or later, promotion writes nothing and returns `active`'s version:
//!   redelivered save steps have one effect, and a token rotated after a promotion is never
//!   overwritten by the credentials it was rotated from. A lost race is re-read and decided
//!   again.
//! - [`rotate`](Client::rotate) writes only over the exact version it read. When a promotion or
//!   another rotation wrote first, it fails with [`Error::Conflict`] and the caller re-reads:
//!   the other write wins.
//!
//! # Policy
//!
//! The token needs `create`, `read` and `update` on `<mount>/data/tenants/*`, `update` on
//! `<mount>/destroy/tenants/*` and `delete` on `<mount>/metadata/tenants/*`, besides the
//! `default` policy's `auth/token/lookup-self` and `auth/token/renew-self`.
//!
//! # Logging
//!
//! Errors never contain secrets (see [`Error`]). vaultrs and rustify log every failed request,
//! expected ones such as a 404 included, at ERROR level from their own spans; this crate
//! returns every failure as an [`Error`], so filter them out (`vaultrs=off,rustify=off`).
#![warn(missing_docs)]

mod client;
mod config;
mod envelope;
mod error;
mod key;
mod renewer;
mod store;
mod version;

pub use client::Client;
pub use config::{Auth, Config, Retry};
pub use error::{Error, VaultError};
pub use renewer::Renewer;
pub use store::Stored;
pub use version::Version;
