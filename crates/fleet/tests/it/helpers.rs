//! `World`: the real services, the simulator, and `fleet worker` processes.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use async_nats::jetstream;
use fleet_bus::{Definitions, Publisher};
use fleet_connectors::Credentials;
use fleet_events::{ConnectionId, ConnectionState, ConnectorId, StatusChanged, TenantId};
use fleet_harness::{Nats, Servers, servers};
use fleet_sim::{Sim, SimHandle, SiteConfig};
use fleet_testkit::{NatsCluster, NatsServer, OpenBao, Postgres};

pub(crate) const DEADLINE: Duration = Duration::from_secs(30);
pub(crate) const SITE: &str = "shop";
/// The key `fleet gateway` checks tenant tokens with.
pub(crate) const AUTH_KEY: &str = "a-test-signing-key-of-at-least-thirty-two-bytes";
pub(crate) const USER: &str = "owner";
/// The sync consumer's ack wait in these tests: how long a killed worker's
/// sync waits before another process takes it over.
pub(crate) const SYNC_ACK_WAIT: Duration = Duration::from_secs(2);

pub(crate) struct World {
    pub(crate) js: jetstream::Context,
    pub(crate) secrets: fleet_secrets::Client,
    pub(crate) store: fleet_store::Store,
    pub(crate) sim: SimHandle,
    pub(crate) tenant: TenantId,
    pub(crate) dir: tempfile::TempDir,
    pub(crate) database_url: String,
    nats: Nats,
    vault: OpenBao,
    mount: String,
    pub(crate) postgres: Postgres,
}

impl World {
    pub(crate) async fn start(site: SiteConfig) -> Self {
        Self::start_with(fleet_sim::Config::default().site(site)).await
    }

    /// As [`start`](Self::start), with the simulator serving `sim`.
    pub(crate) async fn start_with(sim: fleet_sim::Config) -> Self {
        let mut definitions = Definitions::builtin();
        definitions.set_ack_wait("sync", SYNC_ACK_WAIT).unwrap();
        Self::start_on(Servers::builder(), &definitions, sim).await
    }

    /// As [`start`](Self::start), on a three-node NATS cluster with every
    /// stream replicated three times, and short ack waits on every step so
    /// a delivery lost with a node comes back within a test's patience.
    pub(crate) async fn start_on_cluster(site: SiteConfig) -> Self {
        let mut definitions = chaos_definitions();
        for stream in &mut definitions.streams {
            stream.num_replicas = 3;
        }
        let sim = fleet_sim::Config::default().site(site);
        Self::start_on(Servers::builder().cluster(), &definitions, sim).await
    }

    /// As [`start_with`](Self::start_with), with every step's ack wait at
    /// [`SYNC_ACK_WAIT`], so that a delivery held by a killed process or
    /// lost with a restarted server comes back within a test's patience.
    pub(crate) async fn start_for_chaos(sim: fleet_sim::Config) -> Self {
        Self::start_on(Servers::builder(), &chaos_definitions(), sim).await
    }

    /// As [`start_for_chaos`](Self::start_for_chaos), on `nats` (one whose
    /// store is on a slow disk, say).
    pub(crate) async fn start_for_chaos_on(nats: NatsServer, sim: fleet_sim::Config) -> Self {
        Self::start_on(Servers::builder().on(nats), &chaos_definitions(), sim).await
    }

    /// Starts the servers `servers` asks for, with OpenBao, and the
    /// simulator serving `sim`. Nothing is provisioned here: the `fleet`
    /// processes provision `definitions` from this world's directory when
    /// they start, as they do in production.
    async fn start_on(
        servers: servers::Builder,
        definitions: &Definitions,
        sim: fleet_sim::Config,
    ) -> Self {
        let Servers {
            js,
            store,
            database_url,
            vault,
            nats,
            postgres,
        } = servers.vault().start().await;
        let fleet_harness::Vault {
            secrets,
            mount,
            server: vault,
        } = vault.expect("OpenBao was asked for");
        let dir = tempfile::tempdir().unwrap();
        write_definitions(definitions, &dir.path().join("nats"));

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let sim = Sim::start(listener, &sim).unwrap();
        Self {
            js,
            secrets,
            store,
            sim,
            tenant: TenantId::parse("acme").unwrap(),
            dir,
            database_url,
            nats,
            vault,
            mount,
            postgres,
        }
    }

