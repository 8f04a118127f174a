//! The HTTP client all connectors share, with its retry rule and its
//! egress rule.

use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use backon::{ExponentialBuilder, Retryable as _};
use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use chrono::{DateTime, Utc};
use reqwest::{
    RequestBuilder, StatusCode, Url,
    header::{HeaderMap, HeaderName, HeaderValue, LOCATION, RETRY_AFTER},
    redirect,
};
use secrecy::{ExposeSecret as _, SecretString};
use serde::Serialize;
use tracing::Instrument as _;

use crate::{
    BuildError, Config, Error, ErrorClass,
    egress::{self, Egress},
    text,
};

mod pipeline;

pub(crate) use pipeline::{Classify, Failure, Reply};

/// Attempts per call, the first included.
const ATTEMPTS: usize = 3;
/// Backoff before the first retry; it doubles up to [`MAX_BACKOFF`], and
/// each delay gets up to as much again of random jitter.
const MIN_BACKOFF: Duration = Duration::from_millis(200);
/// Upper bound of the exponential backoff, before jitter.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// What a secret path segment looks like in a shown URL (see
/// [`secret_path`]).
pub(crate) const REDACTED: &str = "<redacted>";

/// A `reqwest` client that never follows redirects, uses no proxy, and
/// connects only where [`Egress`] permits, with timeouts and a User-Agent,
/// plus the retry rule of one connector call.
///
/// Requests are made with [`get`](Self::get), [`post`](Self::post) and
/// [`delete`](Self::delete) and sent with [`Request::send`]: there is no
/// other way to send one, so every request, to a tenant's site or to an
/// operator's catalog URL, and every hop (redirects are never followed:
/// each is a new request) passes the egress rule.
#[derive(Debug, Clone)]
pub(crate) struct Http {
    client: reqwest::Client,
    egress: Egress,
    allow_http: bool,
    max_retry_wait: Duration,
    max_body_bytes: u64,
}

impl Http {
    pub(crate) fn new(config: &Config) -> Result<Self, BuildError> {
        let egress = Egress::new(&config.allow_private_networks);
        let client = reqwest::Client::builder()
            .redirect(redirect::Policy::none())
            // A proxy from the environment (HTTP_PROXY, ...) would connect
            // on the fleet's behalf, wherever the egress rule says not to.
            .no_proxy()
            .dns_resolver(egress::Resolver::new(egress.clone(), &config.hosts))
            .timeout(config.request_timeout)
            .connect_timeout(config.connect_timeout)
            .user_agent(&config.user_agent)
            .build()?;
        Ok(Self {
            client,
            egress,
            allow_http: config.allow_http,
            max_retry_wait: config.max_retry_wait,
            max_body_bytes: config.max_body_bytes,
        })
    }

