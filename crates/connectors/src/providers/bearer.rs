//! Calls to JSON APIs with an OAuth 2.0 bearer token.

use reqwest::header::HeaderMap;
use secrecy::SecretString;
use serde::de::DeserializeOwned;
use url::Url;

use crate::{
    Error,
    http::{Classify, Http},
};

/// One provider's API, called with one access token.
pub(crate) struct Api<'a> {
    pub(crate) http: &'a Http,
    /// How the API's failures read: the provider's own error bodies, then
    /// the common JSON error bodies ([`Classify::reject`]).
    pub(crate) classify: &'a dyn Classify,
    pub(crate) token: &'a SecretString,
}

impl<'a> Api<'a> {
    pub(crate) fn new(http: &'a Http, classify: &'a dyn Classify, token: &'a SecretString) -> Self {
        Self {
            http,
            classify,
            token,
        }
    }

    /// GETs `url` and decodes its JSON body, retrying transient failures.
    pub(crate) async fn get<T: DeserializeOwned>(&self, url: &Url) -> Result<T, Error> {
        self.get_with(url, &HeaderMap::new()).await
    }

    /// GETs `url` with the extra `headers` and decodes its JSON body,
    /// retrying transient failures.
    pub(crate) async fn get_with<T: DeserializeOwned>(
        &self,
        url: &Url,
        headers: &HeaderMap,
    ) -> Result<T, Error> {
        let request = || {
            let request = self.http.get(url.clone()).headers(headers.clone());
            Ok(request.bearer_auth(self.token))
        };
        Ok(self.http.fetch(self.classify, url, request).await?.body)
    }

    /// POSTs `body` as JSON to `url` and decodes the JSON answer, retrying
    /// transient failures.
    pub(crate) async fn post<T: DeserializeOwned>(
        &self,
        url: &Url,
        body: &serde_json::Value,
    ) -> Result<T, Error> {
        let request = || {
            Ok(self
                .http
                .post(url.clone())
                .json(body)
                .bearer_auth(self.token))
        };
        Ok(self.http.fetch(self.classify, url, request).await?.body)
    }
}
