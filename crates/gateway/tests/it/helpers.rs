//! `TestGateway`: the app, the services behind it, and the workers.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use fleet_bus::{Definitions, Publisher, Schedules};
use fleet_events::{Step, TenantId};
use fleet_gateway::{AppState, Config, Parts, PendingStates};
use fleet_harness::Servers;
use fleet_sim::{Sim, SimHandle, SiteConfig, UserConfig};
use http_body_util::BodyExt as _;
use secrecy::SecretString;
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt as _;

pub(crate) const DEADLINE: Duration = Duration::from_secs(20);
pub(crate) const KEY: &str = "test-signing-key-with-enough-entropy-0123456789";
/// The operator's webhook key.
pub(crate) const WEBHOOK_KEY: &str = "test-webhook-key";
pub(crate) const USER: &str = "editor";
pub(crate) const PASSWORD: &str = "abcd EFGH 1234 ijkl MNOP 5678";

pub(crate) const GOOGLE_CLIENT_ID: &str = "sim-client.apps.googleusercontent.com";
pub(crate) const GOOGLE_CLIENT_SECRET: &str = "sim-client-secret";
/// The gateway's configured OAuth redirect URI; tests call the callback
/// route themselves with what the provider put on it.
pub(crate) const REDIRECT_URI: &str = "https://fleet.example.test/oauth/callback";

pub(crate) struct TestGateway {
    pub(crate) app: Router,
    state: AppState,
    pub(crate) sim: SimHandle,
    pub(crate) secrets: fleet_secrets::Client,
    pub(crate) store: fleet_store::Store,
    pub(crate) connectors: Arc<fleet_connectors::Registry>,
    _catalog: tempfile::TempDir,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    _servers: Servers,
}

/// The gateway served over HTTP by [`TestGateway::serve`].
pub(crate) struct Served {
    pub(crate) addr: std::net::SocketAddr,
    /// Stops this server (as SIGTERM does `fleet gateway`).
    pub(crate) shutdown: CancellationToken,
    /// The server, until it has stopped.
    pub(crate) task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// A response: status and JSON body (`Value::Null` when empty).
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) body: Value,
}

impl TestGateway {
    /// Everything, with a WordPress site `blog` (120 posts, 4 pages), a
    /// site `crm` with FluentCRM (40 subscribers, 3 lists), and a Google
    /// user `ada` (one Analytics account, two properties) behind the
    /// `google-analytics` connector.
    pub(crate) async fn start() -> Self {
        Self::start_with(gateway_config()).await
    }

    /// As [`start`](Self::start), with the gateway settings `config`.
    pub(crate) async fn start_with(config: Config) -> Self {
        Self::start_with_auth(config, auth_config()).await
    }

    /// As [`start_with`](Self::start_with), checking tokens with `auth`.
    pub(crate) async fn start_with_auth(config: Config, auth: fleet_auth::Config) -> Self {
        Self::start_with_providers(config, auth, Providers::default()).await
    }

    /// As [`start`](Self::start), with the catalog entries and OAuth
    /// clients of `providers` added.
    pub(crate) async fn start_with_catalog(providers: Providers) -> Self {
        Self::start_with_providers(gateway_config(), auth_config(), providers).await
    }

