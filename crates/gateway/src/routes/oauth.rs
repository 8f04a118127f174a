//! `/oauth/authorize/{connector_id}` and `/oauth/callback`: connecting an
//! account through the provider's consent page.
//!
//! The authorize route (tenant token required) creates a random `state`
//! bound to the tenant, the connector and the browser (a binding cookie:
//! `src/binding.rs`, docs/security.md), keeps it with the PKCE verifier (or, for OAuth
//! 1.0a, the request token's secret) in the
//! [`PendingStates`](crate::PendingStates) bucket, and sends the browser to
//! the provider. The callback (no token: the browser arrives from the
//! provider) checks the binding cookie, consumes the state, checks the
//! provider's issuer (`iss`, RFC 9207) where configured, exchanges the code
//! or verifier for tokens, stages them in Vault, starts the setup chain and
//! sends the browser on to the dashboard's callback page with the outcome.
//! The redirect URI is the configured one; a request cannot choose it.

use std::collections::BTreeMap;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::header::{ACCEPT, CACHE_CONTROL, LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::Utc;
use fleet_connectors::ErrorClass;
use fleet_connectors::catalog::{Auth, CatalogEntry};
use fleet_events::{ConnectorId, SetupOrigin, TenantId};
use serde::{Deserialize, Serialize};
use url::Url;
use utoipa::{IntoParams, ToSchema};

use crate::auth::Tenant;
use crate::binding::{self, Binding};
use crate::oauth_state::{Flow, Pending, Taken};
use crate::routes::connections::start_setup;
use crate::{AppState, Error};

/// The routes, at the root (not under `/api`: browsers navigate here).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/oauth/authorize/{connector_id}", get(authorize))
        .route("/oauth/callback", get(callback))
}

/// Where to send the browser, for clients that ask for JSON.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuthorizeRedirect {
    /// The provider's consent page, with `state` (and the PKCE challenge).
    pub authorize_url: String,
}

/// Starts connecting an account through the provider's consent page.
///
/// The query holds the connector's settings by name (`?subdomain=acme`,
/// as `GET /api/connectors` lists them in `settings`); a missing required
/// one, an unknown name or a value the connector refuses is a 422 naming
/// the setting. Answers `302 Found` to the provider, or, with `Accept:
/// application/json`, `200` with the URL (a dashboard calls this with its
/// token, then navigates). Either way it sets the cookie that binds the
/// flow to this browser: the callback refuses a browser without it. A
/// token narrowed to some connections cannot start one (403).
#[utoipa::path(get, path = "/oauth/authorize/{connector_id}",
    params(("connector_id" = String, Path),
           ("settings" = Option<std::collections::BTreeMap<String, String>>, Query, style = Form, explode,
            description = "the connector's settings by name, such as subdomain=acme")),
    responses((status = 302, description = "to the provider's consent page, with the binding cookie"),
              (status = 200, body = AuthorizeRedirect, description = "the consent page's URL, with the binding cookie"),
              (status = 401, body = crate::ErrorBody), (status = 403, body = crate::ErrorBody),
              (status = 404, body = crate::ErrorBody), (status = 422, body = crate::ErrorBody),
              (status = 429, body = crate::ErrorBody), (status = 503, body = crate::ErrorBody)),
    security(("tenant_token" = [])))]
