//! The catalog: every provider the platform offers, declared in one TOML
//! file per provider under `crates/connectors/catalog/<id>.toml`.
//!
//! A file holds what the "Connect" flow and the connectors need to know
//! about a provider without code: its name, how it authenticates (OAuth 2.0
//! endpoints, scopes, PKCE, extra authorize parameters, how the code is
//! exchanged, which token-endpoint errors mean a dead refresh token, how
//! tokens are renewed; OAuth 1.0a endpoints; an API key's header or query
//! parameter, HTTP Basic or OAuth 2.0 client credentials typed in by the
//! user, each with the endpoint that validates them; or the fields of a
//! manual form), its API
//! base URLs and version, and its default sync interval. Client secrets are
//! never in these files: they come from
//! [`Config::oauth_clients`](crate::Config::oauth_clients).
//!
//! Operators override or extend the built-in files from a directory
//! ([`Config::catalog_dir`](crate::Config::catalog_dir)). Overrides merge
//! **field by field**: a file `google-analytics.toml` holding only
//! `[oauth2] token_url = "…"` changes that URL and keeps everything else.
//! Tables merge key by key, recursively; any other value, arrays included
//! (`scopes`, `form`), replaces the built-in one whole. A file whose name is
//! no built-in id adds a provider and must be complete.
//!
//! An OAuth 2.0 entry may declare per-connection [`Setting`]s (a
//! subdomain, a region) that users give when connecting, and
//! [`TokenValue`]s kept from the token response (an instance URL); both
//! fill `{name}` placeholders in its URLs and parameters, each value
//! checked for the place it takes so that it cannot move a URL to another
//! host ([`template`]). It also says how the client authenticates at the
//! token endpoint ([`ClientAuth`]), how token requests are encoded
//! ([`TokenBody`]), extra token and refresh parameters, and the authorize
//! URL's quirks. Loading refuses a file that gets any of this wrong,
//! naming the file, the key and the reason ([`CatalogError::Key`]).

use std::{
    collections::BTreeMap,
    fs, io,
    path::{Path, PathBuf},
    time::Duration,
};

use fleet_events::ConnectorId;
use regex::Regex;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use toml::{Table, Value};
use url::Url;

pub mod nango;
pub mod template;

pub use template::{JsonTemplate, RenderError, Template, UrlTemplate};

use crate::credentials::ConnectionValues;

/// The built-in catalog files, by id.
const BUILTIN: [(&str, &str); 6] = [
    ("fluentcrm", include_str!("../catalog/fluentcrm.toml")),
    (
        "google-analytics",
        include_str!("../catalog/google-analytics.toml"),
    ),
    ("linkedin", include_str!("../catalog/linkedin.toml")),
    ("meta", include_str!("../catalog/meta.toml")),
    ("trello", include_str!("../catalog/trello.toml")),
    ("wordpress", include_str!("../catalog/wordpress.toml")),
];

/// How long before an access token's expiry it is refreshed, unless an
/// entry says otherwise.
const DEFAULT_TOKEN_EXPIRY_MARGIN: Duration = Duration::from_secs(15 * 60);

/// Every provider on offer, by id.
#[derive(Debug, Clone)]
pub struct Catalog {
    entries: BTreeMap<ConnectorId, CatalogEntry>,
}

/// One provider of the catalog.
#[derive(Debug, Clone)]
pub struct CatalogEntry {
    /// The id, which is the file name without `.toml`.
    pub id: ConnectorId,
    /// The file the entry comes from, for messages: a built-in one, an
    /// operator's, or an operator's over a built-in one.
    pub file: String,
    /// The provider's name, for people.
    pub display_name: String,
    /// How connections of this provider authenticate.
    pub auth: Auth,
    /// Where users and operators read about connecting.
    pub docs_url: Url,
    /// How often a connection syncs unless the user chose otherwise.
    pub default_sync_interval: Duration,
    /// Records a connector asks for per request, where the API lets the
    /// caller choose (Google Analytics' `limit`); `None` for the
    /// connector's own default.
    pub page_size: Option<u32>,
    /// The provider's API roots by role (`api`, or Google's `admin` and
    /// `data`), so tests and the demo can point them at the simulator.
    /// They may hold a connection's values (`{instance_url}/services`):
    /// see [`CatalogEntry::api_base_url_for`].
    pub api_base_urls: BTreeMap<String, UrlTemplate>,
    /// The API version a connector asks for where the provider versions
    /// its API by a request header rather than by URL (LinkedIn's
    /// `LinkedIn-Version: YYYYMM`). Providers sunset old versions, so this
    /// lives in the catalog, where an operator's override can move it
    /// without a new build; `None` where the version is part of the base
    /// URLs (Meta's `/v22.0`).
    pub api_version: Option<String>,
    /// The fields the manual connect form asks for, in order (empty for
    /// OAuth providers).
    pub form: Vec<FormField>,
    /// The per-connection settings asked for when a user connects (a
    /// subdomain, a region), in order; their values fill the `{name}`
    /// placeholders of the entry's URLs and parameters.
    pub settings: Vec<Setting>,
    /// The budget of one sync run and how often deletions are reconciled.
    pub sync: SyncLimits,
}

/// The `[sync]` table of a catalog file: what one sync run of a connection
/// may spend, and how often a full pass looks for deleted records. Every
/// key is optional; the defaults fit a normal account.
///
/// A run that reaches a limit stores what it read, keeps its position, and
/// ends as `partial`; the next run continues from there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyncLimits {
    /// Pages (provider requests that return records) per run.
    pub max_pages: u64,
    /// Records read per run.
    pub max_records: u64,
    /// Bytes of response bodies read per run, as the connector reports
    /// them ([`Page::bytes`](crate::Page::bytes); WordPress and FluentCRM
    /// do, the others report 0 and are bounded by pages and records).
    pub max_bytes: u64,
    /// Wall time of a run, in seconds.
    pub max_seconds: u64,
    /// How often, in seconds, a stream that can be read incrementally is
    /// read whole instead, so that records deleted at the provider leave
    /// the store.
    pub reconcile_every_secs: u64,
}

impl Default for SyncLimits {
    fn default() -> Self {
        Self {
            max_pages: 2_000,
            max_records: 200_000,
            max_bytes: 512 * 1024 * 1024,
            max_seconds: 30 * 60,
            reconcile_every_secs: 24 * 60 * 60,
        }
    }
}

impl SyncLimits {
    /// The key of the first limit that is 0.
    fn zero(&self) -> Option<&'static str> {
        [
            ("sync.max_pages", self.max_pages),
            ("sync.max_records", self.max_records),
            ("sync.max_bytes", self.max_bytes),
            ("sync.max_seconds", self.max_seconds),
            ("sync.reconcile_every_secs", self.reconcile_every_secs),
        ]
        .into_iter()
        .find_map(|(key, value)| (value == 0).then_some(key))
    }
}

/// How a provider authenticates, with the settings of that method.
#[derive(Debug, Clone)]
pub enum Auth {
    /// OAuth 2.0 authorization code grant.
    OAuth2(Box<OAuth2Settings>),
    /// Three-legged OAuth 1.0a.
    OAuth1(Box<OAuth1Settings>),
    /// A WordPress application password typed into the manual form.
    AppPassword,
    /// An API key the user types in, sent in a header or query parameter.
    ApiKey(Box<ApiKeySettings>),
    /// A user name and password the user types in, sent as HTTP Basic.
    Basic(Box<BasicSettings>),
    /// OAuth 2.0 client credentials the user types in (a client id and
    /// secret of their own), exchanged for access tokens at the token
    /// endpoint with the `client_credentials` grant.
    ClientCredentials(Box<ClientCredentialsSettings>),
}

impl Auth {
    /// The `auth` value of catalog files: `oauth2`, `oauth1`,
    /// `app_password`, `api_key`, `basic` or `oauth2_client_credentials`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::OAuth2(_) => "oauth2",
            Self::OAuth1(_) => "oauth1",
            Self::AppPassword => "app_password",
            Self::ApiKey(_) => "api_key",
            Self::Basic(_) => "basic",
            Self::ClientCredentials(_) => "oauth2_client_credentials",
        }
    }

    /// Whether a user connects by typing credentials into the manual form
    /// (`POST /api/connections`) rather than on a consent page.
    pub fn is_manual(&self) -> bool {
        matches!(
            self,
            Self::AppPassword | Self::ApiKey(_) | Self::Basic(_) | Self::ClientCredentials(_)
        )
    }

    /// How an `api_key` or `basic` entry asks its `verify_url`.
    pub fn verify_request(&self) -> Option<VerifyRequest<'_>> {
        match self {
            Self::ApiKey(key) => Some(VerifyRequest {
                table: "api_key",
                method: key.verify_method,
                form: &key.verify_form,
                json: key.verify_json.as_ref(),
            }),
            Self::Basic(basic) => Some(VerifyRequest {
                table: "basic",
                method: basic.verify_method,
                form: &basic.verify_form,
                json: basic.verify_json.as_ref(),
            }),
            Self::ClientCredentials(_) | Self::OAuth2(_) | Self::OAuth1(_) | Self::AppPassword => {
                None
            }
        }
    }

    /// The endpoint a GET of which validates the typed-in credentials of
    /// an `api_key`, `basic` or `oauth2_client_credentials` entry (when it
    /// has one), and the extra headers of its requests.
    pub fn verify(&self) -> Option<(Option<&UrlTemplate>, &BTreeMap<String, Template>)> {
        match self {
            Self::ApiKey(settings) => Some((settings.verify_url.as_ref(), &settings.headers)),
            Self::Basic(settings) => Some((settings.verify_url.as_ref(), &settings.headers)),
            Self::ClientCredentials(settings) => {
                Some((settings.verify_url.as_ref(), &settings.headers))
            }
            Self::OAuth2(_) | Self::OAuth1(_) | Self::AppPassword => None,
        }
    }
}

/// The `[api_key]` table of a catalog file: where the key goes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeySettings {
    /// The request header that carries the key (`X-Api-Key`,
    /// `Authorization`); exactly one of `header` and `query`.
    #[serde(default)]
    pub header: Option<String>,
    /// The query parameter that carries the key (`api_key`).
    #[serde(default)]
    pub query: Option<String>,
    /// Text the header's value starts with before the key (`Bearer `,
    /// `Token `); with `header` only.
    #[serde(default)]
    pub prefix: String,
    /// The endpoint a GET of which validates the key and that each sync
    /// reads; may hold settings. Required to start: an entry without one
    /// loads (an imported entry for which the provider documents none) and
    /// is refused when the connectors are built, naming the key.
    #[serde(default)]
    pub verify_url: Option<UrlTemplate>,
    /// How `verify_url` is asked: `GET`, the default, or `POST`.
    #[serde(default)]
    pub verify_method: VerifyMethod,
    /// The form body of a `POST` to `verify_url`: names and values, the
    /// values may hold settings.
    #[serde(default)]
    pub verify_form: BTreeMap<String, Template>,
    /// The JSON body of a `POST` to `verify_url`, its strings holding
    /// settings and `{api_key}` (Mandrill's `{ key = "{api_key}" }`).
    #[serde(default)]
    pub verify_json: Option<JsonTemplate>,
    /// Extra headers of every request to the provider (`verify_url`), such
    /// as an API version; values may hold settings.
    #[serde(default)]
    pub headers: BTreeMap<String, Template>,
}

/// How an `api_key` or `basic` entry asks its `verify_url`: the method
/// and the body, with the table's name.
#[derive(Debug, Clone, Copy)]
pub struct VerifyRequest<'a> {
    /// `api_key` or `basic`.
    pub table: &'static str,
    /// `GET` or `POST`.
    pub method: VerifyMethod,
    /// A form body (empty for none).
    pub form: &'a BTreeMap<String, Template>,
    /// A JSON body.
    pub json: Option<&'a JsonTemplate>,
}

/// How the `verify_url` of an `api_key` or `basic` entry is asked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum VerifyMethod {
    /// `GET`, with no body.
    #[default]
    #[serde(rename = "GET")]
    Get,
    /// `POST`, with `verify_form` as a form body (or no body).
    #[serde(rename = "POST")]
    Post,
}

impl VerifyMethod {
    /// The method's name, as HTTP writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
        }
    }
}

/// The `[basic.aws_sigv4]` table: requests are signed with AWS Signature
/// Version 4, the user name being the access key id and the password the
/// secret access key, instead of carrying HTTP Basic.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsSigV4 {
    /// The region requests are signed for (`us-east-1`); may hold settings
    /// (`{region}`).
    pub region: Template,
    /// The service requests are signed for (`sts`, `iam`); may hold
    /// settings.
    pub service: Template,
}