    /// As [`start_with_auth`](Self::start_with_auth), with the catalog
    /// entries and OAuth clients of `providers` added.
    async fn start_with_providers(
        config: Config,
        auth: fleet_auth::Config,
        providers: Providers,
    ) -> Self {
        let servers = Servers::builder()
            .vault()
            .provision(Definitions::builtin())
            .start()
            .await;
        let (js, secrets, store) = (
            servers.js.clone(),
            servers.secrets().clone(),
            servers.store.clone(),
        );
        let sim_config = fleet_sim::Config::default()
            .site(
                SiteConfig::new("blog")
                    .user(UserConfig::administrator(USER, PASSWORD))
                    .posts(120)
                    .pages(4),
            )
            .site(
                SiteConfig::new("crm")
                    .user(UserConfig::administrator(USER, PASSWORD))
                    .fluentcrm(40, 3),
            )
            .google(
                fleet_sim::GoogleConfig::default()
                    .user(fleet_sim::GoogleUserConfig::new("ada", 1, 2)),
            )
            .trello(
                fleet_sim::TrelloConfig::default()
                    .member(fleet_sim::TrelloMemberConfig::new("ada").board(30).board(5)),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let sim = Sim::start(listener, &sim_config).unwrap();

        let catalog = oauth_catalog(&sim);
        for (id, entry) in &providers.entries {
            std::fs::write(catalog.path().join(format!("{id}.toml")), entry).unwrap();
        }
        for (id, keys) in &providers.acme_variants {
            let entry = sim
                .acme_catalog_entry()
                .replace("[oauth2]\n", &format!("[oauth2]\n{keys}\n"));
            std::fs::write(catalog.path().join(format!("{id}.toml")), entry).unwrap();
        }
        let client = fleet_connectors::OAuthClient {
            client_id: Some(GOOGLE_CLIENT_ID.to_owned()),
            client_secret: GOOGLE_CLIENT_SECRET.into(),
        };
        let trello = fleet_sim::TrelloConfig::default();
        let trello = fleet_connectors::OAuthClient {
            client_id: Some(trello.consumer_key),
            client_secret: trello.consumer_secret.into(),
        };
        let acme = fleet_sim::AcmeConfig::default();
        let acme = fleet_connectors::OAuthClient {
            client_id: Some(acme.client_id),
            client_secret: acme.client_secret.into(),
        };
        let variants: Vec<_> = providers
            .acme_variants
            .iter()
            .map(|(id, _)| (id.clone(), acme.clone()))
            .collect();
        let connectors = fleet_harness::connectors(
            catalog.path(),
            [
                ("google-analytics".to_owned(), client),
                ("trello".to_owned(), trello),
                ("acme".to_owned(), acme),
            ]
            .into_iter()
            .chain(providers.clients)
            .chain(variants),
        );
        let connectors = Arc::new(fleet_connectors::Registry::new(&connectors).unwrap());

        let deps = fleet_workers::Deps {
            secrets: secrets.clone(),
            store: store.clone(),
            connectors: connectors.clone(),
            schedules: Schedules::new(js.clone()),
            schedule: fleet_workers::SyncSchedule::Off,
            meter: None,
            webhooks: None,
        };
        let tracker = TaskTracker::new();
        let shutdown = CancellationToken::new();
        let settings = fleet_workers::Settings {
            concurrency: 4,
            grace: Duration::from_secs(5),
            ..Default::default()
        };
        fleet_workers::spawn_steps(&js, &deps, &Step::ALL, settings, &tracker, &shutdown);

        let oauth_states = PendingStates::open(&js, config.oauth.state_ttl())
            .await
            .unwrap();
        let state = AppState::new(
            config,
            Parts {
                store: store.clone(),
                secrets: secrets.clone(),
                publisher: Publisher::new(js.clone()),
                schedules: Schedules::new(js.clone()),
                verifier: fleet_auth::Verifier::new(&auth).unwrap(),
                connectors: connectors.clone(),
                oauth_states,
                ops: fleet_gateway::Ops::default(),
                webhooks: Some(fleet_gateway::routes::webhooks::Webhooks {
                    signer: fleet_connectors::webhook::Signer::new(WEBHOOK_KEY.to_owned().into()),
                    sender: fleet_connectors::webhook::Sender::new(
                        &fleet_connectors::Config::default(),
                        Duration::from_secs(5),
                    )
                    .unwrap(),
                }),
            },
        );
        Self {
            app: fleet_gateway::app(state.clone()),
            state,
            sim,
            secrets,
            store,
            connectors,
            _catalog: catalog,
            shutdown,
            tracker,
            _servers: servers,
        }
    }

    /// The credentials `connection` of `tenant` uses now: the version its
    /// row names. `NotFound` when it has none (or no row).
    pub(crate) async fn in_use(
        &self,
        tenant: &fleet_events::TenantId,
        connection: &fleet_events::ConnectionId,
    ) -> Result<fleet_secrets::Stored<fleet_connectors::Credentials>, fleet_secrets::Error> {
        fleet_harness::in_use(&self.secrets, &self.store, tenant, connection).await
    }

    /// Sends a request as `tenant` (no token when `None`) with a JSON body.
    pub(crate) async fn call(
        &self,
        method: Method,
        uri: &str,
        tenant: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        self.call_with(method, uri, tenant.map(token).as_deref(), body)
            .await
    }

    /// Sends a request with the bearer `token` (none when `None`) and a
    /// JSON body.
    pub(crate) async fn call_with(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = match body {
            Some(body) => request
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(serde_json::to_vec(&body).unwrap())),
            None => request.body(Body::empty()),
        }
        .unwrap();
        self.send(request).await
    }

    pub(crate) async fn send(&self, request: Request<Body>) -> Reply {
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Reply { status, body }
    }

