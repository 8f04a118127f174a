//! The OAuth 2.0 authorization server that Google, Meta and LinkedIn
//! share, each described by its [`Quirks`].
//!
//! The server owns what every provider does the same way: the authorize
//! endpoint (auto-consent, or a consent page with an "Allow" button, and
//! the denial), authorization codes (single use, bound to their
//! `redirect_uri`, expiring where the provider lets them, checked against
//! a PKCE challenge where it takes one), the token endpoint (client
//! authentication, the code exchange, refresh, rotation, Meta's long-lived
//! token exchange), revocation, and the access-token lookup the APIs start
//! from. A provider's [`Quirks`] say what it does its own way: the names
//! and lifetimes of its tokens, which checks its authorize endpoint makes
//! and what it says when one fails, what its redirects look like, which
//! grants it takes and how, when it hands out refresh tokens, what its
//! token answers hold, and its error bodies. What a provider's app is
//! configured to do ([`Settings`]) comes from its config.
//!
//! - [`authorize()`] serves the authorize endpoint, [`token()`] the token
//!   endpoint and [`revoke()`] revocation, each for one provider's quirks.
//! - [`Server`] holds a provider's codes and tokens; the provider's APIs
//!   ask it who a bearer token belongs to ([`Server::lookup`]).

mod authorize;
mod token;

use std::collections::{HashMap, HashSet, VecDeque};

use axum::{
    Json,
    http::{HeaderMap, StatusCode, header::AUTHORIZATION},
    response::{IntoResponse, Response},
};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, TimeDelta, Utc};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::json;
use sha2::{Digest as _, Sha256};

use crate::fault::Fault;

pub(crate) use authorize::authorize;
#[cfg(test)]
pub(crate) use authorize::redirect;
pub(crate) use token::{revoke, token};

/// A provider that runs an OAuth 2.0 server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Provider {
    Google,
    Meta,
    LinkedIn,
    Acme,
}

impl Provider {
    /// The fault target of the provider's user `user`: `google:{user}`,
    /// `meta:{user}` or `linkedin:{user}`.
    pub(crate) fn fault_target(self, user: &str) -> String {
        let name = match self {
            Self::Google => "google",
            Self::Meta => "meta",
            Self::LinkedIn => "linkedin",
            Self::Acme => "acme",
        };
        format!("{name}:{user}")
    }
}

/// What a provider's OAuth 2.0 server does its own way.
#[derive(Debug)]
pub(crate) struct Quirks {
    /// Whose server this is.
    pub(crate) provider: Provider,
    /// Its codes' and tokens' prefixes and lifetimes.
    pub(crate) tokens: Tokens,
    /// Its authorize endpoint.
    pub(crate) authorize: Authorize,
    /// Its token endpoint.
    pub(crate) token: Token,
}

/// The prefixes and lifetimes of a provider's codes and tokens.
#[derive(Debug)]
pub(crate) struct Tokens {
    pub(crate) code_prefix: &'static str,
    pub(crate) access_prefix: &'static str,
    pub(crate) refresh_prefix: &'static str,
    /// How long a code can be exchanged; `None`: until it is.
    pub(crate) code_secs: Option<i64>,
    /// `expires_in` of an access token, and how long it lives.
    pub(crate) access_secs: i64,
    /// How long a refresh token lives from its first grant (a refresh
    /// does not extend it, and answers `refresh_token_expires_in`);
    /// `None`: until it is revoked.
    pub(crate) refresh_secs: Option<i64>,
    /// How long the token of a long-lived token exchange lives; `None`:
    /// the provider has no such exchange.
    pub(crate) long_lived_secs: Option<i64>,
}

/// A provider's authorize endpoint: its checks, in the order it makes
/// them, with the message of its error page for each; its redirects; its
/// consent page.
#[derive(Debug)]
pub(crate) struct Authorize {
    pub(crate) invalid_client: &'static str,
    pub(crate) response_type: ResponseType,
    pub(crate) scope: ScopeRule,
    /// How a requested `scope` splits into scopes.
    pub(crate) scope_syntax: ScopeSyntax,
    /// `login_hint` picks the user who signs in (else the first does).
    pub(crate) login_hint: bool,
    /// When no user can sign in.
    pub(crate) no_user: &'static str,
    pub(crate) missing_redirect_uri: &'static str,
    /// When the redirect cannot be a `Location` header.
    pub(crate) invalid_redirect_uri: &'static str,
    /// A `code_challenge` binds the code to a PKCE verifier (`S256`, or
    /// `plain` when the method is omitted); else it is ignored.
    pub(crate) pkce: bool,
    /// How redirect parameters are encoded.
    pub(crate) encoding: Encoding,
    /// What every redirect ends in (Facebook Login's `#_=_`).
    pub(crate) fragment: &'static str,
    /// The parameters of the redirect after consent, in order.
    pub(crate) granted: &'static [Param],
    /// The parameters of the redirect after a denial, in order.
    pub(crate) denied: &'static [Param],
    pub(crate) page: Page,
}

