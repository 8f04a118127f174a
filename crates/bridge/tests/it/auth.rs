use std::time::Duration;

use fleet_bridge::close_code;
use serde_json::json;

use crate::helpers::{TestBridge, claims, verifier};

#[tokio::test]
async fn a_token_signed_with_another_key_is_closed_with_4001() {
    let bridge = TestBridge::start(|_| {}).await;
    let other = fleet_auth::Verifier::new(&fleet_auth::Config::new(
        "some other key of thirty-two bytes".into(),
    ))
    .unwrap();
    let token = other.issue(&claims("acme"));
    let mut client = bridge.socket().await;

    client.send(json!({"type": "auth", "token": token})).await;

    let (code, reason) = client.closed().await;
    assert_eq!(code, close_code::AUTH_FAILED);
    assert!(reason.contains("signature"), "{reason}");
    assert!(!reason.contains(&token));
}

#[tokio::test]
async fn an_expired_token_is_closed_with_4001_saying_it_expired() {
    let bridge = TestBridge::start(|_| {}).await;
    let mut expired = claims("acme");
    expired.exp = expired.iat - 3600;
    let mut client = bridge.socket().await;

    client
        .send(json!({"type": "auth", "token": verifier().issue(&expired)}))
        .await;

    let (code, reason) = client.closed().await;
    assert_eq!(code, close_code::AUTH_FAILED);
    assert!(reason.contains("expired"), "{reason}");
}

#[tokio::test]
async fn a_first_message_that_is_not_auth_is_closed_with_4001() {
    let bridge = TestBridge::start(|_| {}).await;
    let mut client = bridge.socket().await;

    client.send(json!({"type": "subscribe"})).await;

    assert_eq!(client.closed().await.0, close_code::AUTH_FAILED);
}

#[tokio::test]
async fn a_client_that_never_authenticates_is_closed_with_4002() {
    let bridge = TestBridge::start(|config| config.auth_timeout_seconds = 1).await;
    let mut client = bridge.socket().await;

    let started = std::time::Instant::now();
    let (code, reason) = client.closed().await;

    assert_eq!(code, close_code::AUTH_TIMEOUT);
    assert_eq!(reason, "no auth message within 1 s");
    assert!(started.elapsed() >= Duration::from_millis(900));
}
