//! The connector of catalog entries that have no sync mapping of their
//! own: OAuth 2.0 entries, which validate through their userinfo endpoint
//! (or, `token_only`, through the token endpoint that issued and renews
//! their tokens; their one record is then the grant), and `api_key`,
//! `basic` and `oauth2_client_credentials` entries, which validate through
//! their `verify_url` (a client-credentials entry without one through its
//! token endpoint). Its one stream, `account`, asks that endpoint again on
//! every sync, so a sync checks the grant or the credentials (renewing an
//! access token when the provider rejects it) and never ends `synced`
//! without the provider's word; a `token_only` entry's grant is checked
//! only when its access token is renewed. The modes differ only in how a
//! request carries the credentials ([`Access`]).

use base64::Engine as _;
use chrono::Utc;
use reqwest::header::{HeaderName, HeaderValue};
use secrecy::{ExposeSecret as _, SecretString, zeroize::Zeroize as _};

use std::collections::BTreeMap;

use reqwest::header::HeaderMap;

use crate::{
    Account, ConnectionValues, Credentials, Error, Page, Record, StreamSpec,
    catalog::{
        ApiKeySettings, AwsSigV4, ClientCredentialsSettings, DuoDigest, HttpSignature,
        JsonTemplate, Template, UrlTemplate, VerifyMethod,
    },
    http::{Classify, Failure, Http},
    oauth2,
    providers::Provider,
};
use fleet_events::ConnectorId;
use serde::{Deserialize, Deserializer, Serialize, de::IgnoredAny};
use serde_json::{Map, Value};
use url::Url;

/// The one stream: the account's identity.
const STREAMS: &[StreamSpec] = &[StreamSpec {
    name: "account",
    description: "The account's identity as the provider's userinfo (or verify) endpoint \
                  answers it, read on every sync: a grant or key the provider no longer \
                  honours shows at once. For an entry checked at the token endpoint only, \
                  the grant (or the client id) instead.",
    reconcile: true,
}];

/// Validates credentials with one GET to `userinfo_url` (OAuth 2.0) or
/// `verify_url`, its placeholders filled with the connection's values.
///
/// The account id is the answer's `sub` (OpenID Connect userinfo) or `id`
/// (Graph-style `/me`); its name is `name`, else `email`, else the id. An
/// OAuth 2.0 userinfo answer without either fails validation; a verify
/// endpoint's answer need not name the account (2xx is enough).
#[derive(Debug)]
pub(crate) struct GenericOAuth2 {
    id: ConnectorId,
    provider: String,
    /// `None` for client credentials checked at the token endpoint, and
    /// for `token_only` OAuth 2.0 entries.
    userinfo_url: Option<UrlTemplate>,
    /// The names of the values kept from token responses, which messages
    /// do not show.
    kept: Vec<String>,
    access: Access,
    /// Extra headers of every request, values filled with the
    /// connection's settings.
    headers: Vec<(HeaderName, Template)>,
    /// The names in `headers` that stand for secrets: the entry's secret
    /// settings and the credentials fields.
    secret_names: Vec<String>,
    /// How the verify endpoint is asked, and the body of a `POST`.
    verify_method: VerifyMethod,
    verify_form: Vec<(String, Template)>,
    verify_json: Option<JsonTemplate>,
    http: Http,
}

/// How a request carries a connection's credentials.
#[derive(Debug)]
pub(crate) enum Access {
    /// An OAuth 2.0 access token, as a bearer token.
    Bearer,
    /// An API key in a header, after a prefix.
    HeaderKey { name: HeaderName, prefix: String },
    /// An API key in a query parameter.
    QueryKey { name: String },
    /// An API key in the verify URL's path or query, or in its JSON body,
    /// where the entry's templates put it (`{api_key}`).
    KeyInRequest,
    /// A user name and password, as HTTP Basic, the user name built from
    /// a template when the entry gives one; `secret_username` when the
    /// form asks for the user name as a password (an API key sent as the
    /// user name), so that it is blanked like one.
    Basic {
        username: Option<Template>,
        secret_username: bool,
        /// A header that carries `base64(user:password)` as its whole
        /// value, instead of `Authorization: Basic …`.
        header: Option<HeaderName>,
    },
    /// A user name and password as an AWS access key id and secret
    /// access key, signing each request (Signature Version 4) for the
    /// region and service the templates give.
    AwsSigV4(AwsSigV4),
    /// A user name and password as a Duo integration key and secret key,
    /// signing each request as Duo's APIs want.
    Duo(DuoDigest),
    /// A user name and password as a key id and private key, signing each
    /// request with HTTP Message Signatures (RFC 9421).
    HttpSignature(Box<HttpSignature>),
    /// An access token fetched with the connection's client credentials.
    ClientCredentials(Box<ClientCredentialsSettings>),
}

