//! The issuer's key set (JWKS): fetched over HTTP, read into the keys that
//! check tokens of the configured algorithm, and shared by a verifier and
//! its [`Refresher`](crate::Refresher).

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, KeyOperations, PublicKeyUse,
};
use serde::Deserialize;
use tokio::sync::Notify;
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::{Algorithm, Config, FetchError, KeyError, keys};

/// The largest key set read, in bytes: a set of a few dozen RSA keys is a
/// few tens of KiB.
pub(crate) const MAX_BODY: usize = 1024 * 1024;

/// How long a fetch may take, from connecting to the last byte.
const TIMEOUT: Duration = Duration::from_secs(10);

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// RSA keys shorter than this are ignored.
const MIN_RSA_BITS: usize = 2048;

/// Ed25519 public keys are 32 bytes.
const ED25519_PUBLIC_LEN: usize = 32;

/// The most of a token's `kid` that a refusal repeats.
const KID_SHOWN: usize = 64;

/// The usable keys of a set, by `kid`.
pub(crate) type Keys = HashMap<String, DecodingKey>;

/// The current keys, shared by a verifier and its refresher.
pub(crate) struct Shared {
    keys: RwLock<Arc<Keys>>,
    refetch: Arc<Notify>,
    /// Where the set comes from, for `Debug`.
    pub(crate) url: String,
    /// Stops the refresher when the last verifier is gone.
    _alive: DropGuard,
}

impl Shared {
    /// The keys now in use.
    pub(crate) fn current(&self) -> Arc<Keys> {
        Arc::clone(&self.keys.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Asks the refresher for an early fetch: a token named a key the set
    /// does not list, which may be a key the issuer has just rotated to.
    pub(crate) fn request_refetch(&self) {
        self.refetch.notify_one();
    }

    pub(crate) fn replace(&self, keys: Keys) {
        *self.keys.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(keys);
    }
}

/// The part of a key set the refresher needs: the source, the shared keys
/// (weakly: the verifier owns them), the refetch requests and the signal
/// that the verifier is gone.
pub(crate) struct Parts {
    pub(crate) source: Source,
    pub(crate) shared: std::sync::Weak<Shared>,
    pub(crate) refetch: Arc<Notify>,
    pub(crate) alive: CancellationToken,
}

/// Fetches the key set for the first time, so that a service does not
/// start without keys.
///
/// # Errors
///
/// A [`KeyError`] for unusable settings, [`KeyError::FetchKeySet`] when the
/// set cannot be fetched or has no usable key.
pub(crate) async fn connect(config: &Config) -> Result<(Arc<Shared>, Parts), KeyError> {
    let source = Source::new(config)?;
    let fetched = source
        .fetch()
        .await
        .map_err(|source_error| KeyError::FetchKeySet {
            url: source.shown.clone(),
            source: source_error,
        })?;
    fetched.log(&source.shown);
    let alive = CancellationToken::new();
    let refetch = Arc::new(Notify::new());
    let shared = Arc::new(Shared {
        keys: RwLock::new(Arc::new(fetched.keys)),
        refetch: Arc::clone(&refetch),
        url: source.shown.clone(),
        _alive: alive.clone().drop_guard(),
    });
    let parts = Parts {
        source,
        shared: Arc::downgrade(&shared),
        refetch,
        alive,
    };
    Ok((shared, parts))
}

/// Where the key set comes from and how to read it.
pub(crate) struct Source {
    client: reqwest::Client,
    url: reqwest::Url,
    /// The URL without user, password, query or fragment, for messages.
    pub(crate) shown: String,
    algorithm: Algorithm,
}

impl Source {
    fn new(config: &Config) -> Result<Self, KeyError> {
        let url = keys::key_set_url(config)?;
        let shown = shown_url(&url);
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .https_only(url.scheme() == "https")
            .build()
            .map_err(|e| KeyError::FetchKeySet {
                url: shown.clone(),
                source: FetchError::Request(e),
            })?;
        Ok(Self {
            client,
            url,
            shown,
            algorithm: config.algorithm,
        })
    }

    /// Fetches and reads the set, reading at most [`MAX_BODY`] bytes.
    pub(crate) async fn fetch(&self) -> Result<Fetched, FetchError> {
        let request = |e: reqwest::Error| FetchError::Request(e.without_url());
        let mut response = self
            .client
            .get(self.url.clone())
            .header(
                reqwest::header::ACCEPT,
                "application/jwk-set+json, application/json",
            )
            .send()
            .await
            .map_err(request)?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(FetchError::Status {
                status: response.status().as_u16(),
            });
        }
        let too_large = FetchError::TooLarge { limit: MAX_BODY };
        if response
            .content_length()
            .is_some_and(|len| len > MAX_BODY as u64)
        {
            return Err(too_large);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(request)? {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(too_large);
            }
            body.extend_from_slice(&chunk);
        }
        read(&body, self.algorithm)
    }
}

/// `url` without user, password, query or fragment.
fn shown_url(url: &reqwest::Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.set_fragment(None);
    // Only fails for URLs without a host, which `key_set_url` refuses.
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.to_string()
}

/// A fetched set: the usable keys and why the others were ignored.
#[derive(Debug)]
pub(crate) struct Fetched {
    pub(crate) keys: Keys,
    pub(crate) ignored: Vec<Ignored>,
}

impl Fetched {
    /// The ids of the usable keys, sorted.
    pub(crate) fn kids(&self) -> Vec<&str> {
        let mut kids: Vec<&str> = self.keys.keys().map(String::as_str).collect();
        kids.sort_unstable();
        kids
    }