    /// Reads `response`'s body, refusing one larger than
    /// [`Config::max_body_bytes`] as soon as it is known to be: from its
    /// `Content-Length`, or while reading.
    pub(crate) async fn body(
        &self,
        mut response: reqwest::Response,
        provider: &str,
        url: &Url,
    ) -> Result<Bytes, Error> {
        let too_large = || Error::BodyTooLarge {
            provider: provider.to_owned(),
            url: display_url(url),
            limit: self.max_body_bytes,
        };
        if response
            .content_length()
            .is_some_and(|length| length > self.max_body_bytes)
        {
            return Err(too_large());
        }
        let mut body = BytesMut::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|source| transport_error(provider, url, source))?
        {
            if (body.len() + chunk.len()) as u64 > self.max_body_bytes {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        let _ = TRAFFIC.try_with(|traffic| {
            traffic
                .bytes
                .fetch_add(body.len() as u64, Ordering::Relaxed)
        });
        Ok(body.freeze())
    }

    /// Whether `http://` site URLs are accepted.
    pub(crate) fn allow_http(&self) -> bool {
        self.allow_http
    }

    /// A GET request to `url`.
    pub(crate) fn get(&self, url: Url) -> Request {
        self.request(reqwest::Method::GET, url)
    }

    /// A POST request to `url`.
    pub(crate) fn post(&self, url: Url) -> Request {
        self.request(reqwest::Method::POST, url)
    }

    /// A DELETE request to `url`.
    pub(crate) fn delete(&self, url: Url) -> Request {
        self.request(reqwest::Method::DELETE, url)
    }

    fn request(&self, method: reqwest::Method, url: Url) -> Request {
        Request {
            builder: self.client.request(method, url.clone()),
            shown: url.clone(),
            url,
            egress: self.egress.clone(),
            sent_secrets: Vec::new(),
        }
    }

    /// Runs `attempt` until it succeeds, fails with an error that is not
    /// [`ErrorClass::Retryable`], or has run [`ATTEMPTS`] times.
    ///
    /// Between attempts it waits the provider's `Retry-After` when there is
    /// one, else a jittered exponential backoff. A `Retry-After` longer than
    /// [`Config::max_retry_wait`] ends the call at once with that error, so
    /// the caller can schedule the retry itself.
    pub(crate) async fn retry<T, F, Fut>(&self, attempt: F) -> Result<T, Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        let backoff = ExponentialBuilder::new()
            .with_min_delay(MIN_BACKOFF)
            .with_max_delay(MAX_BACKOFF)
            .with_max_times(ATTEMPTS - 1)
            .with_jitter();
        let mut retries = 0_usize;
        attempt
            .retry(backoff)
            .when(|error: &Error| matches!(error.class(), ErrorClass::Retryable { .. }))
            .adjust(|error: &Error, backoff| {
                let backoff = backoff?;
                match error.class() {
                    ErrorClass::Retryable {
                        retry_after: Some(wait),
                    } => (wait <= self.max_retry_wait).then_some(wait),
                    ErrorClass::Retryable { retry_after: None }
                    | ErrorClass::Permanent
                    | ErrorClass::ReauthRequired => Some(backoff),
                }
            })
            .notify(|error: &Error, delay: Duration| {
                retries += 1;
                tracing::warn!(
                    retry = retries,
                    delay_ms = delay.as_millis(),
                    error.message = %error,
                    "Provider call failed; retrying."
                );
            })
            .await
    }
}

/// The `Content-Type` of a form body.
pub(crate) const FORM_CONTENT_TYPE: &str = "application/x-www-form-urlencoded";

/// The `Content-Type` of a JSON body.
pub(crate) const JSON_CONTENT_TYPE: &str = "application/json";

/// A request being built by [`Http`]; only [`send`](Self::send) sends it.
/// Its `Debug` shows only the URL as errors do.
pub(crate) struct Request {
    builder: RequestBuilder,
    url: Url,
    /// The URL its errors show, through [`display_url`].
    shown: Url,
    egress: Egress,
    /// The credentials it sends, which a failed answer may echo: blanked
    /// from the body before any error is made of it.
    sent_secrets: Vec<SecretString>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("url", &display_url(&self.shown))
            .finish_non_exhaustive()
    }
}

impl Request {
    /// Shows `shown` instead of the request URL in errors: the URL with
    /// its secret path segments [`REDACTED`] (see [`secret_path`]).
    pub(crate) fn shown_as(self, shown: Url) -> Self {
        Self { shown, ..self }
    }

    /// Adds a header.
    pub(crate) fn header(self, name: HeaderName, value: HeaderValue) -> Self {
        self.map(|builder| builder.header(name, value))
    }

    /// Adds headers.
    pub(crate) fn headers(self, headers: HeaderMap) -> Self {
        self.map(|builder| builder.headers(headers))
    }

    /// Adds HTTP Basic credentials (`Authorization`, marked sensitive).
    pub(crate) fn basic_auth(mut self, username: &str, password: &SecretString) -> Self {
        self.sent_secrets.push(password.clone());
        // As the header carries them, which an answer may echo too.
        self.sent_secrets.push(SecretString::from(
            base64::engine::general_purpose::STANDARD
                .encode(format!("{username}:{}", password.expose_secret())),
        ));
        self.map(|builder| builder.basic_auth(username, Some(password.expose_secret())))
    }

    /// Adds a bearer token (`Authorization`, marked sensitive).
    pub(crate) fn bearer_auth(mut self, token: &SecretString) -> Self {
        self.sent_secrets.push(token.clone());
        self.map(|builder| builder.bearer_auth(token.expose_secret()))
    }

    /// Marks `secret`, sent some other way (a form field, a signed
    /// header), as one a failed answer must not carry into an error.
    pub(crate) fn sends_secret(mut self, secret: &SecretString) -> Self {
        self.sent_secrets.push(secret.clone());
        self
    }

