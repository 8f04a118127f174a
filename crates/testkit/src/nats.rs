//! A nats-server with JetStream on free loopback ports.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use rustix::process::Signal;
use tempfile::TempDir;

use crate::ports::{PortAttempts, free_ports};
use crate::process::{Process, StartError, http_client, work_dir};
use crate::tools;

/// How long nats-server may take to serve JetStream.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a cluster's JetStream meta group may take to form.
const META_GROUP_TIMEOUT: Duration = Duration::from_secs(20);

/// A `nats-server` with JetStream file storage in a temporary directory.
///
/// The server listens on a free loopback port, with its monitoring endpoint on a
/// second one. It is ready when `/healthz` on the monitoring port answers 200,
/// which nats-server does only once JetStream is enabled and clients can connect;
/// the probe needs no credentials, so it also works for configurations with
/// authentication.
///
/// Dropping the guard kills the server and removes its data. [`stop`](Self::stop),
/// [`kill`](Self::kill) and [`restart`](Self::restart) keep the port and the store
/// directory, so JetStream data survives them.
#[derive(Debug)]
pub struct NatsServer {
    dir: TempDir,
    port: u16,
    monitor_port: u16,
    /// The configuration file, as an absolute path so restarts find it.
    config: Option<PathBuf>,
    /// Extra environment variables, which the configuration file can reference.
    env: Vec<(OsString, OsString)>,
    /// The JetStream store directory, when not `<dir>/store`.
    store: Option<PathBuf>,
    http: reqwest::Client,
    process: Option<Process>,
    /// Its place in a [`NatsCluster`], if it is in one.
    member: Option<Member>,
}

/// A node's cluster settings, given as command-line flags.
#[derive(Debug, Clone)]
struct Member {
    /// `server_name`, stable across restarts: JetStream places replicas by it.
    name: String,
    /// The port the node's routes listen on.
    cluster_port: u16,
    /// Every node's route port, its own included.
    routes: Vec<u16>,
}

impl NatsServer {
    /// Starts `nats-server -js` on a free port and waits until JetStream is ready.
    ///
    /// # Panics
    ///
    /// Panics when nats-server (v2.14 or later) is not installed, or when it does not
    /// become ready within 10 s; the message holds the end of the server's log.
    pub async fn start() -> Self {
        Self::launch(None, Vec::new(), None).await
    }

    /// As [`start`](Self::start), with the JetStream store in `store` (a
    /// [`SlowDisk`](crate::SlowDisk)'s path, say), which outlives restarts.
    ///
    /// # Panics
    ///
    /// Panics like [`start`](Self::start).
    pub async fn start_with_store(store: impl Into<PathBuf>) -> Self {
        Self::launch(None, Vec::new(), Some(store.into())).await
    }

