//! "Keyed", under `/keyed`: an API that takes typed-in credentials, for
//! the catalog's `api_key`, `basic` and `oauth2_client_credentials`
//! entries. `GET /keyed/api/me` answers the account to any of an API key
//! in the `X-Api-Key` header or the `api_key` query parameter, HTTP Basic
//! with the user name and password, or a bearer token that
//! `POST /keyed/oauth/token` issued for the `client_credentials` grant
//! (client authentication by Basic or in the body, form or JSON bodies).
//! `GET /keyed/api/ping` checks the same and answers `204 No Content`;
//! `GET /keyed/api/versioned` also wants the header `Keyed-Version`;
//! `GET /keyed/api/both` wants the key twice, in `X-Api-Key` and as
//! `Authorization: Bearer`, as Supabase does; `GET
//! /keyed/api/accounts/{user name}` answers the account named by the
//! user name in its path, as Twilio's API does with the account SID;
//! `GET /keyed/api/signed` wants an HTTP Message Signature (RFC 9421,
//! ed25519) by [`KEYED_SIGNING_KEY`]; `GET /keyed/admin/v1/info/summary`
//! wants Duo's request signature
//! (the user name as the integration key, the password as the secret
//! key); `/api/me` also takes `base64(user:password)` alone in the
//! `client-auth-token` header, as ConnectSecure does;
//! `GET /keyed/bot{key}/getMe` takes the key in its path (and
//! `/keyed/moved/bot{key}/getMe` redirects to itself with a trailing
//! slash), as Telegram's
//! bot API does; `POST /keyed/api/users/ping` takes it in a JSON body
//! (`{"key": …}`), as Mandrill does, and answers `"PONG!"`. Besides the password, HTTP
//! Basic takes an API token ([`KEYED_API_TOKEN`]) as the password of the
//! user name with `/token` appended, as Zendesk does.
//! Wrong credentials answer 401 with a body that echoes what was sent, as
//! careless APIs do, so tests can check that it reaches no message.
//!
//! The credentials are fixed test values: [`KEYED_API_KEY`],
//! [`KEYED_USERNAME`] and [`KEYED_PASSWORD`], [`KEYED_CLIENT_ID`] and
//! [`KEYED_CLIENT_SECRET`].

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path, Query, State as AxumState},
    http::{HeaderMap, StatusCode, header::AUTHORIZATION},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use base64::{Engine as _, engine::general_purpose::STANDARD as BASE64};
use serde_json::json;

use crate::{SimHandle, oauth::error_body, state::State};

/// The API key `/keyed/api/me` accepts.
pub const KEYED_API_KEY: &str = "sim-key-9c1e5b7a";
/// The user name `/keyed/api/me` accepts with [`KEYED_PASSWORD`].
pub const KEYED_USERNAME: &str = "keyed-user";
/// The password `/keyed/api/me` accepts with [`KEYED_USERNAME`].
pub const KEYED_PASSWORD: &str = "sim-pass/with:colon";
/// The API token HTTP Basic accepts as the password of
/// `{KEYED_USERNAME}/token` (not of the plain user name).
pub const KEYED_API_TOKEN: &str = "sim-api-token-0d5f";
/// The private key (PKCS#8 PEM) whose signatures `/keyed/api/signed`
/// accepts from key id [`KEYED_USERNAME`]: RFC 9421's ed25519 test key.
pub const KEYED_SIGNING_KEY: &str = "-----BEGIN PRIVATE KEY-----\n\
    MC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF\n\
    -----END PRIVATE KEY-----\n";

/// The public half of [`KEYED_SIGNING_KEY`] (RFC 9421 Appendix B.1.4).
const KEYED_VERIFYING_KEY: [u8; 32] = [
    0x26, 0xb4, 0x0b, 0x8f, 0x93, 0xff, 0xf3, 0xd8, 0x97, 0x11, 0x2f, 0x7e, 0xbc, 0x58, 0x2b, 0x23,
    0x2d, 0xbd, 0x72, 0x51, 0x7d, 0x08, 0x2f, 0xe8, 0x3c, 0xfb, 0x30, 0xdd, 0xce, 0x43, 0xd1, 0xbb,
];

/// The client id `/keyed/oauth/token` accepts.
pub const KEYED_CLIENT_ID: &str = "keyed-client";
/// The client secret `/keyed/oauth/token` accepts.
pub const KEYED_CLIENT_SECRET: &str = "sim-client-secret-42d0";

