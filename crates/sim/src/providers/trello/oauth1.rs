//! The server side of RFC 5849: reading the protocol parameters of a
//! request and checking its HMAC-SHA1 signature, written here (not taken
//! from `fleet-connectors`) so that the simulator checks the connectors'
//! signing against an independent implementation.

use axum::http::{HeaderMap, header::AUTHORIZATION};
use base64::{Engine as _, engine::general_purpose::STANDARD as BASE64};
use hmac::{Hmac, Mac as _};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use sha1::Sha1;

/// RFC 3986's unreserved characters, which RFC 5849 §3.6 leaves as they are.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The protocol parameters of a request, and what its signature covers.
#[derive(Debug)]
pub(crate) struct Signed {
    pub(crate) consumer_key: String,
    /// `oauth_token`, when present and not empty.
    pub(crate) token: Option<String>,
    pub(crate) signature_method: String,
    pub(crate) timestamp: i64,
    pub(crate) nonce: String,
    pub(crate) callback: Option<String>,
    pub(crate) verifier: Option<String>,
    signature: String,
    /// The signature base string (RFC 5849 §3.4.1.1).
    base_string: String,
}

/// Why a request's protocol parameters are unusable: the text of the 400
/// that refuses it (RFC 5849 §3.2).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Malformed(pub(crate) &'static str);

/// The request being read: what the base string needs.
pub(crate) struct Request<'a> {
    pub(crate) method: &'a str,
    /// The base string URI (RFC 5849 §3.4.1.2), see [`base_string_uri`].
    pub(crate) uri: String,
    /// The raw query, without `?`.
    pub(crate) query: Option<&'a str>,
    pub(crate) headers: &'a HeaderMap,
    /// A form-encoded body's parameters (empty for other bodies).
    pub(crate) form: &'a [(String, String)],
}

impl Signed {
    /// Reads the protocol parameters from the `Authorization: OAuth`
    /// header, the query and the form body (RFC 5849 §3.5), and builds the
    /// base string from every parameter but `realm` and `oauth_signature`.
    /// `None` when the request carries no OAuth parameters at all.
    pub(crate) fn read(request: &Request<'_>) -> Result<Option<Self>, Malformed> {
        let mut parameters: Vec<(String, String)> =
            request.query.map(form_pairs).unwrap_or_default();
        parameters.extend(request.form.iter().cloned());
        if let Some(header) = request
            .headers
            .get(AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("OAuth "))
        {
            parameters.extend(header_pairs(header)?);
        }
        let protocol = |name: &str| -> Result<Option<String>, Malformed> {
            let mut values = parameters.iter().filter(|(key, _)| key == name);
            let first = values.next().map(|(_, value)| value.clone());
            if values.next().is_some() {
                return Err(Malformed("duplicated oauth parameter"));
            }
            Ok(first)
        };
        let Some(consumer_key) = protocol("oauth_consumer_key")? else {
            return Ok(None);
        };
        let (Some(signature), Some(signature_method), Some(timestamp), Some(nonce)) = (
            protocol("oauth_signature")?,
            protocol("oauth_signature_method")?,
            protocol("oauth_timestamp")?,
            protocol("oauth_nonce")?,
        ) else {
            return Err(Malformed("missing oauth parameter"));
        };
        let Ok(timestamp) = timestamp.parse::<i64>() else {
            return Err(Malformed("invalid oauth_timestamp"));
        };
        if protocol("oauth_version")?.is_some_and(|version| version != "1.0") {
            return Err(Malformed("unsupported oauth_version"));
        }
        let signed: Vec<(&str, &str)> = parameters
            .iter()
            .filter(|(name, _)| name != "oauth_signature")
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        Ok(Some(Self {
            base_string: base_string(request.method, &request.uri, &signed),
            token: protocol("oauth_token")?.filter(|token| !token.is_empty()),
            callback: protocol("oauth_callback")?,
            verifier: protocol("oauth_verifier")?,
            consumer_key,
            signature_method,
            timestamp,
            nonce,
            signature,
        }))
    }

    /// Whether the signature is the HMAC-SHA1 of the base string with
    /// these secrets, compared in constant time.
    pub(crate) fn verify(&self, consumer_secret: &str, token_secret: &str) -> bool {
        let Ok(signature) = BASE64.decode(self.signature.as_bytes()) else {
            return false;
        };
        mac(consumer_secret, token_secret, &self.base_string)
            .verify_slice(&signature)
            .is_ok()
    }
}

/// RFC 5849 §3.4.1.2 for a request to `path` with `Host: host` over plain
/// HTTP: the host in lower case, port 80 dropped.
pub(crate) fn base_string_uri(host: &str, path: &str) -> String {
    let host = host.to_ascii_lowercase();
    let host = host.strip_suffix(":80").unwrap_or(&host);
    format!("http://{host}{path}")
}

