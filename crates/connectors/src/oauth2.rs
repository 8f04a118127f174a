//! The OAuth 2.0 authorization code flow of catalog providers: the
//! authorize URL (random `state`, PKCE S256), the code exchange, refresh
//! and revocation.
//!
//! The flow is written here rather than with the `oauth2` crate (5.0).
//! That crate's reqwest integration targets reqwest 0.12 while the
//! workspace uses 0.13; more importantly its `RequestTokenError` drops the
//! HTTP status of a failed token request, which is exactly what tells a
//! provider outage (5xx, 429: retry) from a dead grant (400
//! `invalid_grant`: reconnect). The flow itself is three form POSTs and a
//! URL, so owning it costs less than adapting the crate's typestate client
//! and error types, and lets provider quirks (comma-separated scopes,
//! `expires_in` as a string) live next to the catalog that declares them.
//!
//! Token requests use the connectors' HTTP client, which never follows
//! redirects, and are **not** retried within the call: a code is single
//! use, and a lost refresh response may already have rotated the refresh
//! token. Their errors say whether the caller may retry.
//!
//! [`Client::renew`] keeps a connection's access token alive the way its
//! provider allows ([`TokenRenewal`]): the refresh grant, or Meta's
//! exchange of a still-valid token for a new long-lived one. For Meta,
//! [`Client::exchange_code`] makes that exchange right after the code
//! exchange, so a new connection holds a 60-day token rather than a
//! short-lived one. Meta's token endpoint answers errors with Graph bodies
//! (`{"error": {"message", "type", "code", …}}`) rather than OAuth's flat
//! ones; both are read. Meta's code exchange is its documented GET with
//! the parameters in the query ([`CodeExchange::Get`]); every other
//! provider's is RFC 6749's form POST.

use std::time::Duration;

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use fleet_events::ConnectorId;
use reqwest::{
    StatusCode,
    header::{ACCEPT, HeaderMap, HeaderValue},
};
use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Deserializer};
use sha2::{Digest as _, Sha256};
use url::{Url, form_urlencoded};

use crate::{
    ConnectionValues, Credentials, Error,
    catalog::{
        ClientAuth, CodeExchange, OAuth2Settings, Template, TokenBody, TokenRenewal, UrlTemplate,
    },
    http::{self, Classify, Failure, Http, Request},
    providers::meta::{self, GraphErrorBody},
    text::{plain_text, redact},
};

/// Random bytes in a `state` value and a PKCE verifier: 256 bits, 43
/// characters once encoded (RFC 7636's minimum verifier length).
const RANDOM_BYTES: usize = 32;

/// The OAuth 2.0 client of one catalog provider, from
/// [`Registry::oauth2`](crate::Registry::oauth2). Cheap to clone.
#[derive(Debug, Clone)]
pub struct Client {
    id: ConnectorId,
    provider: String,
    settings: OAuth2Settings,
    http: Http,
}

/// Where to send the browser, and what to keep until the callback.
///
/// Its `Debug` shows neither the `state` nor the URL's query (which
/// carries it): the `state` is what a callback must present.
pub struct Authorization {
    /// The provider's authorize URL with every parameter.
    pub url: Url,
    /// The random `state` the callback must carry back; single use.
    pub state: String,
    /// The PKCE code verifier the code exchange needs, when the provider
    /// uses PKCE. Keep it server-side, never in the browser.
    pub pkce_verifier: Option<SecretString>,
}

impl std::fmt::Debug for Authorization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authorization")
            .field("url", &http::display_url(&self.url))
            .field("state", &"[REDACTED]")
            .field("pkce_verifier", &self.pkce_verifier)
            .finish()
    }
}

/// The tokens a token endpoint returned.
///
/// A refresh response often has no `refresh_token` (Google never sends one
/// on refresh): [`Credentials::merge_refresh`] keeps the stored one then.
#[derive(Debug, Clone)]
pub struct TokenSet {
    /// The bearer token.
    pub access_token: SecretString,
    /// A refresh token, when the response carried one.
    pub refresh_token: Option<SecretString>,
    /// When the access token expires, from `expires_in`.
    pub expires_at: Option<DateTime<Utc>>,
    /// The scopes granted, as the provider wrote them (which may be more
    /// or fewer than asked for).
    pub scope: Option<String>,
    /// The connection's values: after a code exchange, its settings and
    /// the values kept from the response
    /// ([`token_values`](OAuth2Settings::token_values)); after a refresh,
    /// the kept values the response carried.
    pub values: ConnectionValues,
}

impl TokenSet {
    /// These tokens as the credentials of a new connection.
    pub fn into_credentials(self) -> Credentials {
        Credentials::OAuth2 {
            access_token: self.access_token,
            refresh_token: self.refresh_token,
            expires_at: self.expires_at,
            scope: self.scope,
            values: self.values,
        }
    }
}

