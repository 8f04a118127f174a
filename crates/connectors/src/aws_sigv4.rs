//! AWS Signature Version 4 for the requests of catalog entries with a
//! `[basic.aws_sigv4]` table, through AWS's own signer (`aws-sigv4`).

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use secrecy::{ExposeSecret as _, SecretString};
use url::Url;

/// What a request is signed for: the key and the credential scope.
pub(crate) struct Scope<'a> {
    pub(crate) access_key_id: &'a str,
    pub(crate) secret_access_key: &'a SecretString,
    pub(crate) region: &'a str,
    pub(crate) service: &'a str,
}

/// Why a request cannot be signed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct SigningError(String);

/// The headers that sign the request `method url` with `headers` and
/// `body` at `time` (`authorization`, marked sensitive, and
/// `x-amz-date`). Every header in `headers` is signed, with `host`.
pub(crate) fn signature(
    scope: &Scope<'_>,
    method: &str,
    url: &Url,
    headers: &HeaderMap,
    body: &[u8],
    time: SystemTime,
) -> Result<Vec<(HeaderName, HeaderValue)>, SigningError> {
    let identity = Credentials::new(
        scope.access_key_id,
        scope.secret_access_key.expose_secret(),
        None,
        None,
        "catalog",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(scope.region)
        .name(scope.service)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| SigningError(e.to_string()))?
        .into();
    let mut signed = Vec::with_capacity(headers.len());
    for (name, value) in headers {
        let value = value.to_str().map_err(|_| {
            SigningError(format!(
                "the header {name} is not text and cannot be signed"
            ))
        })?;
        signed.push((name.as_str(), value));
    }
    let request = SignableRequest::new(
        method,
        url.as_str(),
        signed.into_iter(),
        SignableBody::Bytes(body),
    )
    .map_err(|e| SigningError(e.to_string()))?;
    let (instructions, _) = sign(request, &params)
        .map_err(|e| SigningError(e.to_string()))?
        .into_parts();
    instructions
        .headers()
        .map(|(name, value)| {
            let name =
                HeaderName::from_bytes(name.as_bytes()).map_err(|e| SigningError(e.to_string()))?;
            let mut value = HeaderValue::from_str(value)
                .map_err(|_| SigningError("the access key id is not text".to_owned()))?;
            value.set_sensitive(true);
            Ok((name, value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    /// AWS's published test suite, `get-vanilla`: the key, scope and time
    /// of the suite sign `GET /` on `example.amazonaws.com` to its
    /// signature.
    #[test]
    fn the_aws_test_suite_s_get_vanilla_request_gets_its_published_signature() {
        let secret = SecretString::from("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
        let scope = Scope {
            access_key_id: "AKIDEXAMPLE",
            secret_access_key: &secret,
            region: "us-east-1",
            service: "service",
        };
        // 2015-08-30T12:36:00Z
        let time = UNIX_EPOCH + Duration::from_secs(1_440_938_160);
        let url = Url::parse("https://example.amazonaws.com/").unwrap();
        let headers = signature(&scope, "GET", &url, &HeaderMap::new(), b"", time).unwrap();
        let get = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.to_str().unwrap().to_owned())
        };
        assert_eq!(get("x-amz-date").as_deref(), Some("20150830T123600Z"));
        assert_eq!(
            get("authorization").as_deref(),
            Some(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
                 SignedHeaders=host;x-amz-date, \
                 Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
            )
        );
        assert!(headers.iter().all(|(_, value)| value.is_sensitive()));
    }
}
