//! The secret scan at `RUST_LOG=trace`: a gateway and a worker log
//! everything every crate says (NATS payloads and subjects, Vault and HTTP
//! clients, our own spans) through OAuth 2.0 and OAuth 1.0a connections, a
//! revocation and a revocation that fails, an API key that connects and one
//! the provider refuses, and no secret value appears in any log, stream or
//! table.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use fleet_connectors::Credentials;
use fleet_events::{ConnectionId, ConnectionState};
use fleet_sim::{Fault, GoogleConfig, GoogleUserConfig, TrelloConfig, TrelloMemberConfig};
use secrecy::ExposeSecret as _;
use sha2::{Digest as _, Sha256};
use url::Url;

use crate::helpers::{DEADLINE, FleetProcess, World};

/// Everything at trace, from every crate.
const TRACE: &str = "trace";

/// A browser for the gateway: its cookies, no redirects followed.
struct Browser {
    http: reqwest::Client,
    gateway: String,
    cookies: BTreeMap<String, String>,
    /// Every cookie value it was ever given.
    seen: Vec<String>,
}

impl Browser {
    fn new(gateway: &str) -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            gateway: gateway.to_owned(),
            cookies: BTreeMap::new(),
            seen: Vec::new(),
        }
    }

    /// GETs `url` with this browser's cookies (and `token` as a bearer
    /// token), stores the answer's cookies and returns its `Location`.
    async fn get(&mut self, url: &str, token: Option<&str>) -> Url {
        let mut request = self.http.get(url);
        if url.starts_with(&self.gateway) && !self.cookies.is_empty() {
            let cookie: Vec<String> = self
                .cookies
                .iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect();
            request = request.header("cookie", cookie.join("; "));
        }
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        for set in response.headers().get_all("set-cookie") {
            let (pair, _) = set.to_str().unwrap().split_once(';').unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
                self.seen.push(value.to_owned());
            }
        }
        assert!(
            response.status().is_redirection(),
            "{url}: {}",
            response.status()
        );
        let location = response.headers()["location"].to_str().unwrap();
        Url::parse(url).unwrap().join(location).unwrap()
    }
}

fn param(url: &Url, name: &str) -> String {
    url.query_pairs()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
        .unwrap_or_else(|| panic!("{url} has no {name}"))
}

/// What one OAuth connection left for the scan to look for.
struct Connected {
    connection: ConnectionId,
    /// Values that must appear nowhere.
    secrets: Vec<String>,
    /// The PKCE challenge, whose verifier must appear nowhere.
    challenge: Option<String>,
}

/// Connects `connector` through the gateway as a browser would: authorize
/// (with the tenant's token), the simulated provider's consent, the
/// callback; then waits for the first sync.
async fn connect(world: &World, gateway: &str, token: &str, connector: &str) -> Connected {
    let mut browser = Browser::new(gateway);
    let authorize = browser
        .get(
            &format!("{gateway}/oauth/authorize/{connector}"),
            Some(token),
        )
        .await;
    let back = browser.get(authorize.as_str(), None).await;
    let done = browser.get(back.as_str(), None).await;
    assert_eq!(param(&done, "status"), "connected", "{done}");
    let connection = ConnectionId::parse(&param(&done, "connection_id")).unwrap();
    world
        .statuses_until(&connection, |s| s.status.state() == ConnectionState::Synced)
        .await;

    let mut secrets = browser.seen;
    let query: Vec<(String, String)> = authorize
        .query_pairs()
        .chain(back.query_pairs())
        .map(|(key, value)| (key.into_owned(), value.into_owned()))
        .collect();
    for (key, value) in &query {
        if ["state", "code", "oauth_token", "oauth_verifier"].contains(&key.as_str()) {
            secrets.push(value.clone());
        }
    }
    let stored = world.in_use(&connection).await;
    match stored {
        Credentials::OAuth2 {
            access_token,
            refresh_token,
            ..
        } => {
            secrets.push(access_token.expose_secret().to_owned());
            secrets.extend(refresh_token.map(|t| t.expose_secret().to_owned()));
        }
        Credentials::OAuth1 {
            token,
            token_secret,
        } => {
            secrets.push(token.expose_secret().to_owned());
            secrets.push(token_secret.expose_secret().to_owned());
        }
        Credentials::AppPassword { .. }
        | Credentials::ApiKey { .. }
        | Credentials::Basic { .. }
        | Credentials::ClientCredentials { .. } => unreachable!("an OAuth connection"),
    }
    let challenge = query
        .iter()
        .find(|(key, _)| key == "code_challenge")
        .map(|(_, value)| value.clone());
    Connected {
        connection,
        secrets,
        challenge,
    }
}

