//! Trello under `/trello`: three-legged OAuth 1.0a (`/1/OAuthGetRequestToken`,
//! `/1/OAuthAuthorizeToken`, `/1/OAuthGetAccessToken`) and the REST routes
//! the connector reads (`/1/members/me`, `/1/members/me/boards`,
//! `/1/boards/{id}/cards`, `/1/boards/{id}/actions`, `/1/cards/{id}`), with
//! Trello's quirks: form-encoded token answers, tokens that die after 30
//! days unless `expiration=never` was asked for, bare JSON arrays,
//! plain-text 401s, JSON 429s without `Retry-After`, and lower-case
//! `x-rate-limit-api-*` headers on every answer of the REST routes. The
//! boards' content and the actions changes leave on them live in
//! [`boards`](mod@boards).
//!
//! Every request's OAuth 1.0a signature is checked (HMAC-SHA1 only), and
//! unknown consumer keys, bad signatures, timestamps more than five
//! minutes off and nonces seen before are refused with a plain-text 401.

mod boards;
mod oauth1;

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path, Query, State as AxumState},
    http::{
        HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri,
        header::{CONTENT_TYPE, HOST, LOCATION},
    },
    response::{IntoResponse, Response},
    routing::{delete, get, post},
};
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::{
    TrelloChange,
    config::{TrelloConfig, TrelloMemberConfig},
    fault::{self, Fault},
    html,
    state::State,
};
use boards::{Board, Ids, Member};
use oauth1::{Malformed, Request, Signed};

/// Where [`router`] is mounted: signatures cover the full path.
pub(crate) const PREFIX: &str = "/trello";

/// How far a request's `oauth_timestamp` may be from the clock.
const TIMESTAMP_WINDOW_SECS: i64 = 300;

/// The most cards `/boards/{id}/cards` returns per request.
const MAX_LIMIT: usize = 1000;

pub(crate) fn router() -> Router<Arc<State>> {
    Router::new()
        .route("/1/OAuthGetRequestToken", post(request_token))
        .route("/1/OAuthAuthorizeToken", get(authorize))
        .route("/1/OAuthGetAccessToken", post(access_token))
        .route("/1/members/me", get(member))
        .route("/1/members/me/boards", get(boards))
        .route("/1/boards/{id}/cards", get(cards))
        .route("/1/boards/{id}/actions", get(actions))
        .route("/1/cards/{id}", get(card))
        .route("/1/tokens/{token}", delete(revoke_token))
}

/// The fault target of Trello member `member`.
pub(crate) fn fault_target(member: &str) -> String {
    format!("trello:{member}")
}

/// What the simulated Trello knows of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrelloToken {
    /// The member who approved it.
    pub member: String,
    /// The `scope` approved, comma-separated (`read`, `read,write`, ...).
    pub scope: String,
    /// The `expiration` approved: `1hour`, `1day`, `30days` (Trello's
    /// default) or `never`.
    pub expiration: String,
    /// When the token stops working; `None` for `never`.
    pub expires_at: Option<DateTime<Utc>>,
}

/// Trello's consumer, members and outstanding tokens.
#[derive(Debug)]
pub(crate) struct Trello {
    config: TrelloConfig,
    members: Vec<Member>,
    /// Makes every object id unique.
    ids: Ids,
    request_tokens: HashMap<String, RequestGrant>,
    access_tokens: HashMap<String, AccessGrant>,
    /// Nonces seen, by consumer key, token, timestamp and nonce, with the
    /// timestamp again for pruning.
    nonces: HashMap<(String, String, i64, String), i64>,
    /// Requests per rate-limit bucket (`token:…` or `key:…`).
    buckets: HashMap<String, Bucket>,
    /// Makes every issued token unique.
    issued: u64,
}

/// A request token, from its request to its exchange.
#[derive(Debug)]
struct RequestGrant {
    secret: String,
    callback: String,
    /// Set when the member approved it.
    approval: Option<Approval>,
}

#[derive(Debug)]
struct Approval {
    member: String,
    verifier: String,
    scope: String,
    expiration: String,
}

#[derive(Debug)]
struct AccessGrant {
    secret: String,
    token: TrelloToken,
}

#[derive(Debug)]
struct Bucket {
    start: Instant,
    used: u32,
}

impl Trello {
    pub(crate) fn new(config: &TrelloConfig) -> Self {
        let mut ids = Ids::default();
        let members = config
            .members
            .iter()
            .zip(0_i64..)
            .map(|(member, index)| boards::seed_member(member, index, &mut ids))
            .collect();
        Self {
            config: config.clone(),
            members,
            ids,
            request_tokens: HashMap::new(),
            access_tokens: HashMap::new(),
            nonces: HashMap::new(),
            buckets: HashMap::new(),
            issued: 0,
        }
    }

