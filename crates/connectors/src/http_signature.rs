//! HTTP Message Signatures (RFC 9421) with ed25519, for catalog entries
//! with a `[basic.http_signature]` table: the user name is the key id and
//! the password the private key (PKCS#8 PEM). Each request carries
//! `Signature-Input` and `Signature`, and `Content-Digest` (RFC 9530,
//! SHA-256) or `Date` when the signature covers them.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};
use ed25519_dalek::pkcs8::DecodePrivateKey as _;
use ed25519_dalek::{Signer as _, SigningKey};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use secrecy::{ExposeSecret as _, SecretString};
use sha2::{Digest as _, Sha256};
use url::Url;

use crate::catalog::HttpSignature;

/// The derived components (RFC 9421 §2.2) a signature may cover.
pub(crate) const DERIVED: [&str; 6] = [
    "@method",
    "@target-uri",
    "@authority",
    "@scheme",
    "@path",
    "@query",
];

/// Header fields the signer adds itself when the signature covers them.
pub(crate) const ADDED: [&str; 2] = ["content-digest", "date"];

/// Why a request cannot be signed; names no secret.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct SigningError(pub(crate) String);

/// What to sign: the entry's settings, the key id and the private key.
pub(crate) struct Signer<'a> {
    pub(crate) settings: &'a HttpSignature,
    pub(crate) key_id: &'a str,
    pub(crate) private_key: &'a SecretString,
}

impl Signer<'_> {
    /// The headers that sign `method url` with the `headers` it sends and
    /// `body`, at `now`: `Content-Digest` and `Date` when covered, then
    /// `Signature-Input` and `Signature`.
    pub(crate) fn headers(
        &self,
        method: &str,
        url: &Url,
        headers: &HeaderMap,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Vec<(HeaderName, HeaderValue)>, SigningError> {
        if self
            .key_id
            .chars()
            .any(|c| c == '"' || c == '\\' || !(' '..='~').contains(&c))
        {
            return Err(SigningError(
                "the key id holds characters a signature parameter cannot".to_owned(),
            ));
        }
        let mut added = Vec::new();
        let mut sent = headers.clone();
        for name in ADDED {
            if !self.covers(name) || sent.contains_key(name) {
                continue;
            }
            let value = match name {
                "content-digest" => {
                    format!("sha-256=:{}:", BASE64.encode(Sha256::digest(body)))
                }
                _ => now.format("%a, %d %b %Y %H:%M:%S GMT").to_string(),
            };
            let value = HeaderValue::from_str(&value)
                .map_err(|_| SigningError(format!("the {name} header cannot be written")))?;
            let name = HeaderName::from_static(name);
            sent.insert(name.clone(), value.clone());
            added.push((name, value));
        }
        let params = self.params(now.timestamp());
        let mut base = String::new();
        for component in &self.settings.components {
            let value = component_value(component, method, url, &sent)?;
            base.push_str(&format!("\"{component}\": {value}\n"));
        }
        base.push_str(&format!("\"@signature-params\": {params}"));
        let pem = normalized_pem(self.private_key.expose_secret());
        let key = SigningKey::from_pkcs8_pem(&pem).map_err(|_| {
            SigningError("the private key is not an ed25519 key in PEM (PKCS#8)".to_owned())
        })?;
        let signature = BASE64.encode(key.sign(base.as_bytes()).to_bytes());
        let label = &self.settings.label;
        let text = |value: String| {
            HeaderValue::from_str(&value)
                .map_err(|_| SigningError("the signature cannot be written".to_owned()))
        };
        added.push((
            HeaderName::from_static("signature-input"),
            text(format!("{label}={params}"))?,
        ));
        added.push((
            HeaderName::from_static("signature"),
            text(format!("{label}=:{signature}:"))?,
        ));
        Ok(added)
    }

    fn covers(&self, name: &str) -> bool {
        self.settings.components.iter().any(|c| c == name)
    }

    /// The signature parameters: the covered components, then `alg`,
    /// `created`, `expires` and `keyid`.
    fn params(&self, created: i64) -> String {
        let components: Vec<String> = self
            .settings
            .components
            .iter()
            .map(|c| format!("\"{c}\""))
            .collect();
        let mut params = format!("({})", components.join(" "));
        if self.settings.alg_param {
            params.push_str(";alg=\"ed25519\"");
        }
        params.push_str(&format!(";created={created}"));
        if let Some(secs) = self.settings.expires_secs {
            let expires = created.saturating_add(i64::try_from(secs).unwrap_or(i64::MAX));
            params.push_str(&format!(";expires={expires}"));
        }
        params.push_str(&format!(";keyid=\"{}\"", self.key_id));
        params
    }
}