/// RFC 5849 §3.4.1.1: method, base string URI and normalised parameters
/// (§3.4.1.3.2: encoded, sorted by name then value), each encoded.
fn base_string(method: &str, uri: &str, parameters: &[(&str, &str)]) -> String {
    let mut encoded: Vec<(String, String)> = parameters
        .iter()
        .filter(|(name, _)| *name != "realm")
        .map(|(name, value)| (encode(name), encode(value)))
        .collect();
    encoded.sort();
    let normalized: Vec<String> = encoded
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    format!(
        "{}&{}&{}",
        encode(&method.to_ascii_uppercase()),
        encode(uri),
        encode(&normalized.join("&"))
    )
}

fn mac(consumer_secret: &str, token_secret: &str, base_string: &str) -> Hmac<Sha1> {
    let key = format!("{}&{}", encode(consumer_secret), encode(token_secret));
    let mut mac =
        Hmac::<Sha1>::new_from_slice(key.as_bytes()).expect("HMAC takes keys of any size");
    mac.update(base_string.as_bytes());
    mac
}

fn encode(value: &str) -> String {
    utf8_percent_encode(value, UNRESERVED).to_string()
}

/// The parameters of an `OAuth` header's value (RFC 5849 §3.5.1):
/// comma-separated `name="value"` pairs, values percent-encoded; `realm`
/// is dropped.
fn header_pairs(header: &str) -> Result<Vec<(String, String)>, Malformed> {
    let mut pairs = Vec::new();
    for field in header
        .split(',')
        .map(str::trim)
        .filter(|field| !field.is_empty())
    {
        let Some((name, value)) = field.split_once('=') else {
            return Err(Malformed("malformed Authorization header"));
        };
        let Some(value) = value
            .trim()
            .strip_prefix('"')
            .and_then(|value| value.strip_suffix('"'))
        else {
            return Err(Malformed("malformed Authorization header"));
        };
        let name = name.trim();
        if name == "realm" {
            continue;
        }
        pairs.push((decode(name), decode(value)));
    }
    Ok(pairs)
}

/// An `application/x-www-form-urlencoded` string's pairs, decoded.
pub(crate) fn form_pairs(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (
                decode(&name.replace('+', " ")),
                decode(&value.replace('+', " ")),
            )
        })
        .collect()
}