    /// Takes the secrets this request sends, to blank from a failed answer.
    pub(crate) fn take_sent_secrets(&mut self) -> Vec<SecretString> {
        std::mem::take(&mut self.sent_secrets)
    }

    /// Sends `body` as JSON.
    pub(crate) fn json(self, body: &serde_json::Value) -> Self {
        self.map(|builder| builder.json(body))
    }

    /// Sends `form` URL-encoded.
    pub(crate) fn form<T: Serialize + ?Sized>(self, form: &T) -> Self {
        self.map(|builder| builder.form(form))
    }

    /// Sends `body`, already encoded as `content_type` says: the bytes a
    /// signature covers are the bytes sent.
    pub(crate) fn body_encoded(self, content_type: &'static str, body: Vec<u8>) -> Self {
        self.map(|builder| {
            builder
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .body(body)
        })
    }

    fn map(self, change: impl FnOnce(RequestBuilder) -> RequestBuilder) -> Self {
        Self {
            builder: change(self.builder),
            ..self
        }
    }

    /// Sends the request to `provider` (its display name, for messages),
    /// unless its host is an IP literal the egress rule refuses (names are
    /// checked as they resolve): then nothing is sent and the error is
    /// [`Error::Refused`], as it is when a name resolves only to refused
    /// addresses. Other failures are [`Error::Transport`], showing the URL
    /// as [`display_url`] renders it (and as [`shown_as`](Self::shown_as)
    /// says), with the cause's own copy of the URL removed.
    ///
    /// The request runs in a `provider.request` span with the provider, the
    /// method and the response status: never the URL, whose query or path
    /// may hold a secret.
    pub(crate) async fn send(self, provider: &str) -> Result<reqwest::Response, Error> {
        if let Some(host) = self.url.host()
            && !self.egress.permits_host(&host)
        {
            counted(provider, "refused", None);
            return Err(refused(provider, &self.url));
        }
        let (client, request) = self.builder.build_split();
        let method = request
            .as_ref()
            .map_or("", |request| request.method().as_str());
        let span = tracing::info_span!(
            "provider.request",
            otel.kind = "client",
            provider,
            http.request.method = method,
            http.response.status_code = tracing::field::Empty,
        );
        let started = Instant::now();
        let _ = TRAFFIC.try_with(|traffic| traffic.requests.fetch_add(1, Ordering::Relaxed));
        let sent = async { client.execute(request?).await }
            .instrument(span.clone())
            .await;
        let elapsed = Some(started.elapsed());
        match &sent {
            Ok(response) => {
                span.record("http.response.status_code", response.status().as_u16());
                counted(provider, response.status().as_str(), elapsed);
            }
            Err(source) if is_refused(source) => counted(provider, "refused", None),
            Err(_) => counted(provider, "error", elapsed),
        }
        sent.map_err(|source| {
            if is_refused(&source) {
                refused(provider, &self.url)
            } else {
                transport_error(provider, &self.shown, source)
            }
        })
    }
}

/// Counts one request to `provider` in `fleet_provider_requests_total`, by
/// the answer's status (or `error` without one, `refused` when the egress
/// rule stopped it), and times it in `fleet_provider_request_seconds`.
fn counted(provider: &str, status: &str, elapsed: Option<Duration>) {
    metrics::counter!(
        "fleet_provider_requests_total",
        "provider" => provider.to_owned(),
        "status" => status.to_owned(),
    )
    .increment(1);
    if let Some(elapsed) = elapsed {
        metrics::histogram!("fleet_provider_request_seconds", "provider" => provider.to_owned())
            .record(elapsed.as_secs_f64());
    }
}

/// What the requests within a [`counting`] scope cost.
#[derive(Debug, Default)]
struct Traffic {
    /// Bytes of the response bodies read.
    bytes: AtomicU64,
    /// Requests sent (an egress refusal sends none).
    requests: AtomicU64,
}

tokio::task_local! {
    /// The traffic of a [`counting`] scope.
    static TRAFFIC: Arc<Traffic>;
}

