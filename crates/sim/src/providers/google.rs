//! Google under `/google`: OAuth 2.0 (authorize, token, revoke; its
//! quirks are in [`oauth`]), OpenID userinfo, and the Analytics APIs in
//! [`analytics`], with Google's quirks: flat `{"error",
//! "error_description"}` bodies with HTTP 400 from the token endpoint but
//! `{"error": {"code", "message", "status"}}` from the APIs, and no
//! `Retry-After` on 429.

mod analytics;
mod oauth;

use std::{collections::HashMap, sync::Arc};

use axum::{
    Json, Router,
    extract::State as AxumState,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
};
use chrono::NaiveDate;
use serde_json::json;

use crate::{
    config::{GoogleConfig, GoogleUserConfig},
    fault::{self, Fault},
    oauth::{self as oauth2, Access, Provider, Refresh, Rules, Server, Settings},
    state::State,
};

/// Google's routes.
pub(crate) fn router() -> Router<Arc<State>> {
    Router::new()
        .route("/o/oauth2/v2/auth", oauth2::authorize(&oauth::QUIRKS))
        .route("/token", oauth2::token(&oauth::QUIRKS))
        .route("/revoke", oauth2::revoke(&oauth::QUIRKS))
        .route("/v1/userinfo", get(userinfo))
        .merge(analytics::router())
}

/// Google's client, users, grants and traffic.
#[derive(Debug)]
pub(crate) struct Google {
    config: GoogleConfig,
    pub(crate) oauth: Server,
    /// Sessions set through the handle, by property and day; `None` is a
    /// day without traffic.
    traffic: HashMap<(u64, NaiveDate), Option<u64>>,
}

impl Google {
    pub(crate) fn new(config: &GoogleConfig) -> Self {
        let settings = Settings {
            client_id: config.client_id.clone(),
            client_secret: config.client_secret.clone(),
            users: config.users.iter().map(|user| user.name.clone()).collect(),
            consent_page: config.consent_page,
            refresh: Refresh::OfflineFirstOrForced,
            rotate_refresh_tokens: config.rotate_refresh_tokens,
            rules: Rules::default(),
        };
        Self {
            config: config.clone(),
            oauth: Server::new(&oauth::QUIRKS, settings),
            traffic: HashMap::new(),
        }
    }

    /// The sessions of `property` on `day` (a day of its owner's time
    /// zone): set through the handle, else seeded; `None` for a day
    /// without traffic.
    pub(crate) fn sessions(&self, property: u64, day: NaiveDate) -> Option<u64> {
        if let Some(sessions) = self.traffic.get(&(property, day)) {
            return *sessions;
        }
        let quiet_every = self
            .owner(property)
            .map_or(0, |(_, user)| user.no_traffic_every);
        analytics::seeded_sessions(property, day, quiet_every)
    }

    /// Sets the sessions of `property` on `day`; `None` takes its traffic
    /// away.
    pub(crate) fn set_sessions(&mut self, property: u64, day: NaiveDate, sessions: Option<u64>) {
        self.traffic.insert((property, day), sessions);
    }

    /// The user who owns `property`, with their index.
    fn owner(&self, property: u64) -> Option<(usize, &GoogleUserConfig)> {
        self.config.users.iter().enumerate().find(|(index, user)| {
            (0..user.accounts).any(|n| {
                (0..user.properties_per_account).any(|p| {
                    analytics::property_id(analytics::account_id(*index, n), p) == property
                })
            })
        })
    }

    fn user(&self, name: &str) -> Option<(usize, &GoogleUserConfig)> {
        self.config
            .users
            .iter()
            .enumerate()
            .find(|(_, user)| user.name == name)
    }
}

/// Answers a fault on the APIs in Google's place. Google never sends
/// `Retry-After`; `retry_after_secs` picks the quota the 429 names
/// instead: under a minute the concurrent requests, under a day the
/// property's hourly tokens, else its daily tokens.
fn api_fault(fault: &Fault) -> Option<Response> {
    match fault {
        Fault::RateLimited { retry_after_secs } => Some(api_error(
            StatusCode::TOO_MANY_REQUESTS,
            quota_message(*retry_after_secs),
            "RESOURCE_EXHAUSTED",
        )),
        Fault::Unavailable { .. } => Some(api_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "The service is currently unavailable.",
            "UNAVAILABLE",
        )),
        Fault::ExpiredAccessToken => Some(unauthenticated()),
        Fault::Slow { .. }
        | Fault::InvalidGrant
        | Fault::Redirect { .. }
        | Fault::StripAuthorization => None,
    }
}

/// The message of an exhausted quota that takes about `secs` to refresh.
fn quota_message(secs: u64) -> &'static str {
    match secs {
        0..60 => "Exhausted concurrent requests per property.",
        60..86_400 => {
            "Exhausted property tokens per hour for a project per property. Wait an hour before \
             retrying."
        }
        _ => "Exhausted property tokens per day.",
    }
}

/// The caller of an API route: the bearer token's user, after faults.
pub(super) async fn caller(
    state: &State,
    headers: &HeaderMap,
) -> Result<(usize, GoogleUserConfig), Response> {
    let token = oauth2::bearer(headers).unwrap_or_default();
    let Access::Valid(grantee) = state.oauth(Provider::Google, |server| server.lookup(token))
    else {
        return Err(unauthenticated());
    };
    let fault = state.arrive(&Provider::Google.fault_target(&grantee.user));
    if let Some(response) = fault::suffer(fault, api_fault).await {
        return Err(response);
    }
    state
        .google(|google| {
            google
                .user(&grantee.user)
                .map(|(index, user)| (index, user.clone()))
        })
        .ok_or_else(unauthenticated)
}

/// `GET /v1/userinfo`: OpenID Connect's userinfo.
async fn userinfo(AxumState(state): AxumState<Arc<State>>, headers: HeaderMap) -> Response {
    let (index, user) = match caller(&state, &headers).await {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    Json(json!({
        "sub": format!("10{:019}", index + 1),
        "name": user.name,
        "email": format!("{}@example.test", user.name),
        "email_verified": true,
    }))
    .into_response()
}

/// Google's API error envelope.
pub(super) fn api_error(status: StatusCode, message: &str, code: &str) -> Response {
    (
        status,
        Json(json!({"error": {"code": status.as_u16(), "message": message, "status": code}})),
    )
        .into_response()
}

fn unauthenticated() -> Response {
    api_error(
        StatusCode::UNAUTHORIZED,
        "Request had invalid authentication credentials. Expected OAuth 2 access token, login \
         cookie or other valid authentication credential. See \
         https://developers.google.com/identity/sign-in/web/devconsole-project.",
        "UNAUTHENTICATED",
    )
}

impl crate::SimHandle {
    /// Sets the sessions of Google Analytics property `property` (its
    /// number, `123` of `properties/123`) on `day`, a day of its owner's
    /// time zone; users and page views follow from them. `None` makes it a
    /// day without traffic, which reports leave out.
    pub fn set_google_sessions(&self, property: u64, day: NaiveDate, sessions: Option<u64>) {
        self.inner
            .state
            .google(|google| google.set_sessions(property, day, sessions));
    }

    /// The sessions of property `property` on `day`, as reports give them
    /// up to the owner's today; `None` for a day without traffic.
    pub fn google_sessions(&self, property: u64, day: NaiveDate) -> Option<u64> {
        self.inner
            .state
            .google(|google| google.sessions(property, day))
    }
}
