//! Google under `/google`: OAuth 2.0 (authorize, token, revoke), OpenID
//! userinfo, the Analytics Admin API's `accountSummaries` and the Data
//! API's `runReport`, with Google's quirks: flat `{"error",
//! "error_description"}` bodies with HTTP 400 from the token endpoint but
//! `{"error": {"code", "message", "status"}}` from the APIs, refresh
//! responses without `refresh_token`, `expires_in` 3599, metric values as
//! strings, dates as `YYYYMMDD`, `rows`/`rowCount`/`nextPageToken` omitted
//! when empty, days without traffic omitted from reports, and no
//! `Retry-After` on 429.
//!
//! A refresh token comes with the code exchange only when the consent
//! asked for offline access (`access_type=offline`) and was either the
//! user's first for the client or forced with `prompt=consent`; revoking
//! a refresh token ends the grant, so the next consent is a first one
//! again. Old refresh tokens keep working after a new consent.
//!
//! Report dates are days of the user's time zone
//! ([`GoogleUserConfig::utc_offset_minutes`](crate::GoogleUserConfig::utc_offset_minutes)):
//! `today` and `NdaysAgo` count from the user's today, and no day after it
//! has traffic.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{
    Form, Json, Router,
    extract::{Path, Query, State as AxumState},
    http::{
        HeaderMap, HeaderValue, StatusCode,
        header::{AUTHORIZATION, CONTENT_TYPE, LOCATION},
    },
    response::{IntoResponse, Response},
    routing::{get, post},
};
use base64::{
    Engine as _,
    engine::general_purpose::{STANDARD as BASE64, URL_SAFE_NO_PAD},
};
use chrono::{Days, NaiveDate, TimeDelta, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::{
    config::{GoogleConfig, GoogleUserConfig},
    fault::Fault,
    state::State,
};

/// What Google's token endpoint reports as `expires_in`, and how long the
/// simulated access tokens live.
const ACCESS_TOKEN_SECS: u64 = 3599;

/// The Data API's default and largest `limit`.
const DEFAULT_LIMIT: u64 = 10_000;
const MAX_LIMIT: u64 = 250_000;

/// The Admin API's default and largest `pageSize` (larger is coerced).
const DEFAULT_PAGE_SIZE: usize = 50;
const MAX_PAGE_SIZE: usize = 200;

/// The metrics `runReport` knows.
const METRICS: [&str; 3] = ["sessions", "totalUsers", "screenPageViews"];

/// The first day with traffic.
fn first_day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2020, 1, 1).expect("a valid date")
}

pub(crate) fn router() -> Router<Arc<State>> {
    Router::new()
        .route("/o/oauth2/v2/auth", get(authorize))
        .route("/token", post(token))
        .route("/revoke", post(revoke))
        .route("/v1/userinfo", get(userinfo))
        .route(
            "/analyticsadmin/v1beta/accountSummaries",
            get(account_summaries),
        )
        .route("/analyticsdata/v1beta/properties/{call}", post(run_report))
}

/// The fault target of Google user `user`.
pub(crate) fn fault_target(user: &str) -> String {
    format!("google:{user}")
}

/// Google's client, users and outstanding grants.
#[derive(Debug)]
pub(crate) struct Google {
    config: GoogleConfig,
    codes: HashMap<String, CodeGrant>,
    access_tokens: HashMap<String, AccessGrant>,
    refresh_tokens: HashMap<String, String>,
    /// Users who granted offline access and have not revoked it: their
    /// next consent brings no refresh token unless it is forced with
    /// `prompt=consent`.
    offline_grants: HashSet<String>,
    /// Sessions set through the handle, by property and day; `None` is a
    /// day without traffic.
    traffic: HashMap<(u64, NaiveDate), Option<u64>>,
    /// Makes every issued code and token unique.
    issued: u64,
}

