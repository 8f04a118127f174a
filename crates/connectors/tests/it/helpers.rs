//! A simulator per test, a registry that accepts its `http://` sites, and a
//! loop that syncs a whole stream.

use std::{sync::Arc, time::Duration};

use fleet_connectors::{Config, Connector, Credentials, Record, Registry};
use fleet_events::ConnectorId;
use fleet_sim::{Config as SimConfig, Sim, SimHandle, SiteConfig, UserConfig};

/// The application password of `bob` (an administrator) and `sue` (a subscriber).
pub(crate) const PASSWORD: &str = "abcd efgh ijkl mnop qrst uvwx";

/// The networks tests allow: the simulator and test sites listen on
/// loopback, which production settings refuse.
pub(crate) fn loopback() -> Vec<fleet_connectors::IpNet> {
    vec!["127.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()]
}

/// Settings for tests: `http://` and loopback allowed, short waits.
pub(crate) fn config() -> Config {
    Config {
        allow_http: true,
        allow_private_networks: loopback(),
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
    /// The gaps the pages reported.
    pub(crate) gaps: Vec<String>,
    /// The ids the pages reported removed from the stream.
    pub(crate) removed: Vec<String>,
}

/// Calls `sync_page` from the start until the stream finishes.
pub(crate) async fn sync_all(
    connector: &dyn Connector,
    credentials: &Credentials,
    stream: &str,
) -> Synced {
    sync_from(connector, credentials, stream, None).await
}

/// Reads `stream` from `start` (a first cursor, such as an incremental
/// pass's) to its end.
pub(crate) async fn sync_from(
    connector: &dyn Connector,
    credentials: &Credentials,
    stream: &str,
    start: Option<serde_json::Value>,
) -> Synced {
    let mut synced = Synced {
        records: Vec::new(),
        pages: 0,
        totals: Vec::new(),
        gaps: Vec::new(),
        removed: Vec::new(),
    };
    let mut cursor = start;
    loop {
        let page = connector
            .sync_page(credentials, stream, cursor.as_ref())
            .await
            .unwrap();
        assert!(
            page.records.is_empty() || page.bytes > 0,
            "a page of records reports the bytes it read"
        );
        synced.pages += 1;
        synced.totals.push(page.total);
        synced.gaps.extend(page.gap);
        synced.removed.extend(page.removed);
        synced.records.extend(page.records);
        let Some(next) = page.next else {
            return synced;
        };
        assert!(synced.pages < 100, "the stream does not end");
        cursor = Some(next);
    }
}

/// The OAuth client the simulated Google accepts.
pub(crate) const GOOGLE_CLIENT_ID: &str = "sim-client.apps.googleusercontent.com";
pub(crate) const GOOGLE_CLIENT_SECRET: &str = "sim-client-secret";

/// Where the OAuth callback would land; never called.
pub(crate) fn redirect_uri() -> url::Url {
    url::Url::parse("https://fleet.example.test/oauth/callback").unwrap()
}

/// Starts a simulator whose Google has user `ada` with one Analytics
/// account of two properties.
pub(crate) async fn spawn_google(google: fleet_sim::GoogleConfig) -> SimHandle {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let google = google.user(fleet_sim::GoogleUserConfig::new("ada", 1, 2));
    Sim::start(listener, &SimConfig::default().google(google)).unwrap()
}

/// A catalog directory pointing Google Analytics at the simulator (with
/// `page_size` rows per report), and adding `sim-id`, an OAuth 2.0 provider
/// without a sync mapping that validates through Google's userinfo.
pub(crate) fn google_catalog(sim: &SimHandle, page_size: u32) -> tempfile::TempDir {
    let google = sim.google_url();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("google-analytics.toml"),
        format!(
            "page_size = {page_size}\n\
             [api_base_urls]\nadmin = \"{google}/analyticsadmin\"\ndata = \"{google}/analyticsdata\"\n\
             [oauth2]\nauthorize_url = \"{google}/o/oauth2/v2/auth\"\ntoken_url = \"{google}/token\"\n\
             revoke_url = \"{google}/revoke\"\nuserinfo_url = \"{google}/v1/userinfo\"\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("sim-id.toml"),
        format!(
            "display_name = \"Sim ID\"\nauth = \"oauth2\"\ndocs_url = \"https://sim.test/docs\"\n\
             default_sync_interval_secs = 3600\n\
             [oauth2]\nauthorize_url = \"{google}/o/oauth2/v2/auth\"\ntoken_url = \"{google}/token\"\n\
             userinfo_url = \"{google}/v1/userinfo\"\nscopes = [\"openid\", \"email\"]\n\
             authorize_params = {{ access_type = \"offline\" }}\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("sim-grant.toml"),
        format!(
            "display_name = \"Sim Grant\"\nauth = \"oauth2\"\ndocs_url = \"https://sim.test/docs\"\n\
             default_sync_interval_secs = 3600\n\
             [oauth2]\nauthorize_url = \"{google}/o/oauth2/v2/auth\"\ntoken_url = \"{google}/token\"\n\
             token_only = true\nscopes = [\"openid\", \"email\"]\n\
             authorize_params = {{ access_type = \"offline\" }}\n"
        ),
    )
    .unwrap();
    dir
}

/// Settings for tests with the catalog of `dir` and the simulator's OAuth
/// client for `ids`.
pub(crate) fn oauth_config(dir: &tempfile::TempDir, ids: &[&str]) -> Config {
    let client = fleet_connectors::OAuthClient {
        client_id: Some(GOOGLE_CLIENT_ID.to_owned()),
        client_secret: GOOGLE_CLIENT_SECRET.into(),
    };
    Config {
        catalog_dir: Some(dir.path().to_owned()),
        oauth_clients: ids
            .iter()
            .map(|id| ((*id).to_owned(), client.clone()))
            .collect(),
        ..config()
    }
}

/// Follows `authorization` to the simulator's consent, returning the
/// callback's `code` after checking its `state`.
pub(crate) async fn consent(authorization: &fleet_connectors::oauth2::Authorization) -> String {
    let response = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(authorization.url.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::FOUND);
    let location = url::Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
    let param = |name: &str| {
        location
            .query_pairs()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
    };
    assert_eq!(
        param("state").as_deref(),
        Some(authorization.state.as_str())
    );
    param("code").unwrap()
}

/// A registry from `config` and the OAuth client and connector of `id`.
pub(crate) fn oauth(
    config: &Config,
    id: &str,
) -> (fleet_connectors::oauth2::Client, Arc<dyn Connector>) {
    let registry = Registry::new(config).unwrap();
    let id = ConnectorId::parse(id).unwrap();
    (registry.oauth2(&id).unwrap(), registry.get(&id).unwrap())
}

/// Connects Google user `ada` through `client`: consent and code exchange.
pub(crate) async fn connect(client: &fleet_connectors::oauth2::Client) -> Credentials {
    let authorization = client.authorize(&redirect_uri()).unwrap();
    let code = consent(&authorization).await;
    client
        .exchange_code(&code, &redirect_uri(), authorization.pkce_verifier.as_ref())
        .await
        .unwrap()
        .into_credentials()
}

/// Checks every payload of `records`, read from `stream` of `connector`,
/// against the stream's JSON Schema, formats (`date`, `date-time`, `uri`)
/// included: what a sync stores is what the schema promises.
pub(crate) fn assert_match_schema(connector: &dyn Connector, stream: &str, records: &[Record]) {
    let schema = connector
        .stream_schema(stream)
        .unwrap_or_else(|| panic!("{} has no schema for {stream}", connector.id()));
    let validator = jsonschema::draft202012::options()
        .should_validate_formats(true)
        .should_ignore_unknown_formats(false)
        .build(&schema.schema())
        .unwrap_or_else(|e| panic!("{} does not compile: {e}", schema.name()));
    for record in records {
        let errors: Vec<String> = validator
            .iter_errors(&record.payload)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{} {} does not match {}: {errors:?}\n{:#}",
            stream,
            record.external_id,
            schema.name(),
            record.payload
        );
    }
}