impl Credentials {
    /// The credentials after a refresh answered `refreshed`.
    ///
    /// The merge rule: the access token and its expiry are always the new
    /// ones; the refresh token and the scope are the new ones when the
    /// response carried them, else the stored ones. A refresh response
    /// without a refresh token therefore never erases the stored one (the
    /// provider did not rotate it), and one with a refresh token replaces it
    /// (the provider rotated it and the old one is dead). Credentials of
    /// another kind contribute nothing. The connection's values are the
    /// stored ones with those the response carried set over them.
    ///
    /// Client credentials keep their client id, secret and settings, and
    /// take the new access token and its expiry.
    #[must_use]
    pub fn merge_refresh(&self, refreshed: TokenSet) -> Self {
        if let Self::ClientCredentials {
            client_id,
            client_secret,
            values,
            ..
        } = self
        {
            return Self::ClientCredentials {
                client_id: client_id.clone(),
                client_secret: client_secret.clone(),
                access_token: Some(refreshed.access_token),
                expires_at: refreshed.expires_at,
                values: values.clone(),
            };
        }
        let (stored_refresh, stored_scope) = match self {
            Self::OAuth2 {
                refresh_token,
                scope,
                ..
            } => (refresh_token.clone(), scope.clone()),
            Self::AppPassword { .. }
            | Self::OAuth1 { .. }
            | Self::ApiKey { .. }
            | Self::Basic { .. }
            | Self::ClientCredentials { .. } => (None, None),
        };
        Self::OAuth2 {
            access_token: refreshed.access_token,
            refresh_token: refreshed.refresh_token.or(stored_refresh),
            expires_at: refreshed.expires_at,
            scope: refreshed.scope.or(stored_scope),
            values: self.values().overlaid(&refreshed.values),
        }
    }

    /// The stored refresh token, for OAuth 2.0 credentials that have one.
    pub fn refresh_token(&self) -> Option<&SecretString> {
        match self {
            Self::OAuth2 { refresh_token, .. } => refresh_token.as_ref(),
            Self::AppPassword { .. }
            | Self::OAuth1 { .. }
            | Self::ApiKey { .. }
            | Self::Basic { .. }
            | Self::ClientCredentials { .. } => None,
        }
    }

    /// When the access token of OAuth 2.0 credentials (or of client
    /// credentials) expires; `None` when the provider did not say, or for
    /// credentials of another kind.
    pub fn expires_at(&self) -> Option<DateTime<Utc>> {
        match self {
            Self::OAuth2 { expires_at, .. } | Self::ClientCredentials { expires_at, .. } => {
                *expires_at
            }
            _ => None,
        }
    }

    /// Whether these OAuth 2.0 credentials expire within `margin` of `now`
    /// and should be refreshed first. `false` when the expiry is unknown
    /// or the credentials are of another kind.
    pub fn expires_within(&self, margin: Duration, now: DateTime<Utc>) -> bool {
        let (Self::OAuth2 {
            expires_at: Some(expires_at),
            ..
        }
        | Self::ClientCredentials {
            expires_at: Some(expires_at),
            ..
        }) = self
        else {
            return false;
        };
        let margin = chrono::Duration::from_std(margin).unwrap_or(chrono::Duration::MAX);
        now.checked_add_signed(margin)
            .is_none_or(|deadline| *expires_at <= deadline)
    }

    /// Whether these are client credentials that hold no access token yet.
    pub fn lacks_access_token(&self) -> bool {
        matches!(
            self,
            Self::ClientCredentials {
                access_token: None,
                ..
            }
        )
    }

    /// The bearer token of OAuth 2.0 credentials, for connector `connector`.
    pub(crate) fn bearer(&self, connector: &ConnectorId) -> Result<&SecretString, Error> {
        match self {
            Self::OAuth2 { access_token, .. } => Ok(access_token),
            Self::ClientCredentials {
                access_token: Some(access_token),
                ..
            } => Ok(access_token),
            Self::AppPassword { .. }
            | Self::OAuth1 { .. }
            | Self::ApiKey { .. }
            | Self::Basic { .. }
            | Self::ClientCredentials { .. } => Err(Error::CredentialsKind {
                connector: connector.clone(),
                expected: "OAuth 2.0",
                found: self.kind(),
            }),
        }
    }
}

impl Client {
    pub(crate) fn new(
        id: ConnectorId,
        provider: String,
        settings: OAuth2Settings,
        http: Http,
    ) -> Self {
        Self {
            id,
            provider,
            settings,
            http,
        }
    }

    /// The provider's OAuth settings, from the catalog.
    pub fn settings(&self) -> &OAuth2Settings {
        &self.settings
    }

    /// The authorize URL for a user to consent, with a fresh random
    /// `state` and, when the provider uses PKCE, a fresh S256 challenge.
    /// For a provider without settings; see [`Client::authorize_with`].
    ///
    /// # Errors
    ///
    /// As [`Client::authorize_with`].
    ///
    /// # Panics
    ///
    /// When the operating system has no source of randomness.
    pub fn authorize(&self, redirect_uri: &Url) -> Result<Authorization, Error> {
        self.authorize_with(redirect_uri, &ConnectionValues::default())
    }

