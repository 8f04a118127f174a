//! The checks of the `oauth_callback` fuzz target, shared with
//! fleet-gateway's corpus replay test
//! (`crates/gateway/tests/it/fuzz_corpus.rs`).
//!
//! The input is what a browser sends to `/oauth/callback`: the first line
//! is the query string, every further line the value of a `Cookie` header.
//! Whatever it is, the callback's parsing returns instead of panicking, and:
//! - the query's `Debug` shows none of the credentials it carries;
//! - the binding cookie the authorize step sets is found again among any
//!   other cookies and matches its digest, while no other value does;
//! - the `Set-Cookie` headers are well formed and never carry the `state`;
//! - a `state` is looked up by a digest key that NATS accepts;
//! - a pending state opens only with the `state` it was sealed for, and
//!   only unaltered;
//! - the message for a provider's `error` (or `oauth_problem`) has no
//!   control characters and a bounded length.

use axum::extract::Query;
use axum::http::header::COOKIE;
use axum::http::{HeaderMap, HeaderValue, Uri};
use fleet_gateway::fuzzing;
use fleet_gateway::routes::oauth::CallbackParams;
use url::{Url, form_urlencoded};

/// Redirect URIs an operator may configure: over https, where the binding
/// cookie is `Secure`, and over plain http on loopback.
const REDIRECT_URIS: [&str; 2] = [
    "https://fleet.example.com/oauth/callback",
    "http://127.0.0.1:8080/oauth/callback",
];

/// Runs every check on `data`; panics on the first that fails.
pub(crate) fn check(data: &[u8]) {
    let mut lines = data.split(|b| *b == b'\n');
    let query = lines.next().unwrap_or_default();
    let mut headers = HeaderMap::new();
    for line in lines {
        if let Ok(value) = HeaderValue::from_bytes(line) {
            headers.append(COOKIE, value);
        }
    }
    let Ok(uri) = Uri::try_from([b"/oauth/callback?", query].concat()) else {
        // Not a request target: the HTTP server refuses it first.
        return;
    };
    let params = parse(&uri);
    debug_hides_credentials(&uri, &params);
    // As the handler does: OAuth 1.0a reports a denial as `oauth_problem`.
    if let Some(error) = params.error.as_ref().or(params.oauth_problem.as_ref()) {
        provider_error(error, &params);
    }
    let Some(state) = &params.state else {
        return;
    };
    for redirect_uri in REDIRECT_URIS {
        let redirect_uri = Url::parse(redirect_uri).expect("a valid URL");
        binding(&headers, state, &redirect_uri);
    }
    state_lookup(state, data);
}

/// The parameters that carry credentials; `CallbackParams`'s `Debug` must
/// show whether each is present, never its value.
const CREDENTIALS: [&str; 4] = ["state", "code", "oauth_token", "oauth_verifier"];

/// `Debug` reads the same for the query as for the query with every
/// credential replaced by another value.
fn debug_hides_credentials(uri: &Uri, params: &CallbackParams) {
    let query = uri.query().unwrap_or_default();
    let replaced = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(
            form_urlencoded::parse(query.as_bytes()).map(|(key, value)| {
                let value = if CREDENTIALS.contains(&key.as_ref()) {
                    "another value".into()
                } else {
                    value
                };
                (key, value)
            }),
        )
        .finish();
    let other_uri: Uri = format!("/oauth/callback?{replaced}")
        .parse()
        .expect("a serialized query is a valid request target");
    let other = parse(&other_uri);
    assert_eq!(
        format!("{params:?}"),
        format!("{other:?}"),
        "the Debug output of the callback's query depends on its credentials"
    );
}

/// The query as the handler reads it: one that does not parse is empty.
fn parse(uri: &Uri) -> CallbackParams {
    Query::<CallbackParams>::try_from_uri(uri)
        .map(|Query(params)| params)
        .unwrap_or_default()
}

fn provider_error(error: &str, params: &CallbackParams) {
    let message = fuzzing::provider_error("Example Provider", error, params);
    assert!(
        !message.chars().any(char::is_control),
        "a control character in {message:?}"
    );
    assert!(
        message.chars().count() <= 600,
        "an unbounded message: {message:?}"
    );
}

fn binding(headers: &HeaderMap, state: &str, redirect_uri: &Url) {
    let secure = redirect_uri.scheme() == "https";
    let clear = fuzzing::clear_binding(redirect_uri, state);
    let clear = well_formed(&clear, secure);
    assert!(clear.contains("=; "), "clearing sets a value: {clear}");
    assert!(
        clear.contains("; Max-Age=0;"),
        "clearing keeps the cookie: {clear}"
    );

    let (set, digest) = fuzzing::bind(redirect_uri, state);
    let set = well_formed(&set, secure);
    let (name, value) = set
        .split(';')
        .next()
        .and_then(|pair| pair.split_once('='))
        .expect("a cookie is name=value");
    let presented = fuzzing::presented_binding(headers, state);
    if let Some(presented) = &presented {
        assert!(
            !fuzzing::binding_matches(&digest, presented),
            "a value the browser did not get matches the binding"
        );
    }
    let mut with_ours = headers.clone();
    let ours = HeaderValue::from_str(&format!("{name}={value}")).expect("header text");
    with_ours.append(COOKIE, ours);
    let found = fuzzing::presented_binding(&with_ours, state);
    if presented.is_none() {
        assert_eq!(
            found.as_deref(),
            Some(value),
            "the binding cookie was not found"
        );
        assert!(
            fuzzing::binding_matches(&digest, value),
            "the binding does not match its digest"
        );
    }
}

/// The `Set-Cookie` header's text, checked: a name made from a digest of
/// the `state` (so the header never carries the `state`), and the
/// attributes that keep the cookie to the callback.
fn well_formed(header: &HeaderValue, secure: bool) -> String {
    let text = header
        .to_str()
        .expect("a Set-Cookie header is visible ASCII")
        .to_owned();
    let name = text.split('=').next().unwrap_or_default();
    let digest = name.strip_prefix("fleet_oauth_").unwrap_or_default();
    assert!(
        digest.len() == 16 && digest.bytes().all(|b| b.is_ascii_hexdigit()),
        "a cookie name that is not a digest: {text}"
    );
    for attribute in ["; Path=/oauth/callback;", "; HttpOnly", "; SameSite=Lax"] {
        assert!(text.contains(attribute), "{attribute} missing: {text}");
    }
    assert_eq!(text.ends_with("; Secure"), secure, "{text}");
    text
}

fn state_lookup(state: &str, data: &[u8]) {
    if let Some(key) = fuzzing::state_key(state) {
        assert!(
            key.len() == 43
                && key
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "the bucket key {key:?} is not a base64url digest"
        );
        assert_ne!(key, state, "the state is its own bucket key");
    }
    assert_eq!(
        fuzzing::open_state(state, data),
        None,
        "bytes that were never sealed opened"
    );
    let sealed = fuzzing::seal_state(state, data);
    assert_eq!(fuzzing::open_state(state, &sealed).as_deref(), Some(data));
    let other_state = format!("{state}x");
    assert_eq!(
        fuzzing::open_state(&other_state, &sealed),
        None,
        "opened with another state"
    );
    let mut altered = sealed;
    if let Some(last) = altered.last_mut() {
        *last ^= 1;
    }
    assert_eq!(
        fuzzing::open_state(state, &altered),
        None,
        "an altered entry opened"
    );
}
