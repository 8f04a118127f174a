//! What can go wrong when a connector talks to a provider, and what to do about it.

use std::time::Duration;

use fleet_events::ConnectorId;

use crate::{http, text};

/// A failed provider call.
///
/// `Display` is a message a person can act on: it names the provider, the
/// site or URL (never its query string) and the provider's error code. It
/// never contains a password or token. [`Error::class`] tells the caller
/// whether to retry, give up, or ask the user to reconnect.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The site URL in the credentials is unusable.
    #[error("site URL '{url}' {problem}")]
    SiteUrl {
        /// The URL as given, without user info, query or fragment.
        url: String,
        /// What is wrong with it, as the end of a sentence.
        problem: &'static str,
    },

    /// The connector was handed credentials of another kind.
    #[error("the {connector} connector takes {expected} credentials, not {found}")]
    CredentialsKind {
        /// The connector that was called.
        connector: ConnectorId,
        /// The kind it takes.
        expected: &'static str,
        /// The kind it was given.
        found: &'static str,
    },

    /// WordPress rejected the user name or application password: the user
    /// has to create a new application password and reconnect.
    #[error("WordPress at {site} {problem} ({code}); {remedy}")]
    AppPasswordRejected {
        /// What is wrong, in words: the user is unknown, or the password
        /// is not one of theirs.
        problem: String,
        /// What the user can do about it.
        remedy: &'static str,
        /// The site, as `scheme://host[:port][/path]`.
        site: String,
        /// The user name the credentials carry.
        username: String,
        /// WordPress's error code (`incorrect_password`, `invalid_username`, ...).
        code: String,
    },

    /// The site does not allow application passwords, for everyone or for
    /// this user; only a site administrator can change that.
    #[error(
        "WordPress at {site} does not allow application passwords for user '{username}' ({code}); \
         a site administrator has to enable them"
    )]
    AppPasswordsUnavailable {
        /// The site, as `scheme://host[:port][/path]`.
        site: String,
        /// The user name the credentials carry.
        username: String,
        /// WordPress's error code.
        code: String,
    },

    /// WordPress treated the request as logged out (`rest_not_logged_in`,
    /// or `rest_forbidden` with 401): the credentials did not sign anyone
    /// in. WordPress answers so when the user name or application password
    /// is wrong on a site that ignores unknown credentials, and when the
    /// `Authorization` header never reached it.
    #[error(
        "WordPress at {site} did not sign in user '{username}' ({code}): check the user name and \
         the application password (Users > Profile > Application Passwords); if both are right, \
         the web server or a proxy in front of WordPress strips the Authorization header and must \
         pass it on"
    )]
    AuthorizationStripped {
        /// The site, as `scheme://host[:port][/path]`.
        site: String,
        /// The user name the credentials carry.
        username: String,
        /// WordPress's error code.
        code: String,
    },

    /// The address answered, but not as WordPress's REST API: no JSON
    /// where WordPress always sends JSON.
    #[error(
        "{site} did not answer {route} as a WordPress site does; check that the address is the \
         WordPress site's own (with its path for a subdirectory install)"
    )]
    NotWordPress {
        /// Display name of the API that was asked.
        provider: String,
        /// The site, as `scheme://host[:port][/path]`.
        site: String,
        /// The route asked, such as `/wp-json/wp/v2/users/me`.
        route: String,
    },

    /// The user is known but lacks a permission the call needs (HTTP 403).
    #[error(
        "{provider} at {site} refused user '{username}' ({code}: {message}); give the user a role \
         that may read this data"
    )]
    Forbidden {
        /// Display name of the API that answered.
        provider: String,
        /// The site, as `scheme://host[:port][/path]`.
        site: String,
        /// The user name the credentials carry.
        username: String,
        /// The provider's error code.
        code: String,
        /// The provider's message, as plain text.
        message: String,
    },

    /// The API route does not exist (HTTP 404, `rest_no_route`).
    #[error(
        "{provider} at {site} has no REST route {route}; the REST API is disabled or the plugin \
         is inactive"
    )]
    NoRoute {
        /// Display name of the API that was asked.
        provider: String,
        /// The site, as `scheme://host[:port][/path]`.
        site: String,
        /// The route, such as `/wp-json/fluent-crm/v2/lists`.
        route: String,
    },

    /// The provider is rate-limiting (HTTP 429).
    #[error("{provider} at {site} is rate-limiting requests (HTTP 429)")]
    RateLimited {
        /// Display name of the API that answered.
        provider: String,
        /// The site, as `scheme://host[:port][/path]`.
        site: String,
        /// How long the provider asked to wait (`Retry-After`).
        retry_after: Option<Duration>,
    },

    /// The provider throttles the app, the user or an ad account, as its
    /// error body says: Meta signals throttling with error codes (4, 17,
    /// 32, 613, 80000–80014) on HTTP 400, LinkedIn's limits are daily.
    #[error("{provider} is rate-limiting requests ({code}: {message})")]
    Throttled {
        /// Display name of the API that answered.
        provider: String,
        /// The provider's error code.
        code: String,
        /// The provider's message, as plain text.
        message: String,
        /// How long to wait, from the provider's usage headers or, where
        /// it gives none, the connector's estimate.
        retry_after: Option<Duration>,
    },

    /// The provider failed or is down for maintenance (HTTP 408 or 5xx).
    #[error("{provider} at {site} is unavailable (HTTP {status})")]
    Unavailable {
        /// Display name of the API that answered.
        provider: String,
        /// The site, as `scheme://host[:port][/path]`.
        site: String,
        /// The HTTP status code.
        status: u16,
        /// How long the provider asked to wait (`Retry-After`).
        retry_after: Option<Duration>,
    },

    /// The request did not complete: DNS, connection, TLS, timeout, or the
    /// connection broke while the body was read.
    #[error("the request to {provider} at {url} failed")]
    Transport {
        /// Display name of the API that was asked.
        provider: String,
        /// The request URL without its query string.
        url: String,
        /// The cause, with the URL removed.
        #[source]
        source: reqwest::Error,
    },

    /// The host is, or resolves only to, an address that is not on the
    /// public internet (loopback, private, link-local, unique-local,
    /// multicast, reserved, ...), and the operator has not allowed its
    /// network: nothing was sent. Connectors reach tenants' sites and
    /// providers on the public internet only, so an address can never make
    /// the fleet call its own internal services.
    #[error(
        "refused to connect to {provider} at {host}: it is or resolves to a private or internal \
         network address, which connectors do not call; use the site's public address"
    )]
    Refused {
        /// Display name of the API that was to be asked.
        provider: String,
        /// The host of the URL, as written there (a name, or an IP
        /// literal in its normal form); never the addresses it resolved to.
        host: String,
    },

    /// The provider's response body is larger than the connectors read.
    #[error(
        "{provider} at {url} sent a response larger than {limit} bytes, more than the fleet reads \
         from one request"
    )]
    BodyTooLarge {
        /// Display name of the API that was asked.
        provider: String,
        /// The request URL without its query string.
        url: String,
        /// The limit, `max_body_bytes`.
        limit: u64,
    },

    /// The provider answered with a redirect, which connectors never follow:
    /// following one could send the credentials to another host.
    #[error(
        "{provider} answered {url} with a redirect (HTTP {status}) to {location}; if the site \
         moved, reconnect it with its new address"
    )]
    Redirected {
        /// Display name of the API that was asked.
        provider: String,
        /// The request URL without its query string.
        url: String,
        /// The HTTP status code.
        status: u16,
        /// Where the redirect pointed, without its query string.
        location: String,
    },

    /// The provider refused the request for another reason (another 4xx).
    #[error("{provider} refused the request to {url} with HTTP {status} ({code}: {message})")]
    Rejected {
        /// Display name of the API that answered.
        provider: String,
        /// The request URL without its query string.
        url: String,
        /// The HTTP status code.
        status: u16,
        /// The provider's error code, or `unknown` when the body had none.
        code: String,
        /// The provider's message, as plain text.
        message: String,
    },

    /// A successful response did not have the expected shape (an HTML page
    /// from a maintenance or security plugin, a changed API).
    #[error("{provider} answered {url} with a body that is not the expected JSON")]
    InvalidResponse {
        /// Display name of the API that answered.
        provider: String,
        /// The request URL without its query string.
        url: String,
        /// What did not match, with no string value of the body in it.
        #[source]
        source: serde_json::Error,
    },

    /// An OAuth token endpoint refused a code exchange, refresh or
    /// revocation with an OAuth error body (`{"error", "error_description"}`).
    #[error(
        "{provider}'s OAuth endpoint {url} refused the request with HTTP {status} \
         ({code}: {description})"
    )]
    TokenEndpoint {
        /// Display name of the provider.
        provider: String,
        /// The endpoint, without its query string.
        url: String,
        /// The HTTP status code.
        status: u16,
        /// The OAuth error code (`invalid_grant`, `invalid_client`, ...),
        /// or `unknown` when the body had none.
        code: String,
        /// The provider's description, with any token or secret of the
        /// request blanked out.
        description: String,
    },

    /// The API refused typed-in credentials (an API key, a user name and
    /// password) with HTTP 401 or 403: the user has to enter working ones.
    #[error(
        "{provider} refused the {what} (HTTP {status}); check it, or create a new one, and \
         connect again"
    )]
    CredentialsRejected {
        /// Display name of the API that answered.
        provider: String,
        /// What was refused: `API key`, `user name and password`.
        what: &'static str,
        /// The HTTP status.
        status: u16,
    },

    /// Typed-in credentials hold characters an HTTP header cannot carry:
    /// nothing was sent, and the user has to enter them again.
    #[error(
        "the {what} of this connection to {provider} holds characters an HTTP header cannot \
         carry; enter it again"
    )]
    UnsendableCredentials {
        /// Display name of the provider.
        provider: String,
        /// What cannot be sent: `API key`.
        what: &'static str,
    },

    /// The API refused the access token (HTTP 401, or Meta's error code
    /// 190 on HTTP 400): it expired early or was revoked. A caller that can
    /// renew the token renews once and retries; if the retry fails the same
    /// way, the user has to reconnect.
    #[error("{provider} rejected the access token ({message})")]
    AccessTokenRejected {
        /// Display name of the API that answered.
        provider: String,
        /// The provider's message, as plain text.
        message: String,
    },

    /// The connected account, or the app, lacks a permission the call
    /// needs: someone has to grant it, and the user may have to reconnect
    /// and approve every permission asked for.
    #[error(
        "{provider} refused the request for lack of permission ({code}: {message}); give the \
         connected account access to this data, or reconnect and approve every requested permission"
    )]
    PermissionDenied {
        /// Display name of the API that answered.
        provider: String,
        /// The provider's error code.
        code: String,
        /// The provider's message, as plain text.
        message: String,
    },

    /// The provider does not serve the API version the catalog asks for
    /// (LinkedIn's 426 `NONEXISTENT_VERSION` once a version is sunset).
    #[error(
        "{provider} does not serve API version '{version}' ({code}: {message}); set a supported \
         version as api_version in the provider's catalog entry"
    )]
    ApiVersion {
        /// Display name of the API that answered.
        provider: String,
        /// The version that was sent.
        version: String,
        /// The provider's error code.
        code: String,
        /// The provider's message, as plain text.
        message: String,
    },

    /// The connection's grant lacks a permission the call needs, which the
    /// user can grant by connecting again and approving it (Meta's codes 10
    /// and 200–299: "permission is either not granted or has been
    /// removed").
    #[error(
        "{provider} refused the request because the connection lacks a permission: {permission} \
         ({code}: {message}); reconnect the account and approve every permission it asks for"
    )]
    PermissionMissing {
        /// Display name of the API that answered.
        provider: String,
        /// The missing permission as the provider names it (`ads_read`),
        /// several joined with "or", or the permissions asked for when the
        /// provider names none.
        permission: String,
        /// The provider's error code.
        code: String,
        /// The provider's message, as plain text.
        message: String,
    },

    /// The provider refused to answer a request because it asks for too
    /// much data at once (Meta's code 1, "Please reduce the amount of data
    /// you're asking for"): the same request fails again, a smaller one
    /// may not.
    #[error("{provider} refused to return so much data at once from {url} ({message})")]
    TooMuchData {
        /// Display name of the API that answered.
        provider: String,
        /// The request URL without its query string.
        url: String,
        /// The provider's message, as plain text.
        message: String,
    },

    /// An OAuth token endpoint refused a refresh token with an error code
    /// that the provider uses for a refresh token that expired or was
    /// revoked (`invalid_grant`, and LinkedIn's `invalid_request`; see
    /// [`OAuth2Settings::invalid_refresh_token_errors`](crate::catalog::OAuth2Settings::invalid_refresh_token_errors)).
    #[error(
        "{provider}'s OAuth endpoint {url} refused the refresh token with HTTP {status} ({code}: \
         {description}); it expired or was revoked, so the user has to reconnect"
    )]
    RefreshTokenRejected {
        /// Display name of the provider.
        provider: String,
        /// The endpoint, without its query string.
        url: String,
        /// The HTTP status code.
        status: u16,
        /// The OAuth error code.
        code: String,
        /// The provider's description, with any token or secret of the
        /// request blanked out.
        description: String,
    },

    /// OAuth 2.0 credentials without a refresh token, for a provider that
    /// renews with one: the access token cannot be renewed.
    #[error(
        "{provider} issued no refresh token for this connection, so its access token cannot be \
         renewed; the user has to reconnect"
    )]
    NoRefreshToken {
        /// Display name of the provider.
        provider: String,
    },

    /// A URL of the provider's catalog entry could not be filled with the
    /// connection's settings and kept values: one is missing or cannot
    /// take its place (a setting that would change the host).
    #[error("the {what} of {provider} cannot be built for this connection: {problem}")]
    Template {
        /// The provider's name.
        provider: String,
        /// Which URL or parameter (`token URL`).
        what: &'static str,
        /// What is wrong, naming the value but never showing it.
        problem: String,
    },

    /// A token response lacks a value the catalog entry keeps and
    /// requires, or has one its pattern refuses.
    #[error(
        "{provider}'s token response {problem} {name} (oauth2.token_values of its catalog entry)"
    )]
    TokenValue {
        /// The provider's name.
        provider: String,
        /// The value's name.
        name: String,
        /// `lacks`, `has a value its pattern refuses for`, or `has a value
        /// too long or with control characters for`.
        problem: &'static str,
    },

    /// The OAuth client of a provider has no client id: the operator has to
    /// configure one.
    #[error(
        "no OAuth client is configured for {connector}; set its client id and secret in the \
         connectors' oauth_clients configuration"
    )]
    ClientNotConfigured {
        /// The catalog entry.
        connector: ConnectorId,
    },

    /// An OAuth 1.0a endpoint refused the consumer key or the signature made
    /// with the consumer secret while a request token was asked for: the
    /// operator's client configuration is wrong.
    #[error(
        "{provider}'s OAuth endpoint {url} refused the consumer key or its signature (HTTP \
         {status}: {message}); check the consumer key and secret in the connectors' oauth_clients \
         configuration"
    )]
    ConsumerRejected {
        /// Display name of the provider.
        provider: String,
        /// The endpoint, without its query string.
        url: String,
        /// The HTTP status code.
        status: u16,
        /// The provider's message, as plain text, with any token blanked out.
        message: String,
    },

    /// An OAuth 1.0a endpoint refused to exchange the request token: it
    /// expired, was used already, was not approved, or the verifier does
    /// not match. The user has to start connecting again.
    #[error(
        "{provider}'s OAuth endpoint {url} refused the request token or its verifier (HTTP \
         {status}: {message}); start connecting again"
    )]
    RequestTokenRejected {
        /// Display name of the provider.
        provider: String,
        /// The endpoint, without its query string.
        url: String,
        /// The HTTP status code.
        status: u16,
        /// The provider's message, as plain text, with any token blanked out.
        message: String,
    },

    /// The request-token answer did not confirm the callback
    /// (`oauth_callback_confirmed=true`): the provider does not speak
    /// OAuth 1.0a as the catalog says.
    #[error(
        "{provider}'s OAuth endpoint {url} did not confirm the callback URL; it does not speak \
         OAuth 1.0a as the catalog entry says"
    )]
    CallbackNotConfirmed {
        /// Display name of the provider.
        provider: String,
        /// The endpoint, without its query string.
        url: String,
    },

    /// The API refused OAuth 1.0a credentials (HTTP 401): the token
    /// expired (Trello's die after 30 days unless they never expire), was
    /// revoked, or lacks a permission, or the consumer key does not match
    /// it. There is no refresh: the user has to reconnect.
    #[error(
        "{provider} refused the connection's token ({message}); it expired, was revoked or lacks \
         a permission: reconnect the account"
    )]
    TokenRejected {
        /// Display name of the API that answered.
        provider: String,
        /// The provider's message, as plain text.
        message: String,
    },

    /// The Google account has access to no Google Analytics 4 property.
    #[error(
        "the Google account has access to no Google Analytics 4 property; grant it access to one \
         and reconnect"
    )]
    NoAnalyticsProperty,

    /// The connector has no stream of that name.
    #[error("the {connector} connector has no stream '{stream}'")]
    UnknownStream {
        /// The connector that was called.
        connector: ConnectorId,
        /// The stream asked for.
        stream: String,
    },

    /// The cursor was not one this connector returned.
    #[error("the cursor is not a {connector} cursor")]
    InvalidCursor {
        /// The connector that was called.
        connector: ConnectorId,
        /// What did not match.
        #[source]
        source: serde_json::Error,
    },
}

