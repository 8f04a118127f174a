//! `TestFleet`: every real service, the simulator, and the four steps
//! running in this process.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use fleet_bus::{Definitions, Publisher};
use fleet_connectors::Credentials;
use fleet_events::{
    ConnectionId, ConnectionState, ConnectorId, CorrelationId, Envelope, SetupOrigin,
    StatusChanged, Step, SyncRequested, SyncTrigger, TenantId, ValidateRequested,
};
use fleet_harness::Servers;
use fleet_sim::{Sim, SimHandle, SiteConfig, UserConfig};
use fleet_testkit::{OpenBao, Postgres};
use fleet_workers::{Deps, Settings};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long anything a test waits for may take.
pub(crate) const DEADLINE: Duration = Duration::from_secs(20);
/// The simulated WordPress site every test connects.
pub(crate) const SITE: &str = "blog";
pub(crate) const USER: &str = "editor";
pub(crate) const PASSWORD: &str = "abcd EFGH 1234 ijkl MNOP 5678";
pub(crate) const POSTS: u32 = 250;
pub(crate) const PAGES: u32 = 12;

/// The simulated Google user every OAuth test connects.
pub(crate) const GOOGLE_USER: &str = "ada";
pub(crate) const GOOGLE_CLIENT_ID: &str = "sim-client.apps.googleusercontent.com";
pub(crate) const GOOGLE_CLIENT_SECRET: &str = "sim-client-secret";

/// The consumer key and secret the simulated Trello accepts.
pub(crate) fn trello_client() -> fleet_connectors::OAuthClient {
    let trello = fleet_sim::TrelloConfig::default();
    fleet_connectors::OAuthClient {
        client_id: Some(trello.consumer_key),
        client_secret: trello.consumer_secret.into(),
    }
}

/// Where and how the meter step of a [`TestFleet`] reports usage.
pub(crate) struct Metering {
    pub(crate) lago: fleet_workers::meter::Lago,
    pub(crate) retry: fleet_bus::RetryPolicy,
}

pub(crate) struct TestFleet {
    pub(crate) js: jetstream::Context,
    pub(crate) deps: Deps,
    pub(crate) sim: SimHandle,
    pub(crate) handles: Vec<(Step, fleet_bus::WorkerHandle)>,
    pub(crate) tenant: TenantId,
    _catalog: tempfile::TempDir,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    _nats: fleet_harness::Nats,
    pub(crate) vault: OpenBao,
    /// The KV v2 mount holding the credentials.
    pub(crate) mount: String,
    _postgres: Postgres,
}

impl TestFleet {
    /// Starts NATS, OpenBao, PostgreSQL and the simulator, and runs every
    /// step in this process.
    pub(crate) async fn start() -> Self {
        Self::start_with(fleet_workers::SyncSchedule::Off).await
    }

    /// As [`TestFleet::start`], scheduling new connections' syncs as
    /// `schedule` says.
    pub(crate) async fn start_with(schedule: fleet_workers::SyncSchedule) -> Self {
        Self::start_full(
            schedule,
            fleet_sim::GoogleConfig::default(),
            None,
            Definitions::builtin(),
            None,
            None,
        )
        .await
    }

    /// As [`TestFleet::start`], with the meter step reporting to the Lago
    /// of `metering`, retrying after its delays.
    pub(crate) async fn start_metered(metering: Metering) -> Self {
        Self::start_full(
            fleet_workers::SyncSchedule::Off,
            fleet_sim::GoogleConfig::default(),
            None,
            Definitions::builtin(),
            Some(metering),
            None,
        )
        .await
    }

    /// As [`TestFleet::start`], with the webhook delivery loop sending as
    /// `webhooks` says, to endpoints on loopback.
    pub(crate) async fn start_with_webhooks(webhooks: fleet_workers::webhook::Config) -> Self {
        Self::start_full(
            fleet_workers::SyncSchedule::Off,
            fleet_sim::GoogleConfig::default(),
            None,
            Definitions::builtin(),
            None,
            Some(webhooks),
        )
        .await
    }

