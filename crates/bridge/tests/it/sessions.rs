//! How many sessions a token, and a client address, may hold open.

use fleet_bridge::close_code;
use fleet_bridge::protocol::ServerMessage;

use fleet_auth::Claims;

use crate::helpers::{SseClient, TestBridge, claims, verifier};

#[tokio::test]
async fn a_token_holding_its_most_sessions_is_refused_one_more_until_one_closes() {
    let bridge = TestBridge::start(|config| {
        config.max_sessions_per_token = 2;
        config.max_sessions_per_address = 0;
    })
    .await;
    let token = bridge.token("acme");
    let mut first = bridge.connect_with(&token).await;
    assert!(matches!(first.next().await, ServerMessage::Snapshot(_)));
    let mut second = SseClient::new(bridge.sse_request(&token, &[]).await);
    assert_eq!(second.next().await.kind, "snapshot");

    let mut third = bridge.connect_with(&token).await;
    let (code, reason) = third.closed().await;
    assert_eq!(code, close_code::TOO_MANY_SESSIONS);
    assert!(
        reason.contains("this token already holds 2 open sessions"),
        "{reason}"
    );
    let refused = bridge.sse_request(&token, &[]).await;
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["retry-after"], "10");
    let another_token = verifier().issue(&Claims {
        subject: Some("another user".to_owned()),
        ..claims("acme")
    });
    let mut other = bridge.connect_with(&another_token).await;
    assert!(matches!(other.next().await, ServerMessage::Snapshot(_)));

    drop(first);
    bridge.await_sessions(2).await;
    let mut again = bridge.connect_with(&token).await;
    assert!(matches!(again.next().await, ServerMessage::Snapshot(_)));
}

#[tokio::test]
async fn an_address_holding_its_most_connections_is_refused_one_more_even_unauthenticated() {
    let bridge = TestBridge::start(|config| {
        config.max_sessions_per_address = 2;
        config.max_sessions_per_token = 0;
        config.auth_timeout_seconds = 60;
    })
    .await;
    let _first = bridge.socket().await;
    let mut second = bridge.connect("acme", None).await;
    assert!(matches!(second.next().await, ServerMessage::Snapshot(_)));

    let mut third = bridge.socket().await;
    let (code, reason) = third.closed().await;
    assert_eq!(code, close_code::TOO_MANY_SESSIONS);
    assert!(
        reason.contains("2 sessions are already open from this address"),
        "{reason}"
    );
    let refused = bridge.sse_request(&bridge.token("acme"), &[]).await;
    assert_eq!(refused.status(), 429);

    drop(second);
    bridge.await_sessions(0).await;
    let mut again = bridge.connect("acme", None).await;
    assert!(matches!(again.next().await, ServerMessage::Snapshot(_)));
}

#[tokio::test]
async fn behind_a_proxy_clients_count_by_the_address_it_forwards() {
    let bridge = TestBridge::start(|config| {
        config.max_sessions_per_address = 1;
        config.client_address_header = Some("X-Forwarded-For".to_owned());
    })
    .await;
    let token = bridge.token("acme");
    let from = |client: &'static str| [("X-Forwarded-For", client)];

    let mut one = SseClient::new(
        bridge
            .sse_request(&token, &from("198.51.100.1, 203.0.113.7"))
            .await,
    );
    assert_eq!(one.next().await.kind, "snapshot");
    let mut another = SseClient::new(bridge.sse_request(&token, &from("203.0.113.8")).await);
    assert_eq!(another.next().await.kind, "snapshot");

    let refused = bridge
        .sse_request(&token, &from("198.51.100.9, 203.0.113.7"))
        .await;
    assert_eq!(refused.status(), 429);
}

#[tokio::test]
async fn the_forwarded_address_counts_only_from_a_trusted_proxy() {
    // The test's requests come from loopback, which is not this proxy.
    let bridge = TestBridge::start(|config| {
        config.max_sessions_per_address = 1;
        config.client_address_header = Some("X-Forwarded-For".to_owned());
        config.trusted_proxies = vec!["192.0.2.0/24".parse().unwrap()];
    })
    .await;
    let token = bridge.token("acme");

    let mut one = SseClient::new(
        bridge
            .sse_request(&token, &[("X-Forwarded-For", "198.51.100.1")])
            .await,
    );
    assert_eq!(one.next().await.kind, "snapshot");
    let spoofed = bridge
        .sse_request(&token, &[("X-Forwarded-For", "198.51.100.2")])
        .await;

    assert_eq!(
        spoofed.status(),
        429,
        "a header written by the client itself does not make it another client"
    );
}