/// An authorization code, until it is exchanged.
#[derive(Debug)]
struct CodeGrant {
    user: String,
    redirect_uri: String,
    challenge: Option<Challenge>,
    /// The exchange brings a refresh token.
    refresh: bool,
    scope: String,
}

#[derive(Debug)]
struct Challenge {
    value: String,
    /// `S256` or `plain` (the default when the method is omitted).
    method: String,
}

#[derive(Debug)]
struct AccessGrant {
    user: String,
    expires: Instant,
}

impl Google {
    pub(crate) fn new(config: &GoogleConfig) -> Self {
        Self {
            config: config.clone(),
            codes: HashMap::new(),
            access_tokens: HashMap::new(),
            refresh_tokens: HashMap::new(),
            offline_grants: HashSet::new(),
            traffic: HashMap::new(),
            issued: 0,
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
        seeded_sessions(property, day, quiet_every)
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
                (0..user.properties_per_account)
                    .any(|p| property_id(account_id(*index, n), p) == property)
            })
        })
    }

    fn next(&mut self, prefix: &str) -> String {
        self.issued += 1;
        let seed = format!("{prefix}{}{}", self.issued, self.config.client_secret);
        let digest = URL_SAFE_NO_PAD.encode(Sha256::digest(seed.as_bytes()));
        format!("{prefix}{digest}")
    }

    fn user(&self, name: &str) -> Option<(usize, &GoogleUserConfig)> {
        self.config
            .users
            .iter()
            .enumerate()
            .find(|(_, user)| user.name == name)
    }

    /// A new access token of `user`, as the token endpoint's JSON.
    fn tokens(&mut self, user: &str, scope: &str, refresh_token: Option<String>) -> Value {
        let access_token = self.next("ya29.");
        self.access_tokens.insert(
            access_token.clone(),
            AccessGrant {
                user: user.to_owned(),
                expires: Instant::now() + Duration::from_secs(ACCESS_TOKEN_SECS),
            },
        );
        let mut body = json!({
            "access_token": access_token,
            "expires_in": ACCESS_TOKEN_SECS,
            "scope": scope,
            "token_type": "Bearer",
        });
        if let Some(refresh_token) = refresh_token {
            body["refresh_token"] = json!(refresh_token);
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
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    access_type: Option<String>,
    /// `consent` forces the consent screen, and with it a new refresh
    /// token (Google takes a space-separated list).
    prompt: Option<String>,
    login_hint: Option<String>,
    /// `page` shows the consent page; `granted` or `denied` is what its
    /// buttons send.
    consent: Option<String>,
}

/// `GET /o/oauth2/v2/auth`: consents at once (302 to `redirect_uri` with
/// `code` and `state`) or shows a consent page.
async fn authorize(
    AxumState(state): AxumState<Arc<State>>,
    Query(raw): Query<Vec<(String, String)>>,
    Query(query): Query<AuthorizeQuery>,
) -> Response {
    let checked = state.google(|google| {
        if query.client_id.as_deref() != Some(google.config.client_id.as_str()) {
            return Err("Error 401: invalid_client. The OAuth client was not found.");
        }
        if query.response_type.as_deref() != Some("code") {
            return Err("Error 400: invalid_request. Invalid response_type.");
        }
        if query.scope.as_deref().is_none_or(str::is_empty) {
            return Err("Error 400: invalid_request. Missing required parameter: scope");
        }
        let user = match &query.login_hint {
            Some(hint) => google.user(hint).map(|(_, user)| user.name.clone()),
            None => google.config.users.first().map(|user| user.name.clone()),
        };
        user.map(|user| (user, google.config.consent_page))
            .ok_or("Error 400: no Google account can sign in.")
    });
    let (user, consent_page) = match checked {
        Ok(checked) => checked,
        Err(message) => return error_page(message),
    };
    let Some(redirect_uri) = query.redirect_uri.clone() else {
        return error_page("Error 400: invalid_request. Missing required parameter: redirect_uri");
    };
    match query.consent.as_deref() {
        Some("granted") => {}
        Some("denied") => {
            let mut params = vec![("error", "access_denied".to_owned())];
            params.extend(query.state.clone().map(|state| ("state", state)));
            return found(&redirect_uri, &params);
        }
        Some("page") => return consent(&user, &raw),
        _ if consent_page => return consent(&user, &raw),
        _ => {}
    }
    let scope = query.scope.clone().unwrap_or_default();
    let code = state.google(|google| {
        let code = google.next("4/0A");
        let challenge = query.code_challenge.clone().map(|value| Challenge {
            value,
            method: query
                .code_challenge_method
                .clone()
                .unwrap_or_else(|| "plain".to_owned()),
        });
        let offline = query.access_type.as_deref() == Some("offline");
        let forced = query
            .prompt
            .as_deref()
            .is_some_and(|prompt| prompt.split(' ').any(|prompt| prompt == "consent"));
        let first = offline && google.offline_grants.insert(user.clone());
        google.codes.insert(
            code.clone(),
            CodeGrant {
                user,
                redirect_uri: redirect_uri.clone(),
                challenge,
                refresh: offline && (first || forced),
                scope: scope.clone(),
            },
        );
        code
    });
    let mut params = Vec::new();
    params.extend(query.state.clone().map(|state| ("state", state)));
    params.extend([
        ("code", code),
        ("scope", scope),
        ("authuser", "0".to_owned()),
        ("prompt", "consent".to_owned()),
    ]);
    found(&redirect_uri, &params)
}

/// A 302 to `uri` with `params` added to its query.
fn found(uri: &str, params: &[(&str, String)]) -> Response {
    let query: Vec<String> = params
        .iter()
        .map(|(name, value)| format!("{name}={}", percent_encode(value)))
        .collect();
    let separator = if uri.contains('?') { '&' } else { '?' };
    let location = format!("{uri}{separator}{}", query.join("&"));
    match HeaderValue::from_str(&location) {
        Ok(location) => (StatusCode::FOUND, [(LOCATION, location)]).into_response(),
        Err(_) => error_page("Error 400: invalid_request. Invalid redirect_uri."),
    }
}

/// The consent page: the request's parameters as hidden fields, and
/// "Allow" and "Deny" buttons that send them back with `consent`.
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
        "<!DOCTYPE html><html><head><title>Sign in - Google Accounts</title></head><body>\
         <h1>connector-fleet wants to access your Google Account</h1>\
         <p>{}@example.test</p><form method=\"get\" action=\"\">{hidden}\
         <button type=\"submit\" name=\"consent\" value=\"denied\">Deny</button>\
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
            "<!DOCTYPE html><html><body><h1>Access blocked: authorization error</h1><p>{}</p></body></html>",
            html_escape(message)
        ),
    )
        .into_response()
}