/// The `[basic]` table of a catalog file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicSettings {
    /// The endpoint a GET of which validates the user name and password
    /// and that each sync reads; may hold settings. Required to start, as
    /// [`ApiKeySettings::verify_url`] is.
    #[serde(default)]
    pub verify_url: Option<UrlTemplate>,
    /// Extra headers of every request to the provider (`verify_url`), such
    /// as an API version; values may hold settings.
    #[serde(default)]
    pub headers: BTreeMap<String, Template>,
    /// The user name sent, built from the user name field (`{username}`)
    /// and settings: `"{username}/token"` for Zendesk's API tokens. The
    /// field as typed when absent.
    #[serde(default)]
    pub username: Option<Template>,
    /// A header that carries `base64(user:password)` as its whole value
    /// (ConnectSecure's `client-auth-token`), instead of
    /// `Authorization: Basic …`.
    #[serde(default)]
    pub header: Option<String>,
    /// How `verify_url` is asked, as [`ApiKeySettings::verify_method`].
    #[serde(default)]
    pub verify_method: VerifyMethod,
    /// The form body of a `POST` to `verify_url`, as
    /// [`ApiKeySettings::verify_form`].
    #[serde(default)]
    pub verify_form: BTreeMap<String, Template>,
    /// The JSON body of a `POST` to `verify_url`, its strings holding
    /// settings.
    #[serde(default)]
    pub verify_json: Option<JsonTemplate>,
    /// Sign requests for AWS instead of sending HTTP Basic.
    #[serde(default)]
    pub aws_sigv4: Option<AwsSigV4>,
    /// Sign requests as Duo's APIs want instead of sending the password.
    #[serde(default)]
    pub duo_signature: Option<DuoSignature>,
    /// Sign requests with HTTP Message Signatures (RFC 9421) instead of
    /// sending the password.
    #[serde(default)]
    pub http_signature: Option<HttpSignature>,
}

/// The `[basic.http_signature]` table: each request carries an HTTP
/// Message Signature (RFC 9421), the user name being the key id and the
/// password the private key (PKCS#8 PEM).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSignature {
    /// The signature algorithm: `ed25519`.
    pub algorithm: SignatureAlgorithm,
    /// The components signed, in order: derived ones (`@method`,
    /// `@target-uri`, `@authority`, `@scheme`, `@path`, `@query`),
    /// `content-digest` and `date` (which the request then carries), and
    /// header fields the request sends (`content-type`).
    pub components: Vec<String>,
    /// The signature's label in `Signature-Input` and `Signature`.
    #[serde(default = "signature_label")]
    pub label: String,
    /// Seconds from `created` to `expires`; no `expires` when absent.
    #[serde(default)]
    pub expires_secs: Option<u64>,
    /// Whether the parameters name the algorithm (`alg="ed25519"`).
    #[serde(default = "yes")]
    pub alg_param: bool,
}

/// An HTTP Message Signatures algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum SignatureAlgorithm {
    /// EdDSA with Curve25519.
    #[serde(rename = "ed25519")]
    Ed25519,
}

/// The `[basic.duo_signature]` table: each request carries HTTP Basic
/// with the integration key (the user name) and, as the password, an HMAC
/// of the request keyed with the secret key (the password), with the
/// `Date` it signs.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DuoSignature {
    /// The HMAC's hash: `sha512`, the default, or `sha1`.
    #[serde(default)]
    pub digest: DuoDigest,
}

/// The hash of a Duo signature.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DuoDigest {
    /// HMAC-SHA1, as Duo's older clients sign.
    Sha1,
    /// HMAC-SHA512, as Duo recommends.
    #[default]
    Sha512,
}

/// The `[oauth2_client_credentials]` table of a catalog file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientCredentialsSettings {
    /// Where the client id and secret are exchanged for an access token;
    /// may hold settings.
    pub token_url: UrlTemplate,
    /// The endpoint a GET of which (with the access token) validates the
    /// connection and that each sync reads; may hold settings. Without
    /// one, the token endpoint is the check: connecting and every sync ask
    /// it for a token, and the account is the client id.
    #[serde(default)]
    pub verify_url: Option<UrlTemplate>,
    /// Where the connection's access token is revoked (RFC 7009) when its
    /// user disconnects it, the client authenticating as at the token
    /// endpoint; may hold settings. None by default: the token then lives
    /// until it expires.
    #[serde(default)]
    pub revoke_url: Option<UrlTemplate>,
    /// The scopes asked for; none by default.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// What joins the scopes in the `scope` parameter.
    #[serde(default = "space")]
    pub scope_separator: String,
    /// How the client authenticates at the token endpoint.
    #[serde(default)]
    pub client_auth: ClientAuth,
    /// How the token request carries its parameters.
    #[serde(default)]
    pub token_body: TokenBody,
    /// Extra parameters of the token request (`audience`); values may
    /// hold settings. One named like a standard parameter (`grant_type`)
    /// replaces it.
    #[serde(default)]
    pub token_params: BTreeMap<String, Template>,
    /// How long before expiry a new access token is fetched.
    #[serde(
        default = "default_margin",
        rename = "token_expiry_margin_secs",
        with = "secs"
    )]
    pub token_expiry_margin: Duration,
    /// Extra headers of every request to the provider (`verify_url`), such
    /// as an API version; values may hold settings.
    #[serde(default)]
    pub headers: BTreeMap<String, Template>,
}

impl ClientCredentialsSettings {
    /// These settings as those of an OAuth 2.0 client of `client_id` and
    /// `client_secret` (a connection's own), whose token endpoint the
    /// `client_credentials` grant uses.
    pub(crate) fn oauth2(&self, client_id: &str, client_secret: &SecretString) -> OAuth2Settings {
        OAuth2Settings {
            authorize_url: self.token_url.clone(),
            token_url: self.token_url.clone(),
            refresh_url: None,
            revoke_url: self.revoke_url.clone(),
            userinfo_url: self.verify_url.clone(),
            token_only: false,
            scopes: self.scopes.clone(),
            scope_separator: self.scope_separator.clone(),
            authorize_params: BTreeMap::new(),
            authorize_skip_empty: false,
            authorize_param_names: BTreeMap::new(),
            authorize_query_replacements: BTreeMap::new(),
            authorize_fragment: None,
            callback_code_param: code_param(),
            client_auth: self.client_auth,
            token_body: self.token_body,
            token_params: self.token_params.clone(),
            refresh_params: BTreeMap::new(),
            token_values: Vec::new(),
            pkce: false,
            client_id: client_id.to_owned(),
            client_secret: Some(client_secret.clone()),
            token_expiry_margin: self.token_expiry_margin,
            token_renewal: TokenRenewal::RefreshToken,
            issuer: None,
            authorization_response_iss_parameter_supported: false,
            code_exchange: CodeExchange::PostForm,
            invalid_refresh_token_errors: Vec::new(),
        }
    }
}

/// The `[oauth2]` table of a catalog file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuth2Settings {
    /// Where the browser is sent to consent. May hold settings.
    pub authorize_url: UrlTemplate,
    /// Where codes are exchanged for tokens. May hold settings.
    pub token_url: UrlTemplate,
    /// Where refresh tokens are exchanged; `None` means
    /// [`token_url`](Self::token_url) (see [`Self::refresh_url`]). May
    /// hold settings and kept token values.
    #[serde(default)]
    pub refresh_url: Option<UrlTemplate>,
    /// Where tokens are revoked (RFC 7009), when the provider offers it.
    /// May hold settings and kept token values.
    #[serde(default)]
    pub revoke_url: Option<UrlTemplate>,
    /// An endpoint that answers a bearer token with the user's identity
    /// (OpenID Connect userinfo, Graph `/me`): how a provider without its
    /// own connector validates. May hold settings and kept token values.
    #[serde(default)]
    pub userinfo_url: Option<UrlTemplate>,
    /// For a provider without a userinfo endpoint: the grant is checked at
    /// the token endpoint only. Connecting validates because the token
    /// endpoint has just issued the tokens; every sync renews the access
    /// token before it expires, or every time when it does not say when
    /// (an expired one without a refresh token needs re-authorisation), and
    /// its one record is the grant (scopes, expiry), not the provider's
    /// data. A grant revoked at the provider shows at its next renewal, not
    /// before; one with neither an expiry nor a refresh token is never
    /// checked again. Excludes [`userinfo_url`](Self::userinfo_url).
    #[serde(default)]
    pub token_only: bool,
    /// The scopes to ask for.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// What joins [`scopes`](Self::scopes) in the `scope` parameter.
    #[serde(default = "space")]
    pub scope_separator: String,
    /// Extra parameters of the authorize URL, such as Google's
    /// `access_type = "offline"`. Values may hold settings.
    #[serde(default)]
    pub authorize_params: BTreeMap<String, Template>,
    /// Authorize parameters whose value is empty (an optional setting
    /// left blank, no scopes) are left out instead of sent as `name=`.
    #[serde(default)]
    pub authorize_skip_empty: bool,
    /// Other names for the authorize URL's standard parameters
    /// (`response_type`, `client_id`, `redirect_uri`, `state`, `scope`,
    /// `code_challenge`, `code_challenge_method`), for providers that
    /// call them differently (`client_id = "app_id"`).
    #[serde(default)]
    pub authorize_param_names: BTreeMap<String, String>,
    /// Text replaced in the authorize URL's query once it is built, for
    /// providers that read it their own way (`"%2C" = ","`: commas
    /// between scopes unencoded).
    #[serde(default)]
    pub authorize_query_replacements: BTreeMap<String, String>,
    /// A fragment the authorize URL ends with (`#` and this), for
    /// providers whose consent page reads it.
    #[serde(default)]
    pub authorize_fragment: Option<String>,
    /// The query parameter of the callback that carries the authorization
    /// code, for providers that do not call it `code` (Amazon's
    /// `spapi_oauth_code`).
    #[serde(default = "code_param")]
    pub callback_code_param: String,
    /// How the client authenticates at the token endpoint (code exchange,
    /// refresh and revocation).
    #[serde(default)]
    pub client_auth: ClientAuth,
    /// How the code exchange and refresh requests carry their parameters.
    #[serde(default)]
    pub token_body: TokenBody,
    /// Extra parameters of the code exchange (`audience`, `resource`);
    /// values may hold settings. One named like a standard parameter
    /// (`grant_type`) replaces it.
    #[serde(default)]
    pub token_params: BTreeMap<String, Template>,
    /// Extra parameters of the refresh request; values may hold settings
    /// and kept token values.
    #[serde(default)]
    pub refresh_params: BTreeMap<String, Template>,
    /// Values of the token response kept with the connection's
    /// credentials (in Vault, never in events or logs) and usable as
    /// `{name}` in later URLs and parameters: Salesforce's
    /// `instance_url`, an account id.
    #[serde(default)]
    pub token_values: Vec<TokenValue>,
    /// Whether the authorize request carries a PKCE S256 challenge.
    #[serde(default)]
    pub pkce: bool,
    /// The OAuth client id; empty until the operator sets one here or in
    /// [`Config::oauth_clients`](crate::Config::oauth_clients).
    #[serde(default)]
    pub client_id: String,
    /// The OAuth client secret. Never read from catalog files: it comes
    /// from [`Config::oauth_clients`](crate::Config::oauth_clients).
    #[serde(skip)]
    pub client_secret: Option<SecretString>,
    /// How long before expiry an access token is refreshed.
    #[serde(
        default = "default_margin",
        rename = "token_expiry_margin_secs",
        with = "secs"
    )]
    pub token_expiry_margin: Duration,
    /// How the access token is renewed before it expires; see
    /// [`oauth2::Client::renew`](crate::oauth2::Client::renew).
    #[serde(default)]
    pub token_renewal: TokenRenewal,
    /// The provider's issuer identifier, as in its authorization server
    /// metadata (`https://accounts.google.com`). When an authorization
    /// response carries `iss` (RFC 9207), it must be exactly this: another
    /// value means the response came from another provider (a mix-up
    /// attack) and the gateway refuses it.
    #[serde(default)]
    pub issuer: Option<String>,
    /// The provider always sends `iss` with its authorization responses
    /// (its metadata's `authorization_response_iss_parameter_supported`):
    /// a response without it is refused. Needs [`issuer`](Self::issuer).
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: bool,
    /// How the authorization code is exchanged for tokens; see
    /// [`CodeExchange`].
    #[serde(default)]
    pub code_exchange: CodeExchange,
    /// The OAuth `error` codes with which the token endpoint refuses a
    /// refresh token that expired or was revoked: the user has to
    /// reconnect. RFC 6749 says `invalid_grant` (the default); LinkedIn
    /// answers `invalid_request` ("The provided authorization grant or
    /// refresh token is invalid, expired or revoked").
    #[serde(default = "invalid_grant")]
    pub invalid_refresh_token_errors: Vec<String>,
}

