//! The one way a provider's API is called: send the request (through the
//! egress rule), read the body within its cap, classify a failed status
//! into an [`Error`], and decode a successful answer. What differs between
//! providers, reading their own error bodies, is a [`Classify`] hook.

use bytes::Bytes;
use reqwest::{StatusCode, Url, header::HeaderMap};
use serde::{Deserialize, de::DeserializeOwned};

use super::{Http, Request, display_url, is_transient, redirect_error, transient_error};
use crate::{
    Error,
    text::{self, plain_text},
};

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
    /// transient: the provider's error body read. By default, one of the
    /// common JSON error bodies of OAuth APIs.
    fn reject(&self, failure: &Failure<'_>) -> Error {
        rejected(failure)
    }

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
        let mut request = request;
        let secrets = request.take_sent_secrets();
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
        // A provider may echo what it refused ("Malformed access token
        // EAAB…"): no error is made from a body that still holds it.
        let body = text::without_secrets(&body, &secrets);
        // Nor from a redirect's address, which repeats a key in the path
        // of the request (Telegram's `/bot<key>/getMe` answered with a
        // trailing slash added).
        let mut headers = headers;
        if let Some(location) = headers.get(reqwest::header::LOCATION)
            && let std::borrow::Cow::Owned(blanked) =
                text::without_secrets(location.as_bytes(), &secrets)
        {
            match reqwest::header::HeaderValue::from_bytes(&blanked) {
                Ok(value) => headers.insert(reqwest::header::LOCATION, value),
                Err(_) => headers.remove(reqwest::header::LOCATION),
            };
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

/// The error for a failed response in one of the common JSON error bodies
/// (see [`ErrorBody`]): 401 as a refused access token, anything else as a
/// rejection with the provider's code and message.
fn rejected(failure: &Failure<'_>) -> Error {
    let Failure {
        provider,
        url,
        status,
        body,
        ..
    } = *failure;
    let (code, message) = match serde_json::from_slice::<ErrorBody>(body) {
        Ok(ErrorBody::Envelope { error }) => (error.status.or(error.kind), error.message),
        Ok(ErrorBody::Flat {
            error,
            error_description,
        }) => (Some(error), error_description.unwrap_or_default()),
        Ok(ErrorBody::Coded { code, message }) => (code, message),
        Err(_) => (None, "the response is not a JSON error body".to_owned()),
    };
    if status == StatusCode::UNAUTHORIZED {
        return Error::AccessTokenRejected {
            provider: provider.to_owned(),
            message: plain_text(&message),
        };
    }
    Error::Rejected {
        provider: provider.to_owned(),
        url: display_url(url),
        status: status.as_u16(),
        code: code.map_or_else(|| "unknown".to_owned(), |code| text::code(&code)),
        message: plain_text(&message),
    }
}

/// The error bodies of OAuth APIs.
#[derive(Deserialize)]
#[serde(untagged)]
enum ErrorBody {
    /// Google's `{"error": {"code", "message", "status"}}` and Meta's
    /// `{"error": {"message", "type", "code"}}`.
    Envelope { error: Envelope },
    /// OAuth's own `{"error", "error_description"}`.
    Flat {
        error: String,
        #[serde(default)]
        error_description: Option<String>,
    },
    /// LinkedIn's `{"status", "serviceErrorCode", "code", "message"}`.
    Coded {
        #[serde(default)]
        code: Option<String>,
        message: String,
    },
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    status: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(
        provider: &str,
        url: &Url,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Error {
        rejected(&Failure {
            provider,
            url,
            status,
            headers,
            body,
        })
    }

    fn url() -> Url {
        Url::parse("https://api.example.test/v1/thing?key=secret").unwrap()
    }

    #[test]
    fn google_401_is_a_rejected_access_token() {
        let body = br#"{"error":{"code":401,"message":"Request had invalid authentication credentials.","status":"UNAUTHENTICATED"}}"#;

        let error = error(
            "Google",
            &url(),
            StatusCode::UNAUTHORIZED,
            &HeaderMap::new(),
            body,
        );

        assert!(error.wants_token_refresh(), "{error:?}");
        assert!(
            error
                .to_string()
                .contains("invalid authentication credentials")
        );
    }

    #[test]
    fn google_403_keeps_status_and_message_and_drops_the_query() {
        let body = br#"{"error":{"code":403,"message":"User does not have sufficient permissions for this property.","status":"PERMISSION_DENIED"}}"#;

        let error = error(
            "Google",
            &url(),
            StatusCode::FORBIDDEN,
            &HeaderMap::new(),
            body,
        );

        let Error::Rejected {
            code, url, status, ..
        } = &error
        else {
            panic!("expected Rejected, got {error:?}");
        };
        assert_eq!((code.as_str(), *status), ("PERMISSION_DENIED", 403));
        assert_eq!(url, "https://api.example.test/v1/thing");
    }

    #[test]
    fn linkedin_and_flat_bodies_are_read() {
        let linkedin =
            br#"{"status":404,"serviceErrorCode":0,"code":"NOT_FOUND","message":"No such org"}"#;
        let flat = br#"{"error":"invalid_request","error_description":"bad"}"#;

        let linkedin = error(
            "LinkedIn",
            &url(),
            StatusCode::NOT_FOUND,
            &HeaderMap::new(),
            linkedin,
        );
        let flat = error(
            "X",
            &url(),
            StatusCode::BAD_REQUEST,
            &HeaderMap::new(),
            flat,
        );

        assert!(
            linkedin.to_string().contains("NOT_FOUND: No such org"),
            "{linkedin}"
        );
        assert!(flat.to_string().contains("invalid_request: bad"), "{flat}");
    }
}