impl Access {
    /// Where an `[api_key]` table puts the key.
    pub(crate) fn api_key(settings: &ApiKeySettings) -> Self {
        match (&settings.header, &settings.query) {
            (Some(header), _) => Self::HeaderKey {
                // Checked when the catalog was loaded.
                name: HeaderName::from_bytes(header.as_bytes())
                    .unwrap_or(reqwest::header::AUTHORIZATION),
                prefix: settings.prefix.clone(),
            },
            (None, Some(query)) => Self::QueryKey {
                name: query.clone(),
            },
            (None, None) => Self::KeyInRequest,
        }
    }
}

impl GenericOAuth2 {
    /// The connector of an OAuth 2.0 entry, validated at `userinfo_url`, or
    /// at the token endpoint only without one (`token_only`).
    pub(crate) fn new(
        id: ConnectorId,
        provider: String,
        userinfo_url: Option<UrlTemplate>,
        kept: Vec<String>,
        http: Http,
    ) -> Self {
        Self::with_access(id, provider, userinfo_url, kept, Access::Bearer, http)
    }

    /// The connector of an entry whose requests carry credentials as
    /// `access` says, validated at `verify_url` (client credentials without
    /// one at the token endpoint).
    pub(crate) fn with_access(
        id: ConnectorId,
        provider: String,
        verify_url: Option<UrlTemplate>,
        kept: Vec<String>,
        access: Access,
        http: Http,
    ) -> Self {
        Self {
            id,
            provider,
            userinfo_url: verify_url,
            kept,
            access,
            headers: Vec::new(),
            secret_names: Vec::new(),
            verify_method: VerifyMethod::Get,
            verify_form: Vec::new(),
            verify_json: None,
            http,
        }
    }

    /// Asks the verify endpoint as an `api_key` or `basic` entry says: its
    /// `verify_method`, with its `verify_form` (values filled with the
    /// connection's settings) as the body.
    pub(crate) fn with_verify_request_of(mut self, auth: &crate::catalog::Auth) -> Self {
        if let Some(request) = auth.verify_request() {
            self.verify_method = request.method;
            self.verify_form = request
                .form
                .iter()
                .map(|(name, value)| (name.clone(), value.clone()))
                .collect();
            self.verify_json = request.json.cloned();
        }
        self
    }

    /// Sends `headers` (names checked when the catalog was loaded) with
    /// every request; `secret` names the settings among their values that
    /// are secrets, blanked like the credentials from a failed answer that
    /// echoes them.
    pub(crate) fn with_headers(
        mut self,
        headers: &BTreeMap<String, Template>,
        secret: impl IntoIterator<Item = String>,
    ) -> Self {
        self.secret_names = CREDENTIAL_FIELDS
            .iter()
            .map(|field| (*field).to_owned())
            .chain(secret)
            .collect();
        self.headers = headers
            .iter()
            .filter_map(|(name, value)| {
                Some((HeaderName::from_bytes(name.as_bytes()).ok()?, value.clone()))
            })
            .collect();
        self
    }

    /// The extra headers, filled with the connection's values, and the
    /// secrets they send.
    fn extra_headers(
        &self,
        credentials: &Credentials,
    ) -> Result<(HeaderMap, Vec<SecretString>), Error> {
        let mut values = credentials.values();
        // The credentials fields a header may hold (`{api_key}`).
        if self
            .headers
            .iter()
            .any(|(_, t)| t.names().any(|n| CREDENTIAL_FIELDS.contains(&n)))
        {
            match credentials {
                Credentials::ApiKey { api_key, .. } => {
                    values.insert("api_key".to_owned(), api_key.expose_secret().to_owned());
                }
                Credentials::Basic {
                    username, password, ..
                } => {
                    values.insert("username".to_owned(), username.clone());
                    values.insert("password".to_owned(), password.expose_secret().to_owned());
                }
                _ => {}
            }
        }
        let headers = self.render_headers(&values);
        let sent: Vec<SecretString> = self
            .headers
            .iter()
            .flat_map(|(_, template)| template.names())
            .filter(|name| self.secret_names.iter().any(|secret| secret == name))
            .filter_map(|name| values.get(name))
            .filter(|value| !value.is_empty())
            .map(|value| SecretString::from(value.clone()))
            .collect();
        for field in CREDENTIAL_FIELDS {
            if let Some(mut secret) = values.remove(field) {
                secret.zeroize();
            }
        }
        Ok((headers?, sent))
    }

