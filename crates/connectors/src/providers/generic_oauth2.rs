//! The connector of OAuth 2.0 catalog entries that have no sync mapping of
//! their own: it validates through the entry's userinfo endpoint, and its
//! one stream, `account`, reads that endpoint again on every sync, so a
//! sync checks the grant (renewing the token when the provider rejects it)
//! and never ends `synced` without the provider's word.

use crate::{
    Account, Credentials, Error, Page, Record, StreamSpec,
    catalog::UrlTemplate,
    http::{Classify, Http},
    providers::{Provider, bearer::Api},
};
use fleet_events::ConnectorId;
use serde::{Deserialize, Deserializer, Serialize, de::IgnoredAny};
use serde_json::Value;

/// The one stream: the account's identity.
const STREAMS: &[StreamSpec] = &[StreamSpec {
    name: "account",
    description: "The account's identity as the provider's userinfo endpoint answers it, read \
                  on every sync: a grant the provider no longer honours shows at once.",
    reconcile: true,
}];

/// Validates a bearer token with one GET to `userinfo_url`, its
/// placeholders filled with the connection's values.
///
/// The account id is the answer's `sub` (OpenID Connect userinfo) or `id`
/// (Graph-style `/me`); its name is `name`, else `email`, else the id.
#[derive(Debug)]
pub(crate) struct GenericOAuth2 {
    id: ConnectorId,
    provider: String,
    userinfo_url: UrlTemplate,
    /// The names of the values kept from token responses, which messages
    /// do not show.
    kept: Vec<String>,
    http: Http,
}

impl GenericOAuth2 {
    pub(crate) fn new(
        id: ConnectorId,
        provider: String,
        userinfo_url: UrlTemplate,
        kept: Vec<String>,
        http: Http,
    ) -> Self {
        Self {
            id,
            provider,
            userinfo_url,
            kept,
            http,
        }
    }
}

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
#[derive(Deserialize)]
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
        let (user, _) = self.user(credentials).await?;
        let name = user.name.or(user.email).unwrap_or_default();
        Ok(Account::new(&user.sub, &name))
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
        let (user, payload) = self.user(credentials).await?;
        Ok(Page {
            records: vec![Record {
                external_id: user.sub,
                payload,
                updated_at: None,
            }],
            total: Some(1),
            ..Page::finished()
        })
    }
}

impl GenericOAuth2 {
    /// The userinfo answer, read and as it came.
    async fn user(&self, credentials: &Credentials) -> Result<(UserInfo, Value), Error> {
        let api = Api::new(&self.http, self, credentials.bearer(&self.id)?);
        let kept: Vec<&str> = self.kept.iter().map(String::as_str).collect();
        let (url, shown) = self
            .userinfo_url
            .render_shown(&credentials.values(), &kept, self.http.allow_http())
            .map_err(|e| Error::Template {
                provider: self.provider.clone(),
                what: "userinfo URL",
                problem: e.to_string(),
            })?;
        let payload: Value = api.get_shown(&url, &shown).await?;
        let user = UserInfo::deserialize(&payload)
            .map_err(|e| Error::invalid_response(&self.provider, &shown, &e))?;
        Ok((user, payload))
    }
}

impl Classify for GenericOAuth2 {
    fn provider(&self) -> &str {
        &self.provider
    }
}
