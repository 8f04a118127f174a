//! Settings shared by every connector's HTTP calls.

use std::{collections::BTreeMap, net::IpAddr, path::PathBuf, time::Duration};

use ipnet::IpNet;
use serde::Deserialize;

use crate::OAuthClient;

/// How connectors talk to providers. Every field has a default, so `{}`
/// deserialises to [`Config::default`].
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Longest time one HTTP request may take, from connecting to the last
    /// byte of the body. Each retry gets the full time again.
    #[serde(rename = "request_timeout_ms", with = "millis")]
    pub request_timeout: Duration,
    /// Longest time to open a connection (TCP and TLS).
    #[serde(rename = "connect_timeout_ms", with = "millis")]
    pub connect_timeout: Duration,
    /// Longest `Retry-After` a call waits out before retrying by itself.
    /// A longer one ends the call with a retryable error carrying the
    /// delay, so the worker can release the message and come back later
    /// instead of holding it.
    #[serde(rename = "max_retry_wait_ms", with = "millis")]
    pub max_retry_wait: Duration,
    /// Largest response body read from a provider, in bytes. A larger one
    /// fails the call (permanently: asking again gets the same body), so
    /// a hostile or broken server cannot make a worker buffer without end.
    pub max_body_bytes: u64,
    /// Accept `http://` site URLs. Only for the simulator and local sites:
    /// over plain HTTP, Basic credentials travel in clear text.
    pub allow_http: bool,
    /// Networks that are not on the public internet but that connectors
    /// may connect to all the same, such as `127.0.0.0/8` and `::1/128`
    /// for a local demo site or simulator, or `10.20.0.0/16` for a
    /// self-hosted provider inside the operator's network. Empty by
    /// default: every request, to a tenant's site or to a catalog URL,
    /// goes only to public addresses (checked after DNS resolution, on the
    /// address connected to), and one to a loopback, private, link-local,
    /// unique-local, multicast or reserved address fails with
    /// [`Error::Refused`](crate::Error::Refused). Each entry opens its
    /// network to every tenant: allow only what tenants may reach.
    ///
    /// From the environment, a comma-separated list:
    /// `FLEET_CONNECTORS__ALLOW_PRIVATE_NETWORKS=127.0.0.0/8,::1/128`.
    #[serde(deserialize_with = "networks::deserialize")]
    pub allow_private_networks: Vec<IpNet>,
    /// Host names the connectors resolve to a fixed address instead of
    /// asking DNS, as `/etc/hosts` does: a provider reached under a name
    /// only the operator's network knows, or one pinned to an address.
    /// The egress rule holds for these addresses as for resolved ones (a
    /// private one needs [`allow_private_networks`](Self::allow_private_networks)).
    /// Names are matched whole and without case; other names resolve as
    /// usual.
    ///
    /// From the environment, a comma-separated list of `name=address`:
    /// `FLEET_CONNECTORS__HOSTS=crm.internal.example=10.20.0.5`.
    #[serde(deserialize_with = "hosts::deserialize")]
    pub hosts: BTreeMap<String, IpAddr>,
    /// The `User-Agent` of every request, so site owners can tell the
    /// fleet's traffic apart and allow it through firewalls.
    pub user_agent: String,
    /// A directory of catalog files (`<id>.toml`) that override built-in
    /// entries field by field or add providers; see [`Catalog`](crate::Catalog).
    pub catalog_dir: Option<PathBuf>,
    /// The operator's OAuth clients, by catalog id: OAuth 2.0 client ids and
    /// secrets, and OAuth 1.0a consumer keys and secrets (Trello's API key
    /// and secret). Secrets live only here, never in catalog files.
    pub oauth_clients: BTreeMap<String, OAuthClient>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            max_retry_wait: Duration::from_secs(10),
            max_body_bytes: 16 * 1024 * 1024,
            allow_http: false,
            allow_private_networks: Vec::new(),
            hosts: BTreeMap::new(),
            user_agent: concat!(
                "connector-fleet/",
                env!("CARGO_PKG_VERSION"),
                " (+",
                env!("CARGO_PKG_REPOSITORY"),
                ")"
            )
            .to_owned(),
            catalog_dir: None,
            oauth_clients: BTreeMap::new(),
        }
    }
}

/// A [`Duration`] written as whole milliseconds.
mod millis {
    use std::time::Duration;

    use serde::{Deserialize as _, Deserializer};

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Duration, D::Error> {
        u64::deserialize(deserializer).map(Duration::from_millis)
    }
}

/// Networks written as a list or as one comma-separated string (the form
/// an environment variable takes), each in CIDR notation; a bare address
/// is its own network (`/32` or `/128`).
mod networks {
    use ipnet::IpNet;
    use serde::{Deserialize, Deserializer, de::Error as _};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Written {
        List(Vec<String>),
        Text(String),
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<IpNet>, D::Error> {
        let entries = match Written::deserialize(deserializer)? {
            Written::List(list) => list,
            Written::Text(text) => text.split(',').map(str::to_owned).collect(),
        };
        entries
            .iter()
            .map(|entry| entry.trim())
            .filter(|entry| !entry.is_empty())
            .map(|entry| {
                entry
                    .parse::<IpNet>()
                    .or_else(|_| entry.parse::<std::net::IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        D::Error::custom(format!(
                            "'{entry}' is not a network in CIDR notation, such as 127.0.0.0/8 or ::1/128"
                        ))
                    })
            })
            .collect()
    }
}