    /// The extra headers with `values` filled in.
    fn render_headers(&self, values: &ConnectionValues) -> Result<HeaderMap, Error> {
        let mut headers = HeaderMap::new();
        for (name, template) in &self.headers {
            let refused = |problem: String| Error::Template {
                provider: self.provider.clone(),
                what: "request headers",
                problem,
            };
            let mut text = template
                .render(values)
                .map_err(|e| refused(e.to_string()))?;
            let value = HeaderValue::from_str(&text);
            text.zeroize();
            let mut value =
                value.map_err(|_| refused(format!("the header {name} cannot carry its value")))?;
            // It may hold a secret setting or a credential: kept out of
            // debug output.
            value.set_sensitive(true);
            headers.insert(name.clone(), value);
        }
        Ok(headers)
    }
}

/// The credentials fields a catalog entry's `headers` may use.
const CREDENTIAL_FIELDS: [&str; 3] = ["api_key", "username", "password"];

/// The cursor of `account`, which is one page read whole: nothing to
/// keep, and whatever a caller hands back is read as the start.
#[derive(Debug, Serialize)]
pub(crate) struct Whole;

impl<'de> Deserialize<'de> for Whole {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        IgnoredAny::deserialize(deserializer)?;
        Ok(Self)
    }
}

/// The identity fields of a userinfo answer.
#[derive(Deserialize, Default)]
struct UserInfo {
    #[serde(alias = "id", deserialize_with = "super::fields::external_id")]
    sub: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    email: Option<String>,
}

impl Provider for GenericOAuth2 {
    type Cursor = Whole;
    const STREAMS: &'static [StreamSpec] = STREAMS;

    fn id(&self) -> &ConnectorId {
        &self.id
    }

    fn schema_connector(&self) -> &str {
        crate::schemas::GENERIC_OAUTH2
    }

    async fn validate(&self, credentials: &Credentials) -> Result<Account, Error> {
        Ok(self.identity(credentials).await?.0)
    }

    fn first(&self, _stream: &StreamSpec) -> Whole {
        Whole
    }

    async fn page(
        &self,
        credentials: &Credentials,
        _stream: &StreamSpec,
        _cursor: Whole,
    ) -> Result<Page, Error> {
        let (_, record) = self.identity(credentials).await?;
        Ok(Page {
            records: vec![record],
            total: Some(1),
            ..Page::finished()
        })
    }
}

impl GenericOAuth2 {
    /// The account and the one record of `account`, checked where the
    /// entry says: at its userinfo (or verify) endpoint; else, for a
    /// `token_only` OAuth 2.0 entry, the grant the token endpoint issued;
    /// else, for client credentials, a new token from the token endpoint.
    async fn identity(&self, credentials: &Credentials) -> Result<(Account, Record), Error> {
        let record = |external_id: String, payload: Value| Record {
            external_id,
            payload,
            updated_at: None,
        };
        let Some(userinfo_url) = &self.userinfo_url else {
            if matches!(self.access, Access::Bearer) {
                let grant = self.grant(credentials)?;
                let account = Account::new(&self.provider, &self.provider);
                return Ok((account, record("grant".to_owned(), grant)));
            }
            let client_id = self.token_check(credentials).await?;
            let account = Account::new(&client_id, &client_id);
            let payload = serde_json::json!({ "client_id": client_id });
            return Ok((account, record(client_id, payload)));
        };
        let (user, payload) = self.user(userinfo_url, credentials).await?;
        let name = user.name.or(user.email).unwrap_or_default();
        if user.sub.is_empty() {
            let account = Account::new(&self.provider, &name);
            return Ok((account, record("account".to_owned(), payload)));
        }
        let account = Account::new(&user.sub, &name);
        Ok((account, record(user.sub, payload)))
    }