    /// The authorize URL for a user to consent, for a connection with
    /// `settings` (checked with
    /// [`CatalogEntry::check_settings`](crate::CatalogEntry::check_settings)):
    /// a fresh random `state`, a fresh S256 challenge when the provider
    /// uses PKCE, the entry's extra parameters with their placeholders
    /// filled, and its renames, empty-value skipping, query replacements
    /// and fragment applied.
    ///
    /// # Errors
    ///
    /// [`Error::ClientNotConfigured`] when the provider has no client id,
    /// [`Error::Template`] when a setting the URL needs is missing or
    /// cannot take its place.
    ///
    /// # Panics
    ///
    /// When the operating system has no source of randomness.
    pub fn authorize_with(
        &self,
        redirect_uri: &Url,
        settings: &ConnectionValues,
    ) -> Result<Authorization, Error> {
        let client_id = self.client_id()?;
        let state = random_token();
        let pkce_verifier = self.settings.pkce.then(random_token);
        let mut url = self
            .render_url(&self.settings.authorize_url, "authorize URL", settings)?
            .url;
        let mut params = vec![
            ("response_type", "code".to_owned()),
            ("client_id", client_id.to_owned()),
            ("redirect_uri", redirect_uri.as_str().to_owned()),
            ("state", state.clone()),
        ];
        if !self.settings.scopes.is_empty() {
            let scope = self.settings.scopes.join(&self.settings.scope_separator);
            params.push(("scope", scope));
        }
        if let Some(verifier) = &pkce_verifier {
            params.push(("code_challenge", pkce_challenge(verifier)));
            params.push(("code_challenge_method", "S256".to_owned()));
        }
        // `{random}`: a fresh value per authorization (a nonce).
        let with_random = self
            .settings
            .authorize_params
            .values()
            .any(|t| t.names().any(|name| name == crate::catalog::RANDOM))
            .then(|| {
                let mut values = settings.clone();
                values.insert(crate::catalog::RANDOM.to_owned(), random_token());
                values
            });
        let values = with_random.as_ref().unwrap_or(settings);
        for (name, template) in &self.settings.authorize_params {
            params.push((name, self.render(template, "authorize parameters", values)?));
        }
        if self.settings.authorize_skip_empty {
            params.retain(|(_, value)| !value.is_empty());
        }
        {
            let names = &self.settings.authorize_param_names;
            let mut query = url.query_pairs_mut();
            for (name, value) in &params {
                let name = names.get(*name).map_or(*name, String::as_str);
                // Renamed to nothing: a provider that refuses it.
                if !name.is_empty() {
                    query.append_pair(name, value);
                }
            }
        }
        if let Some(query) = url.query() {
            let mut query = query.to_owned();
            for (from, to) in &self.settings.authorize_query_replacements {
                query = query.replace(from.as_str(), to);
            }
            url.set_query(Some(&query));
        }
        if let Some(fragment) = &self.settings.authorize_fragment {
            url.set_fragment(Some(fragment));
        }
        Ok(Authorization {
            url,
            state,
            pkce_verifier: pkce_verifier.map(SecretString::from),
        })
    }

    /// Exchanges the callback's `code` for tokens. `redirect_uri` must be
    /// the one the authorize URL carried.
    ///
    /// For a provider that renews with
    /// [`FbExchangeToken`](TokenRenewal::FbExchangeToken) (Meta), the
    /// short-lived token of the code exchange is exchanged at once for a
    /// long-lived one, which is what this returns.
    ///
    /// # Errors
    ///
    /// [`Error::TokenEndpoint`] when the provider refuses (an
    /// `invalid_grant` for a used or expired code or a wrong PKCE verifier
    /// is [`ReauthRequired`](crate::ErrorClass::ReauthRequired): the user
    /// has to start over), retryable errors for 429, 5xx, throttling and
    /// network failures, [`Error::ClientNotConfigured`] without a client
    /// id.
    pub async fn exchange_code(
        &self,
        code: &str,
        redirect_uri: &Url,
        pkce_verifier: Option<&SecretString>,
    ) -> Result<TokenSet, Error> {
        self.exchange_code_with(
            code,
            redirect_uri,
            pkce_verifier,
            &ConnectionValues::default(),
        )
        .await
    }

