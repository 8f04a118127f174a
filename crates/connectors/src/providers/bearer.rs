//! Calls to JSON APIs with an OAuth 2.0 bearer token, and what their
//! failures mean.

use reqwest::{StatusCode, header::HeaderMap};
use secrecy::SecretString;
use serde::{Deserialize, de::DeserializeOwned};
use url::Url;

use crate::{
    Error,
    http::{self, Classify, Failure, Http},
    text::{self, plain_text},
};

/// One provider's API, called with one access token.
pub(crate) struct Api<'a> {
    pub(crate) http: &'a Http,
    /// How the API's failures read: the provider's own error bodies, then
    /// [`rejected`].
    pub(crate) classify: &'a dyn Classify,
    pub(crate) token: &'a SecretString,
}

impl Api<'_> {
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

/// The error for a failed API response that the provider's own reading
/// left: 401 as a refused access token, anything else as a rejection with
/// the provider's code and message.
pub(crate) fn rejected(failure: &Failure<'_>) -> Error {
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
        url: http::display_url(url),
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
