//! Checking and issuing tokens.

use std::fmt;

use fleet_events::{ConnectionId, TenantId};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use secrecy::ExposeSecret as _;

use crate::{Claims, Config, Error, KeyTooShort, MIN_KEY_LEN, claims::Wire};

/// Checks and issues tenant tokens with one key.
///
/// Cheap to share behind an `Arc`; `Debug` does not show the key.
pub struct Verifier {
    decoding: DecodingKey,
    encoding: EncodingKey,
    validation: Validation,
    issuer: Option<String>,
    audience: Option<String>,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("leeway_seconds", &self.validation.leeway)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// A verifier for the configured key, issuer, audience and leeway.
    ///
    /// # Errors
    ///
    /// [`KeyTooShort`] when the key has fewer than [`MIN_KEY_LEN`] bytes.
    pub fn new(config: &Config) -> Result<Self, KeyTooShort> {
        let key = config.key.expose_secret().as_bytes();
        if key.len() < MIN_KEY_LEN {
            return Err(KeyTooShort { len: key.len() });
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = config.leeway_seconds;
        let mut required = vec!["exp"];
        required.extend(config.issuer.as_ref().map(|_| "iss"));
        required.extend(config.audience.as_ref().map(|_| "aud"));
        validation.set_required_spec_claims(&required);
        validation.validate_aud = config.audience.is_some();
        if let Some(audience) = &config.audience {
            validation.set_audience(&[audience]);
        }
        if let Some(issuer) = &config.issuer {
            validation.set_issuer(&[issuer]);
        }
        Ok(Self {
            decoding: DecodingKey::from_secret(key),
            encoding: EncodingKey::from_secret(key),
            validation,
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
        })
    }

    /// Checks `token`'s signature, expiry, issuer and audience, and returns
    /// its claims.
    ///
    /// # Errors
    ///
    /// [`Error::Expired`], [`Error::BadSignature`], [`Error::Malformed`],
    /// [`Error::WrongClaim`], or one of the tenant and connection claim
    /// errors.
    pub fn verify(&self, token: &str) -> Result<Claims, Error> {
        let wire = jsonwebtoken::decode::<Wire>(token, &self.decoding, &self.validation)
            .map_err(|e| refusal(e.kind()))?
            .claims;
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
            exp: wire.exp,
            iat: wire.iat,
            connections,
        })
    }

    /// Signs `claims` into a token, with this verifier's issuer and audience,
    /// for tests and demo tooling.
    ///
    /// # Panics
    ///
    /// Never: HMAC signing of serializable claims cannot fail.
    pub fn issue(&self, claims: &Claims) -> String {
        let wire = Wire {
            tenant: Some(claims.tenant.to_string()),
            exp: claims.exp,
            iat: claims.iat,
            connections: claims
                .connections
                .as_ref()
                .map(|ids| ids.iter().map(ToString::to_string).collect()),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &wire, &self.encoding)
            .expect("HS256 signing of plain claims does not fail")
    }
}