    /// Starts nats-server with a configuration file and extra environment variables.
    ///
    /// The file may reference the variables (`password: $WORKER_PASSWORD`). The
    /// listen address, the ports and the JetStream store directory are still the
    /// guard's, given as command-line flags, which override the file. Two settings
    /// must stay out of the file: `store_dir`, which nats-server refuses from both the
    /// file and the command line ("Duplicate 'store_dir' configuration"), so deployments
    /// pass it as `-sd`; and fixed ports for clustering, leaf nodes or websockets.
    ///
    /// # Panics
    ///
    /// Panics like [`start`](Self::start), which includes a configuration file that
    /// nats-server rejects.
    pub async fn start_with_config<K, V>(
        config: impl AsRef<Path>,
        env: impl IntoIterator<Item = (K, V)>,
    ) -> Self
    where
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        let config = std::path::absolute(config.as_ref())
            .unwrap_or_else(|e| panic!("cannot resolve {}: {e}", config.as_ref().display()));
        let env = env
            .into_iter()
            .map(|(key, value)| (key.as_ref().to_owned(), value.as_ref().to_owned()))
            .collect();
        Self::launch(Some(config), env, None).await
    }

    async fn launch(
        config: Option<PathBuf>,
        env: Vec<(OsString, OsString)>,
        store: Option<PathBuf>,
    ) -> Self {
        let [port, monitor_port] = free_ports();
        let mut server = Self {
            dir: work_dir("nats"),
            port,
            monitor_port,
            config,
            env,
            store,
            http: http_client(),
            process: None,
            member: None,
        };
        let mut attempts = PortAttempts::default();
        while let Err(e) = server.spawn().await {
            attempts.retry(&e);
            [server.port, server.monitor_port] = free_ports();
        }
        server
    }

    async fn spawn(&mut self) -> Result<(), StartError> {
        let mut command = Command::new(tools::nats_server());
        command
            .args(["-js", "-a", "127.0.0.1"])
            .args(["-p", &self.port.to_string()])
            .args(["-m", &self.monitor_port.to_string()])
            .arg("-sd")
            .arg(
                self.store
                    .clone()
                    .unwrap_or_else(|| self.dir.path().join("store")),
            );
        if let Some(config) = &self.config {
            command.arg("-c").arg(config);
        }
        if let Some(member) = &self.member {
            let routes: Vec<String> = member
                .routes
                .iter()
                .map(|port| format!("nats://127.0.0.1:{port}"))
                .collect();
            command
                .args(["--server_name", &member.name])
                .args(["--cluster_name", "connector-fleet"])
                .args([
                    "--cluster",
                    &format!("nats://127.0.0.1:{}", member.cluster_port),
                ])
                .args(["--routes", &routes.join(",")]);
        }
        command.envs(self.env.iter().map(|(key, value)| (key, value)));
        let log = self.dir.path().join("server.log");
        let healthz = format!("http://127.0.0.1:{}/healthz", self.monitor_port);
        let (http, healthz) = (&self.http, healthz.as_str());
        let ready = move || is_healthy(http, healthz);
        let process = Process::start("nats-server", command, &log, READY_TIMEOUT, ready).await?;
        self.process = Some(process);
        Ok(())
    }

    /// The client URL, `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The temporary directory holding the JetStream store and `server.log`.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Connects a new client without credentials.
    ///
    /// For a configuration with authentication, connect with
    /// `async_nats::ConnectOptions` and [`url`](Self::url) instead.
    ///
    /// # Panics
    ///
    /// Panics when the connection fails.
    pub async fn client(&self) -> async_nats::Client {
        async_nats::connect(self.url())
            .await
            .unwrap_or_else(|e| panic!("cannot connect to nats-server at {}: {e}", self.url()))
    }

    /// A JetStream context on a new client from [`client`](Self::client).
    ///
    /// # Panics
    ///
    /// Panics when the connection fails.
    pub async fn jetstream(&self) -> async_nats::jetstream::Context {
        async_nats::jetstream::new(self.client().await)
    }

    /// Shuts the server down gracefully (`SIGTERM`) and waits for it, keeping its data.
    ///
    /// Does nothing when the server is not running.
    pub fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.stop(Signal::TERM);
        }
    }

    /// Kills the server (`SIGKILL`), as a crash would, keeping its data.
    ///
    /// Does nothing when the server is not running.
    pub fn kill(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.kill();
        }
    }

    /// Stops the server if it runs, then starts it again on the same port with the
    /// same store, and waits until JetStream is ready.
    ///
    /// # Panics
    ///
    /// Panics when the server does not become ready within 10 s.
    pub async fn restart(&mut self) {
        self.stop();
        self.spawn().await.unwrap_or_else(|e| panic!("{e}"));
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        // Before the fields drop: the process must be gone before its directory is removed.
        self.kill();
    }
}

/// Whether `/healthz` answers 200: the client port is open and JetStream is enabled.
async fn is_healthy(http: &reqwest::Client, healthz: &str) -> bool {
    let response = http.get(healthz).send().await;
    response.is_ok_and(|response| response.status().is_success())
}

/// Three nats-servers with JetStream, clustered over loopback routes: the
/// fleet's streams can be replicated three times on it, and one node can be
/// stopped and brought back while the others serve.
///
/// Dropping the guard kills every node and removes their data.
#[derive(Debug)]
pub struct NatsCluster {
    nodes: Vec<NatsServer>,
}

impl NatsCluster {
    /// Starts three nodes at once (a JetStream cluster is ready only once
    /// its nodes have met) and waits until each serves JetStream.
    ///
    /// # Panics
    ///
    /// Panics when a node does not become ready within 10 s, with the end of
    /// its log.
    pub async fn start() -> Self {
        let mut attempts = PortAttempts::default();
        loop {
            match Self::launch().await {
                Ok(cluster) => return cluster,
                Err(e) => attempts.retry(&e),
            }
        }
    }