/// How the authorization code is exchanged for tokens: the `code_exchange`
/// key of an `[oauth2]` table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CodeExchange {
    /// RFC 6749's form POST (`grant_type=authorization_code`, client
    /// credentials in the body).
    #[default]
    PostForm,
    /// Meta's documented form: `GET {token_url}?client_id&redirect_uri&client_secret&code`.
    Get,
}

/// How a provider's access tokens are renewed: the `token_renewal` key of
/// an `[oauth2]` table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenRenewal {
    /// The standard refresh grant (`grant_type=refresh_token`) with the
    /// refresh token the code exchange returned. Without one, renewing
    /// needs the user to reconnect.
    #[default]
    RefreshToken,
    /// Meta's long-lived token exchange: a still-valid access token is
    /// traded for a new long-lived one (about 60 days) with
    /// `GET {token_url}?grant_type=fb_exchange_token&fb_exchange_token=…`.
    /// Meta issues no refresh tokens, and an expired token cannot be
    /// exchanged, so the token has to be renewed before it expires. The
    /// code exchange is followed by this exchange at once, so connections
    /// start with a long-lived token.
    FbExchangeToken,
}

impl OAuth2Settings {
    /// Where refresh tokens are exchanged: [`refresh_url`](Self::refresh_url)
    /// when set, else [`token_url`](Self::token_url).
    pub fn refresh_url(&self) -> &UrlTemplate {
        self.refresh_url.as_ref().unwrap_or(&self.token_url)
    }
}

/// How the client authenticates at the token endpoint: the `client_auth`
/// key of an `[oauth2]` table, named as in RFC 8414's
/// `token_endpoint_auth_methods_supported`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// `client_id` and `client_secret` among the request's parameters.
    #[default]
    ClientSecretPost,
    /// An `Authorization: Basic` header of the client id and secret, each
    /// form-urlencoded first (RFC 6749 §2.3.1); neither is a parameter.
    ClientSecretBasic,
}

/// How token requests carry their parameters: the `token_body` key of an
/// `[oauth2]` table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenBody {
    /// `application/x-www-form-urlencoded`, as RFC 6749 has it.
    #[default]
    Form,
    /// A JSON object of strings.
    Json,
}

/// A value of the token response kept with the connection: an entry of
/// `[[oauth2.token_values]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenValue {
    /// Where it is in the token response, with `.` into nested objects
    /// (`instance_url`, `team.id`); also its name as a `{placeholder}`.
    pub name: String,
    /// A regular expression the whole value must match; a response whose
    /// value does not is refused. Required when the value chooses a
    /// host (stands at the start of a URL).
    #[serde(default)]
    pub pattern: Option<String>,
    /// Whether a code exchange whose response lacks it fails.
    #[serde(default)]
    pub required: bool,
    #[serde(skip)]
    regex: Option<Regex>,
}

impl TokenValue {
    /// Whether `value` is one to keep: it matches the pattern, if any.
    pub fn accepts(&self, value: &str) -> bool {
        self.regex
            .as_ref()
            .is_none_or(|regex| regex.is_match(value))
    }
}

/// A per-connection setting: an entry of `[[settings]]`. The user gives
/// its value when connecting; it fills `{name}` in the entry's URLs and
/// parameters and is kept with the connection's credentials.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Setting {
    /// Its name: the key it is submitted under and its `{placeholder}`.
    pub name: String,
    /// The label shown next to the input.
    pub label: String,
    /// A hint shown under the input, also in the message that refuses a
    /// bad value.
    #[serde(default)]
    pub help: Option<String>,
    /// An example value, shown as the input's placeholder.
    #[serde(default)]
    pub example: Option<String>,
    /// A regular expression the whole value must match (anchored at both
    /// ends).
    #[serde(default)]
    pub pattern: Option<String>,
    /// The only values allowed (a region list); empty for any that
    /// matches [`pattern`](Self::pattern).
    #[serde(default)]
    pub allowed: Vec<String>,
    /// Whether a connection needs it.
    #[serde(default = "yes")]
    pub required: bool,
    /// The value the operator fixes for every connection (the host its
    /// OAuth client is registered on, an application id): the setting is
    /// then not asked when connecting, a value given for it is refused,
    /// and each connection keeps this value from when it connected. An
    /// empty value (as the importer writes one) loads, and start-up
    /// refuses the entry until it is filled in.
    #[serde(default, skip_serializing)]
    pub value: Option<String>,
    /// A secret the user gives (a second key some APIs want in a header):
    /// the connect form asks for it as a password, it is kept only with
    /// the connection's credentials in the secret store, and it may stand
    /// only in the mode's `headers`, never in a URL or a parameter.
    #[serde(default)]
    pub secret: bool,
    #[serde(skip)]
    regex: Option<Regex>,
}

/// The longest setting value, in characters.
const MAX_SETTING_CHARS: usize = 256;

impl Setting {
    /// Checks `value` (trimmed by the caller); the error is the end of a
    /// sentence that starts with the setting's name.
    fn check(&self, value: &str) -> Result<(), String> {
        if value.chars().count() > MAX_SETTING_CHARS {
            return Err(format!("is longer than {MAX_SETTING_CHARS} characters"));
        }
        if value.chars().any(char::is_control) {
            return Err("holds control characters".to_owned());
        }
        if !self.allowed.is_empty() && !self.allowed.iter().any(|allowed| allowed == value) {
            return Err(format!("must be one of {}", self.allowed.join(", ")));
        }
        if self
            .regex
            .as_ref()
            .is_some_and(|regex| !regex.is_match(value))
        {
            let hint = self.help.as_deref().unwrap_or("check the value");
            return Err(format!("does not look right: {hint}"));
        }
        Ok(())
    }

    /// Whether a value is held to the provider's hosts: by a pattern no
    /// stranger's host matches, a list, or the operator's fixed value.
    fn is_constrained(&self) -> bool {
        self.regex
            .as_ref()
            .zip(self.pattern.as_deref())
            .is_some_and(|(regex, pattern)| holds_host(pattern, regex))
            || !self.allowed.is_empty()
            || self.value.is_some()
    }

    /// Whether the user gives it when connecting (the operator fixes no
    /// value for it).
    pub fn is_asked(&self) -> bool {
        self.value.is_none()
    }
}

/// Hosts and addresses that belong to no provider: a pattern that takes
/// one of them holds a value standing for a host to nothing.
const STRANGERS: [&str; 8] = [
    "evil",
    "localhost",
    "evil.test",
    "example.com",
    "attacker.example",
    "http://evil.test",
    "https://evil.test",
    "https://example.com",
];

/// Whether `regex` (anchored, compiled from `pattern`) holds a value that
/// stands for a host, or a whole address, to the provider's hosts. Proven
/// from the pattern's literals, not guessed from examples:
///
/// - every value it takes starts with a fixed `http(s)://host` followed by
///   `:` or `/` (a kept instance URL under one host), or
/// - every value it takes ends with a fixed domain of at least two labels
///   (`\.myshopify\.com`: a host under `myshopify.com`), and no address
///   on another host with that text in its path passes (`https://.*` in
///   front of it would let one through);
///
/// and, besides, it takes none of [`STRANGERS`]. A pattern such as
/// `[a-z.]+` in `https://api.amazon.{extension}`, or
/// `[a-z0-9.-]+\.amazon\.[a-z.]+`, holds nothing.
fn holds_host(pattern: &str, regex: &Regex) -> bool {
    use regex_syntax::hir::literal::{ExtractKind, Extractor};

    if STRANGERS.iter().any(|stranger| regex.is_match(stranger)) {
        return false;
    }
    let Ok(hir) = regex_syntax::Parser::new().parse(&format!("^(?:{pattern})$")) else {
        return false;
    };
    let literals = |kind| {
        let mut extractor = Extractor::new();
        extractor.kind(kind);
        let seq = extractor.extract(&hir);
        seq.literals().map(|literals| {
            literals
                .iter()
                .map(|l| {
                    let text = String::from_utf8_lossy(l.as_bytes()).to_ascii_lowercase();
                    (text, l.is_exact())
                })
                .collect::<Vec<_>>()
        })
    };
    // A whole value the pattern lists (`(us|eu)\.api\.acme\.com`).
    let listed = |text: &str| {
        is_domain_suffix(&format!(".{text}")) || Url::parse(text).is_ok_and(|url| url.has_host())
    };
    let fixed_address = |(prefix, exact): &(String, bool)| {
        let rest = prefix
            .strip_prefix("https://")
            .or_else(|| prefix.strip_prefix("http://"));
        // The host ends where a `:` (a port) or `/` follows it; a whole
        // address may not hold a user, so no `@` moves it.
        (*exact && listed(prefix))
            || rest
                .and_then(|rest| rest.find([':', '/']).map(|end| &rest[..end]))
                .is_some_and(|host| !host.is_empty() && !host.contains(['@', '?', '#', ' ']))
    };
    if literals(ExtractKind::Prefix)
        .is_some_and(|prefixes| !prefixes.is_empty() && prefixes.iter().all(fixed_address))
    {
        return true;
    }
    literals(ExtractKind::Suffix).is_some_and(|suffixes| {
        !suffixes.is_empty()
            && suffixes.iter().all(|(suffix, exact)| {
                (*exact && listed(suffix))
                    || (is_domain_suffix(suffix)
                        && !regex.is_match(&format!("https://evil.test/a{suffix}"))
                        && !regex.is_match(&format!("evil.test/a{suffix}")))
            })
    })
}

/// Whether `suffix` is `.` and a domain of at least two labels (letters,
/// digits and `-`; the last one letters), with nothing after it.
fn is_domain_suffix(suffix: &str) -> bool {
    let Some(domain) = suffix.strip_prefix('.') else {
        return false;
    };
    let labels: Vec<&str> = domain.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        && labels
            .last()
            .is_some_and(|tld| tld.len() >= 2 && tld.bytes().all(|b| b.is_ascii_alphabetic()))
}

/// Whether `pattern`, as a setting's or kept value's `pattern`, holds a
/// value standing for a host to the provider's hosts; `false` for one that
/// does not compile.
pub(crate) fn pattern_holds_host(pattern: &str) -> bool {
    anchored(pattern).is_ok_and(|regex| holds_host(pattern, &regex))
}

/// A setting value the entry refuses, with what is wrong in words for the
/// person who typed it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SettingError {
    /// The setting's name (or the unknown name given).
    pub name: String,
    /// What is wrong, as a sentence without a final period.
    pub message: String,
}

/// The `[oauth1]` table of a catalog file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuth1Settings {
    /// Where a temporary request token is obtained.
    pub request_token_url: Url,
    /// Where the browser is sent to authorize the request token.
    pub authorize_url: Url,
    /// Where the verified request token is exchanged for an access token.
    pub access_token_url: Url,
    /// How requests are signed.
    pub signature_method: SignatureMethod,
    /// Extra parameters of the authorize URL, such as Trello's
    /// `expiration = "never"`.
    #[serde(default)]
    pub authorize_params: BTreeMap<String, String>,
    /// Where an access token is revoked with a signed `DELETE`, with
    /// `{token}` standing for the token (Trello:
    /// `https://api.trello.com/1/tokens/{token}`); `None` when the provider
    /// offers no revocation.
    #[serde(default)]
    pub revoke_url: Option<String>,
    /// The consumer key (Trello's API key); empty until the operator sets
    /// one here or in [`Config::oauth_clients`](crate::Config::oauth_clients).
    #[serde(default)]
    pub client_id: String,
    /// The consumer secret. Never read from catalog files: it comes from
    /// [`Config::oauth_clients`](crate::Config::oauth_clients).
    #[serde(skip)]
    pub client_secret: Option<SecretString>,
}

/// An OAuth 1.0a signature method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum SignatureMethod {
    /// HMAC-SHA1 over the signature base string (RFC 5849 §3.4.2).
    #[serde(rename = "HMAC-SHA1")]
    HmacSha1,
    /// The secrets themselves, over TLS only (RFC 5849 §3.4.4).
    #[serde(rename = "PLAINTEXT")]
    Plaintext,
}

