//! The generic OAuth 2.0 flows of catalog entries against a real,
//! standards-compliant authorization server: panva's `oidc-provider`
//! (npm, installed by `scripts/setup`), started by
//! [`fleet_testkit::OAuthServer`]. It requires PKCE, rotates refresh tokens
//! and detects their reuse, checks each client's registered authentication
//! method, revokes (RFC 7009), and answers userinfo.
//!
//! Not covered here: JSON token bodies (`token_body = "json"`). RFC 6749
//! token endpoints take form bodies only, and so does this server; the
//! simulator's Acme provider is what answers JSON bodies
//! (`settings_are_checked_at_authorize_and_kept_with_the_connection` in
//! `oauth.rs`, and the connectors' tests).

use std::time::Duration;

use axum::http::{Method, StatusCode};
use fleet_connectors::{Credentials, OAuthClient};
use fleet_events::{ConnectionId, TenantId};
use fleet_secrets::Stored;
use fleet_testkit::{OAuthServer, OAuthServerClient, OAuthServerOptions};
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::Value;

use crate::helpers::{DEADLINE, Providers, REDIRECT_URI, TestGateway};
use crate::oauth::{Browser, authorize_request, callback, param};

const TENANT: &str = "acme";

/// An authorization server whose access tokens live `ttl`.
async fn server(ttl: Duration) -> OAuthServer {
    OAuthServer::start(&OAuthServerOptions {
        redirect_uri: REDIRECT_URI.to_owned(),
        access_token_ttl: ttl,
    })
    .await
}

/// A catalog entry for `server` as an operator writes one from its
/// discovery document: the client authenticates as `client_auth` says,
/// and `extra` holds more keys of `[oauth2]`.
fn entry(server: &OAuthServer, client_auth: &str, extra: &str) -> String {
    let issuer = server.issuer();
    format!(
        r#"display_name = "Example ID"
auth = "oauth2"
docs_url = "https://id.example.test/docs"
default_sync_interval_secs = 3600

[oauth2]
authorize_url = "{authorize}"
token_url = "{token}"
revoke_url = "{revoke}"
userinfo_url = "{userinfo}"
scopes = ["openid", "profile", "email", "offline_access"]
authorize_params = {{ prompt = "consent" }}
pkce = true
issuer = "{issuer}"
authorization_response_iss_parameter_supported = true
client_auth = "{client_auth}"
{extra}
"#,
        authorize = server.authorize_url(),
        token = server.token_url(),
        revoke = server.revocation_url(),
        userinfo = server.userinfo_url(),
    )
}

/// One catalog entry for the server: its id, the server's client it
/// uses, its `client_auth` and more keys of `[oauth2]`.
struct Entry<'a> {
    id: &'a str,
    client: OAuthServerClient,
    client_auth: &'a str,
    extra: &'a str,
}

impl<'a> Entry<'a> {
    /// Entry `id` for `client`, authenticating as the client is registered.
    fn new(id: &'a str, client: OAuthServerClient) -> Self {
        Self {
            id,
            client,
            client_auth: client.auth_method,
            extra: "",
        }
    }
}

