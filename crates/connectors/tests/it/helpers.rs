//! A simulator per test, a registry that accepts its `http://` sites, and a
//! loop that syncs a whole stream.

use std::{sync::Arc, time::Duration};

use fleet_connectors::{Config, Connector, Credentials, Record, Registry};
use fleet_events::ConnectorId;
use fleet_sim::{Config as SimConfig, Sim, SimHandle, SiteConfig, UserConfig};

/// The application password of `bob` (an administrator) and `sue` (a subscriber).
pub(crate) const PASSWORD: &str = "abcd efgh ijkl mnop qrst uvwx";

/// Settings for tests: `http://` allowed, short waits.
pub(crate) fn config() -> Config {
    Config {
        allow_http: true,
        request_timeout: Duration::from_secs(5),
        max_retry_wait: Duration::from_secs(2),
        ..Config::default()
    }
}

/// Starts a simulator serving `sites` on a free port.
pub(crate) async fn spawn(sites: impl IntoIterator<Item = SiteConfig>) -> SimHandle {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = sites
        .into_iter()
        .fold(SimConfig::default(), SimConfig::site);
    Sim::start(listener, &config).unwrap()
}

/// Site `acme` with `bob`, `sue` and `posts` posts.
pub(crate) fn acme(posts: u32) -> SiteConfig {
    SiteConfig::new("acme")
        .user(UserConfig::administrator("bob", PASSWORD))
        .user(UserConfig::subscriber("sue", PASSWORD))
        .posts(posts)
}

/// Connector `id` from a registry built with `config`.
pub(crate) fn connector(config: &Config, id: &str) -> Arc<dyn Connector> {
    Registry::new(config)
        .unwrap()
        .get(&ConnectorId::parse(id).unwrap())
        .unwrap()
}

/// `bob`'s credentials for site `acme`.
pub(crate) fn bob(sim: &SimHandle) -> Credentials {
    Credentials::app_password(sim.site_url("acme"), "bob", PASSWORD)
}

/// What syncing a whole stream gave.
pub(crate) struct Synced {
    pub(crate) records: Vec<Record>,
    pub(crate) pages: usize,
    pub(crate) totals: Vec<Option<u64>>,
}

/// Calls `sync_page` from the start until the stream finishes.
pub(crate) async fn sync_all(
    connector: &dyn Connector,
    credentials: &Credentials,
    stream: &str,
) -> Synced {
    let mut synced = Synced {
        records: Vec::new(),
        pages: 0,
        totals: Vec::new(),
    };
    let mut cursor = None;
    loop {
        let page = connector
            .sync_page(credentials, stream, cursor.as_ref())
            .await
            .unwrap();
        synced.pages += 1;
        synced.totals.push(page.total);
        synced.records.extend(page.records);
        let Some(next) = page.next else {
            return synced;
        };
        assert!(synced.pages < 100, "the stream does not end");
        cursor = Some(next);
    }
}