/// What the authorize endpoint says of `response_type`.
#[derive(Debug)]
pub(crate) enum ResponseType {
    /// It must be `code`.
    Code(&'static str),
    /// It may be left out, but if given must be `code`.
    CodeIfGiven(&'static str),
}

/// What the authorize endpoint says of `scope`.
#[derive(Debug)]
pub(crate) enum ScopeRule {
    Optional,
    /// It must not be missing or empty.
    NonEmpty(&'static str),
    /// It must not be missing or only white space.
    NonBlank(&'static str),
}

/// How a `scope` parameter lists scopes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ScopeSyntax {
    /// Separated by white space, as RFC 6749 has it.
    Spaces,
    /// Separated by commas or spaces.
    CommasOrSpaces,
}

impl ScopeSyntax {
    fn split(self, scope: &str) -> Vec<String> {
        let scopes: Vec<&str> = match self {
            Self::Spaces => scope.split_whitespace().collect(),
            Self::CommasOrSpaces => scope.split([',', ' ']).filter(|s| !s.is_empty()).collect(),
        };
        scopes.into_iter().map(str::to_owned).collect()
    }
}

/// How redirect parameters are encoded.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Encoding {
    /// Every byte but RFC 3986's unreserved ones as `%XX` (a space is
    /// `%20`).
    Percent,
    /// `application/x-www-form-urlencoded`: a space is `+`.
    Form,
}

/// A parameter of a redirect back to the client.
#[derive(Debug)]
pub(crate) enum Param {
    Code,
    /// The client's `state`, when it sent one.
    State,
    /// The requested `scope`, as requested.
    Scope,
    Fixed(&'static str, &'static str),
}

/// A provider's consent and error pages.
#[derive(Debug)]
pub(crate) struct Page {
    pub(crate) title: &'static str,
    pub(crate) heading: &'static str,
    /// What the page says of the signed-in user, around their name.
    pub(crate) user: (&'static str, &'static str),
    /// The label of the button that denies.
    pub(crate) deny: &'static str,
    /// The heading of the error page.
    pub(crate) error_heading: &'static str,
}

/// A provider's token endpoint.
#[derive(Debug)]
pub(crate) struct Token {
    /// Which `grant_type` asks for which grant.
    pub(crate) grant_types: GrantTypes,
    /// The code exchange is a GET (the endpoint also takes POST, for the
    /// other grants); else the endpoint takes POST only.
    pub(crate) code_by_get: bool,
    /// Client credentials may come in a Basic `Authorization` header as
    /// well as in the parameters.
    pub(crate) basic_auth: bool,
    /// `token_type` of the answers.
    pub(crate) token_type: &'static str,
    /// What the answers say of the scope.
    pub(crate) scope: ScopeEcho,
    /// The `scope` a refresh answers, whatever was granted.
    pub(crate) refresh_scope: Option<&'static str>,
    /// A refresh answers the refresh token it was given (else none, unless
    /// rotation gives a new one).
    pub(crate) repeat_refresh_token: bool,
    /// The provider's answer to each refusal.
    pub(crate) error: fn(TokenError) -> Response,
    /// The provider's answer to an injected fault, for a grant; `None`
    /// lets the request through. [`Fault::Slow`] never reaches it.
    pub(crate) fault: fn(&Fault, Grant) -> Option<Response>,
}

/// Which `grant_type` asks for which grant.
#[derive(Debug, Clone, Copy)]
pub(crate) enum GrantTypes {
    /// `authorization_code` and `refresh_token`; any other is unsupported.
    Standard,
    /// `fb_exchange_token`; anything else, or nothing, is the code
    /// exchange.
    Graph,
}

impl GrantTypes {
    fn parse(self, grant_type: &str) -> Option<Grant> {
        match (self, grant_type) {
            (Self::Standard, "authorization_code") => Some(Grant::Code),
            (Self::Standard, "refresh_token") => Some(Grant::Refresh),
            (Self::Standard, _) => None,
            (Self::Graph, "fb_exchange_token") => Some(Grant::Exchange),
            (Self::Graph, _) => Some(Grant::Code),
        }
    }
}

/// A grant the token endpoint gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Grant {
    /// An authorization code for tokens.
    Code,
    /// A refresh token for an access token.
    Refresh,
    /// A still-valid access token for a long-lived one.
    Exchange,
}

/// What the token answers say of the scope.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ScopeEcho {
    /// `scope` as it was requested.
    AsRequested,
    /// `scope` with the granted scopes separated by commas.
    CommaSeparated,
    /// No `scope`.
    Omitted,
}