    /// Logs the usable keys and, at debug level, each ignored one.
    pub(crate) fn log(&self, url: &str) {
        for ignored in &self.ignored {
            tracing::debug!(
                url,
                kid = ignored.kid.as_deref(),
                reason = ignored.reason,
                "Token key set entry ignored."
            );
        }
        tracing::info!(
            url,
            kids = ?self.kids(),
            ignored = self.ignored.len(),
            "Token key set fetched."
        );
    }
}

/// A key of the set that checks no token, and why.
#[derive(Debug)]
pub(crate) struct Ignored {
    pub(crate) kid: Option<String>,
    pub(crate) reason: &'static str,
}

/// A JWK set before its keys are read one by one, so that one key this
/// crate cannot read (an encryption key, an unknown `alg`) does not make
/// the whole set unreadable.
#[derive(Deserialize)]
struct RawSet {
    keys: Vec<serde_json::Value>,
}

/// The keys of the JWK set `body` that check `algorithm` signatures:
/// Ed25519 (`OKP`) keys for EdDSA, RSA keys of 2048 bits or more for RS256,
/// each with a `kid`, and with `use`, `key_ops` and `alg`, where present,
/// allowing it. HMAC (`oct`) keys and every other key are ignored; of two
/// keys with one `kid` the first is used.
///
/// # Errors
///
/// [`FetchError::NotAKeySet`], and [`FetchError::NoUsableKey`] when no key
/// is left.
pub(crate) fn read(body: &[u8], algorithm: Algorithm) -> Result<Fetched, FetchError> {
    let raw: RawSet = serde_json::from_slice(body).map_err(FetchError::NotAKeySet)?;
    let mut keys = Keys::new();
    let mut ignored = Vec::new();
    for value in raw.keys {
        match usable(value, algorithm) {
            Ok((kid, _)) if keys.contains_key(&kid) => ignored.push(Ignored {
                kid: Some(kid),
                reason: "an earlier key of the set has the same `kid`",
            }),
            Ok((kid, key)) => {
                keys.insert(kid, key);
            }
            Err(ignore) => ignored.push(ignore),
        }
    }
    if keys.is_empty() {
        return Err(FetchError::NoUsableKey {
            expected: expected(algorithm),
            ignored: ignored.len(),
        });
    }
    Ok(Fetched { keys, ignored })
}

/// The keys `algorithm` needs, in words.
fn expected(algorithm: Algorithm) -> &'static str {
    match algorithm {
        Algorithm::EdDsa => "Ed25519 (`OKP`)",
        Algorithm::Rs256 => "RSA (2048 bits or more)",
        Algorithm::Hs256 => "HMAC",
    }
}

