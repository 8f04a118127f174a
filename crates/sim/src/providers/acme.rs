//! Acme under `/acme/{tenant}`, and at the host `{tenant}.acme.test`: a
//! standards-compliant OAuth 2.0 provider that serves each customer on its
//! own subdomain (a request whose `Host` is `{tenant}.acme.test` is
//! served as `/acme/{tenant}` is, for clients that resolve that name to
//! the simulator; others use the path), and
//! whose apps choose what they require of token requests: client
//! authentication by HTTP Basic or in the body (never both), form or
//! JSON bodies, extra parameters. Its token answers carry the tenant's
//! `instance_url` and an `account` object, which clients keep and call
//! the API with: `{instance_url}/userinfo` answers a bearer token with its
//! user. Only the configured tenant exists; any other path answers 404.
//!
//! Tests read the token requests back ([`SimHandle::acme_token_requests`], the last 1,000)
//! to see how a client authenticated and encoded it.

mod oauth;

use std::{collections::HashMap, sync::Arc};

use axum::{
    Json, Router,
    extract::{Path, Request, State as AxumState},
    http::{HeaderMap, StatusCode},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
};
use serde_json::json;

use crate::{
    SimHandle,
    config::{AcmeClientAuth, AcmeConfig},
    fault::{self, Fault},
    oauth::{
        self as oauth2, Access, ClientAuth, Provider, Refresh, Rules, Server, Settings,
        TokenRequest, error_body,
    },
    state::State,
};

/// The domain under which each Acme tenant has its host.
const DOMAIN: &str = ".acme.test";

/// Serves a request to the host `{tenant}.acme.test` as one to
/// `/acme/{tenant}` on the simulator's own host.
pub(crate) async fn by_host(mut request: Request) -> Request {
    let host = request
        .headers()
        .get(axum::http::header::HOST)
        .and_then(|host| host.to_str().ok())
        .unwrap_or_default();
    let name = host.rsplit_once(':').map_or(host, |(name, _)| name);
    let Some(tenant) = name
        .to_ascii_lowercase()
        .strip_suffix(DOMAIN)
        .map(str::to_owned)
    else {
        return request;
    };
    let label = !tenant.is_empty()
        && tenant
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |path| path.as_str());
    if let (true, Ok(uri)) = (label, format!("/acme/{tenant}{path}").parse()) {
        *request.uri_mut() = uri;
    }
    request
}

/// Acme's routes, under `/acme/{tenant}`.
pub(crate) fn router(state: Arc<State>) -> Router<Arc<State>> {
    Router::new()
        .route("/oauth/authorize", oauth2::authorize(&oauth::QUIRKS))
        .route("/oauth/token", oauth2::token(&oauth::QUIRKS))
        .route("/oauth/revoke", oauth2::revoke(&oauth::QUIRKS))
        .route("/api/userinfo", get(userinfo))
        .route_layer(middleware::from_fn_with_state(state, known_tenant))
}

/// Acme's app and grants.
#[derive(Debug)]
pub(crate) struct Acme {
    pub(crate) oauth: Server,
}

impl Acme {
    pub(crate) fn new(config: &AcmeConfig, base_url: &str) -> Self {
        let instance_url = format!("{base_url}/acme/{}/api", config.tenant);
        let mut answer_fields = serde_json::Map::new();
        answer_fields.insert("instance_url".to_owned(), json!(instance_url));
        answer_fields.insert("account".to_owned(), json!({"id": config.account_id}));
        let rules = Rules {
            client_auth: match config.client_auth {
                AcmeClientAuth::Basic => ClientAuth::Basic,
                AcmeClientAuth::Post => ClientAuth::Post,
            },
            json_body: config.json_bodies,
            code_params: config.token_params.clone().into_iter().collect(),
            refresh_params: config.refresh_params.clone().into_iter().collect(),
            answer_fields,
        };
        let settings = Settings {
            client_id: config.client_id.clone(),
            client_secret: config.client_secret.clone(),
            users: config.users.clone(),
            consent_page: false,
            refresh: Refresh::Always,
            rotate_refresh_tokens: config.rotate_refresh_tokens,
            rules,
        };
        Self {
            oauth: Server::new(&oauth::QUIRKS, settings),
        }
    }
}

/// Answers 404 for a tenant Acme does not serve.
async fn known_tenant(
    AxumState(state): AxumState<Arc<State>>,
    Path(params): Path<HashMap<String, String>>,
    request: Request,
    next: Next,
) -> Response {
    let tenant = params.get("tenant").map(String::as_str).unwrap_or_default();
    if state.acme_tenant != tenant {
        return error_body(
            StatusCode::NOT_FOUND,
            "not_found",
            "There is no Acme tenant at this address.",
        );
    }
    next.run(request).await
}

/// `GET /api/userinfo`: the bearer token's user.
async fn userinfo(AxumState(state): AxumState<Arc<State>>, headers: HeaderMap) -> Response {
    let token = oauth2::bearer(&headers).unwrap_or_default();
    let Access::Valid(grantee) = state.oauth(Provider::Acme, |server| server.lookup(token)) else {
        return error_body(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "The access token is invalid or expired.",
        );
    };
    let fault = state.arrive(&Provider::Acme.fault_target(&grantee.user));
    if let Some(response) = fault::suffer(fault, api_fault).await {
        return response;
    }
    Json(json!({
        "sub": format!("acme|{}", grantee.user),
        "name": grantee.user,
        "email": format!("{}@acme.example.test", grantee.user),
    }))
    .into_response()
}

fn api_fault(fault: &Fault) -> Option<Response> {
    match fault {
        Fault::ExpiredAccessToken => Some(error_body(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "The access token is invalid or expired.",
        )),
        Fault::Unavailable { .. } => Some(error_body(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "The service is temporarily unavailable.",
        )),
        Fault::RateLimited { .. }
        | Fault::Slow { .. }
        | Fault::InvalidGrant
        | Fault::Redirect { .. }
        | Fault::StripAuthorization => None,
    }
}

impl SimHandle {
    /// `{base_url}/acme/{tenant}`, the root of the simulated Acme tenant
    /// `tenant` (only the configured one answers): authorize at
    /// `/oauth/authorize`, tokens at `/oauth/token`, revocation at
    /// `/oauth/revoke`, the API at `/api` (what token answers give as
    /// `instance_url`), whose `/userinfo` answers a bearer token.
    pub fn acme_url(&self, tenant: &str) -> String {
        format!("{}/acme/{tenant}", self.base_url())
    }

    /// `http://{tenant}.acme.test:{port}`: Acme's tenant `tenant` at its own
    /// host, for clients that resolve `{tenant}.acme.test` to the
    /// simulator's address (the connectors' `hosts` setting); the same
    /// routes as [`acme_url`](Self::acme_url).
    pub fn acme_host_url(&self, tenant: &str) -> String {
        let port = self
            .base_url()
            .rsplit_once(':')
            .map_or("80", |(_, port)| port);
        format!("http://{tenant}{DOMAIN}:{port}")
    }

    /// The requests Acme's token endpoint received, in order (the last
    /// 1,000): how each client authenticated and encoded its parameters.
    pub fn acme_token_requests(&self) -> Vec<TokenRequest> {
        self.inner
            .state
            .oauth(Provider::Acme, |server| server.token_requests())
    }

    /// Makes the next `times` requests of Acme user `user` (to the token
    /// endpoint or the API) suffer `fault`.
    pub fn inject_acme(&self, user: &str, fault: Fault, times: u32) {
        self.inner
            .state
            .inject(Some(&Provider::Acme.fault_target(user)), fault, times);
    }
}
