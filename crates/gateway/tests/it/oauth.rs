//! Connecting through a provider's consent page: `/oauth/authorize` and
//! `/oauth/callback` against the simulated Google, with the workers running.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use tower::ServiceExt as _;
use url::Url;

use crate::helpers::{REDIRECT_URI, TestGateway, token};

/// The status and `Location` of a redirect from the gateway.
async fn redirect_of(gateway: &TestGateway, request: Request<Body>) -> (StatusCode, Url) {
    let response = gateway.app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let location = response
        .headers()
        .get(header::LOCATION)
        .unwrap_or_else(|| panic!("{status} without a Location"))
        .to_str()
        .unwrap();
    let base = Url::parse("https://dashboard.example.test").unwrap();
    (status, base.join(location).unwrap())
}

fn param(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

fn authorize_request(connector: &str, tenant: &str) -> Request<Body> {
    Request::builder()
        .uri(format!("/oauth/authorize/{connector}"))
        .header(header::AUTHORIZATION, format!("Bearer {}", token(tenant)))
        .body(Body::empty())
        .unwrap()
}

fn get(uri: &str) -> Request<Body> {
    Request::builder().uri(uri).body(Body::empty()).unwrap()
}

/// Starts an authorization as `tenant` and lets the simulated user
/// consent; returns the provider's redirect back (to the redirect URI).
async fn consent(gateway: &TestGateway, tenant: &str) -> Url {
    let (status, authorize) =
        redirect_of(gateway, authorize_request("google-analytics", tenant)).await;
    assert_eq!(status, StatusCode::FOUND);
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
    back
}

/// The gateway's answer to the provider's redirect `back`: the dashboard
/// callback page it sends the browser to.
async fn callback(gateway: &TestGateway, back: &Url) -> Url {
    let uri = format!("/oauth/callback?{}", back.query().unwrap_or_default());
    let (status, page) = redirect_of(gateway, get(&uri)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(page.path(), "/callback");
    page
}

#[tokio::test]
async fn consent_ends_in_a_synced_connection_and_the_state_cannot_be_replayed() {
    let gateway = TestGateway::start().await;

    let (status, authorize) =
        redirect_of(&gateway, authorize_request("google-analytics", "acme")).await;
    assert_eq!(status, StatusCode::FOUND);
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

    let back = consent(&gateway, "acme").await;
    let page = callback(&gateway, &back).await;
    assert_eq!(
        param(&page, "status").as_deref(),
        Some("connected"),
        "{page}"
    );
    assert_eq!(
        param(&page, "connector").as_deref(),
        Some("google-analytics")
    );
    let id = param(&page, "connection_id").unwrap();

    let synced = gateway.until_state("acme", &id, "synced").await;
    assert_eq!(synced["connector"], "google-analytics");
    assert!(synced["records_total"].as_u64().unwrap() > 0, "{synced}");
    assert!(synced["account"]["name"].is_string(), "{synced}");

    let replay = callback(&gateway, &back).await;
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
    let stored = gateway
        .secrets
        .read_active::<fleet_connectors::Credentials>(&tenant, &connection)
        .await
        .unwrap();
    let fleet_connectors::Credentials::OAuth2 {
        refresh_token: Some(refresh_token),
        ..
    } = stored.value
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
    assert!(matches!(
        gateway
            .secrets
            .read_active::<fleet_connectors::Credentials>(&tenant, &connection)
            .await,
        Err(fleet_secrets::Error::NotFound { .. })
    ));
    gateway.stop().await;
}

#[tokio::test]
async fn trello_connects_through_oauth1_and_syncs_its_cards() {
    let gateway = TestGateway::start().await;

    let (status, authorize) = redirect_of(&gateway, authorize_request("trello", "acme")).await;
    assert_eq!(status, StatusCode::FOUND);
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

    let page = callback(&gateway, &back).await;
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
        .secrets
        .read_active::<fleet_connectors::Credentials>(
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

    let replay = callback(&gateway, &back).await;
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
    let reply = gateway.send(request).await;

    assert_eq!(reply.status, StatusCode::OK);
    let url = Url::parse(reply.body["authorize_url"].as_str().unwrap()).unwrap();
    assert!(param(&url, "state").is_some());
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

    let back = consent(&gateway, "acme").await;
    // The state's lifetime is one second; wait it out.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let page = callback(&gateway, &back).await;

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
    let (_, authorize) = redirect_of(&gateway, authorize_request("google-analytics", "acme")).await;
    let state = param(&authorize, "state").unwrap();

    let denied = callback(
        &gateway,
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