/// A field of the manual connect form.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FormField {
    /// The key the value is submitted under.
    pub name: String,
    /// The label shown next to the input.
    pub label: String,
    /// What the input holds.
    pub kind: FieldKind,
    /// Whether the form may be submitted without it.
    #[serde(default = "yes")]
    pub required: bool,
    /// A regular expression the whole value must match (the HTML `pattern`
    /// attribute's dialect; anchored at both ends, as that attribute is).
    #[serde(default)]
    pub pattern: Option<String>,
    /// A hint shown under the input.
    #[serde(default)]
    pub help: Option<String>,
}

/// What a form field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldKind {
    /// An absolute URL.
    Url,
    /// Free text.
    Text,
    /// A secret, masked while typed and never shown back.
    Password,
    /// An e-mail address.
    Email,
}

/// A catalog file as written; [`CatalogEntry::from_file`] checks it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    display_name: String,
    auth: AuthKind,
    docs_url: Url,
    default_sync_interval_secs: u64,
    #[serde(default)]
    page_size: Option<u32>,
    #[serde(default)]
    api_base_urls: BTreeMap<String, UrlTemplate>,
    #[serde(default)]
    api_version: Option<String>,
    #[serde(default)]
    settings: Vec<Setting>,
    #[serde(default)]
    oauth2: Option<OAuth2Settings>,
    #[serde(default)]
    oauth1: Option<OAuth1Settings>,
    #[serde(default)]
    api_key: Option<ApiKeySettings>,
    #[serde(default)]
    basic: Option<BasicSettings>,
    #[serde(default)]
    oauth2_client_credentials: Option<ClientCredentialsSettings>,
    #[serde(default)]
    form: Vec<FormField>,
    #[serde(default)]
    sync: SyncLimits,
}

#[derive(Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum AuthKind {
    Oauth2,
    Oauth1,
    AppPassword,
    ApiKey,
    Basic,
    Oauth2ClientCredentials,
}

/// The operator's OAuth client for one provider (for OAuth 1.0a: the
/// consumer key and secret).
#[derive(Debug, Clone, Deserialize)]
pub struct OAuthClient {
    /// The client id or consumer key; `None` keeps the catalog's.
    #[serde(default)]
    pub client_id: Option<String>,
    /// The client secret or consumer secret.
    pub client_secret: SecretString,
}

/// Why the catalog could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CatalogError {
    /// The override directory could not be listed.
    #[error("failed to list the catalog directory {}", dir.display())]
    ReadDir {
        /// The directory.
        dir: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A catalog file could not be read.
    #[error("failed to read the catalog file {}", path.display())]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A catalog file's name is not `<connector id>.toml`.
    #[error("catalog file {} is not named after a connector id (lowercase letters, digits, '-')", path.display())]
    FileName {
        /// The file.
        path: PathBuf,
    },
    /// A catalog file is not valid TOML or does not have the catalog's shape.
    #[error("catalog file {file} (entry '{id}') is invalid")]
    Parse {
        /// The file, or the files merged, the entry comes from.
        file: String,
        /// The entry's id.
        id: String,
        /// What did not parse (boxed: it is large, and rare).
        #[source]
        source: Box<toml::de::Error>,
    },
    /// An entry parsed but contradicts itself.
    #[error("catalog entry '{id}' {problem}")]
    Invalid {
        /// The entry's id.
        id: String,
        /// What is wrong, as the end of a sentence.
        problem: &'static str,
    },
    /// A key of an entry has a value the catalog refuses.
    #[error("catalog file {file} (entry '{id}'): {key} {reason}")]
    Key {
        /// The file, or the files merged, the entry comes from.
        file: String,
        /// The entry's id.
        id: String,
        /// The key, as a path (`oauth2.token_url`, `settings[0].pattern`).
        key: String,
        /// What is wrong, as the end of a sentence.
        reason: String,
    },
    /// An OAuth client is configured for an entry that does not use OAuth.
    #[error("an OAuth client is configured for '{id}', which is no OAuth entry of the catalog")]
    ClientWithoutEntry {
        /// The configured id.
        id: String,
    },
}

impl Catalog {
    /// The built-in entries, without overrides.
    ///
    /// # Panics
    ///
    /// Never: the built-in files are checked by this crate's tests.
    pub fn builtin() -> Self {
        Self::build(builtin_tables(), &BTreeMap::new()).expect("the built-in catalog is valid")
    }

    /// The built-in entries merged with the `*.toml` files of `dir` (see the
    /// [module documentation](self) for the merge rule).
    ///
    /// # Errors
    ///
    /// [`CatalogError`] for an unreadable directory or file, a file name
    /// that is not an id, or an entry that is invalid after merging.
    pub fn with_overrides(dir: &Path) -> Result<Self, CatalogError> {
        let mut tables = builtin_tables();
        let mut files = BTreeMap::new();
        for (id, overlay) in read_dir(dir)? {
            let path = dir.join(format!("{id}.toml")).display().to_string();
            match tables.get_mut(&id) {
                Some(table) => {
                    merge(table, overlay);
                    let file = format!("{path} (over the built-in {id}.toml)");
                    files.insert(id, file);
                }
                None => {
                    tables.insert(id.clone(), overlay);
                    files.insert(id, path);
                }
            }
        }
        Self::build(tables, &files)
    }

    /// The catalog `config` describes: the built-in entries merged with
    /// [`Config::catalog_dir`](crate::Config::catalog_dir) when set, with the
    /// clients of [`Config::oauth_clients`](crate::Config::oauth_clients).
    ///
    /// # Errors
    ///
    /// As [`Catalog::with_overrides`] and [`Catalog::set_client`].
    pub fn from_config(config: &crate::Config) -> Result<Self, CatalogError> {
        let mut catalog = match &config.catalog_dir {
            Some(dir) => Self::with_overrides(dir)?,
            None => Self::builtin(),
        };
        for (id, client) in &config.oauth_clients {
            // Environment variable names cannot hold `-`:
            // FLEET_CONNECTORS__OAUTH_CLIENTS__GOOGLE_ANALYTICS__CLIENT_SECRET
            // arrives as `google_analytics`.
            let known =
                |id: &str| ConnectorId::parse(id).is_ok_and(|id| catalog.get(&id).is_some());
            let dashed = id.replace('_', "-");
            let id = if !known(id) && known(&dashed) {
                &dashed
            } else {
                id
            };
            catalog.set_client(id, client)?;
        }
        Ok(catalog)
    }

    /// Sets the client id (when given) and secret of OAuth entry `id`: an
    /// OAuth 2.0 client, or an OAuth 1.0a consumer key and secret.
    ///
    /// # Errors
    ///
    /// [`CatalogError::ClientWithoutEntry`] when `id` is no OAuth entry.
    pub fn set_client(&mut self, id: &str, client: &OAuthClient) -> Result<(), CatalogError> {
        let (client_id, client_secret) = ConnectorId::parse(id)
            .ok()
            .and_then(|id| self.entries.get_mut(&id))
            .and_then(|entry| match &mut entry.auth {
                Auth::OAuth2(settings) => {
                    Some((&mut settings.client_id, &mut settings.client_secret))
                }
                Auth::OAuth1(settings) => {
                    Some((&mut settings.client_id, &mut settings.client_secret))
                }
                Auth::AppPassword
                | Auth::ApiKey(_)
                | Auth::Basic(_)
                | Auth::ClientCredentials(_) => None,
            })
            .ok_or_else(|| CatalogError::ClientWithoutEntry { id: id.to_owned() })?;
        if let Some(id) = &client.client_id {
            client_id.clone_from(id);
        }
        *client_secret = Some(client.client_secret.clone());
        Ok(())
    }

    /// The entry with id `id`, if there is one.
    pub fn get(&self, id: &ConnectorId) -> Option<&CatalogEntry> {
        self.entries.get(id)
    }

    /// Every entry, in id order.
    pub fn iter(&self) -> impl Iterator<Item = &CatalogEntry> {
        self.entries.values()
    }

    /// The entries of `tables`; `files` names the file of each entry that
    /// is not a built-in one alone.
    fn build(
        tables: BTreeMap<ConnectorId, Table>,
        files: &BTreeMap<ConnectorId, String>,
    ) -> Result<Self, CatalogError> {
        let entries = tables
            .into_iter()
            .map(|(id, table)| {
                let file = files
                    .get(&id)
                    .cloned()
                    .unwrap_or_else(|| format!("{id}.toml (built in)"));
                Ok((id.clone(), CatalogEntry::from_table(id, table, &file)?))
            })
            .collect::<Result<_, CatalogError>>()?;
        Ok(Self { entries })
    }
}

impl CatalogEntry {
    /// The API root named `role` (such as `api` or `admin`), if declared
    /// and the same for every connection (it holds no placeholder; see
    /// [`api_base_url_for`](Self::api_base_url_for) for one that does).
    pub fn api_base_url(&self, role: &str) -> Option<&Url> {
        self.api_base_urls.get(role).and_then(UrlTemplate::fixed)
    }

    /// Whether an API root holds a placeholder: only connectors that
    /// render their roots per connection can use such an entry.
    pub fn has_templated_api_base_urls(&self) -> bool {
        self.api_base_urls.values().any(|t| t.fixed().is_none())
    }

    /// The URL of API root `role` for a connection with `values` (its
    /// settings and kept token values), its placeholders filled and
    /// checked (see [`template`]).
    ///
    /// # Errors
    ///
    /// [`RenderError`] for a missing value or one that cannot take its
    /// place; `None` when the entry has no such root.
    pub fn api_base_url_for(
        &self,
        role: &str,
        values: &ConnectionValues,
    ) -> Option<Result<Url, RenderError>> {
        self.api_base_urls
            .get(role)
            .map(|template| template.render(values))
    }

    /// The values of the entry's [`settings`](Self::settings) in `given`
    /// (by name), trimmed and checked: every name known, every required
    /// one present, every value allowed. An optional setting left blank
    /// is the empty string.
    ///
    /// # Errors
    ///
    /// [`SettingError`] for the first name or value refused, in words for
    /// the person who typed it.
    pub fn check_settings(
        &self,
        given: &BTreeMap<String, String>,
    ) -> Result<ConnectionValues, SettingError> {
        if let Some(fixed) = self
            .settings
            .iter()
            .find(|s| !s.is_asked() && given.get(&s.name).is_some_and(|v| !v.trim().is_empty()))
        {
            return Err(SettingError {
                name: fixed.name.clone(),
                message: format!(
                    "{} ({}) is set by the operator of {} for every connection, and cannot be \
                     given when connecting",
                    fixed.name, fixed.label, self.display_name
                ),
            });
        }
        if let Some(unknown) = given
            .keys()
            .find(|name| !self.settings.iter().any(|s| &s.name == *name))
        {
            let known: Vec<&str> = self
                .settings
                .iter()
                .filter(|s| s.is_asked())
                .map(|s| s.name.as_str())
                .collect();
            let message = if known.is_empty() {
                format!(
                    "{} takes no settings, and {unknown} is none",
                    self.display_name
                )
            } else {
                format!(
                    "{unknown} is not a setting of {}; its settings are {}",
                    self.display_name,
                    known.join(", ")
                )
            };
            return Err(SettingError {
                name: unknown.clone(),
                message,
            });
        }
        let mut values = ConnectionValues::default();
        for setting in &self.settings {
            if let Some(fixed) = &setting.value {
                values.insert(setting.name.clone(), fixed.clone());
                continue;
            }
            let value = given.get(&setting.name).map(|v| v.trim()).unwrap_or("");
            let refused = |message: String| SettingError {
                name: setting.name.clone(),
                message: format!("{} ({}) {message}", setting.name, setting.label),
            };
            if value.is_empty() {
                if setting.required {
                    return Err(refused("is required".to_owned()));
                }
                // Blank: a parameter may be empty, a host or path segment
                // may not (the template says which).
                values.insert(setting.name.clone(), String::new());
                continue;
            }
            setting.check(value).map_err(refused)?;
            values.insert(setting.name.clone(), value.to_owned());
        }
        Ok(values)
    }

