//! The test harness the fleet's crates share: what their integration tests
//! build the same way around testkit's real servers.
//!
//! - [`Servers`] starts the real servers a test runs on (NATS, one server
//!   or a cluster; PostgreSQL; OpenBao when asked) at once, provisions the
//!   fleet's streams and consumers, and hands out its clients of them;
//! - [`vault`] and [`store`] connect the fleet's secret store and state to
//!   a running OpenBao (on a fresh KV mount) and PostgreSQL (on a fresh,
//!   migrated database);
//! - [`catalog`] and [`connectors`] give the connectors the simulator's
//!   catalog files and the settings that let them reach it on loopback;
//! - [`Setup`] does what the gateway does to start a connection's setup
//!   (stage the credentials, record the connection, build the validate
//!   request), and [`in_use`] reads the credentials a connection uses now;
//! - [`status_events_until`] reads a connection's status events until the
//!   one a test waits for.
//!
//! Deadlines are [`fleet_testkit::eventually`]'s. This crate is for tests
//! only; nothing in the fleet's binaries links it.

pub mod servers;
mod statuses;

pub use servers::{Nats, Servers, Vault};
pub use statuses::status_events_until;

use fleet_connectors::{Credentials, OAuthClient};
use fleet_events::{
    ConnectionId, ConnectorId, CorrelationId, Envelope, SetupOrigin, TenantId, ValidateRequested,
};
use fleet_secrets::{Stored, Version};
use fleet_sim::SimHandle;
use fleet_store::{CredentialsInUse, NewConnection, Store};
use fleet_testkit::{OpenBao, Postgres};
use secrecy::SecretString;

/// A secret-store client of `vault` on a fresh KV version 2 mount, with
/// the root token; returns the client and the mount.
///
/// # Panics
///
/// When OpenBao refuses the mount or the client cannot connect.
pub async fn vault(vault: &OpenBao) -> (fleet_secrets::Client, String) {
    let mount = vault.new_kv_mount().await;
    let config = serde_json::from_value(serde_json::json!({
        "addr": vault.addr(),
        "mount": mount,
        "auth": {"method": "token", "token": vault.root_token()},
    }))
    .expect("a valid secrets config");
    let client = fleet_secrets::Client::connect(config)
        .await
        .expect("the secret store connects");
    (client, mount)
}

/// A store on a fresh, migrated database of `postgres`; returns the store
/// and the database's URL.
///
/// # Panics
///
/// When the database cannot be created or migrated.
pub async fn store(postgres: &Postgres) -> (Store, String) {
    let url = postgres.create_database().await;
    let config = fleet_store::Config::new(SecretString::from(url.clone()));
    let store = Store::connect(&config)
        .await
        .expect("the store connects and migrates");
    (store, url)
}

/// A catalog directory holding the simulator's catalog files (its
/// overrides of the built-in OAuth entries and its demo entries).
///
/// # Panics
///
/// When the directory cannot be written.
pub fn catalog(sim: &SimHandle) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary directory");
    sim.write_catalog(dir.path())
        .expect("the catalog files are written");
    dir
}

/// Connector settings for the simulator: plain http and loopback allowed
/// (which production refuses), the catalog in `catalog_dir`, and
/// `clients` as the operator's OAuth clients.
pub fn connectors(
    catalog_dir: &std::path::Path,
    clients: impl IntoIterator<Item = (String, OAuthClient)>,
) -> fleet_connectors::Config {
    fleet_connectors::Config {
        allow_http: true,
        allow_private_networks: vec![
            "127.0.0.0/8".parse().expect("a network"),
            "::1/128".parse().expect("a network"),
        ],
        catalog_dir: Some(catalog_dir.to_owned()),
        oauth_clients: clients.into_iter().collect(),
        ..Default::default()
    }
}

/// What the gateway does before it publishes anything about a new
/// connection: stages its credentials in Vault and records it, naming the
/// staged version.
#[derive(Debug, Clone, Copy)]
pub struct Setup<'a> {
    /// The secret store.
    pub secrets: &'a fleet_secrets::Client,
    /// The store.
    pub store: &'a Store,
}

impl Setup<'_> {
    /// Stages `credentials` for a new connection of `tenant` to
    /// `connector` and records it (named `display_name`); returns the
    /// validate request that starts its setup chain, to publish.
    ///
    /// # Panics
    ///
    /// When Vault or PostgreSQL fails.
    pub async fn stage(
        &self,
        tenant: &TenantId,
        connector: &ConnectorId,
        display_name: &str,
        credentials: &Credentials,
    ) -> Envelope<ValidateRequested> {
        let connection = ConnectionId::new();
        let staged = self
            .secrets
            .stage(tenant, &connection, credentials)
            .await
            .expect("the credentials are staged");
        let new = NewConnection {
            tenant,
            id: &connection,
            connector,
            display_name,
            sync_interval: None,
        };
        self.store
            .stage_connection(new, staged.get())
            .await
            .expect("the connection is recorded");
        Envelope::new(
            tenant.clone(),
            connection,
            connector.clone(),
            CorrelationId::new(),
            ValidateRequested {
                origin: SetupOrigin::Manual,
                staged_version: staged.get(),
            },
        )
    }
}

/// The credentials `connection` of `tenant` uses now: the version its row
/// names, read through `secrets` (its cache first).
///
/// # Errors
///
/// [`fleet_secrets::Error::NotFound`] when the connection has no row or no
/// version in use yet; the secret store's errors otherwise.
///
/// # Panics
///
/// When PostgreSQL fails.
pub async fn in_use(
    secrets: &fleet_secrets::Client,
    store: &Store,
    tenant: &TenantId,
    connection: &ConnectionId,
) -> Result<Stored<Credentials>, fleet_secrets::Error> {
    let pointer = store
        .credentials_in_use(tenant, connection)
        .await
        .expect("the store answers");
    let Some(CredentialsInUse::Version(version)) = pointer else {
        return Err(fleet_secrets::Error::NotFound {
            path: format!("{tenant}/{connection}: no credentials in use ({pointer:?})"),
        });
    };
    secrets
        .read_version(tenant, connection, Version::new(version))
        .await
}
