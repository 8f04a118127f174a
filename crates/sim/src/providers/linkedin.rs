//! LinkedIn under `/linkedin`: OAuth 2.0 (`/oauth/v2/authorization`,
//! `/oauth/v2/accessToken`), OpenID Connect's `/v2/userinfo` and the
//! versioned Community Management API's `/rest/organizationAcls` and
//! `/rest/organizationalEntityFollowerStatistics`, with LinkedIn's quirks:
//!
//! - Every `/rest` call needs `LinkedIn-Version: YYYYMM` (400
//!   `VERSION_MISSING` without it, 426 `NONEXISTENT_VERSION` for a version
//!   outside the configured window) and `X-Restli-Protocol-Version: 2.0.0`;
//!   `/v2/userinfo` needs neither.
//! - Rest.li 2.0 query syntax: `timeIntervals=(timeRange:(start:…,end:…),timeGranularityType:DAY)`
//!   with epoch milliseconds and literal parentheses, URNs URL-encoded
//!   (`urn%3Ali%3Aorganization%3A123`); encoded parentheses, raw URNs and
//!   the dotted Rest.li 1.0 form are refused with 400.
//! - Time-bound statistics are daily `followerGains` (gains, not totals);
//!   without `timeIntervals` the element has demographic facets instead.
//! - Errors are `{"status", "serviceErrorCode", "code", "message"}` from
//!   the APIs, `{"error", "error_description"}` from the OAuth endpoints;
//!   429 has no `Retry-After`.
//! - Tokens live 60 days; refresh tokens (only for apps approved for
//!   them) live 365 days from the first grant, and a refresh does not
//!   extend that. `scope` comes back comma-separated. A refresh token that
//!   expired, was revoked or is unknown is refused with 400
//!   `invalid_request` ("The provided authorization grant or refresh token
//!   is invalid, expired or revoked"), not RFC 6749's `invalid_grant`.

use std::{collections::HashMap, sync::Arc, time::Duration};

use axum::{
    Form, Json, Router,
    extract::{Query, RawQuery, State as AxumState},
    http::{
        HeaderMap, HeaderValue, StatusCode,
        header::{AUTHORIZATION, CONTENT_TYPE, LOCATION},
    },
    response::{IntoResponse, Response},
    routing::{get, post},
};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, NaiveDate, NaiveTime, TimeDelta, Utc};
use percent_encoding::percent_decode_str;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::{
    config::{LinkedInConfig, LinkedInUserConfig},
    fault::Fault,
    providers::meta::{form_encode, html_escape},
    state::State,
};

/// `expires_in` of an access token: 60 days.
const ACCESS_TOKEN_SECS: i64 = 5_184_000;

/// `refresh_token_expires_in` at the first grant: 365 days.
const REFRESH_TOKEN_SECS: i64 = 31_536_000;

/// How long an authorization code can be exchanged.
const CODE_SECS: i64 = 1_800;

/// Rest.li's default and the simulator's largest `count`.
const DEFAULT_COUNT: u32 = 10;
const MAX_COUNT: u32 = 100;

/// The scopes that may read organization ACLs and statistics.
const ADMIN_SCOPES: [&str; 2] = ["rw_organization_admin", "r_organization_admin"];

const DAY_MS: i64 = 86_400_000;

pub(crate) fn router() -> Router<Arc<State>> {
    Router::new()
        .route("/oauth/v2/authorization", get(authorize))
        .route("/oauth/v2/accessToken", post(token))
        .route("/v2/userinfo", get(userinfo))
        .route("/rest/organizationAcls", get(organization_acls))
        .route(
            "/rest/organizationalEntityFollowerStatistics",
            get(follower_statistics),
        )
}

/// The fault target of LinkedIn member `user`.
pub(crate) fn fault_target(user: &str) -> String {
    format!("linkedin:{user}")
}

/// LinkedIn's app, members and outstanding grants.
#[derive(Debug)]
pub(crate) struct LinkedIn {
    config: LinkedInConfig,
    codes: HashMap<String, CodeGrant>,
    tokens: HashMap<String, Grant>,
    refresh_tokens: HashMap<String, Grant>,
    /// Follower gains set through the handle, by organization number and
    /// day: organic and paid.
    gains: HashMap<(u64, NaiveDate), (i64, i64)>,
    /// Makes every issued code and token unique.
    issued: u64,
}

