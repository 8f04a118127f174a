//! What a connection authenticates with.

use std::{
    collections::BTreeMap,
    fmt,
    ops::{Deref, DerefMut},
};

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

/// The credentials of one connection, as stored in Vault.
///
/// Secrets are [`SecretString`]s: `Debug` prints `[REDACTED]` for them, and
/// they are exposed in exactly one place, serialisation, because Vault is
/// where they go. Never serialise credentials anywhere else (events, logs,
/// Postgres rows).
///
/// The JSON form is tagged by `kind`:
///
/// ```json
/// {"kind": "app_password", "site_url": "https://example.com", "username": "bob",
///  "password": "abcd efgh ijkl mnop qrst uvwx"}
/// ```
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind")]
pub enum Credentials {
    /// A WordPress application password (WordPress, FluentCRM).
    #[serde(rename = "app_password")]
    AppPassword {
        /// The site's address, with its path for a subdirectory install
        /// (`https://example.com/blog`). Connectors require `https` unless
        /// [`Config::allow_http`](crate::Config::allow_http) is set.
        site_url: String,
        /// The WordPress user name or e-mail address.
        username: String,
        /// The application password; the spaces WordPress shows are optional.
        #[serde(with = "crate::clear_text::secret")]
        password: SecretString,
    },
    /// An OAuth 2.0 grant.
    #[serde(rename = "oauth2")]
    OAuth2 {
        /// The bearer token.
        #[serde(with = "crate::clear_text::secret")]
        access_token: SecretString,
        /// The refresh token, when the provider issued one. Providers often
        /// omit it from refresh responses: keep the stored one then.
        #[serde(default, with = "crate::clear_text::optional_secret")]
        refresh_token: Option<SecretString>,
        /// When `access_token` expires, if the provider said.
        #[serde(default)]
        expires_at: Option<DateTime<Utc>>,
        /// The scopes granted, as the provider wrote them.
        #[serde(default)]
        scope: Option<String>,
        /// The connection's settings and the values kept from its token
        /// responses, by name: what fills the `{name}` placeholders of its
        /// catalog entry's URLs and parameters.
        #[serde(default, skip_serializing_if = "ConnectionValues::is_empty")]
        values: ConnectionValues,
    },
    /// An API key typed in by the user.
    #[serde(rename = "api_key")]
    ApiKey {
        /// The key.
        #[serde(with = "crate::clear_text::secret")]
        api_key: SecretString,
        /// The connection's settings, by name.
        #[serde(default, skip_serializing_if = "ConnectionValues::is_empty")]
        values: ConnectionValues,
    },
    /// A user name and password typed in by the user, sent as HTTP Basic.
    #[serde(rename = "basic")]
    Basic {
        /// The user name.
        username: String,
        /// The password.
        #[serde(with = "crate::clear_text::secret")]
        password: SecretString,
        /// The connection's settings, by name.
        #[serde(default, skip_serializing_if = "ConnectionValues::is_empty")]
        values: ConnectionValues,
    },
    /// OAuth 2.0 client credentials typed in by the user, and the access
    /// token last fetched with them.
    #[serde(rename = "client_credentials")]
    ClientCredentials {
        /// The client id.
        client_id: String,
        /// The client secret.
        #[serde(with = "crate::clear_text::secret")]
        client_secret: SecretString,
        /// The access token last fetched, if any.
        #[serde(default, with = "crate::clear_text::optional_secret")]
        access_token: Option<SecretString>,
        /// When `access_token` expires, if the token endpoint said.
        #[serde(default)]
        expires_at: Option<DateTime<Utc>>,
        /// The connection's settings, by name.
        #[serde(default, skip_serializing_if = "ConnectionValues::is_empty")]
        values: ConnectionValues,
    },
    /// An OAuth 1.0a access token.
    #[serde(rename = "oauth1")]
    OAuth1 {
        /// The access token.
        #[serde(with = "crate::clear_text::secret")]
        token: SecretString,
        /// The token secret, which signs requests.
        #[serde(with = "crate::clear_text::secret")]
        token_secret: SecretString,
    },
}

/// A connection's settings and the values kept from its token responses,
/// by name (see [`Credentials::OAuth2`]).
///
/// They are not secrets, but they describe a tenant's account (its
/// subdomain, instance URL, account id), so they live with the
/// credentials in Vault and stay out of events and logs: `Debug` shows
/// their names only.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ConnectionValues(BTreeMap<String, String>);

impl ConnectionValues {
    /// Whether there is no value.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `self` with every value of `newer` set over it.
    #[must_use]
    pub fn overlaid(&self, newer: &Self) -> Self {
        let mut values = self.clone();
        values.extend(newer.iter().map(|(k, v)| (k.clone(), v.clone())));
        values
    }
}

