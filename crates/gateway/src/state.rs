//! What every handler shares.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use fleet_bus::{Publisher, Schedules};
use fleet_connectors::Catalog;
use fleet_connectors::catalog::Auth;
use fleet_events::ConnectorId;
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
    /// How long a client has to send a request's line and headers, counted
    /// from when the connection opens or its previous response ends; a
    /// client that has not finished by then (trickling bytes, or sending
    /// nothing) is disconnected. This is also how long an idle keep-alive
    /// connection stays open.
    pub header_read_timeout_secs: u64,
    /// How long a connection may move no byte either way before it is
    /// closed, whatever it is doing: a client that stops sending its body
    /// or stops reading its response. Keep it above
    /// [`request_timeout_secs`](Self::request_timeout_secs), during which a
    /// request may be computed without any byte moving.
    pub idle_timeout_secs: u64,
    /// The OAuth authorize and callback routes.
    pub oauth: OAuthConfig,
    /// Request limits per tenant.
    pub limits: crate::limits::LimitsConfig,
    /// The dashboard served at `/`.
    pub dashboard: crate::routes::dashboard::DashboardConfig,
}

/// Settings of `/oauth/authorize` and `/oauth/callback`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct OAuthConfig {
    /// The public URL of this gateway's `/oauth/callback`, registered with
    /// every provider as the redirect URI. Only this URL ever receives a
    /// code: an authorize request cannot choose another. Without it the
    /// OAuth routes answer 503.
    pub redirect_uri: Option<url::Url>,
    /// Where the callback sends the browser when it is done: the
    /// dashboard's callback page, as an absolute URL or a path on this
    /// gateway. It gets `status=connected&connector=..&connection_id=..`
    /// or `status=error&connector=..&message=..`.
    pub dashboard_callback_url: String,
    /// How long an authorization may take, from `/oauth/authorize` to the
    /// callback, in seconds. The browser's binding cookie lives as long.
    pub state_ttl_secs: u64,
    /// What the callback checks of each OAuth 2.0 provider's response, by
    /// catalog id (`google-analytics`; in environment variables `_` stands
    /// for `-`): its issuer identifier (RFC 9207).
    pub providers: BTreeMap<String, ProviderConfig>,
}

/// The callback's checks of one OAuth 2.0 provider's responses.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProviderConfig {
    /// The provider's issuer identifier, as in its authorization server
    /// metadata (`https://accounts.google.com`). When a callback carries
    /// `iss`, it must be exactly this: another value means the response
    /// came from another provider (a mix-up attack) and is refused.
    pub issuer: Option<String>,
    /// The provider always sends `iss` with its authorization responses
    /// (its metadata's `authorization_response_iss_parameter_supported`):
    /// a callback without `iss` is refused. Needs [`issuer`](Self::issuer).
    pub authorization_response_iss_parameter_supported: bool,
}

/// Gateway settings that cannot work.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A provider setting names no OAuth 2.0 catalog entry.
    #[error(
        "gateway.oauth.providers.{id} names no OAuth 2.0 connector of the catalog; issuer checks apply to OAuth 2.0 connectors only"
    )]
    UnknownProvider {
        /// The configured key.
        id: String,
    },
    /// `iss` required without an issuer to compare it with.
    #[error(
        "gateway.oauth.providers.{id} requires `iss` (authorization_response_iss_parameter_supported) but sets no `issuer` to compare it with"
    )]
    IssuerMissing {
        /// The configured key.
        id: String,
    },
}

impl Default for OAuthConfig {
    fn default() -> Self {
        Self {
            redirect_uri: None,
            dashboard_callback_url: "/callback".to_owned(),
            state_ttl_secs: 600,
            providers: BTreeMap::new(),
        }
    }
}

impl OAuthConfig {
    /// [`state_ttl_secs`](Self::state_ttl_secs) as a duration.
    pub fn state_ttl(&self) -> Duration {
        Duration::from_secs(self.state_ttl_secs)
    }

    /// The checks of `connector`'s responses, if any are configured.
    pub fn provider(&self, connector: &ConnectorId) -> Option<&ProviderConfig> {
        let id = connector.as_str();
        self.providers
            .get(id)
            .or_else(|| self.providers.get(&id.replace('-', "_")))
    }

    /// Checks that every provider setting names an OAuth 2.0 entry of
    /// `catalog` and can be applied.
    ///
    /// # Errors
    ///
    /// The first [`ConfigError`].
    pub fn check(&self, catalog: &Catalog) -> Result<(), ConfigError> {
        for (id, provider) in &self.providers {
            let oauth2 = |id: &str| {
                ConnectorId::parse(id)
                    .ok()
                    .and_then(|id| catalog.get(&id))
                    .is_some_and(|entry| matches!(entry.auth, Auth::OAuth2(_)))
            };
            if !oauth2(id) && !oauth2(&id.replace('_', "-")) {
                return Err(ConfigError::UnknownProvider { id: id.clone() });
            }
            if provider.authorization_response_iss_parameter_supported && provider.issuer.is_none()
            {
                return Err(ConfigError::IssuerMissing { id: id.clone() });
            }
        }
        Ok(())
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            allow_http_sites: false,
            max_body_bytes: 64 * 1024,
            request_timeout_secs: 30,
            header_read_timeout_secs: 10,
            idle_timeout_secs: 60,
            oauth: OAuthConfig::default(),
            limits: crate::limits::LimitsConfig::default(),
            dashboard: crate::routes::dashboard::DashboardConfig::default(),
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
    pub(crate) oauth_states: crate::PendingStates,
    pub(crate) limits: crate::limits::TenantLimits,
    pub(crate) ops: Ops,
    pub(crate) webhooks: Option<crate::routes::webhooks::Webhooks>,
}

/// What `/readyz` checks and `/metrics` shows.
#[derive(Debug, Clone, Default)]
pub struct Ops {
    /// The gateway's dependency checks.
    pub readiness: fleet_serve::ops::Readiness,
    /// The process's Prometheus recorder; `None` answers `/metrics` with 404.
    pub metrics: Option<fleet_serve::ops::Metrics>,
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
    /// Pending OAuth authorizations ([`PendingStates::open`](crate::PendingStates::open)).
    pub oauth_states: crate::PendingStates,
    /// Readiness probes and metrics for the operations routes.
    pub ops: Ops,
    /// Webhook signing and the outbound-address rule of endpoint URLs;
    /// `None` answers the webhook routes with 503.
    pub webhooks: Option<crate::routes::webhooks::Webhooks>,
}

impl AppState {
    /// State from its parts.
    pub fn new(config: Config, parts: Parts) -> Self {
        let limits = crate::limits::TenantLimits::new(&config.limits);
        Self {
            inner: Arc::new(Inner {
                limits,
                config,
                store: parts.store,
                secrets: parts.secrets,
                publisher: parts.publisher,
                schedules: parts.schedules,
                verifier: parts.verifier,
                connectors: parts.connectors,
                oauth_states: parts.oauth_states,
                ops: parts.ops,
                webhooks: parts.webhooks,
            }),
        }
    }
}