/// The PEM as its parser wants it, however it was pasted: a password
/// field keeps no line breaks, so the base64 between the markers is
/// joined and wrapped at 64 characters again. Zeroized when dropped.
fn normalized_pem(text: &str) -> secrecy::zeroize::Zeroizing<String> {
    const BEGIN: &str = "-----BEGIN PRIVATE KEY-----";
    const END: &str = "-----END PRIVATE KEY-----";
    // The end is looked for after the beginning: the two markers can
    // overlap (`-----BEGIN PRIVATE KEY-----END PRIVATE KEY-----`).
    let Some(inner) = text
        .find(BEGIN)
        .map(|begin| &text[begin + BEGIN.len()..])
        .and_then(|rest| rest.find(END).map(|end| &rest[..end]))
    else {
        return secrecy::zeroize::Zeroizing::new(text.to_owned());
    };
    let body: secrecy::zeroize::Zeroizing<String> =
        secrecy::zeroize::Zeroizing::new(inner.chars().filter(|c| !c.is_whitespace()).collect());
    let mut pem = secrecy::zeroize::Zeroizing::new(String::with_capacity(body.len() + 64));
    pem.push_str(BEGIN);
    pem.push('\n');
    for line in body.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).unwrap_or_default());
        pem.push('\n');
    }
    pem.push_str(END);
    pem.push('\n');
    pem
}

