//! A fresh, migrated database per test, and builders for test values.

use std::time::Duration;

use chrono::{DateTime, TimeZone as _, Utc};
use fleet_events::{ConnectionId, ConnectorId, TenantId};
use fleet_store::{Config, Connection, NewConnection, Store};
use fleet_testkit::Postgres;
use secrecy::SecretString;

/// A migrated store over its own database; the server stops when it drops.
pub(crate) struct TestStore {
    pub(crate) store: Store,
    /// URL of the test's database, for a second `Store::connect` or raw SQL.
    pub(crate) url: String,
    _postgres: Postgres,
}

/// Starts PostgreSQL, creates an empty database and connects a store to it.
pub(crate) async fn spawn_store() -> TestStore {
    let postgres = Postgres::start().await;
    let url = postgres.create_database().await;
    let store = Store::connect(&config(&url))
        .await
        .expect("store connects and migrates");
    TestStore {
        store,
        url,
        _postgres: postgres,
    }
}

pub(crate) fn config(url: &str) -> Config {
    Config::new(SecretString::from(url))
}

pub(crate) fn tenant(id: &str) -> TenantId {
    TenantId::parse(id).unwrap()
}

pub(crate) fn connector(id: &str) -> ConnectorId {
    ConnectorId::parse(id).unwrap()
}

/// Creates a fresh WordPress connection of `tenant`, syncing hourly.
pub(crate) async fn create_connection(store: &Store, tenant: &TenantId) -> Connection {
    store
        .create_connection(NewConnection {
            tenant,
            id: &ConnectionId::new(),
            connector: &connector("wordpress"),
            display_name: "Company blog",
            sync_interval: Some(Duration::from_secs(3600)),
        })
        .await
        .unwrap()
}

/// `2025-01-01T00:00:00Z` plus `seconds`.
pub(crate) fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_735_689_600 + seconds, 0).unwrap()
}
