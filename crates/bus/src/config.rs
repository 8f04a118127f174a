//! Connection settings for the NATS server.

use std::path::{Path, PathBuf};

use async_nats::ConnectOptions;
use async_nats::rustls::pki_types::pem::PemObject as _;
use async_nats::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use async_nats::rustls::{ClientConfig, RootCertStore};
use secrecy::SecretString;
use serde::Deserialize;

/// How to reach NATS. Each fleet service connects as its own user (see
/// `nats/nats-server.conf`), whose permissions cover only its subjects.
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    /// Server URL; several may be given separated by commas, for a cluster
    /// (`nats://a:4222,nats://b:4222`): the client tries them in turn and
    /// learns the rest of the cluster from the server it reaches.
    pub url: String,
    /// User name; `None` connects without authentication (tests, local runs).
    #[serde(default)]
    pub user: Option<String>,
    /// Password of `user`.
    #[serde(default)]
    pub password: Option<SecretString>,
    /// Prefix of reply inboxes. It must match the user's subscribe
    /// permission (`_INBOX_worker` for the worker user), so one service
    /// cannot read another's replies.
    #[serde(default = "default_inbox_prefix")]
    pub inbox_prefix: String,
    /// Client name shown in the server's connection monitoring.
    #[serde(default = "default_name")]
    pub name: String,
    /// A directory laid out like `nats/` (`streams/`, `consumers/<STREAM>/`)
    /// whose definitions replace the built-in ones at start-up; `None` uses
    /// the definitions compiled into the binary.
    #[serde(default)]
    pub definitions_dir: Option<PathBuf>,
    /// PEM file of the certificate authorities that sign the server's
    /// certificate, such as a private CA. When set, these are the only roots
    /// trusted; when unset, a TLS connection trusts the operating system's
    /// roots. Implies [`require_tls`](Self::require_tls).
    #[serde(default)]
    pub tls_ca_file: Option<PathBuf>,
    /// PEM file of the client certificate (followed by its intermediates, if
    /// any) shown to a server that verifies clients (`verify: true` in its
    /// `tls` block). Needs [`tls_key_file`](Self::tls_key_file); implies
    /// [`require_tls`](Self::require_tls).
    #[serde(default)]
    pub tls_cert_file: Option<PathBuf>,
    /// PEM file of the private key of [`tls_cert_file`](Self::tls_cert_file)
    /// (PKCS#8, PKCS#1 or SEC1).
    #[serde(default)]
    pub tls_key_file: Option<PathBuf>,
    /// Refuse to connect without TLS, also to a `nats://` URL whose server
    /// does not ask for it, and to servers discovered from a cluster. A
    /// `tls://` URL requires TLS for that server whatever this says.
    #[serde(default)]
    pub require_tls: bool,
    /// Start the TLS handshake before the server's greeting, for a server
    /// with `handshake_first: true` in its `tls` block (and for TLS proxies
    /// in front of NATS). Implies [`require_tls`](Self::require_tls).
    #[serde(default)]
    pub tls_first: bool,
}

fn default_inbox_prefix() -> String {
    "_INBOX".to_owned()
}

fn default_name() -> String {
    "connector-fleet".to_owned()
}

impl Config {
    /// The server URLs of [`url`](Self::url), split at commas and trimmed.
    pub fn servers(&self) -> Vec<&str> {
        self.url
            .split(',')
            .map(str::trim)
            .filter(|url| !url.is_empty())
            .collect()
    }

    /// A configuration for an unauthenticated server at `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            user: None,
            password: None,
            inbox_prefix: default_inbox_prefix(),
            name: default_name(),
            definitions_dir: None,
            tls_ca_file: None,
            tls_cert_file: None,
            tls_key_file: None,
            require_tls: false,
            tls_first: false,
        }
    }
}

impl Config {
    /// The definitions to provision: from [`Config::definitions_dir`] when
    /// set, else the built-in ones.
    ///
    /// # Errors
    ///
    /// As [`Definitions::from_dir`](crate::Definitions::from_dir).
    pub fn definitions(&self) -> Result<crate::Definitions, crate::Error> {
        match &self.definitions_dir {
            Some(dir) => crate::Definitions::from_dir(dir),
            None => Ok(crate::Definitions::builtin()),
        }
    }
}