/// Runs `work`, counting the requests [`Request::send`] sends and the
/// bytes of every response body [`Http::body`] reads meanwhile (retries,
/// token renewals and every provider's own calls included): what one page
/// of a sync cost, as `(output, bytes, requests)`.
pub(crate) async fn counting<F: Future>(work: F) -> (F::Output, u64, u64) {
    let traffic = Arc::new(Traffic::default());
    let output = TRAFFIC.scope(Arc::clone(&traffic), work).await;
    (
        output,
        traffic.bytes.load(Ordering::Relaxed),
        traffic.requests.load(Ordering::Relaxed),
    )
}

/// The first `limit` bytes of `response`'s body, at most: reading stops
/// there, so an answer that only matters for an error message cannot make
/// the caller hold more. Empty when the body cannot be read.
pub async fn body_prefix(mut response: reqwest::Response, limit: usize) -> Bytes {
    let mut body = BytesMut::new();
    while body.len() < limit {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = limit - body.len();
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            Ok(None) | Err(_) => break,
        }
    }
    body.freeze()
}

/// Whether `error` failed because the egress rule refused every address of
/// the host.
pub(crate) fn is_refused(error: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(cause) = source {
        if cause.is::<egress::Refused>() {
            return true;
        }
        source = cause.source();
    }
    false
}

fn refused(provider: &str, url: &Url) -> Error {
    Error::Refused {
        provider: provider.to_owned(),
        host: url.host_str().unwrap_or_default().to_owned(),
    }
}

/// `url` for messages and logs: scheme, host, port and path, without user
/// info, query string or fragment (any may carry a secret). A path segment
/// that is [`REDACTED`] shows as such.
pub(crate) fn display_url(url: &Url) -> String {
    let mut url = url.clone();
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.set_query(None);
    url.set_fragment(None);
    url.as_str().replace("%3Credacted%3E", REDACTED)
}

/// `template` (an absolute URL with `{name}` standing for a secret path
/// segment, such as Trello's `https://api.trello.com/1/tokens/{token}`)
/// with `value` in that segment, percent-encoded, for the request, and
/// the same URL with [`REDACTED`] there, for messages: `None` when the
/// template is not a URL.
pub(crate) fn secret_path(template: &str, name: &str, value: &str) -> Option<(Url, Url)> {
    let placeholder = format!("{{{name}}}");
    let fill = |value: &str| {
        let encoded =
            percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC)
                .to_string();
        Url::parse(&template.replace(&placeholder, &encoded)).ok()
    };
    Some((fill(value)?, fill(REDACTED)?))
}

/// `path` (segments separated by `/`) below `base`, whether or not `base`
/// ends with `/`. Each segment is percent-encoded as a path segment.
pub(crate) fn endpoint(base: &Url, path: &str) -> Url {
    let mut url = base.clone();
    if let Ok(mut segments) = url.path_segments_mut() {
        segments.pop_if_empty().extend(path.split('/'));
    }
    url
}

/// The error for a failed request or body read. The URL is taken out of
/// `source` and shown without its query string.
fn transport_error(provider: &str, url: &Url, source: reqwest::Error) -> Error {
    Error::Transport {
        provider: provider.to_owned(),
        url: display_url(url),
        source: source.without_url(),
    }
}

/// The error for a 3xx answer to `url`.
pub(crate) fn redirect_error(
    provider: &str,
    url: &Url,
    status: StatusCode,
    headers: &HeaderMap,
) -> Error {
    let location = headers
        .get(LOCATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|location| url.join(location).ok())
        .map_or_else(
            || "an address it did not give".to_owned(),
            |location| text::cap(&display_url(&location), text::MAX_URL_CHARS),
        );
    Error::Redirected {
        provider: provider.to_owned(),
        url: display_url(url),
        status: status.as_u16(),
        location,
    }
}

/// Whether a status means "try again later": 408, 429 and 5xx.
pub(crate) fn is_transient(status: StatusCode) -> bool {
    status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
        || status.is_server_error()
}

/// The error for a transient status (see [`is_transient`]).
pub(crate) fn transient_error(
    provider: &str,
    site: String,
    status: StatusCode,
    headers: &HeaderMap,
) -> Error {
    let retry_after = retry_after(headers, Utc::now());
    if status == StatusCode::TOO_MANY_REQUESTS {
        Error::RateLimited {
            provider: provider.to_owned(),
            site,
            retry_after,
        }
    } else {
        Error::Unavailable {
            provider: provider.to_owned(),
            site,
            status: status.as_u16(),
            retry_after,
        }
    }
}