/// The refusal for a `jsonwebtoken` failure, in words that never quote the token.
fn refusal(kind: &ErrorKind) -> Error {
    let malformed = |reason| Error::Malformed { reason };
    match kind {
        ErrorKind::ExpiredSignature => Error::Expired,
        ErrorKind::InvalidSignature => Error::BadSignature,
        ErrorKind::InvalidIssuer => Error::WrongClaim { claim: "iss" },
        ErrorKind::InvalidAudience => Error::WrongClaim { claim: "aud" },
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
            malformed("it is not signed with HS256")
        }
        ErrorKind::MissingRequiredClaim(claim) if claim == "iss" => {
            Error::WrongClaim { claim: "iss" }
        }
        ErrorKind::MissingRequiredClaim(claim) if claim == "aud" => {
            Error::WrongClaim { claim: "aud" }
        }
        ErrorKind::MissingRequiredClaim(_) => malformed("it has no `exp` claim"),
        ErrorKind::ImmatureSignature => malformed("it is not valid yet (`nbf` is in the future)"),
        ErrorKind::Base64(_) | ErrorKind::Utf8(_) => {
            malformed("a part is not base64url-encoded UTF-8")
        }
        ErrorKind::Json(_) | ErrorKind::InvalidClaimFormat(_) => {
            malformed("its header or claims are not the expected JSON (numeric `exp` and `iat`)")
        }
        _ => malformed("it is not three dot-separated base64url parts"),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const KEY: &str = "0123456789abcdef0123456789abcdef";

    fn verifier() -> Verifier {
        Verifier::new(&Config::new(KEY.into())).unwrap()
    }

    fn claims(tenant: &str) -> Claims {
        Claims::for_tenant(TenantId::parse(tenant).unwrap(), Duration::from_secs(600))
    }

    fn sign(key: &str, claims: &serde_json::Value) -> String {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            claims,
            &EncodingKey::from_secret(key.as_bytes()),
        )
        .unwrap()
    }

    #[test]
    fn an_issued_token_verifies_to_the_same_claims() {
        let mut issued = claims("acme");
        issued.connections = Some(vec![ConnectionId::parse("c-1").unwrap()]);

        let verified = verifier().verify(&verifier().issue(&issued)).unwrap();

        assert_eq!(verified, issued);
        assert!(verified.allows(&ConnectionId::parse("c-1").unwrap()));
        assert!(!verified.allows(&ConnectionId::parse("c-2").unwrap()));
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
    fn a_token_with_another_algorithm_is_refused() {
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS512),
            &serde_json::json!({"tenant": "acme", "exp": u64::MAX / 2, "iat": 0}),
            &EncodingKey::from_secret(KEY.as_bytes()),
        )
        .unwrap();

        let err = verifier().verify(&token).unwrap_err();

        assert!(matches!(err, Error::Malformed { .. }), "{err}");
    }

    #[test]
    fn a_token_without_a_tenant_claim_names_the_claim() {
        let token = sign(
            KEY,
            &serde_json::json!({"sub": "acme", "exp": u64::MAX / 2, "iat": 0}),
        );

        let err = verifier().verify(&token).unwrap_err();

        assert!(matches!(err, Error::MissingTenant), "{err}");
    }

    #[test]
    fn a_tenant_claim_that_is_no_tenant_id_is_refused() {
        let token = sign(
            KEY,
            &serde_json::json!({"tenant": "acme.>", "exp": u64::MAX / 2, "iat": 0}),
        );

        let err = verifier().verify(&token).unwrap_err();

        assert!(matches!(err, Error::InvalidTenant(_)), "{err}");
    }

    #[test]
    fn a_token_without_exp_is_malformed() {
        let token = sign(KEY, &serde_json::json!({"tenant": "acme", "iat": 0}));

        let err = verifier().verify(&token).unwrap_err();

        assert!(matches!(err, Error::Malformed { .. }), "{err}");
    }

    #[test]
    fn issuer_and_audience_are_checked_when_configured() {
        let mut config = Config::new(KEY.into());
        config.issuer = Some("gateway".into());
        config.audience = Some("dashboard".into());
        let strict = Verifier::new(&config).unwrap();

        assert!(strict.verify(&strict.issue(&claims("acme"))).is_ok());
        let err = strict
            .verify(&verifier().issue(&claims("acme")))
            .unwrap_err();
        assert!(matches!(err, Error::WrongClaim { .. }), "{err}");
    }

    #[test]
    fn a_short_key_is_refused() {
        let err = Verifier::new(&Config::new("short".into())).unwrap_err();

        assert_eq!(err.len, 5);
        assert_eq!(
            err.to_string(),
            "the token signing key has 5 bytes; use at least 32 random bytes"
        );
    }

    #[test]
    fn debug_output_does_not_show_the_key() {
        let debug = format!("{:?}", verifier());

        assert!(!debug.contains(KEY), "{debug}");
    }
}