pub(crate) async fn authorize(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(connector_id): Path<String>,
    query: Result<Query<BTreeMap<String, String>>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, Error> {
    tenant.may_create()?;
    let Query(query) = query?;
    let entry = entry(&state, &connector_id)?;
    let settings = entry
        .check_settings(&query)
        .map_err(|e| Error::invalid(&e.name, e.message))?;
    let redirect_uri = redirect_uri(&state)?;
    tenant.starts_work(&state)?;
    let connectors = &state.inner.connectors;
    let (key, url, flow) = match &entry.auth {
        Auth::OAuth2(_) => {
            let client = connectors
                .oauth2(&entry.id)
                .ok_or_else(|| not_oauth(entry))?;
            let authorization = client
                .authorize_with(redirect_uri, &settings)
                .map_err(|e| provider_setup(entry, &e))?;
            (
                authorization.state,
                authorization.url,
                Flow::OAuth2 {
                    pkce_verifier: authorization.pkce_verifier,
                    settings,
                },
            )
        }
        Auth::OAuth1(_) => {
            let client = connectors
                .oauth1(&entry.id)
                .ok_or_else(|| not_oauth(entry))?;
            let key = fleet_connectors::oauth2::random_state();
            let mut callback = redirect_uri.clone();
            callback.query_pairs_mut().append_pair("state", &key);
            let request = client
                .request_token(&callback)
                .await
                .map_err(|e| provider_setup(entry, &e))?;
            (
                key,
                request.authorize_url,
                Flow::OAuth1 {
                    request_token: request.token,
                    token_secret: request.secret,
                },
            )
        }
        Auth::AppPassword | Auth::ApiKey(_) | Auth::Basic(_) | Auth::ClientCredentials(_) => {
            return Err(not_oauth(entry));
        }
    };
    let binding = Binding::new();
    let pending = Pending {
        tenant: tenant.id().clone(),
        connector: entry.id.clone(),
        created_at: Utc::now(),
        binding: binding.digest(),
        flow,
    };
    state
        .inner
        .oauth_states
        .put(&key, &pending)
        .await
        .map_err(|e| Error::Unavailable(Box::new(e)))?;
    tracing::info!(tenant = %pending.tenant, connector = %entry.id, "OAuth authorization started.");
    flow_counted(entry.id.as_str(), "started");
    let cookie = (
        SET_COOKIE,
        binding_cookie(&state, redirect_uri).set(&key, &binding),
    );
    let wants_json = headers
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"));
    if wants_json {
        let body = Json(AuthorizeRedirect {
            authorize_url: url.to_string(),
        });
        let no_store = (CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return Ok(([cookie, no_store], body).into_response());
    }
    Ok(([cookie], redirect(StatusCode::FOUND, url.as_str())).into_response())
}

fn binding_cookie(state: &AppState, redirect_uri: &Url) -> binding::Cookie {
    binding::Cookie::new(redirect_uri, state.inner.config.oauth.state_ttl_secs)
}

/// What a provider sends back to the callback. Its `Debug` shows whether
/// each credential-bearing parameter (`state`, `code`, `oauth_token`,
/// `oauth_verifier`) is present, never its value.
#[derive(Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallbackParams {
    /// The `state` the authorize redirect carried.
    pub state: Option<String>,
    /// OAuth 2.0: the authorization code.
    pub code: Option<String>,
    /// OAuth 2.0: why there is no code (`access_denied`, ...).
    pub error: Option<String>,
    /// OAuth 2.0: the provider's words for `error`.
    pub error_description: Option<String>,
    /// Meta's reason for a denial (`user_denied`).
    pub error_reason: Option<String>,
    /// OAuth 1.0a: the request token the user authorized.
    pub oauth_token: Option<String>,
    /// OAuth 1.0a: the verifier.
    pub oauth_verifier: Option<String>,
    /// OAuth 1.0a: why there is no verifier (`user_refused` when the user
    /// denied access).
    pub oauth_problem: Option<String>,
    /// OAuth 2.0: the issuer of the response (RFC 9207), checked against
    /// the provider's configured issuer.
    pub iss: Option<String>,
}

impl std::fmt::Debug for CallbackParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let present = |value: &Option<String>| value.as_ref().map(|_| "[REDACTED]");
        f.debug_struct("CallbackParams")
            .field("state", &present(&self.state))
            .field("code", &present(&self.code))
            .field("error", &self.error)
            .field("error_description", &self.error_description)
            .field("error_reason", &self.error_reason)
            .field("oauth_token", &present(&self.oauth_token))
            .field("oauth_verifier", &present(&self.oauth_verifier))
            .field("oauth_problem", &self.oauth_problem)
            .field("iss", &self.iss)
            .finish()
    }
}

