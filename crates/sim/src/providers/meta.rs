//! Meta under `/meta`: Facebook Login (the OAuth dialog and the token
//! endpoint; its quirks are in [`oauth`]) and the Graph API's `/me`,
//! `/me/adaccounts` and, in [`insights`], `/act_<n>/insights`, with
//! Meta's quirks:
//!
//! - Errors are Graph bodies `{"error": {"message", "type", "code",
//!   "error_subcode", "fbtrace_id", "is_transient"}}` with HTTP 400 (403
//!   for permissions, 5xx for outages), the token endpoint's included:
//!   an expired token is code 190 subcode 463, throttling is a code (17,
//!   80000), never HTTP 429, with its wait in `X-Business-Use-Case-Usage`
//!   (a JSON string keyed by business id, array values, minutes), and a
//!   missing permission is code 200 on HTTP 400.
//! - `appsecret_proof`, when sent, must be the hex HMAC-SHA256 of the
//!   token keyed with the app secret; with `require_appsecret_proof` it
//!   must be sent (code 100, `GraphMethodException`, either way).
//! - Lists are cursor-paged: `paging.next` (which carries the access token)
//!   is absent on the last page while `paging.cursors` is still there.

mod insights;
mod oauth;

use std::{collections::HashMap, sync::Arc};

use axum::{
    Json, Router,
    extract::{Path, Query, State as AxumState},
    http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header::AUTHORIZATION},
    response::{IntoResponse, Response},
    routing::get,
};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use hmac::{Hmac, Mac as _};
use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256};

use crate::{
    SimHandle,
    config::{MetaConfig, MetaUserConfig},
    fault::{self, Fault},
    oauth::{self as oauth2, Access, Grantee, Provider, Refresh, Rules, Server, Settings},
    state::State,
};

/// Graph's default and largest `limit`.
const DEFAULT_LIMIT: usize = 25;
const MAX_LIMIT: usize = 5_000;

/// The fields `/me` knows.
const USER_FIELDS: [&str; 3] = ["id", "name", "email"];

/// The fields `/me/adaccounts` knows.
const ACCOUNT_FIELDS: [&str; 5] = ["id", "account_id", "name", "currency", "account_status"];

/// The permissions that may read ad accounts and their insights.
const ADS_SCOPES: [&str; 2] = ["ads_read", "ads_management"];

/// Currencies of the seeded ad accounts, in turn.
const CURRENCIES: [&str; 3] = ["USD", "EUR", "GBP"];

/// Meta's routes, for any Graph version such as `v22.0`.
pub(crate) fn router() -> Router<Arc<State>> {
    Router::new()
        .route("/{version}/dialog/oauth", oauth2::authorize(&oauth::QUIRKS))
        .route(
            "/{version}/oauth/access_token",
            oauth2::token(&oauth::QUIRKS),
        )
        .route("/{version}/me", get(me))
        .route("/{version}/me/adaccounts", get(ad_accounts))
        .route("/{version}/{object}/insights", get(insights::insights))
}

/// Meta's app, users, grants and delivery.
#[derive(Debug)]
pub(crate) struct Meta {
    config: MetaConfig,
    pub(crate) oauth: Server,
    /// Impressions set through the handle, by ad account number and day;
    /// `None` is a day without delivery.
    impressions: HashMap<(u64, NaiveDate), Option<u64>>,
}

impl Meta {
    pub(crate) fn new(config: &MetaConfig) -> Self {
        let settings = Settings {
            client_id: config.app_id.clone(),
            client_secret: config.app_secret.clone(),
            users: config.users.iter().map(|user| user.name.clone()).collect(),
            consent_page: config.consent_page,
            refresh: Refresh::Never,
            rotate_refresh_tokens: false,
            rules: Rules::default(),
        };
        Self {
            config: config.clone(),
            oauth: Server::new(&oauth::QUIRKS, settings),
            impressions: HashMap::new(),
        }
    }

    /// The impressions of ad account `number` on `day`: set through the
    /// handle, else seeded (none before the first day or after today);
    /// `None` for a day without delivery.
    fn impressions(&self, number: u64, day: NaiveDate) -> Option<u64> {
        match self.impressions.get(&(number, day)) {
            Some(impressions) => *impressions,
            None => insights::seeded_impressions(number, day),
        }
    }

    fn user(&self, name: &str) -> Option<(usize, &MetaUserConfig)> {
        self.config
            .users
            .iter()
            .enumerate()
            .find(|(_, user)| user.name == name)
    }
}

/// Answers a fault on the Graph API in Meta's place. Meta sends no
/// `Retry-After`: a rate limit's wait is in the usage headers.
fn api_fault(fault: &Fault) -> Option<Response> {
    match fault {
        Fault::RateLimited { retry_after_secs } => Some(throttled(*retry_after_secs)),
        Fault::Unavailable { .. } => Some(unavailable()),
        Fault::ExpiredAccessToken => Some(expired(Utc::now() - TimeDelta::hours(1))),
        Fault::Slow { .. }
        | Fault::InvalidGrant
        | Fault::Redirect { .. }
        | Fault::StripAuthorization => None,
    }
}

/// A Graph outage: code 2 on HTTP 503.
fn unavailable() -> Response {
    graph_error_transient(
        StatusCode::SERVICE_UNAVAILABLE,
        2,
        None,
        "(#2) Service temporarily unavailable",
    )
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
) -> Result<(usize, MetaUserConfig, Grantee, String), Response> {
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
    let grantee = match state.oauth(Provider::Meta, |server| server.lookup(&token)) {
        Access::Valid(grantee) => grantee,
        Access::Expired(at) => return Err(expired(at)),
        Access::Unknown => return Err(invalid_token()),
    };
    if let Some(refusal) = state.meta(|meta| proof_refusal(&meta.config, &token, params)) {
        return Err(refusal);
    }
    let fault = state.arrive(&Provider::Meta.fault_target(&grantee.user));
    if let Some(response) = fault::suffer(fault, api_fault).await {
        return Err(response);
    }
    let user = state.meta(|meta| {
        meta.user(&grantee.user)
            .map(|(index, user)| (index, user.clone()))
    });
    let Some((index, user)) = user else {
        return Err(invalid_token());
    };
    Ok((index, user, grantee, token))
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

fn may_read_ads(grant: &Grantee) -> bool {
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
        let mut query = vec![format!("access_token={}", oauth2::form_encode(self.token))];
        query.extend(
            self.raw
                .iter()
                .filter(|(name, _)| name != "after" && name != "access_token")
                .map(|(name, value)| format!("{name}={}", oauth2::form_encode(value))),
        );
        query.push(format!("after={}", oauth2::form_encode(after)));
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

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        assert_eq!(decode_cursor(&encode_cursor(25)), Some(25));
        assert_eq!(decode_cursor("not a cursor"), None);
    }
}
