//! The egress rule as a tenant meets it: a site URL that points inside the
//! fleet's network is refused before anything connects, however the
//! address is written, unless the operator allows the network; and what
//! a site sends back is cut to a storable length.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use fleet_connectors::{Config, Credentials, Error, ErrorClass, Registry};
use fleet_events::ConnectorId;
use secrecy::SecretString;
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpListener,
};

use crate::helpers::{PASSWORD, config, connector, google_catalog, oauth_config, spawn_google};

/// What an internal service answers: JSON a connector would gladly read
/// as an account.
const INTERNAL: &str = r#"{"username": "vault-internal", "name": "root token inside"}"#;

/// A server answering every request with one canned response and counting
/// the connections it accepts: an internal service a tenant would like the
/// workers to reach, or a hostile site.
struct Canned {
    address: SocketAddr,
    connections: Arc<AtomicUsize>,
}

impl Canned {
    /// Listens on `bind` and answers `status` with the JSON `body`; `None`
    /// when `bind` is not available here (IPv6 loopback in some sandboxes).
    async fn start(bind: &str, status: u16, body: String) -> Option<Self> {
        let listener = TcpListener::bind(bind).await.ok()?;
        let address = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let accepted = connections.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                accepted.fetch_add(1, Ordering::SeqCst);
                let body = body.clone();
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buffer = [0_u8; 4096];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buffer).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buffer[..n]),
                        }
                    }
                    let response = format!(
                        "HTTP/1.1 {status} Canned\r\ncontent-type: application/json\r\n\
                         content-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(response.as_bytes()).await;
                });
            }
        });
        Some(Self {
            address,
            connections,
        })
    }

    fn port(&self) -> u16 {
        self.address.port()
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// Production settings but for `http://` (the canned servers speak plain
/// HTTP): no private network allowed.
fn production() -> Config {
    Config {
        allow_private_networks: Vec::new(),
        connect_timeout: Duration::from_secs(2),
        ..config()
    }
}

fn site(url: &str) -> Credentials {
    Credentials::app_password(url, "bob", PASSWORD)
}

async fn validate(config: &Config, url: &str) -> Result<fleet_connectors::Account, Error> {
    connector(config, "wordpress").validate(&site(url)).await
}

/// The error and its causes, joined as the workers store them.
fn chain(error: &Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[tokio::test]
async fn internal_addresses_are_refused_before_anything_connects() {
    let internal = Canned::start("127.0.0.1:0", 200, INTERNAL.to_owned())
        .await
        .unwrap();
    let port = internal.port();
    let ipv6 = Canned::start("[::1]:0", 200, INTERNAL.to_owned()).await;
    let mut sites = vec![
        (format!("http://127.0.0.1:{port}"), "127.0.0.1"),
        // URL parsing normalises these to 127.0.0.1.
        (format!("http://2130706433:{port}"), "127.0.0.1"),
        (format!("http://0x7f.1:{port}"), "127.0.0.1"),
        (format!("http://0177.0.0.1:{port}"), "127.0.0.1"),
        (format!("http://127.1:{port}"), "127.0.0.1"),
        (
            format!("http://[::ffff:127.0.0.1]:{port}"),
            "[::ffff:7f00:1]",
        ),
        // A name that resolves to loopback.
        (format!("http://localhost:{port}"), "localhost"),
        // Cloud metadata, private and unique-local networks: refused
        // before a connection is even tried (nothing listens there).
        (
            "http://169.254.169.254/latest/meta-data".to_owned(),
            "169.254.169.254",
        ),
        ("http://10.0.0.1".to_owned(), "10.0.0.1"),
        ("http://100.64.0.1".to_owned(), "100.64.0.1"),
        ("http://[fd00::1]".to_owned(), "[fd00::1]"),
        ("http://0.0.0.0".to_owned(), "0.0.0.0"),
    ];
    if let Some(ipv6) = &ipv6 {
        sites.push((format!("http://[::1]:{}", ipv6.port()), "[::1]"));
    }

    for (url, host) in &sites {
        let error = validate(&production(), url).await.unwrap_err();

        assert!(matches!(error, Error::Refused { .. }), "{url}: {error:?}");
        assert_eq!(error.class(), ErrorClass::Permanent, "{url}");
        let shown = chain(&error);
        assert!(
            shown.starts_with(&format!("refused to connect to WordPress at {host}: ")),
            "{url}: {shown}"
        );
        assert!(shown.contains("private or internal"), "{shown}");
        assert!(!shown.contains("vault-internal"), "{shown}");
    }
    assert_eq!(internal.connections(), 0, "no connection was made");
    if let Some(ipv6) = ipv6 {
        assert_eq!(ipv6.connections(), 0, "no connection was made");
    }
}

#[tokio::test]
async fn the_operators_allow_list_lets_its_networks_through() {
    let internal = Canned::start("127.0.0.1:0", 200, INTERNAL.to_owned())
        .await
        .unwrap();
    let port = internal.port();

    let by_number = validate(&config(), &format!("http://2130706433:{port}"))
        .await
        .unwrap();
    let by_name = validate(&config(), &format!("http://localhost:{port}"))
        .await
        .unwrap();
    let elsewhere = validate(&config(), "http://10.0.0.1").await.unwrap_err();

    assert_eq!(
        by_number.name,
        format!("vault-internal on 127.0.0.1:{port}")
    );
    assert_eq!(by_name.name, format!("vault-internal on localhost:{port}"));
    assert_eq!(internal.connections(), 2);
    assert!(
        matches!(elsewhere, Error::Refused { .. }),
        "only the allowed networks open: {elsewhere:?}"
    );
}

#[tokio::test]
async fn catalog_urls_are_held_to_the_same_rule() {
    let sim = spawn_google(fleet_sim::GoogleConfig::default()).await;
    let dir = google_catalog(&sim, 10);
    let refusing = Config {
        allow_private_networks: Vec::new(),
        ..oauth_config(&dir, &["google-analytics"])
    };
    let id = ConnectorId::parse("google-analytics").unwrap();
    let client = Registry::new(&refusing).unwrap().oauth2(&id).unwrap();
    let connector = Registry::new(&refusing).unwrap().get(&id).unwrap();

    let refresh = client
        .refresh(&SecretString::from("refresh-token"))
        .await
        .unwrap_err();
    let validate = connector
        .validate(&bearer("access-token"))
        .await
        .unwrap_err();

    assert!(matches!(refresh, Error::Refused { .. }), "{refresh:?}");
    assert!(matches!(validate, Error::Refused { .. }), "{validate:?}");
    assert_eq!(sim.google_requests("ada"), 0);
}

#[tokio::test]
async fn what_a_site_sends_back_is_cut_to_a_storable_length() {
    let huge = "n".repeat(5_000);
    let named = Canned::start(
        "127.0.0.1:0",
        200,
        format!(r#"{{"username": "{huge}", "name": "x"}}"#),
    )
    .await
    .unwrap();
    let refusing = Canned::start(
        "127.0.0.1:0",
        403,
        format!(r#"{{"code": "{huge}", "message": "{huge}", "data": {{"status": 403}}}}"#),
    )
    .await
    .unwrap();
    let garbled = Canned::start(
        "127.0.0.1:0",
        200,
        format!(r#"{{"username": "u", "name": {{"{huge}": "{huge}"}}}}"#),
    )
    .await
    .unwrap();

    let account = validate(&config(), &format!("http://127.0.0.1:{}", named.port()))
        .await
        .unwrap();
    let forbidden = validate(&config(), &format!("http://127.0.0.1:{}", refusing.port()))
        .await
        .unwrap_err();
    let invalid = validate(&config(), &format!("http://127.0.0.1:{}", garbled.port()))
        .await
        .unwrap_err();

    assert_eq!(account.name.chars().count(), 201, "200 and an ellipsis");
    assert!(account.name.ends_with('…'));
    assert!(
        matches!(forbidden, Error::Forbidden { .. }),
        "{forbidden:?}"
    );
    assert!(chain(&forbidden).chars().count() < 700, "{forbidden}");
    assert!(
        matches!(invalid, Error::InvalidResponse { .. }),
        "{invalid:?}"
    );
    assert!(chain(&invalid).chars().count() < 500, "{invalid}");
}

#[tokio::test]
async fn a_token_the_provider_echoes_in_its_refusal_never_reaches_the_error() {
    let token = "EAABsecretAccessToken0123456789";
    let echoing = Canned::start(
        "127.0.0.1:0",
        400,
        format!(r#"{{"error": {{"message": "Malformed access token {token}", "code": 190}}}}"#),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let base = format!("http://127.0.0.1:{}", echoing.port());
    std::fs::write(
        dir.path().join("acme.toml"),
        format!(
            "display_name = \"Acme\"\nauth = \"oauth2\"\ndocs_url = \"https://acme.test/docs\"\ndefault_sync_interval_secs = 3600\n[oauth2]\n\
             authorize_url = \"{base}/a\"\ntoken_url = \"{base}/t\"\nuserinfo_url = \"{base}/me\"\n"
        ),
    )
    .unwrap();
    let acme = Registry::new(&Config {
        catalog_dir: Some(dir.path().to_owned()),
        ..config()
    })
    .unwrap()
    .get(&ConnectorId::parse("acme").unwrap())
    .unwrap();

    let error = acme.validate(&bearer(token)).await.unwrap_err();

    assert_eq!(echoing.connections(), 1);
    let shown = format!("{error} {error:?}");
    assert!(!shown.contains(token), "{shown}");
    assert!(shown.contains("[REDACTED]"), "{shown}");
}

#[tokio::test]
async fn a_setting_the_provider_echoes_in_a_token_refusal_never_reaches_the_error() {
    let key = "sk_live_settingSecret0123456789";
    let echoing = Canned::start(
        "127.0.0.1:0",
        400,
        format!(
            r#"{{"error": "invalid_request", "error_description": "api_key {key} is not valid"}}"#
        ),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let base = format!("http://127.0.0.1:{}", echoing.port());
    std::fs::write(
        dir.path().join("acme.toml"),
        format!(
            "display_name = \"Acme\"\nauth = \"oauth2\"\ndocs_url = \"https://acme.test/docs\"\n\
             default_sync_interval_secs = 3600\n\
             [[settings]]\nname = \"api_key\"\nlabel = \"API key\"\n\
             [oauth2]\nauthorize_url = \"{base}/a\"\ntoken_url = \"{base}/t\"\n\
             userinfo_url = \"{base}/me\"\n\
             token_params = {{ api_key = \"{{api_key}}\" }}\n\
             refresh_params = {{ api_key = \"{{api_key}}\" }}\n"
        ),
    )
    .unwrap();
    let config = Config {
        catalog_dir: Some(dir.path().to_owned()),
        oauth_clients: [(
            "acme".to_owned(),
            fleet_connectors::OAuthClient {
                client_id: Some("acme-client".to_owned()),
                client_secret: "acme-client-secret".into(),
            },
        )]
        .into(),
        ..config()
    };
    let id = ConnectorId::parse("acme").unwrap();
    let registry = Registry::new(&config).unwrap();
    let client = registry.oauth2(&id).unwrap();
    let values = fleet_connectors::Catalog::with_overrides(dir.path())
        .unwrap()
        .get(&id)
        .unwrap()
        .check_settings(&[("api_key".to_owned(), key.to_owned())].into())
        .unwrap();

    let refresh = client
        .refresh_with(&SecretString::from("refresh-token"), &values)
        .await
        .unwrap_err();
    let exchange = client
        .exchange_code_with(
            "code",
            &url::Url::parse("https://app.test/callback").unwrap(),
            None,
            &values,
        )
        .await
        .unwrap_err();

    assert_eq!(echoing.connections(), 2);
    for error in [refresh, exchange] {
        let shown = format!("{error} {error:?}");
        assert!(!shown.contains(key), "{shown}");
        assert!(shown.contains("[REDACTED]"), "{shown}");
    }
}

#[tokio::test]
async fn a_listing_of_empty_pages_without_end_hands_back_its_position_instead_of_looping() {
    let endless = Canned::start(
        "127.0.0.1:0",
        200,
        r#"{"data": [], "paging": {"cursors": {"after": "QVFI"}, "next": "https://graph.facebook.com/v22.0/me/adaccounts?after=QVFI"}}"#
            .to_owned(),
    )
    .await
    .unwrap();
    let graph = format!("http://127.0.0.1:{}/v22.0", endless.port());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("meta.toml"),
        format!(
            "[api_base_urls]\ngraph = \"{graph}\"\n\
             [oauth2]\nauthorize_url = \"{graph}/dialog/oauth\"\n\
             token_url = \"{graph}/oauth/access_token\"\nuserinfo_url = \"{graph}/me\"\n"
        ),
    )
    .unwrap();
    let meta = Registry::new(&Config {
        catalog_dir: Some(dir.path().to_owned()),
        ..config()
    })
    .unwrap()
    .get(&ConnectorId::parse("meta").unwrap())
    .unwrap();
    let credentials = bearer("access-token");

    let first = meta
        .sync_page(&credentials, "ad_insights", None)
        .await
        .unwrap();
    let asked = endless.connections();
    let second = meta
        .sync_page(&credentials, "ad_insights", first.next.as_ref())
        .await
        .unwrap();

    assert_eq!(
        asked, 21,
        "the listing's first page, then at most 20 empty ones per call"
    );
    assert!(first.records.is_empty() && second.records.is_empty());
    assert!(
        first.next.is_some() && second.next.is_some(),
        "the listing is not over: the position comes back, not `finished`"
    );
    assert_eq!(endless.connections(), 41);
}

#[tokio::test]
async fn an_organization_listing_of_empty_pages_without_end_hands_back_its_position() {
    let endless = Canned::start(
        "127.0.0.1:0",
        200,
        r#"{"elements": [], "paging": {"start": 0, "count": 10, "links": [{"rel": "next", "type": "application/json", "href": "/rest/organizationAcls?start=10"}]}}"#
            .to_owned(),
    )
    .await
    .unwrap();
    let api = format!("http://127.0.0.1:{}", endless.port());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("linkedin.toml"),
        format!(
            "page_size = 10\n[api_base_urls]\napi = \"{api}\"\n\
             [oauth2]\nauthorize_url = \"{api}/oauth/v2/authorization\"\n\
             token_url = \"{api}/oauth/v2/accessToken\"\nuserinfo_url = \"{api}/v2/userinfo\"\n"
        ),
    )
    .unwrap();
    let linkedin = Registry::new(&Config {
        catalog_dir: Some(dir.path().to_owned()),
        ..config()
    })
    .unwrap()
    .get(&ConnectorId::parse("linkedin").unwrap())
    .unwrap();
    let credentials = bearer("access-token");

    let page = linkedin
        .sync_page(&credentials, "follower_statistics", None)
        .await
        .unwrap();

    assert_eq!(
        endless.connections(),
        20,
        "one call reads at most 20 empty listing pages"
    );
    assert!(page.records.is_empty());
    assert!(
        page.next.is_some(),
        "the listing is not over: the position comes back, not `finished`"
    );
}

/// OAuth 2.0 credentials holding only the access token `token`.
fn bearer(token: &str) -> Credentials {
    Credentials::OAuth2 {
        access_token: SecretString::from(token),
        refresh_token: None,
        expires_at: None,
        scope: None,
        values: fleet_connectors::ConnectionValues::default(),
    }
}