#[derive(Debug)]
struct CodeGrant {
    user: String,
    redirect_uri: String,
    scopes: Vec<String>,
    expires: DateTime<Utc>,
}

#[derive(Debug, Clone)]
struct Grant {
    user: String,
    scopes: Vec<String>,
    expires: DateTime<Utc>,
}

impl LinkedIn {
    pub(crate) fn new(config: &LinkedInConfig) -> Self {
        Self {
            config: config.clone(),
            codes: HashMap::new(),
            tokens: HashMap::new(),
            refresh_tokens: HashMap::new(),
            gains: HashMap::new(),
            issued: 0,
        }
    }

    /// The organic and paid follower gains of organization `organization`
    /// on `day`: set through the handle, else seeded.
    fn gains(&self, organization: u64, day: NaiveDate) -> (i64, i64) {
        self.gains
            .get(&(organization, day))
            .copied()
            .unwrap_or_else(|| seeded_gains(organization, day))
    }

    fn next(&mut self, prefix: &str) -> String {
        self.issued += 1;
        let seed = format!("{prefix}{}{}", self.issued, self.config.client_secret);
        let digest = URL_SAFE_NO_PAD.encode(Sha256::digest(seed.as_bytes()));
        format!("{prefix}{digest}")
    }

    fn user(&self, name: &str) -> Option<(usize, &LinkedInUserConfig)> {
        self.config
            .users
            .iter()
            .enumerate()
            .find(|(_, user)| user.name == name)
    }

    /// A new access token of `user` (with `refresh`, a refresh token and
    /// its remaining life), as the token endpoint's JSON.
    fn issue(&mut self, user: &str, scopes: &[String], refresh: Option<(String, i64)>) -> Value {
        let token = self.next("AQV");
        let grant = Grant {
            user: user.to_owned(),
            scopes: scopes.to_vec(),
            expires: Utc::now() + TimeDelta::seconds(ACCESS_TOKEN_SECS),
        };
        self.tokens.insert(token.clone(), grant);
        let mut body = json!({
            "access_token": token,
            "expires_in": ACCESS_TOKEN_SECS,
            "scope": scopes.join(","),
            "token_type": "Bearer",
        });
        if let Some((refresh_token, remaining)) = refresh {
            body["refresh_token"] = json!(refresh_token);
            body["refresh_token_expires_in"] = json!(remaining);
        }
        body
    }
}

/// The query of the authorize endpoint.
#[derive(Deserialize)]
struct AuthorizeQuery {
    client_id: Option<String>,
    redirect_uri: Option<String>,
    response_type: Option<String>,
    scope: Option<String>,
    state: Option<String>,
    /// `page` shows the consent page; `granted` or `denied` is what its
    /// buttons send.
    consent: Option<String>,
}

/// `GET /oauth/v2/authorization`: signs the first member in and consents
/// at once (302 to `redirect_uri` with `code` and `state`), or shows a
/// consent page.
async fn authorize(
    AxumState(state): AxumState<Arc<State>>,
    Query(raw): Query<Vec<(String, String)>>,
    Query(query): Query<AuthorizeQuery>,
) -> Response {
    let checked = state.linkedin(|linkedin| {
        if query.client_id.as_deref() != Some(linkedin.config.client_id.as_str()) {
            return Err("The passed in client_id is invalid.");
        }
        if query.response_type.as_deref() != Some("code") {
            return Err("The response_type must be code.");
        }
        if query
            .scope
            .as_deref()
            .is_none_or(|scope| scope.trim().is_empty())
        {
            return Err("The scope parameter is missing.");
        }
        let user = linkedin.config.users.first().map(|user| user.name.clone());
        user.map(|user| (user, linkedin.config.consent_page))
            .ok_or("No LinkedIn member can sign in.")
    });
    let (user, consent_page) = match checked {
        Ok(checked) => checked,
        Err(message) => return error_page(message),
    };
    let Some(redirect_uri) = query.redirect_uri.clone() else {
        return error_page("The redirect_uri parameter is missing.");
    };
    let state_param = query.state.clone().map(|state| ("state", state));
    match query.consent.as_deref() {
        Some("granted") => {}
        Some("denied") => {
            let mut params = vec![
                ("error", "user_cancelled_authorize".to_owned()),
                (
                    "error_description",
                    "The user cancelled the authorization".to_owned(),
                ),
            ];
            params.extend(state_param);
            return redirect(&redirect_uri, &params);
        }
        Some("page") => return consent(&user, &raw),
        _ if consent_page => return consent(&user, &raw),
        _ => {}
    }
    let scopes: Vec<String> = query
        .scope
        .as_deref()
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let code = state.linkedin(|linkedin| {
        let code = linkedin.next("AQT");
        let grant = CodeGrant {
            user,
            redirect_uri: redirect_uri.clone(),
            scopes,
            expires: Utc::now() + TimeDelta::seconds(CODE_SECS),
        };
        linkedin.codes.insert(code.clone(), grant);
        code
    });
    let mut params = vec![("code", code)];
    params.extend(state_param);
    redirect(&redirect_uri, &params)
}