    /// The grant of a token-only OAuth 2.0 connection (scopes, expiry,
    /// whether it renews), with no token in it. The token endpoint issued
    /// the credentials, and the sync step renews them before they expire;
    /// an access token that expired with nothing to renew it by needs the
    /// user to reconnect.
    fn grant(&self, credentials: &Credentials) -> Result<Value, Error> {
        let Credentials::OAuth2 {
            refresh_token,
            expires_at,
            scope,
            ..
        } = credentials
        else {
            return Err(Error::CredentialsKind {
                connector: self.id.clone(),
                expected: "an OAuth 2.0 grant",
                found: credentials.kind(),
            });
        };
        if refresh_token.is_none() && expires_at.is_some_and(|at| at <= Utc::now()) {
            return Err(Error::NoRefreshToken {
                provider: self.provider.clone(),
            });
        }
        Ok(serde_json::json!({
            "scope": scope,
            "expires_at": expires_at,
            "renewable": refresh_token.is_some(),
        }))
    }

    /// Asks the token endpoint of a client-credentials entry without a
    /// `verify_url` for a new access token, whatever the stored one: the
    /// check of the client id and secret. Returns the client id.
    async fn token_check(&self, credentials: &Credentials) -> Result<String, Error> {
        let (
            Access::ClientCredentials(settings),
            Credentials::ClientCredentials {
                client_id,
                client_secret,
                values,
                ..
            },
        ) = (&self.access, credentials)
        else {
            return Err(Error::CredentialsKind {
                connector: self.id.clone(),
                expected: "OAuth 2.0 client credentials",
                found: credentials.kind(),
            });
        };
        let client = oauth2::Client::new(
            self.id.clone(),
            self.provider.clone(),
            settings.oauth2(client_id, client_secret),
            self.http.clone(),
        );
        client.client_credentials(values).await?;
        Ok(client_id.clone())
    }

    /// The userinfo (or verify) answer, read and as it came.
    async fn user(
        &self,
        userinfo_url: &UrlTemplate,
        credentials: &Credentials,
    ) -> Result<(UserInfo, Value), Error> {
        let mut kept: Vec<&str> = self.kept.iter().map(String::as_str).collect();
        let mut values = credentials.values();
        // The user name in a verify URL (Twilio's account SID), shown as
        // redacted in messages.
        if let Credentials::Basic { username, .. } = credentials
            && userinfo_url.names().any(|name| name == "username")
        {
            values.insert("username".to_owned(), username.clone());
            kept.push("username");
        }
        // The key in the path (Telegram's `/bot{api_key}/getMe`), shown
        // redacted.
        if let Credentials::ApiKey { api_key, .. } = credentials
            && userinfo_url.names().any(|name| name == "api_key")
        {
            values.insert("api_key".to_owned(), api_key.expose_secret().to_owned());
            kept.push("api_key");
        }
        let rendered = userinfo_url.render_shown(&values, &kept, self.http.allow_http());
        if let Some(mut key) = values.remove("api_key") {
            key.zeroize();
        }
        let (url, shown) = rendered.map_err(|e| Error::Template {
            provider: self.provider.clone(),
            what: if matches!(self.access, Access::Bearer) {
                "userinfo URL"
            } else {
                "verify URL"
            },
            problem: e.to_string(),
        })?;
        let fetched;
        let token = match &self.access {
            Access::ClientCredentials(settings) => {
                fetched = self.client_credentials_token(settings, credentials).await?;
                Some(&fetched)
            }
            Access::Bearer => Some(credentials.bearer(&self.id)?),
            Access::HeaderKey { .. }
            | Access::QueryKey { .. }
            | Access::KeyInRequest
            | Access::Basic { .. }
            | Access::AwsSigV4(_)
            | Access::Duo(_)
            | Access::HttpSignature(_) => None,
        };
        let request = || self.request(credentials, token, &url, &shown);
        if matches!(self.access, Access::Bearer) {
            let payload: Value = self.http.fetch(self, &shown, request).await?.body;
            let user = UserInfo::deserialize(&payload)
                .map_err(|e| Error::invalid_response(&self.provider, &shown, &e))?;
            return Ok((user, payload));
        }
        // Any 2xx validates typed-in credentials: the answer need not be
        // JSON nor name the account. A JSON answer is kept as the record.
        let reply = self
            .http
            .retry(|| async { self.http.exchange(self, &shown, request()?).await })
            .await?;
        let payload =
            serde_json::from_slice(&reply.body).unwrap_or_else(|_| Value::Object(Map::new()));
        let user = UserInfo::deserialize(&payload).unwrap_or_default();
        Ok((user, payload))
    }