    /// See [`SimHandle::set_trello_member`](crate::SimHandle::set_trello_member).
    pub(crate) fn set_member(&mut self, config: &TrelloMemberConfig) {
        let index = self
            .members
            .iter()
            .position(|member| member.username == config.username)
            .unwrap_or(self.members.len());
        let seeded = boards::seed_member(
            config,
            i64::try_from(index).unwrap_or(i64::MAX),
            &mut self.ids,
        );
        match self.members.get_mut(index) {
            Some(member) => *member = seeded,
            None => self.members.push(seeded),
        }
    }

    /// See [`SimHandle::set_trello_limits`](crate::SimHandle::set_trello_limits).
    pub(crate) fn set_limits(&mut self, token_limit: u32, key_limit: u32) {
        self.config.token_limit = token_limit;
        self.config.key_limit = key_limit;
    }

    /// See [`SimHandle::change_trello`](crate::SimHandle::change_trello).
    pub(crate) fn change(&mut self, member: &str, change: &TrelloChange) -> Vec<String> {
        let Some(member) = self.members.iter_mut().find(|m| m.username == member) else {
            return Vec::new();
        };
        member.change(change, &mut self.ids)
    }

    /// See [`SimHandle::trello_boards`](crate::SimHandle::trello_boards).
    pub(crate) fn open_boards(&self, member: &str) -> Vec<(String, DateTime<Utc>)> {
        let mut boards: Vec<_> = self
            .member(member)
            .into_iter()
            .flat_map(|member| &member.boards)
            .filter(|board| !board.closed)
            .map(|board| (board.id.clone(), board.last_activity))
            .collect();
        boards.sort_unstable();
        boards
    }

    /// See [`SimHandle::trello_cards`](crate::SimHandle::trello_cards).
    pub(crate) fn open_cards(&self, member: &str) -> Vec<(String, DateTime<Utc>)> {
        let mut cards: Vec<_> = self
            .member(member)
            .into_iter()
            .flat_map(|member| &member.boards)
            .filter(|board| !board.closed)
            .flat_map(|board| &board.cards)
            .filter(|card| !card.closed)
            .map(|card| (card.id.clone(), card.last_activity))
            .collect();
        cards.sort_unstable();
        cards
    }

    /// Board `id` as member `caller` may see it: theirs (with its owner),
    /// or why not (401 when another member's or one they left, 404 when
    /// there is no such board).
    fn board(&self, caller: &str, id: &str) -> Result<(&Member, &Board), Refusal> {
        let owner = self.members.iter().find_map(|member| {
            let board = member.boards.iter().find(|board| board.id == id)?;
            Some((member, board))
        });
        match owner {
            Some((member, board)) if member.username == caller => Ok((member, board)),
            Some(_) => Err(Refusal::Unauthorized("unauthorized permission requested")),
            None if self
                .members
                .iter()
                .any(|member| member.left.iter().any(|board| board.id == id)) =>
            {
                Err(Refusal::Unauthorized("unauthorized permission requested"))
            }
            None => Err(Refusal::NotFound),
        }
    }

    /// A new unique token of `len` hex digits.
    fn next(&mut self, kind: &str, len: usize) -> String {
        self.issued += 1;
        let seed = format!("{kind}{}{}", self.issued, self.config.consumer_secret);
        let hex: String = Sha256::digest(seed.as_bytes())
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        hex[..len.min(hex.len())].to_owned()
    }

    /// What is known of access token `token`.
    pub(crate) fn token(&self, token: &str) -> Option<TrelloToken> {
        self.access_tokens
            .get(token)
            .map(|grant| grant.token.clone())
    }

    /// Forgets access token `token`, as revoking the app in Trello's
    /// settings does; `false` when it is unknown.
    pub(crate) fn revoke(&mut self, token: &str) -> bool {
        self.access_tokens.remove(token).is_some()
    }

    fn member(&self, username: &str) -> Option<&Member> {
        self.members
            .iter()
            .find(|member| member.username == username)
    }