/// Host names and their addresses, written as a table or as one
/// comma-separated string of `name=address` (the form an environment
/// variable takes).
mod hosts {
    use std::{collections::BTreeMap, net::IpAddr};

    use serde::{Deserialize, Deserializer, de::Error as _};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Written {
        Table(BTreeMap<String, String>),
        Text(String),
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<BTreeMap<String, IpAddr>, D::Error> {
        let entries: Vec<(String, String)> = match Written::deserialize(deserializer)? {
            Written::Table(table) => table.into_iter().collect(),
            Written::Text(text) => text
                .split(',')
                .map(str::trim)
                .filter(|entry| !entry.is_empty())
                .map(|entry| {
                    let (name, address) = entry.split_once('=').unwrap_or((entry, ""));
                    (name.to_owned(), address.to_owned())
                })
                .collect(),
        };
        entries
            .into_iter()
            .map(|(name, address)| {
                let name = name.trim().trim_end_matches('.').to_ascii_lowercase();
                let address = address.trim().parse::<IpAddr>().map_err(|_| {
                    D::Error::custom(format!(
                        "hosts: '{name}={address}' is not a host name and an IP address, such as \
                         crm.internal.example=10.20.0.5"
                    ))
                })?;
                if name.is_empty() {
                    return Err(D::Error::custom("hosts: an entry has no host name"));
                }
                Ok((name, address))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn empty_object_gives_the_defaults() {
        let config: Config = serde_json::from_value(json!({})).unwrap();
        let default = Config::default();

        assert_eq!(config.request_timeout, default.request_timeout);
        assert_eq!(config.max_retry_wait, default.max_retry_wait);
        assert!(!config.allow_http);
        assert!(config.user_agent.starts_with("connector-fleet/"));
        assert!(config.catalog_dir.is_none() && config.oauth_clients.is_empty());
        assert!(config.allow_private_networks.is_empty());
    }

    #[test]
    fn private_networks_are_read_from_a_list_or_a_comma_separated_string() {
        let listed: Config = serde_json::from_value(json!({
            "allow_private_networks": ["127.0.0.0/8", "::1/128"],
        }))
        .unwrap();
        let written: Config = serde_json::from_value(json!({
            "allow_private_networks": "127.0.0.0/8, ::1, 10.20.0.0/16",
        }))
        .unwrap();
        let wrong = serde_json::from_value::<Config>(json!({
            "allow_private_networks": "localhost",
        }))
        .unwrap_err();

        assert_eq!(
            listed.allow_private_networks,
            [
                "127.0.0.0/8".parse::<IpNet>().unwrap(),
                "::1/128".parse().unwrap()
            ]
        );
        assert_eq!(
            written.allow_private_networks,
            [
                "127.0.0.0/8".parse::<IpNet>().unwrap(),
                "::1/128".parse().unwrap(),
                "10.20.0.0/16".parse().unwrap()
            ]
        );
        assert!(
            wrong.to_string().contains("'localhost' is not a network"),
            "{wrong}"
        );
    }

    #[test]
    fn hosts_are_read_from_a_table_or_a_comma_separated_string() {
        let table: Config = serde_json::from_value(json!({
            "hosts": {"CRM.internal.example.": "10.20.0.5"},
        }))
        .unwrap();
        let written: Config = serde_json::from_value(json!({
            "hosts": "crm.internal.example=10.20.0.5, v6.example=::1",
        }))
        .unwrap();
        let wrong = serde_json::from_value::<Config>(json!({"hosts": "crm.example"})).unwrap_err();

        let address = "10.20.0.5".parse::<IpAddr>().unwrap();
        assert_eq!(table.hosts["crm.internal.example"], address);
        assert_eq!(written.hosts["crm.internal.example"], address);
        assert_eq!(
            written.hosts["v6.example"],
            "::1".parse::<IpAddr>().unwrap()
        );
        assert!(
            wrong
                .to_string()
                .contains("is not a host name and an IP address"),
            "{wrong}"
        );
    }

    #[test]
    fn durations_are_read_as_milliseconds() {
        let config: Config = serde_json::from_value(json!({
            "request_timeout_ms": 1500,
            "connect_timeout_ms": 200,
            "max_retry_wait_ms": 0,
            "allow_http": true,
        }))
        .unwrap();

        assert_eq!(config.request_timeout, Duration::from_millis(1500));
        assert_eq!(config.connect_timeout, Duration::from_millis(200));
        assert_eq!(config.max_retry_wait, Duration::ZERO);
        assert!(config.allow_http);
    }

    #[test]
    fn oauth_clients_are_read_by_catalog_id() {
        let config: Config = serde_json::from_value(json!({
            "catalog_dir": "/etc/fleet/catalog",
            "oauth_clients": {"google-analytics": {"client_id": "id", "client_secret": "secret"}},
        }))
        .unwrap();

        let client = &config.oauth_clients["google-analytics"];
        assert_eq!(client.client_id.as_deref(), Some("id"));
        assert!(!format!("{config:?}").contains("secret\""));
        assert_eq!(
            config.catalog_dir.unwrap().to_str(),
            Some("/etc/fleet/catalog")
        );
    }
}
