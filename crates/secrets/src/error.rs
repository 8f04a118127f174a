use std::fmt;

use rustify::errors::ClientError as HttpError;
use vaultrs::error::ClientError;

use crate::Version;

/// What went wrong in the credential store.
///
/// Neither `Display` nor `Debug`, of this error or of its sources, contains a secret: paths
/// (tenant and connection ids) and Vault's own error messages, yes; request or response bodies,
/// tokens and credential values, never.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration cannot work: the address is not an `http(s)` URL, or no HTTP client can
    /// be built from it.
    #[error("invalid vault configuration: {reason}")]
    Config {
        /// What is wrong.
        reason: String,
    },
    /// Vault refused the configured credentials: a wrong AppRole role or secret id, or a token
    /// that is invalid, expired or revoked.
    #[error("failed to log in to vault with {method} auth")]
    Login {
        /// `token` or `approle`.
        method: &'static str,
        /// What Vault answered.
        #[source]
        source: VaultError,
    },
    /// Nothing is stored there, or that version was deleted or destroyed.
    #[error("no secret at {path}")]
    NotFound {
        /// The secret's data path, with `?version=n` when one version was asked for.
        path: String,
    },
    /// A check-and-set write lost: another writer changed the secret since the caller read it.
    #[error("version conflict at {path}: expected version {expected}{}", found(.actual))]
    Conflict {
        /// The secret's data path.
        path: String,
        /// The version the write was based on; 0 when it expected no secret at all.
        expected: Version,
        /// The version found instead, when the call read it.
        actual: Option<Version>,
    },
    /// The token's policies do not allow the request, or the token expired without renewal.
    #[error("vault denied access to {path}")]
    PermissionDenied {
        /// The API path that was denied.
        path: String,
        /// What Vault answered.
        #[source]
        source: VaultError,
    },
    /// Vault did not answer, timed out, answered 412, 429 or 5xx, or is sealed: trying again
    /// later can succeed. The call already retried as [`Retry`](crate::Retry) says.
    #[error("vault is unavailable for {path}")]
    Unavailable {
        /// The API path that was requested.
        path: String,
        /// What failed.
        #[source]
        source: VaultError,
    },
    /// Vault refused the request for another reason, such as a mount that does not exist or is
    /// not KV version 2.
    #[error("vault rejected the request for {path}")]
    Rejected {
        /// The API path that was requested.
        path: String,
        /// What Vault answered.
        #[source]
        source: VaultError,
    },
    /// The stored JSON does not fit the requested credential type, or the credentials did not
    /// serialize. serde's message is left out on purpose: it can quote the value.
    #[error("failed to convert the credentials at {path} to or from json")]
    Serialization {
        /// The secret's data path.
        path: String,
    },
    /// vaultrs 0.8 sends the check-and-set version as a `u32`, so a secret with more than
    /// `u32::MAX` versions cannot be written with check-and-set.
    #[error("version {version} at {path} is too large for a check-and-set write")]
    VersionOutOfRange {
        /// The secret's data path.
        path: String,
        /// The version the write was based on.
        version: Version,
    },
}

impl Error {
    /// Whether trying the same call again later can succeed: Vault was unreachable, overloaded
    /// or sealed. Every other error needs a change first (credentials, policies, data).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }

    /// The HTTP status Vault answered the failed call with; `None` when no
    /// answer arrived, or the error did not come from Vault.
    pub fn vault_status(&self) -> Option<u16> {
        match self {
            Self::Unavailable { source, .. }
            | Self::PermissionDenied { source, .. }
            | Self::Rejected { source, .. }
            | Self::Login { source, .. } => source.status(),
            _ => None,
        }
    }

    /// Classifies a failed request to `path` by what Vault answered.
    pub(crate) fn vault(path: String, source: VaultError) -> Self {
        if source.is_transient() {
            Self::Unavailable { path, source }
        } else if source.status == Some(403) {
            Self::PermissionDenied { path, source }
        } else {
            Self::Rejected { path, source }
        }
    }

    /// Classifies a failed login or token lookup at `path`.
    pub(crate) fn login(method: &'static str, path: String, source: VaultError) -> Self {
        if source.is_transient() {
            Self::Unavailable { path, source }
        } else {
            Self::Login { method, source }
        }
    }
}

fn found(actual: &Option<Version>) -> String {
    actual.map_or_else(String::new, |actual| format!(", found version {actual}"))
}