/// A 302 to `uri` with `params` form-encoded into its query.
fn redirect(uri: &str, params: &[(&str, String)]) -> Response {
    let query: Vec<String> = params
        .iter()
        .map(|(name, value)| format!("{name}={}", form_encode(value)))
        .collect();
    let separator = if uri.contains('?') { '&' } else { '?' };
    let location = format!("{uri}{separator}{}", query.join("&"));
    match HeaderValue::from_str(&location) {
        Ok(location) => (StatusCode::FOUND, [(LOCATION, location)]).into_response(),
        Err(_) => error_page("The redirect_uri is invalid."),
    }
}

/// The consent page: the request's parameters as hidden fields, and
/// "Cancel" and "Allow" buttons that send them back with `consent`.
fn consent(user: &str, raw: &[(String, String)]) -> Response {
    let hidden: String = raw
        .iter()
        .filter(|(name, _)| name != "consent")
        .map(|(name, value)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                html_escape(name),
                html_escape(value)
            )
        })
        .collect();
    let body = format!(
        "<!DOCTYPE html><html><head><title>LinkedIn Login, Sign in | LinkedIn</title></head><body>\
         <h1>connector-fleet would like to access your LinkedIn account</h1>\
         <p>Signed in as {}</p><form method=\"get\" action=\"\">{hidden}\
         <button type=\"submit\" name=\"consent\" value=\"denied\">Cancel</button>\
         <button type=\"submit\" name=\"consent\" value=\"granted\" id=\"allow\">Allow</button>\
         </form></body></html>",
        html_escape(user)
    );
    (
        StatusCode::OK,
        [(CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

fn error_page(message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        [(CONTENT_TYPE, "text/html; charset=utf-8")],
        format!(
            "<!DOCTYPE html><html><body><h1>Bummer, something went wrong.</h1><p>{}</p></body></html>",
            html_escape(message)
        ),
    )
        .into_response()
}

/// `POST /oauth/v2/accessToken`: the `authorization_code` and
/// `refresh_token` grants, client credentials in the body.
async fn token(
    AxumState(state): AxumState<Arc<State>>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let param = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
    let client_ok = state.linkedin(|linkedin| {
        param("client_id") == linkedin.config.client_id
            && param("client_secret") == linkedin.config.client_secret
    });
    if !client_ok {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Client authentication failed",
        );
    }
    let grant_type = param("grant_type");
    let user = state.linkedin(|linkedin| match grant_type {
        "authorization_code" => linkedin.codes.get(param("code")).map(|g| g.user.clone()),
        "refresh_token" => linkedin
            .refresh_tokens
            .get(param("refresh_token"))
            .map(|g| g.user.clone()),
        _ => None,
    });
    let fault = user
        .as_deref()
        .and_then(|user| state.arrive(&fault_target(user)));
    if let Some(response) = suffer(fault.as_ref(), Surface::Token).await {
        return response;
    }
    state.linkedin(|linkedin| match grant_type {
        "authorization_code" => exchange_code(linkedin, param("code"), param("redirect_uri")),
        "refresh_token" => refresh(linkedin, param("refresh_token")),
        _ => oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "The grant_type is not supported",
        ),
    })
}