    /// The request of `url` (shown as `shown`) with the credentials on
    /// it: a GET, or the entry's `POST` with its form body.
    fn request(
        &self,
        credentials: &Credentials,
        token: Option<&SecretString>,
        url: &Url,
        shown: &Url,
    ) -> Result<crate::http::Request, Error> {
        let wrong_kind = |expected: &'static str| Error::CredentialsKind {
            connector: self.id.clone(),
            expected,
            found: credentials.kind(),
        };
        let body = self.body(credentials)?;
        let (headers, secrets) = self.extra_headers(credentials)?;
        // What a signature covers: the extra headers as sent, with the
        // Content-Type of the body unless the entry sets its own (AWS's
        // JSON APIs want `application/x-amz-json-1.1`).
        let mut sent = headers.clone();
        if let Some((content_type, _)) = &body {
            sent.entry(reqwest::header::CONTENT_TYPE)
                .or_insert(HeaderValue::from_static(content_type));
        }
        let body_bytes = body.as_ref().map_or(&[][..], |(_, bytes)| bytes.as_slice());
        let start_at = |url: Url, shown: Url| {
            let request = match self.verify_method {
                VerifyMethod::Get => self.http.get(url),
                VerifyMethod::Post => self.http.post(url),
            }
            .shown_as(shown);
            match &body {
                Some((content_type, body)) => request.body_encoded(content_type, body.clone()),
                None => request,
            }
        };
        let start = || start_at(url.clone(), shown.clone());
        let request = match (&self.access, credentials) {
            (Access::Bearer | Access::ClientCredentials(_), _) => {
                let token = token.ok_or_else(|| wrong_kind("OAuth 2.0"))?;
                start().bearer_auth(token)
            }
            (
                Access::AwsSigV4(sigv4),
                Credentials::Basic {
                    username, password, ..
                },
            ) => {
                let signature = self.aws_signature(
                    sigv4,
                    credentials,
                    url,
                    &sent,
                    body_bytes,
                    (username, password),
                )?;
                signature
                    .into_iter()
                    .fold(start(), |request, (name, value)| {
                        request.header(name, value)
                    })
                    .sends_secret(password)
            }
            (Access::HeaderKey { name, prefix }, Credentials::ApiKey { api_key, .. }) => {
                let mut value =
                    HeaderValue::from_str(&format!("{prefix}{}", api_key.expose_secret()))
                        .map_err(|_| Error::UnsendableCredentials {
                            provider: self.provider.clone(),
                            what: "API key",
                        })?;
                value.set_sensitive(true);
                start().header(name.clone(), value).sends_secret(api_key)
            }
            (Access::QueryKey { name }, Credentials::ApiKey { api_key, .. }) => {
                let mut with_key = url.clone();
                with_key
                    .query_pairs_mut()
                    .append_pair(name, api_key.expose_secret());
                let mut shown = shown.clone();
                shown.query_pairs_mut().append_pair(name, "[REDACTED]");
                start_at(with_key, shown).sends_secret(api_key)
            }
            (Access::KeyInRequest, Credentials::ApiKey { api_key, .. }) => {
                // The URL or the body carries it.
                start().sends_secret(api_key)
            }
            (
                Access::Basic {
                    username: template,
                    secret_username,
                    header,
                },
                Credentials::Basic {
                    username,
                    password,
                    values,
                },
            ) => {
                let field = username;
                let username = match template {
                    None => username.clone(),
                    Some(template) => {
                        let mut values = values.clone();
                        values.insert("username".to_owned(), username.clone());
                        template.render(&values).map_err(|e| Error::Template {
                            provider: self.provider.clone(),
                            what: "user name",
                            problem: e.to_string(),
                        })?
                    }
                };
                let request =
                    match header {
                        None => start().basic_auth(&username, password),
                        Some(header) => {
                            let encoded = SecretString::from(
                                base64::engine::general_purpose::STANDARD
                                    .encode(format!("{username}:{}", password.expose_secret())),
                            );
                            let mut value = HeaderValue::from_str(encoded.expose_secret())
                                .map_err(|_| Error::UnsendableCredentials {
                                    provider: self.provider.clone(),
                                    what: "user name and password",
                                })?;
                            value.set_sensitive(true);
                            start()
                                .header(header.clone(), value)
                                .sends_secret(password)
                                .sends_secret(&encoded)
                        }
                    };
                if *secret_username {
                    // The field as typed too, should the answer echo only it.
                    request
                        .sends_secret(&SecretString::from(username))
                        .sends_secret(&SecretString::from(field.clone()))
                } else {
                    request
                }
            }
            (Access::HeaderKey { .. } | Access::QueryKey { .. } | Access::KeyInRequest, _) => {
                return Err(wrong_kind("API key"));
            }
            (Access::Basic { .. }, _) => return Err(wrong_kind("user name and password")),
            (
                Access::Duo(digest),
                Credentials::Basic {
                    username, password, ..
                },
            ) => {
                let params = match self.verify_method {
                    VerifyMethod::Get => url.query_pairs().into_owned().collect(),
                    VerifyMethod::Post => self.form_pairs(credentials)?,
                };
                let date = crate::duo::date(Utc::now());
                let authorization = crate::duo::authorization(
                    username,
                    password,
                    *digest,
                    self.verify_method.as_str(),
                    url,
                    &params,
                    &date,
                );
                let mut value =
                    HeaderValue::from_str(authorization.expose_secret()).map_err(|_| {
                        Error::UnsendableCredentials {
                            provider: self.provider.clone(),
                            what: "integration key",
                        }
                    })?;
                value.set_sensitive(true);
                let date =
                    HeaderValue::from_str(&date).map_err(|_| Error::UnsendableCredentials {
                        provider: self.provider.clone(),
                        what: "integration key",
                    })?;
                start()
                    .header(reqwest::header::DATE, date)
                    .header(reqwest::header::AUTHORIZATION, value)
                    .sends_secret(password)
                    .sends_secret(&authorization)
            }
            (
                Access::HttpSignature(settings),
                Credentials::Basic {
                    username, password, ..
                },
            ) => {
                let signer = crate::http_signature::Signer {
                    settings,
                    key_id: username,
                    private_key: password,
                };
                let signed = signer
                    .headers(
                        self.verify_method.as_str(),
                        url,
                        &sent,
                        body_bytes,
                        Utc::now(),
                    )
                    .map_err(|e| Error::Template {
                        provider: self.provider.clone(),
                        what: "HTTP message signature",
                        problem: e.to_string(),
                    })?;
                signed
                    .into_iter()
                    .fold(start(), |request, (name, value)| {
                        request.header(name, value)
                    })
                    .sends_secret(password)
            }
            (Access::AwsSigV4(_), _) => return Err(wrong_kind("an AWS access key")),
            (Access::HttpSignature(_), _) => return Err(wrong_kind("a key id and private key")),
            (Access::Duo(_), _) => return Err(wrong_kind("a Duo integration key")),
        };
        Ok(secrets
            .iter()
            .fold(request.headers(headers), |request, secret| {
                request.sends_secret(secret)
            }))
    }

    /// The body of the verify request, when the entry gives one: its
    /// content type and bytes, a form URL-encoded or JSON (which may
    /// carry the key).
    fn body(&self, credentials: &Credentials) -> Result<Option<(&'static str, Vec<u8>)>, Error> {
        let refused = |what: &'static str, problem: String| Error::Template {
            provider: self.provider.clone(),
            what,
            problem,
        };
        let mut values = credentials.values();
        if let Some(json) = &self.verify_json {
            if let Credentials::ApiKey { api_key, .. } = credentials
                && json.names().contains(&"api_key")
            {
                values.insert("api_key".to_owned(), api_key.expose_secret().to_owned());
            }
            let rendered = json.render(&values);
            if let Some(mut key) = values.remove("api_key") {
                key.zeroize();
            }
            let body = rendered.map_err(|e| refused("verify body", e.to_string()))?;
            let bytes =
                serde_json::to_vec(&body).map_err(|e| refused("verify body", e.to_string()))?;
            return Ok(Some((crate::http::JSON_CONTENT_TYPE, bytes)));
        }
        if self.verify_form.is_empty() {
            return Ok(None);
        }
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in self.form_pairs(credentials)? {
            form.append_pair(&name, &value);
        }
        Ok(Some((
            crate::http::FORM_CONTENT_TYPE,
            form.finish().into_bytes(),
        )))
    }

    /// The verify request's form parameters, filled with the connection's
    /// settings.
    fn form_pairs(&self, credentials: &Credentials) -> Result<Vec<(String, String)>, Error> {
        let values = credentials.values();
        self.verify_form
            .iter()
            .map(|(name, template)| {
                let value = template.render(&values).map_err(|e| Error::Template {
                    provider: self.provider.clone(),
                    what: "verify form",
                    problem: e.to_string(),
                })?;
                Ok((name.clone(), value))
            })
            .collect()
    }

    /// The headers that sign a request for AWS: for the region and service
    /// the entry's templates give with the connection's settings, over the
    /// headers `sent` (the extra ones and the body's Content-Type) and the
    /// `body`.
    fn aws_signature(
        &self,
        sigv4: &AwsSigV4,
        credentials: &Credentials,
        url: &Url,
        sent: &HeaderMap,
        body: &[u8],
        (access_key_id, secret_access_key): (&str, &SecretString),
    ) -> Result<Vec<(HeaderName, HeaderValue)>, Error> {
        let values = credentials.values();
        let scope_part = |template: &Template| {
            let problem = |problem: String| Error::Template {
                provider: self.provider.clone(),
                what: "AWS signing scope",
                problem,
            };
            let value = template
                .render(&values)
                .map_err(|e| problem(e.to_string()))?;
            if crate::catalog::is_aws_name(&value) {
                Ok(value)
            } else {
                Err(problem(format!(
                    "{value:?} is not an AWS region or service name"
                )))
            }
        };
        let (region, service) = (scope_part(&sigv4.region)?, scope_part(&sigv4.service)?);
        let scope = crate::aws_sigv4::Scope {
            access_key_id,
            secret_access_key,
            region: &region,
            service: &service,
        };
        crate::aws_sigv4::signature(
            &scope,
            self.verify_method.as_str(),
            url,
            sent,
            body,
            std::time::SystemTime::now(),
        )
        .map_err(|_| Error::UnsendableCredentials {
            provider: self.provider.clone(),
            what: "AWS access key",
        })
    }

    /// The stored access token of client credentials while it is fresh,
    /// else one fetched now (the refresh step stores the ones it fetches;
    /// this one lives for this call).
    async fn client_credentials_token(
        &self,
        settings: &ClientCredentialsSettings,
        credentials: &Credentials,
    ) -> Result<SecretString, Error> {
        let Credentials::ClientCredentials {
            client_id,
            client_secret,
            access_token,
            values,
            ..
        } = credentials
        else {
            return Err(Error::CredentialsKind {
                connector: self.id.clone(),
                expected: "OAuth 2.0 client credentials",
                found: credentials.kind(),
            });
        };
        if let Some(token) = access_token
            && !credentials.expires_within(settings.token_expiry_margin, Utc::now())
        {
            return Ok(token.clone());
        }
        let client = oauth2::Client::new(
            self.id.clone(),
            self.provider.clone(),
            settings.oauth2(client_id, client_secret),
            self.http.clone(),
        );
        Ok(client.client_credentials(values).await?.access_token)
    }
}

impl Classify for GenericOAuth2 {
    fn provider(&self) -> &str {
        &self.provider
    }

    /// Typed-in credentials refused with 401 or 403 are the user's to fix.
    fn recognise(&self, failure: &Failure<'_>) -> Option<Error> {
        let what = match self.access {
            Access::HeaderKey { .. } | Access::QueryKey { .. } | Access::KeyInRequest => "API key",
            Access::Basic { .. } => "user name and password",
            Access::AwsSigV4(_) => "AWS access key",
            Access::Duo(_) => "integration key and secret key",
            Access::HttpSignature(_) => "key id and private key",
            Access::Bearer | Access::ClientCredentials(_) => return None,
        };
        let status = failure.status.as_u16();
        (status == 401 || status == 403).then(|| Error::CredentialsRejected {
            provider: self.provider.clone(),
            what,
            status,
        })
    }
}