    /// Reads and checks the text of one catalog file, `file_name`, as the
    /// complete entry `id`, with the checks of start-up (not merged with a
    /// built-in entry of the same id).
    ///
    /// # Errors
    ///
    /// [`CatalogError::Parse`] for text that is not TOML of the catalog's
    /// shape, [`CatalogError::Key`] for a value the catalog refuses.
    pub fn from_text(id: ConnectorId, text: &str, file_name: &str) -> Result<Self, CatalogError> {
        let table = toml::from_str(text).map_err(|source| CatalogError::Parse {
            file: file_name.to_owned(),
            id: id.to_string(),
            source: Box::new(source),
        })?;
        Self::from_table(id, table, file_name)
    }

    /// Whether `id` is a built-in entry (a file of that name overrides it).
    pub fn is_builtin(id: &str) -> bool {
        BUILTIN.iter().any(|(builtin, _)| *builtin == id)
    }

    fn from_table(id: ConnectorId, table: Table, file_name: &str) -> Result<Self, CatalogError> {
        let mut file: File = table.try_into().map_err(|source| CatalogError::Parse {
            file: file_name.to_owned(),
            id: id.to_string(),
            source: Box::new(source),
        })?;
        let invalid = |key: &str, reason: &str| CatalogError::Key {
            file: file_name.to_owned(),
            id: id.to_string(),
            key: key.to_owned(),
            reason: reason.to_owned(),
        };
        let auth = auth_of(
            file.auth,
            [
                file.oauth2.map(|s| Auth::OAuth2(Box::new(s))),
                file.oauth1.map(|s| Auth::OAuth1(Box::new(s))),
                file.api_key.map(|s| Auth::ApiKey(Box::new(s))),
                file.basic.map(|s| Auth::Basic(Box::new(s))),
                file.oauth2_client_credentials
                    .map(|s| Auth::ClientCredentials(Box::new(s))),
            ],
        )
        .map_err(|reason| invalid("auth", &reason))?;
        if let Auth::OAuth2(settings) = &auth
            && settings.authorization_response_iss_parameter_supported
            && settings.issuer.is_none()
        {
            return Err(invalid(
                "oauth2.authorization_response_iss_parameter_supported",
                "requires `iss`, but the entry sets no `issuer` to compare it with",
            ));
        }
        if matches!(auth, Auth::AppPassword) && file.form.is_empty() {
            return Err(invalid(
                "form",
                "is empty: an app_password entry declares its [[form]] fields",
            ));
        }
        if file.default_sync_interval_secs == 0 {
            return Err(invalid("default_sync_interval_secs", "is 0"));
        }
        if file.page_size == Some(0) {
            return Err(invalid("page_size", "is 0"));
        }
        if let Some(key) = file.sync.zero() {
            return Err(invalid(key, "is 0"));
        }
        let mut auth = auth;
        let key_error = |(key, reason): (String, String)| CatalogError::Key {
            file: file_name.to_owned(),
            id: id.to_string(),
            key,
            reason,
        };
        check_settings(&mut file.settings).map_err(key_error)?;
        check_form(&file.form).map_err(key_error)?;
        match &mut auth {
            Auth::OAuth2(settings) => {
                check_oauth2(settings, &file.settings, &file.api_base_urls).map_err(key_error)?;
            }
            Auth::ApiKey(_) | Auth::Basic(_) | Auth::ClientCredentials(_) => {
                check_typed_in(&auth, &mut file.form, &file.settings, &file.api_base_urls)
                    .map_err(key_error)?;
            }
            Auth::OAuth1(_) | Auth::AppPassword => {
                if !file.settings.is_empty() {
                    return Err(key_error((
                        "settings".to_owned(),
                        "are supported for auth = \"oauth2\", \"api_key\", \"basic\" and \
                         \"oauth2_client_credentials\" entries only"
                            .to_owned(),
                    )));
                }
                check_fixed(&file.api_base_urls).map_err(key_error)?;
            }
        }
        check_fixed_values(&file.settings, &auth, &file.api_base_urls).map_err(key_error)?;
        check_ports(&file.settings, &auth, &file.api_base_urls).map_err(key_error)?;
        check_secret_settings(&file.settings, &auth, &file.api_base_urls).map_err(key_error)?;
        Ok(Self {
            id,
            file: file_name.to_owned(),
            display_name: file.display_name,
            auth,
            docs_url: file.docs_url,
            default_sync_interval: Duration::from_secs(file.default_sync_interval_secs),
            page_size: file.page_size,
            api_base_urls: file.api_base_urls,
            api_version: file.api_version,
            form: file.form,
            settings: file.settings,
            sync: file.sync,
        })
    }
}

/// A key and what is wrong with its value.
type KeyProblem = (String, String);

/// The standard parameters of the authorize URL, which
/// `authorize_param_names` may rename.
const AUTHORIZE_PARAMS: [&str; 7] = [
    "response_type",
    "client_id",
    "redirect_uri",
    "state",
    "scope",
    "code_challenge",
    "code_challenge_method",
];

/// The value of `authorize_params` that stands for a fresh random value
/// per authorization (a `nonce`), not a setting.
pub(crate) const RANDOM: &str = "random";

/// The parameters of the callback that are not the code.
const CALLBACK_PARAMS: [&str; 4] = ["state", "error", "error_description", "iss"];

/// Token-request parameters that carry secrets, which extra parameters
/// may not replace.
const SECRET_PARAMS: [&str; 4] = ["client_secret", "code", "code_verifier", "refresh_token"];

/// Compiles `pattern` anchored at both ends.
fn anchored(pattern: &str) -> Result<Regex, String> {
    Regex::new(&format!("^(?:{pattern})$")).map_err(|e| {
        format!(
            "is not a regular expression ({})",
            first_line(&e.to_string())
        )
    })
}

fn first_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Checks that the patterns of `[[form]]` fields are regular expressions.
fn check_form(form: &[FormField]) -> Result<(), KeyProblem> {
    for (index, field) in form.iter().enumerate() {
        if let Some(pattern) = &field.pattern {
            anchored(pattern).map_err(|reason| (format!("form[{index}].pattern"), reason))?;
        }
    }
    Ok(())
}

/// Checks `[[settings]]` and compiles their patterns.
fn check_settings(settings: &mut [Setting]) -> Result<(), KeyProblem> {
    let mut seen = Vec::new();
    for (index, setting) in settings.iter_mut().enumerate() {
        let key = |field: &str| format!("settings[{index}].{field}");
        if setting.name.is_empty()
            || !setting
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err((key("name"), "must be letters, digits and '_'".to_owned()));
        }
        if seen.contains(&setting.name) {
            return Err((key("name"), format!("repeats the setting {}", setting.name)));
        }
        if setting.name == RANDOM {
            return Err((
                key("name"),
                format!("is {RANDOM}, which stands for a fresh random value in authorize_params"),
            ));
        }
        seen.push(setting.name.clone());
        if setting.label.trim().is_empty() {
            return Err((key("label"), "must not be empty".to_owned()));
        }
        if let Some(pattern) = &setting.pattern {
            setting.regex = Some(anchored(pattern).map_err(|reason| (key("pattern"), reason))?);
        }
        if let Some(bad) = setting
            .allowed
            .iter()
            .find(|value| value.trim().is_empty() || value.trim() != value.as_str())
        {
            return Err((
                key("allowed"),
                format!("holds {bad:?}, which is blank or has spaces around it"),
            ));
        }
        if let Some(value) = setting.value.as_deref().filter(|v| !v.is_empty()) {
            if value.trim() != value {
                return Err((key("value"), "has spaces around it".to_owned()));
            }
            setting
                .check(value)
                .map_err(|reason| (key("value"), reason))?;
        }
        if let (Some(regex), Some(bad)) = (
            &setting.regex,
            setting.allowed.iter().find(|value| {
                setting
                    .regex
                    .as_ref()
                    .is_some_and(|regex| !regex.is_match(value))
            }),
        ) {
            return Err((
                key("allowed"),
                format!(
                    "holds {bad:?}, which its pattern {} refuses",
                    regex.as_str()
                ),
            ));
        }
    }
    Ok(())
}

/// Checks the `[oauth2]` table against the entry's settings: token values,
/// authorize quirks, extra parameters, and the values every template uses.
fn check_oauth2(
    oauth2: &mut OAuth2Settings,
    settings: &[Setting],
    api_base_urls: &BTreeMap<String, UrlTemplate>,
) -> Result<(), KeyProblem> {
    if oauth2.token_only && oauth2.userinfo_url.is_some() {
        return Err((
            "oauth2.token_only".to_owned(),
            "is set beside userinfo_url: an entry checks its grant at the userinfo endpoint or \
             at the token endpoint only, not both; remove one"
                .to_owned(),
        ));
    }
    let mut seen: Vec<&str> = Vec::new();
    for (index, value) in oauth2.token_values.iter_mut().enumerate() {
        let key = |field: &str| format!("oauth2.token_values[{index}].{field}");
        if !template::is_name(&value.name) {
            return Err((
                key("name"),
                "must be letters, digits and '_', in parts joined by '.'".to_owned(),
            ));
        }
        if settings.iter().any(|s| s.name == value.name) {
            return Err((
                key("name"),
                format!(
                    "is also the name of a setting; rename one of the two {}",
                    value.name
                ),
            ));
        }
        if let Some(pattern) = &value.pattern {
            value.regex = Some(anchored(pattern).map_err(|reason| (key("pattern"), reason))?);
        }
    }
    for value in &oauth2.token_values {
        if seen.contains(&value.name.as_str()) {
            return Err((
                "oauth2.token_values".to_owned(),
                format!("repeats {}", value.name),
            ));
        }
        seen.push(&value.name);
    }
    for (standard, renamed) in &oauth2.authorize_param_names {
        if !AUTHORIZE_PARAMS.contains(&standard.as_str()) {
            return Err((
                format!("oauth2.authorize_param_names.{standard}"),
                format!(
                    "is no standard authorize parameter; those are {}",
                    AUTHORIZE_PARAMS.join(", ")
                ),
            ));
        }
        if renamed.trim() != renamed.as_str() || (renamed.is_empty() && standard != "response_type")
        {
            return Err((
                format!("oauth2.authorize_param_names.{standard}"),
                "must not be empty (only response_type may be left out so) or have spaces \
                 around it"
                    .to_owned(),
            ));
        }
    }
    let code = &oauth2.callback_code_param;
    if code.is_empty()
        || !code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
        || CALLBACK_PARAMS.contains(&code.as_str())
    {
        return Err((
            "oauth2.callback_code_param".to_owned(),
            format!(
                "must be a query parameter name (letters, digits, '_', '-', '.') other than {}",
                CALLBACK_PARAMS.join(", ")
            ),
        ));
    }
    for (from, to) in &oauth2.authorize_query_replacements {
        if from.is_empty() || [from, to].iter().any(|text| text.contains(['&', '=', '#'])) {
            return Err((
                format!("oauth2.authorize_query_replacements.{from:?}"),
                "must replace non-empty text, and neither side may hold '&', '=' or '#' (they \
                 would change which parameters the query has)"
                    .to_owned(),
            ));
        }
    }
    for (table, params) in [
        ("oauth2.token_params", &oauth2.token_params),
        ("oauth2.refresh_params", &oauth2.refresh_params),
    ] {
        if let Some(name) = params
            .keys()
            .find(|name| SECRET_PARAMS.contains(&name.as_str()))
        {
            return Err((
                format!("{table}.{name}"),
                "would replace a parameter that carries a secret".to_owned(),
            ));
        }
    }
    let plain_requests = oauth2.code_exchange == CodeExchange::PostForm
        && oauth2.token_renewal == TokenRenewal::RefreshToken;
    if !plain_requests
        && (oauth2.client_auth != ClientAuth::ClientSecretPost
            || oauth2.token_body != TokenBody::Form)
    {
        return Err((
            "oauth2.client_auth".to_owned(),
            "and token_body other than client_secret_post and form work only with code_exchange \
             = \"post_form\" and token_renewal = \"refresh_token\""
                .to_owned(),
        ));
    }
    let names: Vec<&str> = settings.iter().map(|s| s.name.as_str()).collect();
    let kept: Vec<&str> = oauth2
        .token_values
        .iter()
        .map(|v| v.name.as_str())
        .collect();
    let constrained: Vec<&str> = settings
        .iter()
        .filter(|s| s.is_constrained())
        .map(|s| s.name.as_str())
        .chain(
            oauth2
                .token_values
                .iter()
                .filter(|v| {
                    v.regex
                        .as_ref()
                        .zip(v.pattern.as_deref())
                        .is_some_and(|(regex, pattern)| holds_host(pattern, regex))
                })
                .map(|v| v.name.as_str()),
        )
        .collect();
    let before_tokens = [
        ("oauth2.authorize_url", Some(&oauth2.authorize_url)),
        ("oauth2.token_url", Some(&oauth2.token_url)),
    ];
    let after_tokens = [
        ("oauth2.refresh_url", oauth2.refresh_url.as_ref()),
        ("oauth2.revoke_url", oauth2.revoke_url.as_ref()),
        ("oauth2.userinfo_url", oauth2.userinfo_url.as_ref()),
    ];
    for (key, template) in before_tokens {
        check_url(key, template, &names, None, &constrained)?;
    }
    for (key, template) in after_tokens {
        check_url(key, template, &names, Some(&kept), &constrained)?;
    }
    let with_random: Vec<&str> = names.iter().copied().chain([RANDOM]).collect();
    for (table, params, kept) in [
        ("oauth2.authorize_params", &oauth2.authorize_params, None),
        ("oauth2.token_params", &oauth2.token_params, None),
        (
            "oauth2.refresh_params",
            &oauth2.refresh_params,
            Some(&kept[..]),
        ),
    ] {
        let names = if table == "oauth2.authorize_params" {
            &with_random
        } else {
            &names
        };
        for (name, template) in params {
            check_known(&format!("{table}.{name}"), template.names(), names, kept)?;
        }
    }
    for (role, template) in api_base_urls {
        check_url(
            &format!("api_base_urls.{role}"),
            Some(template),
            &names,
            Some(&kept),
            &constrained,
        )?;
    }
    Ok(())
}