/// How long the access tokens live, in seconds.
const TOKEN_SECS: u64 = 3600;

/// Keyed's issued access tokens and the token requests it received.
#[derive(Debug, Default)]
pub(crate) struct Keyed {
    tokens: Mutex<Tokens>,
}

#[derive(Debug, Default)]
struct Tokens {
    /// Access tokens by value: whether each still works.
    issued: HashMap<String, bool>,
    /// Token requests answered with a token.
    granted: u64,
}

impl Keyed {
    fn tokens(&self) -> std::sync::MutexGuard<'_, Tokens> {
        self.tokens
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

/// Keyed's routes, under `/keyed`.
pub(crate) fn router() -> Router<Arc<State>> {
    Router::new()
        .route("/api/me", get(me))
        .route("/api/ping", get(ping))
        .route("/api/versioned", get(versioned))
        .route("/api/both", get(both))
        .route("/api/accounts/{account}", get(account))
        .route("/{bot}/getMe", get(bot))
        .route("/moved/{bot}/getMe", get(moved))
        .route("/admin/v1/info/summary", get(duo_summary))
        .route("/api/signed", get(signed))
        .route("/api/users/ping", post(body_ping))
        .route("/oauth/token", post(token))
}

/// `GET /api/me`: the account, to working credentials of any kind.
async fn me(
    AxumState(state): AxumState<Arc<State>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let header_key = headers.get("x-api-key").and_then(|v| v.to_str().ok());
    let authorization = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let presented = header_key
        .or_else(|| query.get("api_key").map(String::as_str))
        .map(str::to_owned);
    // ConnectSecure's `client-auth-token`: base64(user:password) alone.
    let client_token = headers
        .get("client-auth-token")
        .and_then(|v| v.to_str().ok());
    let valid = if let Some(key) = &presented {
        key == KEYED_API_KEY
    } else if let Some(token) = client_token {
        basic(&format!("Basic {token}"))
            .is_some_and(|(user, password)| user == KEYED_USERNAME && password == KEYED_PASSWORD)
    } else if let Some(token) = authorization.strip_prefix("Bearer ") {
        state.keyed.tokens().issued.get(token).copied() == Some(true)
    } else if let Some((user, password)) = basic(authorization) {
        (user == KEYED_USERNAME && password == KEYED_PASSWORD)
            || (user == format!("{KEYED_USERNAME}/token") && password == KEYED_API_TOKEN)
    } else {
        false
    };
    if !valid {
        // Echoes what it refused, as some APIs do.
        let shown = presented
            .or_else(|| client_token.map(str::to_owned))
            .unwrap_or_else(|| authorization.to_owned());
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "unauthorized", "message": format!("invalid credentials: {shown}")})),
        )
            .into_response();
    }
    Json(json!({"id": "keyed-account-1", "name": "Keyed Account", "plan": "team"})).into_response()
}

/// `GET /api/ping`: `204 No Content` to working credentials, as `/api/me`
/// refuses others.
async fn ping(
    state: AxumState<Arc<State>>,
    query: Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let answer = me(state, query, headers).await;
    if answer.status().is_success() {
        return StatusCode::NO_CONTENT.into_response();
    }
    answer
}

/// The API version `/api/versioned` requires in `Keyed-Version`.
pub const KEYED_VERSION: &str = "2026-01";

/// `GET /api/versioned`: as `/api/me`, for a request that names the API
/// version [`KEYED_VERSION`] in the `Keyed-Version` header; 400 otherwise.
async fn versioned(
    state: AxumState<Arc<State>>,
    query: Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let version = headers
        .get("keyed-version")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if version != KEYED_VERSION {
        // Echoes what it refused, as some APIs do.
        return error_body(
            StatusCode::BAD_REQUEST,
            "version_required",
            &format!("Name the API version in Keyed-Version, not {version:?}."),
        );
    }
    me(state, query, headers).await
}

/// `GET /api/both`: as `/api/me`, for a request that sends the API key in
/// `X-Api-Key` and as a bearer token in `Authorization`; 401 otherwise.
async fn both(
    state: AxumState<Arc<State>>,
    query: Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let bearer = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if bearer != Some(KEYED_API_KEY) {
        return error_body(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Send the API key as a bearer token too.",
        );
    }
    me(state, query, headers).await
}

/// `GET /api/accounts/{account}`: as `/api/me` for the account named by
/// its user name, as Twilio's API names the account SID in its paths; 404
/// for another account.
async fn account(
    state: AxumState<Arc<State>>,
    Path(account): Path<String>,
    query: Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if account != KEYED_USERNAME {
        return error_body(
            StatusCode::NOT_FOUND,
            "not_found",
            "The requested resource was not found.",
        );
    }
    me(state, query, headers).await
}

