//! The catalog: every provider the platform offers, declared in one TOML
//! file per provider under `crates/connectors/catalog/<id>.toml`.
//!
//! A file holds what the "Connect" flow and the connectors need to know
//! about a provider without code: its name, how it authenticates (OAuth 2.0
//! endpoints, scopes, PKCE, extra authorize parameters, how the code is
//! exchanged, which token-endpoint errors mean a dead refresh token, how
//! tokens are renewed; OAuth 1.0a endpoints; or the fields of a manual
//! form), its API
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

use std::{
    collections::BTreeMap,
    fs, io,
    path::{Path, PathBuf},
    time::Duration,
};

use fleet_events::ConnectorId;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use toml::{Table, Value};
use url::Url;

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
    pub api_base_urls: BTreeMap<String, Url>,
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
    /// What is wrong with the first limit that is 0.
    fn zero(&self) -> Option<&'static str> {
        [
            ("has a [sync] max_pages of 0", self.max_pages),
            ("has a [sync] max_records of 0", self.max_records),
            ("has a [sync] max_bytes of 0", self.max_bytes),
            ("has a [sync] max_seconds of 0", self.max_seconds),
            (
                "has a [sync] reconcile_every_secs of 0",
                self.reconcile_every_secs,
            ),
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
}

impl Auth {
    /// The `auth` value of catalog files: `oauth2`, `oauth1` or `app_password`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::OAuth2(_) => "oauth2",
            Self::OAuth1(_) => "oauth1",
            Self::AppPassword => "app_password",
        }
    }
}

/// The `[oauth2]` table of a catalog file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuth2Settings {
    /// Where the browser is sent to consent.
    pub authorize_url: Url,
    /// Where codes are exchanged for tokens.
    pub token_url: Url,
    /// Where refresh tokens are exchanged; `None` means
    /// [`token_url`](Self::token_url) (see [`Self::refresh_url`]).
    #[serde(default)]
    pub refresh_url: Option<Url>,
    /// Where tokens are revoked (RFC 7009), when the provider offers it.
    #[serde(default)]
    pub revoke_url: Option<Url>,
    /// An endpoint that answers a bearer token with the user's identity
    /// (OpenID Connect userinfo, Graph `/me`): how a provider without its
    /// own connector validates.
    #[serde(default)]
    pub userinfo_url: Option<Url>,
    /// The scopes to ask for.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// What joins [`scopes`](Self::scopes) in the `scope` parameter.
    #[serde(default = "space")]
    pub scope_separator: String,
    /// Extra parameters of the authorize URL, such as Google's
    /// `access_type = "offline"`.
    #[serde(default)]
    pub authorize_params: BTreeMap<String, String>,
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
    pub fn refresh_url(&self) -> &Url {
        self.refresh_url.as_ref().unwrap_or(&self.token_url)
    }
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
    /// attribute's dialect).
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
    api_base_urls: BTreeMap<String, Url>,
    #[serde(default)]
    api_version: Option<String>,
    #[serde(default)]
    oauth2: Option<OAuth2Settings>,
    #[serde(default)]
    oauth1: Option<OAuth1Settings>,
    #[serde(default)]
    form: Vec<FormField>,
    #[serde(default)]
    sync: SyncLimits,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum AuthKind {
    Oauth2,
    Oauth1,
    AppPassword,
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
    #[error("catalog entry '{id}' is invalid")]
    Parse {
        /// The entry's id.
        id: String,
        /// What did not parse.
        #[source]
        source: toml::de::Error,
    },
    /// An entry parsed but contradicts itself.
    #[error("catalog entry '{id}' {problem}")]
    Invalid {
        /// The entry's id.
        id: String,
        /// What is wrong, as the end of a sentence.
        problem: &'static str,
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
        Self::build(builtin_tables()).expect("the built-in catalog is valid")
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
        for (id, overlay) in read_dir(dir)? {
            match tables.get_mut(&id) {
                Some(table) => merge(table, overlay),
                None => {
                    tables.insert(id, overlay);
                }
            }
        }
        Self::build(tables)
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
                Auth::AppPassword => None,
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

    fn build(tables: BTreeMap<ConnectorId, Table>) -> Result<Self, CatalogError> {
        let entries = tables
            .into_iter()
            .map(|(id, table)| Ok((id.clone(), CatalogEntry::from_table(id, table)?)))
            .collect::<Result<_, CatalogError>>()?;
        Ok(Self { entries })
    }
}

impl CatalogEntry {
    /// The API root named `role` (such as `api` or `admin`), if declared.
    pub fn api_base_url(&self, role: &str) -> Option<&Url> {
        self.api_base_urls.get(role)
    }

    fn from_table(id: ConnectorId, table: Table) -> Result<Self, CatalogError> {
        let file: File = table.try_into().map_err(|source| CatalogError::Parse {
            id: id.to_string(),
            source,
        })?;
        let invalid = |problem| CatalogError::Invalid {
            id: id.to_string(),
            problem,
        };
        let auth = match (file.auth, file.oauth2, file.oauth1) {
            (AuthKind::Oauth2, Some(settings), None) => Auth::OAuth2(Box::new(settings)),
            (AuthKind::Oauth1, None, Some(settings)) => Auth::OAuth1(Box::new(settings)),
            (AuthKind::AppPassword, None, None) => Auth::AppPassword,
            (AuthKind::Oauth2, ..) => {
                return Err(invalid(
                    "has auth = \"oauth2\" and needs an [oauth2] table only",
                ));
            }
            (AuthKind::Oauth1, ..) => {
                return Err(invalid(
                    "has auth = \"oauth1\" and needs an [oauth1] table only",
                ));
            }
            (AuthKind::AppPassword, ..) => {
                return Err(invalid(
                    "has auth = \"app_password\" and takes no [oauth2] or [oauth1] table",
                ));
            }
        };
        if let Auth::OAuth2(settings) = &auth
            && settings.authorization_response_iss_parameter_supported
            && settings.issuer.is_none()
        {
            return Err(invalid(
                "requires `iss` (authorization_response_iss_parameter_supported) but sets no \
                 `issuer` to compare it with",
            ));
        }
        if matches!(auth, Auth::AppPassword) && file.form.is_empty() {
            return Err(invalid(
                "uses a manual form but declares no [[form]] fields",
            ));
        }
        if file.default_sync_interval_secs == 0 {
            return Err(invalid("has a default_sync_interval_secs of 0"));
        }
        if file.page_size == Some(0) {
            return Err(invalid("has a page_size of 0"));
        }
        if let Some(problem) = file.sync.zero() {
            return Err(invalid(problem));
        }
        Ok(Self {
            id,
            display_name: file.display_name,
            auth,
            docs_url: file.docs_url,
            default_sync_interval: Duration::from_secs(file.default_sync_interval_secs),
            page_size: file.page_size,
            api_base_urls: file.api_base_urls,
            api_version: file.api_version,
            form: file.form,
            sync: file.sync,
        })
    }
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
            id: id.to_string(),
            source,
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

        let entry =
            CatalogEntry::from_table(ConnectorId::parse("google-analytics").unwrap(), table);

        let error = entry.unwrap_err().to_string();
        assert!(error.contains("sets no `issuer`"), "{error}");
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
        );

        assert!(
            matches!(entry, Err(CatalogError::Invalid { .. })),
            "{entry:?}"
        );
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
        );

        assert!(
            matches!(entry, Err(CatalogError::Parse { .. })),
            "{entry:?}"
        );
    }
}