/// The provider's redirect back after consent. Always answers `303 See
/// Other` to the dashboard's callback page, with
/// `status=connected&connector=..&connection_id=..` or
/// `status=error&message=..`, and clears the flow's binding cookie. A
/// browser without the cookie of the flow's `state` (not the one that
/// started it) is refused, and the flow stays pending for the one that did.
#[utoipa::path(get, path = "/oauth/callback", params(CallbackParams),
    responses((status = 303, description = "to the dashboard's callback page")))]
pub(crate) async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    params: Result<Query<CallbackParams>, QueryRejection>,
) -> Response {
    let params = params.map(|Query(params)| params).unwrap_or_default();
    let page = answer(&state, &headers, &params, query.as_deref()).await;
    // Clear the binding whatever happened: the flow is over for this browser.
    let clear = state
        .inner
        .config
        .oauth
        .redirect_uri
        .as_ref()
        .zip(params.state.as_deref())
        .map(|(uri, key)| (SET_COOKIE, binding_cookie(&state, uri).clear(key)));
    (clear.into_iter().collect::<HeaderMap>(), page).into_response()
}

/// The authorization code of a callback: `code`, or the parameter the
/// provider's catalog entry names (`callback_code_param`).
fn callback_code(params: &CallbackParams, query: Option<&str>, name: &str) -> Option<String> {
    let code = if name == "code" {
        params.code.clone()
    } else {
        url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
    };
    code.filter(|c| !c.is_empty())
}

/// The redirect to the dashboard with the callback's outcome.
async fn answer(
    state: &AppState,
    headers: &HeaderMap,
    params: &CallbackParams,
    query: Option<&str>,
) -> Response {
    match finish(state, headers, params, query).await {
        Ok(done) => {
            tracing::info!(tenant = %done.tenant, connector = %done.connector,
                connection = %done.connection, "OAuth authorization finished; setup started.");
            flow_counted(done.connector.as_str(), "completed");
            back_to_dashboard(
                state,
                &[
                    ("status", "connected"),
                    ("connector", done.connector.as_str()),
                    ("connection_id", &done.connection),
                ],
            )
        }
        Err(failure) => {
            tracing::info!(connector = failure.connector.as_deref().unwrap_or("unknown"),
                reason = %failure.message, "OAuth authorization refused.");
            // A callback in another browser ends nothing: the flow stays
            // pending for the browser that started it.
            let outcome = if failure.flow_pending {
                "refused_other_browser"
            } else {
                "failed"
            };
            flow_counted(failure.connector.as_deref().unwrap_or("unknown"), outcome);
            let mut query = vec![("status", "error"), ("message", failure.message.as_str())];
            if let Some(connector) = &failure.connector {
                query.push(("connector", connector));
            }
            back_to_dashboard(state, &query)
        }
    }
}

/// Counts an OAuth flow's step in `fleet_oauth_flows_total`, by catalog id
/// (never a value from the request: an unknown flow counts as `unknown`).
fn flow_counted(provider: &str, outcome: &'static str) {
    metrics::counter!("fleet_oauth_flows_total", "provider" => provider.to_owned(), "outcome" => outcome)
        .increment(1);
}

/// A finished authorization.
struct Done {
    tenant: TenantId,
    connector: ConnectorId,
    connection: String,
}

/// Why an authorization ended without a connection, in words for the user.
struct Failure {
    connector: Option<String>,
    message: String,
    /// The flow is still pending (for the browser that started it).
    flow_pending: bool,
}

impl Failure {
    fn new(connector: Option<&ConnectorId>, message: impl Into<String>) -> Self {
        Self {
            connector: connector.map(|c| c.as_str().to_owned()),
            message: message.into(),
            flow_pending: false,
        }
    }
}

