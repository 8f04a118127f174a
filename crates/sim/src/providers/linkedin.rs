//! LinkedIn under `/linkedin`: OAuth 2.0 (`/oauth/v2/authorization`,
//! `/oauth/v2/accessToken`; its quirks are in [`oauth`]), OpenID
//! Connect's `/v2/userinfo`, and the versioned Community Management API
//! in [`rest`]. Errors are `{"status", "serviceErrorCode", "code",
//! "message"}` from the APIs, `{"error", "error_description"}` from the
//! OAuth endpoints; 429 has no `Retry-After`.

mod oauth;
mod rest;

use std::{collections::HashMap, sync::Arc};

use axum::{
    Json, Router,
    extract::State as AxumState,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::NaiveDate;
use serde_json::json;
use sha2::{Digest as _, Sha256};

use crate::{
    config::{LinkedInConfig, LinkedInUserConfig},
    fault::{self, Fault},
    oauth::{self as oauth2, Access, Grantee, Provider, Refresh, Rules, Server, Settings},
    state::State,
};

/// LinkedIn's routes.
pub(crate) fn router() -> Router<Arc<State>> {
    Router::new()
        .route("/oauth/v2/authorization", oauth2::authorize(&oauth::QUIRKS))
        .route("/oauth/v2/accessToken", oauth2::token(&oauth::QUIRKS))
        .route("/v2/userinfo", get(userinfo))
        .merge(rest::router())
}

/// LinkedIn's app, members, grants and follower gains.
#[derive(Debug)]
pub(crate) struct LinkedIn {
    config: LinkedInConfig,
    pub(crate) oauth: Server,
    /// Follower gains set through the handle, by organization number and
    /// day: organic and paid.
    gains: HashMap<(u64, NaiveDate), (i64, i64)>,
}

impl LinkedIn {
    pub(crate) fn new(config: &LinkedInConfig) -> Self {
        let settings = Settings {
            client_id: config.client_id.clone(),
            client_secret: config.client_secret.clone(),
            users: config.users.iter().map(|user| user.name.clone()).collect(),
            consent_page: config.consent_page,
            refresh: if config.refresh_tokens {
                Refresh::Always
            } else {
                Refresh::Never
            },
            rotate_refresh_tokens: false,
            rules: Rules::default(),
        };
        Self {
            config: config.clone(),
            oauth: Server::new(&oauth::QUIRKS, settings),
            gains: HashMap::new(),
        }
    }

    /// The organic and paid follower gains of organization `organization`
    /// on `day`: set through the handle, else seeded.
    fn gains(&self, organization: u64, day: NaiveDate) -> (i64, i64) {
        self.gains
            .get(&(organization, day))
            .copied()
            .unwrap_or_else(|| rest::seeded_gains(organization, day))
    }

    fn user(&self, name: &str) -> Option<(usize, &LinkedInUserConfig)> {
        self.config
            .users
            .iter()
            .enumerate()
            .find(|(_, user)| user.name == name)
    }
}

/// Answers a fault on the APIs in LinkedIn's place. LinkedIn sends no
/// `Retry-After`, so `retry_after_secs` is ignored.
fn api_fault(fault: &Fault) -> Option<Response> {
    match fault {
        Fault::RateLimited { .. } => Some(rate_limited()),
        Fault::Unavailable { .. } => Some(api_error(
            StatusCode::SERVICE_UNAVAILABLE,
            None,
            0,
            "Service Unavailable",
        )),
        Fault::ExpiredAccessToken => Some(expired_token()),
        Fault::Slow { .. }
        | Fault::InvalidGrant
        | Fault::Redirect { .. }
        | Fault::StripAuthorization => None,
    }
}

/// LinkedIn's 429: the application's daily limit, without `Retry-After`.
fn rate_limited() -> Response {
    api_error(
        StatusCode::TOO_MANY_REQUESTS,
        Some("TOO_MANY_REQUESTS"),
        101,
        "Resource level throttle APPLICATION DAY limit for calls to this resource is reached.",
    )
}

/// The caller of an API route: the bearer token's member and grant, after
/// faults.
async fn caller(
    state: &State,
    headers: &HeaderMap,
) -> Result<(usize, LinkedInUserConfig, Grantee), Response> {
    let token = oauth2::bearer(headers).unwrap_or_default();
    let grantee = match state.oauth(Provider::LinkedIn, |server| server.lookup(token)) {
        Access::Valid(grantee) => grantee,
        Access::Expired(_) => return Err(expired_token()),
        Access::Unknown => {
            return Err(api_error(
                StatusCode::UNAUTHORIZED,
                Some("INVALID_ACCESS_TOKEN"),
                65_600,
                "Invalid access token",
            ));
        }
    };
    let fault = state.arrive(&Provider::LinkedIn.fault_target(&grantee.user));
    if let Some(response) = fault::suffer(fault, api_fault).await {
        return Err(response);
    }
    let user = state.linkedin(|linkedin| {
        linkedin
            .user(&grantee.user)
            .map(|(index, user)| (index, user.clone()))
    });
    let Some((index, user)) = user else {
        return Err(expired_token());
    };
    Ok((index, user, grantee))
}

/// `GET /v2/userinfo`: OpenID Connect's userinfo, with `locale` as the
/// object live answers have (the docs show a string).
async fn userinfo(AxumState(state): AxumState<Arc<State>>, headers: HeaderMap) -> Response {
    let (index, user, grantee) = match caller(&state, &headers).await {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    if !grantee.scopes.iter().any(|scope| scope == "openid") {
        return access_denied("userinfo.GET.NO_VERSION");
    }
    let mut body = json!({
        "sub": member_id(index, &user),
        "name": user.name,
        "given_name": user.name,
        "family_name": "Tester",
        "picture": "https://media.licdn.com/dms/image/sim/profile-displayphoto-shrink_100_100/0/",
        "locale": {"country": "US", "language": "en"},
    });
    if grantee.scopes.iter().any(|scope| scope == "email") {
        body["email"] = json!(format!("{}@example.test", user.name));
        body["email_verified"] = json!(true);
    }
    Json(body).into_response()
}

/// The member id of the member at `index`: what `sub` and person URNs hold.
pub(super) fn member_id(index: usize, user: &LinkedInUserConfig) -> String {
    let seed = format!("{index}:{}", user.name);
    URL_SAFE_NO_PAD.encode(Sha256::digest(seed.as_bytes()))[..10].to_owned()
}

/// The number of organization `n` (from 0) of the member at `index`.
pub(super) fn organization_number(index: usize, n: u32) -> u64 {
    10_000_000 + (index as u64 + 1) * 100 + u64::from(n) + 1
}

/// LinkedIn's API error body.
pub(super) fn api_error(
    status: StatusCode,
    code: Option<&str>,
    service_error_code: i64,
    message: &str,
) -> Response {
    let mut body = json!({
        "status": status.as_u16(),
        "serviceErrorCode": service_error_code,
        "message": message,
    });
    if let Some(code) = code {
        body["code"] = json!(code);
    }
    (status, Json(body)).into_response()
}

pub(super) fn access_denied(resource: &str) -> Response {
    api_error(
        StatusCode::FORBIDDEN,
        Some("ACCESS_DENIED"),
        100,
        &format!("Not enough permissions to access: {resource}"),
    )
}

fn expired_token() -> Response {
    api_error(
        StatusCode::UNAUTHORIZED,
        Some("EXPIRED_ACCESS_TOKEN"),
        65_601,
        "The token used in the request has expired",
    )
}

impl crate::SimHandle {
    /// Sets the organic and paid follower gains of LinkedIn organization
    /// `organization` (`urn:li:organization:<n>` or `<n>`) on the UTC day
    /// `day`.
    pub fn set_linkedin_gains(&self, organization: &str, day: NaiveDate, organic: i64, paid: i64) {
        let Some(number) = organization_of(organization) else {
            return;
        };
        self.inner.state.linkedin(|linkedin| {
            linkedin.gains.insert((number, day), (organic, paid));
        });
    }

    /// The organic and paid follower gains of `organization` on `day`, as
    /// the time-bound statistics give them.
    pub fn linkedin_gains(&self, organization: &str, day: NaiveDate) -> Option<(i64, i64)> {
        let number = organization_of(organization)?;
        Some(
            self.inner
                .state
                .linkedin(|linkedin| linkedin.gains(number, day)),
        )
    }

    /// Lets every refresh token of LinkedIn member `user` expire now, as
    /// they do 365 days after the first grant: refreshing with one is then
    /// refused with `invalid_request`.
    pub fn expire_linkedin_refresh_tokens(&self, user: &str) {
        self.inner.state.oauth(Provider::LinkedIn, |server| {
            server.expire_refresh_tokens(user)
        });
    }
}

/// The number of organization `urn:li:organization:<n>` or `<n>`.
fn organization_of(organization: &str) -> Option<u64> {
    organization
        .strip_prefix("urn:li:organization:")
        .unwrap_or(organization)
        .parse()
        .ok()
}
