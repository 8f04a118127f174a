//! Meta under `/meta`: Facebook Login (the OAuth dialog and the token
//! endpoint with the long-lived token exchange) and the Graph API's `/me`,
//! `/me/adaccounts` and `/act_<n>/insights`, with Meta's quirks:
//!
//! - The code exchange gives a short-lived token without refresh token;
//!   `grant_type=fb_exchange_token` trades a token that is **still valid**
//!   for a long-lived one (`expires_in` 5183944). The code exchange is
//!   taken as Meta documents it, a GET with the parameters in the query; a
//!   POST is refused. The exchange takes GET and POST.
//! - Errors are Graph bodies `{"error": {"message", "type", "code",
//!   "error_subcode", "fbtrace_id", "is_transient"}}` with HTTP 400 (403
//!   for permissions, 5xx for outages), the token endpoint's included:
//!   an expired token is code 190 subcode 463, throttling is a code (17,
//!   80000), never HTTP 429, with its wait in `X-Business-Use-Case-Usage`
//!   (a JSON string keyed by business id, array values, minutes), a
//!   missing permission is code 200 on HTTP 400, and an insights request
//!   for more days than the user's `insights_day_limit` is code 1 "Please
//!   reduce the amount of data you're asking for" on HTTP 500.
//! - `appsecret_proof`, when sent, must be the hex HMAC-SHA256 of the
//!   token keyed with the app secret; with `require_appsecret_proof` it
//!   must be sent (code 100, `GraphMethodException`, either way).
//! - Lists are cursor-paged: `paging.next` (which carries the access token)
//!   is absent on the last page while `paging.cursors` is still there.
//!   Insights page over calendar buckets and drop those without delivery,
//!   so a page can be empty while `next` is present; an ad account that
//!   never delivered has empty pages only.
//! - Insights metrics are strings, `spend` in currency units;
//!   `time_range` is URL-encoded JSON; the defaults are
//!   `date_preset=last_30d` and `time_increment=all_days`.
//! - The login redirect carries a `#_=_` fragment; a denial is
//!   `?error_reason=user_denied&error=access_denied&error_description=Permissions+error.`.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::Duration,
};

use axum::{
    Form, Json, Router,
    extract::{Path, Query, State as AxumState},
    http::Method,
    http::{
        HeaderMap, HeaderName, HeaderValue, StatusCode,
        header::{AUTHORIZATION, CONTENT_TYPE, LOCATION},
    },
    response::{IntoResponse, Response},
    routing::get,
};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Days, NaiveDate, TimeDelta, Utc};
use hmac::{Hmac, Mac as _};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256};

use crate::SimHandle;

use crate::{
    config::{MetaConfig, MetaUserConfig},
    fault::Fault,
    state::State,
};

/// `expires_in` of the code exchange's short-lived token.
const SHORT_LIVED_SECS: i64 = 7_200;

/// `expires_in` of a long-lived token, as Meta reports it (about 60 days).
const LONG_LIVED_SECS: i64 = 5_183_944;

/// How long an authorization code can be exchanged.
const CODE_SECS: i64 = 600;

/// Graph's default and largest `limit`.
const DEFAULT_LIMIT: usize = 25;
const MAX_LIMIT: usize = 5_000;

/// The fields `/me` knows.
const USER_FIELDS: [&str; 3] = ["id", "name", "email"];

/// The fields `/me/adaccounts` knows.
const ACCOUNT_FIELDS: [&str; 5] = ["id", "account_id", "name", "currency", "account_status"];

/// The insights fields the simulator knows.
const INSIGHT_FIELDS: [&str; 7] = [
    "impressions",
    "clicks",
    "spend",
    "reach",
    "account_id",
    "account_name",
    "account_currency",
];

/// The permissions that may read ad accounts and their insights.
const ADS_SCOPES: [&str; 2] = ["ads_read", "ads_management"];

/// Currencies of the seeded ad accounts, in turn.
const CURRENCIES: [&str; 3] = ["USD", "EUR", "GBP"];

/// The first day the seeded ad accounts delivered.
fn first_day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2024, 1, 1).expect("a valid date")
}

pub(crate) fn router() -> Router<Arc<State>> {
    Router::new()
        .route("/{version}/dialog/oauth", get(authorize))
        .route("/{version}/oauth/access_token", get(token).post(token))
        .route("/{version}/me", get(me))
        .route("/{version}/me/adaccounts", get(ad_accounts))
        .route("/{version}/{object}/insights", get(insights))
}

/// The fault target of Meta user `user`.
pub(crate) fn fault_target(user: &str) -> String {
    format!("meta:{user}")
}

/// Meta's app, users and outstanding grants.
#[derive(Debug)]
pub(crate) struct Meta {
    config: MetaConfig,
    codes: HashMap<String, CodeGrant>,
    /// Codes already exchanged, which Meta tells apart from unknown ones.
    used_codes: HashSet<String>,
    tokens: HashMap<String, Grant>,
    /// Impressions set through the handle, by ad account number and day;
    /// `None` is a day without delivery.
    impressions: HashMap<(u64, NaiveDate), Option<u64>>,
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

impl Meta {
    pub(crate) fn new(config: &MetaConfig) -> Self {
        Self {
            config: config.clone(),
            codes: HashMap::new(),
            used_codes: HashSet::new(),
            tokens: HashMap::new(),
            impressions: HashMap::new(),
            issued: 0,
        }
    }