/// `GET /bot{key}/getMe`: the bot, to the key in the path; 401 with
/// Telegram's error body, which does not echo it, otherwise.
async fn bot(Path(bot): Path<String>) -> Response {
    if bot.strip_prefix("bot") != Some(KEYED_API_KEY) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"ok": false, "error_code": 401, "description": "Unauthorized"})),
        )
            .into_response();
    }
    Json(json!({"ok": true, "result": {"id": 7001, "is_bot": true, "first_name": "Keyed bot"}}))
        .into_response()
}

/// `GET /api/signed`: the account, to a request signed with HTTP Message
/// Signatures (RFC 9421, ed25519) by [`KEYED_SIGNING_KEY`] under key id
/// [`KEYED_USERNAME`], covering at least `@method`, `@target-uri` and a
/// `content-digest` that matches the (empty) body, not expired; as
/// Streamline AI's API wants. 401 otherwise.
async fn signed(headers: HeaderMap, uri: axum::http::Uri) -> Response {
    match check_signature(&headers, &uri) {
        Ok(()) => Json(json!({"id": "keyed-account-1", "name": "Keyed Account"})).into_response(),
        Err(problem) => (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_signature", "message": problem})),
        )
            .into_response(),
    }
}

fn check_signature(headers: &HeaderMap, uri: &axum::http::Uri) -> Result<(), String> {
    use ed25519_dalek::Verifier as _;
    use sha2::Digest as _;
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let input = text("signature-input").ok_or("no Signature-Input")?;
    let (label, params) = input.split_once('=').ok_or("a malformed Signature-Input")?;
    let signature = text("signature")
        .and_then(|s| s.strip_prefix(&format!("{label}=:")))
        .and_then(|s| s.strip_suffix(':'))
        .and_then(|s| BASE64.decode(s).ok())
        .ok_or("no Signature for the label")?;
    let (inner, rest) = params
        .strip_prefix('(')
        .and_then(|p| p.split_once(')'))
        .ok_or("a malformed Signature-Input")?;
    let components: Vec<&str> = inner
        .split(' ')
        .filter(|c| !c.is_empty())
        .map(|c| c.trim_matches('"'))
        .collect();
    for required in ["@method", "@target-uri", "content-digest"] {
        if !components.contains(&required) {
            return Err(format!("the signature does not cover {required}"));
        }
    }
    let param = |name: &str| {
        rest.split(';')
            .find_map(|p| p.strip_prefix(&format!("{name}=")))
            .map(|v| v.trim_matches('"'))
    };
    if param("keyid") != Some(KEYED_USERNAME) {
        return Err("unknown key id".to_owned());
    }
    let now = chrono::Utc::now().timestamp();
    if param("expires")
        .and_then(|e| e.parse::<i64>().ok())
        .is_some_and(|expires| expires < now)
    {
        return Err("the signature expired".to_owned());
    }
    let digest = format!("sha-256=:{}:", BASE64.encode(sha2::Sha256::digest(b"")));
    if text("content-digest") != Some(digest.as_str()) {
        return Err("the content digest does not match the body".to_owned());
    }
    let host = text("host").unwrap_or_default();
    let mut base = String::new();
    for component in &components {
        let value = match *component {
            "@method" => "GET".to_owned(),
            // Under /keyed, which the nested router strips.
            "@target-uri" => format!("http://{host}/keyed{uri}"),
            "@authority" => host.to_ascii_lowercase(),
            "@path" => format!("/keyed{}", uri.path()),
            name => text(name)
                .ok_or_else(|| format!("the signature covers {name}, which is not sent"))?
                .trim()
                .to_owned(),
        };
        base.push_str(&format!("\"{component}\": {value}\n"));
    }
    base.push_str(&format!("\"@signature-params\": {params}"));
    let key = ed25519_dalek::VerifyingKey::from_bytes(&KEYED_VERIFYING_KEY)
        .map_err(|_| "the sim's key is broken")?;
    let signature = ed25519_dalek::Signature::from_slice(&signature)
        .map_err(|_| "a signature of the wrong length")?;
    key.verify(base.as_bytes(), &signature)
        .map_err(|_| "the signature does not verify".to_owned())
}

/// How far a Duo-signed request's `Date` may be from the sim's clock.
const DUO_SKEW_SECS: i64 = 300;

