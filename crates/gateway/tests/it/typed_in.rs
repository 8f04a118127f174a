//! Connecting a catalog entry of typed-in credentials (`api_key`) through
//! `POST /api/connections`, with its settings among the credentials.

use axum::http::{Method, StatusCode};
use fleet_sim::KEYED_API_KEY;
use serde_json::json;

use crate::helpers::TestGateway;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_key_connected_through_the_api_ends_synced_and_shows_nowhere() {
    let gateway = TestGateway::start().await;

    let listed = gateway
        .call(Method::GET, "/api/connectors", Some("acme"), None)
        .await;
    let connectors = listed.body["connectors"].as_array().unwrap();
    let keyed = connectors.iter().find(|c| c["id"] == "keyed").unwrap();
    assert_eq!(keyed["auth"], "api_key");
    assert_eq!(keyed["form"][0]["name"], "api_key");
    assert_eq!(keyed["form"][0]["label"], "Keyed API key");
    assert_eq!(keyed["settings"][0]["name"], "section");
    assert_eq!(keyed["streams"][0]["name"], "account");

    let body = json!({
        "connector": "keyed",
        "credentials": {"api_key": KEYED_API_KEY, "section": "api"},
    });
    let reply = gateway
        .call(Method::POST, "/api/connections", Some("acme"), Some(body))
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{:?}", reply.body);
    let id = reply.body["id"].as_str().unwrap();

    let connection = gateway.until_state("acme", id, "synced").await;
    assert_eq!(connection["records_total"], 1);
    assert_eq!(connection["display_name"], "Keyed");
    assert!(!connection.to_string().contains(KEYED_API_KEY));
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_key_ends_invalid_without_showing_it() {
    let gateway = TestGateway::start().await;
    let wrong = "sk-typed-wrong-31f0";

    let body = json!({
        "connector": "keyed",
        "credentials": {"api_key": wrong, "section": "api"},
    });
    let reply = gateway
        .call(Method::POST, "/api/connections", Some("acme"), Some(body))
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{:?}", reply.body);
    let id = reply.body["id"].as_str().unwrap();

    let connection = gateway.until_state("acme", id, "invalid").await;
    let error = connection["last_error"].as_str().unwrap();
    assert!(
        error.contains("Keyed refused the API key (HTTP 401)"),
        "{error}"
    );
    assert!(!connection.to_string().contains(wrong), "{connection}");
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_or_unsendable_key_a_refused_setting_or_an_unknown_field_is_answered_422() {
    let gateway = TestGateway::start().await;

    for (credentials, field, message) in [
        (
            json!({"section": "api"}),
            "api_key",
            "credentials.api_key (Keyed API key) is required",
        ),
        (
            json!({"api_key": KEYED_API_KEY, "section": "admin"}),
            "section",
            "section (API section)",
        ),
        (
            json!({"api_key": "kd\nX-Other: 1", "section": "api"}),
            "api_key",
            "credentials.api_key holds control characters",
        ),
        (
            json!({"api_key": KEYED_API_KEY, "section": "api", "token": "x"}),
            "token",
            "credentials.token is not a field of this connector",
        ),
    ] {
        let body = json!({"connector": "keyed", "credentials": credentials});
        let reply = gateway
            .call(Method::POST, "/api/connections", Some("acme"), Some(body))
            .await;

        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{:?}",
            reply.body
        );
        let text = reply.body.to_string();
        assert!(text.contains(field) && text.contains(message), "{text}");
        assert!(!text.contains(KEYED_API_KEY), "{text}");
    }
    gateway.stop().await;
}