/// What Vault, or the way to it, reported: the HTTP status, Vault's own error messages, or the
/// transport error.
///
/// vaultrs errors keep response bodies, which hold secrets and tokens, in their `Debug` output,
/// and serde errors quote the values they failed on. This type keeps neither, so it can be
/// logged with `?` and `%` alike.
#[derive(Debug)]
pub struct VaultError {
    /// The HTTP status, when Vault answered.
    status: Option<u16>,
    /// No answer arrived: connecting, sending or receiving failed, or timed out.
    unanswered: bool,
    /// Vault's `errors`, or the error chain of the HTTP client; empty when there is neither.
    detail: String,
}

impl VaultError {
    /// The HTTP status of Vault's answer; `None` when no answer arrived.
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    pub(crate) fn new(error: ClientError) -> Self {
        match error {
            ClientError::APIError { code, errors } => Self::answered(code, errors.join("; ")),
            ClientError::RestClientError { source } => Self::from_http(&source),
            other => Self::other(&other),
        }
    }

    fn from_http(error: &HttpError) -> Self {
        match error {
            HttpError::ServerResponseError { code, .. } => Self::answered(*code, String::new()),
            HttpError::RequestError { .. } | HttpError::ResponseError { .. } => Self {
                status: None,
                unanswered: true,
                detail: chain(error),
            },
            other => Self::other(other),
        }
    }

    fn answered(code: u16, detail: String) -> Self {
        Self {
            status: Some(code),
            unanswered: false,
            detail,
        }
    }

    /// Keeps only the error's own message: the causes of parse and conversion errors are serde
    /// and UTF-8 errors about the response body, which may quote it.
    fn other(error: &dyn std::error::Error) -> Self {
        Self {
            status: None,
            unanswered: false,
            detail: error.to_string(),
        }
    }

    pub(crate) fn is_transient(&self) -> bool {
        self.unanswered || matches!(self.status, Some(412 | 429 | 500..=599))
    }

    /// A 404 without a message: KV v2's answer for a missing secret or a deleted or destroyed
    /// version. A missing mount is a 404 too, but with "no handler for route".
    pub(crate) fn is_absent(&self) -> bool {
        self.status == Some(404) && self.detail.is_empty()
    }

    pub(crate) fn is_cas_mismatch(&self) -> bool {
        self.status == Some(400)
            && self
                .detail
                .contains("check-and-set parameter did not match")
    }
}

impl fmt::Display for VaultError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.status {
            Some(code) if self.detail.is_empty() => write!(f, "vault answered {code}"),
            Some(code) => write!(f, "vault answered {code}: {}", self.detail),
            None => f.write_str(&self.detail),
        }
    }
}

impl std::error::Error for VaultError {}

/// The messages of a transport error and its causes: the URL (which carries no token) and the
/// network failure.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(error) = cause {
        text.push_str(": ");
        text.push_str(&error.to_string());
        cause = error.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_bodies_stay_out_of_vault_errors() {
        let body = r#"{"data":{"data":{"credentials":{"token":"s3cr3t-value"}}}}"#;
        let parse = serde_json::from_str::<u8>(body).unwrap_err();
        let error = VaultError::new(ClientError::RestClientError {
            source: HttpError::ResponseParseError {
                source: parse.into(),
                content: Some(body.to_owned()),
            },
        });

        for text in [error.to_string(), format!("{error:?}")] {
            assert!(!text.contains("s3cr3t"), "{text}");
        }
        assert!(!error.is_transient());
    }

    #[test]
    fn unanswered_requests_and_server_errors_are_transient() {
        let sealed = VaultError::new(ClientError::APIError {
            code: 503,
            errors: vec!["Vault is sealed".to_owned()],
        });
        assert!(sealed.is_transient());
        assert_eq!(sealed.to_string(), "vault answered 503: Vault is sealed");

        let denied = VaultError::new(ClientError::APIError {
            code: 403,
            errors: vec!["permission denied".to_owned()],
        });
        assert!(matches!(
            Error::vault("kv/data/x".to_owned(), denied),
            Error::PermissionDenied { .. }
        ));
    }

    #[test]
    fn a_destroyed_version_reads_as_absent_but_a_missing_mount_does_not() {
        let destroyed = VaultError::new(ClientError::RestClientError {
            source: HttpError::ServerResponseError {
                code: 404,
                content: Some(r#"{"data":{"data":null}}"#.to_owned()),
            },
        });
        let no_mount = VaultError::new(ClientError::APIError {
            code: 404,
            errors: vec!["no handler for route \"nope/data/x\"".to_owned()],
        });

        assert!(destroyed.is_absent());
        assert!(!no_mount.is_absent());
    }
}