    /// [`Client::exchange_code`] for a connection with `settings`, which
    /// fill the token URL and extra parameters. The [`TokenSet`] holds the
    /// settings and the values kept from the response.
    ///
    /// # Errors
    ///
    /// As [`Client::exchange_code`]; [`Error::Template`] for a setting
    /// the token URL needs that is missing or cannot take its place,
    /// [`Error::TokenValue`] for a response that lacks a required kept
    /// value or has one its pattern refuses.
    pub async fn exchange_code_with(
        &self,
        code: &str,
        redirect_uri: &Url,
        pkce_verifier: Option<&SecretString>,
        settings: &ConnectionValues,
    ) -> Result<TokenSet, Error> {
        let mut params = vec![
            ("grant_type".to_owned(), "authorization_code".to_owned()),
            ("code".to_owned(), code.to_owned()),
            ("redirect_uri".to_owned(), redirect_uri.as_str().to_owned()),
        ];
        if let Some(verifier) = pkce_verifier {
            params.push((
                "code_verifier".to_owned(),
                verifier.expose_secret().to_owned(),
            ));
        }
        // An error description must echo neither the code nor the verifier.
        let mut exposed = vec![code];
        exposed.extend(pkce_verifier.map(|verifier| verifier.expose_secret()));
        let url = self.render_url(&self.settings.token_url, "token URL", settings)?;
        let extra = &self.settings.token_params;
        let filled = self.extend(&mut params, extra, "token parameters", settings)?;
        exposed.extend(filled.iter().map(String::as_str));
        let body = match self.settings.code_exchange {
            CodeExchange::PostForm => {
                self.post(&url, params, self.settings.token_body, &exposed)
                    .await?
            }
            CodeExchange::Get => {
                // Meta's documented form has no `grant_type`.
                params.retain(|(name, _)| name != "grant_type");
                self.get_query(&url, params, &exposed).await?
            }
        };
        let mut tokens = self.tokens(&url.shown, &body)?;
        if let Some(missing) = self
            .settings
            .token_values
            .iter()
            .find(|value| value.required && !tokens.values.contains_key(&value.name))
        {
            return Err(Error::TokenValue {
                provider: self.provider.clone(),
                name: missing.name.clone(),
                problem: "lacks",
            });
        }
        tokens.values = settings.overlaid(&tokens.values);
        match self.settings.token_renewal {
            TokenRenewal::RefreshToken => Ok(tokens),
            TokenRenewal::FbExchangeToken => {
                let exchanged = self
                    .fb_exchange(&tokens.access_token, &tokens.values)
                    .await?;
                Ok(TokenSet {
                    values: tokens.values.overlaid(&exchanged.values),
                    ..exchanged
                })
            }
        }
    }

    /// Exchanges `refresh_token` for a new access token. Merge the result
    /// into the stored credentials with [`Credentials::merge_refresh`].
    ///
    /// # Errors
    ///
    /// As [`Client::exchange_code`]; a refusal with one of the provider's
    /// [`invalid_refresh_token_errors`](OAuth2Settings::invalid_refresh_token_errors)
    /// (`invalid_grant`, and LinkedIn's `invalid_request`: the refresh
    /// token expired or was revoked) is [`Error::RefreshTokenRejected`],
    /// [`ReauthRequired`](crate::ErrorClass::ReauthRequired).
    pub async fn refresh(&self, refresh_token: &SecretString) -> Result<TokenSet, Error> {
        self.refresh_with(refresh_token, &ConnectionValues::default())
            .await
    }

    /// [`Client::refresh`] for a connection with `values` (its settings
    /// and kept token values), which fill the refresh URL and extra
    /// parameters.
    ///
    /// # Errors
    ///
    /// As [`Client::refresh`]; [`Error::Template`] for a value the
    /// refresh URL needs that is missing or cannot take its place.
    pub async fn refresh_with(
        &self,
        refresh_token: &SecretString,
        values: &ConnectionValues,
    ) -> Result<TokenSet, Error> {
        let token = refresh_token.expose_secret();
        let mut params = vec![
            ("grant_type".to_owned(), "refresh_token".to_owned()),
            ("refresh_token".to_owned(), token.to_owned()),
        ];
        let extra = &self.settings.refresh_params;
        let filled = self.extend(&mut params, extra, "refresh parameters", values)?;
        let mut exposed = vec![token];
        exposed.extend(filled.iter().map(String::as_str));
        let url = self.render_url(self.settings.refresh_url(), "refresh URL", values)?;
        let sent = self
            .post(&url, params, self.settings.token_body, &exposed)
            .await;
        let body = match sent {
            Ok(body) => body,
            Err(Error::TokenEndpoint {
                provider,
                url,
                status,
                code,
                description,
            }) if self.settings.invalid_refresh_token_errors.contains(&code) => {
                return Err(Error::RefreshTokenRejected {
                    provider,
                    url,
                    status,
                    code,
                    description,
                });
            }
            Err(error) => return Err(error),
        };
        self.tokens(&url.shown, &body)
    }

    /// Fetches an access token with the `client_credentials` grant (RFC
    /// 6749 §4.4) at the token URL, the client authenticating as
    /// [`ClientAuth`] says, with the scopes and extra parameters of the
    /// settings; `values` (the connection's settings) fill their
    /// placeholders.
    ///
    /// # Errors
    ///
    /// A refusal of the client (`invalid_client`, HTTP 401) is
    /// [`Error::TokenEndpoint`]; otherwise as [`Client::exchange_code`].
    pub async fn client_credentials(&self, values: &ConnectionValues) -> Result<TokenSet, Error> {
        let mut params = vec![("grant_type".to_owned(), "client_credentials".to_owned())];
        if !self.settings.scopes.is_empty() {
            let scope = self.settings.scopes.join(&self.settings.scope_separator);
            params.push(("scope".to_owned(), scope));
        }
        let extra = &self.settings.token_params;
        let filled = self.extend(&mut params, extra, "token parameters", values)?;
        let exposed: Vec<&str> = filled.iter().map(String::as_str).collect();
        let url = self.render_url(&self.settings.token_url, "token URL", values)?;
        let body = self
            .post(&url, params, self.settings.token_body, &exposed)
            .await?;
        self.tokens(&url.shown, &body)
    }