impl Error {
    /// A successful response to `url` whose body did not decode as
    /// expected; the decoding error shows no value from the body (see
    /// [`text::json_error`]).
    pub(crate) fn invalid_response(
        provider: &str,
        url: &url::Url,
        source: &serde_json::Error,
    ) -> Self {
        Self::InvalidResponse {
            provider: provider.to_owned(),
            url: http::display_url(url),
            source: text::json_error(source),
        }
    }
}

/// The longest wait a provider's answer can ask for: a day covers every
/// documented quota window (GA4's daily quota resets at midnight Pacific).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

/// What the caller should do after an [`Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Try again later, after `retry_after` when the provider said so.
    Retryable {
        /// The provider's `Retry-After`, when it sent one, at most
        /// [`MAX_RETRY_AFTER`]: a provider's answer cannot park a sync for
        /// longer.
        retry_after: Option<Duration>,
    },
    /// Trying again will fail the same way until something is changed by hand.
    Permanent,
    /// The credentials no longer work: the user has to reconnect.
    ReauthRequired,
}

impl Error {
    /// Whether the access token was refused (HTTP 401, Meta's code 190) and
    /// a renewal may cure it. The caller renews once and retries;
    /// [`Error::class`] is [`ErrorClass::ReauthRequired`] for when it cannot
    /// or the retry fails the same way.
    pub fn wants_token_refresh(&self) -> bool {
        matches!(self, Self::AccessTokenRejected { .. })
    }

