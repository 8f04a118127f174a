//! Checking tokens.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use fleet_events::{ConnectionId, TenantId};
use jsonwebtoken::{DecodingKey, Validation, errors::ErrorKind};

use crate::key_set::{self, Shared};
use crate::{Algorithm, Claims, Config, Error, KeyError, Refresher, Signer, claims::Wire, keys};

/// Checks tenant tokens: the signature with the one configured algorithm
/// and key (or the key of the issuer's key set that the token's `kid`
/// names), `exp`, `nbf`, `iat`, the lifetime, `aud` and `iss`.
///
/// Cheap to share behind an `Arc`; `Debug` does not show the key.
pub struct Verifier {
    keys: Keys,
    validation: Validation,
    algorithm: Algorithm,
    issuer: Option<String>,
    audience: String,
    max_lifetime_seconds: u64,
    /// The HS256 key signs too; asymmetric verifiers hold no private key.
    signer: Option<Signer>,
}

/// What checks signatures.
enum Keys {
    /// The HS256 key or the one public key.
    One(DecodingKey),
    /// The issuer's key set, kept current by a [`Refresher`].
    Set(Arc<Shared>),
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key_set = match &self.keys {
            Keys::One(_) => None,
            Keys::Set(shared) => Some(&shared.url),
        };
        f.debug_struct("Verifier")
            .field("algorithm", &self.algorithm)
            .field("key_set", &key_set)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("leeway_seconds", &self.validation.leeway)
            .field("max_lifetime_seconds", &self.max_lifetime_seconds)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// A verifier for the configured algorithm, key, issuer, audience,
    /// leeway and maximum lifetime.
    ///
    /// # Errors
    ///
    /// A [`KeyError`] naming the setting that is missing, wrong, or out of
    /// place (an HMAC key next to a public key, a private key where the
    /// public one belongs), and [`KeyError::KeySetNotFetched`] when the
    /// settings name a key set (`jwks_url`), which only
    /// [`connect`](Self::connect) fetches.
    pub fn new(config: &Config) -> Result<Self, KeyError> {
        keys::check(config)?;
        if config.jwks_url.is_some() {
            keys::key_set_url(config)?;
            return Err(KeyError::KeySetNotFetched);
        }
        Self::with_keys(config, Keys::One(keys::decoding(config)?))
    }

    /// A verifier for any settings, and the [`Refresher`] that keeps its
    /// key set current: with `jwks_url` set, it fetches the issuer's key
    /// set first, and fails when it cannot. Spawn the refresher's
    /// [`run`](Refresher::run); for a static key it returns at once.
    ///
    /// # Errors
    ///
    /// The errors of [`new`](Self::new), and [`KeyError::FetchKeySet`] when
    /// the key set cannot be fetched or lists no key this service can use.
    pub async fn connect(config: &Config) -> Result<(Self, Refresher), KeyError> {
        keys::check(config)?;
        if config.jwks_url.is_none() {
            return Ok((Self::new(config)?, Refresher::idle()));
        }
        let (shared, parts) = key_set::connect(config).await?;
        let verifier = Self::with_keys(config, Keys::Set(shared))?;
        let interval = Duration::from_secs(config.jwks_refresh_seconds);
        Ok((verifier, Refresher::new(parts, interval)))
    }

    fn with_keys(config: &Config, keys: Keys) -> Result<Self, KeyError> {
        let signer = match config.algorithm {
            Algorithm::Hs256 => Some(Signer::new(config)?),
            Algorithm::EdDsa | Algorithm::Rs256 => None,
        };
        let mut validation = Validation::new(config.algorithm.jwt());
        validation.leeway = config.leeway_seconds;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.validate_aud = true;
        validation.set_audience(&[&config.audience]);
        let mut required = vec!["exp", "aud"];
        if let Some(issuer) = &config.issuer {
            required.push("iss");
            validation.set_issuer(&[issuer]);
        }
        validation.set_required_spec_claims(&required);
        Ok(Self {
            keys,
            validation,
            algorithm: config.algorithm,
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            max_lifetime_seconds: config.max_lifetime_seconds,
            signer,
        })
    }