    /// Whether [`Client::renew`] can renew `credentials` without the user:
    /// client credentials always (a new token is fetched with them);
    /// OAuth 2.0 credentials with a refresh token for a provider that
    /// refreshes, or with an access token that has not expired (as far as
    /// the stored expiry says) for one that exchanges tokens.
    pub fn can_renew(&self, credentials: &Credentials) -> bool {
        if matches!(credentials, Credentials::ClientCredentials { .. }) {
            return true;
        }
        let Credentials::OAuth2 {
            refresh_token,
            expires_at,
            ..
        } = credentials
        else {
            return false;
        };
        match self.settings.token_renewal {
            TokenRenewal::RefreshToken => refresh_token.is_some(),
            TokenRenewal::FbExchangeToken => expires_at.is_none_or(|at| at > Utc::now()),
        }
    }

    /// Renews the access token of `credentials` the way the provider
    /// allows ([`OAuth2Settings::token_renewal`]): for client credentials,
    /// by fetching a new one ([`Client::client_credentials`]); with the refresh grant
    /// and the stored refresh token, or (Meta) by exchanging the current,
    /// still-valid access token for a new long-lived one.
    ///
    /// The result is complete: the refresh token and scope are the
    /// response's when it carried them, else the stored ones, as with
    /// [`Credentials::merge_refresh`]. Store
    /// [`TokenSet::into_credentials`] of it.
    ///
    /// # Errors
    ///
    /// [`Error::NoRefreshToken`] for a refreshing provider when the
    /// credentials have no refresh token, and a refused refresh or
    /// exchange (`invalid_grant`, Meta's expired-token error 190): both are
    /// [`ReauthRequired`](crate::ErrorClass::ReauthRequired), the user has
    /// to reconnect. [`Error::CredentialsKind`] for credentials that are
    /// not OAuth 2.0. Otherwise as [`Client::exchange_code`].
    pub async fn renew(&self, credentials: &Credentials) -> Result<TokenSet, Error> {
        if let Credentials::ClientCredentials { values, .. } = credentials {
            return self.client_credentials(values).await;
        }
        let Credentials::OAuth2 {
            access_token,
            refresh_token,
            scope,
            values,
            ..
        } = credentials
        else {
            return Err(Error::CredentialsKind {
                connector: self.id.clone(),
                expected: "OAuth 2.0",
                found: credentials.kind(),
            });
        };
        let renewed = match self.settings.token_renewal {
            TokenRenewal::RefreshToken => {
                let Some(refresh_token) = refresh_token else {
                    return Err(Error::NoRefreshToken {
                        provider: self.provider.clone(),
                    });
                };
                self.refresh_with(refresh_token, values).await?
            }
            TokenRenewal::FbExchangeToken => self.fb_exchange(access_token, values).await?,
        };
        Ok(TokenSet {
            refresh_token: renewed.refresh_token.or_else(|| refresh_token.clone()),
            scope: renewed.scope.or_else(|| scope.clone()),
            values: values.overlaid(&renewed.values),
            ..renewed
        })
    }

    /// Exchanges the still-valid `access_token` for a long-lived one:
    /// `GET {token_url}?grant_type=fb_exchange_token&client_id&client_secret&fb_exchange_token`.
    async fn fb_exchange(
        &self,
        access_token: &SecretString,
        values: &ConnectionValues,
    ) -> Result<TokenSet, Error> {
        let token = access_token.expose_secret();
        let token_url = self.render_url(&self.settings.token_url, "token URL", values)?;
        let params = vec![
            ("grant_type".to_owned(), "fb_exchange_token".to_owned()),
            ("fb_exchange_token".to_owned(), token.to_owned()),
        ];
        let body = self.get_query(&token_url, params, &[token]).await?;
        self.tokens(&token_url.shown, &body)
    }

    /// Revokes `token` (an access or refresh token) at the provider.
    /// Returns `false`, without a request, when the provider offers no
    /// revocation endpoint. A token the provider says is already invalid
    /// (`invalid_token`) counts as revoked.
    ///
    /// # Errors
    ///
    /// As [`Client::exchange_code`].
    pub async fn revoke(&self, token: &SecretString) -> Result<bool, Error> {
        self.revoke_with(token, &ConnectionValues::default()).await
    }

    /// [`Client::revoke`] for a connection with `values` (its settings
    /// and kept token values), which fill the revocation URL.
    ///
    /// # Errors
    ///
    /// As [`Client::revoke`]; [`Error::Template`] for a value the URL
    /// needs that is missing or cannot take its place.
    pub async fn revoke_with(
        &self,
        token: &SecretString,
        values: &ConnectionValues,
    ) -> Result<bool, Error> {
        let Some(template) = &self.settings.revoke_url else {
            return Ok(false);
        };
        let url = self.render_url(template, "revocation URL", values)?;
        let token = token.expose_secret();
        let params = vec![("token".to_owned(), token.to_owned())];
        match self.post(&url, params, TokenBody::Form, &[token]).await {
            Ok(_) => Ok(true),
            Err(Error::TokenEndpoint { code, .. }) if code == "invalid_token" => Ok(true),
            Err(error) => Err(error),
        }
    }

