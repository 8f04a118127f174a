//! Why a benchmark run stopped.

/// What went wrong while setting up or running a scenario.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Could not connect to NATS.
    #[error("failed to connect to NATS")]
    Connect(#[source] fleet_bus::Error),
    /// The full chain was planned without Vault and PostgreSQL settings, or
    /// a bridge scenario without PostgreSQL settings.
    #[error("the full chain needs Vault and PostgreSQL settings, the bridge scenarios PostgreSQL")]
    MissingServices,
    /// The bridge process could not be started or waited for.
    #[error("failed to run `fleet bridge`")]
    SpawnBridge(#[source] std::io::Error),
    /// The bridge process exited before it listened.
    #[error("`fleet bridge` exited before it listened ({}); its log is above", status.as_deref().unwrap_or("no exit status"))]
    BridgeExited {
        /// Its exit status, if known.
        status: Option<String>,
    },
    /// The bridge process did not listen in time.
    #[error("`fleet bridge` did not listen within {seconds} s; its log is above")]
    BridgeNotListening {
        /// The deadline.
        seconds: u64,
    },
    /// Some clients could not open their session.
    #[error("{failed} bench clients could not open a bridge session; the first: {first}")]
    Clients {
        /// How many.
        failed: usize,
        /// Why the first one failed.
        first: String,
    },
    /// A stream the bench would create already exists. The bench creates and
    /// deletes its own streams, so it refuses to run where they could hold
    /// someone's data.
    #[error(
        "stream {name} already exists: the bench creates and deletes its streams, so run it \
         against a server without them (scripts/bench starts a fresh one)"
    )]
    StreamExists {
        /// Stream name.
        name: String,
    },
    /// A JetStream request failed.
    #[error("failed to {what}")]
    JetStream {
        /// What was asked, such as `create stream BENCH_RAW`.
        what: String,
        /// Cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A sync of the sync scenarios ended in another state than `synced`.
    #[error("the benchmarked sync ended {state}, not synced")]
    SyncEnded {
        /// The state it ended in.
        state: String,
    },
    /// A sync of the sync scenarios did not end in time.
    #[error("the benchmarked sync did not end within {seconds} s")]
    SyncTimedOut {
        /// How long the bench waited.
        seconds: u64,
    },
    /// A part's chain found every connection busy with another chain (the
    /// scenario sets up at least as many connections as chains in flight).
    #[error("every connection of the part is being synced by another chain")]
    NoIdleConnection,
    /// The connections `sync-only` syncs were not all set up in time.
    #[error("the {connections} connections to sync were not all set up within {seconds} s")]
    SetupTimedOut {
        /// How many were set up.
        connections: usize,
        /// How long the bench waited.
        seconds: u64,
    },
    /// The fleet's streams and consumers could not be created.
    #[error("failed to provision the fleet's streams")]
    Provision(#[source] fleet_bus::Error),
    /// The first event of a chain was not stored.
    #[error("failed to publish the first event of a chain")]
    Publish(#[source] fleet_bus::Error),
    /// Could not log in to Vault.
    #[error("failed to connect to Vault")]
    Vault(#[source] fleet_secrets::Error),
    /// Could not stage a chain's credentials.
    #[error("failed to stage credentials in Vault")]
    Stage(#[source] fleet_secrets::Error),
    /// Could not connect to or migrate PostgreSQL.
    #[error("failed to connect to PostgreSQL")]
    Database(#[source] fleet_store::Error),
    /// Could not read back the rows of a run.
    #[error("failed to read the connections of tenant {tenant}")]
    Verify {
        /// The run's tenant.
        tenant: String,
        /// Cause.
        #[source]
        source: fleet_store::Error,
    },
    /// A request of the Vault part of the full chain failed.
    #[error("the full chain's Vault work failed")]
    VaultPart(#[source] fleet_secrets::Error),
    /// A statement of the PostgreSQL part of the full chain failed.
    #[error("the full chain's PostgreSQL work failed")]
    PostgresPart(#[source] fleet_store::Error),
    /// The simulated site's records could not be fetched.
    #[error("failed to fetch the simulated site's records")]
    Fetch(#[source] fleet_connectors::Error),
    /// The connector catalog could not be built.
    #[error("failed to build the connector catalog")]
    Connectors(#[source] fleet_connectors::BuildError),
    /// The in-process provider simulator did not start.
    #[error("failed to start the provider simulator")]
    Simulator(#[source] fleet_sim::Error),
    /// No local port for the simulator.
    #[error("failed to bind the provider simulator's listener")]
    Listen(#[source] std::io::Error),
    /// The shutdown token was cancelled.
    #[error("interrupted")]
    Interrupted,
}

impl Error {
    /// A failed JetStream request, described by `what`.
    pub(crate) fn jetstream(
        what: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::JetStream {
            what: what.into(),
            source: Box::new(source),
        }
    }
}