/// The catalog entries, each with its client configured as
/// `FLEET_CONNECTORS__OAUTH_CLIENTS__<ID>__*` would.
fn providers(server: &OAuthServer, entries: &[Entry<'_>]) -> Providers {
    Providers {
        entries: entries
            .iter()
            .map(|e| (e.id.to_owned(), entry(server, e.client_auth, e.extra)))
            .collect(),
        clients: entries
            .iter()
            .map(|e| {
                let client = OAuthClient {
                    client_id: Some(e.client.id.to_owned()),
                    client_secret: SecretString::from(e.client.secret),
                };
                (e.id.to_owned(), client)
            })
            .collect(),
        acme_variants: Vec::new(),
    }
}

/// Connects `connector` as a user would: the gateway's authorize route,
/// the server's login and consent, the gateway's callback. Returns the
/// dashboard page the callback sends the browser to.
async fn connect(gateway: &TestGateway, server: &OAuthServer, connector: &str) -> url::Url {
    let mut browser = Browser::default();
    let started = browser
        .send(gateway, authorize_request(connector, TENANT))
        .await;
    assert_eq!(started.status, StatusCode::FOUND);
    let authorize = started.location().clone();
    assert!(
        authorize
            .as_str()
            .starts_with(server.authorize_url().as_str()),
        "{authorize}"
    );
    let back = server.consent(&authorize).await;
    assert!(back.as_str().starts_with(REDIRECT_URI), "{back}");
    callback(gateway, &mut browser, &back).await
}

/// Connects `connector` and returns the new connection's id, once the
/// callback said it is connected.
async fn connected(gateway: &TestGateway, server: &OAuthServer, connector: &str) -> String {
    let page = connect(gateway, server, connector).await;
    assert_eq!(
        param(&page, "status").as_deref(),
        Some("connected"),
        "{page}"
    );
    param(&page, "connection_id").unwrap()
}

async fn stored(gateway: &TestGateway, id: &str) -> Stored<Credentials> {
    gateway
        .in_use(
            &TenantId::parse(TENANT).unwrap(),
            &ConnectionId::parse(id).unwrap(),
        )
        .await
        .unwrap()
}

/// The access and refresh token of OAuth 2.0 credentials.
fn tokens(credentials: &Credentials) -> (String, String) {
    let Credentials::OAuth2 {
        access_token,
        refresh_token: Some(refresh_token),
        ..
    } = credentials
    else {
        panic!("OAuth 2.0 credentials with a refresh token expected");
    };
    (
        access_token.expose_secret().to_owned(),
        refresh_token.expose_secret().to_owned(),
    )
}

/// What the server's userinfo endpoint answers `access_token`.
async fn userinfo(server: &OAuthServer, access_token: &str) -> reqwest::StatusCode {
    reqwest::Client::new()
        .get(server.userinfo_url())
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap()
        .status()
}

/// The server's answer to a refresh with `refresh_token` by `client`:
/// status and JSON body.
async fn refresh_at_server(
    server: &OAuthServer,
    client: OAuthServerClient,
    refresh_token: &str,
) -> (reqwest::StatusCode, Value) {
    let params = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
    ];
    let response = as_client(server.token_url(), client, &params)
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

/// Whether the server's introspection endpoint says `token` is active.
async fn active(server: &OAuthServer, client: OAuthServerClient, token: &str) -> bool {
    let response: Value = as_client(server.introspection_url(), client, &[("token", token)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    response["active"].as_bool().unwrap()
}

/// A form POST of `params` to `url`, authenticated as `client` is
/// registered to: HTTP Basic, or its id and secret in the form.
fn as_client(
    url: url::Url,
    client: OAuthServerClient,
    params: &[(&str, &str)],
) -> reqwest::RequestBuilder {
    let request = reqwest::Client::new().post(url);
    let mut params = params.to_vec();
    let request = if client.auth_method == "client_secret_basic" {
        let secret = form_encode(client.secret);
        request.basic_auth(form_encode(client.id), Some(secret))
    } else {
        params.extend([("client_id", client.id), ("client_secret", client.secret)]);
        request
    };
    request.form(&params)
}

/// RFC 6749 2.3.1: HTTP Basic credentials are form-urlencoded first.
fn form_encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// Disconnects connection `id` of [`TENANT`].
async fn disconnect(gateway: &TestGateway, id: &str) {
    let gone = gateway
        .call(
            Method::DELETE,
            &format!("/api/connections/{id}"),
            Some(TENANT),
            None,
        )
        .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT, "{:?}", gone.body);
}

/// Asks for a sync of connection `id` of [`TENANT`] now.
async fn sync_now(gateway: &TestGateway, id: &str) {
    let accepted = gateway
        .call(
            Method::POST,
            &format!("/api/connections/{id}/sync"),
            Some(TENANT),
            None,
        )
        .await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED, "{:?}", accepted.body);
}

/// Waits until `id` has synced again after `before` (an earlier answer of
/// the connection), and returns the connection.
async fn synced_again(gateway: &TestGateway, id: &str, before: &Value) -> Value {
    gateway
        .until_connection(TENANT, id, "no second sync", |c| {
            c["state"] == "synced" && c["last_sync_at"] != before["last_sync_at"]
        })
        .await
}

/// Waits until the server refuses the access token connection `id` uses
/// (it expired), asks for a sync, and returns the connection once synced
/// again after `first_sync` with the credentials it renewed: a later
/// version with another access token.
async fn renewed_once_expired(
    gateway: &TestGateway,
    server: &OAuthServer,
    id: &str,
    first_sync: &Value,
) -> (Value, Stored<Credentials>) {
    let first = stored(gateway, id).await;
    let (old_access, _) = tokens(&first.value);
    until("the server refuses the first access token", async || {
        userinfo(server, &old_access).await == reqwest::StatusCode::UNAUTHORIZED
    })
    .await;
    sync_now(gateway, id).await;
    let synced = synced_again(gateway, id, first_sync).await;
    assert_eq!(synced["last_error"], Value::Null, "{synced}");
    let renewed = stored(gateway, id).await;
    assert!(renewed.version > first.version);
    assert_ne!(tokens(&renewed.value).0, old_access);
    (synced, renewed)
}

/// Waits until `holds` is true, up to [`DEADLINE`].
async fn until<F: Future<Output = bool>>(what: &str, mut holds: impl FnMut() -> F) {
    fleet_testkit::eventually(DEADLINE, what, || {
        let held = holds();
        async move { held.await.then_some(()) }
    })
    .await;
}

#[tokio::test]
async fn a_real_servers_code_flow_with_pkce_connects_syncs_and_revokes_on_disconnect() {
    let server = server(Duration::from_secs(3600)).await;
    let client = OAuthServer::POST_CLIENT;
    let gateway =
        TestGateway::start_with_catalog(providers(&server, &[Entry::new("example-id", client)]))
            .await;

    let id = connected(&gateway, &server, "example-id").await;

    let synced = gateway.until_state(TENANT, &id, "synced").await;
    let account = OAuthServer::ACCOUNT;
    assert_eq!(synced["account"]["id"], account.login, "{synced}");
    assert_eq!(synced["account"]["name"], account.name, "{synced}");
    assert_eq!(synced["records_total"], 1, "{synced}");
    let (access_token, refresh_token) = tokens(&stored(&gateway, &id).await.value);
    assert_eq!(
        userinfo(&server, &access_token).await,
        reqwest::StatusCode::OK
    );
    let listed = gateway
        .call(Method::GET, "/api/connections", Some(TENANT), None)
        .await
        .body
        .to_string();
    for secret in [client.secret, &access_token, &refresh_token] {
        assert!(!listed.contains(secret), "a credential in {listed}");
    }

    // Disconnecting revokes the grant at the server: neither token works
    // there any more.
    disconnect(&gateway, &id).await;
    assert!(!active(&server, client, &refresh_token).await);
    assert_eq!(
        userinfo(&server, &access_token).await,
        reqwest::StatusCode::UNAUTHORIZED
    );
    let (status, refused) = refresh_at_server(&server, client, &refresh_token).await;
    assert_eq!(status, reqwest::StatusCode::BAD_REQUEST, "{refused}");
    assert_eq!(refused["error"], "invalid_grant", "{refused}");
    gateway.stop().await;
}

#[tokio::test]
async fn basic_and_body_client_authentication_each_connect_as_registered() {
    let server = server(Duration::from_secs(3600)).await;
    let basic = OAuthServer::BASIC_CLIENT;
    let gateway = TestGateway::start_with_catalog(providers(
        &server,
        &[
            Entry::new("example-basic", basic),
            Entry::new("example-post", OAuthServer::POST_CLIENT),
            // The Basic client's credentials sent in the body: a server
            // must refuse a client authenticating other than registered.
            Entry {
                client_auth: "client_secret_post",
                ..Entry::new("example-wrong", basic)
            },
        ],
    ))
    .await;

    let mut ids = Vec::new();
    for connector in ["example-basic", "example-post"] {
        let id = connected(&gateway, &server, connector).await;
        let synced = gateway.until_state(TENANT, &id, "synced").await;
        assert_eq!(
            synced["account"]["id"],
            OAuthServer::ACCOUNT.login,
            "{connector}: {synced}"
        );
        ids.push(id);
    }
    // Revocation authenticates with HTTP Basic too.
    let (_, refresh_token) = tokens(&stored(&gateway, &ids[0]).await.value);
    assert!(active(&server, basic, &refresh_token).await);
    disconnect(&gateway, &ids[0]).await;
    assert!(!active(&server, basic, &refresh_token).await);

    let page = connect(&gateway, &server, "example-wrong").await;
    assert_eq!(param(&page, "status").as_deref(), Some("error"), "{page}");
    let message = param(&page, "message").unwrap();
    assert!(
        message.contains("Example ID did not accept the sign-in")
            && message.contains("invalid_client"),
        "{message}"
    );
    assert!(!message.contains(basic.secret), "{message}");
    let listed = gateway
        .call(Method::GET, "/api/connections", Some(TENANT), None)
        .await;
    let connectors: Vec<&str> = listed.body["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["connector"].as_str().unwrap())
        .collect();
    assert_eq!(connectors, ["example-post"]);
    gateway.stop().await;
}

#[tokio::test]
async fn an_expired_access_token_is_renewed_with_a_rotated_refresh_token_and_reuse_is_caught() {
    // Access tokens live 4 s (long enough for the first sync on a busy
    // machine) and are renewed within 1 s of expiry; the client
    // authenticates with HTTP Basic, so refreshes do too.
    let server = server(Duration::from_secs(4)).await;
    let client = OAuthServer::BASIC_CLIENT;
    let gateway = TestGateway::start_with_catalog(providers(
        &server,
        &[Entry {
            extra: "token_expiry_margin_secs = 1",
            ..Entry::new("example-id", client)
        }],
    ))
    .await;
    let id = connected(&gateway, &server, "example-id").await;
    let first_sync = gateway.until_state(TENANT, &id, "synced").await;
    let (_, old_refresh) = tokens(&stored(&gateway, &id).await.value);

    // The access token expires at the server; the next sync renews it.
    let (second_sync, renewed) = renewed_once_expired(&gateway, &server, &id, &first_sync).await;
    assert_eq!(second_sync["account"]["id"], OAuthServer::ACCOUNT.login);
    let (new_access, new_refresh) = tokens(&renewed.value);
    assert_ne!(
        new_refresh, old_refresh,
        "the server rotates refresh tokens"
    );

    // The old refresh token is dead: presenting it again is refused, and
    // the server takes it for a stolen token and revokes the grant.
    let (status, refused) = refresh_at_server(&server, client, &old_refresh).await;
    assert_eq!(status, reqwest::StatusCode::BAD_REQUEST, "{refused}");
    assert_eq!(refused["error"], "invalid_grant", "{refused}");
    assert!(!active(&server, client, &new_refresh).await);

    // So the connection's next sync asks its user to reconnect.
    sync_now(&gateway, &id).await;
    let row = gateway.until_state(TENANT, &id, "reauth_required").await;
    let error = row["last_error"].as_str().unwrap();
    assert!(error.contains("invalid_grant"), "{error}");
    for secret in [&old_refresh, &new_refresh, &new_access] {
        assert!(!row.to_string().contains(secret.as_str()), "{row}");
    }
    gateway.stop().await;
}

/// A provider without a userinfo endpoint, checked at its token endpoint
/// only: it connects through the real server's code flow, each sync
/// renews the access token before it expires, and a grant the server
/// revoked shows at the next renewal.
#[tokio::test]
async fn a_token_only_entry_connects_renews_and_notices_a_revoked_grant_at_renewal() {
    let server = server(Duration::from_secs(4)).await;
    let client = OAuthServer::BASIC_CLIENT;
    let mut providers = providers(
        &server,
        &[Entry {
            extra: "token_expiry_margin_secs = 1\ntoken_only = true",
            ..Entry::new("example-grant", client)
        }],
    );
    for (_, text) in &mut providers.entries {
        *text = text.replace(
            &format!("userinfo_url = \"{}\"\n", server.userinfo_url()),
            "",
        );
        assert!(!text.contains("userinfo_url"), "{text}");
    }
    let gateway = TestGateway::start_with_catalog(providers).await;

    let id = connected(&gateway, &server, "example-grant").await;
    let first_sync = gateway.until_state(TENANT, &id, "synced").await;
    assert_eq!(first_sync["account"]["name"], "Example ID", "{first_sync}");
    assert_eq!(first_sync["records_total"], 1, "{first_sync}");
    let (_, old_refresh) = tokens(&stored(&gateway, &id).await.value);

    // Once the access token expired at the server, the next sync renews it.
    let (_, renewed) = renewed_once_expired(&gateway, &server, &id, &first_sync).await;
    let (new_access, new_refresh) = tokens(&renewed.value);
    let grant = gateway
        .call(
            Method::GET,
            &format!("/api/connections/{id}/records?stream=account"),
            Some(TENANT),
            None,
        )
        .await;
    assert_eq!(grant.status, StatusCode::OK, "{:?}", grant.body);
    let text = grant.body.to_string();
    assert!(text.contains("\"renewable\":true"), "{text}");
    for secret in [&new_access, &new_refresh, &old_refresh] {
        assert!(!text.contains(secret.as_str()), "a token in {text}");
    }

    // The server revokes the grant (a reused refresh token looks stolen).
    // Nothing asks the server until the access token needs renewing; then
    // the connection asks its user to reconnect.
    let (status, _) = refresh_at_server(&server, client, &old_refresh).await;
    assert_eq!(status, reqwest::StatusCode::BAD_REQUEST);
    assert!(!active(&server, client, &new_refresh).await);
    let Credentials::OAuth2 {
        expires_at: Some(expires_at),
        ..
    } = renewed.value
    else {
        panic!("an access token that expires")
    };
    until("the renewed access token is due for renewal", async || {
        chrono::Utc::now() + chrono::TimeDelta::seconds(1) >= expires_at
    })
    .await;
    sync_now(&gateway, &id).await;
    let row = gateway.until_state(TENANT, &id, "reauth_required").await;
    let error = row["last_error"].as_str().unwrap();
    assert!(error.contains("invalid_grant"), "{error}");
    gateway.stop().await;
}

#[tokio::test]
async fn without_prompt_consent_offline_access_brings_no_refresh_token_and_expiry_asks_to_reconnect()
 {
    // OpenID Connect Core 11: a server ignores `offline_access` unless the
    // request carries `prompt=consent`; this entry leaves it out.
    let server = server(Duration::from_secs(4)).await;
    let mut providers = providers(
        &server,
        &[Entry::new("example-id", OAuthServer::POST_CLIENT)],
    );
    let (_, toml) = &mut providers.entries[0];
    *toml = toml.replace("authorize_params = { prompt = \"consent\" }\n", "");
    assert!(!toml.contains("prompt"), "{toml}");
    let gateway = TestGateway::start_with_catalog(providers).await;
    let id = connected(&gateway, &server, "example-id").await;
    gateway.until_state(TENANT, &id, "synced").await;
    let Credentials::OAuth2 {
        access_token,
        refresh_token,
        scope,
        ..
    } = stored(&gateway, &id).await.value
    else {
        panic!("OAuth 2.0 credentials expected");
    };
    assert!(refresh_token.is_none());
    assert!(!scope.unwrap_or_default().contains("offline_access"));

    until("the server refuses the access token", async || {
        userinfo(&server, access_token.expose_secret()).await == reqwest::StatusCode::UNAUTHORIZED
    })
    .await;
    sync_now(&gateway, &id).await;

    let row = gateway.until_state(TENANT, &id, "reauth_required").await;
    let error = row["last_error"].as_str().unwrap();
    assert!(
        error.contains("Example ID issued no way to renew it: reconnect the account"),
        "{error}"
    );
    gateway.stop().await;
}

#[tokio::test]
async fn declining_at_the_servers_consent_page_says_so_and_connects_nothing() {
    let server = server(Duration::from_secs(3600)).await;
    let gateway = TestGateway::start_with_catalog(providers(
        &server,
        &[Entry::new("example-id", OAuthServer::POST_CLIENT)],
    ))
    .await;
    let mut browser = Browser::default();
    let started = browser
        .send(&gateway, authorize_request("example-id", TENANT))
        .await;

    let back = server.decline(started.location()).await;
    assert_eq!(param(&back, "error").as_deref(), Some("access_denied"));
    let page = callback(&gateway, &mut browser, &back).await;

    assert_eq!(param(&page, "status").as_deref(), Some("error"), "{page}");
    let message = param(&page, "message").unwrap();
    assert!(message.contains("You declined access"), "{message}");
    let listed = gateway
        .call(Method::GET, "/api/connections", Some(TENANT), None)
        .await;
    assert_eq!(listed.body["connections"], serde_json::json!([]));
    gateway.stop().await;
}

/// A catalog entry of the client credentials grant at `server`, whose
/// protected resource validates the token.
fn client_credentials_entry(server: &OAuthServer) -> String {
    format!(
        r#"display_name = "Example API"
auth = "oauth2_client_credentials"
docs_url = "https://api.example.test/docs"
default_sync_interval_secs = 3600

[oauth2_client_credentials]
token_url = "{token}"
verify_url = "{resource}"
revoke_url = "{revoke}"
scopes = ["read"]
client_auth = "client_secret_basic"
token_expiry_margin_secs = 1
"#,
        token = server.token_url(),
        resource = server.client_resource_url(),
        revoke = server.revocation_url(),
    )
}

/// The access token of client credentials.
fn client_token(credentials: &Credentials) -> String {
    let Credentials::ClientCredentials {
        access_token: Some(access_token),
        ..
    } = credentials
    else {
        panic!("client credentials with an access token expected");
    };
    access_token.expose_secret().to_owned()
}

/// Connects the server's service client to `example-api` with `secret`;
/// returns the connection's id.
async fn connect_service(gateway: &TestGateway, secret: &str) -> String {
    let client = OAuthServer::SERVICE_CLIENT;
    let body = serde_json::json!({
        "connector": "example-api",
        "credentials": {"client_id": client.id, "client_secret": secret},
    });
    let created = gateway
        .call(Method::POST, "/api/connections", Some(TENANT), Some(body))
        .await;
    assert_eq!(created.status, StatusCode::ACCEPTED, "{:?}", created.body);
    created.body["id"].as_str().unwrap().to_owned()
}

/// A wrong secret: the server refuses the client, the connection ends
/// invalid saying so, and the secret shows nowhere.
async fn service_refused_with_a_wrong_secret(gateway: &TestGateway) {
    let id = connect_service(gateway, "not-the-secret").await;
    let invalid = gateway.until_state(TENANT, &id, "invalid").await;
    let reason = invalid["last_error"].as_str().unwrap_or_default();
    assert!(!reason.is_empty(), "{invalid}");
    assert!(!invalid.to_string().contains("not-the-secret"), "{invalid}");
}

#[tokio::test]
async fn client_credentials_typed_in_connect_sync_and_fetch_a_new_token_once_it_expires() {
    let server = server(Duration::from_secs(4)).await;
    let gateway = TestGateway::start_with_catalog(Providers {
        entries: vec![("example-api".to_owned(), client_credentials_entry(&server))],
        ..Default::default()
    })
    .await;
    let client = OAuthServer::SERVICE_CLIENT;
    service_refused_with_a_wrong_secret(&gateway).await;

    // The registered secret: a token from the server, validated at its
    // resource, and a synced account.
    let id = connect_service(&gateway, client.secret).await;
    let first = gateway.until_state(TENANT, &id, "synced").await;
    assert_eq!(first["records_total"], 1);
    assert!(!first.to_string().contains(client.secret));
    let records = gateway
        .call(
            Method::GET,
            &format!("/api/connections/{id}/records"),
            Some(TENANT),
            None,
        )
        .await;
    assert_eq!(records.body["records"][0]["payload"]["id"], client.id);
    let before = client_token(&stored(&gateway, &id).await.value);

    // Once it expires the server refuses it, and the next sync fetches
    // another with the client's credentials.
    until("the first token expires at the server", || {
        let token = before.clone();
        let resource = server.client_resource_url();
        async move {
            reqwest::Client::new()
                .get(resource)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
                == reqwest::StatusCode::UNAUTHORIZED
        }
    })
    .await;
    sync_now(&gateway, &id).await;
    let again = synced_again(&gateway, &id, &first).await;
    assert_eq!(again["last_error"], Value::Null);
    let after = client_token(&stored(&gateway, &id).await.value);
    assert_ne!(after, before, "a new token was fetched and stored");
}

#[tokio::test]
async fn client_credentials_without_a_verify_url_are_checked_at_the_token_endpoint_and_revoked() {
    let server = server(Duration::from_secs(60)).await;
    let entry = client_credentials_entry(&server).replace(
        &format!("verify_url = \"{}\"\n", server.client_resource_url()),
        "",
    );
    assert!(!entry.contains("verify_url"), "{entry}");
    let gateway = TestGateway::start_with_catalog(Providers {
        entries: vec![("example-api".to_owned(), entry)],
        ..Default::default()
    })
    .await;
    let client = OAuthServer::SERVICE_CLIENT;
    service_refused_with_a_wrong_secret(&gateway).await;

    let id = connect_service(&gateway, client.secret).await;
    let synced = gateway.until_state(TENANT, &id, "synced").await;
    assert_eq!(synced["records_total"], 1);
    assert_eq!(synced["account"]["id"], client.id, "{synced}");
    let records = gateway
        .call(
            Method::GET,
            &format!("/api/connections/{id}/records"),
            Some(TENANT),
            None,
        )
        .await;
    assert_eq!(
        records.body["records"][0]["payload"],
        serde_json::json!({ "client_id": client.id })
    );
    assert!(!records.body.to_string().contains(client.secret));

    // Disconnecting revokes the stored token at the server.
    let token = client_token(&stored(&gateway, &id).await.value);
    assert!(active(&server, client, &token).await);
    disconnect(&gateway, &id).await;
    assert!(
        !active(&server, client, &token).await,
        "the token is revoked on disconnect"
    );
    gateway.stop().await;
}