    fn client_id(&self) -> Result<&str, Error> {
        let client_id = self.settings.client_id.trim();
        if client_id.is_empty() {
            return Err(Error::ClientNotConfigured {
                connector: self.id.clone(),
            });
        }
        Ok(client_id)
    }

    /// `template` filled with `values`, for the URL named `what`, and as
    /// messages show it: without the values kept from token responses.
    fn render_url(
        &self,
        template: &UrlTemplate,
        what: &'static str,
        values: &ConnectionValues,
    ) -> Result<Target, Error> {
        let kept: Vec<&str> = self
            .settings
            .token_values
            .iter()
            .map(|value| value.name.as_str())
            .collect();
        let (url, shown) = template
            .render_shown(values, &kept, self.http.allow_http())
            .map_err(|e| self.template_error(what, &e))?;
        Ok(Target { url, shown })
    }

    /// `template` filled with `values`, for a parameter of `what`.
    fn render(
        &self,
        template: &Template,
        what: &'static str,
        values: &ConnectionValues,
    ) -> Result<String, Error> {
        template
            .render(values)
            .map_err(|e| self.template_error(what, &e))
    }

    fn template_error(&self, what: &'static str, error: &crate::catalog::RenderError) -> Error {
        Error::Template {
            provider: self.provider.clone(),
            what,
            problem: error.to_string(),
        }
    }

    /// Adds `extra` (filled with `values`) to `params`, each replacing a
    /// parameter of the same name; returns the parameters whose value came
    /// (in part) from the connection's settings, which may hold a password
    /// field's value, so an error description must not echo them.
    fn extend(
        &self,
        params: &mut Vec<(String, String)>,
        extra: &std::collections::BTreeMap<String, Template>,
        what: &'static str,
        values: &ConnectionValues,
    ) -> Result<Vec<String>, Error> {
        let mut filled = Vec::new();
        for (name, template) in extra {
            let value = self.render(template, what, values)?;
            if template.names().next().is_some() {
                filled.push(value.clone());
            }
            params.retain(|(existing, _)| existing != name);
            params.push((name.clone(), value));
        }
        Ok(filled)
    }

    /// POSTs `params` as `body` says, with the client's credentials as
    /// [`ClientAuth`] says (in the parameters, or a Basic header), and
    /// returns the body of a successful response.
    /// `exposed` are request values an error description must not echo.
    async fn post(
        &self,
        target: &Target,
        mut params: Vec<(String, String)>,
        body: TokenBody,
        exposed: &[&str],
    ) -> Result<Bytes, Error> {
        let client_id = self.client_id()?;
        let mut request = self.http.post(target.url.clone());
        let secret = self.settings.client_secret.as_ref();
        match self.settings.client_auth {
            ClientAuth::ClientSecretPost => {
                params.push(("client_id".to_owned(), client_id.to_owned()));
                if let Some(secret) = secret {
                    let secret = secret.expose_secret().to_owned();
                    params.push(("client_secret".to_owned(), secret));
                }
            }
            ClientAuth::ClientSecretBasic => {
                // RFC 6749 2.3.1: each is form-urlencoded, then joined.
                let encode =
                    |text: &str| form_urlencoded::byte_serialize(text.as_bytes()).collect();
                let password: String =
                    secret.map_or_else(String::new, |s| encode(s.expose_secret()));
                let username: String = encode(client_id);
                request = request.basic_auth(&username, &SecretString::from(password));
            }
        }
        let request = match body {
            TokenBody::Form => request.form(&params),
            TokenBody::Json => {
                let object = params
                    .into_iter()
                    .map(|(name, value)| (name, serde_json::Value::String(value)))
                    .collect::<serde_json::Map<_, _>>();
                request.json(&serde_json::Value::Object(object))
            }
        };
        self.send(target, request, exposed).await
    }

    /// GETs `url` with `params` and the client's credentials in its query
    /// (Meta's documented code exchange and its `fb_exchange_token`) and
    /// returns the body of a successful response.
    /// `exposed` are request values an error description must not echo.
    async fn get_query(
        &self,
        target: &Target,
        params: Vec<(String, String)>,
        exposed: &[&str],
    ) -> Result<Bytes, Error> {
        let client_id = self.client_id()?;
        let mut request_url = target.url.clone();
        {
            let mut query = request_url.query_pairs_mut();
            query.append_pair("client_id", client_id);
            query.extend_pairs(&params);
            if let Some(secret) = &self.settings.client_secret {
                query.append_pair("client_secret", secret.expose_secret());
            }
        }
        let request = self.http.get(request_url);
        self.send(target, request, exposed).await
    }

