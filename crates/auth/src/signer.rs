//! Minting tokens: with the shared HS256 key for local use, or with the
//! issuer's EdDSA or RS256 private key.

use std::fmt;

use jsonwebtoken::{EncodingKey, Header};
use secrecy::SecretString;

use crate::claims::{Audience, Wire};
use crate::{Algorithm, Claims, Config, KeyError, SignError, Verifier, keys};

/// Signs tenant tokens with the configured issuer and audience.
///
/// Only the platform that issues tokens (or `fleet token`, locally) needs
/// one; the gateway and the bridge only verify. `Debug` does not show the
/// key.
pub struct Signer {
    key: EncodingKey,
    /// The `kid` header: which key of the issuer's set signed.
    key_id: Option<String>,
    /// Verifiers use a key set (`jwks_url`), which finds keys by `kid`.
    needs_key_id: bool,
    algorithm: Algorithm,
    issuer: Option<String>,
    audience: String,
    max_lifetime_seconds: u64,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("algorithm", &self.algorithm)
            .field("key_id", &self.key_id)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// A signer with the HS256 key of `config`.
    ///
    /// # Errors
    ///
    /// [`KeyError::NeedsPrivateKey`] when `config` uses EdDSA or RS256 (use
    /// [`with_private_key`](Self::with_private_key)), and the key errors
    /// of [`Verifier::new`].
    pub fn new(config: &Config) -> Result<Self, KeyError> {
        keys::check(config)?;
        if config.algorithm != Algorithm::Hs256 {
            return Err(KeyError::NeedsPrivateKey {
                algorithm: config.algorithm.name(),
            });
        }
        let key = EncodingKey::from_secret(keys::hmac(config)?);
        Ok(Self::with_key(config, key))
    }

    /// A signer for `config`'s EdDSA or RS256 with the PEM (PKCS#8)
    /// `private_key`. When `config` also holds the public key, the two
    /// must be a pair.
    ///
    /// # Errors
    ///
    /// [`KeyError::BadPrivateKey`], [`KeyError::PrivateKeyForHs256`],
    /// [`KeyError::KeyPairMismatch`], or an error of the public key.
    pub fn with_private_key(config: &Config, private_key: &SecretString) -> Result<Self, KeyError> {
        keys::check(config)?;
        let key = keys::encoding(config.algorithm, private_key)?;
        let signer = Self::with_key(config, key);
        let trial = Claims::for_tenant(
            fleet_events::TenantId::parse("key-check").expect("a valid tenant id"),
            std::time::Duration::from_secs(60),
        );
        let token = signer.encode(&trial).map_err(|_| KeyError::BadPrivateKey {
            expected: match config.algorithm {
                Algorithm::Rs256 => "RSA",
                _ => "Ed25519",
            },
        })?;
        if keys::public_pem_configured(config) && Verifier::new(config)?.verify(&token).is_err() {
            return Err(KeyError::KeyPairMismatch);
        }
        Ok(signer)
    }

    /// Names the signing key in each token's `kid` header, as the
    /// issuer's key set (`jwks_url`) lists it, so that verifiers pick
    /// the right key of the set.
    #[must_use]
    pub fn with_key_id(mut self, key_id: impl Into<String>) -> Self {
        self.key_id = Some(key_id.into());
        self
    }

    fn with_key(config: &Config, key: EncodingKey) -> Self {
        Self {
            key,
            key_id: None,
            needs_key_id: config.jwks_url.is_some(),
            algorithm: config.algorithm,
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            max_lifetime_seconds: config.max_lifetime_seconds,
        }
    }

    /// Signs `claims` into a token carrying this signer's issuer and
    /// audience.
    ///
    /// # Errors
    ///
    /// [`SignError::TooLong`] when `exp - iat` is longer than verifiers with
    /// the same settings accept, [`SignError::MissingKeyId`] when they check
    /// tokens with a key set and this signer has no
    /// [key id](Self::with_key_id), [`SignError::Sign`] when signing fails.
    pub fn sign(&self, claims: &Claims) -> Result<String, SignError> {
        if self.needs_key_id && self.key_id.is_none() {
            return Err(SignError::MissingKeyId);
        }
        let seconds = claims.exp.saturating_sub(claims.iat);
        if seconds > self.max_lifetime_seconds {
            return Err(SignError::TooLong {
                seconds,
                max_seconds: self.max_lifetime_seconds,
            });
        }
        self.encode(claims).map_err(SignError::Sign)
    }

    /// Signs without the lifetime check, for tests of refusals.
    pub(crate) fn encode(&self, claims: &Claims) -> Result<String, jsonwebtoken::errors::Error> {
        let wire = Wire {
            tenant: Some(claims.tenant.to_string()),
            exp: Some(claims.exp),
            iat: Some(claims.iat),
            connections: claims
                .connections
                .as_ref()
                .map(|ids| ids.iter().map(ToString::to_string).collect()),
            sub: claims.subject.clone(),
            iss: self.issuer.clone(),
            aud: Some(Audience::One(self.audience.clone())),
        };
        let mut header = Header::new(self.algorithm.jwt());
        header.kid.clone_from(&self.key_id);
        jsonwebtoken::encode(&header, &wire, &self.key)
    }
}
