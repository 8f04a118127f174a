//! The credential store of connector-fleet: each connection's third-party credentials in a
//! Vault or OpenBao KV version 2 mount, through `vaultrs`.
//!
//! The gateway [stages](Client::stage) a new connection's credentials as version 1 of its one
//! secret; the validate worker [reads that exact version](Client::read_staged); the save step
//! makes it the version in use by recording its number in PostgreSQL (no Vault request); the
//! sync worker [reads the version PostgreSQL names](Client::read_version) and, when it renews a
//! token, [writes the next version](Client::rotate), moves PostgreSQL's pointer with
//! check-and-set and [discards](Client::discard) the version it replaced. Events carry only
//! [`Version`] numbers.
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
//! Each connection has one secret in the mount:
//!
//! ```text
//! <mount>/data/tenants/<tenant>/connections/<connection>/credentials   {"credentials": …}
//! ```
//!
//! KV v2 versions never change once written, so a version number names one set of
//! credentials for good: it is safe to carry in an event (it is not a secret), and it is a
//! perfect cache key. Which version is in use is PostgreSQL's to say (the connection row's
//! `vault_version`), so promoting credentials and moving on after a rotation are
//! PostgreSQL updates with check-and-set, ordered with the rest of the connection's state.
//!
//! # Cache
//!
//! Each [`Client`] keeps the versions it has read or written in memory, keyed by path and
//! version, so a scheduled sync of a connection whose credentials the process already holds
//! asks Vault nothing. The cache is bounded in entries and age ([`CacheConfig`]), zeroizes an
//! entry when it leaves, and drops a connection's entries when it is
//! [deleted](Client::delete) or [forgotten](Client::forget).
//!
//! # Legacy layout
//!
//! Connections set up before this layout have a `staged` and an `active` secret and no version
//! in PostgreSQL. [`read_staged`](Client::read_staged) falls back to `staged` for setups in
//! flight; a worker that meets such a connection [adopts](Client::adopt_legacy) its
//! credentials into the one secret and [retires](Client::retire_legacy) the old ones.
//!
//! # Policy
//!
//! The gateway's token needs `create` and `read` on `<mount>/data/tenants/*` and `delete` on
//! `<mount>/metadata/tenants/*`; the workers' needs `create`, `read` and `update` on
//! `<mount>/data/tenants/*`, `update` on `<mount>/destroy/tenants/*` and `delete` on
//! `<mount>/metadata/tenants/*`; both need the `default` policy's `auth/token/lookup-self` and
//! `auth/token/renew-self`.
//!
//! # Logging
//!
//! Errors never contain secrets (see [`Error`]). vaultrs and rustify log every failed request,
//! expected ones such as a 404 included, at ERROR level from their own spans; this crate
//! returns every failure as an [`Error`], so filter them out (`vaultrs=off,rustify=off`).
#![warn(missing_docs)]

mod cache;
mod client;
mod config;
mod envelope;
mod error;
mod key;
mod renewer;
mod store;
mod version;

pub use client::Client;
pub use config::{Auth, CacheConfig, Config, Retry};
pub use error::{Error, VaultError};
pub use renewer::Renewer;
pub use store::Stored;
pub use version::Version;