    /// Checks what every signed request shares: the consumer key, the
    /// signature method, the timestamp, the signature with `token_secret`,
    /// and then the nonce, which is remembered. The text of the 401 when
    /// one fails.
    fn check(&mut self, signed: &Signed, token_secret: &str) -> Result<(), &'static str> {
        if signed.consumer_key != self.config.consumer_key {
            return Err("invalid key");
        }
        if signed.signature_method != "HMAC-SHA1" {
            return Err("invalid signature method");
        }
        let now = Utc::now().timestamp();
        if (now - signed.timestamp).abs() > TIMESTAMP_WINDOW_SECS {
            return Err("invalid timestamp");
        }
        if !signed.verify(&self.config.consumer_secret, token_secret) {
            return Err("invalid signature");
        }
        self.nonces
            .retain(|_, timestamp| now - *timestamp <= TIMESTAMP_WINDOW_SECS);
        let key = (
            signed.consumer_key.clone(),
            signed.token.clone().unwrap_or_default(),
            signed.timestamp,
            signed.nonce.clone(),
        );
        if self.nonces.insert(key, signed.timestamp).is_some() {
            return Err("invalid nonce");
        }
        Ok(())
    }

    /// Counts a request of `token` against its own and the key's limits:
    /// the rate-limit headers, or the 429 that refuses it.
    fn limit(&mut self, token: &str) -> Result<HeaderMap, Refusal> {
        let window = Duration::from_millis(self.config.limit_window_ms);
        let now = Instant::now();
        let mut take = |bucket: String, max: u32| {
            let bucket = self.buckets.entry(bucket).or_insert(Bucket {
                start: now,
                used: 0,
            });
            if now.duration_since(bucket.start) >= window {
                *bucket = Bucket {
                    start: now,
                    used: 0,
                };
            }
            bucket.used = bucket.used.saturating_add(1);
            (bucket.used <= max, max.saturating_sub(bucket.used))
        };
        let (token_ok, token_remaining) = take(format!("token:{token}"), self.config.token_limit);
        let (key_ok, key_remaining) = take(
            format!("key:{}", self.config.consumer_key),
            self.config.key_limit,
        );
        let window_ms = self.config.limit_window_ms.to_string();
        let mut headers = HeaderMap::new();
        for (bucket, max, remaining) in [
            ("token", self.config.token_limit, token_remaining),
            ("key", self.config.key_limit, key_remaining),
        ] {
            for (name, value) in [
                ("interval-ms", window_ms.clone()),
                ("max", max.to_string()),
                ("remaining", remaining.to_string()),
            ] {
                let name = format!("x-rate-limit-api-{bucket}-{name}");
                if let (Ok(name), Ok(value)) =
                    (HeaderName::try_from(name), HeaderValue::try_from(value))
                {
                    headers.insert(name, value);
                }
            }
        }
        match (token_ok, key_ok) {
            (true, true) => Ok(headers),
            (false, _) => Err(Refusal::Limited(
                Box::new(headers),
                "API_TOKEN_LIMIT_EXCEEDED",
            )),
            (true, false) => Err(Refusal::Limited(
                Box::new(headers),
                "API_KEY_LIMIT_EXCEEDED",
            )),
        }
    }
}

/// The parts of a request its signature covers.
struct Incoming {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    form: Vec<(String, String)>,
}

impl Incoming {
    fn new(method: Method, uri: Uri, headers: HeaderMap, body: &[u8]) -> Self {
        let is_form = headers
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.starts_with("application/x-www-form-urlencoded"));
        let form = if is_form {
            oauth1::form_pairs(&String::from_utf8_lossy(body))
        } else {
            Vec::new()
        };
        Self {
            method,
            uri,
            headers,
            form,
        }
    }

    /// The request's OAuth parameters; a 400 or 401 when they are missing
    /// or malformed.
    fn signed(&self) -> Result<Signed, Refusal> {
        let host = self
            .headers
            .get(HOST)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default();
        let request = Request {
            method: self.method.as_str(),
            uri: oauth1::base_string_uri(host, &format!("{PREFIX}{}", self.uri.path())),
            query: self.uri.query(),
            headers: &self.headers,
            form: &self.form,
        };
        match Signed::read(&request) {
            Ok(Some(signed)) => Ok(signed),
            Ok(None) => Err(Refusal::Unauthorized("invalid key")),
            Err(Malformed(message)) => Err(Refusal::BadRequest(message)),
        }
    }
}

/// `POST /1/OAuthGetRequestToken`: a request token for the consumer,
/// signed without a token; `oauth_callback` is required.
async fn request_token(
    AxumState(state): AxumState<Arc<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let incoming = Incoming::new(method, uri, headers, &body);
    let signed = match incoming.signed() {
        Ok(signed) => signed,
        Err(refusal) => return refusal.into_response(),
    };
    state.trello(|trello| {
        if let Err(message) = trello.check(&signed, "") {
            return unauthorized(message);
        }
        let Some(callback) = signed.callback.clone().filter(|c| !c.is_empty()) else {
            return text(StatusCode::BAD_REQUEST, "oauth_callback required");
        };
        let token = trello.next("request", 32);
        let secret = trello.next("request-secret", 32);
        let body = format!(
            "oauth_token={token}&oauth_token_secret={secret}&oauth_callback_confirmed=true"
        );
        trello.request_tokens.insert(
            token,
            RequestGrant {
                secret,
                callback,
                approval: None,
            },
        );
        form(body)
    })
}