impl fmt::Debug for ConnectionValues {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl Deref for ConnectionValues {
    type Target = BTreeMap<String, String>;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl DerefMut for ConnectionValues {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl From<BTreeMap<String, String>> for ConnectionValues {
    fn from(values: BTreeMap<String, String>) -> Self {
        Self(values)
    }
}

impl FromIterator<(String, String)> for ConnectionValues {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

impl Credentials {
    /// The connection's values (settings, and for OAuth 2.0 the values
    /// kept from token responses); empty for kinds without them.
    pub fn values(&self) -> ConnectionValues {
        match self {
            Self::OAuth2 { values, .. }
            | Self::ApiKey { values, .. }
            | Self::Basic { values, .. }
            | Self::ClientCredentials { values, .. } => values.clone(),
            Self::AppPassword { .. } | Self::OAuth1 { .. } => ConnectionValues::default(),
        }
    }

    /// Application-password credentials for a WordPress site.
    pub fn app_password(
        site_url: impl Into<String>,
        username: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        Self::AppPassword {
            site_url: site_url.into(),
            username: username.into(),
            password: SecretString::from(password.into()),
        }
    }

    /// What kind of credentials these are, for messages: `application
    /// password`, `OAuth 2.0`, `OAuth 1.0a`, `API key`, `user name and
    /// password` or `OAuth 2.0 client credentials`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::AppPassword { .. } => "application password",
            Self::OAuth2 { .. } => "OAuth 2.0",
            Self::OAuth1 { .. } => "OAuth 1.0a",
            Self::ApiKey { .. } => "API key",
            Self::Basic { .. } => "user name and password",
            Self::ClientCredentials { .. } => "OAuth 2.0 client credentials",
        }
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret as _;
    use serde_json::json;

    use super::*;

    #[test]
    fn debug_shows_no_secret() {
        let oauth = Credentials::OAuth2 {
            access_token: SecretString::from("access-123"),
            refresh_token: Some(SecretString::from("refresh-456")),
            expires_at: None,
            scope: Some("read".to_owned()),
            values: [(
                "instance_url".to_owned(),
                "https://tenant-7.example".to_owned(),
            )]
            .into_iter()
            .collect(),
        };
        let app = Credentials::app_password("https://example.com", "bob", "abcd efgh");

        let debug = format!("{oauth:?} {app:?}");

        assert!(!debug.contains("access-123"), "{debug}");
        assert!(!debug.contains("refresh-456"), "{debug}");
        assert!(!debug.contains("abcd efgh"), "{debug}");
        assert!(!debug.contains("tenant-7"), "{debug}");
        assert!(debug.contains("instance_url"), "{debug}");
        assert!(debug.contains("bob"), "{debug}");
    }

    #[test]
    fn serialisation_keeps_secrets_for_vault() {
        let app = Credentials::app_password("https://example.com", "bob", "abcd efgh");

        let value = serde_json::to_value(&app).unwrap();

        assert_eq!(
            value,
            json!({
                "kind": "app_password",
                "site_url": "https://example.com",
                "username": "bob",
                "password": "abcd efgh",
            })
        );
    }

    #[test]
    fn oauth2_round_trips_and_defaults_optional_fields() {
        let parsed: Credentials =
            serde_json::from_value(json!({"kind": "oauth2", "access_token": "a"})).unwrap();
        let Credentials::OAuth2 {
            access_token,
            refresh_token,
            expires_at,
            scope,
            values,
        } = &parsed
        else {
            panic!("expected OAuth2, got {parsed:?}");
        };
        assert_eq!(access_token.expose_secret(), "a");
        assert!(refresh_token.is_none() && expires_at.is_none() && scope.is_none());
        assert!(values.is_empty());

        let with_refresh = json!({
            "kind": "oauth2",
            "access_token": "a",
            "refresh_token": "r",
            "expires_at": "2026-01-01T00:00:00Z",
            "scope": "x y",
            "values": {"subdomain": "acme"},
        });
        let parsed: Credentials = serde_json::from_value(with_refresh.clone()).unwrap();
        assert_eq!(serde_json::to_value(&parsed).unwrap(), with_refresh);
    }

    #[test]
    fn oauth1_round_trips() {
        let value = json!({"kind": "oauth1", "token": "t", "token_secret": "s"});

        let parsed: Credentials = serde_json::from_value(value.clone()).unwrap();

        assert_eq!(parsed.kind(), "OAuth 1.0a");
        assert_eq!(serde_json::to_value(&parsed).unwrap(), value);
    }
}