    /// Sends a token `request` to `target` (shown in messages without its
    /// query and kept values) and returns the body of a successful
    /// response. `exposed` are request values an error description must
    /// not echo; the client secret never is.
    async fn send(
        &self,
        target: &Target,
        request: Request,
        exposed: &[&str],
    ) -> Result<Bytes, Error> {
        let request = request
            .header(ACCEPT, HeaderValue::from_static("application/json"))
            .shown_as(target.shown.clone());
        let mut secrets = exposed.to_vec();
        let secret = self.settings.client_secret.as_ref();
        secrets.extend(secret.map(|secret| secret.expose_secret()));
        let endpoint = TokenEndpoint {
            client: self,
            secrets: &secrets,
        };
        Ok(self
            .http
            .exchange(&endpoint, &target.shown, request)
            .await?
            .body)
    }

    /// The error for a refused token request, from its flat OAuth error
    /// body (`{"error": "invalid_grant", "error_description": "…"}`) or,
    /// from Meta, a Graph error body.
    fn endpoint_error(
        &self,
        url: &Url,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
        secrets: &[&str],
    ) -> Error {
        #[derive(Deserialize)]
        struct OAuthError {
            error: String,
            #[serde(default)]
            error_description: Option<String>,
        }

        if let Ok(GraphErrorBody { error }) = serde_json::from_slice(body) {
            let redact = |text: &str| redact(text, secrets);
            return meta::token_endpoint_error(
                &self.provider,
                url,
                status,
                headers,
                &error,
                &redact,
            );
        }
        let (code, description) = match serde_json::from_slice::<OAuthError>(body) {
            Ok(error) => (
                error.error,
                error
                    .error_description
                    .unwrap_or_else(|| "no description".to_owned()),
            ),
            Err(_) => (
                "unknown".to_owned(),
                "the response is not an OAuth error body".to_owned(),
            ),
        };
        Error::TokenEndpoint {
            provider: self.provider.clone(),
            url: http::display_url(url),
            status: status.as_u16(),
            code: provider_text(&code, secrets, crate::text::code),
            description: provider_text(&description, secrets, plain_text),
        }
    }

    /// Reads a successful token response.
    fn tokens(&self, url: &Url, body: &[u8]) -> Result<TokenSet, Error> {
        #[derive(Deserialize)]
        struct TokenResponse {
            access_token: String,
            #[serde(default)]
            refresh_token: Option<String>,
            #[serde(default, deserialize_with = "seconds")]
            expires_in: Option<u64>,
            #[serde(default)]
            scope: Option<String>,
        }

        let invalid = |source| Error::invalid_response(&self.provider, url, &source);
        let raw: serde_json::Value = serde_json::from_slice(body).map_err(invalid)?;
        let response = TokenResponse::deserialize(&raw).map_err(invalid)?;
        let values = self.kept_values(&raw)?;
        let expires_at = response.expires_in.and_then(|seconds| {
            let seconds = i64::try_from(seconds).ok()?;
            Utc::now().checked_add_signed(chrono::Duration::seconds(seconds))
        });
        Ok(TokenSet {
            access_token: SecretString::from(response.access_token),
            refresh_token: response.refresh_token.map(SecretString::from),
            expires_at,
            scope: response.scope,
            values,
        })
    }

    /// The values of `response` the entry keeps
    /// ([`token_values`](OAuth2Settings::token_values)): strings, numbers
    /// and booleans found at their paths, each checked with its pattern.
    fn kept_values(&self, response: &serde_json::Value) -> Result<ConnectionValues, Error> {
        let mut values = ConnectionValues::default();
        for kept in &self.settings.token_values {
            let found = kept
                .name
                .split('.')
                .try_fold(response, |value, key| value.get(key));
            let text = match found {
                Some(serde_json::Value::String(text)) => text.clone(),
                Some(value @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_))) => {
                    value.to_string()
                }
                _ => continue,
            };
            // Kept with the credentials and sent back in later requests:
            // bounded, and free of control characters, whatever the
            // entry's pattern allows.
            if text.len() > crate::catalog::template::MAX_VALUE_BYTES
                || text.chars().any(char::is_control)
            {
                return Err(Error::TokenValue {
                    provider: self.provider.clone(),
                    name: kept.name.clone(),
                    problem: "has a value too long or with control characters for",
                });
            }
            if !kept.accepts(&text) {
                return Err(Error::TokenValue {
                    provider: self.provider.clone(),
                    name: kept.name.clone(),
                    problem: "has a value its pattern refuses for",
                });
            }
            values.insert(kept.name.clone(), text);
        }
        Ok(values)
    }
}

/// Where a token request goes, and the same URL as messages show it
/// (without values kept from token responses).
struct Target {
    url: Url,
    shown: Url,
}

/// The answers of a client's token endpoint; `secrets` are the request
/// values an error description must not echo.
struct TokenEndpoint<'a> {
    client: &'a Client,
    secrets: &'a [&'a str],
}

impl Classify for TokenEndpoint<'_> {
    fn provider(&self) -> &str {
        &self.client.provider
    }

    fn reject(&self, failure: &Failure<'_>) -> Error {
        let Failure {
            url,
            status,
            headers,
            body,
            ..
        } = *failure;
        self.client
            .endpoint_error(url, status, headers, body, self.secrets)
    }
}

