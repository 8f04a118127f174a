//! [`Servers`]: the real servers a test of the fleet runs on, started at
//! once, and the fleet's clients of them.

use async_nats::jetstream;
use fleet_bus::Definitions;
use fleet_store::Store;
use fleet_testkit::{NatsCluster, NatsServer, OpenBao, Postgres};

/// The real servers one test runs on (NATS, PostgreSQL and, when asked
/// for, OpenBao) and what the fleet reaches them with: JetStream with the
/// fleet's streams and consumers, a store on a fresh migrated database,
/// and a secret store on a fresh KV mount.
///
/// The guards are fields, so the servers live as long as this value, or
/// as long as whatever a test helper moves them into; a helper whose
/// tests stop and restart a server keeps that guard as its own field.
///
/// ```no_run
/// use fleet_harness::Servers;
///
/// # async fn example() {
/// let servers = Servers::builder()
///     .vault()
///     .provision(fleet_bus::Definitions::builtin())
///     .start()
///     .await;
/// let (js, store, secrets) = (&servers.js, &servers.store, servers.secrets());
/// # }
/// ```
#[derive(Debug)]
pub struct Servers {
    /// JetStream on [`nats`](Self::nats), with the definitions given to
    /// [`Builder::provision`] in place.
    pub js: jetstream::Context,
    /// The store on a fresh database of [`postgres`](Self::postgres), migrated.
    pub store: Store,
    /// The URL of the store's database, for what connects on its own (a
    /// `fleet` process, a raw pool).
    pub database_url: String,
    /// OpenBao and the secret store on it; `None` unless
    /// [`Builder::vault`] asked for it.
    pub vault: Option<Vault>,
    /// The NATS the test runs on.
    pub nats: Nats,
    /// The PostgreSQL server holding the store's database.
    pub postgres: Postgres,
}

impl Servers {
    /// What to start: one NATS server and PostgreSQL, with nothing
    /// provisioned, until the builder is told otherwise.
    pub fn builder() -> Builder {
        Builder {
            nats: NatsSource::Server,
            vault: false,
            definitions: None,
        }
    }

    /// The secret store, on its own KV mount.
    ///
    /// # Panics
    ///
    /// When the servers were started without OpenBao.
    pub fn secrets(&self) -> &fleet_secrets::Client {
        let vault = self.vault.as_ref();
        &vault
            .expect("the servers were started with OpenBao (Builder::vault)")
            .secrets
    }
}

/// OpenBao and the fleet's secret store on it.
#[derive(Debug)]
pub struct Vault {
    /// The secret store, with the root token, on [`mount`](Self::mount).
    pub secrets: fleet_secrets::Client,
    /// The KV version 2 mount made for this test, which no other test uses.
    pub mount: String,
    /// The server.
    pub server: OpenBao,
}

/// The NATS a test runs on.
#[derive(Debug)]
pub enum Nats {
    /// One server (boxed: it is much larger than a cluster's handle).
    Server(Box<NatsServer>),
    /// Three clustered nodes.
    Cluster(NatsCluster),
}

impl Nats {
    /// The client URL: every node's, comma separated, on a cluster (as
    /// `FLEET_NATS__URL` takes them).
    pub fn url(&self) -> String {
        match self {
            Self::Server(server) => server.url(),
            Self::Cluster(cluster) => cluster.urls(),
        }
    }

    /// The one server, to stop, kill or restart.
    ///
    /// # Panics
    ///
    /// On a cluster.
    pub fn server(&mut self) -> &mut NatsServer {
        match self {
            Self::Server(server) => server,
            Self::Cluster(_) => panic!("the test runs on a NATS cluster, not one server"),
        }
    }

    /// The cluster, to stop, kill or restart its nodes.
    ///
    /// # Panics
    ///
    /// On a single server.
    pub fn cluster(&mut self) -> &mut NatsCluster {
        match self {
            Self::Cluster(cluster) => cluster,
            Self::Server(_) => panic!("the test runs on one NATS server, not a cluster"),
        }
    }

    /// JetStream on a new client; on a cluster, one that knows every node,
    /// so it survives any one going away.
    async fn jetstream(&self) -> jetstream::Context {
        match self {
            Self::Server(server) => server.jetstream().await,
            Self::Cluster(cluster) => jetstream::new(cluster.client().await),
        }
    }
}

impl From<NatsServer> for Nats {
    fn from(server: NatsServer) -> Self {
        Self::Server(Box::new(server))
    }
}

impl From<NatsCluster> for Nats {
    fn from(cluster: NatsCluster) -> Self {
        Self::Cluster(cluster)
    }
}

/// What [`Servers`] starts and provisions; from [`Servers::builder`].
#[derive(Debug)]
#[must_use = "nothing starts until `start` is awaited"]
pub struct Builder {
    nats: NatsSource,
    vault: bool,
    definitions: Option<Definitions>,
}

/// Where the NATS comes from.
#[derive(Debug)]
enum NatsSource {
    /// A new single server.
    Server,
    /// A new three-node cluster.
    Cluster,
    /// One the test started itself (on a slow disk, say).
    Given(Nats),
}

impl Builder {
    /// Also starts OpenBao, with a secret store on a fresh KV mount.
    pub fn vault(mut self) -> Self {
        self.vault = true;
        self
    }

    /// Starts a three-node NATS cluster instead of one server.
    pub fn cluster(mut self) -> Self {
        self.nats = NatsSource::Cluster;
        self
    }

    /// Runs on `nats`, already started, instead of starting one.
    pub fn on(mut self, nats: impl Into<Nats>) -> Self {
        self.nats = NatsSource::Given(nats.into());
        self
    }

    /// Provisions `definitions` once NATS is up. Without it nothing is
    /// provisioned, as for `fleet` processes that provision on start.
    pub fn provision(mut self, definitions: Definitions) -> Self {
        self.definitions = Some(definitions);
        self
    }

    /// Starts the servers at once, then connects the fleet's clients and
    /// provisions the definitions.
    ///
    /// # Panics
    ///
    /// When a server does not start, JetStream refuses a definition, or
    /// the store or the secret store cannot be set up.
    pub async fn start(self) -> Servers {
        let Self {
            nats,
            vault,
            definitions,
        } = self;
        // Each server's own setup waits only on that server, so the three
        // chains run side by side rather than one after the other.
        let nats = async {
            let nats = match nats {
                NatsSource::Server => Nats::from(NatsServer::start().await),
                NatsSource::Cluster => Nats::Cluster(NatsCluster::start().await),
                NatsSource::Given(nats) => nats,
            };
            let js = nats.jetstream().await;
            if let Some(definitions) = definitions {
                definitions
                    .provision(&js)
                    .await
                    .expect("the definitions are provisioned");
            }
            (nats, js)
        };
        let vault = async {
            if !vault {
                return None;
            }
            let server = OpenBao::start().await;
            let (secrets, mount) = crate::vault(&server).await;
            Some(Vault {
                secrets,
                mount,
                server,
            })
        };
        let postgres = async {
            let postgres = Postgres::start().await;
            let (store, database_url) = crate::store(&postgres).await;
            (postgres, store, database_url)
        };
        // Boxed, so that the futures of the tests awaiting this one stay
        // small (`clippy::large_futures`) whichever servers it starts.
        let ((nats, js), vault, (postgres, store, database_url)) =
            tokio::join!(Box::pin(nats), Box::pin(vault), Box::pin(postgres));
        Servers {
            js,
            store,
            database_url,
            vault,
            nats,
            postgres,
        }
    }
}