    /// As [`TestFleet::start`], with a simulated Google behaving as
    /// `google` says and Google user `ada` added to it.
    pub(crate) async fn start_google(google: fleet_sim::GoogleConfig) -> Self {
        Self::start_full(
            fleet_workers::SyncSchedule::Off,
            google,
            None,
            Definitions::builtin(),
            None,
            None,
        )
        .await
    }

    /// As [`TestFleet::start_google`], with the sync step getting
    /// `attempts` deliveries of a message.
    pub(crate) async fn start_google_with_sync_attempts(attempts: u32) -> Self {
        let mut definitions = Definitions::builtin();
        definitions
            .set_attempts("sync", attempts)
            .expect("a sync consumer");
        Self::start_full(
            fleet_workers::SyncSchedule::Off,
            fleet_sim::GoogleConfig::default(),
            None,
            definitions,
            None,
            None,
        )
        .await
    }

    /// As [`TestFleet::start`], with catalog file `<id>.toml` holding
    /// `contents` (where `{google}` is the simulated Google's base URL)
    /// among the operator's overrides, and syncs scheduled at
    /// each catalog entry's default interval.
    pub(crate) async fn start_with_catalog(id: &str, contents: &str) -> Self {
        Self::start_full(
            fleet_workers::SyncSchedule::CatalogDefault,
            fleet_sim::GoogleConfig::default(),
            Some((id, contents)),
            Definitions::builtin(),
            None,
            None,
        )
        .await
    }

    async fn start_full(
        schedule: fleet_workers::SyncSchedule,
        google: fleet_sim::GoogleConfig,
        catalog_file: Option<(&str, &str)>,
        definitions: Definitions,
        metering: Option<Metering>,
        webhooks: Option<fleet_workers::webhook::Config>,
    ) -> Self {
        let Servers {
            js,
            store,
            vault,
            nats,
            postgres,
            ..
        } = Servers::builder()
            .vault()
            .provision(definitions)
            .start()
            .await;
        let fleet_harness::Vault {
            secrets,
            mount,
            server: vault,
        } = vault.expect("OpenBao was asked for");

        let site = SiteConfig::new(SITE)
            .user(UserConfig::administrator(USER, PASSWORD))
            .posts(POSTS)
            .pages(PAGES);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let google = google.user(fleet_sim::GoogleUserConfig::new(GOOGLE_USER, 1, 1));
        let sim = Sim::start(
            listener,
            &fleet_sim::Config::default().site(site).google(google),
        )
        .expect("simulator");
        let catalog = fleet_harness::catalog(&sim);
        if let Some((id, contents)) = catalog_file {
            // `{google}`, `{trello}` and `{keyed}` stand for the simulated
            // Google's, Trello's and Keyed's base URLs.
            let contents = contents
                .replace("{google}", &sim.google_url())
                .replace("{trello}", &sim.trello_url())
                .replace("{keyed}", &sim.keyed_url());
            std::fs::write(catalog.path().join(format!("{id}.toml")), contents).unwrap();
        }

        let client = fleet_connectors::OAuthClient {
            client_id: Some(GOOGLE_CLIENT_ID.to_owned()),
            client_secret: GOOGLE_CLIENT_SECRET.into(),
        };
        let connectors = fleet_harness::connectors(
            catalog.path(),
            [
                ("google-analytics".to_owned(), client),
                ("trello".to_owned(), trello_client()),
            ],
        );
        let webhooks = webhooks
            .map(|webhooks| fleet_workers::webhook::Delivery::new(webhooks, &connectors).unwrap());
        let connectors = Arc::new(fleet_connectors::Registry::new(&connectors).unwrap());
        let schedules = fleet_bus::Schedules::new(js.clone());
        let deps = Deps {
            secrets,
            store,
            connectors,
            schedules,
            schedule,
            meter: None,
            webhooks,
        };

        let tracker = TaskTracker::new();
        let shutdown = CancellationToken::new();
        let settings = Settings {
            concurrency: 8,
            grace: Duration::from_secs(5),
            ..Default::default()
        };
        let handles = match metering {
            None => {
                fleet_workers::spawn_steps(&js, &deps, &Step::ALL, settings, &tracker, &shutdown)
            }
            Some(metering) => {
                let steps: Vec<Step> = Step::ALL
                    .into_iter()
                    .filter(|&step| step != Step::Meter)
                    .collect();
                let mut handles =
                    fleet_workers::spawn_steps(&js, &deps, &steps, settings, &tracker, &shutdown);
                let config = fleet_bus::WorkerConfig {
                    retry: metering.retry,
                    concurrency: 8,
                    prefetch: 8,
                    ..fleet_bus::WorkerConfig::for_step(Step::Meter)
                };
                let meter = fleet_workers::Meter::new(Some(metering.lago));
                let (worker, handle) = fleet_bus::Worker::build(config, js.clone(), meter);
                tracker.spawn(worker.run(shutdown.clone()));
                handles.push((Step::Meter, handle));
                handles
            }
        };
        Self {
            js,
            deps,
            sim,
            handles,
            tenant: TenantId::parse("acme").unwrap(),
            _catalog: catalog,
            shutdown,
            tracker,
            _nats: nats,
            vault,
            mount,
            _postgres: postgres,
        }
    }