/// `POST /token`: the `authorization_code` and `refresh_token` grants.
async fn token(
    AxumState(state): AxumState<Arc<State>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if let Some(refusal) = state.google(|google| client_refusal(google, &headers, &form)) {
        return refusal;
    }
    let user = state.google(|google| match form.get("grant_type").map(String::as_str) {
        Some("authorization_code") => form
            .get("code")
            .and_then(|code| google.codes.get(code))
            .map(|grant| grant.user.clone()),
        Some("refresh_token") => form
            .get("refresh_token")
            .and_then(|token| google.refresh_tokens.get(token))
            .cloned(),
        _ => None,
    });
    let fault = user
        .as_deref()
        .and_then(|user| state.arrive(&fault_target(user)));
    if let Some(response) = suffer(fault.as_ref(), Surface::Token).await {
        return response;
    }
    state.google(|google| match form.get("grant_type").map(String::as_str) {
        Some("authorization_code") => exchange_code(google, &form),
        Some("refresh_token") => refresh(google, &form),
        _ => oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "Invalid grant_type: ",
        ),
    })
}

/// Checks the client id and secret, from the body or a Basic header, and
/// returns the 401 that refuses them, if it does.
fn client_refusal(
    google: &Google,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Option<Response> {
    let basic = headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Basic "))
        .and_then(|encoded| BASE64.decode(encoded.trim()).ok())
        .and_then(|decoded| String::from_utf8(decoded).ok())
        .and_then(|decoded| {
            decoded
                .split_once(':')
                .map(|(id, secret)| (id.to_owned(), secret.to_owned()))
        });
    let (id, secret) = basic.unwrap_or_else(|| {
        (
            form.get("client_id").cloned().unwrap_or_default(),
            form.get("client_secret").cloned().unwrap_or_default(),
        )
    });
    let description = if id != google.config.client_id {
        "The OAuth client was not found."
    } else if secret != google.config.client_secret {
        "Unauthorized"
    } else {
        return None;
    };
    Some(oauth_error(
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        description,
    ))
}

fn exchange_code(google: &mut Google, form: &HashMap<String, String>) -> Response {
    let Some(grant) = form.get("code").and_then(|code| google.codes.remove(code)) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "Malformed auth code.",
        );
    };
    if form.get("redirect_uri") != Some(&grant.redirect_uri) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "redirect_uri_mismatch",
            "Bad Request",
        );
    }
    if let Some(challenge) = &grant.challenge {
        let Some(verifier) = form.get("code_verifier") else {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                "Missing code verifier.",
            );
        };
        let computed = match challenge.method.as_str() {
            "S256" => URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())),
            _ => verifier.clone(),
        };
        if computed != challenge.value {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                "Invalid code verifier.",
            );
        }
    }
    // Offline access on a first or forced consent is what brings a
    // refresh token.
    let refresh_token = grant.refresh.then(|| {
        let token = google.next("1//0g");
        google
            .refresh_tokens
            .insert(token.clone(), grant.user.clone());
        token
    });
    let body = google.tokens(&grant.user, &grant.scope, refresh_token);
    Json(body).into_response()
}