/// The `auth` of an entry: the one table given must be `kind`'s.
fn auth_of(kind: AuthKind, tables: [Option<Auth>; 5]) -> Result<Auth, String> {
    let (name, table) = match kind {
        AuthKind::Oauth2 => ("oauth2", "[oauth2]"),
        AuthKind::Oauth1 => ("oauth1", "[oauth1]"),
        AuthKind::AppPassword => ("app_password", ""),
        AuthKind::ApiKey => ("api_key", "[api_key]"),
        AuthKind::Basic => ("basic", "[basic]"),
        AuthKind::Oauth2ClientCredentials => {
            ("oauth2_client_credentials", "[oauth2_client_credentials]")
        }
    };
    let mut given: Vec<Auth> = tables.into_iter().flatten().collect();
    if kind == AuthKind::AppPassword {
        return if given.is_empty() {
            Ok(Auth::AppPassword)
        } else {
            Err(
                "is \"app_password\" and takes no [oauth2], [oauth1] or other auth table"
                    .to_owned(),
            )
        };
    }
    match given.pop() {
        Some(auth) if given.is_empty() && auth.kind() == name => Ok(auth),
        _ => Err(format!("is \"{name}\" and needs the {table} table only")),
    }
}

/// The form fields an entry of typed-in credentials needs: name, label,
/// kind.
fn credential_fields(auth: &Auth) -> &'static [(&'static str, &'static str, FieldKind)] {
    match auth {
        Auth::ApiKey(_) => &[("api_key", "API key", FieldKind::Password)],
        Auth::Basic(_) => &[
            ("username", "User name", FieldKind::Text),
            ("password", "Password", FieldKind::Password),
        ],
        Auth::ClientCredentials(_) => &[
            ("client_id", "Client ID", FieldKind::Text),
            ("client_secret", "Client secret", FieldKind::Password),
        ],
        Auth::OAuth2(_) | Auth::OAuth1(_) | Auth::AppPassword => &[],
    }
}

/// Checks an `api_key`, `basic` or `oauth2_client_credentials` entry, and
/// gives it its form: the fields its mode needs, as `[[form]]` labels
/// them or with default labels.
fn check_typed_in(
    auth: &Auth,
    form: &mut Vec<FormField>,
    settings: &[Setting],
    api_base_urls: &BTreeMap<String, UrlTemplate>,
) -> Result<(), KeyProblem> {
    typed_in_form(auth, form, settings)?;
    let username_shown = form
        .iter()
        .any(|f| f.name == "username" && f.kind != FieldKind::Password);
    if let Auth::Basic(basic) = auth
        && let Some(username) = &basic.username
    {
        let known: Vec<&str> = settings
            .iter()
            .map(|s| s.name.as_str())
            .chain(["username"])
            .collect();
        check_known("basic.username", username.names(), &known, None)?;
        if !username.names().any(|name| name == "username") {
            return Err((
                "basic.username".to_owned(),
                "does not use {username}, the user name field".to_owned(),
            ));
        }
    }
    check_verify_request(auth, settings)?;
    typed_in_urls(auth, settings, api_base_urls, username_shown)
}

/// Checks how an `api_key` or `basic` entry asks its `verify_url` (a
/// form body only with `POST`, of settings only) and a `[basic.aws_sigv4]`
/// table (region and service of settings or fixed, no templated user name,
/// no header that signing sets).
fn check_verify_request(auth: &Auth, settings: &[Setting]) -> Result<(), KeyProblem> {
    let names: Vec<&str> = settings.iter().map(|s| s.name.as_str()).collect();
    if let Some(request) = auth.verify_request() {
        let table = request.table;
        for (key, given) in [
            ("verify_form", !request.form.is_empty()),
            ("verify_json", request.json.is_some()),
        ] {
            if given && request.method != VerifyMethod::Post {
                return Err((
                    format!("{table}.{key}"),
                    format!("is a request body, sent only with {table}.verify_method = \"POST\""),
                ));
            }
        }
        if !request.form.is_empty() && request.json.is_some() {
            return Err((
                format!("{table}.verify_json"),
                format!("is a second body beside {table}.verify_form: give one"),
            ));
        }
        for (name, value) in request.form {
            check_known(
                &format!("{table}.verify_form.{name}"),
                value.names(),
                &names,
                None,
            )?;
        }
        if let Some(json) = request.json {
            // An API that takes its key in the body (Mandrill) has it
            // there: bodies are never shown.
            let with_key: Vec<&str> = names
                .iter()
                .copied()
                .chain(matches!(auth, Auth::ApiKey(_)).then_some("api_key"))
                .collect();
            check_known(
                &format!("{table}.verify_json"),
                json.names().into_iter(),
                &with_key,
                None,
            )?;
        }
    }
    let Auth::Basic(basic) = auth else {
        return Ok(());
    };
    if let Some(header) = &basic.header
        && reqwest::header::HeaderName::from_bytes(header.as_bytes()).is_err()
    {
        return Err((
            "basic.header".to_owned(),
            format!("{header:?} is no HTTP header name"),
        ));
    }
    let Some(mode) = signing_mode(basic)? else {
        return Ok(());
    };
    check_signing(basic, &mode)?;
    if let Some(sigv4) = &basic.aws_sigv4 {
        for (key, template) in [("region", &sigv4.region), ("service", &sigv4.service)] {
            let key = format!("basic.aws_sigv4.{key}");
            check_known(&key, template.names(), &names, None)?;
            if template.names().next().is_none() && !is_aws_name(template.as_str()) {
                return Err((
                    key,
                    "is not an AWS region or service name (lower-case letters, digits and '-')"
                        .to_owned(),
                ));
            }
        }
    }
    if basic.duo_signature.is_some() {
        check_duo(basic)?;
    }
    if let Some(signature) = &basic.http_signature {
        check_http_signature(basic, signature)?;
    }
    Ok(())
}

/// A way a `[basic]` entry signs its requests instead of sending the
/// credentials: its table, what the messages call it, what its password
/// is, and the headers it sets itself (a name ending in `-` stands for
/// every header it starts).
struct SigningMode {
    table: &'static str,
    by: &'static str,
    secret: &'static str,
    owned: &'static [&'static str],
}

/// The signing table of `basic`, if it has one; two are refused.
fn signing_mode(basic: &BasicSettings) -> Result<Option<SigningMode>, KeyProblem> {
    let modes = [
        basic.aws_sigv4.is_some().then_some(SigningMode {
            table: "aws_sigv4",
            by: "AWS signing",
            secret: "the secret access key",
            owned: &[
                "host",
                "x-amz-date",
                "x-amz-security-token",
                "x-amz-content-sha256",
            ],
        }),
        basic.duo_signature.is_some().then_some(SigningMode {
            table: "duo_signature",
            by: "Duo signing",
            secret: "the secret key",
            owned: &["date", "host", "x-duo-"],
        }),
        basic.http_signature.is_some().then_some(SigningMode {
            table: "http_signature",
            by: "HTTP message signing",
            secret: "the private key",
            owned: &["signature", "signature-input", "content-digest", "host"],
        }),
    ];
    let mut given = modes.into_iter().flatten();
    let first = given.next();
    if let (Some(first), Some(second)) = (&first, given.next()) {
        return Err((
            format!("basic.{}", second.table),
            format!("cannot go with basic.{}: give one", first.table),
        ));
    }
    Ok(first)
}

/// What every signing mode refuses: a user name template or credentials
/// header (the signature, not the credentials, is sent), `{password}` in
/// a header, and a header the signing sets itself.
fn check_signing(basic: &BasicSettings, mode: &SigningMode) -> Result<(), KeyProblem> {
    let table = mode.table;
    for (key, given) in [
        ("username", basic.username.is_some()),
        ("header", basic.header.is_some()),
    ] {
        if given {
            return Err((
                format!("basic.{key}"),
                format!(
                    "cannot go with basic.{table}, which signs the request with the user name as \
                     typed instead of sending the credentials"
                ),
            ));
        }
    }
    if let Some(name) = basic
        .headers
        .iter()
        .find(|(_, value)| value.names().any(|n| n == "password"))
        .map(|(name, _)| name)
    {
        return Err((
            format!("basic.headers.{name}"),
            format!(
                "sends {{password}}, {}, which {} never sends",
                mode.secret, mode.by
            ),
        ));
    }
    if let Some(name) = basic.headers.keys().find(|name| {
        let name = name.to_ascii_lowercase();
        mode.owned
            .iter()
            .any(|owned| match owned.strip_suffix('-') {
                Some(_) => name.starts_with(owned),
                None => name == *owned,
            })
    }) {
        return Err((
            format!("basic.headers.{name}"),
            format!("is set by {} (basic.{table})", mode.by),
        ));
    }
    Ok(())
}

/// Checks what is particular to a `[basic]` table with
/// `http_signature` ([`check_signing`] the rest): components the request
/// has, and a label a structured field takes.
fn check_http_signature(
    basic: &BasicSettings,
    signature: &HttpSignature,
) -> Result<(), KeyProblem> {
    let key = |k: &str| format!("basic.http_signature.{k}");
    let label_ok = signature
        .label
        .starts_with(|c: char| c.is_ascii_lowercase())
        && signature
            .label
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_-.*".contains(c));
    if !label_ok {
        return Err((
            key("label"),
            "is not a structured-field key (lower-case letters, digits, _ - . *)".to_owned(),
        ));
    }
    if signature.components.is_empty() {
        return Err((key("components"), "is empty".to_owned()));
    }
    if let Some(index) = signature
        .components
        .iter()
        .enumerate()
        .position(|(i, c)| signature.components[..i].contains(c))
    {
        return Err((
            format!("basic.http_signature.components[{index}]"),
            "repeats a component, which RFC 9421 does not allow".to_owned(),
        ));
    }
    let has_body = !basic.verify_form.is_empty() || basic.verify_json.is_some();
    for (index, component) in signature.components.iter().enumerate() {
        let sent = crate::http_signature::DERIVED.contains(&component.as_str())
            || crate::http_signature::ADDED.contains(&component.as_str())
            || (component == "content-type" && has_body)
            || basic
                .headers
                .keys()
                .any(|name| name.eq_ignore_ascii_case(component));
        if !sent || component.chars().any(|c| c.is_ascii_uppercase()) {
            return Err((
                format!("basic.http_signature.components[{index}]"),
                format!(
                    "{component:?} is neither a derived component (@method, @target-uri, \
                     @authority, @scheme, @path, @query), content-digest, date, nor a header the \
                     request sends (named in lower case)"
                ),
            ));
        }
    }
    Ok(())
}

/// Checks what is particular to a `[basic]` table with `duo_signature`
/// ([`check_signing`] the rest): no body or query Duo's v2 signature does
/// not cover.
fn check_duo(basic: &BasicSettings) -> Result<(), KeyProblem> {
    let refused = |key: &str, reason: &str| Err((key.to_owned(), reason.to_owned()));
    if basic.verify_json.is_some() {
        return refused(
            "basic.verify_json",
            "cannot go with basic.duo_signature, which signs query or form parameters only",
        );
    }
    if basic.verify_method == VerifyMethod::Post
        && basic
            .verify_url
            .as_ref()
            .is_some_and(|url| url.as_str().contains('?'))
    {
        return refused(
            "basic.verify_url",
            "has a query beside a POST: Duo signs the form's parameters, so give them in \
             verify_form",
        );
    }
    Ok(())
}