    /// Credentials for the simulated site.
    pub(crate) fn credentials(&self, password: &str) -> Credentials {
        Credentials::app_password(self.sim.site_url(SITE), USER, password)
    }

    /// What the gateway does for a manual connection: stage the credentials
    /// in Vault, record the connection and publish the validate request.
    pub(crate) async fn connect(
        &self,
        credentials: &Credentials,
    ) -> (ConnectionId, Envelope<ValidateRequested>) {
        self.connect_to("wordpress", SetupOrigin::Manual, credentials)
            .await
    }

    /// The OAuth client of Google Analytics, pointed at the simulator.
    pub(crate) fn google(&self) -> fleet_connectors::oauth2::Client {
        self.deps
            .connectors
            .oauth2(&ConnectorId::parse("google-analytics").unwrap())
            .unwrap()
    }

    /// Google user `ada`'s consent and code exchange, as the gateway's
    /// OAuth callback does it.
    pub(crate) async fn google_consent(&self) -> Credentials {
        let client = self.google();
        let redirect = url::Url::parse("https://fleet.example.test/oauth/callback").unwrap();
        let authorization = client.authorize(&redirect).unwrap();
        let response = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .get(authorization.url.clone())
            .send()
            .await
            .unwrap();
        let location = url::Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
        let code = location
            .query_pairs()
            .find(|(key, _)| key == "code")
            .map(|(_, value)| value.into_owned())
            .expect("a code");
        client
            .exchange_code(&code, &redirect, authorization.pkce_verifier.as_ref())
            .await
            .unwrap()
            .into_credentials()
    }

    /// Stages `credentials` of `connector` and publishes the validate
    /// request, as the gateway does.
    pub(crate) async fn connect_to(
        &self,
        connector: &str,
        origin: SetupOrigin,
        credentials: &Credentials,
    ) -> (ConnectionId, Envelope<ValidateRequested>) {
        let connector = ConnectorId::parse(connector).unwrap();
        let setup = fleet_harness::Setup {
            secrets: &self.deps.secrets,
            store: &self.deps.store,
        };
        let mut event = setup
            .stage(&self.tenant, &connector, "test", credentials)
            .await;
        event.data.origin = origin;
        let connection = event.connection.clone();
        self.publish(&event, &event.id.to_string()).await;
        (connection, event)
    }

    /// The credentials `connection` uses now: the version its row names.
    pub(crate) async fn in_use(
        &self,
        connection: &ConnectionId,
    ) -> Result<fleet_secrets::Stored<Credentials>, fleet_secrets::Error> {
        fleet_harness::in_use(
            &self.deps.secrets,
            &self.deps.store,
            &self.tenant,
            connection,
        )
        .await
    }

