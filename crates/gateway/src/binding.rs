//! Binding an OAuth flow to the browser that started it.
//!
//! Without it, anyone holding a consent link can hand it to someone else:
//! tenant "mallory" starts a flow and sends the provider's consent page to
//! a victim, who signs in, and the callback connects the victim's account
//! to mallory's tenant (login CSRF, RFC 6749 §10.12).
//!
//! `/oauth/authorize` therefore sets a cookie with 256 random bits (the
//! binding) and keeps only its SHA-256 digest in the flow's pending state.
//! The callback requires the cookie, compares its digest with the stored
//! one in constant time, and clears the cookie whatever the outcome. The
//! cookie is `HttpOnly` (scripts never see it), `SameSite=Lax` (sent on the
//! top-level navigation back from the provider, not on cross-site
//! subrequests), `Secure` when the redirect URI is `https`, scoped to the
//! callback's path and expires with the state. Its name carries a digest of
//! the state, so flows started in parallel in one browser (two tabs) each
//! keep their own.

use axum::http::header::COOKIE;
use axum::http::{HeaderMap, HeaderValue};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest as _, Sha256};
use url::Url;

/// Cookie names start with this, followed by 16 hex digits of the state's
/// digest.
const COOKIE_PREFIX: &str = "fleet_oauth_";

/// Random bytes in a binding.
const BINDING_BYTES: usize = 32;

/// A fresh binding: the cookie's value. Only its [`digest`](Self::digest)
/// is stored.
pub(crate) struct Binding(String);

/// The value is the browser's secret: never printed.
impl std::fmt::Debug for Binding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Binding([REDACTED])")
    }
}

impl Binding {
    /// 256 random bits, base64url.
    ///
    /// # Panics
    ///
    /// When the operating system has no source of randomness.
    pub(crate) fn new() -> Self {
        let mut bytes = [0_u8; BINDING_BYTES];
        getrandom::fill(&mut bytes).expect("the operating system provides random bytes");
        Self(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// What the pending state keeps: base64url(SHA-256(binding)).
    pub(crate) fn digest(&self) -> String {
        digest(&self.0)
    }
}

/// Whether `presented` (the cookie's value) is the binding whose digest is
/// `stored`. Compares the digests in constant time.
pub(crate) fn matches(stored: &str, presented: &str) -> bool {
    let presented = digest(presented);
    let (a, b) = (stored.as_bytes(), presented.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let difference = a.iter().zip(b).fold(0_u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(difference) == 0
}

fn digest(value: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(value.as_bytes()))
}

/// How the binding cookie is scoped, from the gateway's settings.
#[derive(Debug, Clone)]
pub(crate) struct Cookie {
    path: String,
    secure: bool,
    max_age_secs: u64,
}

impl Cookie {
    /// A cookie for the callback at `redirect_uri`, living `max_age_secs`.
    pub(crate) fn new(redirect_uri: &Url, max_age_secs: u64) -> Self {
        let path = redirect_uri.path();
        // A path a cookie attribute cannot hold falls back to the whole site.
        let usable = path.starts_with('/')
            && path
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b';' && b != b',');
        Self {
            path: if usable {
                path.to_owned()
            } else {
                "/".to_owned()
            },
            secure: redirect_uri.scheme() == "https",
            max_age_secs,
        }
    }

    /// `Set-Cookie` binding the flow `state` to this browser.
    pub(crate) fn set(&self, state: &str, binding: &Binding) -> HeaderValue {
        self.header(state, &binding.0, self.max_age_secs)
    }

    /// `Set-Cookie` removing the binding of `state`.
    pub(crate) fn clear(&self, state: &str) -> HeaderValue {
        self.header(state, "", 0)
    }

    fn header(&self, state: &str, value: &str, max_age: u64) -> HeaderValue {
        let secure = if self.secure { "; Secure" } else { "" };
        let cookie = format!(
            "{}={value}; Path={}; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}",
            name(state),
            self.path
        );
        HeaderValue::from_str(&cookie).expect("names, values and paths are checked header text")
    }
}

/// The binding the request presents for `state`, if any.
pub(crate) fn presented(headers: &HeaderMap, state: &str) -> Option<String> {
    let name = name(state);
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim_matches('"').to_owned())
}

/// The cookie's name for `state`.
fn name(state: &str) -> String {
    let digest = Sha256::digest(state.as_bytes());
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("{COOKIE_PREFIX}{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cookie(uri: &str) -> Cookie {
        Cookie::new(&Url::parse(uri).unwrap(), 600)
    }

    #[test]
    fn the_cookie_is_http_only_lax_scoped_to_the_callback_and_lives_as_long_as_the_state() {
        let binding = Binding::new();
        let set = cookie("https://fleet.example.com/oauth/callback").set("state-1", &binding);
        let set = set.to_str().unwrap();

        assert!(set.starts_with(&format!("{}=", name("state-1"))), "{set}");
        for attribute in [
            "; Path=/oauth/callback",
            "; Max-Age=600",
            "; HttpOnly",
            "; SameSite=Lax",
            "; Secure",
        ] {
            assert!(set.contains(attribute), "{attribute} missing: {set}");
        }
        let plain = cookie("http://127.0.0.1:8080/oauth/callback").set("state-1", &binding);
        assert!(!plain.to_str().unwrap().contains("Secure"), "{plain:?}");
    }

    #[test]
    fn clearing_expires_the_same_cookie_at_once() {
        let clear = cookie("https://fleet.example.com/oauth/callback").clear("state-1");
        let clear = clear.to_str().unwrap();

        assert!(
            clear.starts_with(&format!("{}=;", name("state-1"))),
            "{clear}"
        );
        assert!(clear.contains("; Max-Age=0"), "{clear}");
        assert!(clear.contains("; Path=/oauth/callback"), "{clear}");
    }

    #[test]
    fn the_binding_is_found_among_other_cookies_and_checked_against_its_digest() {
        let binding = Binding::new();
        let mut headers = HeaderMap::new();
        headers.append(COOKIE, HeaderValue::from_static("theme=dark"));
        let ours = format!("a=b; {}={}", name("state-1"), binding.0);
        headers.append(COOKIE, HeaderValue::from_str(&ours).unwrap());

        let found = presented(&headers, "state-1").unwrap();

        assert!(matches(&binding.digest(), &found));
        assert!(!matches(&binding.digest(), &Binding::new().0));
        assert!(!matches(&binding.digest(), ""));
        assert!(presented(&headers, "state-2").is_none());
        assert_ne!(binding.digest(), binding.0, "only the digest is stored");
    }

    #[test]
    fn a_path_a_cookie_cannot_hold_falls_back_to_the_root() {
        let odd = cookie("https://fleet.example.com/o;auth/callback");
        assert_eq!(odd.path, "/");
    }
}