/// TLS: which settings apply, and checking their files.
impl Config {
    /// Whether the connection must use TLS: [`require_tls`](Self::require_tls),
    /// or a setting that makes sense only with TLS.
    pub fn tls_required(&self) -> bool {
        self.require_tls
            || self.tls_first
            || self.tls_ca_file.is_some()
            || self.tls_cert_file.is_some()
            || self.tls_key_file.is_some()
    }

    /// Adds the TLS settings to `options`, after checking that each file
    /// holds what its setting says, so a wrong path or file fails here with
    /// the setting's name rather than as a handshake error. async-nats reads
    /// the files again on every (re)connect.
    pub(crate) async fn apply_tls(
        &self,
        mut options: ConnectOptions,
    ) -> Result<ConnectOptions, TlsSettingError> {
        if let Some(path) = &self.tls_ca_file {
            let roots = certificates(TLS_CA_FILE, path).await?;
            let mut store = RootCertStore::empty();
            for root in roots {
                store.add(root).map_err(|e| TlsSettingError::Content {
                    setting: TLS_CA_FILE,
                    path: path.clone(),
                    problem: format!("not a usable CA certificate: {e}"),
                })?;
            }
            options = options.add_root_certificates(path.clone());
        }
        match (&self.tls_cert_file, &self.tls_key_file) {
            (Some(cert), Some(key)) => {
                let chain = certificates(TLS_CERT_FILE, cert).await?;
                let private_key = private_key(key).await?;
                ClientConfig::builder()
                    .with_root_certificates(RootCertStore::empty())
                    .with_client_auth_cert(chain, private_key)
                    .map_err(|e| TlsSettingError::Content {
                        setting: TLS_KEY_FILE,
                        path: key.clone(),
                        problem: format!("does not go with `{TLS_CERT_FILE}`: {e}"),
                    })?;
                options = options.add_client_certificate(cert.clone(), key.clone());
            }
            (Some(_), None) => return Err(TlsSettingError::Unpaired(TLS_CERT_FILE, TLS_KEY_FILE)),
            (None, Some(_)) => return Err(TlsSettingError::Unpaired(TLS_KEY_FILE, TLS_CERT_FILE)),
            (None, None) => {}
        }
        if self.tls_first {
            options = options.tls_first();
        } else if self.tls_required() {
            options = options.require_tls(true);
        }
        Ok(options)
    }
}

const TLS_CA_FILE: &str = "tls_ca_file";
const TLS_CERT_FILE: &str = "tls_cert_file";
const TLS_KEY_FILE: &str = "tls_key_file";

/// A TLS setting that cannot be used, naming the setting.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TlsSettingError {
    /// The file cannot be read.
    #[error("`{setting}` {}: cannot read the file", path.display())]
    Read {
        setting: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file does not hold what the setting needs.
    #[error("`{setting}` {}: {problem}", path.display())]
    Content {
        setting: &'static str,
        path: PathBuf,
        problem: String,
    },
    /// One of the client certificate and its key is set without the other.
    #[error("`{0}` is set without `{1}`: a client certificate needs both")]
    Unpaired(&'static str, &'static str),
}

async fn read(setting: &'static str, path: &Path) -> Result<Vec<u8>, TlsSettingError> {
    tokio::fs::read(path)
        .await
        .map_err(|source| TlsSettingError::Read {
            setting,
            path: path.to_owned(),
            source,
        })
}

/// The PEM certificates in the file of `setting`: at least one.
async fn certificates(
    setting: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsSettingError> {
    let content = |problem: String| TlsSettingError::Content {
        setting,
        path: path.to_owned(),
        problem,
    };
    let pem = read(setting, path).await?;
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| content(format!("invalid PEM: {e}")))?;
    if certificates.is_empty() {
        return Err(content("holds no PEM certificate".to_owned()));
    }
    Ok(certificates)
}

/// The PEM private key in the file of `tls_key_file`.
async fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsSettingError> {
    let pem = read(TLS_KEY_FILE, path).await?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| TlsSettingError::Content {
        setting: TLS_KEY_FILE,
        path: path.to_owned(),
        problem: format!("holds no usable PEM private key ({e})"),
    })
}