/// `GET /admin/v1/info/summary`, as Duo's Admin API answers it: to a
/// request signed with [`KEYED_USERNAME`] as the integration key and
/// [`KEYED_PASSWORD`] as the secret key (Duo's v2 signature, HMAC-SHA1 or
/// HMAC-SHA512 by the signature's length) and a `Date` within five
/// minutes; otherwise 401 with Duo's error body.
async fn duo_summary(headers: HeaderMap, Query(query): Query<Vec<(String, String)>>) -> Response {
    let refused = |message: &str| {
        (
            StatusCode::UNAUTHORIZED,
            Json(json!({"stat": "FAIL", "code": 40101, "message": message})),
        )
            .into_response()
    };
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let Some(date) = text("date") else {
        return refused("Missing request credentials");
    };
    let fresh = chrono::DateTime::parse_from_rfc2822(date)
        .is_ok_and(|at| (chrono::Utc::now() - at.to_utc()).num_seconds().abs() <= DUO_SKEW_SECS);
    if !fresh {
        return refused("Invalid request timestamp");
    }
    let Some((ikey, signature)) = text("authorization").and_then(basic) else {
        return refused("Missing request credentials");
    };
    // As the client names it, port included (Duo's clients sign the
    // configured host).
    let host = text("host").unwrap_or_default().to_ascii_lowercase();
    let canonical = [
        date.to_owned(),
        "GET".to_owned(),
        host,
        "/keyed/admin/v1/info/summary".to_owned(),
        duo_params(&query),
    ]
    .join("\n");
    let expected = duo_hex(&duo_mac(signature.len() == 40, &canonical));
    if ikey != KEYED_USERNAME || signature != expected {
        return refused("Invalid signature in request credentials");
    }
    Json(json!({"stat": "OK", "response": {"user_count": 3, "integration_count": 1}}))
        .into_response()
}

/// Duo's canonical parameters: names and values percent-encoded (RFC
/// 3986's unreserved characters left), sorted, joined with `&`.
fn duo_params(query: &[(String, String)]) -> String {
    const UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    let encode = |text: &str| percent_encoding::utf8_percent_encode(text, UNRESERVED).to_string();
    let mut pairs: Vec<(String, String)> = query
        .iter()
        .map(|(name, value)| (encode(name), encode(value)))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn duo_mac(sha1: bool, text: &str) -> Vec<u8> {
    use hmac::Mac as _;
    let key = KEYED_PASSWORD.as_bytes();
    if sha1 {
        let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(key).expect("any key length");
        mac.update(text.as_bytes());
        mac.finalize().into_bytes().to_vec()
    } else {
        let mut mac = hmac::Hmac::<sha2::Sha512>::new_from_slice(key).expect("any key length");
        mac.update(text.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }
}

fn duo_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `GET /moved/bot{key}/getMe`: a permanent redirect to the same path
/// with a trailing slash, as a gateway in front of an API may answer:
/// the `Location` repeats the key.
async fn moved(Path(bot): Path<String>) -> Response {
    (
        StatusCode::MOVED_PERMANENTLY,
        [(
            axum::http::header::LOCATION,
            format!("/keyed/moved/{bot}/getMe/"),
        )],
    )
        .into_response()
}

/// `POST /api/users/ping`: `"PONG!"` to the key in the JSON body's
/// `key`; 401 echoing what was sent otherwise, and 400 to a body that is
/// not JSON.
async fn body_ping(headers: HeaderMap, body: Bytes) -> Response {
    let json_body = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let Some(body) = json_body
        .then(|| serde_json::from_slice::<serde_json::Value>(&body).ok())
        .flatten()
    else {
        return error_body(StatusCode::BAD_REQUEST, "invalid_json", "Send a JSON body.");
    };
    let key = body.get("key").and_then(|k| k.as_str()).unwrap_or_default();
    if key != KEYED_API_KEY {
        // Echoes what it refused, as some APIs do.
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"status": "error", "name": "Invalid_Key", "message": format!("Invalid API key: {key}")})),
        )
            .into_response();
    }
    Json(json!("PONG!")).into_response()
}

