//! The connector of OAuth 2.0 catalog entries that have no sync mapping of
//! their own: it validates through the entry's userinfo endpoint and has no
//! streams.

use fleet_events::ConnectorId;
use futures::{FutureExt as _, future::BoxFuture};
use serde::Deserialize;
use serde_json::Value;
use url::Url;

use crate::{Account, Connector, Credentials, Error, Page, StreamSpec, bearer::Api, http::Http};

/// Validates a bearer token with one GET to `userinfo_url`.
///
/// The account id is the answer's `sub` (OpenID Connect userinfo) or `id`
/// (Graph-style `/me`); its name is `name`, else `email`, else the id.
#[derive(Debug)]
pub(crate) struct GenericOAuth2 {
    id: ConnectorId,
    provider: String,
    userinfo_url: Url,
    http: Http,
}

impl GenericOAuth2 {
    pub(crate) fn new(id: ConnectorId, provider: String, userinfo_url: Url, http: Http) -> Self {
        Self {
            id,
            provider,
            userinfo_url,
            http,
        }
    }
}

/// The identity fields of a userinfo answer.
#[derive(Deserialize)]
struct UserInfo {
    #[serde(alias = "id", deserialize_with = "crate::wp::external_id")]
    sub: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    email: Option<String>,
}

impl Connector for GenericOAuth2 {
    fn id(&self) -> &ConnectorId {
        &self.id
    }

    fn streams(&self) -> &[StreamSpec] {
        &[]
    }

    fn validate<'a>(
        &'a self,
        credentials: &'a Credentials,
    ) -> BoxFuture<'a, Result<Account, Error>> {
        async move {
            let api = Api {
                http: &self.http,
                provider: &self.provider,
                token: credentials.bearer(&self.id)?,
            };
            let user: UserInfo = api.get(&self.userinfo_url).await?;
            let name = user.name.or(user.email).unwrap_or_default();
            Ok(Account::new(&user.sub, &name))
        }
        .boxed()
    }

    fn sync_page<'a>(
        &'a self,
        _credentials: &'a Credentials,
        stream: &'a str,
        _cursor: Option<&'a Value>,
    ) -> BoxFuture<'a, Result<Page, Error>> {
        let error = Error::UnknownStream {
            connector: self.id.clone(),
            stream: stream.to_owned(),
        };
        async move { Err(error) }.boxed()
    }
}