/// Whether `name` can be an AWS region or service name, as a request's
/// credential scope carries it.
pub(crate) fn is_aws_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Fills in or checks the `[[form]]` of an entry of typed-in credentials.
fn typed_in_form(
    auth: &Auth,
    form: &mut Vec<FormField>,
    settings: &[Setting],
) -> Result<(), KeyProblem> {
    let fields = credential_fields(auth);
    let table = auth.kind();
    if form.is_empty() {
        *form = fields
            .iter()
            .map(|(name, label, kind)| FormField {
                name: (*name).to_owned(),
                label: (*label).to_owned(),
                kind: *kind,
                required: true,
                pattern: None,
                help: None,
            })
            .collect();
    }
    let names: Vec<&str> = fields.iter().map(|(name, ..)| *name).collect();
    let declared: Vec<&str> = form.iter().map(|f| f.name.as_str()).collect();
    if declared != names {
        return Err((
            "form".to_owned(),
            format!(
                "must be the fields {} in this order for auth = \"{table}\" (or be left out)",
                names.join(", ")
            ),
        ));
    }
    if let Some(index) = form.iter().position(|f| !f.required)
        && !matches!(auth, Auth::Basic(_))
    {
        return Err((
            format!("form[{index}].required"),
            "is false, but the credentials need every field (only a basic entry's user name or \
             password may be left empty)"
                .to_owned(),
        ));
    }
    if let Some(setting) = settings.iter().find(|s| names.contains(&s.name.as_str())) {
        return Err((
            "settings".to_owned(),
            format!(
                "include {}, the name of a credentials field; rename the setting",
                setting.name
            ),
        ));
    }
    Ok(())
}

/// Checks the URLs and token parameters of an entry of typed-in
/// credentials: settings only, and no free host.
fn typed_in_urls(
    auth: &Auth,
    settings: &[Setting],
    api_base_urls: &BTreeMap<String, UrlTemplate>,
    username_shown: bool,
) -> Result<(), KeyProblem> {
    let setting_names: Vec<&str> = settings.iter().map(|s| s.name.as_str()).collect();
    // A user name the form does not ask as a password (Twilio's account
    // SID) may stand in the verify URL's path or query.
    let with_username: Vec<&str> = setting_names
        .iter()
        .copied()
        .chain(username_shown.then_some("username"))
        .collect();
    let constrained: Vec<&str> = settings
        .iter()
        .filter(|s| s.is_constrained())
        .map(|s| s.name.as_str())
        .collect();
    match auth {
        Auth::ApiKey(key) => check_api_key(key)?,
        Auth::ClientCredentials(cc) => {
            for (name, template) in &cc.token_params {
                let key = format!("oauth2_client_credentials.token_params.{name}");
                if SECRET_PARAMS.contains(&name.as_str()) || name == "client_id" {
                    return Err((
                        key,
                        "would replace a parameter that carries a secret".to_owned(),
                    ));
                }
                check_known(&key, template.names(), &setting_names, None)?;
            }
        }
        Auth::Basic(_) | Auth::OAuth2(_) | Auth::OAuth1(_) | Auth::AppPassword => {}
    }
    // The key in the verify URL's path or query (Telegram's
    // `/bot{api_key}/getMe`), shown redacted.
    let with_key: Vec<&str> = setting_names.iter().copied().chain(["api_key"]).collect();
    for (key, template) in entry_urls(auth, api_base_urls) {
        let names = match key.as_str() {
            "basic.verify_url" => &with_username,
            "api_key.verify_url" => &with_key,
            _ => &setting_names,
        };
        check_url(&key, Some(template), names, None, &constrained)?;
        if template.in_address("api_key") {
            return Err((
                key,
                "puts {api_key} in the address, where DNS and messages carry it: a key may \
                 stand only in the path or the query"
                    .to_owned(),
            ));
        }
    }
    check_headers(auth, &setting_names)
}

/// The URL templates of an entry, each with its key: its API roots and
/// its mode's URLs.
fn entry_urls<'a>(
    auth: &'a Auth,
    api_base_urls: &'a BTreeMap<String, UrlTemplate>,
) -> Vec<(String, &'a UrlTemplate)> {
    let mut urls: Vec<(String, &UrlTemplate)> = api_base_urls
        .iter()
        .map(|(role, t)| (format!("api_base_urls.{role}"), t))
        .collect();
    let (table, listed): (&str, Vec<(&str, Option<&UrlTemplate>)>) = match auth {
        Auth::OAuth2(oauth2) => (
            "oauth2",
            vec![
                ("authorize_url", Some(&oauth2.authorize_url)),
                ("token_url", Some(&oauth2.token_url)),
                ("refresh_url", oauth2.refresh_url.as_ref()),
                ("revoke_url", oauth2.revoke_url.as_ref()),
                ("userinfo_url", oauth2.userinfo_url.as_ref()),
            ],
        ),
        Auth::ApiKey(key) => ("api_key", vec![("verify_url", key.verify_url.as_ref())]),
        Auth::Basic(basic) => ("basic", vec![("verify_url", basic.verify_url.as_ref())]),
        Auth::ClientCredentials(cc) => (
            "oauth2_client_credentials",
            vec![
                ("verify_url", cc.verify_url.as_ref()),
                ("token_url", Some(&cc.token_url)),
                ("revoke_url", cc.revoke_url.as_ref()),
            ],
        ),
        Auth::OAuth1(_) | Auth::AppPassword => ("", Vec::new()),
    };
    urls.extend(
        listed
            .into_iter()
            .filter_map(|(key, url)| Some((format!("{table}.{key}"), url?))),
    );
    urls
}

/// Checks that a secret setting stands only in the mode's `headers`: a
/// URL or a parameter would carry it where addresses are shown.
fn check_secret_settings(
    settings: &[Setting],
    auth: &Auth,
    api_base_urls: &BTreeMap<String, UrlTemplate>,
) -> Result<(), KeyProblem> {
    let urls = entry_urls(auth, api_base_urls);
    let in_body: Vec<&str> = auth
        .verify_request()
        .and_then(|request| request.json)
        .map(JsonTemplate::names)
        .unwrap_or_default();
    let mut params: Vec<&Template> = Vec::new();
    match auth {
        Auth::OAuth2(oauth2) => params.extend(
            oauth2
                .authorize_params
                .values()
                .chain(oauth2.token_params.values())
                .chain(oauth2.refresh_params.values()),
        ),
        Auth::ClientCredentials(cc) => params.extend(cc.token_params.values()),
        Auth::ApiKey(key) => params.extend(key.verify_form.values()),
        Auth::Basic(basic) => {
            params.extend(basic.verify_form.values());
            if let Some(sigv4) = &basic.aws_sigv4 {
                params.extend([&sigv4.region, &sigv4.service]);
            }
        }
        Auth::OAuth1(_) | Auth::AppPassword => {}
    }
    let typed_in = matches!(
        auth,
        Auth::ApiKey(_) | Auth::Basic(_) | Auth::ClientCredentials(_)
    );
    for (index, setting) in settings.iter().enumerate() {
        if !setting.secret {
            continue;
        }
        if !typed_in {
            return Err((
                format!("settings[{index}].secret"),
                "is for api_key, basic and oauth2_client_credentials entries, whose headers may \
                 carry it; an OAuth entry would ask for it in its authorize URL"
                    .to_owned(),
            ));
        }
        let name = setting.name.as_str();
        if urls.iter().any(|(_, url)| url.names().any(|n| n == name))
            || params.iter().any(|param| param.names().any(|n| n == name))
            || in_body.contains(&name)
        {
            return Err((
                format!("settings[{index}].secret"),
                format!(
                    "{{{name}}} stands in a URL or a parameter; a secret setting may stand only \
                     in the headers of an api_key, basic or oauth2_client_credentials entry"
                ),
            ));
        }
        if setting.value.is_some() {
            return Err((
                format!("settings[{index}].secret"),
                "is set beside value: a secret belongs in the connection's credentials, not in \
                 a catalog file"
                    .to_owned(),
            ));
        }
    }
    Ok(())
}