/// `value`'s `kid` and key when it checks `algorithm` signatures.
fn usable(
    value: serde_json::Value,
    algorithm: Algorithm,
) -> Result<(String, DecodingKey), Ignored> {
    let kid = value
        .get("kid")
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned);
    let ignore = |reason| Ignored {
        kid: kid.clone(),
        reason,
    };
    let jwk: Jwk =
        serde_json::from_value(value).map_err(|_| ignore("not a public key this service reads"))?;
    let Some(kid) = jwk.common.key_id.clone().filter(|kid| !kid.is_empty()) else {
        return Err(ignore("it has no `kid`"));
    };
    let common = &jwk.common;
    if common
        .public_key_use
        .as_ref()
        .is_some_and(|key_use| *key_use != PublicKeyUse::Signature)
    {
        return Err(ignore("its `use` is not `sig`"));
    }
    if common
        .key_operations
        .as_ref()
        .is_some_and(|ops| !ops.contains(&KeyOperations::Verify))
    {
        return Err(ignore("its `key_ops` do not include `verify`"));
    }
    if common
        .key_algorithm
        .is_some_and(|alg| alg != KeyAlgorithm::from(algorithm.jwt()))
    {
        return Err(ignore("its `alg` is not the configured algorithm"));
    }
    let key = match (algorithm, &jwk.algorithm) {
        (Algorithm::EdDsa, AlgorithmParameters::OctetKeyPair(okp))
            if okp.curve == EllipticCurve::Ed25519 =>
        {
            ed25519(&okp.x)
        }
        (Algorithm::Rs256, AlgorithmParameters::RSA(rsa)) => rsa_key(&rsa.n, &rsa.e),
        _ => Err("it is not a key of the configured algorithm"),
    }
    .map_err(ignore)?;
    Ok((kid, key))
}

fn ed25519(x: &str) -> Result<DecodingKey, &'static str> {
    let bad = "its `x` is not a base64url Ed25519 public key";
    let key = DecodingKey::from_ed_components(x).map_err(|_| bad)?;
    match key.try_get_as_bytes() {
        Ok(raw) if raw.len() == ED25519_PUBLIC_LEN => Ok(key),
        _ => Err(bad),
    }
}

fn rsa_key(n: &str, e: &str) -> Result<DecodingKey, &'static str> {
    let modulus = URL_SAFE_NO_PAD
        .decode(n)
        .map_err(|_| "its `n` is not base64url")?;
    if rsa_bits(&modulus) < MIN_RSA_BITS {
        return Err("it is an RSA key shorter than 2048 bits");
    }
    DecodingKey::from_rsa_components(n, e).map_err(|_| "its `e` is not base64url")
}

/// The size in bits of the big-endian unsigned `modulus`.
fn rsa_bits(modulus: &[u8]) -> usize {
    let Some(first) = modulus.iter().position(|byte| *byte != 0) else {
        return 0;
    };
    (modulus.len() - first) * 8 - modulus[first].leading_zeros() as usize
}

