//! What every handler shares.

use std::sync::Arc;
use std::time::Duration;

use fleet_bus::{Publisher, Schedules};
use serde::Deserialize;

/// Gateway settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Accept `http://` site URLs for application-password connectors.
    /// WordPress sends application passwords only over HTTPS (or on local
    /// development sites), so this is for local setups only.
    pub allow_http_sites: bool,
    /// The largest request body accepted, in bytes; larger ones get 413.
    pub max_body_bytes: usize,
    /// How long one request may take before it is answered with 408.
    pub request_timeout_secs: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            allow_http_sites: false,
            max_body_bytes: 64 * 1024,
            request_timeout_secs: 30,
        }
    }
}

impl Config {
    pub(crate) fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }
}

/// The gateway's shared state; cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) config: Config,
    pub(crate) store: fleet_store::Store,
    pub(crate) secrets: fleet_secrets::Client,
    pub(crate) publisher: Publisher,
    pub(crate) schedules: Schedules,
    pub(crate) verifier: fleet_auth::Verifier,
    pub(crate) connectors: Arc<fleet_connectors::Registry>,
}

/// What the gateway talks to.
#[derive(Debug)]
pub struct Parts {
    /// PostgreSQL state.
    pub store: fleet_store::Store,
    /// Vault, where submitted credentials are staged.
    pub secrets: fleet_secrets::Client,
    /// JetStream publisher for the setup chain and manual syncs.
    pub publisher: Publisher,
    /// Sync schedules, removed when a connection is deleted.
    pub schedules: Schedules,
    /// Verifies the tenants' bearer tokens.
    pub verifier: fleet_auth::Verifier,
    /// The connectors on offer.
    pub connectors: Arc<fleet_connectors::Registry>,
}

impl AppState {
    /// State from its parts.
    pub fn new(config: Config, parts: Parts) -> Self {
        Self {
            inner: Arc::new(Inner {
                config,
                store: parts.store,
                secrets: parts.secrets,
                publisher: parts.publisher,
                schedules: parts.schedules,
                verifier: parts.verifier,
                connectors: parts.connectors,
            }),
        }
    }
}
