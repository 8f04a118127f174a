//! Keys from the settings: the HMAC key, the PEM public key, the key set
//! URL, a PEM private key. Errors never quote a key.

use std::borrow::Cow;
use std::net::IpAddr;

use jsonwebtoken::{DecodingKey, EncodingKey};
use secrecy::{ExposeSecret as _, SecretString};

use crate::{Algorithm, Config, KeyError, MIN_KEY_LEN};

/// Ed25519 public keys are 32 bytes.
const ED25519_PUBLIC_LEN: usize = 32;

/// Checks the settings every algorithm shares.
pub(crate) fn check(config: &Config) -> Result<(), KeyError> {
    if config.audience.trim().is_empty() {
        return Err(KeyError::EmptyAudience);
    }
    if config.max_lifetime_seconds == 0 {
        return Err(KeyError::NoLifetime);
    }
    Ok(())
}

/// The HS256 key, checked for length.
pub(crate) fn hmac(config: &Config) -> Result<&[u8], KeyError> {
    if config.jwks_url.is_some() {
        return Err(KeyError::KeySetForHs256);
    }
    if public_pem_configured(config) {
        return Err(KeyError::UnusedPublicKey);
    }
    let key = config
        .key
        .as_ref()
        .ok_or(KeyError::MissingKey)?
        .expose_secret()
        .as_bytes();
    if key.len() < MIN_KEY_LEN {
        return Err(KeyError::KeyTooShort { len: key.len() });
    }
    Ok(key)
}

/// The key that checks signatures of `config.algorithm`.
pub(crate) fn decoding(config: &Config) -> Result<DecodingKey, KeyError> {
    let algorithm = config.algorithm;
    if algorithm == Algorithm::Hs256 {
        return Ok(DecodingKey::from_secret(hmac(config)?));
    }
    if config.key.is_some() {
        return Err(KeyError::UnusedKey {
            algorithm: algorithm.name(),
        });
    }
    let pem = public_pem(config)?;
    if pem.contains("PRIVATE KEY") {
        return Err(KeyError::PrivateKeyAsPublic);
    }
    let bad = || KeyError::BadPublicKey {
        expected: kind(algorithm),
    };
    if algorithm == Algorithm::Rs256 {
        return DecodingKey::from_rsa_pem(pem.as_bytes()).map_err(|_| bad());
    }
    let key = DecodingKey::from_ed_pem(pem.as_bytes()).map_err(|_| bad())?;
    let raw = key.try_get_as_bytes().map_err(|_| bad())?;
    if raw.len() != ED25519_PUBLIC_LEN {
        return Err(bad());
    }
    Ok(key)
}

/// The URL of the issuer's key set, checked with the settings around it:
/// an asymmetric algorithm, no other key, https (or http to loopback), a
/// refresh interval.
pub(crate) fn key_set_url(config: &Config) -> Result<reqwest::Url, KeyError> {
    let url = config
        .jwks_url
        .as_deref()
        .ok_or(KeyError::MissingPublicKey {
            algorithm: config.algorithm.name(),
        })?;
    if config.algorithm == Algorithm::Hs256 {
        return Err(KeyError::KeySetForHs256);
    }
    if config.key.is_some() {
        return Err(KeyError::UnusedKey {
            algorithm: config.algorithm.name(),
        });
    }
    if public_pem_configured(config) {
        return Err(KeyError::KeySetAndPublicKey);
    }
    if config.jwks_refresh_seconds == 0 {
        return Err(KeyError::NoRefreshInterval);
    }
    let url = reqwest::Url::parse(url).map_err(|_| KeyError::BadKeySetUrl)?;
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(&url) => Ok(url),
        "http" => Err(KeyError::InsecureKeySetUrl),
        _ => Err(KeyError::BadKeySetUrl),
    }
}

/// Whether `url` names this machine: `localhost` or a loopback address.
fn is_loopback(url: &reqwest::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// The key that signs with `algorithm` from a PEM private key. The caller
/// makes a trial signature: parsing alone does not check every key.
pub(crate) fn encoding(algorithm: Algorithm, pem: &SecretString) -> Result<EncodingKey, KeyError> {
    let pem = pem.expose_secret().as_bytes();
    let bad = || KeyError::BadPrivateKey {
        expected: kind(algorithm),
    };
    match algorithm {
        Algorithm::EdDsa => EncodingKey::from_ed_pem(pem).map_err(|_| bad()),
        Algorithm::Rs256 => EncodingKey::from_rsa_pem(pem).map_err(|_| bad()),
        Algorithm::Hs256 => Err(KeyError::PrivateKeyForHs256),
    }
}

/// Whether the settings hold a public key, inline or as a file.
pub(crate) fn public_pem_configured(config: &Config) -> bool {
    config.public_key.is_some() || config.public_key_file.is_some()
}

fn public_pem(config: &Config) -> Result<Cow<'_, str>, KeyError> {
    match (&config.public_key, &config.public_key_file) {
        (Some(_), Some(_)) => Err(KeyError::TwoPublicKeys),
        (Some(pem), None) => Ok(Cow::Borrowed(pem)),
        (None, Some(path)) => std::fs::read_to_string(path)
            .map(Cow::Owned)
            .map_err(|source| KeyError::ReadPublicKey {
                path: path.clone(),
                source,
            }),
        (None, None) => Err(KeyError::MissingPublicKey {
            algorithm: config.algorithm.name(),
        }),
    }
}

pub(crate) fn kind(algorithm: Algorithm) -> &'static str {
    match algorithm {
        Algorithm::EdDsa => "Ed25519",
        Algorithm::Rs256 => "RSA",
        Algorithm::Hs256 => "HMAC",
    }
}
