//! Trello's failed answers: plain-text 401s, JSON 429s without
//! `Retry-After`, and which 401s refuse the token itself.

use std::time::Duration;

use reqwest::{StatusCode, header::HeaderMap};
use serde::Deserialize;
use url::Url;

use super::PROVIDER;
use crate::{
    Error,
    http::{self, Failure},
    providers::fields,
    text::plain_text,
};

/// How long to wait after a 429 that says nothing usable about its
/// window: Trello's limits are counted per 10 s and 429s carry no
/// `Retry-After`.
const DEFAULT_RATE_LIMIT_WAIT: Duration = Duration::from_secs(10);

/// Trello's 429 body; other errors are plain text.
#[derive(Deserialize)]
struct LimitBody {
    error: String,
}

/// Whether a 401's text says the token or key itself is refused, rather
/// than access to one object.
pub(super) fn refuses_token(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    [
        "invalid token",
        "expired token",
        "invalid key",
        "token not found",
    ]
    .iter()
    .any(|refusal| message.contains(refusal))
}

/// A 429 from the API at `api`, with the wait its headers and body say
/// (see [`rate_limit_wait`]).
pub(super) fn rate_limited(api: &Url, failure: &Failure<'_>) -> Option<Error> {
    (failure.status == StatusCode::TOO_MANY_REQUESTS).then(|| Error::RateLimited {
        provider: PROVIDER.to_owned(),
        site: http::display_url(api),
        retry_after: Some(rate_limit_wait(failure.headers, failure.body)),
    })
}

/// The error for a failed Trello response that is neither a redirect, a
/// 429 nor transient: 401 a refused token, anything else a rejection with
/// the body's text.
pub(super) fn rejected(failure: &Failure<'_>) -> Error {
    let Failure {
        url, status, body, ..
    } = *failure;
    let text = String::from_utf8_lossy(body);
    let message = plain_text(&text);
    if status == StatusCode::UNAUTHORIZED {
        return Error::TokenRejected {
            provider: PROVIDER.to_owned(),
            message: if message.is_empty() {
                "unauthorized".to_owned()
            } else {
                message
            },
        };
    }
    let code = serde_json::from_slice::<LimitBody>(body).map_or_else(
        |_| "unknown".to_owned(),
        |body| crate::text::code(&body.error),
    );
    Error::Rejected {
        provider: PROVIDER.to_owned(),
        url: http::display_url(url),
        status: status.as_u16(),
        code,
        message,
    }
}

/// How long to wait after a 429: the window of the exhausted limit (the
/// token's for `API_TOKEN_LIMIT_EXCEEDED`, the key's for
/// `API_KEY_LIMIT_EXCEEDED`) when its `x-rate-limit-api-*-remaining` is 0
/// and its `-interval-ms` is given, else [`DEFAULT_RATE_LIMIT_WAIT`].
fn rate_limit_wait(headers: &HeaderMap, body: &[u8]) -> Duration {
    let exhausted = serde_json::from_slice::<LimitBody>(body)
        .ok()
        .map(|body| body.error);
    let buckets: &[&str] = match exhausted.as_deref() {
        Some("API_KEY_LIMIT_EXCEEDED") => &["key", "token"],
        _ => &["token", "key"],
    };
    buckets
        .iter()
        .find_map(|bucket| {
            let remaining =
                fields::header_u64(headers, &format!("x-rate-limit-api-{bucket}-remaining"));
            let interval =
                fields::header_u64(headers, &format!("x-rate-limit-api-{bucket}-interval-ms"));
            match (remaining, interval) {
                (Some(0), Some(interval)) if interval > 0 => Some(Duration::from_millis(interval)),
                _ => None,
            }
        })
        .unwrap_or(DEFAULT_RATE_LIMIT_WAIT)
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    fn api() -> Url {
        Url::parse("https://api.trello.com/1").unwrap()
    }
    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| {
                (
                    reqwest::header::HeaderName::from_static(name),
                    HeaderValue::from_static(value),
                )
            })
            .collect()
    }
    /// A failed answer as [`Trello`] classifies one that is neither a
    /// redirect nor a transient 5xx.
    fn error(api: &Url, url: &Url, status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Error {
        let failure = Failure {
            provider: PROVIDER,
            url,
            status,
            headers,
            body,
        };
        rate_limited(api, &failure).unwrap_or_else(|| rejected(&failure))
    }
    const TOKEN_LIMIT: &[u8] =
        br#"{"error":"API_TOKEN_LIMIT_EXCEEDED","message":"Rate limit exceeded"}"#;
    const KEY_LIMIT: &[u8] =
        br#"{"error":"API_KEY_LIMIT_EXCEEDED","message":"Rate limit exceeded"}"#;
    #[test]
    fn a_429_without_rate_limit_headers_waits_ten_seconds() {
        let error = error(
            &api(),
            &api(),
            StatusCode::TOO_MANY_REQUESTS,
            &HeaderMap::new(),
            TOKEN_LIMIT,
        );

        assert_eq!(
            error.class(),
            crate::ErrorClass::Retryable {
                retry_after: Some(Duration::from_secs(10))
            }
        );
    }
    #[test]
    fn an_exhausted_bucket_waits_its_interval() {
        let headers = headers(&[
            ("x-rate-limit-api-token-interval-ms", "10000"),
            ("x-rate-limit-api-token-remaining", "3"),
            ("x-rate-limit-api-key-interval-ms", "1500"),
            ("x-rate-limit-api-key-remaining", "0"),
        ]);

        assert_eq!(
            rate_limit_wait(&headers, KEY_LIMIT),
            Duration::from_millis(1500)
        );
        assert_eq!(
            rate_limit_wait(&headers, TOKEN_LIMIT),
            Duration::from_millis(1500)
        );
        let unexhausted = super::tests::headers(&[
            ("x-rate-limit-api-token-interval-ms", "2000"),
            ("x-rate-limit-api-token-remaining", "5"),
        ]);
        assert_eq!(
            rate_limit_wait(&unexhausted, TOKEN_LIMIT),
            DEFAULT_RATE_LIMIT_WAIT
        );
    }
    #[test]
    fn plain_text_401s_ask_for_a_reconnect() {
        for body in [
            "invalid token",
            "invalid key",
            "unauthorized permission requested",
        ] {
            let error = error(
                &api(),
                &api(),
                StatusCode::UNAUTHORIZED,
                &HeaderMap::new(),
                body.as_bytes(),
            );

            assert_eq!(error.class(), crate::ErrorClass::ReauthRequired);
            assert!(!error.wants_token_refresh());
            assert!(error.to_string().contains(body), "{error}");
        }
    }
    #[test]
    fn other_refusals_keep_the_plain_text_message() {
        let url = Url::parse("https://api.trello.com/1/boards/x/cards?limit=5").unwrap();

        let error = error(
            &api(),
            &url,
            StatusCode::BAD_REQUEST,
            &HeaderMap::new(),
            b"invalid id",
        );

        assert_eq!(
            error.to_string(),
            "Trello refused the request to https://api.trello.com/1/boards/x/cards with HTTP 400 \
             (unknown: invalid id)"
        );
    }
    #[test]
    fn only_a_401_about_the_token_or_key_refuses_the_token() {
        for message in ["invalid token", "expired token", "invalid key"] {
            assert!(refuses_token(message), "{message}");
        }
        for message in ["unauthorized permission requested", "unauthorized", ""] {
            assert!(!refuses_token(message), "{message}");
        }
    }
}