fn exchange_code(linkedin: &mut LinkedIn, code: &str, redirect_uri: &str) -> Response {
    let grant = linkedin.codes.remove(code);
    let Some(grant) =
        grant.filter(|grant| grant.expires > Utc::now() && grant.redirect_uri == redirect_uri)
    else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Unable to retrieve access token: appid/redirect uri/code verifier does not match \
             authorization code. Or authorization code expired. Or external member binding exists",
        );
    };
    let refresh = linkedin.config.refresh_tokens.then(|| {
        let token = linkedin.next("AQW");
        let refresh_grant = Grant {
            user: grant.user.clone(),
            scopes: grant.scopes.clone(),
            expires: Utc::now() + TimeDelta::seconds(REFRESH_TOKEN_SECS),
        };
        linkedin.refresh_tokens.insert(token.clone(), refresh_grant);
        (token, REFRESH_TOKEN_SECS)
    });
    Json(linkedin.issue(&grant.user, &grant.scopes, refresh)).into_response()
}

/// The refresh grant: a new access token, the same refresh token with
/// what is left of its life.
fn refresh(linkedin: &mut LinkedIn, token: &str) -> Response {
    let grant = linkedin.refresh_tokens.get(token).cloned();
    let Some(grant) = grant.filter(|grant| grant.expires > Utc::now()) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "The provided authorization grant or refresh token is invalid, expired or revoked",
        );
    };
    let remaining = (grant.expires - Utc::now()).num_seconds();
    let body = linkedin.issue(
        &grant.user,
        &grant.scopes,
        Some((token.to_owned(), remaining)),
    );
    Json(body).into_response()
}

/// Which endpoint a fault hits: they differ in the faults they honour.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Surface {
    Token,
    Api,
}

/// Applies a fault: answers in LinkedIn's place, or waits. LinkedIn sends
/// no `Retry-After`, so `retry_after_secs` is ignored.
async fn suffer(fault: Option<&Fault>, surface: Surface) -> Option<Response> {
    match (fault?, surface) {
        (Fault::RateLimited { .. }, _) => Some(api_error(
            StatusCode::TOO_MANY_REQUESTS,
            Some("TOO_MANY_REQUESTS"),
            101,
            "Resource level throttle APPLICATION DAY limit for calls to this resource is reached.",
        )),
        (Fault::Unavailable { .. }, Surface::Api) => Some(api_error(
            StatusCode::SERVICE_UNAVAILABLE,
            None,
            0,
            "Service Unavailable",
        )),
        (Fault::Unavailable { .. }, Surface::Token) => Some(oauth_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "The service is temporarily unavailable",
        )),
        (Fault::Slow { delay_ms }, _) => {
            tokio::time::sleep(Duration::from_millis(*delay_ms)).await;
            None
        }
        (Fault::ExpiredAccessToken, Surface::Api) => Some(expired_token()),
        (Fault::InvalidGrant, Surface::Token) => Some(oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "The provided authorization grant or refresh token is invalid, expired or revoked",
        )),
        (
            Fault::ExpiredAccessToken
            | Fault::InvalidGrant
            | Fault::Redirect { .. }
            | Fault::StripAuthorization,
            _,
        ) => None,
    }
}

/// The caller of an API route: the bearer token's member and grant, after
/// faults.
async fn caller(
    state: &State,
    headers: &HeaderMap,
) -> Result<(usize, LinkedInUserConfig, Grant), Response> {
    let token = headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .unwrap_or_default();
    let Some(grant) = state.linkedin(|linkedin| linkedin.tokens.get(token).cloned()) else {
        return Err(api_error(
            StatusCode::UNAUTHORIZED,
            Some("INVALID_ACCESS_TOKEN"),
            65_600,
            "Invalid access token",
        ));
    };
    if grant.expires <= Utc::now() {
        return Err(expired_token());
    }
    if let Some(response) = suffer(
        state.arrive(&fault_target(&grant.user)).as_ref(),
        Surface::Api,
    )
    .await
    {
        return Err(response);
    }
    let user = state.linkedin(|linkedin| {
        linkedin
            .user(&grant.user)
            .map(|(index, user)| (index, user.clone()))
    });
    let Some((index, user)) = user else {
        return Err(expired_token());
    };
    Ok((index, user, grant))
}

