//! The OAuth callback's request handling without NATS or a provider, for
//! the fuzz target `oauth_callback` (fuzz/fuzz_targets/oauth_callback.rs)
//! and its corpus replay test. Not an API: hidden from the docs, and
//! changed together with the fuzz target.

use axum::http::{HeaderMap, HeaderValue};
use url::Url;

use crate::binding::{self, Binding};
use crate::oauth_state;
use crate::routes::oauth::{self, CallbackParams};

/// Lifetime of the binding cookies made here; any value does.
const TTL_SECS: u64 = 600;

/// The binding the request's `Cookie` headers present for `state`.
pub fn presented_binding(headers: &HeaderMap, state: &str) -> Option<String> {
    binding::presented(headers, state)
}

/// A fresh binding of `state` for the callback at `redirect_uri`: the
/// `Set-Cookie` header of `/oauth/authorize` and the digest the pending
/// state keeps.
pub fn bind(redirect_uri: &Url, state: &str) -> (HeaderValue, String) {
    let binding = Binding::new();
    let cookie = binding::Cookie::new(redirect_uri, TTL_SECS).set(state, &binding);
    (cookie, binding.digest())
}

/// The `Set-Cookie` header with which the callback clears `state`'s binding.
pub fn clear_binding(redirect_uri: &Url, state: &str) -> HeaderValue {
    binding::Cookie::new(redirect_uri, TTL_SECS).clear(state)
}

/// Whether `presented` is the binding whose digest is `stored`.
pub fn binding_matches(stored: &str, presented: &str) -> bool {
    binding::matches(stored, presented)
}

/// The bucket key the callback looks `state` up by, or `None` when no
/// lookup is made because `state` cannot be one the gateway issued.
pub fn state_key(state: &str) -> Option<String> {
    oauth_state::valid_key(state).then(|| oauth_state::key(state))
}

/// `value` sealed as the pending state of `state` is stored.
///
/// # Panics
///
/// When the operating system has no source of randomness.
pub fn seal_state(state: &str, value: &[u8]) -> Vec<u8> {
    oauth_state::seal(state, value).expect("sealing needs only random bytes")
}

/// The value of a stored pending state, opened with the callback's `state`.
pub fn open_state(state: &str, sealed: &[u8]) -> Option<Vec<u8>> {
    oauth_state::open(state, sealed)
}

/// The message the dashboard shows when the provider sent `error`.
pub fn provider_error(provider: &str, error: &str, params: &CallbackParams) -> String {
    oauth::provider_error(provider, error, params)
}
