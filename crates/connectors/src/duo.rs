//! Duo's request signatures (the Admin and Auth APIs' "v2"), for catalog
//! entries with a `[basic.duo_signature]` table: HTTP Basic with the
//! integration key as the user name and, as the password, the hex HMAC of
//! the request's canonical form keyed with the secret key; the request's
//! `Date` is part of what is signed.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac as _};
use secrecy::{ExposeSecret as _, SecretString};
use url::Url;

use crate::catalog::DuoDigest;

/// The `Date` header Duo signs and checks: RFC 2822, in UTC as Duo's
/// clients write it (`Fri, 07 Dec 2012 17:18:00 -0000`).
pub(crate) fn date(now: DateTime<Utc>) -> String {
    now.format("%a, %d %b %Y %H:%M:%S -0000").to_string()
}

/// The `Authorization` value of the request `method url` with `params`
/// (the query of a GET, the form of a POST) sent at `date`:
/// `Basic base64(<integration key>:<hex HMAC>)`.
pub(crate) fn authorization(
    integration_key: &str,
    secret_key: &SecretString,
    digest: DuoDigest,
    method: &str,
    url: &Url,
    params: &[(String, String)],
    date: &str,
) -> SecretString {
    let canonical = [
        date.to_owned(),
        method.to_ascii_uppercase(),
        // The host as a client is configured with it: with a port that
        // is not the scheme's own.
        match url.port() {
            Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
            None => url.host_str().unwrap_or_default().to_owned(),
        }
        .to_ascii_lowercase(),
        url.path().to_owned(),
        // Duo's clients normalize them as OAuth 1.0 does.
        crate::oauth1::normalize_parameters(
            params
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_str())),
        ),
    ]
    .join("\n");
    let key = secret_key.expose_secret().as_bytes();
    let signature = match digest {
        DuoDigest::Sha1 => hex(&mac_sha1(key, &canonical)),
        DuoDigest::Sha512 => hex(&mac_sha512(key, &canonical)),
    };
    use base64::Engine as _;
    SecretString::from(format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{integration_key}:{signature}"))
    ))
}

fn mac_sha1(key: &[u8], text: &str) -> Vec<u8> {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(text.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

fn mac_sha512(key: &[u8], text: &str) -> Vec<u8> {
    let mut mac =
        Hmac::<sha2::Sha512>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(text.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut out, byte| {
        let _ = write!(out, "{byte:02x}");
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The request of `duo_client_python`'s own signature tests
    /// (`tests/test_client.py`, `TestSign`): a POST with four parameters of
    /// non-ASCII text, to a host in mixed case.
    fn duo_test_request() -> (Url, Vec<(String, String)>) {
        let params = [
            (
                "\u{469a}\u{287b}\u{35d0}\u{8ef3}\u{6727}\u{502a}\u{0810}\u{d091}\u{c8}\u{c170}",
                "\u{0f45}\u{1a76}\u{341a}\u{654c}\u{c23f}\u{9b09}\u{abe2}\u{8343}\u{1b27}\u{60d0}",
            ),
            (
                "\u{7449}\u{7e4b}\u{ccfb}\u{59ff}\u{fe5f}\u{83b7}\u{adcc}\u{900c}\u{cfd1}\u{7813}",
                "\u{8db7}\u{5022}\u{92d3}\u{42ef}\u{207d}\u{8730}\u{acfe}\u{5617}\u{0946}\u{4e30}",
            ),
            (
                "\u{7470}\u{9314}\u{901c}\u{9eae}\u{40d8}\u{4201}\u{82d8}\u{8c70}\u{1d31}\u{a042}",
                "\u{17d9}\u{0ba8}\u{9358}\u{aadf}\u{a42a}\u{48be}\u{fb96}\u{6fe9}\u{b7ff}\u{32f3}",
            ),
            (
                "\u{c2c5}\u{2c1d}\u{2620}\u{3617}\u{96b3}F\u{8605}\u{20e8}\u{ac21}\u{5934}",
                "\u{fba9}\u{41aa}\u{bd83}\u{840b}\u{2615}\u{3e6e}\u{652d}\u{a8b5}\u{d56b}U",
            ),
        ]
        .map(|(name, value)| (name.to_owned(), value.to_owned()));
        let url = Url::parse("https://foO.BAr52.cOm/Foo/BaR2/qux").unwrap();
        (url, params.to_vec())
    }

    fn signed(digest: DuoDigest) -> String {
        let (url, params) = duo_test_request();
        let secret = SecretString::from("gtdfxv9YgVBYcF6dl2Eq17KUQJN2PLM2ODVTkvoT");
        let header = authorization(
            "test_ikey",
            &secret,
            digest,
            "PoSt",
            &url,
            &params,
            "Fri, 07 Dec 2012 17:18:00 -0000",
        );
        header.expose_secret().to_owned()
    }

    fn basic(signature: &str) -> String {
        use base64::Engine as _;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("test_ikey:{signature}"))
        )
    }

    #[test]
    fn duo_s_own_client_tests_give_the_same_signatures() {
        assert_eq!(
            signed(DuoDigest::Sha1),
            basic("f01811cbbf9561623ab45b893096267fd46a5178")
        );
        assert_eq!(
            signed(DuoDigest::Sha512),
            basic(
                "0508065035a03b2a1de2f453e629e791d180329e157f65df6b3e0f08299d4321e1c5c7a7c7ee6b9e5\
                 fc80d1fb6fbf3ad5eb7c44dd3b3985a02c37aca53ec3698"
            )
        );
    }

    #[test]
    fn the_date_is_written_as_duo_s_clients_write_it() {
        let at = DateTime::parse_from_rfc3339("2012-12-07T17:18:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(date(at), "Fri, 07 Dec 2012 17:18:00 -0000");
    }
}
