//! Connecting through a provider's consent page: `/oauth/authorize` and
//! `/oauth/callback` against the simulated Google, with the workers running.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use tower::ServiceExt as _;
use url::Url;

use crate::helpers::{REDIRECT_URI, TestGateway, token};

/// A browser's cookies for the gateway: what `Set-Cookie` stored (by name:
/// value and path), sent back as `Cookie` to the paths they are scoped to.
#[derive(Debug, Default, Clone)]
pub(crate) struct Browser {
    cookies: BTreeMap<String, (String, String)>,
}

impl Browser {
    /// Stores the `Set-Cookie` headers of a response; `Max-Age=0` deletes.
    fn store(&mut self, headers: &HeaderMap) {
        for set in headers.get_all(header::SET_COOKIE) {
            let set = set.to_str().unwrap();
            let mut parts = set.split(';').map(str::trim);
            let (name, value) = parts.next().unwrap().split_once('=').unwrap();
            let attributes: Vec<&str> = parts.collect();
            let path = attributes
                .iter()
                .find_map(|a| a.strip_prefix("Path="))
                .unwrap_or("/");
            if attributes.contains(&"Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies
                    .insert(name.to_owned(), (value.to_owned(), path.to_owned()));
            }
        }
    }

    /// The `Cookie` header for a request to `path`.
    fn cookie_for(&self, path: &str) -> Option<String> {
        let pairs: Vec<String> = self
            .cookies
            .iter()
            .filter(|(_, (_, scope))| path.starts_with(scope.as_str()))
            .map(|(name, (value, _))| format!("{name}={value}"))
            .collect();
        (!pairs.is_empty()).then(|| pairs.join("; "))
    }

    /// Sends `request` with this browser's cookies and stores the answer's.
    pub(crate) async fn send(
        &mut self,
        gateway: &TestGateway,
        mut request: Request<Body>,
    ) -> Answer {
        if let Some(cookie) = self.cookie_for(request.uri().path()) {
            request
                .headers_mut()
                .insert(header::COOKIE, cookie.parse().unwrap());
        }
        let response = gateway.app.clone().oneshot(request).await.unwrap();
        self.store(response.headers());
        let status = response.status();
        let headers = response.headers().clone();
        let location = headers.get(header::LOCATION).map(|location| {
            let base = Url::parse("https://dashboard.example.test").unwrap();
            base.join(location.to_str().unwrap()).unwrap()
        });
        Answer {
            status,
            headers,
            location,
        }
    }
}

/// What the gateway answered a browser.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    headers: HeaderMap,
    location: Option<Url>,
}

impl Answer {
    pub(crate) fn location(&self) -> &Url {
        self.location
            .as_ref()
            .unwrap_or_else(|| panic!("{} without a Location", self.status))
    }

    /// The `Set-Cookie` headers.
    fn set_cookies(&self) -> Vec<&str> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect()
    }
}