/// `POST /oauth/token`: an access token for the `client_credentials`
/// grant, the client in a Basic header or the body.
async fn token(
    AxumState(state): AxumState<Arc<State>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let json = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let params: HashMap<String, String> = if json {
        serde_json::from_slice(&body).unwrap_or_default()
    } else {
        url::form_urlencoded::parse(&body).into_owned().collect()
    };
    if params.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return error_body(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "Only client_credentials is supported.",
        );
    }
    let authorization = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let client = basic(authorization).map(|(id, secret)| (form_decode(&id), form_decode(&secret)));
    let client = client.or_else(|| {
        Some((
            params.get("client_id")?.clone(),
            params.get("client_secret")?.clone(),
        ))
    });
    let Some((id, secret)) = client else {
        return error_body(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "No client authentication.",
        );
    };
    if id != KEYED_CLIENT_ID || secret != KEYED_CLIENT_SECRET {
        return error_body(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            &format!("Client authentication failed for {id}:{secret}."),
        );
    }
    let mut tokens = state.keyed.tokens();
    tokens.granted += 1;
    let access_token = format!("keyed_at_{}", tokens.granted);
    tokens.issued.insert(access_token.clone(), true);
    Json(json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": TOKEN_SECS,
    }))
    .into_response()
}

/// The user name and password of a Basic `Authorization` value.
fn basic(authorization: &str) -> Option<(String, String)> {
    let encoded = authorization.strip_prefix("Basic ")?;
    let decoded = String::from_utf8(BASE64.decode(encoded.trim()).ok()?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// `text` form-urlencoded decoded (RFC 6749 2.3.1 encodes the client id
/// and secret before Basic).
fn form_decode(text: &str) -> String {
    url::form_urlencoded::parse(format!("x={text}").as_bytes())
        .next()
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default()
}

impl SimHandle {
    /// `{base_url}/keyed`: the root of the API of typed-in credentials;
    /// `/api/me` answers the account, `/oauth/token` issues client
    /// credentials tokens.
    pub fn keyed_url(&self) -> String {
        format!("{}/keyed", self.base_url())
    }

    /// The catalog file of `keyed`, an `api_key` entry whose key goes in
    /// the `X-Api-Key` header, validated at `/keyed/{section}/me` with the
    /// setting `section` (only `api` is allowed).
    pub fn keyed_catalog_entry(&self) -> String {
        format!(
            "display_name = \"Keyed\"\nauth = \"api_key\"\n\
             docs_url = \"https://developer.keyed.example/auth\"\n\
             default_sync_interval_secs = 3600\n\n\
             [[settings]]\nname = \"section\"\nlabel = \"API section\"\nallowed = [\"api\"]\n\n\
             [api_key]\nheader = \"X-Api-Key\"\nverify_url = \"{}/{{section}}/me\"\n\n\
             [[form]]\nname = \"api_key\"\nlabel = \"Keyed API key\"\nkind = \"password\"\n\
             help = \"Under Settings, API\"\n",
            self.keyed_url()
        )
    }

    /// The catalog file of `keyed-basic`, a `basic` entry validated at
    /// `/keyed/api/me` with Keyed's user name and password.
    pub fn keyed_basic_catalog_entry(&self) -> String {
        format!(
            "display_name = \"Keyed Basic\"\nauth = \"basic\"\n\
             docs_url = \"https://developer.keyed.example/basic\"\n\
             default_sync_interval_secs = 3600\n\n\
             [basic]\nverify_url = \"{}/api/me\"\n\n\
             [[form]]\nname = \"username\"\nlabel = \"Keyed user name\"\nkind = \"text\"\n\n\
             [[form]]\nname = \"password\"\nlabel = \"Keyed password\"\nkind = \"password\"\n",
            self.keyed_url()
        )
    }

    /// The catalog file of `keyed-service`, an `oauth2_client_credentials`
    /// entry checked at Keyed's token endpoint alone (no `verify_url`).
    pub fn keyed_service_catalog_entry(&self) -> String {
        format!(
            "display_name = \"Keyed Service\"\nauth = \"oauth2_client_credentials\"\n\
             docs_url = \"https://developer.keyed.example/service\"\n\
             default_sync_interval_secs = 3600\n\n\
             [oauth2_client_credentials]\ntoken_url = \"{}/oauth/token\"\n\
             client_auth = \"client_secret_basic\"\n",
            self.keyed_url()
        )
    }

    /// How many access tokens Keyed's token endpoint has issued.
    pub fn keyed_tokens_issued(&self) -> u64 {
        self.inner.state.keyed.tokens().granted
    }

    /// Makes every access token Keyed has issued stop working, as when
    /// they expire early.
    pub fn expire_keyed_tokens(&self) {
        for valid in self.inner.state.keyed.tokens().issued.values_mut() {
            *valid = false;
        }
    }
}