    /// The impressions of ad account `number` on `day`: set through the
    /// handle, else seeded (none before the first day or after today);
    /// `None` for a day without delivery.
    fn impressions(&self, number: u64, day: NaiveDate) -> Option<u64> {
        match self.impressions.get(&(number, day)) {
            Some(impressions) => *impressions,
            None => seeded_impressions(number, day),
        }
    }

    fn next(&mut self, prefix: &str) -> String {
        self.issued += 1;
        let seed = format!("{prefix}{}{}", self.issued, self.config.app_secret);
        let digest = URL_SAFE_NO_PAD.encode(Sha256::digest(seed.as_bytes()));
        format!("{prefix}{digest}")
    }

    fn user(&self, name: &str) -> Option<(usize, &MetaUserConfig)> {
        self.config
            .users
            .iter()
            .enumerate()
            .find(|(_, user)| user.name == name)
    }

    /// A new token of `user` living `seconds`, as the token endpoint's JSON.
    fn issue(&mut self, user: &str, scopes: Vec<String>, seconds: i64) -> Value {
        let token = self.next("EAAB");
        let grant = Grant {
            user: user.to_owned(),
            scopes,
            expires: Utc::now() + TimeDelta::seconds(seconds),
        };
        self.tokens.insert(token.clone(), grant);
        json!({"access_token": token, "token_type": "bearer", "expires_in": seconds})
    }
}

/// The query of the OAuth dialog.
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

/// `GET /{version}/dialog/oauth`: logs the first user in and consents at
/// once (302 to `redirect_uri` with `code`, `state` and `#_=_`), or shows
/// a consent page.
async fn authorize(
    AxumState(state): AxumState<Arc<State>>,
    Query(raw): Query<Vec<(String, String)>>,
    Query(query): Query<AuthorizeQuery>,
) -> Response {
    let checked = state.meta(|meta| {
        if query.client_id.as_deref() != Some(meta.config.app_id.as_str()) {
            return Err("Invalid App ID: The provided app ID does not look like a valid app ID.");
        }
        if query
            .response_type
            .as_deref()
            .is_some_and(|kind| kind != "code")
        {
            return Err("The simulator supports response_type=code only.");
        }
        let user = meta.config.users.first().map(|user| user.name.clone());
        user.map(|user| (user, meta.config.consent_page))
            .ok_or("No Facebook account can log in.")
    });
    let (user, consent_page) = match checked {
        Ok(checked) => checked,
        Err(message) => return error_page(message),
    };
    let Some(redirect_uri) = query.redirect_uri.clone() else {
        return error_page("URL blocked: the redirect_uri parameter is missing.");
    };
    let state_param = query.state.clone().map(|state| ("state", state));
    match query.consent.as_deref() {
        Some("granted") => {}
        Some("denied") => {
            let mut params = vec![
                ("error_reason", "user_denied".to_owned()),
                ("error", "access_denied".to_owned()),
                ("error_description", "Permissions error.".to_owned()),
            ];
            params.extend(state_param);
            return redirect(&redirect_uri, &params);
        }
        Some("page") => return consent(&user, &raw),
        _ if consent_page => return consent(&user, &raw),
        _ => {}
    }
    let scopes = split_scopes(query.scope.as_deref().unwrap_or_default());
    let code = state.meta(|meta| {
        let code = meta.next("AQ");
        let grant = CodeGrant {
            user,
            redirect_uri: redirect_uri.clone(),
            scopes,
            expires: Utc::now() + TimeDelta::seconds(CODE_SECS),
        };
        meta.codes.insert(code.clone(), grant);
        code
    });
    let mut params = vec![("code", code)];
    params.extend(state_param);
    redirect(&redirect_uri, &params)
}

/// Scopes as Meta takes them: separated by commas or spaces.
fn split_scopes(scope: &str) -> Vec<String> {
    scope
        .split([',', ' '])
        .filter(|scope| !scope.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A 302 to `uri` with `params` form-encoded into its query and Facebook
/// Login's `#_=_` fragment.
fn redirect(uri: &str, params: &[(&str, String)]) -> Response {
    let query: Vec<String> = params
        .iter()
        .map(|(name, value)| format!("{name}={}", form_encode(value)))
        .collect();
    let separator = if uri.contains('?') { '&' } else { '?' };
    let location = format!("{uri}{separator}{}#_=_", query.join("&"));
    match HeaderValue::from_str(&location) {
        Ok(location) => (StatusCode::FOUND, [(LOCATION, location)]).into_response(),
        Err(_) => error_page("URL blocked: the redirect_uri is invalid."),
    }
}

/// `application/x-www-form-urlencoded` encoding: spaces as `+`.
pub(crate) fn form_encode(value: &str) -> String {
    value
        .split(' ')
        .map(|part| utf8_percent_encode(part, NON_ALPHANUMERIC).to_string())
        .collect::<Vec<_>>()
        .join("+")
        .replace("%2E", ".")
        .replace("%2D", "-")
        .replace("%5F", "_")
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
        "<!DOCTYPE html><html><head><title>Log in with Facebook</title></head><body>\
         <h1>connector-fleet is requesting access to your ad accounts</h1>\
         <p>Continue as {}</p><form method=\"get\" action=\"\">{hidden}\
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
            "<!DOCTYPE html><html><body><h1>Facebook</h1><p>{}</p></body></html>",
            html_escape(message)
        ),
    )
        .into_response()
}

/// Which grant a token request asks for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum GrantType {
    Code,
    Exchange,
}