/// The query of the authorize endpoint.
#[derive(Deserialize)]
struct AuthorizeQuery {
    oauth_token: Option<String>,
    expiration: Option<String>,
    scope: Option<String>,
    name: Option<String>,
    /// `page` shows the consent page; `granted` or `denied` is what its
    /// buttons send.
    consent: Option<String>,
}

/// `GET /1/OAuthAuthorizeToken`: the first member approves at once (302
/// to the callback with `oauth_token` and `oauth_verifier`), or a consent
/// page asks first. A denial goes back to the callback without a verifier
/// (with `oauth_problem=user_refused`).
async fn authorize(
    AxumState(state): AxumState<Arc<State>>,
    Query(raw): Query<Vec<(String, String)>>,
    Query(query): Query<AuthorizeQuery>,
) -> Response {
    let token = query.oauth_token.clone().unwrap_or_default();
    let expiration = query
        .expiration
        .clone()
        .unwrap_or_else(|| "30days".to_owned());
    let scope = query.scope.clone().unwrap_or_else(|| "read".to_owned());
    if !matches!(expiration.as_str(), "1hour" | "1day" | "30days" | "never") {
        return error_page("Invalid expiration.");
    }
    if scope
        .split(',')
        .any(|scope| !matches!(scope, "read" | "write" | "account"))
    {
        return error_page("Invalid scope.");
    }
    let checked = state.trello(|trello| {
        let consent_page = trello.config.consent_page;
        let member = trello.members.first().map(|member| member.username.clone());
        let grant = trello.request_tokens.get(&token)?;
        Some((grant.callback.clone(), member, consent_page))
    });
    let Some((callback, member, consent_page)) = checked else {
        return error_page("Invalid token.");
    };
    let Some(member) = member else {
        return error_page("No Trello member can sign in.");
    };
    match query.consent.as_deref() {
        Some("granted") => {}
        Some("denied") => {
            return found(
                &callback,
                &[("oauth_token", &token), ("oauth_problem", "user_refused")],
            );
        }
        Some("page") => return consent(&member, &query, &scope, &raw),
        _ if consent_page => return consent(&member, &query, &scope, &raw),
        _ => {}
    }
    let verifier = state.trello(|trello| {
        let verifier = trello.next("verifier", 32);
        let grant = trello.request_tokens.get_mut(&token)?;
        grant.approval = Some(Approval {
            member,
            verifier: verifier.clone(),
            scope,
            expiration,
        });
        Some(verifier)
    });
    let Some(verifier) = verifier else {
        return error_page("Invalid token.");
    };
    if callback == "oob" {
        return html(
            StatusCode::OK,
            &format!(
                "<h1>You have granted access</h1><p>Your verification code is</p><pre>{}</pre>",
                html::escape(&verifier)
            ),
        );
    }
    found(
        &callback,
        &[("oauth_token", &token), ("oauth_verifier", &verifier)],
    )
}

/// The consent page: the request's parameters as hidden fields, and
/// "Deny" and "Allow" buttons that send them back with `consent`.
fn consent(
    member: &str,
    query: &AuthorizeQuery,
    scope: &str,
    raw: &[(String, String)],
) -> Response {
    let app = query.name.as_deref().unwrap_or("An application");
    html(
        StatusCode::OK,
        &format!(
            "<h1>Let {} use your account?</h1><p>Signed in as @{}. It asks to: {}.</p>{}",
            html::escape(app),
            html::escape(member),
            html::escape(scope),
            html::consent_form(raw, "Deny")
        ),
    )
}