fn refresh(google: &mut Google, form: &HashMap<String, String>) -> Response {
    let Some((old, user)) = form
        .get("refresh_token")
        .and_then(|token| google.refresh_tokens.get_key_value(token))
        .map(|(token, user)| (token.clone(), user.clone()))
    else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "Token has been expired or revoked.",
        );
    };
    let rotated = google.config.rotate_refresh_tokens.then(|| {
        google.refresh_tokens.remove(&old);
        let token = google.next("1//0g");
        google.refresh_tokens.insert(token.clone(), user.clone());
        token
    });
    let scope = "https://www.googleapis.com/auth/analytics.readonly";
    Json(google.tokens(&user, scope, rotated)).into_response()
}

/// `POST /revoke`: revokes an access token, or a refresh token with every
/// access token of its user. 200 `{}`, or 400 `invalid_token` for a token
/// that is unknown or already revoked.
async fn revoke(
    AxumState(state): AxumState<Arc<State>>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let token = form.get("token").cloned().unwrap_or_default();
    state.google(|google| {
        if google.access_tokens.remove(&token).is_some() {
            return Json(json!({})).into_response();
        }
        let Some(user) = google.refresh_tokens.remove(&token) else {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_token",
                "Token expired or revoked",
            );
        };
        google.access_tokens.retain(|_, grant| grant.user != user);
        google.offline_grants.remove(&user);
        Json(json!({})).into_response()
    })
}

/// Which endpoint a fault hits: they differ in the faults they honour.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Surface {
    Token,
    Api,
}