    /// Whether to retry, give up, or ask the user to reconnect.
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::RateLimited { retry_after, .. }
            | Self::Throttled { retry_after, .. }
            | Self::Unavailable { retry_after, .. } => ErrorClass::Retryable {
                retry_after: retry_after.map(|wait| wait.min(MAX_RETRY_AFTER)),
            },
            Self::Transport { .. } => ErrorClass::Retryable { retry_after: None },
            Self::AppPasswordRejected { .. }
            | Self::CredentialsRejected { .. }
            | Self::UnsendableCredentials { .. }
            | Self::AuthorizationStripped { .. }
            | Self::AccessTokenRejected { .. }
            | Self::NoRefreshToken { .. }
            | Self::PermissionMissing { .. }
            | Self::RefreshTokenRejected { .. } => ErrorClass::ReauthRequired,
            Self::RequestTokenRejected { .. } | Self::TokenRejected { .. } => {
                ErrorClass::ReauthRequired
            }
            Self::TokenEndpoint { code, .. } if code == "invalid_grant" => {
                ErrorClass::ReauthRequired
            }
            Self::SiteUrl { .. }
            | Self::Refused { .. }
            | Self::BodyTooLarge { .. }
            | Self::CredentialsKind { .. }
            | Self::AppPasswordsUnavailable { .. }
            | Self::NotWordPress { .. }
            | Self::Forbidden { .. }
            | Self::PermissionDenied { .. }
            | Self::ApiVersion { .. }
            | Self::NoRoute { .. }
            | Self::Redirected { .. }
            | Self::Rejected { .. }
            | Self::TooMuchData { .. }
            | Self::TokenEndpoint { .. }
            | Self::ClientNotConfigured { .. }
            | Self::Template { .. }
            | Self::TokenValue { .. }
            | Self::ConsumerRejected { .. }
            | Self::CallbackNotConfirmed { .. }
            | Self::NoAnalyticsProperty
            | Self::InvalidResponse { .. }
            | Self::UnknownStream { .. }
            | Self::InvalidCursor { .. } => ErrorClass::Permanent,
        }
    }
}

/// The [`Registry`](crate::Registry) could not be built from the
/// [`Config`](crate::Config).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The HTTP client could not be built (an invalid User-Agent, or no TLS
    /// backend).
    #[error("failed to build the HTTP client of the connectors")]
    Http(#[from] reqwest::Error),
    /// The catalog could not be loaded.
    #[error("failed to load the connector catalog")]
    Catalog(#[from] crate::catalog::CatalogError),
}
