//! What a connection authenticates with.

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

impl Credentials {
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
    /// password`, `OAuth 2.0` or `OAuth 1.0a`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::AppPassword { .. } => "application password",
            Self::OAuth2 { .. } => "OAuth 2.0",
            Self::OAuth1 { .. } => "OAuth 1.0a",
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
        };
        let app = Credentials::app_password("https://example.com", "bob", "abcd efgh");

        let debug = format!("{oauth:?} {app:?}");

        assert!(!debug.contains("access-123"), "{debug}");
        assert!(!debug.contains("refresh-456"), "{debug}");
        assert!(!debug.contains("abcd efgh"), "{debug}");
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
        } = &parsed
        else {
            panic!("expected OAuth2, got {parsed:?}");
        };
        assert_eq!(access_token.expose_secret(), "a");
        assert!(refresh_token.is_none() && expires_at.is_none() && scope.is_none());

        let with_refresh = json!({
            "kind": "oauth2",
            "access_token": "a",
            "refresh_token": "r",
            "expires_at": "2026-01-01T00:00:00Z",
            "scope": "x y",
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