pub(crate) fn param(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

pub(crate) fn authorize_request(connector: &str, tenant: &str) -> Request<Body> {
    Request::builder()
        .uri(format!("/oauth/authorize/{connector}"))
        .header(header::AUTHORIZATION, format!("Bearer {}", token(tenant)))
        .body(Body::empty())
        .unwrap()
}

fn get(uri: &str) -> Request<Body> {
    Request::builder().uri(uri).body(Body::empty()).unwrap()
}

/// Follows the provider's consent page at `authorize` as a user who
/// consents; returns the provider's redirect back (to the redirect URI).
async fn provider_consents(authorize: &Url) -> Url {
    let provider = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(authorize.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(provider.status(), reqwest::StatusCode::FOUND);
    let back = Url::parse(provider.headers()["location"].to_str().unwrap()).unwrap();
    assert!(back.as_str().starts_with(REDIRECT_URI), "{back}");
    back
}

/// Starts a Google Analytics authorization as `tenant` in `browser` and
/// lets the simulated user consent; returns the provider's redirect back.
async fn consent(gateway: &TestGateway, browser: &mut Browser, tenant: &str) -> Url {
    let authorize = browser
        .send(gateway, authorize_request("google-analytics", tenant))
        .await;
    assert_eq!(authorize.status, StatusCode::FOUND);
    provider_consents(authorize.location()).await
}

/// The gateway's answer to the provider's redirect `back`, opened in
/// `browser`: the dashboard callback page it sends the browser to.
pub(crate) async fn callback(gateway: &TestGateway, browser: &mut Browser, back: &Url) -> Url {
    callback_answer(gateway, browser, back)
        .await
        .location()
        .clone()
}

async fn callback_answer(gateway: &TestGateway, browser: &mut Browser, back: &Url) -> Answer {
    let uri = format!("/oauth/callback?{}", back.query().unwrap_or_default());
    let answer = browser.send(gateway, get(&uri)).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert_eq!(answer.location().path(), "/callback");
    answer
}

/// `back` with `name=value` added to its query.
fn with_param(back: &Url, name: &str, value: &str) -> Url {
    let mut url = back.clone();
    url.query_pairs_mut().append_pair(name, value);
    url
}

async fn connections_of(gateway: &TestGateway, tenant: &str) -> serde_json::Value {
    gateway
        .call(Method::GET, "/api/connections", Some(tenant), None)
        .await
        .body["connections"]
        .clone()
}

#[tokio::test]
async fn consent_ends_in_a_synced_connection_and_the_state_cannot_be_replayed() {
    let gateway = TestGateway::start().await;
    let mut browser = Browser::default();

    let started = browser
        .send(&gateway, authorize_request("google-analytics", "acme"))
        .await;
    assert_eq!(started.status, StatusCode::FOUND);
    let authorize = started.location().clone();
    assert!(authorize.as_str().starts_with(&gateway.sim.google_url()));
    let state = param(&authorize, "state").expect("a state");
    assert!(state.len() >= 43, "{state}");
    assert!(param(&authorize, "code_challenge").is_some());
    assert_eq!(
        param(&authorize, "code_challenge_method").as_deref(),
        Some("S256")
    );
    assert_eq!(
        param(&authorize, "redirect_uri").as_deref(),
        Some(REDIRECT_URI)
    );
    assert_eq!(param(&authorize, "access_type").as_deref(), Some("offline"));
    // The flow is bound to this browser by an HttpOnly cookie for the
    // callback that lives as long as the state.
    let [binding] = started.set_cookies()[..] else {
        panic!("one binding cookie expected: {:?}", started.set_cookies());
    };
    for attribute in [
        "; Path=/oauth/callback",
        "; Max-Age=600",
        "; HttpOnly",
        "; SameSite=Lax",
        "; Secure",
    ] {
        assert!(binding.contains(attribute), "{attribute}: {binding}");
    }
    let name = binding.split_once('=').unwrap().0.to_owned();

    let back = provider_consents(&authorize).await;
    let answer = callback_answer(&gateway, &mut browser, &back).await;
    let page = answer.location();
    assert_eq!(
        param(page, "status").as_deref(),
        Some("connected"),
        "{page}"
    );
    assert!(
        answer
            .set_cookies()
            .iter()
            .any(|c| c.starts_with(&format!("{name}=;")) && c.contains("; Max-Age=0")),
        "the callback clears the binding: {:?}",
        answer.set_cookies()
    );
    assert!(browser.cookies.is_empty());
    assert_eq!(
        param(page, "connector").as_deref(),
        Some("google-analytics")
    );
    let id = param(page, "connection_id").unwrap();

    let synced = gateway.until_state("acme", &id, "synced").await;
    assert_eq!(synced["connector"], "google-analytics");
    assert!(synced["records_total"].as_u64().unwrap() > 0, "{synced}");
    assert!(synced["account"]["name"].is_string(), "{synced}");

    let replay = callback(&gateway, &mut browser, &back).await;
    assert_eq!(param(&replay, "status").as_deref(), Some("error"));
    let message = param(&replay, "message").unwrap();
    assert!(message.contains("already used"), "{message}");
    let list = gateway
        .call(Method::GET, "/api/connections", Some("acme"), None)
        .await;
    assert_eq!(list.body["connections"].as_array().unwrap().len(), 1);

    let other = gateway
        .call(
            Method::GET,
            &format!("/api/connections/{id}"),
            Some("globex"),
            None,
        )
        .await;
    assert_eq!(other.status, StatusCode::NOT_FOUND);

    // Disconnecting revokes the grant at Google and deletes the secret.
    let tenant = fleet_events::TenantId::parse("acme").unwrap();
    let connection = fleet_events::ConnectionId::parse(&id).unwrap();
    let stored = gateway.in_use(&tenant, &connection).await.unwrap();
    let fleet_connectors::Credentials::OAuth2 {
        refresh_token: Some(refresh_token),
        ..
    } = stored.value.clone()
    else {
        panic!("OAuth 2.0 credentials with a refresh token expected");
    };
    let gone = gateway
        .call(
            Method::DELETE,
            &format!("/api/connections/{id}"),
            Some("acme"),
            None,
        )
        .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    let google = gateway
        .connectors
        .oauth2(&fleet_events::ConnectorId::parse("google-analytics").unwrap())
        .unwrap();
    let refused = google.refresh(&refresh_token).await.unwrap_err();
    assert_eq!(
        refused.class(),
        fleet_connectors::ErrorClass::ReauthRequired,
        "{refused}"
    );
    let deleted = gateway
        .secrets
        .read_version::<fleet_connectors::Credentials>(&tenant, &connection, stored.version)
        .await;
    assert!(
        matches!(deleted, Err(fleet_secrets::Error::NotFound { .. })),
        "{deleted:?}"
    );
    gateway.stop().await;
}

#[tokio::test]
async fn trello_connects_through_oauth1_and_syncs_its_cards() {
    let gateway = TestGateway::start().await;
    let mut browser = Browser::default();

    let started = browser
        .send(&gateway, authorize_request("trello", "acme"))
        .await;
    assert_eq!(started.status, StatusCode::FOUND);
    let authorize = started.location().clone();
    assert!(authorize.as_str().starts_with(&gateway.sim.trello_url()));
    assert!(param(&authorize, "oauth_token").is_some());
    assert_eq!(param(&authorize, "expiration").as_deref(), Some("never"));
    let provider = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(authorize)
        .send()
        .await
        .unwrap();
    assert_eq!(provider.status(), reqwest::StatusCode::FOUND);
    let back = Url::parse(provider.headers()["location"].to_str().unwrap()).unwrap();
    assert!(back.as_str().starts_with(REDIRECT_URI), "{back}");
    assert!(param(&back, "oauth_verifier").is_some());

    let page = callback(&gateway, &mut browser, &back).await;
    assert_eq!(
        param(&page, "status").as_deref(),
        Some("connected"),
        "{page}"
    );
    let id = param(&page, "connection_id").unwrap();
    let synced = gateway.until_state("acme", &id, "synced").await;
    // Two boards and their 35 cards.
    assert_eq!(synced["records_total"], 37, "{synced}");
    let stored = gateway
        .in_use(
            &fleet_events::TenantId::parse("acme").unwrap(),
            &fleet_events::ConnectionId::parse(&id).unwrap(),
        )
        .await
        .unwrap();
    let fleet_connectors::Credentials::OAuth1 { token, .. } = stored.value else {
        panic!("OAuth 1.0a credentials expected");
    };
    let issued = gateway
        .sim
        .trello_token(secrecy::ExposeSecret::expose_secret(&token))
        .expect("a token Trello issued");
    assert_eq!(issued.member, "ada");
    assert_eq!(issued.expiration, "never");
    let token = secrecy::ExposeSecret::expose_secret(&token).to_owned();

    let replay = callback(&gateway, &mut browser, &back).await;
    assert_eq!(param(&replay, "status").as_deref(), Some("error"));

    // Disconnecting deletes the token at Trello.
    let gone = gateway
        .call(
            Method::DELETE,
            &format!("/api/connections/{id}"),
            Some("acme"),
            None,
        )
        .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    assert!(gateway.sim.trello_token(&token).is_none());
    gateway.stop().await;
}

#[tokio::test]
async fn dashboards_get_the_authorize_url_as_json() {
    let gateway = TestGateway::start().await;

    let request = Request::builder()
        .uri("/oauth/authorize/google-analytics")
        .header(header::AUTHORIZATION, format!("Bearer {}", token("acme")))
        .header(header::ACCEPT, "application/json")
        .body(Body::empty())
        .unwrap();
    let mut browser = Browser::default();
    let response = gateway.app.clone().oneshot(request).await.unwrap();
    browser.store(response.headers());
    let status = response.status();
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();

    assert_eq!(status, StatusCode::OK);
    let url = Url::parse(body["authorize_url"].as_str().unwrap()).unwrap();
    assert!(param(&url, "state").is_some());
    // A dashboard that fetches the URL gets the binding cookie too, so the
    // browser that then navigates there can finish the flow.
    assert_eq!(browser.cookies.len(), 1, "{browser:?}");
    let back = provider_consents(&url).await;
    let page = callback(&gateway, &mut browser, &back).await;
    assert_eq!(
        param(&page, "status").as_deref(),
        Some("connected"),
        "{page}"
    );
    gateway.stop().await;
}

#[tokio::test]
async fn an_expired_state_is_refused() {
    let gateway = TestGateway::start_with(fleet_gateway::Config {
        allow_http_sites: true,
        oauth: fleet_gateway::OAuthConfig {
            redirect_uri: Some(Url::parse(REDIRECT_URI).unwrap()),
            state_ttl_secs: 1,
            ..fleet_gateway::OAuthConfig::default()
        },
        ..fleet_gateway::Config::default()
    })
    .await;

    let mut browser = Browser::default();
    let back = consent(&gateway, &mut browser, "acme").await;
    // The state's lifetime is one second; wait it out.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let page = callback(&gateway, &mut browser, &back).await;

    assert_eq!(param(&page, "status").as_deref(), Some("error"));
    let message = param(&page, "message").unwrap();
    assert!(message.contains("expired"), "{message}");
    let list = gateway
        .call(Method::GET, "/api/connections", Some("acme"), None)
        .await;
    assert_eq!(list.body["connections"], serde_json::json!([]));
    gateway.stop().await;
}

#[tokio::test]
async fn a_denied_consent_and_a_forged_state_come_back_as_readable_errors() {
    let gateway = TestGateway::start().await;
    let mut browser = Browser::default();
    let started = browser
        .send(&gateway, authorize_request("google-analytics", "acme"))
        .await;
    let state = param(started.location(), "state").unwrap();

    let denied = callback(
        &gateway,
        &mut browser,
        &Url::parse(&format!("{REDIRECT_URI}?error=access_denied&state={state}")).unwrap(),
    )
    .await;
    assert_eq!(param(&denied, "status").as_deref(), Some("error"));
    assert_eq!(
        param(&denied, "connector").as_deref(),
        Some("google-analytics")
    );
    assert!(
        param(&denied, "message")
            .unwrap()
            .starts_with("You declined access on Google Analytics"),
        "{denied}"
    );

    for query in [
        "code=abc&state=forged-state",
        "code=abc",
        "code=abc&state=not%20a%20key",
    ] {
        let page = callback(
            &gateway,
            &mut browser,
            &Url::parse(&format!("{REDIRECT_URI}?{query}")).unwrap(),
        )
        .await;
        assert_eq!(param(&page, "status").as_deref(), Some("error"), "{query}");
        assert!(param(&page, "message").unwrap().contains("Start again"));
    }
    gateway.stop().await;
}

#[tokio::test]
async fn authorize_refuses_what_it_cannot_start() {
    let gateway = TestGateway::start().await;

    let no_token = gateway.send(get("/oauth/authorize/google-analytics")).await;
    assert_eq!(no_token.status, StatusCode::UNAUTHORIZED);

    let unknown = gateway.send(authorize_request("myspace", "acme")).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert!(
        unknown.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("GET /api/connectors")
    );

    let manual = gateway.send(authorize_request("wordpress", "acme")).await;
    assert_eq!(manual.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        manual.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("POST /api/connections")
    );

    // LinkedIn is in the catalog, but this platform has no client for it.
    let unconfigured = gateway.send(authorize_request("linkedin", "acme")).await;
    assert_eq!(unconfigured.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(unconfigured.body["error"]["code"], "not_configured");
    gateway.stop().await;
}

#[tokio::test]
async fn without_a_redirect_uri_the_oauth_routes_say_what_to_configure() {
    let gateway = TestGateway::start_with(fleet_gateway::Config::default()).await;

    let reply = gateway
        .send(authorize_request("google-analytics", "acme"))
        .await;

    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        reply.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("FLEET_GATEWAY__OAUTH__REDIRECT_URI")
    );
    gateway.stop().await;
}

#[tokio::test]
async fn a_consent_link_opened_in_another_browser_connects_nothing() {
    let gateway = TestGateway::start().await;
    // Mallory starts a flow and sends the consent page to someone else,
    // who consents in their own browser.
    let mut mallory = Browser::default();
    let back = consent(&gateway, &mut mallory, "mallory").await;
    let mut victim = Browser::default();

    let answer = callback_answer(&gateway, &mut victim, &back).await;

    let page = answer.location();
    assert_eq!(param(page, "status").as_deref(), Some("error"), "{page}");
    assert_eq!(
        param(page, "connector").as_deref(),
        Some("google-analytics")
    );
    let message = param(page, "message").unwrap();
    assert!(
        message.contains("started in another browser") && message.contains("Start again"),
        "{message}"
    );
    assert!(
        answer.set_cookies().iter().any(|c| c.contains("Max-Age=0")),
        "the callback clears the binding whatever the outcome: {:?}",
        answer.set_cookies()
    );
    assert_eq!(
        connections_of(&gateway, "mallory").await,
        serde_json::json!([])
    );

    // A forged cookie of the right name but another value fares no better.
    let mut forger = Browser::default();
    let (name, (value, path)) = mallory.cookies.iter().next().unwrap();
    let forged: String = value.chars().rev().collect();
    forger.cookies.insert(name.clone(), (forged, path.clone()));
    let page = callback(&gateway, &mut forger, &back).await;
    assert!(
        param(&page, "message")
            .unwrap()
            .contains("started in another browser"),
        "{page}"
    );
    assert_eq!(
        connections_of(&gateway, "mallory").await,
        serde_json::json!([])
    );

    // Neither attempt used up the flow: the browser that started it can
    // still finish it.
    let page = callback(&gateway, &mut mallory, &back).await;
    assert_eq!(
        param(&page, "status").as_deref(),
        Some("connected"),
        "{page}"
    );
    gateway.stop().await;
}

#[tokio::test]
async fn the_callback_checks_the_providers_issuer_where_it_is_configured() {
    const ISSUER: &str = "https://accounts.sim.example";
    let gateway = TestGateway::start_with(fleet_gateway::Config {
        allow_http_sites: true,
        oauth: fleet_gateway::OAuthConfig {
            redirect_uri: Some(Url::parse(REDIRECT_URI).unwrap()),
            providers: [(
                // As it arrives from FLEET_GATEWAY__OAUTH__PROVIDERS__GOOGLE_ANALYTICS__*.
                "google_analytics".to_owned(),
                fleet_gateway::ProviderConfig {
                    issuer: Some(ISSUER.to_owned()),
                    authorization_response_iss_parameter_supported: true,
                },
            )]
            .into(),
            ..fleet_gateway::OAuthConfig::default()
        },
        ..fleet_gateway::Config::default()
    })
    .await;
    let mut browser = Browser::default();

    // A response from another issuer: a mix-up, refused.
    let back = consent(&gateway, &mut browser, "acme").await;
    let page = callback(
        &gateway,
        &mut browser,
        &with_param(&back, "iss", "https://evil.example"),
    )
    .await;
    assert_eq!(param(&page, "status").as_deref(), Some("error"));
    let message = param(&page, "message").unwrap();
    assert!(
        message.contains("did not come from Google Analytics 4"),
        "{message}"
    );

    // No `iss` from a provider that always sends one: refused too.
    let back = consent(&gateway, &mut browser, "acme").await;
    let page = callback(&gateway, &mut browser, &back).await;
    assert_eq!(param(&page, "status").as_deref(), Some("error"));
    let message = param(&page, "message").unwrap();
    assert!(message.contains("did not say it came from"), "{message}");
    assert_eq!(
        connections_of(&gateway, "acme").await,
        serde_json::json!([])
    );

    // The right issuer connects.
    let back = consent(&gateway, &mut browser, "acme").await;
    let page = callback(&gateway, &mut browser, &with_param(&back, "iss", ISSUER)).await;
    assert_eq!(
        param(&page, "status").as_deref(),
        Some("connected"),
        "{page}"
    );
    gateway.stop().await;
}

#[tokio::test]
async fn the_catalogs_issuer_is_checked_without_gateway_settings() {
    // The built-in Google entry names Google's issuer; the simulator sends
    // no `iss`, which Google's entry does not require.
    let gateway = TestGateway::start().await;
    let mut browser = Browser::default();

    let back = consent(&gateway, &mut browser, "acme").await;
    let page = callback(
        &gateway,
        &mut browser,
        &with_param(&back, "iss", "https://evil.example"),
    )
    .await;
    assert_eq!(param(&page, "status").as_deref(), Some("error"), "{page}");

    let back = consent(&gateway, &mut browser, "acme").await;
    let page = callback(
        &gateway,
        &mut browser,
        &with_param(&back, "iss", "https://accounts.google.com"),
    )
    .await;
    assert_eq!(
        param(&page, "status").as_deref(),
        Some("connected"),
        "{page}"
    );
    gateway.stop().await;
}

#[tokio::test]
async fn declining_trellos_consent_says_so_and_connects_nothing() {
    let gateway = TestGateway::start().await;
    let mut browser = Browser::default();
    let started = browser
        .send(&gateway, authorize_request("trello", "acme"))
        .await;
    let mut authorize = started.location().clone();
    authorize.query_pairs_mut().append_pair("consent", "denied");

    let provider = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(authorize)
        .send()
        .await
        .unwrap();
    let back = Url::parse(provider.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(
        param(&back, "oauth_problem").as_deref(),
        Some("user_refused")
    );
    let page = callback(&gateway, &mut browser, &back).await;

    assert_eq!(param(&page, "status").as_deref(), Some("error"), "{page}");
    let message = param(&page, "message").unwrap();
    assert!(message.contains("You declined access"), "{message}");
    assert_eq!(
        connections_of(&gateway, "acme").await,
        serde_json::json!([])
    );
    gateway.stop().await;
}

/// An authorize request for `connector` as `tenant` with `query`.
pub(crate) fn authorize_with(connector: &str, tenant: &str, query: &str) -> Request<Body> {
    Request::builder()
        .uri(format!("/oauth/authorize/{connector}?{query}"))
        .header(header::AUTHORIZATION, format!("Bearer {}", token(tenant)))
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn settings_are_checked_at_authorize_and_kept_with_the_connection() {
    let gateway = TestGateway::start().await;

    for (query, message) in [
        ("", "tenant (Acme tenant) is required"),
        (
            "tenant=evil.test%2Fx",
            "tenant (Acme tenant) does not look right: The name before .acme.example",
        ),
        ("tenant=acme&region=eu", "region is not a setting of Acme"),
    ] {
        let refused = gateway.send(authorize_with("acme", "globex", query)).await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{query}");
        let error = &refused.body["error"];
        assert!(
            error["message"].as_str().unwrap().contains(message),
            "{query}: {error}"
        );
    }
    let listed = gateway
        .call(Method::GET, "/api/connectors", Some("globex"), None)
        .await;
    let acme = listed.body["connectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "acme")
        .unwrap()
        .clone();
    assert_eq!(acme["settings"][0]["name"], "tenant");
    assert_eq!(acme["settings"][0]["pattern"], "[a-z0-9][a-z0-9-]{0,30}");

    let mut browser = Browser::default();
    let started = browser
        .send(&gateway, authorize_with("acme", "globex", "tenant=acme"))
        .await;
    assert_eq!(started.status, StatusCode::FOUND);
    assert!(
        started
            .location()
            .as_str()
            .starts_with(&gateway.sim.acme_url("acme")),
        "{}",
        started.location()
    );
    let back = provider_consents(started.location()).await;
    let page = callback(&gateway, &mut browser, &back).await;
    assert_eq!(
        param(&page, "status").as_deref(),
        Some("connected"),
        "{page}"
    );
    let id = param(&page, "connection_id").unwrap();

    // The generic connector reads the API at the kept instance URL.
    let synced = gateway.until_state("globex", &id, "synced").await;
    assert_eq!(synced["account"]["id"], "acme|ada", "{synced}");
    let instance_url = format!("{}/api", gateway.sim.acme_url("acme"));
    assert!(!synced.to_string().contains(&instance_url), "{synced}");
    let stored = gateway
        .in_use(
            &fleet_events::TenantId::parse("globex").unwrap(),
            &fleet_events::ConnectionId::parse(&id).unwrap(),
        )
        .await
        .unwrap();
    let values = stored.value.values();
    assert_eq!(values["tenant"], "acme");
    assert_eq!(values["instance_url"], instance_url);
    let requests = gateway.sim.acme_token_requests();
    assert!(requests.iter().all(|r| r.basic_auth), "{requests:?}");
    gateway.stop().await;
}

#[tokio::test]
async fn a_provider_that_sends_the_code_under_another_name_connects_with_it() {
    let gateway = TestGateway::start_with_catalog(crate::helpers::Providers {
        acme_variants: vec![(
            "acme-coded".to_owned(),
            "callback_code_param = \"acme_code\"".to_owned(),
        )],
        ..Default::default()
    })
    .await;
    let start = async |browser: &mut Browser| {
        let request = authorize_with("acme-coded", "globex", "tenant=acme");
        let started = browser.send(&gateway, request).await;
        assert_eq!(started.status, StatusCode::FOUND);
        provider_consents(started.location()).await
    };

    // Under its standard name, the code is not this provider's.
    let mut browser = Browser::default();
    let back = start(&mut browser).await;
    let page = callback(&gateway, &mut browser, &back).await;
    assert_eq!(param(&page, "status").as_deref(), Some("error"), "{page}");
    assert!(
        param(&page, "message")
            .unwrap()
            .contains("without an authorization code"),
        "{page}"
    );

    let mut browser = Browser::default();
    let back = start(&mut browser).await;
    let mut renamed = back.clone();
    renamed.query_pairs_mut().clear().extend_pairs(
        back.query_pairs()
            .map(|(k, v)| (if k == "code" { "acme_code".into() } else { k }, v)),
    );
    let page = callback(&gateway, &mut browser, &renamed).await;
    assert_eq!(
        param(&page, "status").as_deref(),
        Some("connected"),
        "{page}"
    );
    let id = param(&page, "connection_id").unwrap();
    let synced = gateway.until_state("globex", &id, "synced").await;
    assert_eq!(synced["account"]["id"], "acme|ada", "{synced}");
    gateway.stop().await;
}