fn decode(value: &str) -> String {
    percent_decode_str(value).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    /// RFC 5849 §1.2's client secret.
    const CONSUMER_SECRET: &str = "kd94hf93k423kf44";

    fn headers(authorization: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_str(authorization).unwrap());
        headers
    }

    fn read(method: &str, uri: &str, query: Option<&str>, authorization: &str) -> Signed {
        let headers = headers(authorization);
        Signed::read(&Request {
            method,
            uri: uri.to_owned(),
            query,
            headers: &headers,
            form: &[],
        })
        .unwrap()
        .unwrap()
    }

    #[test]
    fn base_string_matches_rfc_5849_section_3_4_1_1() {
        let headers = headers(
            "OAuth realm=\"Example\", oauth_consumer_key=\"9djdj82h48djs9d2\", \
             oauth_token=\"kkk9d7dh3k39sjv7\", oauth_signature_method=\"HMAC-SHA1\", \
             oauth_timestamp=\"137131201\", oauth_nonce=\"7d8f3e4a\", \
             oauth_signature=\"bYT5CMsGcbgUdFHObYMEfcx6bsw%3D\"",
        );
        let form = form_pairs("c2&a3=2+q");

        let signed = Signed::read(&Request {
            method: "POST",
            uri: base_string_uri("example.com", "/request"),
            query: Some("b5=%3D%253D&a3=a&c%40=&a2=r%20b"),
            headers: &headers,
            form: &form,
        })
        .unwrap()
        .unwrap();

        assert_eq!(
            signed.base_string,
            "POST&http%3A%2F%2Fexample.com%2Frequest&a2%3Dr%2520b%26a3%3D2%2520q\
             %26a3%3Da%26b5%3D%253D%25253D%26c%2540%3D%26c2%3D%26oauth_consumer_\
             key%3D9djdj82h48djs9d2%26oauth_nonce%3D7d8f3e4a%26oauth_signature_m\
             ethod%3DHMAC-SHA1%26oauth_timestamp%3D137131201%26oauth_token%3Dkkk\
             9d7dh3k39sjv7"
        );
        // The RFC's printed signature does not verify against its own
        // base string; HMAC-SHA1 of that base string is this one.
        assert!(!signed.verify("j49sk3j29djd", "dh893hdasih9"));
        let mut corrected = signed;
        corrected.signature = "r6/TJjbCOr97/+UU0NsvSne7s5g=".to_owned();
        assert!(corrected.verify("j49sk3j29djd", "dh893hdasih9"));
    }

    #[test]
    fn temporary_credential_request_of_rfc_5849_section_1_2_verifies() {
        let signed = read(
            "POST",
            "https://photos.example.net/initiate",
            None,
            "OAuth realm=\"Photos\", oauth_consumer_key=\"dpf43f3p2l4k3l03\", \
             oauth_signature_method=\"HMAC-SHA1\", oauth_timestamp=\"137131200\", \
             oauth_nonce=\"wIjqoS\", \
             oauth_callback=\"http%3A%2F%2Fprinter.example.com%2Fready\", \
             oauth_signature=\"74KNZJeDHnMBp0EMJ9ZHt%2FXKycU%3D\"",
        );

        assert_eq!(
            signed.callback.as_deref(),
            Some("http://printer.example.com/ready")
        );
        assert!(signed.verify(CONSUMER_SECRET, ""));
        assert!(!signed.verify("another-secret", ""));
    }

    #[test]
    fn token_request_of_rfc_5849_section_1_2_verifies() {
        let signed = read(
            "POST",
            "https://photos.example.net/token",
            None,
            "OAuth realm=\"Photos\", oauth_consumer_key=\"dpf43f3p2l4k3l03\", \
             oauth_token=\"hh5s93j4hdidpola\", oauth_signature_method=\"HMAC-SHA1\", \
             oauth_timestamp=\"137131201\", oauth_nonce=\"walatlh\", \
             oauth_verifier=\"hfdp7dh39dks9884\", \
             oauth_signature=\"gKgrFCywp7rO0OXSjdot%2FIHF7IU%3D\"",
        );

        assert_eq!(signed.verifier.as_deref(), Some("hfdp7dh39dks9884"));
        assert!(signed.verify(CONSUMER_SECRET, "hdhd0244k9j7ao03"));
        assert!(!signed.verify(CONSUMER_SECRET, "wrong-token-secret"));
    }

    #[test]
    fn protected_resource_request_of_rfc_5849_section_1_2_verifies() {
        let signed = read(
            "GET",
            &base_string_uri("PHOTOS.example.net:80", "/photos"),
            Some("file=vacation.jpg&size=original"),
            "OAuth realm=\"Photos\", oauth_consumer_key=\"dpf43f3p2l4k3l03\", \
             oauth_token=\"nnch734d00sl2jdk\", oauth_signature_method=\"HMAC-SHA1\", \
             oauth_timestamp=\"137131202\", oauth_nonce=\"chapoH\", \
             oauth_signature=\"MdpQcU8iPSUjWoN%2FUDMsK2sui9I%3D\"",
        );

        assert_eq!(
            (
                signed.token.as_deref(),
                signed.timestamp,
                signed.nonce.as_str()
            ),
            (Some("nnch734d00sl2jdk"), 137_131_202, "chapoH")
        );
        assert!(signed.verify(CONSUMER_SECRET, "pfkkdhi9sl3r4s00"));
    }

    #[test]
    fn oauth_core_1_0_appendix_a_verifies_with_oauth_version() {
        let signed = read(
            "GET",
            "http://photos.example.net/photos",
            Some("file=vacation.jpg&size=original"),
            "OAuth oauth_consumer_key=\"dpf43f3p2l4k3l03\", oauth_token=\"nnch734d00sl2jdk\", \
             oauth_signature_method=\"HMAC-SHA1\", oauth_timestamp=\"1191242096\", \
             oauth_nonce=\"kllo9940pd9333jh\", oauth_version=\"1.0\", \
             oauth_signature=\"tR3%2BTy81lMeYAr%2FFid0kMTYa%2FWM%3D\"",
        );

        assert!(signed.verify(CONSUMER_SECRET, "pfkkdhi9sl3r4s00"));
    }

    #[test]
    fn a_changed_query_breaks_the_signature() {
        let signed = read(
            "GET",
            "http://photos.example.net/photos",
            Some("file=vacation.jpg&size=small"),
            "OAuth oauth_consumer_key=\"dpf43f3p2l4k3l03\", oauth_token=\"nnch734d00sl2jdk\", \
             oauth_signature_method=\"HMAC-SHA1\", oauth_timestamp=\"137131202\", \
             oauth_nonce=\"chapoH\", oauth_signature=\"MdpQcU8iPSUjWoN%2FUDMsK2sui9I%3D\"",
        );

        assert!(!signed.verify(CONSUMER_SECRET, "pfkkdhi9sl3r4s00"));
    }

    #[test]
    fn duplicated_or_missing_parameters_are_malformed() {
        let duplicated = headers(
            "OAuth oauth_consumer_key=\"k\", oauth_consumer_key=\"k\", oauth_nonce=\"n\", \
             oauth_signature_method=\"HMAC-SHA1\", oauth_timestamp=\"1\", oauth_signature=\"s\"",
        );
        let missing = headers("OAuth oauth_consumer_key=\"k\"");
        let request = |headers| Request {
            method: "GET",
            uri: "http://x.test/".to_owned(),
            query: None,
            headers,
            form: &[],
        };

        assert_eq!(
            Signed::read(&request(&duplicated)).unwrap_err(),
            Malformed("duplicated oauth parameter")
        );
        assert_eq!(
            Signed::read(&request(&missing)).unwrap_err(),
            Malformed("missing oauth parameter")
        );
        assert!(Signed::read(&request(&HeaderMap::new())).unwrap().is_none());
    }
}