/// Why the token or revocation endpoint refuses a request.
#[derive(Debug, Clone, Copy)]
pub(crate) enum TokenError {
    /// The code exchange was a POST where it must be a GET.
    CodeByPost,
    UnknownClient,
    WrongSecret,
    UnsupportedGrant,
    MissingCode,
    UnknownCode,
    /// The code was exchanged before.
    UsedCode,
    ExpiredCode,
    RedirectUriMismatch,
    MissingVerifier,
    WrongVerifier,
    /// The refresh token is unknown, revoked or expired.
    InvalidRefreshToken,
    MissingExchangeToken,
    /// The token to exchange is unknown.
    InvalidAccessToken,
    /// The token to exchange expired then.
    ExpiredAccessToken(DateTime<Utc>),
    /// The token to revoke is unknown or revoked.
    UnknownRevokedToken,
}

/// What a provider's app is configured to do.
#[derive(Debug)]
pub(crate) struct Settings {
    pub(crate) client_id: String,
    pub(crate) client_secret: String,
    /// The users who can sign in; the first one does unless a login hint
    /// names another.
    pub(crate) users: Vec<String>,
    /// The authorize endpoint shows a consent page instead of consenting
    /// at once.
    pub(crate) consent_page: bool,
    pub(crate) refresh: Refresh,
    /// A refresh answers a new refresh token, and the old one stops
    /// working.
    pub(crate) rotate_refresh_tokens: bool,
    /// What the app requires of token requests beyond the provider's
    /// quirks, and adds to its answers.
    pub(crate) rules: Rules,
}

/// What an app requires of token requests and adds to their answers,
/// where a provider lets its apps choose (the generic Acme server).
#[derive(Debug, Default)]
pub(crate) struct Rules {
    /// How the client must authenticate.
    pub(crate) client_auth: ClientAuth,
    /// Code exchanges and refreshes must be JSON bodies (else form bodies).
    pub(crate) json_body: bool,
    /// Parameters a code exchange must carry, with their values.
    pub(crate) code_params: Vec<(String, String)>,
    /// Parameters a refresh must carry, with their values.
    pub(crate) refresh_params: Vec<(String, String)>,
    /// Fields added to every token answer.
    pub(crate) answer_fields: serde_json::Map<String, serde_json::Value>,
}

/// How a client must authenticate at the token endpoint.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClientAuth {
    /// As the provider's quirks say: a Basic header where it takes one,
    /// else the parameters.
    #[default]
    Quirks,
    /// A Basic header only; credentials in the parameters too are refused.
    Basic,
    /// The parameters only; a Basic header is refused.
    Post,
}

/// A token request as the token endpoint received it, for tests to check
/// how a client sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    /// Its `grant_type`.
    pub grant_type: String,
    /// It carried an `Authorization: Basic` header.
    pub basic_auth: bool,
    /// Its body was JSON (else a form, or a GET's query).
    pub json: bool,
    /// Its parameters, by name (`client_secret` included when sent).
    pub params: std::collections::BTreeMap<String, String>,
}

/// When a code exchange brings a refresh token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refresh {
    Never,
    Always,
    /// When the consent asked for offline access (`access_type=offline`)
    /// and was the user's first (since they last revoked a refresh token)
    /// or was forced with `prompt=consent`.
    OfflineFirstOrForced,
}

/// A grant of a code, access token or refresh token.
#[derive(Debug, Clone)]
pub(crate) struct Grantee {
    pub(crate) user: String,
    /// The `scope` the authorization asked for, as it asked.
    pub(crate) scope: String,
    /// The scopes granted.
    pub(crate) scopes: Vec<String>,
    /// `None`: until revoked.
    pub(crate) expires: Option<DateTime<Utc>>,
}

impl Grantee {
    fn expired(&self, now: DateTime<Utc>) -> bool {
        self.expires.is_some_and(|expires| expires <= now)
    }

    /// The same grant, living `secs` from now (`None`: until revoked).
    fn living(&self, now: DateTime<Utc>, secs: Option<i64>) -> Self {
        Self {
            expires: secs.map(|secs| now + TimeDelta::seconds(secs)),
            ..self.clone()
        }
    }
}

/// What an access token is to the APIs.
#[derive(Debug)]
pub(crate) enum Access {
    Unknown,
    /// It expired then.
    Expired(DateTime<Utc>),
    Valid(Grantee),
}

/// An authorization code, until it is exchanged.
#[derive(Debug)]
struct Code {
    grantee: Grantee,
    redirect_uri: String,
    challenge: Option<Challenge>,
    /// The exchange brings a refresh token.
    refresh: bool,
}

