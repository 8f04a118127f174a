//! Connection settings for the NATS server.

use secrecy::SecretString;
use serde::Deserialize;

/// How to reach NATS. Each fleet service connects as its own user (see
/// `nats/nats-server.conf`), whose permissions cover only its subjects.
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    /// Server URL; several may be given separated by commas, for a cluster.
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
    pub definitions_dir: Option<std::path::PathBuf>,
}

fn default_inbox_prefix() -> String {
    "_INBOX".to_owned()
}

fn default_name() -> String {
    "connector-fleet".to_owned()
}

impl Config {
    /// A configuration for an unauthenticated server at `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            user: None,
            password: None,
            inbox_prefix: default_inbox_prefix(),
            name: default_name(),
            definitions_dir: None,
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