/// Connects the simulator's `keyed` entry with the API key `key` through
/// `POST /api/connections`, and waits for `state`.
async fn connect_keyed(
    world: &World,
    gateway: &str,
    token: &str,
    key: &str,
    state: ConnectionState,
) -> ConnectionId {
    let response = reqwest::Client::new()
        .post(format!("{gateway}/api/connections"))
        .bearer_auth(token)
        .json(&serde_json::json!({
            "connector": "keyed",
            "credentials": {"api_key": key, "section": "api"},
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::ACCEPTED);
    let created: serde_json::Value = response.json().await.unwrap();
    let connection = ConnectionId::parse(created["id"].as_str().unwrap()).unwrap();
    world
        .statuses_until(&connection, |s| s.status.state() == state)
        .await;
    connection
}

/// Deletes `connection` through the gateway (which revokes its grant).
async fn disconnect(gateway: &str, token: &str, connection: &ConnectionId) {
    let response = reqwest::Client::new()
        .delete(format!("{gateway}/api/connections/{connection}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
}

/// Waits until `process` has logged `message`.
async fn logged(process: &FleetProcess, message: &str) {
    fleet_testkit::eventually(DEADLINE, format!("{message:?} in the log"), || async {
        (process.count_logged(message) > 0).then_some(())
    })
    .await;
}

/// Every 43-character base64url word of `text` whose S256 challenge is
/// `challenge`: a PKCE verifier that leaked.
fn verifiers_of(text: &str, challenge: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .filter(|word| word.len() == 43)
        .filter(|word| URL_SAFE_NO_PAD.encode(Sha256::digest(word.as_bytes())) == challenge)
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_value_appears_at_trace_level_through_oauth_and_a_failed_revoke() {
    let world = World::start_with(
        fleet_sim::Config::default()
            .google(GoogleConfig::default().user(GoogleUserConfig::new("ada", 1, 1)))
            .trello(TrelloConfig::default().member(TrelloMemberConfig::new("ada").board(3))),
    )
    .await;
    let mut env = world.oauth_env();
    env.push(("RUST_LOG".to_owned(), TRACE.to_owned()));
    let worker = world.spawn_worker_with("worker", &[], &env).await;
    let (gateway, base) = world.spawn_gateway("gateway", &env).await;
    let token = world.token();

    let google = connect(&world, &base, &token, "google-analytics").await;
    let trello = connect(&world, &base, &token, "trello").await;
    let wrong_key = "sk-scanned-wrong-key-81c4";
    connect_keyed(
        &world,
        &base,
        &token,
        fleet_sim::KEYED_API_KEY,
        ConnectionState::Synced,
    )
    .await;
    connect_keyed(&world, &base, &token, wrong_key, ConnectionState::Invalid).await;
    disconnect(&base, &token, &google.connection).await;
    logged(&gateway, "Grant revoked at the provider.").await;
    // Trello answers the revocation with 503: the failure is logged.
    world.sim.inject_trello(
        "ada",
        Fault::Unavailable {
            retry_after_secs: None,
        },
        1,
    );
    disconnect(&base, &token, &trello.connection).await;
    logged(
        &gateway,
        "Revoking the grant at the provider failed; deleting the credentials anyway.",
    )
    .await;

    let mut everything = gateway.log() + &worker.log();
    assert!(
        everything.contains(r#""level":"TRACE""#),
        "the scan reads trace-level logs"
    );
    for stream in [
        fleet_bus::STEPS_STREAM,
        fleet_bus::STATUS_STREAM,
        fleet_bus::DLQ_STREAM,
    ] {
        everything += &world.stream_text(stream).await;
    }
    everything += &world.table_text().await;
    assert!(everything.contains(trello.connection.as_str()));
    let mut secrets = vec![
        token,
        GoogleConfig::default().client_secret,
        TrelloConfig::default().consumer_secret,
        fleet_sim::KEYED_API_KEY.to_owned(),
        wrong_key.to_owned(),
    ];
    secrets.extend(google.secrets);
    secrets.extend(trello.secrets);
    for secret in &secrets {
        assert!(secret.len() >= 8, "{secret:?} is too short to scan for");
        assert!(!everything.contains(secret.as_str()), "{secret:?} leaked");
    }
    let challenge = google.challenge.expect("Google's flow uses PKCE");
    assert_eq!(
        verifiers_of(&everything, &challenge),
        Vec::<String>::new(),
        "the PKCE verifier leaked"
    );
}