/// `POST /1/OAuthGetAccessToken`: exchanges an approved request token
/// (signed with its secret, with its `oauth_verifier`) for an access
/// token, once.
async fn access_token(
    AxumState(state): AxumState<Arc<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let incoming = Incoming::new(method, uri, headers, &body);
    let signed = match incoming.signed() {
        Ok(signed) => signed,
        Err(refusal) => return refusal.into_response(),
    };
    let member = state.trello(|trello| {
        let token = signed.token.as_deref().unwrap_or_default();
        let Some(grant) = trello.request_tokens.get(token) else {
            return Err(Refusal::Unauthorized("invalid token"));
        };
        let secret = grant.secret.clone();
        trello
            .check(&signed, &secret)
            .map_err(Refusal::Unauthorized)?;
        let approved = trello
            .request_tokens
            .get(token)
            .and_then(|grant| grant.approval.as_ref())
            .filter(|approval| Some(approval.verifier.as_str()) == signed.verifier.as_deref());
        match approved {
            Some(approval) => Ok(approval.member.clone()),
            None => Err(Refusal::Unauthorized("invalid verifier")),
        }
    });
    let member = match member {
        Ok(member) => member,
        Err(refusal) => return refusal.into_response(),
    };
    if let Some(response) = fault::suffer(state.arrive(&fault_target(&member)), |fault| {
        answer(fault, false)
    })
    .await
    {
        return response;
    }
    state.trello(|trello| {
        let token = signed.token.as_deref().unwrap_or_default();
        let Some(approval) = trello
            .request_tokens
            .remove(token)
            .and_then(|grant| grant.approval)
        else {
            return unauthorized("invalid token");
        };
        let access = trello.next("access", 64);
        let secret = trello.next("access-secret", 32);
        let lifetime = match approval.expiration.as_str() {
            "1hour" => Some(TimeDelta::hours(1)),
            "1day" => Some(TimeDelta::days(1)),
            "never" => None,
            _ => Some(TimeDelta::days(30)),
        };
        let body = format!("oauth_token={access}&oauth_token_secret={secret}");
        trello.access_tokens.insert(
            access,
            AccessGrant {
                secret,
                token: TrelloToken {
                    member: approval.member,
                    scope: approval.scope,
                    expiration: approval.expiration,
                    expires_at: lifetime.map(|lifetime| Utc::now() + lifetime),
                },
            },
        );
        form(body)
    })
}