/// The caller of a `/rest` route, after the version and protocol headers
/// and the admin scope are checked.
async fn rest_caller(
    state: &State,
    headers: &HeaderMap,
    resource: &str,
) -> Result<(usize, LinkedInUserConfig), Response> {
    let (index, user, grant) = caller(state, headers).await?;
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    let Some(version) = header("linkedin-version") else {
        return Err(api_error(
            StatusCode::BAD_REQUEST,
            Some("VERSION_MISSING"),
            0,
            "A version must be present. Please specify a version by adding the LinkedIn-Version \
             header.",
        ));
    };
    let active = state.linkedin(|linkedin| active_version(&linkedin.config, version));
    if !active {
        return Err(api_error(
            StatusCode::UPGRADE_REQUIRED,
            Some("NONEXISTENT_VERSION"),
            0,
            &format!("Requested version {version} is not active"),
        ));
    }
    if header("x-restli-protocol-version") != Some("2.0.0") {
        return Err(api_error(
            StatusCode::BAD_REQUEST,
            Some("ILLEGAL_ARGUMENT"),
            0,
            "The simulator speaks Rest.li protocol 2.0.0 only; send X-Restli-Protocol-Version: \
             2.0.0",
        ));
    }
    let admin = grant
        .scopes
        .iter()
        .any(|scope| ADMIN_SCOPES.contains(&scope.as_str()));
    if !admin {
        return Err(access_denied(&format!("{resource}.{version}")));
    }
    Ok((index, user))
}

/// Whether `version` (`YYYYMM` or `YYYYMM.NN`) is within the configured
/// window.
fn active_version(config: &LinkedInConfig, version: &str) -> bool {
    let (month, patch) = version.split_once('.').unwrap_or((version, "00"));
    let digits = |text: &str, len| text.len() == len && text.bytes().all(|b| b.is_ascii_digit());
    digits(month, 6)
        && digits(patch, 2)
        && config.oldest_version.as_str() <= month
        && month <= config.newest_version.as_str()
}