#[derive(Debug)]
struct Challenge {
    value: String,
    /// `S256` or `plain`.
    method: String,
}

/// A provider's OAuth 2.0 server: its app, codes and tokens.
#[derive(Debug)]
pub(crate) struct Server {
    quirks: &'static Quirks,
    settings: Settings,
    codes: HashMap<String, Code>,
    /// Codes already exchanged, which some providers tell apart from
    /// unknown ones.
    used_codes: HashSet<String>,
    access_tokens: HashMap<String, Grantee>,
    refresh_tokens: HashMap<String, Grantee>,
    /// Users who consented to offline access and have not revoked it
    /// since: see [`Refresh::OfflineFirstOrForced`].
    offline_grants: HashSet<String>,
    /// Makes every issued code and token unique.
    issued: u64,
    /// The last [`MAX_SEEN`] token requests received, in order.
    seen: VecDeque<TokenRequest>,
}

/// How many token requests a server remembers for tests to read back; a
/// long-running demo simulator forgets the oldest beyond them.
pub(crate) const MAX_SEEN: usize = 1_000;

impl Server {
    pub(crate) fn new(quirks: &'static Quirks, settings: Settings) -> Self {
        Self {
            quirks,
            settings,
            codes: HashMap::new(),
            used_codes: HashSet::new(),
            access_tokens: HashMap::new(),
            refresh_tokens: HashMap::new(),
            offline_grants: HashSet::new(),
            issued: 0,
            seen: VecDeque::new(),
        }
    }

    /// The last [`MAX_SEEN`] token requests received, in order.
    pub(crate) fn token_requests(&self) -> Vec<TokenRequest> {
        self.seen.iter().cloned().collect()
    }

    /// Remembers a token request, forgetting the oldest beyond [`MAX_SEEN`].
    pub(crate) fn saw(&mut self, request: TokenRequest) {
        if self.seen.len() == MAX_SEEN {
            self.seen.pop_front();
        }
        self.seen.push_back(request);
    }

    /// What access token `token` is.
    pub(crate) fn lookup(&self, token: &str) -> Access {
        let Some(grantee) = self.access_tokens.get(token) else {
            return Access::Unknown;
        };
        match grantee.expires {
            Some(expires) if expires <= Utc::now() => Access::Expired(expires),
            _ => Access::Valid(grantee.clone()),
        }
    }

    /// Lets every refresh token of `user` expire now.
    pub(crate) fn expire_refresh_tokens(&mut self, user: &str) {
        let now = Utc::now();
        for grantee in self.refresh_tokens.values_mut() {
            if grantee.user == user {
                grantee.expires = Some(now);
            }
        }
    }

    /// A new code or token with `prefix`: a digest of a counter and the
    /// client secret.
    fn next(&mut self, prefix: &str) -> String {
        self.issued += 1;
        let seed = format!("{prefix}{}{}", self.issued, self.settings.client_secret);
        let digest = URL_SAFE_NO_PAD.encode(Sha256::digest(seed.as_bytes()));
        format!("{prefix}{digest}")
    }

    /// A new access token for `grantee`, living `secs`.
    fn issue_access(&mut self, grantee: &Grantee, secs: i64) -> String {
        let token = self.next(self.quirks.tokens.access_prefix);
        let grantee = grantee.living(Utc::now(), Some(secs));
        self.access_tokens.insert(token.clone(), grantee);
        token
    }

    /// A new refresh token for `grantee`, living as the provider's do
    /// from their first grant.
    fn issue_refresh(&mut self, grantee: &Grantee) -> String {
        let token = self.next(self.quirks.tokens.refresh_prefix);
        let grantee = grantee.living(Utc::now(), self.quirks.tokens.refresh_secs);
        self.refresh_tokens.insert(token.clone(), grantee);
        token
    }

    /// Revokes an access token, or a refresh token with every access
    /// token of its user (ending their offline grant); `false` for a token
    /// that is unknown or already revoked.
    fn revoke(&mut self, token: &str) -> bool {
        if self.access_tokens.remove(token).is_some() {
            return true;
        }
        let Some(grantee) = self.refresh_tokens.remove(token) else {
            return false;
        };
        self.access_tokens
            .retain(|_, access| access.user != grantee.user);
        self.offline_grants.remove(&grantee.user);
        true
    }
}

/// RFC 6749's error body, `{"error", "error_description"}`, which
/// Google's and LinkedIn's OAuth endpoints answer.
pub(crate) fn error_body(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

/// `value` encoded as `application/x-www-form-urlencoded` does: a space
/// is `+`, every byte but letters, digits, `.`, `-` and `_` is `%XX`.
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

/// The bearer token of an `Authorization` header.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}