/// The `Retry-After` header as a delay from `now`: either delay-seconds or
/// an HTTP date (a date in the past is no delay). `None` when absent or
/// unreadable. Not capped: callers bound it (see [`crate::MAX_RETRY_AFTER`]).
pub fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = DateTime::parse_from_rfc2822(value).ok()?;
    Some(
        (at.with_timezone(&Utc) - now)
            .to_std()
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    fn headers(retry_after: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static(retry_after));
        headers
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-03-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn retry_after_reads_delay_seconds() {
        assert_eq!(
            retry_after(&headers("120"), now()),
            Some(Duration::from_secs(120))
        );
    }

    #[test]
    fn retry_after_reads_an_http_date() {
        assert_eq!(
            retry_after(&headers("Sun, 01 Mar 2026 12:00:30 GMT"), now()),
            Some(Duration::from_secs(30))
        );
    }

    #[test]
    fn retry_after_in_the_past_is_no_delay() {
        assert_eq!(
            retry_after(&headers("Sun, 01 Mar 2026 11:00:00 GMT"), now()),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn retry_after_that_is_unreadable_or_absent_is_none() {
        assert_eq!(retry_after(&headers("soon"), now()), None);
        assert_eq!(retry_after(&HeaderMap::new(), now()), None);
    }

    #[test]
    fn endpoints_join_below_a_base_with_or_without_a_slash() {
        let versioned = Url::parse("https://graph.facebook.com/v22.0").unwrap();
        let slashed = Url::parse("https://api.linkedin.com/").unwrap();

        assert_eq!(
            endpoint(&versioned, "act_1/insights").as_str(),
            "https://graph.facebook.com/v22.0/act_1/insights"
        );
        assert_eq!(
            endpoint(&slashed, "rest/organizationAcls").as_str(),
            "https://api.linkedin.com/rest/organizationAcls"
        );
        let plain = Url::parse("http://sim.test/google/analyticsdata").unwrap();
        let slashed = Url::parse("https://analyticsdata.googleapis.com/").unwrap();
        assert_eq!(
            endpoint(&plain, "v1beta/properties/1:runReport").as_str(),
            "http://sim.test/google/analyticsdata/v1beta/properties/1:runReport"
        );
        assert_eq!(
            endpoint(&slashed, "v1beta/accountSummaries").as_str(),
            "https://analyticsdata.googleapis.com/v1beta/accountSummaries"
        );
    }

    #[test]
    fn display_url_drops_user_info() {
        let url = Url::parse("https://bob:hunter2@example.com/wp-json/").unwrap();

        assert_eq!(display_url(&url), "https://example.com/wp-json/");
    }

    #[test]
    fn secret_path_fills_the_request_and_redacts_the_message() {
        let (url, shown) = secret_path(
            "https://api.trello.com/1/tokens/{token}",
            "token",
            "ATTA0123/secret?x",
        )
        .unwrap();

        assert_eq!(
            url.as_str(),
            "https://api.trello.com/1/tokens/ATTA0123%2Fsecret%3Fx"
        );
        assert_eq!(
            display_url(&shown),
            "https://api.trello.com/1/tokens/<redacted>"
        );
        assert!(secret_path("not a url {token}", "token", "t").is_none());
    }

    #[test]
    fn display_url_drops_query_and_fragment() {
        let url = Url::parse("https://example.com/wp-json/wp/v2/posts?token=secret#top").unwrap();

        assert_eq!(display_url(&url), "https://example.com/wp-json/wp/v2/posts");
    }

    #[test]
    fn redirect_error_resolves_a_relative_location_and_drops_its_query() {
        let url = Url::parse("https://example.com/wp-json/wp/v2/users/me?context=edit").unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(
            LOCATION,
            HeaderValue::from_static("/wp-login.php?redirect_to=x&reauth=1"),
        );

        let error = redirect_error("WordPress", &url, StatusCode::FOUND, &headers);

        let Error::Redirected { location, url, .. } = &error else {
            panic!("expected Redirected, got {error:?}");
        };
        assert_eq!(location, "https://example.com/wp-login.php");
        assert_eq!(url, "https://example.com/wp-json/wp/v2/users/me");
    }
}