    /// Creates a connection of `tenant` to the simulated `site`.
    pub(crate) async fn connect(
        &self,
        tenant: &str,
        connector: &str,
        site: &str,
        password: &str,
    ) -> String {
        let body = serde_json::json!({
            "connector": connector,
            "credentials": {"site_url": self.sim.site_url(site), "username": USER, "application_password": password},
        });
        let reply = self
            .call(Method::POST, "/api/connections", Some(tenant), Some(body))
            .await;
        assert_eq!(reply.status, StatusCode::ACCEPTED, "{:?}", reply.body);
        reply.body["id"].as_str().unwrap().to_owned()
    }

    /// Polls the connection until its state is `state`.
    pub(crate) async fn until_state(&self, tenant: &str, id: &str, state: &str) -> Value {
        self.until_connection(tenant, id, &format!("never reached {state}"), |c| {
            c["state"] == state
        })
        .await
    }

    /// Polls the connection until `holds` says yes of it, and returns it;
    /// fails with `what` and the last answer after [`DEADLINE`].
    pub(crate) async fn until_connection(
        &self,
        tenant: &str,
        id: &str,
        what: &str,
        holds: impl Fn(&Value) -> bool,
    ) -> Value {
        let last = std::sync::Mutex::new(Value::Null);
        let found = fleet_testkit::within(DEADLINE, || async {
            let reply = self
                .call(
                    Method::GET,
                    &format!("/api/connections/{id}"),
                    Some(tenant),
                    None,
                )
                .await;
            let found = holds(&reply.body).then(|| reply.body.clone());
            *last.lock().unwrap() = reply.body;
            found
        })
        .await;
        found.unwrap_or_else(|| panic!("{what}: {:?}", last.lock().unwrap()))
    }

    /// Serves the gateway over HTTP on a free loopback port, as `fleet
    /// gateway` does, until [`Served::shutdown`] or [`stop`](Self::stop).
    pub(crate) async fn serve(&self) -> Served {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = self.shutdown.child_token();
        let task = tokio::spawn(fleet_gateway::serve(
            listener,
            self.state.clone(),
            shutdown.clone(),
        ));
        Served {
            addr,
            shutdown,
            task,
        }
    }

    pub(crate) async fn stop(self) {
        self.shutdown.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }
}

/// Catalog entries and their OAuth clients, added to those of the
/// simulator.
#[derive(Default)]
pub(crate) struct Providers {
    /// `(id, TOML)`: a file `<id>.toml` in the catalog directory.
    pub(crate) entries: Vec<(String, String)>,
    /// The OAuth client of an entry, by its id.
    pub(crate) clients: Vec<(String, fleet_connectors::OAuthClient)>,
    /// `(id, keys)`: the simulator's Acme entry with `keys` added to its
    /// `[oauth2]` table, as `<id>.toml`, with Acme's client.
    pub(crate) acme_variants: Vec<(String, String)>,
}

/// A catalog directory pointing the OAuth connectors at the simulator,
/// except LinkedIn, which stays without a client: the tests check what an
/// unconfigured provider answers.
fn oauth_catalog(sim: &SimHandle) -> tempfile::TempDir {
    let dir = fleet_harness::catalog(sim);
    std::fs::remove_file(dir.path().join("linkedin.toml")).unwrap();
    dir
}

/// The gateway settings of [`TestGateway::start`]: http sites allowed (the
/// simulator serves http), OAuth with [`REDIRECT_URI`], and request limits
/// high enough for tests that poll (the limits' own tests set theirs).
pub(crate) fn gateway_config() -> Config {
    Config {
        allow_http_sites: true,
        oauth: fleet_gateway::OAuthConfig {
            redirect_uri: Some(url::Url::parse(REDIRECT_URI).unwrap()),
            ..fleet_gateway::OAuthConfig::default()
        },
        limits: fleet_gateway::limits::LimitsConfig {
            requests_per_second: 1000,
            request_burst: 1000,
            changes_per_minute: 1000,
            change_burst: 1000,
        },
        ..Config::default()
    }
}

/// The test gateway's token settings: HS256 with [`KEY`], the default
/// audience and lifetime.
pub(crate) fn auth_config() -> fleet_auth::Config {
    fleet_auth::Config::new(SecretString::from(KEY))
}

/// Claims of `tenant`, valid for ten minutes.
pub(crate) fn claims(tenant: &str) -> fleet_auth::Claims {
    fleet_auth::Claims::for_tenant(TenantId::parse(tenant).unwrap(), Duration::from_secs(600))
}

/// `claims` signed for the test gateway.
pub(crate) fn sign(claims: &fleet_auth::Claims) -> String {
    fleet_auth::Signer::new(&auth_config())
        .unwrap()
        .sign(claims)
        .unwrap()
}

/// A valid bearer token of `tenant`.
pub(crate) fn token(tenant: &str) -> String {
    sign(&claims(tenant))
}