/// `DELETE /1/tokens/{token}`: revokes the token the request is signed
/// with; any other token is refused, as Trello refuses deleting another
/// member's token.
async fn revoke_token(
    AxumState(state): AxumState<Arc<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    axum::extract::Path(token): axum::extract::Path<String>,
) -> Response {
    let incoming = Incoming::new(method, uri, headers, &[]);
    let caller = match caller(&state, &incoming).await {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    if caller.token != token {
        return unauthorized("unauthorized permission requested");
    }
    state.trello(|trello| trello.revoke(&token));
    (caller.headers, Json(serde_json::json!({"_value": null}))).into_response()
}

/// The caller of a REST route, once signed, unfaulted and within limits.
struct Caller {
    member: String,
    scope: String,
    /// The access token the request was signed with.
    token: String,
    /// The `x-rate-limit-api-*` headers of the answer.
    headers: HeaderMap,
}

/// Checks a REST request: signature with the access token's secret,
/// nonce, expiry, `read` scope; then faults and rate limits.
async fn caller(state: &State, incoming: &Incoming) -> Result<Caller, Response> {
    let signed = incoming.signed().map_err(IntoResponse::into_response)?;
    let (token, member, scope) = state
        .trello(|trello| {
            let token = signed.token.clone().unwrap_or_default();
            let Some(grant) = trello.access_tokens.get(&token) else {
                return Err(Refusal::Unauthorized("invalid token"));
            };
            let secret = grant.secret.clone();
            let granted = grant.token.clone();
            trello
                .check(&signed, &secret)
                .map_err(Refusal::Unauthorized)?;
            if granted.expires_at.is_some_and(|at| at <= Utc::now()) {
                return Err(Refusal::Unauthorized("invalid token"));
            }
            if !granted.scope.split(',').any(|scope| scope == "read") {
                return Err(Refusal::Unauthorized("unauthorized permission requested"));
            }
            Ok((token, granted.member, granted.scope))
        })
        .map_err(IntoResponse::into_response)?;
    if let Some(response) = fault::suffer(state.arrive(&fault_target(&member)), |fault| {
        answer(fault, true)
    })
    .await
    {
        return Err(response);
    }
    let headers = state
        .trello(|trello| trello.limit(&token))
        .map_err(IntoResponse::into_response)?;
    Ok(Caller {
        member,
        scope,
        token: token.clone(),
        headers,
    })
}

/// `GET /1/members/me`: the token's member; `email` only with the
/// `account` scope.
async fn member(
    AxumState(state): AxumState<Arc<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let incoming = Incoming::new(method, uri, headers, &[]);
    let caller = match caller(&state, &incoming).await {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    let body = state.trello(|trello| {
        trello
            .member(&caller.member)
            .map(|member| member.json(&caller.scope))
    });
    match body {
        Some(body) => (caller.headers, Json(body)).into_response(),
        None => unauthorized("invalid token"),
    }
}

#[derive(Deserialize)]
struct BoardsQuery {
    filter: Option<String>,
}

/// `GET /1/members/me/boards`: a bare array of the member's boards,
/// `filter`ed to `open`, `closed` or `all` (the default).
async fn boards(
    AxumState(state): AxumState<Arc<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Query(query): Query<BoardsQuery>,
) -> Response {
    let incoming = Incoming::new(method, uri, headers, &[]);
    let caller = match caller(&state, &incoming).await {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    let keep: fn(&Board) -> bool = match query.filter.as_deref() {
        Some("open") => |board| !board.closed,
        Some("closed") => |board| board.closed,
        Some("all") | None => |_| true,
        Some(_) => return text(StatusCode::BAD_REQUEST, "invalid value for filter"),
    };
    let body = state.trello(|trello| {
        let member = trello.member(&caller.member)?;
        Some(
            member
                .boards
                .iter()
                .filter(|board| keep(board))
                .map(Board::json)
                .collect::<Vec<_>>(),
        )
    });
    match body {
        Some(boards) => (caller.headers, Json(boards)).into_response(),
        None => unauthorized("invalid token"),
    }
}

#[derive(Deserialize)]
struct CardsQuery {
    limit: Option<String>,
    before: Option<String>,
    since: Option<String>,
    fields: Option<String>,
}

/// `GET /1/boards/{id}/cards`: a bare array of the board's open cards,
/// newest first; `limit` (1 to 1000) caps it, `before`/`since` (an object
/// id or an ISO date) keep the cards created before or after, `fields`
/// (comma-separated) keeps only those fields and `id`. Another member's
/// board, or one the caller left, is a 401; an unknown one a 404.
async fn cards(
    AxumState(state): AxumState<Arc<State>>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Query(query): Query<CardsQuery>,
) -> Response {
    let incoming = Incoming::new(method, uri, headers, &[]);
    let caller = match caller(&state, &incoming).await {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    if !is_object_id(&id) {
        return text(StatusCode::BAD_REQUEST, "invalid id");
    }
    let window = match Window::parse(query.limit.as_deref(), usize::MAX, &query) {
        Ok(window) => window,
        Err(refusal) => return refusal.into_response(),
    };
    let found = state.trello(|trello| -> Result<Vec<Value>, Refusal> {
        let (_, board) = trello.board(&caller.member, &id)?;
        let cards: Vec<Value> = board
            .cards
            .iter()
            .rev()
            .filter(|card| !card.closed && window.keeps(&card.id))
            .take(window.limit)
            .map(|card| only(board.card_json(card), query.fields.as_deref()))
            .collect();
        Ok(cards)
    });
    match found {
        Ok(cards) => (caller.headers, Json(cards)).into_response(),
        Err(refusal) => refusal.into_response(),
    }
}

#[derive(Deserialize)]
struct ActionsQuery {
    limit: Option<String>,
    before: Option<String>,
    since: Option<String>,
    filter: Option<String>,
}

/// `GET /1/boards/{id}/actions`: a bare array of the board's actions,
/// newest first; `limit` (0 to 1000, default 50), `before`/`since` (an
/// action id or an ISO date) and `filter` (`all`, the default, or
/// comma-separated action types) choose which.
async fn actions(
    AxumState(state): AxumState<Arc<State>>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Query(query): Query<ActionsQuery>,
) -> Response {
    let incoming = Incoming::new(method, uri, headers, &[]);
    let caller = match caller(&state, &incoming).await {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    if !is_object_id(&id) {
        return text(StatusCode::BAD_REQUEST, "invalid id");
    }
    let cards = CardsQuery {
        limit: None,
        before: query.before.clone(),
        since: query.since.clone(),
        fields: None,
    };
    let window = match Window::parse(query.limit.as_deref(), 50, &cards) {
        Ok(window) => window,
        Err(refusal) => return refusal.into_response(),
    };
    let types: Option<Vec<&str>> = query
        .filter
        .as_deref()
        .filter(|filter| *filter != "all")
        .map(|filter| filter.split(',').collect());
    let found = state.trello(|trello| -> Result<Vec<Value>, Refusal> {
        let (member, board) = trello.board(&caller.member, &id)?;
        let actions: Vec<Value> = board
            .actions
            .iter()
            .rev()
            .filter(|action| window.keeps(&action.id))
            .filter(|action| {
                types
                    .as_ref()
                    .is_none_or(|types| types.contains(&action.kind))
            })
            .take(window.limit)
            .map(|action| board.action_json(action, member))
            .collect();
        Ok(actions)
    });
    match found {
        Ok(actions) => (caller.headers, Json(actions)).into_response(),
        Err(refusal) => refusal.into_response(),
    }
}

/// `GET /1/cards/{id}`: one card of the caller's boards, archived ones
/// included (`closed: true`); a card on another member's board, or on one
/// the caller left, is a 401, and an unknown (deleted) one a 404.
async fn card(
    AxumState(state): AxumState<Arc<State>>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let incoming = Incoming::new(method, uri, headers, &[]);
    let caller = match caller(&state, &incoming).await {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    if !is_object_id(&id) {
        return text(StatusCode::BAD_REQUEST, "invalid id");
    }
    let found = state.trello(|trello| {
        let mut holders = trello
            .members
            .iter()
            .flat_map(|member| {
                let boards = member.boards.iter().map(move |board| (member, board, true));
                let left = member.left.iter().map(move |board| (member, board, false));
                boards.chain(left)
            })
            .filter_map(|(member, board, readable)| {
                let card = board.cards.iter().find(|card| card.id == id)?;
                Some((member, board, card, readable))
            });
        match holders.next() {
            Some((member, board, card, true)) if member.username == caller.member => {
                Ok(board.card_json(card))
            }
            Some(_) => Err(Refusal::Unauthorized("unauthorized permission requested")),
            None => Err(Refusal::NotFound),
        }
    });
    match found {
        Ok(card) => (caller.headers, Json(card)).into_response(),
        Err(refusal) => refusal.into_response(),
    }
}

/// Which items of a newest-first listing a request asks for.
struct Window {
    limit: usize,
    /// Only ids below this one.
    before: String,
    /// Only ids above this one.
    since: String,
}

impl Window {
    /// `limit` (up to 1000; `default` when absent) and the query's
    /// `before`/`since`; the 400 when one is invalid.
    fn parse(limit: Option<&str>, default: usize, query: &CardsQuery) -> Result<Self, Refusal> {
        let limit = match limit.map(str::parse::<usize>) {
            None => default,
            Some(Ok(limit)) if limit <= MAX_LIMIT => limit,
            Some(_) => return Err(Refusal::BadRequest("invalid value for limit")),
        };
        let (Some(before), Some(since)) = (
            bound(query.before.as_deref(), "ffffffffffffffffffffffff"),
            bound(query.since.as_deref(), ""),
        ) else {
            return Err(Refusal::BadRequest("invalid value for before or since"));
        };
        Ok(Self {
            limit,
            before,
            since,
        })
    }

    fn keeps(&self, id: &str) -> bool {
        id < self.before.as_str() && id > self.since.as_str()
    }
}

/// `item` with only `fields` (comma-separated) and its `id`; all of it
/// without.
fn only(item: Value, fields: Option<&str>) -> Value {
    let (Some(fields), Value::Object(mut object)) = (fields, item.clone()) else {
        return item;
    };
    if fields == "all" {
        return item;
    }
    object.retain(|key, _| key == "id" || fields.split(',').any(|field| field == key));
    Value::Object(object)
}

fn is_object_id(value: &str) -> bool {
    value.len() == 24 && value.bytes().all(|byte| byte.is_ascii_hexdigit())
}

/// A `before`/`since` value as an object id to compare with: the id
/// itself, or the smallest id of an ISO date's second; `default` when
/// absent, `None` when unreadable.
fn bound(value: Option<&str>, default: &str) -> Option<String> {
    let Some(value) = value else {
        return Some(default.to_owned());
    };
    if is_object_id(value) {
        return Some(value.to_ascii_lowercase());
    }
    let at = DateTime::parse_from_rfc3339(value).ok()?;
    Some(format!("{:08x}{:016x}", at.timestamp(), 0))
}

/// Answers a fault in Trello's place. Trello sends no
/// `Retry-After`, so `retry_after_secs` is ignored; an injected 429 has
/// no rate-limit headers. `api` says whether a REST route is asked (where
/// an expired token is a 401).
fn answer(fault: &Fault, api: bool) -> Option<Response> {
    match fault {
        Fault::RateLimited { .. } => {
            Some(limit_exceeded("API_TOKEN_LIMIT_EXCEEDED").into_response())
        }
        Fault::Unavailable { .. } => {
            Some(text(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable"))
        }
        Fault::Redirect { location } => Some(match HeaderValue::from_str(location) {
            Ok(location) => (StatusCode::MOVED_PERMANENTLY, [(LOCATION, location)]).into_response(),
            Err(_) => text(StatusCode::BAD_GATEWAY, "bad redirect"),
        }),
        Fault::StripAuthorization => Some(unauthorized("invalid key")),
        Fault::ExpiredAccessToken if api => Some(unauthorized("invalid token")),
        _ => None,
    }
}

/// Why a request is refused before its route does anything.
#[derive(Debug)]
enum Refusal {
    /// A plain-text 400.
    BadRequest(&'static str),
    /// A plain-text 401.
    Unauthorized(&'static str),
    /// A plain-text 404: no such board or card.
    NotFound,
    /// A 429 with the rate-limit headers and the exhausted limit.
    Limited(Box<HeaderMap>, &'static str),
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Self::BadRequest(message) => text(StatusCode::BAD_REQUEST, message),
            Self::Unauthorized(message) => unauthorized(message),
            Self::NotFound => text(
                StatusCode::NOT_FOUND,
                "The requested resource was not found.",
            ),
            Self::Limited(headers, error) => (*headers, limit_exceeded(error)).into_response(),
        }
    }
}

/// Trello's 429 body.
fn limit_exceeded(error: &str) -> (StatusCode, Json<Value>) {
    (
        StatusCode::TOO_MANY_REQUESTS,
        Json(json!({"error": error, "message": "Rate limit exceeded"})),
    )
}

fn unauthorized(message: &str) -> Response {
    text(StatusCode::UNAUTHORIZED, message)
}

fn text(status: StatusCode, message: &str) -> Response {
    (
        status,
        [(CONTENT_TYPE, "text/plain; charset=utf-8")],
        message.to_owned(),
    )
        .into_response()
}

/// A form-encoded token answer.
fn form(body: String) -> Response {
    (
        StatusCode::OK,
        [(CONTENT_TYPE, "application/x-www-form-urlencoded")],
        body,
    )
        .into_response()
}

fn html(status: StatusCode, body: &str) -> Response {
    html::document(status, Some("Trello"), body)
}

fn error_page(message: &str) -> Response {
    html(
        StatusCode::BAD_REQUEST,
        &format!(
            "<h1>Something went wrong</h1><p>{}</p>",
            html::escape(message)
        ),
    )
}

/// A 302 to `uri` with `params` added to its query.
fn found(uri: &str, params: &[(&str, &str)]) -> Response {
    let query: Vec<String> = params
        .iter()
        .map(|(name, value)| format!("{name}={}", percent_encode(value)))
        .collect();
    let separator = if uri.contains('?') { '&' } else { '?' };
    let location = format!("{uri}{separator}{}", query.join("&"));
    match HeaderValue::from_str(&location) {
        Ok(location) => (StatusCode::FOUND, [(LOCATION, location)]).into_response(),
        Err(_) => error_page("Invalid callback."),
    }
}

fn percent_encode(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TrelloMemberConfig;

    fn trello() -> Trello {
        Trello::new(
            &TrelloConfig::default()
                .member(TrelloMemberConfig::new("ada").board(3).closed_board(2))
                .member(TrelloMemberConfig::new("bob").board(1)),
        )
    }

    #[test]
    fn seeding_is_deterministic_with_24_hex_ids_in_creation_order() {
        let (a, b) = (trello(), trello());

        assert_eq!(format!("{:?}", a.members), format!("{:?}", b.members));
        let ada = &a.members[0];
        assert_eq!(ada.full_name, "Ada");
        let cards: Vec<&str> = ada.boards[0].cards.iter().map(|c| c.id.as_str()).collect();
        assert!(cards.iter().all(|id| is_object_id(id)), "{cards:?}");
        assert!(cards.windows(2).all(|pair| pair[0] < pair[1]), "{cards:?}");
        let ids: std::collections::HashSet<&str> = a
            .members
            .iter()
            .flat_map(|m| m.boards.iter().map(|b| b.id.as_str()))
            .collect();
        assert_eq!(ids.len(), 3);
    }

    #[test]
    fn dates_are_iso_with_milliseconds_and_z() {
        assert_eq!(boards::iso(boards::epoch()), "2024-01-01T08:00:00.000Z");
    }

    #[test]
    fn bounds_take_ids_or_iso_dates() {
        assert_eq!(
            bound(Some("65A1B2C3D4E5F60718293A4B"), "").as_deref(),
            Some("65a1b2c3d4e5f60718293a4b")
        );
        assert_eq!(
            bound(Some("2024-01-01T08:00:00.000Z"), "").as_deref(),
            Some("659271000000000000000000")
        );
        assert_eq!(bound(Some("yesterday"), ""), None);
        assert_eq!(bound(None, "x").as_deref(), Some("x"));
    }

    #[test]
    fn the_token_limit_refuses_with_headers() {
        let mut trello = Trello::new(&TrelloConfig {
            token_limit: 2,
            ..TrelloConfig::default()
        });

        let first = trello.limit("t").unwrap();
        assert_eq!(first["x-rate-limit-api-token-remaining"], "1");
        assert_eq!(first["x-rate-limit-api-token-interval-ms"], "10000");
        assert!(trello.limit("t").is_ok());
        let refused = trello.limit("t").unwrap_err().into_response();
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(refused.headers()["x-rate-limit-api-token-remaining"], "0");
        assert!(trello.limit("other").is_ok());
    }
}
