//! The one way a provider's API is called: send the request (through the
//! egress rule), read the body within its cap, classify a failed status
//! into an [`Error`], and decode a successful answer. What differs between
//! providers, reading their own error bodies, is a [`Classify`] hook.

use bytes::Bytes;
use reqwest::{StatusCode, Url, header::HeaderMap};
use serde::de::DeserializeOwned;

use super::{Http, Request, display_url, is_transient, redirect_error, transient_error};
use crate::Error;

/// A failed response, for a provider's [`Classify`] to read.
pub(crate) struct Failure<'a> {
    /// Display name of the API, for messages.
    pub(crate) provider: &'a str,
    /// The URL asked, as errors show it (through [`display_url`]).
    pub(crate) url: &'a Url,
    pub(crate) status: StatusCode,
    pub(crate) headers: &'a HeaderMap,
    /// The body, read within the cap.
    pub(crate) body: &'a [u8],
}

/// How one API's answers read: the provider's part of the pipeline.
///
/// A failed response is read in this order: a redirect is always
/// [`Error::Redirected`] (redirects are never followed); then
/// [`recognise`](Self::recognise) may claim it (a quota body on a 429, an
/// error code on a 5xx); then a transient status (408, 429, 5xx) is
/// [`Error::RateLimited`] or [`Error::Unavailable`], retried; anything
/// else is what [`reject`](Self::reject) makes of it.
pub(crate) trait Classify: Sync {
    /// Display name of the API, for messages.
    fn provider(&self) -> &str;

    /// The site or API a transient error names, for a request to `url`.
    fn site(&self, url: &Url) -> String {
        display_url(url)
    }

    /// A failure the provider reads before the transient statuses are;
    /// `None` leaves it to the shared rules.
    fn recognise(&self, failure: &Failure<'_>) -> Option<Error> {
        let _ = failure;
        None
    }

    /// The error for a failure that is neither a redirect, recognised, nor
    /// transient: the provider's error body read.
    fn reject(&self, failure: &Failure<'_>) -> Error;

    /// The error for a successful answer whose `body` does not decode.
    fn undecodable(&self, url: &Url, body: &[u8], source: &serde_json::Error) -> Error {
        let _ = body;
        Error::invalid_response(self.provider(), url, source)
    }
}

/// A successful answer.
pub(crate) struct Reply<T> {
    /// The response headers (WordPress puts its totals there).
    pub(crate) headers: HeaderMap,
    /// The body, decoded.
    pub(crate) body: T,
    /// The size of the body as received.
    pub(crate) bytes: u64,
}

impl Http {
    /// Sends what `request` builds (anew for every attempt, so a signature
    /// or nonce is fresh), retrying transient failures as
    /// [`retry`](Self::retry) does, and decodes the JSON answer. `url` is
    /// the request's address as errors show it.
    pub(crate) async fn fetch<T, C>(
        &self,
        api: &C,
        url: &Url,
        request: impl Fn() -> Result<Request, Error>,
    ) -> Result<Reply<T>, Error>
    where
        T: DeserializeOwned,
        C: Classify + ?Sized,
    {
        self.retry(|| async {
            let reply = self.exchange(api, url, request()?).await?;
            let body = serde_json::from_slice(&reply.body)
                .map_err(|source| api.undecodable(url, &reply.body, &source))?;
            Ok(Reply {
                headers: reply.headers,
                body,
                bytes: reply.body.len() as u64,
            })
        })
        .await
    }

    /// Sends `request` once and returns the body of a successful answer,
    /// read within [`Config::max_body_bytes`](crate::Config::max_body_bytes);
    /// a failed one becomes the [`Error`] `api` classifies it as.
    pub(crate) async fn exchange<C>(
        &self,
        api: &C,
        url: &Url,
        request: Request,
    ) -> Result<Reply<Bytes>, Error>
    where
        C: Classify + ?Sized,
    {
        let provider = api.provider();
        let response = request.send(provider).await?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = self.body(response, provider, url).await?;
        if status.is_success() {
            return Ok(Reply {
                headers,
                bytes: body.len() as u64,
                body,
            });
        }
        let failure = Failure {
            provider,
            url,
            status,
            headers: &headers,
            body: &body,
        };
        Err(classify(api, &failure))
    }
}

/// The error for `failure`, in the order [`Classify`] describes.
fn classify<C: Classify + ?Sized>(api: &C, failure: &Failure<'_>) -> Error {
    let Failure {
        provider,
        url,
        status,
        headers,
        ..
    } = *failure;
    if status.is_redirection() {
        return redirect_error(provider, url, status, headers);
    }
    if let Some(error) = api.recognise(failure) {
        return error;
    }
    if is_transient(status) {
        return transient_error(provider, api.site(url), status, headers);
    }
    api.reject(failure)
}
