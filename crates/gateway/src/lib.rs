//! The HTTP API of connector-fleet.
//!
//! Tenants (the SaaS platform's services and dashboards, with a bearer
//! token per tenant) list the connectors on offer, connect an account with
//! typed-in credentials, follow and manage their connections, and read the
//! synced records. A create stages the credentials in Vault and publishes
//! the setup chain's first event; the answer (202) comes before the
//! provider is asked, and the connection's state follows over the status
//! feed and `GET /api/connections/{id}`.
//!
//! | route | does |
//! | --- | --- |
//! | `GET /api/connectors` | the catalog |
//! | `POST /api/connections` | connect with credentials (202) |
//! | `GET /api/connections`, `GET /api/connections/{id}` | state, last sync, last error; never a secret |
//! | `POST /api/connections/{id}/sync` | sync now (202) |
//! | `DELETE /api/connections/{id}` | disconnect (204) |
//! | `GET /api/connections/{id}/records` | synced data, paginated |
//! | `GET /api/openapi.json` | this API as OpenAPI 3.1 |
//! | `GET /oauth/authorize/{connector_id}` | to the provider's consent page (302, or the URL as JSON) |
//! | `GET /oauth/callback` | the provider's redirect back: exchange, setup, then to the dashboard (303) |
//! | `GET /`, `GET /callback`, `GET /dashboard/*` | the integrations dashboard ([`routes::dashboard`]) |
//! | `GET /healthz` | liveness |
//! | `GET /readyz` | readiness: NATS, Vault and PostgreSQL answer (503 naming the one that does not) |
//! | `GET /metrics` | Prometheus metrics: requests by route and status, OAuth flows |
//!
//! Every `/api` route takes the tenant from the token ([`auth::Tenant`]);
//! one tenant's ids look like unknown ids to another (404), and so do the
//! connections a narrowed token (its `connections` claim) does not cover;
//! such a token cannot create connections (403). Every error is a JSON
//! [`ErrorBody`] with a message a person can act on.
//!
//! The OAuth flow keeps its pending `state`s in a JetStream key-value
//! bucket ([`PendingStates`]), so any replica can finish a flow another
//! started; a state is single use, expires, and is bound to the browser
//! that started it by a cookie the callback requires. docs/security.md
//! describes the defences.
//!
//! Start from [`AppState`], [`app`] and [`serve`].

#![warn(missing_docs)]

pub mod auth;
mod binding;
mod error;
// Exists for fuzzing (fuzz/): the OAuth callback's parsing without NATS.
#[doc(hidden)]
pub mod fuzzing;
pub mod limits;
mod oauth_state;
mod openapi;
pub mod routes;
mod state;
mod trace;

use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::timeout::TimeoutLayer;

pub use error::{Error, ErrorBody, ErrorDetail};
pub use oauth_state::{BUCKET as OAUTH_STATE_BUCKET, PendingStates, StateError};
pub use openapi::{ApiDoc, openapi_document};
pub use state::{AppState, Config, ConfigError, OAuthConfig, Ops, Parts, ProviderConfig};

/// The whole HTTP application, for [`serve`] or for tests to call directly.
pub fn app(state: AppState) -> Router {
    let config = &state.inner.config;
    let api = Router::new()
        .merge(routes::connectors::router())
        .merge(routes::connections::router())
        .merge(routes::connection_health::router())
        .merge(routes::records::router())
        .merge(routes::webhooks::router())
        .merge(openapi::router());
    Router::new()
        .nest("/api", api)
        .merge(routes::oauth::router())
        // Probes and the dashboard's files are not worth a trace each.
        .route_layer(axum::middleware::from_fn(trace::spans))
        .merge(routes::health::router(&state))
        .merge(routes::dashboard::router(&config.dashboard))
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            config.request_timeout(),
        ))
        // Outside the timeout, so a 408 is counted too.
        .layer(axum::middleware::from_fn(fleet_serve::ops::count_requests))
        .with_state(state)
}

/// Serves [`app`] on `listener` until `shutdown`, then finishes the
/// requests in flight: idle connections close at once, and a client still
/// sending its request headers has at most the header timeout left.
///
/// Each connection must send its request headers within
/// [`Config::header_read_timeout_secs`] (also the keep-alive time between
/// requests), each request is answered within
/// [`Config::request_timeout_secs`] (else 408), and a connection on which
/// no byte moves for [`Config::idle_timeout_secs`] is closed. Requests see
/// the client's address as `ConnectInfo<SocketAddr>`.
///
/// # Errors
///
/// None today: accept errors (such as too many open files) are retried
/// after a pause, as `axum::serve` does.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let config = &state.inner.config;
    let (idle, request) = (
        Duration::from_secs(config.idle_timeout_secs),
        config.request_timeout(),
    );
    if idle <= request {
        tracing::warn!(
            idle_timeout_secs = idle.as_secs(),
            request_timeout_secs = request.as_secs(),
            "The idle timeout is not above the request timeout: slow requests lose their connection before their 408."
        );
    }
    let timeouts = fleet_serve::Timeouts {
        header_read: Duration::from_secs(config.header_read_timeout_secs),
        idle,
    };
    fleet_serve::run::<fleet_serve::Watched>("gateway", listener, app(state), timeouts, shutdown)
        .await;
    Ok(())
}