/// A token's `kid` as a refusal repeats it: at most [`KID_SHOWN`]
/// characters.
pub(crate) fn shown_kid(kid: &str) -> String {
    kid.chars().take(KID_SHOWN).collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const ED_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";

    fn set(keys: &serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(&json!({ "keys": keys })).unwrap()
    }

    fn okp(kid: &str) -> serde_json::Value {
        json!({"kty": "OKP", "crv": "Ed25519", "x": ED_X, "kid": kid})
    }

    fn rsa(kid: &str, bits: usize) -> serde_json::Value {
        let mut n = vec![0xff_u8; bits / 8];
        n[0] = 0xc5;
        json!({"kty": "RSA", "n": URL_SAFE_NO_PAD.encode(&n), "e": "AQAB", "kid": kid})
    }

    fn merged(mut key: serde_json::Value, extra: &serde_json::Value) -> serde_json::Value {
        for (name, value) in extra.as_object().unwrap() {
            key[name] = value.clone();
        }
        key
    }

    #[test]
    fn only_signature_keys_of_the_configured_type_with_a_kid_are_kept() {
        let body = set(&json!([
            okp("a"),
            {"kty": "oct", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA", "kid": "hmac"},
            rsa("rsa", 2048),
            {"kty": "EC", "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
             "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0", "kid": "ec"},
            {"kty": "OKP", "crv": "X25519", "x": ED_X, "kid": "x25519"},
            {"kty": "RSA", "alg": "RSA-OAEP-256", "n": "AQAB", "e": "AQAB", "kid": "unknown-alg"},
            merged(okp("enc"), &json!({"use": "enc"})),
            merged(okp("wrap"), &json!({"key_ops": ["wrapKey"]})),
            merged(okp("other-alg"), &json!({"alg": "RS256"})),
            {"kty": "OKP", "crv": "Ed25519", "x": ED_X},
            okp(""),
            {"kty": "OKP", "crv": "Ed25519", "x": "AQAB", "kid": "short"},
            merged(okp("a"), &json!({"x": "5DzJkQDlu8ZRg-bJVOtAmm1Rmnib4JZKyw0oAhEP804"})),
            merged(okp("b"), &json!({"use": "sig", "key_ops": ["verify"], "alg": "EdDSA"})),
        ]));

        let fetched = read(&body, Algorithm::EdDsa).unwrap();

        assert_eq!(fetched.kids(), ["a", "b"]);
        assert_eq!(fetched.ignored.len(), 12, "{:?}", fetched.ignored);
    }

    #[test]
    fn rsa_keys_need_2048_bits() {
        let body = set(&json!([rsa("small", 1024), rsa("big", 2048), okp("ed")]));

        let fetched = read(&body, Algorithm::Rs256).unwrap();

        assert_eq!(fetched.kids(), ["big"]);
        assert_eq!(rsa_bits(&[0, 0x01, 0xff]), 9);
        assert_eq!(rsa_bits(&[0, 0]), 0);
    }

    #[test]
    fn a_set_without_a_usable_key_says_which_keys_it_needed() {
        let body = set(&json!([okp("a"), {"kty": "oct", "k": "c2VjcmV0", "kid": "h"}]));

        let err = read(&body, Algorithm::Rs256).unwrap_err();

        assert!(
            matches!(err, FetchError::NoUsableKey { ignored: 2, .. }),
            "{err}"
        );
        assert_eq!(
            err.to_string(),
            "the key set lists no RSA (2048 bits or more) signature key with a `kid` (2 other keys ignored)"
        );
    }

    #[test]
    fn a_body_that_is_no_key_set_is_refused() {
        for body in [&b"<html>"[..], b"{}", b"{\"keys\": {}}", b"[]"] {
            let err = read(body, Algorithm::EdDsa).unwrap_err();
            assert!(matches!(err, FetchError::NotAKeySet(_)), "{err}");
        }
    }

    #[test]
    fn shown_urls_and_kids_leave_out_what_is_not_needed() {
        let url = reqwest::Url::parse("https://user:pw@issuer.example/keys?token=s#f").unwrap();
        assert_eq!(shown_url(&url), "https://issuer.example/keys");
        assert_eq!(shown_kid(&"k".repeat(100)).len(), 64);
        assert_eq!(shown_kid("kid-ä"), "kid-ä");
    }
}