/// The value a component takes in the signature base (RFC 9421 §2).
fn component_value(
    component: &str,
    method: &str,
    url: &Url,
    headers: &HeaderMap,
) -> Result<String, SigningError> {
    Ok(match component {
        "@method" => method.to_ascii_uppercase(),
        // As sent: a fragment never is.
        "@target-uri" => {
            let mut target = url.clone();
            target.set_fragment(None);
            target.as_str().to_owned()
        }
        "@authority" => {
            let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
            match url.port() {
                Some(port) => format!("{host}:{port}"),
                None => host,
            }
        }
        "@scheme" => url.scheme().to_owned(),
        "@path" => url.path().to_owned(),
        "@query" => format!("?{}", url.query().unwrap_or_default()),
        name => {
            let values: Vec<&str> = headers
                .get_all(name)
                .iter()
                .map(|v| v.to_str().map(str::trim))
                .collect::<Result<_, _>>()
                .map_err(|_| SigningError(format!("the {name} header is not text")))?;
            if values.is_empty() {
                return Err(SigningError(format!(
                    "the signature covers {name}, which the request does not send"
                )));
            }
            values.join(", ")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 9421's ed25519 test key (Appendix B.1.4).
    pub(crate) const RFC_KEY: &str = "-----BEGIN PRIVATE KEY-----\n\
        MC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF\n\
        -----END PRIVATE KEY-----\n";

    /// RFC 9421 Appendix B.2.6: the test request signed with ed25519
    /// gives the published `Signature-Input` and `Signature`.
    #[test]
    fn rfc_9421_s_ed25519_example_gets_its_published_signature() {
        let settings = HttpSignature {
            algorithm: crate::catalog::SignatureAlgorithm::Ed25519,
            components: [
                "date",
                "@method",
                "@path",
                "@authority",
                "content-type",
                "content-length",
            ]
            .map(str::to_owned)
            .to_vec(),
            label: "sig-b26".to_owned(),
            expires_secs: None,
            alg_param: false,
        };
        let key = SecretString::from(RFC_KEY);
        let signer = Signer {
            settings: &settings,
            key_id: "test-key-ed25519",
            private_key: &key,
        };
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("date", "Tue, 20 Apr 2021 02:07:55 GMT"),
            ("content-type", "application/json"),
            ("content-length", "18"),
        ] {
            headers.insert(name, HeaderValue::from_static(value));
        }
        let url = Url::parse("https://example.com/foo?param=Value&Pet=dog").unwrap();
        let created = DateTime::from_timestamp(1_618_884_473, 0).unwrap();
        let signed = signer
            .headers("POST", &url, &headers, br#"{"hello": "world"}"#, created)
            .unwrap();
        let get = |name: &str| {
            signed
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.to_str().unwrap().to_owned())
        };
        assert_eq!(
            get("signature-input").as_deref(),
            Some(
                "sig-b26=(\"date\" \"@method\" \"@path\" \"@authority\" \"content-type\" \
                 \"content-length\");created=1618884473;keyid=\"test-key-ed25519\""
            )
        );
        assert_eq!(
            get("signature").as_deref(),
            Some(
                "sig-b26=:wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw==:"
            )
        );
        assert_eq!(get("date"), None, "the request's own Date is signed");

        // Pasted into a password field, the key has no line breaks.
        let pasted = SecretString::from(RFC_KEY.replace('\n', " "));
        let signer = Signer {
            private_key: &pasted,
            ..signer
        };
        let again = signer
            .headers("POST", &url, &headers, br#"{"hello": "world"}"#, created)
            .unwrap();
        assert_eq!(again, signed);
    }

    /// Hostile pastes fail to parse; none panics.
    #[test]
    fn a_hostile_private_key_is_refused_without_a_panic() {
        let settings = HttpSignature {
            algorithm: crate::catalog::SignatureAlgorithm::Ed25519,
            components: vec!["@method".to_owned()],
            label: "sig".to_owned(),
            expires_secs: None,
            alg_param: true,
        };
        let url = Url::parse("https://example.com/").unwrap();
        let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        for hostile in [
            "-----BEGIN PRIVATE KEY-----END PRIVATE KEY-----tail",
            "-----END PRIVATE KEY----- -----BEGIN PRIVATE KEY-----",
            "-----BEGIN PRIVATE KEY-----\u{e9}\u{1F600}\u{e9}-----END PRIVATE KEY-----",
            "",
            "not a key",
        ] {
            let key = SecretString::from(hostile);
            let signer = Signer {
                settings: &settings,
                key_id: "k",
                private_key: &key,
            };
            let error = signer
                .headers("GET", &url, &HeaderMap::new(), b"", now)
                .unwrap_err();
            assert!(!error.to_string().contains("tail"), "{error}");
        }
    }

    /// RFC 9530 Appendix B.1's digest of `{"hello": "world"}` and a line
    /// feed.
    #[test]
    fn the_content_digest_is_rfc_9530_s_sha_256() {
        let settings = HttpSignature {
            algorithm: crate::catalog::SignatureAlgorithm::Ed25519,
            components: vec!["content-digest".to_owned()],
            label: "sig".to_owned(),
            expires_secs: Some(60),
            alg_param: true,
        };
        let key = SecretString::from(RFC_KEY);
        let signer = Signer {
            settings: &settings,
            key_id: "k",
            private_key: &key,
        };
        let url = Url::parse("https://example.com/").unwrap();
        let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let signed = signer
            .headers(
                "POST",
                &url,
                &HeaderMap::new(),
                b"{\"hello\": \"world\"}\n",
                now,
            )
            .unwrap();
        assert_eq!(signed[0].0, "content-digest");
        assert_eq!(
            signed[0].1,
            "sha-256=:RK/0qy18MlBSVnWgjwz6lZEWjP/lF5HF9bvEF8FabDg=:"
        );
        assert!(
            signed[1]
                .1
                .to_str()
                .unwrap()
                .ends_with(";alg=\"ed25519\";created=1700000000;expires=1700000060;keyid=\"k\"")
        );
    }
}