    /// Replaces the credentials `connection` uses (`current`) with `value`,
    /// as a token renewal does.
    pub(crate) async fn replace_in_use(
        &self,
        connection: &ConnectionId,
        current: fleet_secrets::Version,
        value: Credentials,
    ) -> fleet_secrets::Stored<Credentials> {
        let version = self
            .deps
            .secrets
            .rotate(&self.tenant, connection, &value)
            .await
            .unwrap();
        let moved = self
            .deps
            .store
            .move_credentials(&self.tenant, connection, current.get(), version.get())
            .await
            .unwrap();
        assert!(moved, "{current} was the version in use");
        fleet_secrets::Stored { value, version }
    }

    /// Asks for a sync of `connection` of `connector`, as "Sync now" does.
    pub(crate) async fn sync_now(&self, connector: &str, connection: &ConnectionId) {
        let request = Envelope::new(
            self.tenant.clone(),
            connection.clone(),
            ConnectorId::parse(connector).unwrap(),
            CorrelationId::new(),
            SyncRequested {
                trigger: SyncTrigger::Manual,
                streams: None,
                cursor: None,
            },
        );
        Publisher::new(self.js.clone())
            .publish(&request, &request.id.to_string())
            .await
            .expect("published");
    }

    pub(crate) async fn publish(&self, event: &Envelope<ValidateRequested>, msg_id: &str) {
        Publisher::new(self.js.clone())
            .publish(event, msg_id)
            .await
            .expect("published");
    }

    /// The connection's status events in order, until one in `state`
    /// arrives (included).
    pub(crate) async fn statuses_until(
        &self,
        connection: &ConnectionId,
        state: ConnectionState,
    ) -> Vec<StatusChanged> {
        self.statuses_until_nth(connection, state, 1).await
    }

    /// The connection's status events in order, from the first, until the
    /// `n`th one in `state` arrives (included).
    pub(crate) async fn statuses_until_nth(
        &self,
        connection: &ConnectionId,
        state: ConnectionState,
        n: usize,
    ) -> Vec<StatusChanged> {
        self.status_events_until_nth(connection, state, n)
            .await
            .into_iter()
            .map(|event| event.data)
            .collect()
    }

    /// As [`TestFleet::statuses_until_nth`], the whole events.
    pub(crate) async fn status_events_until_nth(
        &self,
        connection: &ConnectionId,
        state: ConnectionState,
        n: usize,
    ) -> Vec<Envelope<StatusChanged>> {
        let mut reached = 0;
        fleet_harness::status_events_until(
            &self.js,
            &self.tenant,
            connection,
            DEADLINE,
            format_args!("the {n}th {state} status"),
            |event| {
                reached += usize::from(event.data.status.state() == state);
                reached == n
            },
        )
        .await
    }

    /// Waits until the connection's row in Postgres is in `state`.
    pub(crate) async fn row_in(
        &self,
        connection: &ConnectionId,
        state: ConnectionState,
    ) -> fleet_store::Connection {
        fleet_testkit::eventually(DEADLINE, format!("the row to reach {state}"), || async {
            let row = self
                .deps
                .store
                .get_connection(&self.tenant, connection)
                .await
                .unwrap();
            row.filter(|r| r.status.state() == state)
        })
        .await
    }

    pub(crate) fn stats(&self, step: Step) -> fleet_bus::WorkerStats {
        self.handles
            .iter()
            .find(|(s, _)| *s == step)
            .unwrap()
            .1
            .stats()
    }

    pub(crate) async fn stop(self) {
        self.shutdown.cancel();
        self.tracker.close();
        tokio::time::timeout(DEADLINE, self.tracker.wait())
            .await
            .expect("workers stop");
    }
}

/// Waits until what a test server recorded in `log` satisfies `condition`,
/// failing after [`DEADLINE`] with `what` and the log.
pub(crate) async fn until_logged<L: std::fmt::Debug>(
    log: &tokio::sync::watch::Sender<L>,
    what: &str,
    condition: impl Fn(&L) -> bool,
) {
    let mut watched = log.subscribe();
    let reached = tokio::time::timeout(DEADLINE, async move {
        watched.wait_for(|log| condition(log)).await.is_ok()
    })
    .await;
    assert!(
        reached == Ok(true),
        "{what} did not happen in time: {:?}",
        *log.borrow()
    );
}