async fn finish(
    state: &AppState,
    headers: &HeaderMap,
    params: &CallbackParams,
    query: Option<&str>,
) -> Result<Done, Failure> {
    let Some(key) = params.state.as_deref() else {
        return Err(Failure::new(
            None,
            "The provider sent the browser back without the state of the sign-in. Start again from the dashboard.",
        ));
    };
    let presented = binding::presented(headers, key);
    let taken = state
        .inner
        .oauth_states
        .take(key, presented.as_deref(), Utc::now())
        .await;
    let pending = match taken {
        Ok(Taken::Found(pending)) => pending,
        Ok(Taken::OtherBrowser(pending)) => {
            tracing::warn!(tenant = %pending.tenant, connector = %pending.connector,
                cookie = presented.is_some(),
                "OAuth callback from a browser that did not start the flow; refused, the flow stays pending.");
            return Err(Failure {
                flow_pending: true,
                ..Failure::new(
                    Some(&pending.connector),
                    "This sign-in was started in another browser, so nothing was connected. Start again from your dashboard.",
                )
            });
        }
        Ok(Taken::Unknown) => {
            return Err(Failure::new(
                None,
                "This sign-in link was already used or has expired. Start again from the dashboard.",
            ));
        }
        Ok(Taken::Expired) => {
            return Err(Failure::new(
                None,
                "This sign-in took too long and expired. Start again from the dashboard.",
            ));
        }
        Err(error) => {
            tracing::error!(error.message = %error, error.cause_chain = ?error, "Reading an OAuth state failed.");
            return Err(Failure::new(
                None,
                "The sign-in could not be completed because a service is unavailable. Try again in a minute.",
            ));
        }
    };
    let connector = &pending.connector;
    let entry = state
        .inner
        .connectors
        .catalog()
        .get(connector)
        .ok_or_else(|| Failure::new(Some(connector), "This connector is no longer offered."))?;
    let provider = entry.display_name.as_str();
    check_issuer(state, connector, provider, params.iss.as_deref())?;
    if let Some(error) = params.error.as_ref().or(params.oauth_problem.as_ref()) {
        return Err(Failure::new(
            Some(connector),
            provider_error(provider, error, params),
        ));
    }
    let credentials = match &pending.flow {
        Flow::OAuth2 {
            pkce_verifier,
            settings,
        } => {
            let client = state.inner.connectors.oauth2(connector).ok_or_else(|| {
                Failure::new(Some(connector), "This connector no longer uses OAuth 2.0.")
            })?;
            let code = callback_code(params, query, &client.settings().callback_code_param)
                .ok_or_else(|| {
                    Failure::new(
                        Some(connector),
                        format!("{provider} sent the browser back without an authorization code. Try connecting again."),
                    )
                })?;
            let code = code.as_str();
            let redirect_uri =
                redirect_uri(state).map_err(|e| Failure::new(Some(connector), e.to_string()))?;
            client
                .exchange_code_with(code, redirect_uri, pkce_verifier.as_ref(), settings)
                .await
                .map_err(|e| exchange_failed(provider, connector, &e))?
                .into_credentials()
        }
        Flow::OAuth1 {
            request_token,
            token_secret,
        } => {
            let verifier = params
                .oauth_verifier
                .as_deref()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| {
                    Failure::new(
                        Some(connector),
                        format!("{provider} sent the browser back without a verifier. Try connecting again."),
                    )
                })?;
            if params.oauth_token.as_deref() != Some(request_token.as_str()) {
                return Err(Failure::new(
                    Some(connector),
                    format!(
                        "{provider} sent back a different request token than this sign-in started with. Start again from the dashboard."
                    ),
                ));
            }
            let client = state.inner.connectors.oauth1(connector).ok_or_else(|| {
                Failure::new(Some(connector), "This connector no longer uses OAuth 1.0a.")
            })?;
            client
                .access_token(request_token, token_secret, verifier)
                .await
                .map_err(|e| exchange_failed(provider, connector, &e))?
        }
    };
    let connection = start_setup(
        state,
        pending.tenant.clone(),
        connector.clone(),
        provider,
        &credentials,
        SetupOrigin::Oauth,
    )
    .await
    .map_err(|e| {
        Failure::new(
            Some(connector),
            match e {
                Error::Unavailable(_) | Error::Internal(_) => format!(
                    "{provider} approved the connection, but it could not be saved because a service is unavailable. Try connecting again in a minute."
                ),
                other => other.to_string(),
            },
        )
    })?;
    Ok(Done {
        tenant: pending.tenant,
        connector: connector.clone(),
        connection: connection.to_string(),
    })
}