    /// The algorithm tokens must be signed with.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// Checks `token`'s signature, `exp`, `nbf`, `iat`, lifetime, audience
    /// and issuer, and returns its claims.
    ///
    /// # Errors
    ///
    /// The [`Error`] that says why the token is refused.
    pub fn verify(&self, token: &str) -> Result<Claims, Error> {
        let wire = match &self.keys {
            Keys::One(key) => self.decode(token, key)?,
            Keys::Set(shared) => self.decode_with_set(token, shared)?,
        };
        let exp = wire.exp.ok_or(Error::Malformed {
            reason: "it has no `exp` claim",
        })?;
        let iat = wire.iat.ok_or(Error::Malformed {
            reason: "it has no `iat` claim",
        })?;
        let now = jsonwebtoken::get_current_timestamp();
        if iat > now.saturating_add(self.validation.leeway) {
            return Err(Error::IssuedInTheFuture);
        }
        if exp.saturating_sub(iat) > self.max_lifetime_seconds {
            return Err(Error::TooLong {
                max_seconds: self.max_lifetime_seconds,
            });
        }
        let tenant = wire.tenant.ok_or(Error::MissingTenant)?;
        let connections = wire
            .connections
            .map(|ids| {
                ids.iter()
                    .map(|id| ConnectionId::parse(id))
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()
            .map_err(Error::InvalidConnection)?;
        Ok(Claims {
            tenant: TenantId::parse(&tenant).map_err(Error::InvalidTenant)?,
            exp,
            iat,
            connections,
            subject: wire.sub,
        })
    }

    /// Checks the signature and the registered claims with `key`.
    fn decode(&self, token: &str, key: &DecodingKey) -> Result<Wire, Error> {
        jsonwebtoken::decode::<Wire>(token, key, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| self.refusal(e.kind()))
    }

    /// Checks the token with the key of the set its `kid` names; asks for
    /// an early refetch when the set does not list it.
    fn decode_with_set(&self, token: &str, shared: &Shared) -> Result<Wire, Error> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| self.refusal(e.kind()))?;
        if header.alg != self.algorithm.jwt() {
            return Err(Error::WrongAlgorithm {
                expected: self.algorithm.name(),
            });
        }
        let kid = header.kid.ok_or(Error::MissingKeyId)?;
        let keys = shared.current();
        let Some(key) = keys.get(&kid) else {
            shared.request_refetch();
            return Err(Error::UnknownKey {
                kid: key_set::shown_kid(&kid),
            });
        };
        self.decode(token, key)
    }

    /// Signs `claims` into an HS256 token with this verifier's key, issuer
    /// and audience, for tests and demo tooling. Unlike [`Signer::sign`] it
    /// does not check the lifetime, so tests can make tokens that are
    /// refused.
    ///
    /// # Panics
    ///
    /// When tokens are signed with EdDSA or RS256: this verifier holds only
    /// the public key and cannot sign (use a [`Signer`] with the private
    /// key).
    pub fn issue(&self, claims: &Claims) -> String {
        self.signer
            .as_ref()
            .expect("only an HS256 verifier can sign; use a Signer with the private key")
            .encode(claims)
            .expect("HS256 signing of plain claims does not fail")
    }