    /// Gives the `step` consumer `attempts` deliveries of a message, in the
    /// definitions the processes started from now on apply.
    pub(crate) fn set_attempts(&self, stream: &str, step: &str, attempts: u32) {
        let path = self
            .dir
            .path()
            .join(format!("nats/consumers/{stream}/{step}.json"));
        let mut definition: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        definition["metadata"][fleet_bus::ATTEMPTS_METADATA] = attempts.to_string().into();
        std::fs::write(&path, serde_json::to_vec(&definition).unwrap()).unwrap();
    }

    /// Starts `fleet worker` with `args`, configured for this world, and
    /// waits until it runs.
    pub(crate) async fn spawn_worker(&self, name: &str, args: &[&str]) -> FleetProcess {
        self.spawn_worker_with(name, args, &[]).await
    }

    /// As [`spawn_worker`](Self::spawn_worker), with the extra environment
    /// `env` (which may override the defaults, such as `RUST_LOG`).
    pub(crate) async fn spawn_worker_with(
        &self,
        name: &str,
        args: &[&str],
        env: &[(String, String)],
    ) -> FleetProcess {
        let mut all = vec![
            ("FLEET_NATS__DEFINITIONS_DIR".to_owned(), self.dir.path().join("nats").to_string_lossy().into_owned()),
            ("FLEET_SYNC_INTERVAL_SECONDS".to_owned(), "0".to_owned()),
            ("RUST_LOG".to_owned(), "debug,vaultrs=off,rustify=off,hyper=off,hyper_util=off,reqwest=off,h2=off,async_nats=info,sqlx=info".to_owned()),
        ];
        all.extend(self.vault_env());
        all.extend(self.connectors_env());
        all.extend(env.iter().cloned());
        let args: Vec<&str> = std::iter::once("worker")
            .chain(args.iter().copied())
            .collect();
        self.spawn_fleet(name, &args, &all, "Fleet worker running.")
            .await
    }

    /// Starts `fleet worker` serving /healthz, /readyz and /metrics on a
    /// free loopback port; returns it with that port's base URL.
    pub(crate) async fn spawn_worker_listening(&self, name: &str) -> (FleetProcess, String) {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let process = self.spawn_worker(name, &["--listen", &listen]).await;
        (process, format!("http://{listen}"))
    }

