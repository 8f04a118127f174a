//! How to reach PostgreSQL.

use secrecy::SecretString;
use serde::Deserialize;

/// Connection pool settings for the fleet's PostgreSQL database.
///
/// `Debug` shows the URL redacted, because it usually carries a password.
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    /// `postgres://user:password@host:port/database?sslmode=...`.
    ///
    /// Secret: it is never logged, and errors never quote it.
    pub url: SecretString,
    /// Most connections the pool opens; each fleet process holds its own pool,
    /// so the server needs `max_connections` times the number of replicas.
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
    /// How long a query waits for a free pooled connection (or for a new one to
    /// open) before it fails with a transient error, in seconds.
    #[serde(default = "default_acquire_timeout_seconds")]
    pub acquire_timeout_seconds: u64,
}

const fn default_max_connections() -> u32 {
    10
}

const fn default_acquire_timeout_seconds() -> u64 {
    5
}

impl Config {
    /// A configuration for the database at `url`, with default pool settings.
    pub fn new(url: SecretString) -> Self {
        Self {
            url,
            max_connections: default_max_connections(),
            acquire_timeout_seconds: default_acquire_timeout_seconds(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_the_password_in_the_url() {
        let config = Config::new("postgres://fleet:hunter2@db.internal:5432/fleet".into());

        let debug = format!("{config:?}");

        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(!debug.contains("db.internal"), "{debug}");
    }

    #[test]
    fn pool_settings_default_when_absent() {
        let config: Config =
            serde_json::from_str(r#"{"url": "postgres://localhost/fleet"}"#).unwrap();

        assert_eq!(config.max_connections, 10);
        assert_eq!(config.acquire_timeout_seconds, 5);
    }
}