/// `expires_in` as a number or, from some providers, a string.
fn seconds<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Seconds {
        Number(u64),
        Text(String),
    }

    Ok(match Option::<Seconds>::deserialize(deserializer)? {
        Some(Seconds::Number(seconds)) => Some(seconds),
        Some(Seconds::Text(text)) => text.trim().parse().ok(),
        None => None,
    })
}

/// 256 random bits, base64url without padding: a `state` or PKCE verifier.
/// A fresh random `state` value: 256 bits, base64url, 43 characters. For
/// flows that carry their own state, such as an OAuth 1.0a callback URL.
///
/// # Panics
///
/// When the operating system has no source of randomness.
pub fn random_state() -> String {
    random_token()
}

fn random_token() -> String {
    let mut bytes = [0_u8; RANDOM_BYTES];
    getrandom::fill(&mut bytes).expect("the operating system provides random bytes");
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The S256 challenge of `verifier`: base64url(SHA-256(verifier)).
fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// `text` from a provider made fit for a message by `shape` (tags
/// dropped, cut short), with every one of `secrets` blanked out before it
/// is cut, so that a cut cannot leave part of one behind, and after.
fn provider_text(text: &str, secrets: &[&str], shape: fn(&str) -> String) -> String {
    redact(&shape(&redact(text, secrets)), secrets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_challenge_matches_rfc_7636_appendix_b() {
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn random_tokens_are_43_url_safe_characters_and_differ() {
        let (a, b) = (random_token(), random_token());

        assert_eq!(a.len(), 43);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_ne!(a, b);
    }

    #[test]
    fn provider_text_never_keeps_part_of_a_secret_it_cut() {
        let secret = "1//0gRefreshTokenThatTheProviderEchoedBack";
        let description = format!("{}{secret} is invalid", "x".repeat(290));

        let shown = provider_text(&description, &[secret], plain_text);

        assert!(!shown.contains(&secret[..8]), "{shown}");
        assert!(shown.contains("[REDACTED]"), "{shown}");
    }

    #[test]
    fn an_authorization_debugs_without_its_state_or_verifier() {
        let authorization = Authorization {
            url: Url::parse("https://accounts.example.test/auth?state=the-state-value&x=1")
                .unwrap(),
            state: "the-state-value".to_owned(),
            pkce_verifier: Some(SecretString::from("the-verifier-value")),
        };

        let debug = format!("{authorization:?}");

        assert!(!debug.contains("the-state-value"), "{debug}");
        assert!(!debug.contains("the-verifier-value"), "{debug}");
        assert!(
            debug.contains("https://accounts.example.test/auth"),
            "{debug}"
        );
    }

    #[test]
    fn redact_blanks_every_secret() {
        assert_eq!(
            redact("token abc and xyz", &["abc", "", "xyz"]),
            "token [REDACTED] and [REDACTED]"
        );
    }

    #[test]
    fn merge_refresh_keeps_the_stored_refresh_token_when_none_comes_back() {
        let stored = Credentials::OAuth2 {
            access_token: SecretString::from("old-access"),
            refresh_token: Some(SecretString::from("stored-refresh")),
            expires_at: None,
            scope: Some("a b".to_owned()),
            values: ConnectionValues::default(),
        };
        let refreshed = TokenSet {
            access_token: SecretString::from("new-access"),
            refresh_token: None,
            expires_at: None,
            scope: None,
            values: ConnectionValues::default(),
        };

        let merged = stored.merge_refresh(refreshed);

        let Credentials::OAuth2 {
            access_token,
            refresh_token,
            scope,
            ..
        } = &merged
        else {
            panic!("expected OAuth 2.0, got {merged:?}");
        };
        assert_eq!(access_token.expose_secret(), "new-access");
        assert_eq!(
            refresh_token.as_ref().map(|t| t.expose_secret()),
            Some("stored-refresh")
        );
        assert_eq!(scope.as_deref(), Some("a b"));
    }

    #[test]
    fn merge_refresh_takes_a_rotated_refresh_token() {
        let stored = TokenSet {
            access_token: SecretString::from("a"),
            refresh_token: Some(SecretString::from("old")),
            expires_at: None,
            scope: None,
            values: ConnectionValues::default(),
        }
        .into_credentials();
        let rotated = TokenSet {
            access_token: SecretString::from("b"),
            refresh_token: Some(SecretString::from("new")),
            expires_at: None,
            scope: None,
            values: ConnectionValues::default(),
        };

        let merged = stored.merge_refresh(rotated);

        assert_eq!(
            merged.refresh_token().map(|t| t.expose_secret()),
            Some("new")
        );
    }

    #[test]
    fn credentials_expire_within_the_margin() {
        let now = Utc::now();
        let expiring = |seconds| Credentials::OAuth2 {
            access_token: SecretString::from("a"),
            refresh_token: None,
            expires_at: Some(now + chrono::Duration::seconds(seconds)),
            scope: None,
            values: ConnectionValues::default(),
        };
        let margin = Duration::from_secs(900);

        assert!(expiring(600).expires_within(margin, now));
        assert!(!expiring(3599).expires_within(margin, now));
        assert!(!Credentials::app_password("https://x.test", "u", "p").expires_within(margin, now));
    }
}