    /// The connectors' settings for the simulator's OAuth providers: its
    /// catalog overrides (written under this world's directory) and the
    /// client secrets it accepts.
    pub(crate) fn oauth_env(&self) -> Vec<(String, String)> {
        let catalog = self.dir.path().join("catalog");
        self.sim.write_catalog(&catalog).unwrap();
        let google = fleet_sim::GoogleConfig::default().client_secret;
        let trello = fleet_sim::TrelloConfig::default().consumer_secret;
        [
            ("FLEET_CONNECTORS__CATALOG_DIR", catalog.to_str().unwrap()),
            (
                "FLEET_CONNECTORS__OAUTH_CLIENTS__GOOGLE_ANALYTICS__CLIENT_SECRET",
                &google,
            ),
            (
                "FLEET_CONNECTORS__OAUTH_CLIENTS__TRELLO__CLIENT_SECRET",
                &trello,
            ),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect()
    }

    /// Starts `fleet gateway` on a free loopback port, configured for this
    /// world (tokens signed with [`AUTH_KEY`], the callback at
    /// `<gateway>/oauth/callback`) with the extra environment `env`, and
    /// waits until it listens. Returns it with its base URL.
    pub(crate) async fn spawn_gateway(
        &self,
        name: &str,
        env: &[(String, String)],
    ) -> (FleetProcess, String) {
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        let listen = format!("127.0.0.1:{port}");
        let mut all = vec![
            ("FLEET_AUTH__KEY".to_owned(), AUTH_KEY.to_owned()),
            (
                "FLEET_GATEWAY__OAUTH__REDIRECT_URI".to_owned(),
                format!("{base}/oauth/callback"),
            ),
            (
                "FLEET_GATEWAY__ALLOW_HTTP_SITES".to_owned(),
                "true".to_owned(),
            ),
        ];
        all.extend(self.vault_env());
        all.extend(self.connectors_env());
        all.extend(env.iter().cloned());
        let process = self
            .spawn_fleet(
                name,
                &["gateway", "--listen", &listen],
                &all,
                "Fleet gateway listening.",
            )
            .await;
        (process, base)
    }

    /// Starts `fleet bridge` on a free loopback port, checking tenant
    /// tokens signed with [`AUTH_KEY`], and waits until it listens.
    /// Returns it with its base URL.
    pub(crate) async fn spawn_bridge(&self, name: &str) -> (FleetProcess, String) {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let env = [
            ("FLEET_AUTH__KEY".to_owned(), AUTH_KEY.to_owned()),
            ("FLEET_DATABASE__URL".to_owned(), self.database_url.clone()),
        ];
        let process = self
            .spawn_fleet(
                name,
                &["bridge", "--listen", &listen],
                &env,
                "Fleet bridge listening.",
            )
            .await;
        (process, format!("http://{listen}"))
    }

    /// Starts `fleet <args>` named `name` on this world's NATS, logging JSON
    /// to `<name>.log`, with `env` (later entries win), and waits until it
    /// logs `ready`.
    async fn spawn_fleet(
        &self,
        name: &str,
        args: &[&str],
        env: &[(String, String)],
        ready: &str,
    ) -> FleetProcess {
        let log = self.dir.path().join(format!("{name}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_fleet"))
            .args(args)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("FLEET_NATS__URL", self.nats_url())
            .env("FLEET_NATS__NAME", name)
            .env("FLEET_LOG_FORMAT", "json")
            .envs(env.iter().map(|(key, value)| (key, value)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("fleet starts");
        let process = FleetProcess { child, log };
        process.wait_for_log(ready).await;
        process
    }

    /// How the worker and the gateway reach Vault and PostgreSQL.
    fn vault_env(&self) -> Vec<(String, String)> {
        [
            ("FLEET_VAULT__ADDR", self.vault.addr()),
            ("FLEET_VAULT__MOUNT", self.mount.clone()),
            ("FLEET_VAULT__AUTH__METHOD", "token".to_owned()),
            (
                "FLEET_VAULT__AUTH__TOKEN",
                self.vault.root_token().to_owned(),
            ),
            ("FLEET_DATABASE__URL", self.database_url.clone()),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value))
        .collect()
    }

    /// Connectors may call the simulator: plain HTTP, on loopback.
    fn connectors_env(&self) -> Vec<(String, String)> {
        [
            ("FLEET_CONNECTORS__ALLOW_HTTP", "true"),
            (
                "FLEET_CONNECTORS__ALLOW_PRIVATE_NETWORKS",
                "127.0.0.0/8,::1/128",
            ),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect()
    }

    /// The NATS client URL (every node's, comma separated, on a cluster).
    pub(crate) fn nats_url(&self) -> String {
        self.nats.url()
    }

    /// The one NATS server this world runs on.
    ///
    /// # Panics
    ///
    /// On a world on a cluster.
    pub(crate) fn nats(&mut self) -> &mut NatsServer {
        self.nats.server()
    }

    /// The OpenBao this world keeps secrets in.
    pub(crate) fn vault(&mut self) -> &mut OpenBao {
        &mut self.vault
    }

    /// The cluster this world runs on.
    ///
    /// # Panics
    ///
    /// On a world with a single NATS server.
    pub(crate) fn cluster(&mut self) -> &mut NatsCluster {
        self.nats.cluster()
    }

    /// A tenant token for this world's tenant, from `fleet token`.
    pub(crate) fn token(&self) -> String {
        self.token_for(&self.tenant)
    }

    /// A token for `tenant`, from `fleet token`.
    pub(crate) fn token_for(&self, tenant: &TenantId) -> String {
        let output = Command::new(env!("CARGO_BIN_EXE_fleet"))
            .args(["token", "--tenant", tenant.as_str()])
            .env_clear()
            .env("FLEET_AUTH__KEY", AUTH_KEY)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap().trim().to_owned()
    }

    pub(crate) fn credentials(&self, password: &str) -> Credentials {
        Credentials::app_password(self.sim.site_url(SITE), USER, password)
    }

    /// The credentials `connection` uses now: the version its row names.
    pub(crate) async fn in_use(&self, connection: &ConnectionId) -> Credentials {
        fleet_harness::in_use(&self.secrets, &self.store, &self.tenant, connection)
            .await
            .unwrap()
            .value
    }

    /// What the gateway does: stage the credentials, record the connection,
    /// publish the request.
    pub(crate) async fn connect(&self, credentials: &Credentials) -> ConnectionId {
        let setup = fleet_harness::Setup {
            secrets: &self.secrets,
            store: &self.store,
        };
        let wordpress = ConnectorId::parse("wordpress").unwrap();
        let event = setup
            .stage(&self.tenant, &wordpress, "test", credentials)
            .await;
        let connection = event.connection.clone();
        Publisher::new(self.js.clone())
            .publish(&event, &event.id.to_string())
            .await
            .unwrap();
        connection
    }

    /// The connection's status events until `done` holds for one.
    pub(crate) async fn statuses_until(
        &self,
        connection: &ConnectionId,
        done: impl Fn(&StatusChanged) -> bool,
    ) -> Vec<StatusChanged> {
        fleet_harness::status_events_until(
            &self.js,
            &self.tenant,
            connection,
            DEADLINE,
            "the awaited status",
            |event| done(&event.data),
        )
        .await
        .into_iter()
        .map(|event| event.data)
        .collect()
    }

    pub(crate) async fn synced(&self, connection: &ConnectionId) -> Vec<StatusChanged> {
        self.statuses_until(connection, |s| s.status.state() == ConnectionState::Synced)
            .await
    }

    /// Every message stored in `stream`, headers and body, as text.
    pub(crate) async fn stream_text(&self, stream: &str) -> String {
        let mut info = self.js.get_stream(stream).await.unwrap();
        let state = info.info().await.unwrap().state.clone();
        let mut text = String::new();
        for sequence in state.first_sequence..=state.last_sequence {
            let Ok(message) = info.get_raw_message(sequence).await else {
                continue;
            };
            text.push_str(&format!("{:?}", message.headers));
            text.push_str(&String::from_utf8_lossy(&message.payload));
            text.push('\n');
        }
        text
    }

    /// Waits until `stream` holds `count` messages, failing after [`DEADLINE`].
    pub(crate) async fn wait_for_messages(&self, stream: &str, count: u64) {
        let reached = holds_within(DEADLINE, || async {
            self.messages_in(stream).await == count
        })
        .await;
        assert!(
            reached,
            "{stream} holds {} messages, not {count}",
            self.messages_in(stream).await
        );
    }

    /// How many messages `stream` holds.
    pub(crate) async fn messages_in(&self, stream: &str) -> u64 {
        let mut stream = self.js.get_stream(stream).await.unwrap();
        stream.info().await.unwrap().state.messages
    }
}

impl Drop for World {
    /// Keeps the processes' logs of a failed test, and says where.
    fn drop(&mut self) {
        if std::thread::panicking()
            && let Ok(spare) = tempfile::tempdir()
        {
            let kept = std::mem::replace(&mut self.dir, spare).keep();
            eprintln!("the fleet's logs are kept in {}", kept.display());
        }
    }
}

/// Polls `holds` until it is true or `deadline` has passed; returns
/// whether it held. For waits whose outcome the test reports itself;
/// [`eventually`] fails the test instead.
pub(crate) async fn holds_within<F, Fut>(deadline: Duration, mut holds: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    fleet_testkit::within(deadline, || {
        let held = holds();
        async move { held.await.then_some(()) }
    })
    .await
    .is_some()
}

/// Polls `probe` until it returns `Some`, failing after [`DEADLINE`].
pub(crate) async fn eventually<T, F, Fut>(what: &str, probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    fleet_testkit::eventually(DEADLINE, what, probe).await
}

/// A loopback port free a moment ago.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The built-in definitions with every step's ack wait at
/// [`SYNC_ACK_WAIT`].
fn chaos_definitions() -> Definitions {
    let mut definitions = Definitions::builtin();
    for step in ["validate", "save", "sync", "status"] {
        definitions.set_ack_wait(step, SYNC_ACK_WAIT).unwrap();
    }
    definitions
}

fn write_definitions(definitions: &Definitions, dir: &Path) {
    std::fs::create_dir_all(dir.join("streams")).unwrap();
    for stream in &definitions.streams {
        let path = dir.join("streams").join(format!("{}.json", stream.name));
        std::fs::write(path, serde_json::to_vec_pretty(stream).unwrap()).unwrap();
    }
    for consumer in &definitions.consumers {
        let consumers = dir.join("consumers").join(&consumer.stream);
        std::fs::create_dir_all(&consumers).unwrap();
        let name = consumer.config.durable_name.as_deref().unwrap();
        std::fs::write(
            consumers.join(format!("{name}.json")),
            serde_json::to_vec_pretty(&consumer.config).unwrap(),
        )
        .unwrap();
    }
}

/// A running `fleet` process, killed on drop.
pub(crate) struct FleetProcess {
    child: Child,
    log: PathBuf,
}

impl FleetProcess {
    /// Kills the process with SIGKILL, as a crash would.
    pub(crate) fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub(crate) async fn terminate(&mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success());
        let child = &mut self.child;
        fleet_testkit::eventually(DEADLINE, "fleet to exit after SIGTERM", || {
            let exited = child.try_wait().unwrap();
            async move { exited }
        })
        .await
    }

    /// Everything the process has logged.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Log lines whose message is `message`.
    pub(crate) fn count_logged(&self, message: &str) -> usize {
        let needle = format!("\"message\":\"{message}\"");
        self.log()
            .lines()
            .filter(|line| line.contains(&needle))
            .count()
    }

    async fn wait_for_log(&self, message: &str) {
        let logged = holds_within(DEADLINE, || {
            let logged = self.count_logged(message) > 0;
            async move { logged }
        })
        .await;
        assert!(
            logged,
            "fleet never logged {message:?}; log:\n{}",
            self.log()
        );
    }
}

impl Drop for FleetProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl World {
    /// Every row of every table, as JSON text.
    pub(crate) async fn table_text(&self) -> String {
        let pool = sqlx::PgPool::connect(&self.database_url).await.unwrap();
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public'",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        assert!(
            tables.iter().any(|t| t == "records"),
            "the scan sees the fleet's tables: {tables:?}"
        );
        let mut text = String::new();
        for table in tables {
            // Table names come from the catalog, not from input.
            let dump: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT coalesce(string_agg(row_to_json(t)::text, E'\\n'), '') FROM \"{table}\" t"
            )))
            .fetch_one(&pool)
            .await
            .unwrap();
            text.push_str(&dump);
        }
        text
    }
}