    /// The refusal for a `jsonwebtoken` failure, in words that never quote
    /// the token.
    fn refusal(&self, kind: &ErrorKind) -> Error {
        let malformed = |reason| Error::Malformed { reason };
        let wrong_issuer = || Error::WrongClaim {
            claim: "iss",
            expected: self.issuer.clone().unwrap_or_default(),
        };
        let wrong_audience = || Error::WrongClaim {
            claim: "aud",
            expected: self.audience.clone(),
        };
        match kind {
            ErrorKind::ExpiredSignature => Error::Expired,
            ErrorKind::ImmatureSignature => Error::NotYetValid,
            ErrorKind::InvalidSignature
            | ErrorKind::InvalidEcdsaKey
            | ErrorKind::InvalidEddsaKey
            | ErrorKind::InvalidRsaKey(_)
            | ErrorKind::InvalidKeyFormat => Error::BadSignature,
            ErrorKind::InvalidIssuer => wrong_issuer(),
            ErrorKind::InvalidAudience => wrong_audience(),
            ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                Error::WrongAlgorithm {
                    expected: self.algorithm.name(),
                }
            }
            ErrorKind::MissingRequiredClaim(claim) if claim == "iss" => wrong_issuer(),
            ErrorKind::MissingRequiredClaim(claim) if claim == "aud" => wrong_audience(),
            ErrorKind::MissingRequiredClaim(_) => malformed("it has no `exp` claim"),
            ErrorKind::Base64(_) | ErrorKind::Utf8(_) => {
                malformed("a part is not base64url-encoded UTF-8")
            }
            ErrorKind::Json(_) | ErrorKind::InvalidClaimFormat(_) => malformed(
                "its header or claims are not the expected JSON (numeric `exp`, `iat` and `nbf`, a string `tenant`)",
            ),
            _ => malformed("it is not three dot-separated base64url parts"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use jsonwebtoken::{EncodingKey, Header};
    use secrecy::SecretString;

    use super::*;
    use crate::SignError;

    const KEY: &str = "0123456789abcdef0123456789abcdef";
    const ED_PRIVATE: &str = include_str!("../testdata/ed25519-private.pem");
    const ED_PUBLIC: &str = include_str!("../testdata/ed25519-public.pem");
    const ED_OTHER_PUBLIC: &str = include_str!("../testdata/ed25519-other-public.pem");
    const RSA_PRIVATE: &str = include_str!("../testdata/rsa-private.pem");
    const RSA_PUBLIC: &str = include_str!("../testdata/rsa-public.pem");

    fn verifier() -> Verifier {
        Verifier::new(&Config::new(KEY.into())).unwrap()
    }

    fn claims(tenant: &str) -> Claims {
        Claims::for_tenant(TenantId::parse(tenant).unwrap(), Duration::from_secs(600))
    }

    fn now() -> u64 {
        jsonwebtoken::get_current_timestamp()
    }

    /// `claims` signed with the HS256 test key, whatever they hold.
    fn sign(claims: &serde_json::Value) -> String {
        jsonwebtoken::encode(
            &Header::new(jsonwebtoken::Algorithm::HS256),
            claims,
            &EncodingKey::from_secret(KEY.as_bytes()),
        )
        .unwrap()
    }

    /// Valid claims for tenant `acme`, with `extra` merged in (a `null`
    /// removes a claim).
    fn raw(extra: &serde_json::Value) -> serde_json::Value {
        let mut claims = serde_json::json!({
            "tenant": "acme", "exp": now() + 600, "iat": now(), "aud": "connector-fleet",
        });
        for (key, value) in extra.as_object().unwrap() {
            if value.is_null() {
                claims.as_object_mut().unwrap().remove(key);
            } else {
                claims[key] = value.clone();
            }
        }
        claims
    }

    fn ed25519() -> (Signer, Verifier) {
        let config = Config::with_public_key(Algorithm::EdDsa, ED_PUBLIC);
        let signer = Signer::with_private_key(&config, &SecretString::from(ED_PRIVATE)).unwrap();
        (signer, Verifier::new(&config).unwrap())
    }

    #[test]
    fn an_issued_token_verifies_to_the_same_claims() {
        let mut issued = claims("acme");
        issued.connections = Some(vec![ConnectionId::parse("c-1").unwrap()]);
        issued.subject = Some("ada@acme.example".to_owned());

        let verified = verifier().verify(&verifier().issue(&issued)).unwrap();

        assert_eq!(verified, issued);
        assert!(verified.allows(&ConnectionId::parse("c-1").unwrap()));
        assert!(!verified.allows(&ConnectionId::parse("c-2").unwrap()));
        assert!(verified.is_narrowed());
    }

    #[test]
    fn an_expired_token_is_refused_as_expired() {
        let mut old = claims("acme");
        old.exp = old.iat - 3600;

        let err = verifier().verify(&verifier().issue(&old)).unwrap_err();

        assert!(matches!(err, Error::Expired), "{err}");
        assert_eq!(
            err.to_string(),
            "the token has expired; request a new one and reconnect"
        );
    }

    #[test]
    fn expiry_within_the_leeway_is_tolerated() {
        let mut recent = claims("acme");
        recent.exp = recent.iat - 5;

        assert!(verifier().verify(&verifier().issue(&recent)).is_ok());
    }

    #[test]
    fn a_token_signed_with_another_key_has_a_bad_signature() {
        let other = Verifier::new(&Config::new("another key of thirty-two bytes!".into())).unwrap();
        let token = other.issue(&claims("acme"));

        let err = verifier().verify(&token).unwrap_err();

        assert!(matches!(err, Error::BadSignature), "{err}");
        assert!(!err.to_string().contains(&token));
    }

    #[test]
    fn garbage_is_malformed_and_the_message_does_not_quote_it() {
        for token in ["", "not-a-jwt", "a.b.c", "eyJhbGciOiJIUzI1NiJ9.e30"] {
            let err = verifier().verify(token).unwrap_err();
            assert!(matches!(err, Error::Malformed { .. }), "{token}: {err}");
            if !token.is_empty() {
                assert!(!err.to_string().contains(token), "{err}");
            }
        }
    }

    #[test]
    fn a_token_with_another_algorithm_is_refused_naming_the_accepted_one() {
        let token = jsonwebtoken::encode(
            &Header::new(jsonwebtoken::Algorithm::HS512),
            &raw(&serde_json::json!({})),
            &EncodingKey::from_secret(KEY.as_bytes()),
        )
        .unwrap();

        let err = verifier().verify(&token).unwrap_err();

        assert!(
            matches!(err, Error::WrongAlgorithm { expected: "HS256" }),
            "{err}"
        );
    }

    #[test]
    fn a_token_without_a_tenant_claim_names_the_claim() {
        let token = sign(&raw(&serde_json::json!({"tenant": null, "sub": "acme"})));

        let err = verifier().verify(&token).unwrap_err();

        assert!(matches!(err, Error::MissingTenant), "{err}");
    }

    #[test]
    fn a_tenant_claim_that_is_no_tenant_id_is_refused() {
        let token = sign(&raw(&serde_json::json!({"tenant": "acme.>"})));

        let err = verifier().verify(&token).unwrap_err();

        assert!(matches!(err, Error::InvalidTenant(_)), "{err}");
    }

    #[test]
    fn a_token_without_exp_or_iat_names_the_missing_claim() {
        for (claim, extra) in [
            ("exp", serde_json::json!({"exp": null})),
            ("iat", serde_json::json!({"iat": null})),
        ] {
            let err = verifier().verify(&sign(&raw(&extra))).unwrap_err();
            assert!(matches!(err, Error::Malformed { .. }), "{claim}: {err}");
            assert!(err.to_string().contains(&format!("`{claim}`")), "{err}");
        }
    }

    #[test]
    fn the_audience_must_be_present_and_match() {
        assert!(
            verifier()
                .verify(&sign(&raw(&serde_json::json!({}))))
                .is_ok()
        );
        let listed = serde_json::json!({"aud": ["dashboard", "connector-fleet"]});
        assert!(verifier().verify(&sign(&raw(&listed))).is_ok());

        for extra in [
            serde_json::json!({"aud": null}),
            serde_json::json!({"aud": "another-service"}),
            serde_json::json!({"aud": ["another-service"]}),
        ] {
            let err = verifier().verify(&sign(&raw(&extra))).unwrap_err();
            assert!(
                matches!(&err, Error::WrongClaim { claim: "aud", expected } if expected == "connector-fleet"),
                "{extra}: {err}"
            );
            assert!(err.to_string().contains("\"connector-fleet\""), "{err}");
        }
    }

    #[test]
    fn a_configured_audience_replaces_the_default() {
        let mut config = Config::new(KEY.into());
        config.audience = "dashboard".to_owned();
        let strict = Verifier::new(&config).unwrap();

        assert!(strict.verify(&strict.issue(&claims("acme"))).is_ok());
        let err = strict
            .verify(&verifier().issue(&claims("acme")))
            .unwrap_err();
        assert!(
            matches!(err, Error::WrongClaim { claim: "aud", .. }),
            "{err}"
        );
        config.audience = " ".to_owned();
        assert!(matches!(
            Verifier::new(&config).unwrap_err(),
            KeyError::EmptyAudience
        ));
    }

    #[test]
    fn the_issuer_is_checked_when_configured() {
        let mut config = Config::new(KEY.into());
        config.issuer = Some("platform".into());
        let strict = Verifier::new(&config).unwrap();

        assert!(strict.verify(&strict.issue(&claims("acme"))).is_ok());
        let err = strict
            .verify(&verifier().issue(&claims("acme")))
            .unwrap_err();
        assert!(
            matches!(err, Error::WrongClaim { claim: "iss", .. }),
            "{err}"
        );
    }

    #[test]
    fn a_token_not_valid_yet_is_refused_beyond_the_leeway() {
        let soon = sign(&raw(&serde_json::json!({"nbf": now() + 10})));
        assert!(verifier().verify(&soon).is_ok(), "within the 30 s leeway");

        let later = sign(&raw(&serde_json::json!({"nbf": now() + 300})));
        let err = verifier().verify(&later).unwrap_err();
        assert!(matches!(err, Error::NotYetValid), "{err}");
    }

    #[test]
    fn a_token_issued_in_the_future_is_refused() {
        let token = sign(&raw(
            &serde_json::json!({"iat": now() + 3600, "exp": now() + 7200}),
        ));

        let err = verifier().verify(&token).unwrap_err();

        assert!(matches!(err, Error::IssuedInTheFuture), "{err}");
    }

    #[test]
    fn a_token_valid_for_longer_than_the_maximum_is_refused() {
        let mut long = claims("acme");
        long.exp = long.iat + 24 * 3600 + 1;
        let err = verifier().verify(&verifier().issue(&long)).unwrap_err();
        assert!(
            matches!(
                err,
                Error::TooLong {
                    max_seconds: 86_400
                }
            ),
            "{err}"
        );

        long.exp = long.iat + 24 * 3600;
        assert!(verifier().verify(&verifier().issue(&long)).is_ok());

        let signer = Signer::new(&Config::new(KEY.into())).unwrap();
        let mut longer = claims("acme");
        longer.exp = longer.iat + 48 * 3600;
        let refused = signer.sign(&longer).unwrap_err();
        assert!(matches!(refused, SignError::TooLong { .. }), "{refused}");
    }

    #[test]
    fn a_short_or_missing_hmac_key_is_refused() {
        let err = Verifier::new(&Config::new("short".into())).unwrap_err();
        assert!(matches!(err, KeyError::KeyTooShort { len: 5 }), "{err}");
        assert_eq!(
            err.to_string(),
            "the token signing key has 5 bytes; use at least 32 random bytes"
        );

        let mut none = Config::new(KEY.into());
        none.key = None;
        assert!(matches!(
            Verifier::new(&none).unwrap_err(),
            KeyError::MissingKey
        ));
    }

    #[test]
    fn debug_output_does_not_show_the_key() {
        let debug = format!("{:?}", verifier());
        assert!(!debug.contains(KEY), "{debug}");

        let signer = Signer::with_private_key(
            &Config::with_public_key(Algorithm::EdDsa, ED_PUBLIC),
            &SecretString::from(ED_PRIVATE),
        )
        .unwrap();
        let debug = format!("{signer:?}");
        assert!(!debug.contains("PRIVATE"), "{debug}");
    }

    #[test]
    fn ed25519_tokens_verify_with_the_public_key_alone() {
        let (signer, verifier) = ed25519();
        let mut issued = claims("acme");
        issued.subject = Some("ada".to_owned());

        let token = signer.sign(&issued).unwrap();

        assert_eq!(verifier.verify(&token).unwrap(), issued);
        assert_eq!(verifier.algorithm(), Algorithm::EdDsa);
        let other =
            Verifier::new(&Config::with_public_key(Algorithm::EdDsa, ED_OTHER_PUBLIC)).unwrap();
        assert!(matches!(
            other.verify(&token).unwrap_err(),
            Error::BadSignature
        ));
    }

    #[test]
    fn an_ed25519_verifier_refuses_hs256_tokens_even_signed_with_its_public_key() {
        let (_, verifier) = ed25519();
        // The classic confusion: an HMAC "signed" with the public key.
        let forged = jsonwebtoken::encode(
            &Header::new(jsonwebtoken::Algorithm::HS256),
            &raw(&serde_json::json!({})),
            &EncodingKey::from_secret(ED_PUBLIC.as_bytes()),
        )
        .unwrap();

        let err = verifier.verify(&forged).unwrap_err();

        assert!(
            matches!(err, Error::WrongAlgorithm { expected: "EdDSA" }),
            "{err}"
        );
    }

    #[test]
    #[should_panic(expected = "only an HS256 verifier can sign")]
    fn a_verify_only_verifier_cannot_mint() {
        let (_, verifier) = ed25519();
        verifier.issue(&claims("acme"));
    }

    #[test]
    fn rs256_tokens_verify_with_the_public_key() {
        let config = Config::with_public_key(Algorithm::Rs256, RSA_PUBLIC);
        let signer = Signer::with_private_key(&config, &SecretString::from(RSA_PRIVATE)).unwrap();
        let verifier = Verifier::new(&config).unwrap();

        let token = signer.sign(&claims("acme")).unwrap();

        assert_eq!(verifier.verify(&token).unwrap().tenant.as_str(), "acme");
        let (ed_signer, _) = ed25519();
        let err = verifier
            .verify(&ed_signer.sign(&claims("acme")).unwrap())
            .unwrap_err();
        assert!(
            matches!(err, Error::WrongAlgorithm { expected: "RS256" }),
            "{err}"
        );
    }

    #[test]
    fn asymmetric_settings_say_what_is_wrong_without_quoting_keys() {
        type Expected = fn(&KeyError) -> bool;
        let cases: [(Config, Expected); 6] = [
            (Config::with_public_key(Algorithm::EdDsa, ED_PRIVATE), |e| {
                matches!(e, KeyError::PrivateKeyAsPublic)
            }),
            (Config::with_public_key(Algorithm::EdDsa, RSA_PUBLIC), |e| {
                matches!(
                    e,
                    KeyError::BadPublicKey {
                        expected: "Ed25519"
                    }
                )
            }),
            (Config::with_public_key(Algorithm::Rs256, ED_PUBLIC), |e| {
                matches!(e, KeyError::BadPublicKey { expected: "RSA" })
            }),
            (
                Config::with_public_key(Algorithm::EdDsa, "not a key"),
                |e| matches!(e, KeyError::BadPublicKey { .. }),
            ),
            (
                Config {
                    key: Some(KEY.into()),
                    ..Config::with_public_key(Algorithm::EdDsa, ED_PUBLIC)
                },
                |e| matches!(e, KeyError::UnusedKey { algorithm: "EdDSA" }),
            ),
            (
                Config {
                    public_key: None,
                    ..Config::with_public_key(Algorithm::Rs256, RSA_PUBLIC)
                },
                |e| matches!(e, KeyError::MissingPublicKey { algorithm: "RS256" }),
            ),
        ];
        for (config, expected) in cases {
            let err = Verifier::new(&config).unwrap_err();
            assert!(expected(&err), "{err}");
            let message = err.to_string();
            assert!(!message.contains("MC"), "{message}");
        }
        let hs256_with_public = Config {
            public_key: Some(ED_PUBLIC.to_owned()),
            ..Config::new(KEY.into())
        };
        assert!(matches!(
            Verifier::new(&hs256_with_public).unwrap_err(),
            KeyError::UnusedPublicKey
        ));
    }

    #[test]
    fn the_public_key_can_come_from_a_file() {
        let dir = std::env::temp_dir().join(format!("fleet-auth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("public.pem");
        std::fs::write(&path, ED_PUBLIC).unwrap();
        let config = Config {
            public_key: None,
            public_key_file: Some(path.clone()),
            ..Config::with_public_key(Algorithm::EdDsa, "")
        };

        let (signer, _) = ed25519();
        let verifier = Verifier::new(&config).unwrap();
        assert!(
            verifier
                .verify(&signer.sign(&claims("acme")).unwrap())
                .is_ok()
        );

        std::fs::remove_file(&path).unwrap();
        let err = Verifier::new(&config).unwrap_err();
        assert!(matches!(err, KeyError::ReadPublicKey { .. }), "{err}");
        std::fs::remove_dir(&dir).unwrap();
    }

    #[test]
    fn a_private_key_must_match_the_configured_public_key() {
        let config = Config::with_public_key(Algorithm::EdDsa, ED_OTHER_PUBLIC);

        let err = Signer::with_private_key(&config, &SecretString::from(ED_PRIVATE)).unwrap_err();

        assert!(matches!(err, KeyError::KeyPairMismatch), "{err}");
        let hs256 = Signer::with_private_key(&Config::new(KEY.into()), &ED_PRIVATE.into());
        assert!(matches!(hs256.unwrap_err(), KeyError::PrivateKeyForHs256));
        let asymmetric = Signer::new(&Config::with_public_key(Algorithm::EdDsa, ED_PUBLIC));
        assert!(matches!(
            asymmetric.unwrap_err(),
            KeyError::NeedsPrivateKey { algorithm: "EdDSA" }
        ));
    }
}