/// `GET /v2/userinfo`: OpenID Connect's userinfo, with `locale` as the
/// object live answers have (the docs show a string).
async fn userinfo(AxumState(state): AxumState<Arc<State>>, headers: HeaderMap) -> Response {
    let (index, user, grant) = match caller(&state, &headers).await {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    if !grant.scopes.iter().any(|scope| scope == "openid") {
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
    if grant.scopes.iter().any(|scope| scope == "email") {
        body["email"] = json!(format!("{}@example.test", user.name));
        body["email_verified"] = json!(true);
    }
    Json(body).into_response()
}

/// The member id of the member at `index`: what `sub` and person URNs hold.
fn member_id(index: usize, user: &LinkedInUserConfig) -> String {
    let seed = format!("{index}:{}", user.name);
    URL_SAFE_NO_PAD.encode(Sha256::digest(seed.as_bytes()))[..10].to_owned()
}

/// The number of organization `n` (from 0) of the member at `index`.
fn organization_number(index: usize, n: u32) -> u64 {
    10_000_000 + (index as u64 + 1) * 100 + u64::from(n) + 1
}

#[derive(Deserialize)]
struct AclQuery {
    q: Option<String>,
    role: Option<String>,
    state: Option<String>,
    start: Option<u32>,
    count: Option<u32>,
}

/// `GET /rest/organizationAcls?q=roleAssignee`: the organizations the
/// member administers, paged by `start`/`count` with `total` and links.
async fn organization_acls(
    AxumState(state): AxumState<Arc<State>>,
    headers: HeaderMap,
    Query(query): Query<AclQuery>,
) -> Response {
    let (index, user) =
        match rest_caller(&state, &headers, "organizationAcls.FINDER-roleAssignee").await {
            Ok(caller) => caller,
            Err(response) => return response,
        };
    if query.q.as_deref() != Some("roleAssignee") {
        return api_error(
            StatusCode::BAD_REQUEST,
            Some("ILLEGAL_ARGUMENT"),
            0,
            "The simulator supports the roleAssignee finder only",
        );
    }
    // The simulated members hold approved administrator roles only.
    let matches = query
        .role
        .as_deref()
        .is_none_or(|role| role == "ADMINISTRATOR")
        && query
            .state
            .as_deref()
            .is_none_or(|state| state == "APPROVED");
    let total = if matches { user.organizations } else { 0 };
    let start = query.start.unwrap_or(0);
    let count = query.count.unwrap_or(DEFAULT_COUNT).clamp(1, MAX_COUNT);
    let person = format!("urn:li:person:{}", member_id(index, &user));
    let elements: Vec<Value> = (start..total)
        .take(count as usize)
        .map(|n| {
            json!({
                "role": "ADMINISTRATOR",
                "state": "APPROVED",
                "roleAssignee": person,
                "organization": format!("urn:li:organization:{}", organization_number(index, n)),
                "created": {"actor": person, "time": 1_704_067_200_000_i64},
                "lastModified": {"actor": person, "time": 1_704_067_200_000_i64},
            })
        })
        .collect();
    let link = |rel: &str, start: u32| {
        let mut href = format!("/rest/organizationAcls?q=roleAssignee&start={start}&count={count}");
        for (name, value) in [("role", &query.role), ("state", &query.state)] {
            if let Some(value) = value {
                href.push_str(&format!("&{name}={value}"));
            }
        }
        json!({"rel": rel, "href": href, "type": "application/json"})
    };
    let mut links = Vec::new();
    if start > 0 {
        links.push(link("prev", start.saturating_sub(count)));
    }
    if start.saturating_add(count) < total {
        links.push(link("next", start + count));
    }
    Json(json!({
        "paging": {"start": start, "count": count, "total": total, "links": links},
        "elements": elements,
    }))
    .into_response()
}

/// `GET /rest/organizationalEntityFollowerStatistics?q=organizationalEntity`:
/// daily follower gains for `timeIntervals`, lifetime demographic counts
/// without it. The query is read raw, as Rest.li 2.0 syntax must be.
async fn follower_statistics(
    AxumState(state): AxumState<Arc<State>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let (index, user) = match rest_caller(
        &state,
        &headers,
        "organizationalEntityFollowerStatistics.FINDER-organizationalEntity",
    )
    .await
    {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    let query = match StatsQuery::parse(raw.as_deref().unwrap_or_default()) {
        Ok(query) => query,
        Err(message) => {
            return api_error(
                StatusCode::BAD_REQUEST,
                Some("ILLEGAL_ARGUMENT"),
                0,
                &message,
            );
        }
    };
    let administers =
        (0..user.organizations).any(|n| organization_number(index, n) == query.organization);
    if !administers {
        return access_denied(&format!(
            "organizationalEntityFollowerStatistics.FINDER-organizationalEntity (organization {})",
            query.organization
        ));
    }
    let urn = format!("urn:li:organization:{}", query.organization);
    let elements = match query.interval {
        Some((start, end)) => state.linkedin(|linkedin| {
            daily_gains(&urn, start, end, &|day| {
                linkedin.gains(query.organization, day)
            })
        }),
        None => vec![lifetime(&urn, query.organization)],
    };
    Json(json!({
        "paging": {"start": 0, "count": 10, "links": []},
        "elements": elements,
    }))
    .into_response()
}

/// A follower-statistics query, read from the raw query string.
#[derive(Debug, PartialEq, Eq)]
struct StatsQuery {
    /// The organization number of `organizationalEntity`.
    organization: u64,
    /// `[start, end)` in epoch milliseconds, with DAY granularity.
    interval: Option<(i64, i64)>,
}

impl StatsQuery {
    fn parse(raw: &str) -> Result<Self, String> {
        let mut params = HashMap::new();
        for pair in raw.split('&').filter(|pair| !pair.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            if name.starts_with("timeIntervals.") {
                return Err(format!(
                    "Query parameter {name} is Rest.li 1.0 syntax; with protocol 2.0.0 send \
                     timeIntervals=(timeRange:(start:…,end:…),timeGranularityType:DAY)"
                ));
            }
            params.insert(name, value);
        }
        if params.get("q") != Some(&"organizationalEntity") {
            return Err("The simulator supports the organizationalEntity finder only".to_owned());
        }
        let Some(entity) = params.get("organizationalEntity") else {
            return Err("Query parameter organizationalEntity is missing".to_owned());
        };
        if entity.contains(':') {
            return Err(format!(
                "Invalid value {entity} for organizationalEntity: URNs must be URL-encoded with \
                 Rest.li protocol 2.0.0"
            ));
        }
        let decoded = percent_decode_str(entity).decode_utf8_lossy();
        let organization = decoded
            .strip_prefix("urn:li:organization:")
            .and_then(|number| number.parse().ok())
            .ok_or_else(|| format!("Invalid organizationalEntity {decoded}"))?;
        let interval = params
            .get("timeIntervals")
            .map(|value| time_interval(value))
            .transpose()?;
        Ok(Self {
            organization,
            interval,
        })
    }
}

/// `(timeRange:(start:…,end:…),timeGranularityType:DAY)`, its parts in any
/// order.
fn time_interval(raw: &str) -> Result<(i64, i64), String> {
    let invalid = || {
        format!(
            "Invalid value {raw} for timeIntervals: expected \
             (timeRange:(start:<ms>,end:<ms>),timeGranularityType:DAY) in Rest.li 2.0 syntax, \
             with its parentheses, colons and commas not URL-encoded"
        )
    };
    let Some(Restli::Object(fields)) = parse_restli(raw) else {
        return Err(invalid());
    };
    let field = |fields: &[(String, Restli)], name: &str| {
        fields
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
    };
    let Some(Restli::Object(range)) = field(&fields, "timeRange") else {
        return Err(invalid());
    };
    let number = |name| match field(&range, name) {
        Some(Restli::Text(text)) => text.parse::<i64>().ok(),
        _ => None,
    };
    let (Some(start), Some(end)) = (number("start"), number("end")) else {
        return Err(invalid());
    };
    match field(&fields, "timeGranularityType") {
        Some(Restli::Text(granularity)) if granularity == "DAY" => {}
        Some(Restli::Text(granularity)) if granularity == "WEEK" || granularity == "MONTH" => {
            return Err(format!(
                "timeGranularityType {granularity} is not supported by the simulator"
            ));
        }
        _ => return Err(invalid()),
    }
    if end <= start {
        return Err("timeRange.end must be after timeRange.start".to_owned());
    }
    Ok((start, end))
}

/// A Rest.li 2.0 value: an object `(key:value,…)` or a scalar.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Restli {
    Object(Vec<(String, Restli)>),
    Text(String),
}

fn parse_restli(input: &str) -> Option<Restli> {
    let (value, rest) = restli_value(input)?;
    rest.is_empty().then_some(value)
}

fn restli_value(input: &str) -> Option<(Restli, &str)> {
    let Some(mut rest) = input.strip_prefix('(') else {
        let end = input.find([',', ')', '(', ':']).unwrap_or(input.len());
        return (end > 0).then(|| (Restli::Text(input[..end].to_owned()), &input[end..]));
    };
    let mut fields = Vec::new();
    if let Some(rest) = rest.strip_prefix(')') {
        return Some((Restli::Object(fields), rest));
    }
    loop {
        let (key, after) = rest.split_once(':')?;
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return None;
        }
        let (value, after) = restli_value(after)?;
        fields.push((key.to_owned(), value));
        if let Some(after) = after.strip_prefix(',') {
            rest = after;
            continue;
        }
        return Some((Restli::Object(fields), after.strip_prefix(')')?));
    }
}

/// The seeded organic and paid follower gains of `organization` on `day`.
fn seeded_gains(organization: u64, day: NaiveDate) -> (i64, i64) {
    let millis = day.and_time(NaiveTime::MIN).and_utc().timestamp_millis();
    let days = u64::try_from(millis.div_euclid(DAY_MS)).unwrap_or(0);
    let organic =
        i64::try_from((organization.wrapping_mul(7) + days.wrapping_mul(13)) % 23).unwrap_or(0) - 2;
    let paid = i64::try_from((organization + days) % 3).unwrap_or(0);
    (organic, paid)
}

/// One element per whole UTC day from `start`, up to `end` and at most to
/// the start of today, with each day's gains from `gains`; days without
/// gains have an element too, with zeros.
fn daily_gains(
    urn: &str,
    start: i64,
    end: i64,
    gains: &dyn Fn(NaiveDate) -> (i64, i64),
) -> Vec<Value> {
    let today = Utc::now()
        .date_naive()
        .and_time(NaiveTime::MIN)
        .and_utc()
        .timestamp_millis();
    let end = end.min(today);
    let mut elements = Vec::new();
    let mut day = start;
    while day + DAY_MS <= end {
        let date = DateTime::from_timestamp_millis(day)
            .map(|at| at.date_naive())
            .unwrap_or_default();
        let (organic, paid) = gains(date);
        elements.push(json!({
            "timeRange": {"start": day, "end": day + DAY_MS},
            "followerGains": {"organicFollowerGain": organic, "paidFollowerGain": paid},
            "organizationalEntity": urn,
        }));
        day += DAY_MS;
    }
    elements
}

/// The lifetime element: demographic facets, no gains.
fn lifetime(urn: &str, organization: u64) -> Value {
    let followers = |share: u64| json!({"organicFollowerCount": (organization % 997) * share, "paidFollowerCount": 0});
    json!({
        "organizationalEntity": urn,
        "followerCountsByAssociationType": [
            {"associationType": "EMPLOYEE", "followerCounts": followers(1)},
        ],
        "followerCountsBySeniority": [
            {"seniority": "urn:li:seniority:3", "followerCounts": followers(4)},
            {"seniority": "urn:li:seniority:4", "followerCounts": followers(3)},
        ],
        "followerCountsByGeoCountry": [
            {"geo": "urn:li:geo:103644278", "followerCounts": followers(5)},
        ],
    })
}

/// LinkedIn's API error body.
fn api_error(
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

fn access_denied(resource: &str) -> Response {
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

/// The OAuth endpoints' flat error body.
fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
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
        self.inner.state.linkedin(|linkedin| {
            for grant in linkedin.refresh_tokens.values_mut() {
                if grant.user == user {
                    grant.expires = Utc::now();
                }
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rest_li_2_intervals_parse_in_any_key_order() {
        let raw = "(timeGranularityType:DAY,timeRange:(end:1700086400000,start:1700000000000))";

        assert_eq!(
            time_interval(raw),
            Ok((1_700_000_000_000, 1_700_086_400_000))
        );
    }

    #[test]
    fn encoded_or_dotted_intervals_and_raw_urns_are_refused() {
        let encoded = "q=organizationalEntity&organizationalEntity=urn%3Ali%3Aorganization%3A1\
                       &timeIntervals=%28timeRange%3A%28start%3A1%2Cend%3A2%29%2CtimeGranularityType%3ADAY%29";
        let dotted = "q=organizationalEntity&organizationalEntity=urn%3Ali%3Aorganization%3A1\
                      &timeIntervals.timeRange.start=1&timeIntervals.timeRange.end=2";
        let raw_urn = "q=organizationalEntity&organizationalEntity=urn:li:organization:1";

        assert!(StatsQuery::parse(encoded).is_err());
        assert!(StatsQuery::parse(dotted).is_err());
        assert!(StatsQuery::parse(raw_urn).is_err());
        assert_eq!(
            StatsQuery::parse(
                "q=organizationalEntity&organizationalEntity=urn%3Ali%3Aorganization%3A7"
            ),
            Ok(StatsQuery {
                organization: 7,
                interval: None
            })
        );
    }

    #[test]
    fn versions_are_active_inside_the_window_only() {
        let config = LinkedInConfig::default();

        assert!(active_version(&config, &config.newest_version));
        assert!(active_version(
            &config,
            &format!("{}.01", config.oldest_version)
        ));
        assert!(!active_version(&config, "202201"));
        assert!(!active_version(&config, "209912"));
        assert!(!active_version(&config, "2026-01"));
    }

    #[test]
    fn daily_gains_stop_at_the_start_of_today() {
        let today = Utc::now()
            .date_naive()
            .and_time(NaiveTime::MIN)
            .and_utc()
            .timestamp_millis();

        let elements = daily_gains(
            "urn:li:organization:1",
            today - 3 * DAY_MS,
            today + DAY_MS,
            &|day| seeded_gains(1, day),
        );

        assert_eq!(elements.len(), 3);
        assert_eq!(elements[0]["timeRange"]["start"], today - 3 * DAY_MS);
    }
}