/// Applies a fault: answers in Google's place, or waits. Google never
/// sends `Retry-After`; on the APIs, `retry_after_secs` picks the quota
/// the 429 names instead: under a minute the concurrent requests, under a
/// day the property's hourly tokens, else its daily tokens.
async fn suffer(fault: Option<&Fault>, surface: Surface) -> Option<Response> {
    match (fault?, surface) {
        (Fault::RateLimited { retry_after_secs }, Surface::Api) => Some(api_error(
            StatusCode::TOO_MANY_REQUESTS,
            quota_message(*retry_after_secs),
            "RESOURCE_EXHAUSTED",
        )),
        (Fault::RateLimited { .. }, Surface::Token) => Some(oauth_error(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_exceeded",
            "Rate limit exceeded.",
        )),
        (Fault::Unavailable { .. }, Surface::Api) => Some(api_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "The service is currently unavailable.",
            "UNAVAILABLE",
        )),
        (Fault::Unavailable { .. }, Surface::Token) => Some(oauth_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "The service is currently unavailable.",
        )),
        (Fault::Slow { delay_ms }, _) => {
            tokio::time::sleep(Duration::from_millis(*delay_ms)).await;
            None
        }
        (Fault::ExpiredAccessToken, Surface::Api) => Some(unauthenticated()),
        (Fault::InvalidGrant, Surface::Token) => Some(oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "Token has been expired or revoked.",
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
async fn caller(state: &State, headers: &HeaderMap) -> Result<(usize, GoogleUserConfig), Response> {
    let token = headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .unwrap_or_default();
    let user = state.google(|google| {
        let grant = google.access_tokens.get(token)?;
        (grant.expires > Instant::now()).then(|| grant.user.clone())
    });
    let Some(user) = user else {
        return Err(unauthenticated());
    };
    if let Some(response) = suffer(state.arrive(&fault_target(&user)).as_ref(), Surface::Api).await
    {
        return Err(response);
    }
    state
        .google(|google| {
            google
                .user(&user)
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

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SummariesQuery {
    page_size: Option<usize>,
    page_token: Option<String>,
}

/// `GET /analyticsadmin/v1beta/accountSummaries`.
async fn account_summaries(
    AxumState(state): AxumState<Arc<State>>,
    headers: HeaderMap,
    Query(query): Query<SummariesQuery>,
) -> Response {
    let (index, user) = match caller(&state, &headers).await {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    let page_size = query
        .page_size
        .filter(|size| *size > 0)
        .unwrap_or(DEFAULT_PAGE_SIZE)
        .min(MAX_PAGE_SIZE);
    let Ok(start) = query.page_token.as_deref().map_or(Ok(0), str::parse::<u32>) else {
        return api_error(
            StatusCode::BAD_REQUEST,
            "Invalid page token.",
            "INVALID_ARGUMENT",
        );
    };
    let accounts: Vec<Value> = (start..user.accounts)
        .take(page_size)
        .map(|n| account_summary(index, &user, n))
        .collect();
    let mut body = json!({});
    let end = start as usize + accounts.len();
    if !accounts.is_empty() {
        body["accountSummaries"] = json!(accounts);
    }
    if end < user.accounts as usize {
        body["nextPageToken"] = json!(end.to_string());
    }
    Json(body).into_response()
}

/// Account `n` (from 0) of the user at `index`.
fn account_id(index: usize, n: u32) -> u64 {
    (index as u64 + 1) * 1000 + u64::from(n)
}

fn property_id(account: u64, n: u32) -> u64 {
    account * 1000 + u64::from(n) + 1
}

fn account_summary(index: usize, user: &GoogleUserConfig, n: u32) -> Value {
    let account = account_id(index, n);
    let properties: Vec<Value> = (0..user.properties_per_account)
        .map(|p| {
            let property = property_id(account, p);
            json!({
                "property": format!("properties/{property}"),
                "displayName": format!("Property {property}"),
                "propertyType": "PROPERTY_TYPE_ORDINARY",
                "parent": format!("accounts/{account}"),
            })
        })
        .collect();
    let mut summary = json!({
        "name": format!("accountSummaries/{account}"),
        "account": format!("accounts/{account}"),
        "displayName": format!("{} account {}", user.name, n + 1),
    });
    if !properties.is_empty() {
        summary["propertySummaries"] = json!(properties);
    }
    summary
}

/// The body of `runReport`, reduced to what the simulator reads.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReportRequest {
    #[serde(default)]
    date_ranges: Vec<DateRange>,
    #[serde(default)]
    dimensions: Vec<Named>,
    #[serde(default)]
    metrics: Vec<Named>,
    #[serde(default)]
    order_bys: Vec<Value>,
    #[serde(default)]
    limit: Option<Int64>,
    #[serde(default)]
    offset: Option<Int64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DateRange {
    start_date: String,
    end_date: String,
}

#[derive(Deserialize)]
struct Named {
    name: String,
}

/// An int64, which proto3 JSON writes as a string and accepts as either.
#[derive(Deserialize)]
#[serde(untagged)]
enum Int64 {
    Number(u64),
    Text(String),
}

impl Int64 {
    fn value(&self) -> Option<u64> {
        match self {
            Self::Number(n) => Some(*n),
            Self::Text(text) => text.parse().ok(),
        }
    }
}

/// `POST /analyticsdata/v1beta/properties/{id}:runReport`: one row per day
/// of the range up to today, paged by `limit`/`offset`.
async fn run_report(
    AxumState(state): AxumState<Arc<State>>,
    Path(call): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let Some(property) = call
        .strip_suffix(":runReport")
        .and_then(|id| id.parse::<u64>().ok())
    else {
        return api_error(
            StatusCode::NOT_FOUND,
            "Requested entity was not found.",
            "NOT_FOUND",
        );
    };
    let (index, user) = match caller(&state, &headers).await {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    let owns = (0..user.accounts).any(|n| {
        (0..user.properties_per_account).any(|p| property_id(account_id(index, n), p) == property)
    });
    if !owns {
        return api_error(
            StatusCode::FORBIDDEN,
            "User does not have sufficient permissions for this property. To learn more about \
             Property ID, see https://developers.google.com/analytics/devguides/reporting/data/v1/property-id.",
            "PERMISSION_DENIED",
        );
    }
    let request: ReportRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(error) => {
            return api_error(
                StatusCode::BAD_REQUEST,
                &format!("Invalid JSON payload received. {error}"),
                "INVALID_ARGUMENT",
            );
        }
    };
    let today = (Utc::now() + TimeDelta::minutes(i64::from(user.utc_offset_minutes))).date_naive();
    let result = state.google(|google| {
        report(property, &request, today, &|day| {
            google.sessions(property, day)
        })
    });
    match result {
        Ok(report) => Json(report).into_response(),
        Err(message) => api_error(StatusCode::BAD_REQUEST, &message, "INVALID_ARGUMENT"),
    }
}

/// The report `request` asks of `property` on `today` (the owner's), with
/// the sessions of each day from `sessions`, or why it is invalid. Days
/// without traffic have no row.
fn report(
    property: u64,
    request: &ReportRequest,
    today: NaiveDate,
    sessions: &dyn Fn(NaiveDate) -> Option<u64>,
) -> Result<Value, String> {
    let [range] = &request.date_ranges[..] else {
        return Err("The simulator supports exactly one dateRange.".to_owned());
    };
    let start = parse_date(&range.start_date, today)?;
    let end = parse_date(&range.end_date, today)?;
    if end < start {
        return Err("The dateRange's endDate must not be before its startDate.".to_owned());
    }
    if request.dimensions.iter().any(|d| d.name != "date") {
        return Err("The simulator supports only the date dimension.".to_owned());
    }
    if let Some(unknown) = request
        .metrics
        .iter()
        .find(|m| !METRICS.contains(&m.name.as_str()))
    {
        return Err(format!("Field {} is not a valid metric.", unknown.name));
    }
    let limit = request
        .limit
        .as_ref()
        .map_or(Some(DEFAULT_LIMIT), Int64::value);
    let offset = request.offset.as_ref().map_or(Some(0), Int64::value);
    let (Some(limit), Some(offset)) = (limit, offset) else {
        return Err("limit and offset must be integers.".to_owned());
    };
    if limit == 0 || limit > MAX_LIMIT {
        return Err(format!("limit must be positive and at most {MAX_LIMIT}."));
    }
    let mut days: Vec<(NaiveDate, u64)> = start
        .iter_days()
        .take_while(|day| *day <= end.min(today))
        .filter_map(|day| Some((day, sessions(day)?)))
        .collect();
    if request.order_bys.is_empty() {
        // Without orderBys, rows come in no particular order.
        days.sort_by_key(|(day, _)| seeded_traffic(property, *day) ^ 0x5555);
    }
    let row_count = days.len();
    let rows: Vec<Value> = days
        .iter()
        .skip(usize::try_from(offset).unwrap_or(usize::MAX))
        .take(usize::try_from(limit).unwrap_or(usize::MAX))
        .map(|(day, sessions)| row(*day, *sessions, &request.metrics))
        .collect();
    let mut body = json!({
        "dimensionHeaders": request.dimensions.iter().map(|d| json!({"name": d.name})).collect::<Vec<_>>(),
        "metricHeaders": request.metrics.iter().map(|m| json!({"name": m.name, "type": "TYPE_INTEGER"})).collect::<Vec<_>>(),
        "metadata": {"currencyCode": "USD", "timeZone": "Etc/UTC"},
        "kind": "analyticsData#runReport",
    });
    if !rows.is_empty() {
        body["rows"] = json!(rows);
    }
    if row_count > 0 {
        body["rowCount"] = json!(row_count);
    }
    Ok(body)
}

/// A date of a `dateRange`: `YYYY-MM-DD`, `today`, `yesterday` or `NdaysAgo`.
fn parse_date(value: &str, today: NaiveDate) -> Result<NaiveDate, String> {
    let days_ago = match value {
        "today" => Some(0),
        "yesterday" => Some(1),
        _ => value
            .strip_suffix("daysAgo")
            .and_then(|n| n.parse::<u64>().ok()),
    };
    if let Some(days) = days_ago {
        return today
            .checked_sub_days(Days::new(days))
            .ok_or_else(|| format!("Invalid date: {value}"));
    }
    NaiveDate::parse_from_str(value, "%Y-%m-%d").map_err(|_| format!("Invalid date: {value}"))
}

/// The seeded sessions of `property` on `day`: none before the first
/// day, none on every `quiet_every`th day (0: never), else a
/// deterministic number varying by day.
fn seeded_sessions(property: u64, day: NaiveDate, quiet_every: u32) -> Option<u64> {
    let days = u64::try_from((day - first_day()).num_days()).ok()?;
    let quiet = quiet_every > 0 && (days + property).is_multiple_of(u64::from(quiet_every));
    (!quiet).then(|| seeded_traffic(property, day))
}

/// The sessions of `property` on `day`: deterministic, varying by day.
fn seeded_traffic(property: u64, day: NaiveDate) -> u64 {
    let days = u64::try_from((day - first_day()).num_days()).unwrap_or(0);
    50 + (property.wrapping_mul(31) + days.wrapping_mul(17)) % 151
}

/// The metrics of a day with `sessions` sessions: `sessions`,
/// `totalUsers` and `screenPageViews`.
pub(crate) fn metrics(sessions: u64) -> [u64; 3] {
    [sessions, sessions * 2 / 3, sessions * 3]
}

/// A report row: the date as `YYYYMMDD`, every metric as a string.
fn row(day: NaiveDate, sessions: u64, metrics: &[Named]) -> Value {
    let values: Vec<Value> = metrics
        .iter()
        .map(|metric| {
            let [sessions, users, views] = self::metrics(sessions);
            let value = match metric.name.as_str() {
                "totalUsers" => users,
                "screenPageViews" => views,
                _ => sessions,
            };
            json!({"value": value.to_string()})
        })
        .collect();
    json!({
        "dimensionValues": [{"value": day.format("%Y%m%d").to_string()}],
        "metricValues": values,
    })
}

/// Google's API error envelope.
fn api_error(status: StatusCode, message: &str, code: &str) -> Response {
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

/// The token endpoint's flat error body.
fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

fn percent_encode(value: &str) -> String {
    value
        .bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(byte).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
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

#[cfg(test)]
mod tests {
    use super::*;

    fn request(value: Value) -> ReportRequest {
        serde_json::from_value(value).unwrap()
    }

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 3, 10).unwrap()
    }

    fn seeded(day: NaiveDate) -> Option<u64> {
        seeded_sessions(7, day, 0)
    }

    #[test]
    fn report_pages_by_offset_with_string_metrics_and_compact_dates() {
        let page = report(
            7,
            &request(json!({
                "dateRanges": [{"startDate": "2024-01-01", "endDate": "2024-01-10"}],
                "dimensions": [{"name": "date"}],
                "metrics": [{"name": "sessions"}],
                "orderBys": [{"dimension": {"dimensionName": "date"}}],
                "limit": "4",
                "offset": 8,
            })),
            today(),
            &seeded,
        )
        .unwrap();

        assert_eq!(page["rowCount"], 10);
        let rows = page["rows"].as_array().unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0]["dimensionValues"][0]["value"], "20240109");
        assert!(rows[0]["metricValues"][0]["value"].is_string());
    }

    #[test]
    fn an_empty_report_omits_rows_and_row_count() {
        let page = report(
            7,
            &request(json!({
                "dateRanges": [{"startDate": "2019-01-01", "endDate": "2019-01-31"}],
                "dimensions": [{"name": "date"}],
                "metrics": [{"name": "sessions"}],
            })),
            today(),
            &seeded,
        )
        .unwrap();

        assert!(page.get("rows").is_none() && page.get("rowCount").is_none());
    }

    #[test]
    fn days_without_traffic_have_no_row_and_count_in_no_total() {
        let quiet = |day: NaiveDate| seeded_sessions(7, day, 3);

        let page = report(
            7,
            &request(json!({
                "dateRanges": [{"startDate": "2024-01-01", "endDate": "2024-01-09"}],
                "dimensions": [{"name": "date"}],
                "metrics": [{"name": "sessions"}],
                "orderBys": [{"dimension": {"dimensionName": "date"}}],
            })),
            today(),
            &quiet,
        )
        .unwrap();

        assert_eq!(page["rowCount"], 6);
        let dates: Vec<_> = page["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| row["dimensionValues"][0]["value"].as_str().unwrap())
            .collect();
        assert!(!dates.contains(&"20240103"), "{dates:?}");
    }

    #[test]
    fn no_day_after_the_users_today_has_traffic() {
        let page = report(
            7,
            &request(json!({
                "dateRanges": [{"startDate": "2026-03-08", "endDate": "2026-03-20"}],
                "dimensions": [{"name": "date"}],
                "metrics": [{"name": "sessions"}],
            })),
            today(),
            &seeded,
        )
        .unwrap();

        assert_eq!(page["rowCount"], 3);
    }

    #[test]
    fn relative_dates_count_back_from_today() {
        let today = NaiveDate::from_ymd_opt(2024, 3, 10).unwrap();

        assert_eq!(
            parse_date("7daysAgo", today),
            Ok(NaiveDate::from_ymd_opt(2024, 3, 3).unwrap())
        );
        assert_eq!(parse_date("yesterday", today), Ok(today - Days::new(1)));
        assert!(parse_date("20240101", today).is_err());
    }

    #[test]
    fn unknown_metrics_are_invalid_arguments() {
        let result = report(
            7,
            &request(json!({
                "dateRanges": [{"startDate": "today", "endDate": "today"}],
                "metrics": [{"name": "bounces"}],
            })),
            today(),
            &seeded,
        );

        assert_eq!(
            result,
            Err("Field bounces is not a valid metric.".to_owned())
        );
    }
}