    /// Starts three nodes on fresh ports.
    async fn launch() -> Result<Self, StartError> {
        let ports: [u16; 9] = free_ports();
        let routes = ports[6..9].to_vec();
        let mut nodes: Vec<NatsServer> = (0..3)
            .map(|i| NatsServer {
                dir: work_dir("nats"),
                port: ports[i],
                monitor_port: ports[3 + i],
                config: None,
                env: Vec::new(),
                store: None,
                http: http_client(),
                process: None,
                member: Some(Member {
                    name: format!("node-{}", ["a", "b", "c"][i]),
                    cluster_port: routes[i],
                    routes: routes.clone(),
                }),
            })
            .collect();
        let [a, b, c] = nodes.as_mut_slice() else {
            unreachable!("three nodes")
        };
        let (a, b, c) = tokio::join!(a.spawn(), b.spawn(), c.spawn());
        a?;
        b?;
        c?;
        let cluster = Self { nodes };
        cluster.await_meta_group().await;
        Ok(cluster)
    }

    /// Waits until JetStream's meta group has formed: every node names the
    /// same leader, and the leader sees the other two as current. Until
    /// then a stream with three replicas cannot be placed.
    ///
    /// # Panics
    ///
    /// Panics when it has not formed within 20 s.
    async fn await_meta_group(&self) {
        let formed = crate::within(META_GROUP_TIMEOUT, || async {
            let mut leaders = Vec::new();
            let mut current_replicas = 0;
            for node in &self.nodes {
                let url = format!("http://127.0.0.1:{}/jsz", node.monitor_port);
                let jsz: serde_json::Value =
                    node.http.get(&url).send().await.ok()?.json().await.ok()?;
                let meta = jsz.get("meta_cluster")?;
                let leader = meta.get("leader")?.as_str().filter(|l| !l.is_empty())?;
                let name = node.member.as_ref().map(|m| m.name.as_str());
                if Some(leader) == name {
                    current_replicas = meta
                        .get("replicas")
                        .and_then(serde_json::Value::as_array)
                        .map_or(0, |replicas| {
                            replicas
                                .iter()
                                .filter(|r| {
                                    r.get("current").and_then(serde_json::Value::as_bool)
                                        == Some(true)
                                })
                                .count()
                        });
                }
                leaders.push(leader.to_owned());
            }
            let agreed = leaders.windows(2).all(|pair| pair[0] == pair[1]);
            (agreed && current_replicas == 2).then_some(())
        })
        .await;
        assert!(
            formed.is_some(),
            "the cluster's JetStream meta group did not form within {META_GROUP_TIMEOUT:?}"
        );
    }

    /// The node whose `server_name` is `name` (`node-a`, `node-b` or
    /// `node-c`), as JetStream names a stream's leader and replicas.
    ///
    /// # Panics
    ///
    /// Panics for a name that is not one of the three.
    pub fn node_named(&mut self, name: &str) -> &mut NatsServer {
        self.nodes
            .iter_mut()
            .find(|node| node.member.as_ref().is_some_and(|m| m.name == name))
            .unwrap_or_else(|| panic!("no cluster node is named {name}"))
    }

    /// Every node's client URL, comma separated, as `FLEET_NATS__URL` takes
    /// them.
    pub fn urls(&self) -> String {
        let urls: Vec<String> = self.nodes.iter().map(NatsServer::url).collect();
        urls.join(",")
    }

    /// Node `index` (0, 1 or 2), to stop, kill or restart.
    ///
    /// # Panics
    ///
    /// Panics for an index past the third node.
    pub fn node(&mut self, index: usize) -> &mut NatsServer {
        &mut self.nodes[index]
    }

    /// A client that knows every node, so it survives any one going away.
    ///
    /// # Panics
    ///
    /// Panics when no node can be reached.
    pub async fn client(&self) -> async_nats::Client {
        let urls: Vec<String> = self.nodes.iter().map(NatsServer::url).collect();
        async_nats::connect(urls)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to the cluster at {}: {e}", self.urls()))
    }
}