/// Checks the response's `iss` against the provider's configured issuer
/// (RFC 9207): a different one means the response came from another
/// provider than the flow went to (a mix-up attack).
fn check_issuer(
    state: &AppState,
    connector: &ConnectorId,
    provider: &str,
    iss: Option<&str>,
) -> Result<(), Failure> {
    // The operator's settings win over the catalog's, key by key.
    let configured = state.inner.config.oauth.provider(connector);
    let catalog = state
        .inner
        .connectors
        .catalog()
        .get(connector)
        .and_then(|entry| match &entry.auth {
            Auth::OAuth2(settings) => Some(settings.as_ref()),
            Auth::OAuth1(_)
            | Auth::AppPassword
            | Auth::ApiKey(_)
            | Auth::Basic(_)
            | Auth::ClientCredentials(_) => None,
        });
    let issuer = configured
        .and_then(|p| p.issuer.as_deref())
        .or_else(|| catalog.and_then(|s| s.issuer.as_deref()));
    let always_sent = configured.is_some_and(|p| p.authorization_response_iss_parameter_supported)
        || catalog.is_some_and(|s| s.authorization_response_iss_parameter_supported);
    match (iss, issuer) {
        (Some(iss), Some(issuer)) if iss != issuer => {
            tracing::warn!(connector = %connector, iss = %plain(iss, 200),
                "OAuth callback with another issuer than the provider's; refused.");
            Err(Failure::new(
                Some(connector),
                format!(
                    "The answer did not come from {provider} (its issuer is not {provider}'s), so nothing was connected. Start again from your dashboard."
                ),
            ))
        }
        (None, _) if always_sent => {
            tracing::warn!(connector = %connector, "OAuth callback without the `iss` its provider always sends; refused.");
            Err(Failure::new(
                Some(connector),
                format!(
                    "The answer did not say it came from {provider}, which {provider} always does, so nothing was connected. Start again from your dashboard."
                ),
            ))
        }
        _ => Ok(()),
    }
}

/// The provider's `error` parameter in plain words.
pub(crate) fn provider_error(provider: &str, error: &str, params: &CallbackParams) -> String {
    let denied = error == "access_denied"
        || error.starts_with("user_cancelled")
        // OAuth 1.0a's `oauth_problem` (Trello's denial).
        || error == "user_refused"
        || params.error_reason.as_deref() == Some("user_denied");
    if denied {
        return format!(
            "You declined access on {provider}'s consent page, so nothing was connected."
        );
    }
    let description = params
        .error_description
        .as_deref()
        .map(|d| plain(d, 300))
        .filter(|d| !d.is_empty());
    match description {
        Some(description) => format!(
            "{provider} refused the connection ({}): {description}",
            plain(error, 60)
        ),
        None => format!("{provider} refused the connection ({}).", plain(error, 60)),
    }
}

/// A failed code or verifier exchange, in words for the user.
fn exchange_failed(
    provider: &str,
    connector: &ConnectorId,
    error: &fleet_connectors::Error,
) -> Failure {
    tracing::warn!(connector = %connector, error.message = %error, "OAuth token exchange failed.");
    let message = match error.class() {
        ErrorClass::Retryable { .. } => format!(
            "{provider} could not be reached to finish the connection. Try connecting again in a minute."
        ),
        ErrorClass::ReauthRequired | ErrorClass::Permanent => {
            format!("{provider} did not accept the sign-in: {error}. Try connecting again.")
        }
    };
    Failure::new(Some(connector), message)
}

/// Provider text, cut to `max` characters and without control characters.
fn plain(text: &str, max: usize) -> String {
    text.chars()
        .filter(|c| !c.is_control())
        .take(max)
        .collect::<String>()
        .trim()
        .to_owned()
}

fn entry<'a>(state: &'a AppState, connector_id: &str) -> Result<&'a CatalogEntry, Error> {
    ConnectorId::parse(connector_id)
        .ok()
        .and_then(|id| state.inner.connectors.catalog().get(&id))
        .ok_or_else(|| {
            Error::NotFound(format!(
                "no connector named {connector_id:?}; GET /api/connectors lists them"
            ))
        })
}