/// Checks that a value in a URL's port is a setting held to a pattern,
/// a list or the operator's value: a port chosen freely would let a
/// tenant reach any service on the provider's hosts.
fn check_ports(
    settings: &[Setting],
    auth: &Auth,
    api_base_urls: &BTreeMap<String, UrlTemplate>,
) -> Result<(), KeyProblem> {
    for (key, url) in entry_urls(auth, api_base_urls) {
        for name in url.port_values() {
            let held = settings.iter().any(|s| {
                s.name == name
                    && (s.pattern.is_some() || !s.allowed.is_empty() || s.value.is_some())
            });
            if !held {
                return Err((
                    key,
                    format!(
                        "lets {{{name}}} choose the port: make it a setting with a pattern \
                         (\"[0-9]+\" at least), allowed values, or a value you fix"
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Checks each value the operator fixes (`[[settings]]` `value`) for
/// every place it takes in the entry's URLs, as rendering will.
fn check_fixed_values(
    settings: &[Setting],
    auth: &Auth,
    api_base_urls: &BTreeMap<String, UrlTemplate>,
) -> Result<(), KeyProblem> {
    let urls = entry_urls(auth, api_base_urls);
    let headers = auth.verify().map(|(_, headers)| headers);
    for (index, setting) in settings.iter().enumerate() {
        let Some(value) = setting.value.as_deref().filter(|v| !v.is_empty()) else {
            continue;
        };
        let in_headers = headers
            .into_iter()
            .flat_map(|h| h.values())
            .any(|t| t.names().any(|n| n == setting.name));
        if in_headers && reqwest::header::HeaderValue::from_str(value).is_err() {
            return Err((
                format!("settings[{index}].value"),
                "holds characters a header value cannot".to_owned(),
            ));
        }
        for (key, url) in &urls {
            url.check_value(&setting.name, value).map_err(|error| {
                (
                    format!("settings[{index}].value"),
                    format!("cannot stand in {key} ({url}): {error}"),
                )
            })?;
        }
    }
    Ok(())
}

/// Checks the `headers` of an entry of typed-in credentials: header names
/// that do not carry the credentials, values of known settings.
fn check_headers(auth: &Auth, settings: &[&str]) -> Result<(), KeyProblem> {
    let (table, headers, carrier) = match auth {
        Auth::ApiKey(key) => ("api_key", &key.headers, key.header.as_deref()),
        Auth::Basic(basic) => ("basic", &basic.headers, basic.header.as_deref()),
        Auth::ClientCredentials(cc) => ("oauth2_client_credentials", &cc.headers, None),
        Auth::OAuth2(_) | Auth::OAuth1(_) | Auth::AppPassword => return Ok(()),
    };
    for (name, value) in headers {
        let key = format!("{table}.headers.{name}");
        if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err((key, "is no HTTP header name".to_owned()));
        }
        // An API key in another header or in the query leaves
        // `Authorization` free; Basic and bearer tokens travel in it.
        let carries = match auth {
            Auth::ApiKey(_) => carrier.is_some_and(|carrier| name.eq_ignore_ascii_case(carrier)),
            // A signed entry sends no credentials in a header of their
            // own: Authorization is free (Streamline wants a `Signature
            // keyid=…` there).
            Auth::Basic(basic) if basic.http_signature.is_some() => false,
            Auth::Basic(_) => name.eq_ignore_ascii_case(carrier.unwrap_or("authorization")),
            _ => name.eq_ignore_ascii_case("authorization"),
        };
        if carries {
            return Err((
                key,
                "would replace the header that carries the credentials".to_owned(),
            ));
        }
        let fixed: String = value
            .as_str()
            .chars()
            .filter(|c| *c != '{' && *c != '}')
            .collect();
        if reqwest::header::HeaderValue::from_str(&fixed).is_err() {
            return Err((key, "holds characters a header value cannot".to_owned()));
        }
        let known: Vec<&str> = settings
            .iter()
            .copied()
            .chain(header_credentials(auth).iter().copied())
            .collect();
        check_known(&key, value.names(), &known, None)?;
    }
    Ok(())
}

/// The credentials fields the `headers` of an entry may use (`{api_key}`
/// in a second header that wants the key, `{username}` and `{password}`):
/// headers are sent marked sensitive and never shown.
pub(crate) fn header_credentials(auth: &Auth) -> &'static [&'static str] {
    match auth {
        Auth::ApiKey(_) => &["api_key"],
        Auth::Basic(_) => &["username", "password"],
        Auth::ClientCredentials(_) | Auth::OAuth2(_) | Auth::OAuth1(_) | Auth::AppPassword => &[],
    }
}

/// Checks where an `[api_key]` table puts the key.
fn check_api_key(key: &ApiKeySettings) -> Result<(), KeyProblem> {
    match (&key.header, &key.query) {
        (Some(header), None) => {
            if reqwest::header::HeaderName::from_bytes(header.as_bytes()).is_err() {
                return Err((
                    "api_key.header".to_owned(),
                    format!("{header:?} is no HTTP header name"),
                ));
            }
            if reqwest::header::HeaderValue::from_str(&key.prefix).is_err() {
                return Err((
                    "api_key.prefix".to_owned(),
                    "holds characters a header value cannot".to_owned(),
                ));
            }
        }
        (None, Some(query)) => {
            if query.trim().is_empty() {
                return Err(("api_key.query".to_owned(), "is empty".to_owned()));
            }
            if !key.prefix.is_empty() {
                return Err((
                    "api_key.prefix".to_owned(),
                    "goes with api_key.header only".to_owned(),
                ));
            }
        }
        (Some(_), Some(_)) => {
            return Err((
                "api_key".to_owned(),
                "needs exactly one of header and query".to_owned(),
            ));
        }
        (None, None) => {
            // Telegram's `/bot{api_key}/getMe`, Mandrill's `{ key = "{api_key}" }`.
            let in_url = key
                .verify_url
                .as_ref()
                .is_some_and(|url| url.names().any(|name| name == "api_key"));
            let in_body = key
                .verify_json
                .as_ref()
                .is_some_and(|json| json.names().contains(&"api_key"));
            if !in_url && !in_body {
                return Err((
                    "api_key".to_owned(),
                    "needs one of header and query, or {api_key} in verify_url or verify_json"
                        .to_owned(),
                ));
            }
        }
    }
    Ok(())
}

/// Checks the placeholders of `api_base_urls` for an entry without
/// OAuth 2.0, which has neither settings nor kept token values.
fn check_fixed(urls: &BTreeMap<String, UrlTemplate>) -> Result<(), KeyProblem> {
    for (role, template) in urls {
        check_url(
            &format!("api_base_urls.{role}"),
            Some(template),
            &[],
            None,
            &[],
        )?;
    }
    Ok(())
}

/// Checks that `template` uses only `settings` and `kept` values, and
/// that a value choosing its host freely is held to a pattern.
fn check_url(
    key: &str,
    template: Option<&UrlTemplate>,
    settings: &[&str],
    kept: Option<&[&str]>,
    constrained: &[&str],
) -> Result<(), KeyProblem> {
    let Some(template) = template else {
        return Ok(());
    };
    check_known(key, template.names(), settings, kept)?;
    if let Some(free) = template
        .free_host_values()
        .into_iter()
        .find(|name| !constrained.contains(name))
    {
        return Err((
            key.to_owned(),
            format!(
                "lets {{{free}}} choose the host: give it a pattern (or, for a setting, allowed \
                 values) that only the provider's hosts match"
            ),
        ));
    }
    Ok(())
}

/// Checks that `used` names only `settings` and, after the code
/// exchange (`kept` is `Some`), kept token values.
fn check_known<'a>(
    key: &str,
    mut used: impl Iterator<Item = &'a str>,
    settings: &[&str],
    kept: Option<&[&str]>,
) -> Result<(), KeyProblem> {
    let known = |name: &&str| settings.contains(name) || kept.is_some_and(|k| k.contains(name));
    let Some(unknown) = used.find(|name| !known(name)) else {
        return Ok(());
    };
    let reason = if kept.is_some() {
        format!(
            "uses {{{unknown}}}, which is neither a setting ([[settings]]) nor a kept token value \
             ([[oauth2.token_values]]) of the entry"
        )
    } else {
        format!(
            "uses {{{unknown}}}, which is no setting of the entry (declare it in [[settings]]; \
             values kept from the token response exist only after the code exchange)"
        )
    };
    Err((key.to_owned(), reason))
}

fn builtin_tables() -> BTreeMap<ConnectorId, Table> {
    BUILTIN
        .iter()
        .map(|(id, text)| {
            let id = ConnectorId::parse(id).expect("built-in ids are valid");
            let table = text.parse().expect("built-in catalog files are TOML");
            (id, table)
        })
        .collect()
}

/// The `*.toml` files of `dir` as tables, by the id their names give.
fn read_dir(dir: &Path) -> Result<BTreeMap<ConnectorId, Table>, CatalogError> {
    let read_dir_error = |source| CatalogError::ReadDir {
        dir: dir.to_owned(),
        source,
    };
    let mut tables = BTreeMap::new();
    for entry in fs::read_dir(dir).map_err(read_dir_error)? {
        let path = entry.map_err(read_dir_error)?.path();
        if path.extension().is_none_or(|extension| extension != "toml") {
            continue;
        }
        let Some(id) = path
            .file_stem()
            .and_then(|stem| stem.to_str())
            .and_then(|stem| ConnectorId::parse(stem).ok())
        else {
            return Err(CatalogError::FileName { path });
        };
        let text = fs::read_to_string(&path).map_err(|source| CatalogError::ReadFile {
            path: path.clone(),
            source,
        })?;
        let table = toml::from_str(&text).map_err(|source| CatalogError::Parse {
            file: path.display().to_string(),
            id: id.to_string(),
            source: Box::new(source),
        })?;
        tables.insert(id, table);
    }
    Ok(tables)
}

/// Merges `overlay` into `base`: tables key by key, recursively; any other
/// value replaces the base's.
fn merge(base: &mut Table, overlay: Table) {
    for (key, value) in overlay {
        match (base.get_mut(&key), value) {
            (Some(Value::Table(base)), Value::Table(overlay)) => merge(base, overlay),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

fn signature_label() -> String {
    "sig".to_owned()
}

fn code_param() -> String {
    "code".to_owned()
}

fn space() -> String {
    " ".to_owned()
}

fn yes() -> bool {
    true
}

fn invalid_grant() -> Vec<String> {
    vec!["invalid_grant".to_owned()]
}

fn default_margin() -> Duration {
    DEFAULT_TOKEN_EXPIRY_MARGIN
}

/// A [`Duration`] written as whole seconds.
mod secs {
    use std::time::Duration;

    use serde::{Deserialize as _, Deserializer};

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Duration, D::Error> {
        u64::deserialize(deserializer).map(Duration::from_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> Table {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn an_entry_that_requires_iss_names_its_issuer() {
        let mut table: Table = BUILTIN
            .iter()
            .find(|(id, _)| *id == "google-analytics")
            .unwrap()
            .1
            .parse()
            .unwrap();
        let oauth2 = table["oauth2"].as_table_mut().unwrap();
        oauth2.remove("issuer");
        oauth2.insert(
            "authorization_response_iss_parameter_supported".to_owned(),
            toml::Value::Boolean(true),
        );

        let entry = CatalogEntry::from_table(
            ConnectorId::parse("google-analytics").unwrap(),
            table,
            "g.toml",
        );

        let error = entry.unwrap_err().to_string();
        assert!(error.contains("sets no `issuer`"), "{error}");
    }

    #[test]
    fn only_a_pattern_that_fixes_the_domain_or_the_address_holds_a_host() {
        let held = [
            "[a-z0-9][a-z0-9-]*\\.myshopify\\.com",
            "https://[a-z0-9-]+\\.my\\.salesforce\\.com",
            "http://127\\.0\\.0\\.1:8080/acme/[a-z0-9-]+/api",
            "http://127\\.0\\.0\\.1:[0-9]+/acme/[a-z]+/api",
            "(us|eu)\\.api\\.acme\\.com",
        ];
        let loose = [
            "[a-z.]+",
            "[a-z0-9-]+",
            "[a-z0-9.-]+\\.amazon\\.[a-z.]+",
            "https://.*\\/.*\\/scim\\/v2",
            "[a-z0-9_-]+-fgvms\\.com",
            "[A-Z.]+",
            "https://[a-z.]+\\.",
            "https://[^/]+:[0-9]+",
            "https://[a-z]+:[0-9]+/api",
            "[0-9.]+",
            "https://.*\\.salesforce\\.com",
            "[a-z]+\\.[a-z]+\\.[a-z]+",
        ];
        for pattern in held {
            assert!(pattern_holds_host(pattern), "{pattern} should hold");
        }
        for pattern in loose {
            assert!(!pattern_holds_host(pattern), "{pattern} should not hold");
        }
    }

    #[test]
    fn merge_replaces_values_and_merges_tables_recursively() {
        let mut base =
            table("a = 1\nlist = [1, 2]\n[t]\nx = \"old\"\nkeep = true\n[t.inner]\ny = 1\nz = 2");

        merge(
            &mut base,
            table("list = [3]\n[t]\nx = \"new\"\n[t.inner]\ny = 9"),
        );

        assert_eq!(
            base,
            table("a = 1\nlist = [3]\n[t]\nx = \"new\"\nkeep = true\n[t.inner]\ny = 9\nz = 2")
        );
    }

    #[test]
    fn refresh_url_defaults_to_the_token_url() {
        let catalog = Catalog::builtin();
        let google = catalog
            .get(&ConnectorId::parse("google-analytics").unwrap())
            .unwrap();

        let Auth::OAuth2(settings) = &google.auth else {
            panic!("expected OAuth 2.0");
        };
        assert_eq!(settings.refresh_url(), &settings.token_url);
        assert_eq!(settings.token_expiry_margin, Duration::from_secs(900));
    }

    #[test]
    fn token_renewal_defaults_to_the_refresh_grant_and_meta_exchanges_tokens() {
        let catalog = Catalog::builtin();
        let renewal = |id| {
            let entry = catalog.get(&ConnectorId::parse(id).unwrap()).unwrap();
            let Auth::OAuth2(settings) = &entry.auth else {
                panic!("expected OAuth 2.0");
            };
            settings.token_renewal
        };

        assert_eq!(renewal("google-analytics"), TokenRenewal::RefreshToken);
        assert_eq!(renewal("linkedin"), TokenRenewal::RefreshToken);
        assert_eq!(renewal("meta"), TokenRenewal::FbExchangeToken);
    }

    #[test]
    fn meta_exchanges_codes_by_get_and_linkedin_refuses_refresh_tokens_with_invalid_request() {
        let catalog = Catalog::builtin();
        let settings = |id| {
            let entry = catalog.get(&ConnectorId::parse(id).unwrap()).unwrap();
            let Auth::OAuth2(settings) = &entry.auth else {
                panic!("expected OAuth 2.0");
            };
            (
                settings.code_exchange,
                settings.invalid_refresh_token_errors.clone(),
            )
        };

        assert_eq!(
            settings("google-analytics"),
            (CodeExchange::PostForm, vec!["invalid_grant".to_owned()])
        );
        assert_eq!(settings("meta").0, CodeExchange::Get);
        assert_eq!(
            settings("linkedin").1,
            ["invalid_grant", "invalid_request"].map(str::to_owned)
        );
    }

    #[test]
    fn an_oauth2_entry_without_its_table_is_invalid() {
        let entry = CatalogEntry::from_table(
            ConnectorId::parse("x").unwrap(),
            table(
                "display_name = \"X\"\nauth = \"oauth2\"\ndocs_url = \"https://x.test\"\n\
                 default_sync_interval_secs = 60",
            ),
            "x.toml",
        );

        assert!(matches!(entry, Err(CatalogError::Key { .. })), "{entry:?}");
    }

    #[test]
    fn a_client_secret_in_a_file_is_refused() {
        let entry = CatalogEntry::from_table(
            ConnectorId::parse("x").unwrap(),
            table(
                "display_name = \"X\"\nauth = \"oauth2\"\ndocs_url = \"https://x.test\"\n\
                 default_sync_interval_secs = 60\n[oauth2]\nauthorize_url = \"https://x.test/a\"\n\
                 token_url = \"https://x.test/t\"\nclient_secret = \"s3cr3t\"",
            ),
            "x.toml",
        );

        assert!(
            matches!(entry, Err(CatalogError::Parse { .. })),
            "{entry:?}"
        );
    }
}