/// `GET|POST /{version}/oauth/access_token`: the code exchange (any
/// `grant_type` but `fb_exchange_token`, as Meta ignores it; GET only) and
/// the long-lived token exchange.
async fn token(
    AxumState(state): AxumState<Arc<State>>,
    method: Method,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let param = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
    if method == Method::POST && param("grant_type") != "fb_exchange_token" {
        return graph_error_typed(
            StatusCode::BAD_REQUEST,
            Some("GraphMethodException"),
            100,
            None,
            "Unsupported post request. Please read the Graph API documentation at \
             https://developers.facebook.com/docs/graph-api",
        );
    }
    let refusal = state.meta(|meta| {
        if param("client_id") != meta.config.app_id {
            return Some(graph_error(
                StatusCode::BAD_REQUEST,
                101,
                None,
                "Error validating application. Invalid application ID.",
            ));
        }
        (param("client_secret") != meta.config.app_secret).then(|| {
            graph_error(
                StatusCode::BAD_REQUEST,
                1,
                None,
                "Error validating client secret.",
            )
        })
    });
    if let Some(refusal) = refusal {
        return refusal;
    }
    let grant = if param("grant_type") == "fb_exchange_token" {
        GrantType::Exchange
    } else {
        GrantType::Code
    };
    let user = state.meta(|meta| match grant {
        GrantType::Exchange => meta
            .tokens
            .get(param("fb_exchange_token"))
            .map(|grant| grant.user.clone()),
        GrantType::Code => meta
            .codes
            .get(param("code"))
            .map(|grant| grant.user.clone()),
    });
    let fault = user
        .as_deref()
        .and_then(|user| state.arrive(&fault_target(user)));
    if let Some(response) = suffer(fault.as_ref(), Surface::Token(grant)).await {
        return response;
    }
    state.meta(|meta| match grant {
        GrantType::Exchange => exchange_token(meta, param("fb_exchange_token")),
        GrantType::Code => exchange_code(meta, param("code"), param("redirect_uri")),
    })
}

fn exchange_code(meta: &mut Meta, code: &str, redirect_uri: &str) -> Response {
    if code.is_empty() {
        return graph_error(
            StatusCode::BAD_REQUEST,
            100,
            None,
            "Missing authorization code",
        );
    }
    let Some(grant) = meta.codes.remove(code) else {
        let (subcode, message) = if meta.used_codes.contains(code) {
            (36_009, "This authorization code has been used.")
        } else {
            (36_007, "Invalid verification code format.")
        };
        return graph_error(StatusCode::BAD_REQUEST, 100, Some(subcode), message);
    };
    meta.used_codes.insert(code.to_owned());
    if grant.expires <= Utc::now() {
        return graph_error(
            StatusCode::BAD_REQUEST,
            100,
            Some(36_007),
            "This authorization code has expired.",
        );
    }
    if grant.redirect_uri != redirect_uri {
        return graph_error(
            StatusCode::BAD_REQUEST,
            100,
            Some(36_008),
            "Error validating verification code. Please make sure your redirect_uri is identical \
             to the one you used in the OAuth dialog request",
        );
    }
    let body = meta.issue(&grant.user, grant.scopes, SHORT_LIVED_SECS);
    Json(body).into_response()
}

fn exchange_token(meta: &mut Meta, token: &str) -> Response {
    if token.is_empty() {
        return graph_error(
            StatusCode::BAD_REQUEST,
            100,
            None,
            "Missing required parameter: fb_exchange_token",
        );
    }
    let Some(grant) = meta.tokens.get(token).cloned() else {
        return invalid_token();
    };
    if grant.expires <= Utc::now() {
        return expired(grant.expires);
    }
    let body = meta.issue(&grant.user, grant.scopes, LONG_LIVED_SECS);
    Json(body).into_response()
}

/// Which endpoint a fault hits: they differ in the faults they honour.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Surface {
    Token(GrantType),
    Api,
}