fn redirect_uri(state: &AppState) -> Result<&Url, Error> {
    state.inner.config.oauth.redirect_uri.as_ref().ok_or_else(|| {
        Error::NotConfigured(
            "OAuth is not configured on this gateway: set FLEET_GATEWAY__OAUTH__REDIRECT_URI to its public /oauth/callback URL".to_owned(),
        )
    })
}

fn not_oauth(entry: &CatalogEntry) -> Error {
    Error::invalid(
        "connector_id",
        format!(
            "{} connects with typed-in credentials ({}), not a consent page: POST /api/connections",
            entry.display_name,
            entry.auth.kind()
        ),
    )
}

/// The provider cannot start a flow: no client configured, its request
/// token endpoint failed, or the settings cannot build its authorize URL.
fn provider_setup(entry: &CatalogEntry, error: &fleet_connectors::Error) -> Error {
    if let fleet_connectors::Error::Template { .. } = error {
        return Error::invalid("settings", format!("{error}; check the settings"));
    }
    match error.class() {
        ErrorClass::Retryable { .. } => Error::NotConfigured(format!(
            "{} could not be reached to start the connection, try again shortly: {error}",
            entry.display_name
        )),
        ErrorClass::ReauthRequired | ErrorClass::Permanent => Error::NotConfigured(format!(
            "{} cannot be connected on this platform: {error}",
            entry.display_name
        )),
    }
}

/// The dashboard's callback page with `query`.
fn back_to_dashboard(state: &AppState, query: &[(&str, &str)]) -> Response {
    let base = &state.inner.config.oauth.dashboard_callback_url;
    let encoded = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(query)
        .finish();
    let separator = if base.contains('?') { '&' } else { '?' };
    redirect(
        StatusCode::SEE_OTHER,
        &format!("{base}{separator}{encoded}"),
    )
}

fn redirect(status: StatusCode, location: &str) -> Response {
    let Ok(location) = HeaderValue::from_str(location) else {
        return Error::NotConfigured(
            "the dashboard callback URL is not a valid Location header value".to_owned(),
        )
        .into_response();
    };
    (
        status,
        [
            (LOCATION, location),
            (CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callback_params_debug_without_their_credentials() {
        let params = CallbackParams {
            state: Some("state-value".to_owned()),
            code: Some("code-value".to_owned()),
            oauth_token: Some("token-value".to_owned()),
            oauth_verifier: Some("verifier-value".to_owned()),
            error: Some("access_denied".to_owned()),
            ..CallbackParams::default()
        };

        let debug = format!("{params:?}");

        for secret in ["state-value", "code-value", "token-value", "verifier-value"] {
            assert!(!debug.contains(secret), "{debug}");
        }
        assert!(debug.contains("access_denied"), "{debug}");
    }

    #[test]
    fn a_denial_reads_as_the_users_choice() {
        let params = CallbackParams::default();
        assert_eq!(
            provider_error("Google Analytics", "access_denied", &params),
            "You declined access on Google Analytics's consent page, so nothing was connected."
        );
        let meta = CallbackParams {
            error_reason: Some("user_denied".to_owned()),
            ..CallbackParams::default()
        };
        assert!(provider_error("Meta Ads", "some_error", &meta).starts_with("You declined"));
    }

    #[test]
    fn an_oauth1_refusal_reads_as_the_users_choice() {
        assert_eq!(
            provider_error("Trello", "user_refused", &CallbackParams::default()),
            "You declined access on Trello's consent page, so nothing was connected."
        );
    }

    #[test]
    fn other_provider_errors_keep_the_providers_words_cut_short() {
        let params = CallbackParams {
            error_description: Some(format!("Scope\u{7} not allowed{}", "!".repeat(400))),
            ..CallbackParams::default()
        };
        let message = provider_error("LinkedIn", "invalid_scope", &params);
        assert!(
            message
                .starts_with("LinkedIn refused the connection (invalid_scope): Scope not allowed"),
            "{message}"
        );
        assert!(message.chars().count() < 400);
    }
}
