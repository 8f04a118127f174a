//! The provider layer of connector-fleet: how each third-party API checks
//! credentials and hands out its data, page by page.
//!
//! A [`Connector`] does two things. [`validate`](Connector::validate) makes
//! one cheap authenticated call and returns the [`Account`] the
//! [`Credentials`] open. [`sync_page`](Connector::sync_page) reads one
//! [`Page`] of a stream (WordPress `posts`, FluentCRM `subscribers`, ...)
//! and returns the cursor of the next one, so a sync worker can checkpoint
//! after every page and resume after a crash. The [`Registry`] builds every
//! connector from one [`Config`] and hands them out as `Arc<dyn Connector>`.
//!
//! What the platform offers is declared in the [`Catalog`]: one TOML file
//! per provider under `crates/connectors/catalog/`, embedded in the binary
//! and overridable field by field from an operator's directory. The
//! [`oauth2`] module runs the OAuth 2.0 flow of its OAuth entries
//! (authorize URL with `state` and PKCE, code exchange, refresh,
//! revocation); [`Credentials::merge_refresh`] keeps a stored refresh
//! token that a refresh response did not replace. An API's 401 is
//! [`Error::AccessTokenRejected`]: the caller refreshes once
//! ([`Error::wants_token_refresh`]) and retries before asking the user to
//! reconnect. The [`oauth1`] module runs three-legged OAuth 1.0a (RFC
//! 5849, HMAC-SHA1) for Trello: request token, authorize URL, access
//! token, and the signature of every API request; its tokens have no
//! refresh, so an API's 401 is [`Error::TokenRejected`].
//!
//! Every failure is an [`Error`] whose message a person can act on and
//! whose [`class`](Error::class) says what to do: retry (with the
//! provider's `Retry-After` when it gave one), give up, or ask the user to
//! reconnect. Within one call, transient failures are retried three times
//! with a jittered backoff; a `Retry-After` longer than
//! [`Config::max_retry_wait`] is handed back instead, so the worker can nak
//! its message with that delay rather than hold it.
//!
//! The HTTP client never follows redirects (a redirect could carry the
//! credentials to another host) and refuses `http://` sites unless
//! [`Config::allow_http`] is set. It connects only to addresses on the
//! public internet, checked on the address actually connected to (after
//! DNS resolution, so DNS rebinding gets nowhere), unless the operator
//! allows a private network in [`Config::allow_private_networks`]: a
//! tenant's site URL can never make the fleet call its own internal
//! services ([`Error::Refused`]). The rule holds for every outbound
//! request, catalog URLs included, and it ignores proxy settings from the
//! environment.
//!
//! Connectors today: `wordpress` (application password; streams `posts`,
//! `pages`), `fluentcrm` (application password; streams `subscribers`,
//! `lists`), `google-analytics` (OAuth 2.0 with PKCE; stream
//! `daily_metrics`), `meta` (OAuth 2.0 with long-lived tokens renewed by
//! exchange; stream `ad_insights`), `linkedin` (OAuth 2.0, versioned
//! `/rest` API; stream `follower_statistics`), `trello` (OAuth 1.0a;
//! streams `boards`, `cards`), every other OAuth 2.0
//! entry with a `userinfo_url` (operators' own), which validates through
//! it, and every `api_key`, `basic` and `oauth2_client_credentials` entry
//! (credentials the user types in), which validates through its
//! `verify_url`; these generic ones have one stream, `account`.
//! [`oauth2::Client::renew`] renews a connection's access token the way
//! its provider allows (for client credentials: by fetching a new one).
//! [`catalog::nango`] turns Nango's provider definitions into catalog
//! files.
//!
//! Every stream's record payloads are described by a JSON Schema (draft
//! 2020-12) in [`schemas`]: [`stream_schemas`] lists them, and
//! [`Connector::stream_schema`] gives a connector's.
//!
//! # Layout
//!
//! Each provider lives in `providers/<name>.rs`, with a `providers/<name>/`
//! folder for its larger parts (Meta's Graph errors, Trello's activity
//! reading); WordPress and FluentCRM share the WordPress REST client of
//! `providers/wp.rs`. A provider implements an internal `Provider` trait:
//! its streams, its typed cursor, validation and one page. One generic
//! `Connector` implementation does the rest for every provider: it finds
//! the stream, decodes the cursor ([`Error::UnknownStream`],
//! [`Error::InvalidCursor`]), and starts full and incremental passes.
//! Every request, token endpoints included, goes through one HTTP
//! pipeline: send under the egress and retry rules, read the body within
//! [`Config::max_body_bytes`], classify a failed status into an [`Error`]
//! (redirects and transient statuses alike for all, the provider's own
//! error bodies through a hook), and decode the JSON answer, naming the
//! provider and the URL without its query.
//!
//! What this crate does not do: it knows nothing of NATS, SQL or Vault. It
//! does not store credentials or cursors, decide when to refresh OAuth
//! tokens (nor serialise refreshes across workers), or schedule syncs; the
//! workers do, with what it returns. Nor does it log secrets:
//! [`Credentials`] hold them as `SecretString`s and expose them only to
//! the HTTP request and to serialisation (for Vault).
//!
//! Start from [`Registry`], [`Catalog`], [`Connector`], [`Credentials`],
//! [`oauth2::Client`], [`oauth1::Client`], [`Page`] and [`Error`].
//!
//! ```no_run
//! use fleet_connectors::{Config, Credentials, ErrorClass, Registry};
//! use fleet_events::ConnectorId;
//!
//! # async fn sync() -> Result<(), Box<dyn std::error::Error>> {
//! let registry = Registry::new(&Config::default())?;
//! let wordpress = registry
//!     .get(&ConnectorId::parse("wordpress")?)
//!     .expect("a built-in connector");
//! let credentials =
//!     Credentials::app_password("https://example.com", "bob", "abcd efgh ijkl mnop qrst uvwx");
//!
//! match wordpress.validate(&credentials).await {
//!     Ok(account) => println!("Connected to {}.", account.name),
//!     // `error` reads "WordPress at https://example.com rejected the application
//!     // password for user 'bob' (incorrect_password); ...": show it to the user.
//!     Err(error) if error.class() == ErrorClass::ReauthRequired => return Ok(()),
//!     Err(error) => return Err(error.into()),
//! }
//!
//! let mut cursor = None;
//! loop {
//!     let page = wordpress.sync_page(&credentials, "posts", cursor.as_ref()).await?;
//!     // Upsert `page.records` by `external_id`, then checkpoint `page.next`.
//!     let Some(next) = page.next else { break };
//!     cursor = Some(next);
//! }
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

mod aws_sigv4;
pub mod catalog;
pub mod clear_text;
mod config;
mod connector;
mod credentials;
mod duo;
mod egress;
mod error;
mod http;
mod http_signature;
pub mod oauth1;
pub mod oauth2;
mod providers;
mod registry;
pub mod schemas;
mod text;
pub mod webhook;

pub use catalog::{Catalog, CatalogEntry, OAuthClient, SyncLimits};
pub use config::Config;
pub use connector::{Account, Connector, Page, Record, StreamSpec};
pub use credentials::{ConnectionValues, Credentials};
pub use error::{BuildError, Error, ErrorClass, MAX_RETRY_AFTER};
pub use http::{body_prefix, retry_after};
pub use ipnet::IpNet;
pub use registry::Registry;
pub use schemas::{StreamSchema, stream_schema, stream_schemas};