/// Applies a fault: answers in Meta's place, or waits. Meta sends no
/// `Retry-After`: a rate limit's wait is in the usage headers.
async fn suffer(fault: Option<&Fault>, surface: Surface) -> Option<Response> {
    match (fault?, surface) {
        (Fault::RateLimited { retry_after_secs }, Surface::Api) => {
            Some(throttled(*retry_after_secs))
        }
        (Fault::RateLimited { .. }, Surface::Token(_)) => {
            let mut response = graph_error_transient(
                StatusCode::BAD_REQUEST,
                4,
                None,
                "(#4) Application request limit reached",
            );
            insert(
                &mut response,
                "x-app-usage",
                r#"{"call_count":100,"total_cputime":12,"total_time":15}"#,
            );
            Some(response)
        }
        (Fault::Unavailable { .. }, _) => Some(graph_error_transient(
            StatusCode::SERVICE_UNAVAILABLE,
            2,
            None,
            "(#2) Service temporarily unavailable",
        )),
        (Fault::Slow { delay_ms }, _) => {
            tokio::time::sleep(Duration::from_millis(*delay_ms)).await;
            None
        }
        (Fault::ExpiredAccessToken, Surface::Api | Surface::Token(GrantType::Exchange)) => {
            Some(expired(Utc::now() - TimeDelta::hours(1)))
        }
        (Fault::InvalidGrant, Surface::Token(GrantType::Exchange)) => Some(graph_error(
            StatusCode::BAD_REQUEST,
            190,
            Some(460),
            "Error validating access token: The session has been invalidated because the user \
             changed their password or Facebook has changed the session for security reasons.",
        )),
        (Fault::InvalidGrant, Surface::Token(GrantType::Code)) => Some(graph_error(
            StatusCode::BAD_REQUEST,
            100,
            Some(36_009),
            "This authorization code has been used.",
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

/// Throttling of the Marketing API: with a wait, the ad-account (business
/// use case) limit, code 80000, whose `X-Business-Use-Case-Usage` says how
/// many minutes to wait; without, the user's request limit, code 17.
fn throttled(retry_after_secs: u64) -> Response {
    if retry_after_secs == 0 {
        let mut response = graph_error_transient(
            StatusCode::BAD_REQUEST,
            17,
            Some(2_446_079),
            "(#17) User request limit reached",
        );
        insert(
            &mut response,
            "x-app-usage",
            r#"{"call_count":28,"total_cputime":9,"total_time":11}"#,
        );
        return response;
    }
    let minutes = retry_after_secs.div_ceil(60);
    let usage = json!({
        "1200000000001": [{
            "type": "ads_insights",
            "call_count": 100,
            "total_cputime": 34,
            "total_time": 41,
            "estimated_time_to_regain_access": minutes,
            "ads_api_access_tier": "development_access",
        }]
    });
    let mut response = graph_error_transient(
        StatusCode::BAD_REQUEST,
        80_000,
        Some(2_446_079),
        "There have been too many calls from this ad-account. Wait a bit and try again. For more \
         info, please refer to https://developers.facebook.com/docs/graph-api/overview/rate-limiting#ads-management.",
    );
    insert(
        &mut response,
        "x-business-use-case-usage",
        &usage.to_string(),
    );
    response
}

fn insert(response: &mut Response, name: &'static str, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        response
            .headers_mut()
            .insert(HeaderName::from_static(name), value);
    }
}

/// The caller of a Graph route: the token's user and granted scopes, after
/// faults. The token comes as a bearer header or an `access_token`
/// parameter.
async fn caller(
    state: &State,
    headers: &HeaderMap,
    params: &HashMap<String, String>,
) -> Result<(usize, MetaUserConfig, Grant, String), Response> {
    let token = headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            value
                .strip_prefix("Bearer ")
                .or(value.strip_prefix("OAuth "))
        })
        .map(str::to_owned)
        .or_else(|| params.get("access_token").cloned())
        .unwrap_or_default();
    if token.is_empty() {
        return Err(graph_error(
            StatusCode::BAD_REQUEST,
            2500,
            None,
            "An active access token must be used to query information about the current user.",
        ));
    }
    let Some(grant) = state.meta(|meta| meta.tokens.get(&token).cloned()) else {
        return Err(invalid_token());
    };
    if grant.expires <= Utc::now() {
        return Err(expired(grant.expires));
    }
    if let Some(refusal) = state.meta(|meta| proof_refusal(&meta.config, &token, params)) {
        return Err(refusal);
    }
    let fault = state.arrive(&fault_target(&grant.user));
    if let Some(response) = suffer(fault.as_ref(), Surface::Api).await {
        return Err(response);
    }
    let user = state.meta(|meta| {
        meta.user(&grant.user)
            .map(|(index, user)| (index, user.clone()))
    });
    let Some((index, user)) = user else {
        return Err(invalid_token());
    };
    Ok((index, user, grant, token))
}

/// The refusal of a call whose `appsecret_proof` is wrong, or missing
/// while the app requires one.
fn proof_refusal(
    config: &MetaConfig,
    token: &str,
    params: &HashMap<String, String>,
) -> Option<Response> {
    let message = match params.get("appsecret_proof") {
        Some(proof) if *proof == appsecret_proof(&config.app_secret, token) => return None,
        Some(_) => "Invalid appsecret_proof provided in the API argument",
        None if config.require_appsecret_proof => {
            "API calls from the server require an appsecret_proof argument"
        }
        None => return None,
    };
    Some(graph_error_typed(
        StatusCode::BAD_REQUEST,
        Some("GraphMethodException"),
        100,
        None,
        message,
    ))
}

/// The hex HMAC-SHA256 of `token` keyed with `secret`.
fn appsecret_proof(secret: &str, token: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any size");
    mac.update(token.as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// The `fields` parameter, checked against `known`; `default` when absent.
/// The error is Graph's message for an unknown field.
fn fields(
    params: &HashMap<String, String>,
    known: &[&str],
    default: &[&str],
    node: &str,
) -> Result<Vec<String>, String> {
    let Some(fields) = params.get("fields") else {
        return Ok(default.iter().map(|field| (*field).to_owned()).collect());
    };
    let fields: Vec<String> = fields
        .split(',')
        .map(str::trim)
        .filter(|field| !field.is_empty())
        .map(str::to_owned)
        .collect();
    if let Some(unknown) = fields.iter().find(|field| !known.contains(&field.as_str())) {
        return Err(format!(
            "(#100) Tried accessing nonexisting field ({unknown}) on node type ({node})"
        ));
    }
    Ok(fields)
}

/// `GET /{version}/me`.
async fn me(
    AxumState(state): AxumState<Arc<State>>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let (index, user, ..) = match caller(&state, &headers, &params).await {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    let fields = match fields(&params, &USER_FIELDS, &["id", "name"], "User") {
        Ok(fields) => fields,
        Err(message) => return graph_error(StatusCode::BAD_REQUEST, 100, None, &message),
    };
    let mut body = Map::new();
    body.insert("id".to_owned(), json!(user_id(index)));
    for field in fields {
        match field.as_str() {
            "name" => body.insert(field, json!(user.name)),
            "email" => body.insert(field, json!(format!("{}@example.test", user.name))),
            _ => None,
        };
    }
    graph_ok(&Value::Object(body))
}

fn user_id(index: usize) -> String {
    format!("10{:013}", index + 1)
}

/// The number of ad account `n` (from 0) of the user at `index`.
fn account_number(index: usize, n: u32) -> u64 {
    1_000_000_000_000 + (index as u64 + 1) * 1_000 + u64::from(n) + 1
}

/// `GET /{version}/me/adaccounts`.
async fn ad_accounts(
    AxumState(state): AxumState<Arc<State>>,
    Path(version): Path<String>,
    headers: HeaderMap,
    Query(raw): Query<Vec<(String, String)>>,
) -> Response {
    let params: HashMap<String, String> = raw.iter().cloned().collect();
    let (index, user, grant, token) = match caller(&state, &headers, &params).await {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    if !may_read_ads(&grant) {
        return no_ads_permission();
    }
    let fields = match fields(&params, &ACCOUNT_FIELDS, &["id"], "AdAccount") {
        Ok(fields) => fields,
        Err(message) => return graph_error(StatusCode::BAD_REQUEST, 100, None, &message),
    };
    let accounts: Vec<Value> = (0..user.ad_accounts)
        .map(|n| ad_account(index, &user, n, &fields))
        .collect();
    let page = Paged {
        link: format!("{}/meta/{version}/me/adaccounts", state.base_url),
        raw: &raw,
        token: &token,
    };
    page.respond(accounts.len(), &params, |range| accounts[range].to_vec())
}

fn ad_account(index: usize, user: &MetaUserConfig, n: u32, fields: &[String]) -> Value {
    let number = account_number(index, n);
    let mut account = Map::new();
    account.insert("id".to_owned(), json!(format!("act_{number}")));
    for field in fields {
        let value = match field.as_str() {
            "account_id" => json!(number.to_string()),
            "name" => json!(format!("{} ad account {}", user.name, n + 1)),
            "currency" => json!(currency(n)),
            "account_status" => json!(1),
            _ => continue,
        };
        account.insert(field.clone(), value);
    }
    Value::Object(account)
}

fn currency(n: u32) -> &'static str {
    CURRENCIES[n as usize % CURRENCIES.len()]
}

fn may_read_ads(grant: &Grant) -> bool {
    grant
        .scopes
        .iter()
        .any(|scope| ADS_SCOPES.contains(&scope.as_str()))
}

/// A missing ads permission: code 200 on HTTP 400, as Graph answers it.
fn no_ads_permission() -> Response {
    graph_error(
        StatusCode::BAD_REQUEST,
        200,
        None,
        "(#200) Ad account owner has NOT grant ads_management or ads_read permission",
    )
}

/// A cursor-paged Graph list: where its `next` link points.
struct Paged<'a> {
    /// The route's absolute URL, without query.
    link: String,
    /// The request's parameters, repeated in `next`.
    raw: &'a [(String, String)],
    /// The caller's token, which Graph puts into `next`.
    token: &'a str,
}

impl Paged<'_> {
    /// The page of `len` items that `params` (`limit`, `after`) ask for,
    /// with `items` giving the data of a range. Cursors are offsets,
    /// opaquely encoded.
    fn respond(
        &self,
        len: usize,
        params: &HashMap<String, String>,
        items: impl FnOnce(std::ops::Range<usize>) -> Vec<Value>,
    ) -> Response {
        let limit = match params.get("limit").map(|limit| limit.parse::<usize>()) {
            None => DEFAULT_LIMIT,
            Some(Ok(limit)) if limit > 0 => limit.min(MAX_LIMIT),
            Some(_) => {
                return graph_error(
                    StatusCode::BAD_REQUEST,
                    100,
                    None,
                    "(#100) Param limit must be a positive integer",
                );
            }
        };
        let start = match params.get("after").map(|after| decode_cursor(after)) {
            None => 0,
            Some(Some(start)) => start.min(len),
            Some(None) => {
                return graph_error(
                    StatusCode::BAD_REQUEST,
                    100,
                    None,
                    "(#100) The after cursor is invalid",
                );
            }
        };
        let end = (start + limit).min(len);
        let data = items(start..end);
        if len == 0 {
            return graph_ok(&json!({"data": []}));
        }
        let mut paging = json!({
            "cursors": {"before": encode_cursor(start), "after": encode_cursor(end)},
        });
        if end < len {
            paging["next"] = json!(self.next(&encode_cursor(end)));
        }
        graph_ok(&json!({"data": data, "paging": paging}))
    }

    /// The `next` link: the token first, the request's parameters, `after`.
    fn next(&self, after: &str) -> String {
        let mut query = vec![format!("access_token={}", form_encode(self.token))];
        query.extend(
            self.raw
                .iter()
                .filter(|(name, _)| name != "after" && name != "access_token")
                .map(|(name, value)| format!("{name}={}", form_encode(value))),
        );
        query.push(format!("after={}", form_encode(after)));
        format!("{}?{}", self.link, query.join("&"))
    }
}

fn encode_cursor(offset: usize) -> String {
    URL_SAFE_NO_PAD.encode(format!("cursor:{offset}"))
}

fn decode_cursor(cursor: &str) -> Option<usize> {
    let decoded = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    String::from_utf8(decoded)
        .ok()?
        .strip_prefix("cursor:")?
        .parse()
        .ok()
}

/// `time_range`: `{"since": "YYYY-MM-DD", "until": "YYYY-MM-DD"}`.
#[derive(Deserialize)]
struct TimeRange {
    since: String,
    until: String,
}

/// What an insights request asks for.
struct InsightsRequest {
    since: NaiveDate,
    until: NaiveDate,
    /// Days per row.
    increment: u64,
    fields: Vec<String>,
}

/// `GET /{version}/act_<n>/insights` at `level=account`.
async fn insights(
    AxumState(state): AxumState<Arc<State>>,
    Path((version, object)): Path<(String, String)>,
    headers: HeaderMap,
    Query(raw): Query<Vec<(String, String)>>,
) -> Response {
    let params: HashMap<String, String> = raw.iter().cloned().collect();
    let (index, user, grant, token) = match caller(&state, &headers, &params).await {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    let owned =
        (0..user.ad_accounts).find(|n| object == format!("act_{}", account_number(index, *n)));
    let Some(n) = owned else {
        return graph_error(
            StatusCode::BAD_REQUEST,
            100,
            Some(33),
            &format!(
                "Unsupported get request. Object with ID '{object}' does not exist, cannot be \
                 loaded due to missing permissions, or does not support this operation. Please \
                 read the Graph API documentation at https://developers.facebook.com/docs/graph-api"
            ),
        );
    };
    if !may_read_ads(&grant) {
        return no_ads_permission();
    }
    let request = match insights_request(&params, Utc::now().date_naive()) {
        Ok(request) => request,
        Err(message) => return graph_error(StatusCode::BAD_REQUEST, 100, None, &message),
    };
    let span = (request.until - request.since).num_days() + 1;
    if user
        .insights_day_limit
        .is_some_and(|limit| span > i64::from(limit))
    {
        return graph_error_typed(
            StatusCode::INTERNAL_SERVER_ERROR,
            None,
            1,
            None,
            "Please reduce the amount of data you're asking for, then retry your request",
        );
    }
    let number = account_number(index, n);
    let idle = n >= user.ad_accounts.saturating_sub(user.idle_ad_accounts);
    let buckets = buckets(&request);
    let impressions: HashMap<NaiveDate, Option<u64>> = state.meta(|meta| {
        request
            .since
            .iter_days()
            .take_while(|day| *day <= request.until)
            .map(|day| (day, meta.impressions(number, day)))
            .collect()
    });
    let impressions = |day| impressions.get(&day).copied().flatten();
    let account_name = format!("{} ad account {}", user.name, n + 1);
    let page = Paged {
        link: format!("{}/meta/{version}/{object}/insights", state.base_url),
        raw: &raw,
        token: &token,
    };
    page.respond(buckets.len(), &params, |range| {
        buckets[range]
            .iter()
            .filter(|_| !idle)
            .filter_map(|(start, end)| {
                let mut row = row(number, *start, *end, &request.fields, &impressions)?;
                for field in &request.fields {
                    let value = match field.as_str() {
                        "account_id" => json!(number.to_string()),
                        "account_name" => json!(account_name),
                        "account_currency" => json!(currency(n)),
                        _ => continue,
                    };
                    row.insert(field.clone(), value);
                }
                Some(Value::Object(row))
            })
            .collect()
    })
}

/// Reads the insights parameters against `today`.
fn insights_request(
    params: &HashMap<String, String>,
    today: NaiveDate,
) -> Result<InsightsRequest, String> {
    if params.get("level").is_some_and(|level| level != "account") {
        return Err("(#100) The simulator supports level=account only".to_owned());
    }
    let (since, until) = match (params.get("time_range"), params.get("date_preset")) {
        (Some(range), _) => {
            let range: TimeRange = serde_json::from_str(range).map_err(|_| {
                "(#100) param time_range must be a JSON object with since and until".to_owned()
            })?;
            let date = |value: &str| {
                NaiveDate::parse_from_str(value, "%Y-%m-%d")
                    .map_err(|_| format!("(#100) {value} is not a valid date (YYYY-MM-DD)"))
            };
            (date(&range.since)?, date(&range.until)?)
        }
        (None, preset) => preset_range(preset.map_or("last_30d", String::as_str), today)?,
    };
    if until < since {
        return Err("(#100) time_range's since must not be after its until".to_owned());
    }
    let increment = match params.get("time_increment").map(String::as_str) {
        None | Some("all_days") => u64::try_from((until - since).num_days() + 1).unwrap_or(1),
        Some(days) => days
            .parse::<u64>()
            .ok()
            .filter(|days| (1..=90).contains(days))
            .ok_or_else(|| {
                "(#100) time_increment must be all_days or a number of days from 1 to 90".to_owned()
            })?,
    };
    let fields = fields(
        params,
        &INSIGHT_FIELDS,
        &["impressions", "spend"],
        "AdsInsights",
    )?;
    Ok(InsightsRequest {
        since,
        until,
        increment,
        fields,
    })
}

/// The days of a `date_preset`: `today`, `yesterday`, or `last_<n>d`
/// (the `n` days before today).
fn preset_range(preset: &str, today: NaiveDate) -> Result<(NaiveDate, NaiveDate), String> {
    let invalid = || format!("(#100) date_preset {preset} is not supported by the simulator");
    match preset {
        "today" => Ok((today, today)),
        "yesterday" => Ok((today - Days::new(1), today - Days::new(1))),
        _ => {
            let days = preset
                .strip_prefix("last_")
                .and_then(|rest| rest.strip_suffix('d'))
                .and_then(|days| days.parse::<u64>().ok())
                .filter(|days| *days > 0)
                .ok_or_else(invalid)?;
            Ok((today - Days::new(days), today - Days::new(1)))
        }
    }
}

/// The calendar buckets of `request`, `[start, end]` each.
fn buckets(request: &InsightsRequest) -> Vec<(NaiveDate, NaiveDate)> {
    let mut buckets = Vec::new();
    let mut start = request.since;
    while start <= request.until {
        let end = (start + Days::new(request.increment - 1)).min(request.until);
        buckets.push((start, end));
        let Some(next) = end.succ_opt() else { break };
        start = next;
    }
    buckets
}

/// The seeded impressions of ad account `number` on `day`; `None` before
/// the first day and after today.
fn seeded_impressions(number: u64, day: NaiveDate) -> Option<u64> {
    if day < first_day() || day > Utc::now().date_naive() {
        return None;
    }
    let days = u64::try_from((day - first_day()).num_days()).ok()?;
    Some(800 + (number.wrapping_mul(37) + days.wrapping_mul(53)) % 1_200)
}

/// One day's delivery of ad account `number` with `impressions`:
/// impressions, clicks, reach and spend in cents.
fn delivery(number: u64, day: NaiveDate, impressions: u64) -> (u64, u64, u64, u64) {
    let days = u64::try_from((day - first_day()).num_days()).unwrap_or(0);
    let clicks = impressions * (2 + (number + days) % 5) / 100;
    let reach = impressions * 7 / 10;
    let spend_cents = impressions * (3 + number % 4) / 2;
    (impressions, clicks, reach, spend_cents)
}

/// The row of `[start, end]` of ad account `number`, whose impressions
/// each day are `impressions`, with the metrics of `fields` as strings;
/// `None` when the account delivered nothing then.
fn row(
    number: u64,
    start: NaiveDate,
    end: NaiveDate,
    fields: &[String],
    impressions: &dyn Fn(NaiveDate) -> Option<u64>,
) -> Option<Map<String, Value>> {
    let days: Vec<_> = start
        .iter_days()
        .take_while(|day| *day <= end)
        .filter_map(|day| Some(delivery(number, day, impressions(day)?)))
        .collect();
    if days.is_empty() {
        return None;
    }
    let sum = |pick: fn(&(u64, u64, u64, u64)) -> u64| days.iter().map(pick).sum::<u64>();
    let spend = sum(|day| day.3);
    let mut row = Map::new();
    for field in fields {
        let value = match field.as_str() {
            "impressions" => sum(|day| day.0).to_string(),
            "clicks" => sum(|day| day.1).to_string(),
            // Unique people: fewer than the sum of the days.
            "reach" => (sum(|day| day.2) * 9 / 10).max(days[0].2).to_string(),
            "spend" => format!("{}.{:02}", spend / 100, spend % 100),
            _ => continue,
        };
        row.insert(field.clone(), json!(value));
    }
    row.insert("date_start".to_owned(), json!(start.to_string()));
    row.insert("date_stop".to_owned(), json!(end.to_string()));
    Some(row)
}

/// A successful Graph answer, with the app usage header Graph sends.
fn graph_ok(body: &Value) -> Response {
    let mut response = Json(body).into_response();
    insert(
        &mut response,
        "x-app-usage",
        r#"{"call_count":1,"total_cputime":1,"total_time":1}"#,
    );
    response
}

/// A Graph error body.
fn graph_error(status: StatusCode, code: i64, subcode: Option<i64>, message: &str) -> Response {
    graph_error_with(status, code, subcode, message, false)
}

/// A Graph error body flagged `is_transient`.
fn graph_error_transient(
    status: StatusCode,
    code: i64,
    subcode: Option<i64>,
    message: &str,
) -> Response {
    graph_error_with(status, code, subcode, message, true)
}

fn graph_error_with(
    status: StatusCode,
    code: i64,
    subcode: Option<i64>,
    message: &str,
    transient: bool,
) -> Response {
    let error = error_body(Some("OAuthException"), code, subcode, message, transient);
    (status, Json(json!({"error": error}))).into_response()
}

/// A Graph error body of type `kind` (absent when `None`, as in Meta's
/// code 1 answers).
fn graph_error_typed(
    status: StatusCode,
    kind: Option<&str>,
    code: i64,
    subcode: Option<i64>,
    message: &str,
) -> Response {
    let error = error_body(kind, code, subcode, message, false);
    (status, Json(json!({"error": error}))).into_response()
}

/// The `error` object of a Graph error body.
fn error_body(
    kind: Option<&str>,
    code: i64,
    subcode: Option<i64>,
    message: &str,
    transient: bool,
) -> Value {
    let trace = URL_SAFE_NO_PAD.encode(Sha256::digest(message.as_bytes()));
    let mut error = json!({
        "message": message,
        "code": code,
        "fbtrace_id": format!("A{}", &trace[..22]),
    });
    if let Some(kind) = kind {
        error["type"] = json!(kind);
    }
    if let Some(subcode) = subcode {
        error["error_subcode"] = json!(subcode);
    }
    if transient {
        error["is_transient"] = json!(true);
    }
    error
}

fn invalid_token() -> Response {
    graph_error(
        StatusCode::BAD_REQUEST,
        190,
        None,
        "Invalid OAuth access token - Cannot parse access token",
    )
}

/// Code 190, subcode 463: the token expired at `at`.
fn expired(at: DateTime<Utc>) -> Response {
    let format = "%A, %d-%b-%y %H:%M:%S UTC";
    graph_error(
        StatusCode::BAD_REQUEST,
        190,
        Some(463),
        &format!(
            "Error validating access token: Session has expired on {}. The current time is {}.",
            at.format(format),
            Utc::now().format(format)
        ),
    )
}

pub(crate) fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

impl SimHandle {
    /// Sets the impressions of Meta ad account `account` (`act_<n>` or
    /// `<n>`) on `day`; clicks, reach and spend follow from them. `None`
    /// makes it a day without delivery, which insights leave out.
    pub fn set_meta_impressions(&self, account: &str, day: NaiveDate, impressions: Option<u64>) {
        let Some(number) = account_of(account) else {
            return;
        };
        self.inner.state.meta(|meta| {
            meta.impressions.insert((number, day), impressions);
        });
    }

    /// The impressions of Meta ad account `account` on `day`, as insights
    /// report them; `None` for a day without delivery.
    pub fn meta_impressions(&self, account: &str, day: NaiveDate) -> Option<u64> {
        let number = account_of(account)?;
        self.inner.state.meta(|meta| meta.impressions(number, day))
    }
}

/// The number of ad account `act_<n>` or `<n>`.
fn account_of(account: &str) -> Option<u64> {
    account.strip_prefix("act_").unwrap_or(account).parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect()
    }

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn the_defaults_are_last_30_days_in_one_row() {
        let today = day("2026-03-31");

        let request = insights_request(&params(&[]), today).unwrap();

        assert_eq!(
            (request.since, request.until),
            (day("2026-03-01"), day("2026-03-30"))
        );
        assert_eq!(buckets(&request).len(), 1);
        assert_eq!(request.fields, ["impressions", "spend"]);
    }

    #[test]
    fn a_daily_time_range_gives_a_bucket_per_day() {
        let request = insights_request(
            &params(&[
                (
                    "time_range",
                    r#"{"since":"2026-01-30","until":"2026-02-02"}"#,
                ),
                ("time_increment", "1"),
            ]),
            day("2026-03-31"),
        )
        .unwrap();

        let buckets = buckets(&request);
        assert_eq!(buckets.len(), 4);
        assert!(buckets.iter().all(|(start, end)| start == end));
    }

    #[test]
    fn invalid_insights_parameters_are_refused() {
        let today = day("2026-03-31");

        for bad in [
            params(&[("time_range", "2026-01-01..2026-01-02")]),
            params(&[(
                "time_range",
                r#"{"since":"2026-02-02","until":"2026-02-01"}"#,
            )]),
            params(&[("time_increment", "monthly")]),
            params(&[("fields", "impressions,bounces")]),
            params(&[("level", "ad")]),
        ] {
            assert!(insights_request(&bad, today).is_err());
        }
    }

    #[test]
    fn metrics_are_strings_and_spend_has_two_decimals() {
        let fields = ["impressions", "spend", "clicks", "reach"].map(str::to_owned);

        let seeded = |day| seeded_impressions(7, day);
        let daily = row(7, day("2024-02-01"), day("2024-02-01"), &fields, &seeded).unwrap();

        assert!(daily.values().all(Value::is_string));
        let spend = daily["spend"].as_str().unwrap();
        assert_eq!(spend.split_once('.').unwrap().1.len(), 2, "{spend}");
        assert_eq!(daily["date_start"], daily["date_stop"]);
        assert!(row(7, day("2023-12-31"), day("2023-12-31"), &fields, &seeded).is_none());
    }

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        assert_eq!(decode_cursor(&encode_cursor(25)), Some(25));
        assert_eq!(decode_cursor("not a cursor"), None);
    }

    #[test]
    fn redirects_form_encode_and_end_with_the_login_fragment() {
        let response = redirect(
            "https://fleet.test/cb",
            &[("error_description", "Permissions error.".to_owned())],
        );

        assert_eq!(
            response.headers()[LOCATION],
            "https://fleet.test/cb?error_description=Permissions+error.#_=_"
        );
    }
}
