//! The OAuth 2.0 authorization server guard: what its clients may do, and
//! cleanup on drop. The code flow through it is the gateway's test
//! (`crates/gateway/tests/it/real_oauth.rs`).

use fleet_testkit::{OAuthServer, OAuthServerClient, OAuthServerOptions};
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::assert_stopped_and_removed;

async fn server() -> OAuthServer {
    OAuthServer::start(&OAuthServerOptions {
        redirect_uri: "https://fleet.example.test/oauth/callback".to_owned(),
        access_token_ttl: std::time::Duration::from_secs(60),
    })
    .await
}

fn form_encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// The token endpoint's answer to a client credentials request by
/// `client`, with HTTP Basic or with its secret in the body.
async fn client_credentials(
    server: &OAuthServer,
    client: OAuthServerClient,
    basic: bool,
) -> (StatusCode, Value) {
    let request = reqwest::Client::new().post(server.token_url());
    let mut form = vec![("grant_type", "client_credentials"), ("scope", "read")];
    let request = if basic {
        request.basic_auth(form_encode(client.id), Some(form_encode(client.secret)))
    } else {
        form.extend([("client_id", client.id), ("client_secret", client.secret)]);
        request
    };
    let response = request.form(&form).send().await.unwrap();
    (response.status(), response.json().await.unwrap())
}

#[tokio::test]
async fn clients_get_tokens_only_authenticating_as_registered() {
    let server = server().await;
    let service = OAuthServer::SERVICE_CLIENT;

    let (status, issued) = client_credentials(&server, service, true).await;
    assert_eq!(status, StatusCode::OK, "{issued}");
    assert_eq!(issued["scope"], "read", "{issued}");
    assert_eq!(issued["expires_in"], 60, "{issued}");
    assert!(issued["access_token"].is_string(), "{issued}");

    let (status, refused) = client_credentials(&server, service, false).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{refused}");
    assert_eq!(refused["error"], "invalid_client", "{refused}");
    let (status, refused) = client_credentials(&server, OAuthServer::POST_CLIENT, true).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{refused}");
    assert_eq!(refused["error"], "invalid_client", "{refused}");
}

#[tokio::test]
async fn token_requests_with_json_bodies_are_refused() {
    let server = server().await;
    let service = OAuthServer::SERVICE_CLIENT;

    let response = reqwest::Client::new()
        .post(server.token_url())
        .basic_auth(form_encode(service.id), Some(form_encode(service.secret)))
        .json(&serde_json::json!({"grant_type": "client_credentials", "scope": "read"}))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let refused: Value = response.json().await.unwrap();
    assert_eq!(refused["error"], "invalid_request", "{refused}");
}

#[tokio::test]
async fn a_dropped_server_stops_and_leaves_no_directory() {
    let server = server().await;
    let (port, dir) = (server.port(), server.dir().to_path_buf());
    let discovery = reqwest::get(format!(
        "{}/.well-known/openid-configuration",
        server.issuer()
    ))
    .await
    .unwrap();
    let metadata: Value = discovery.json().await.unwrap();
    assert_eq!(metadata["issuer"], server.issuer());
    assert_eq!(metadata["code_challenge_methods_supported"][0], "S256");

    drop(server);

    assert_stopped_and_removed(port, &dir);
}
