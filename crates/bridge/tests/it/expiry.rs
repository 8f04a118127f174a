//! A session ends when its token expires: a WebSocket is closed with 4003,
//! an SSE stream ends.

use std::time::Duration;

use fleet_bridge::close_code;
use fleet_bridge::protocol::ServerMessage;
use tokio::time::Instant;

use crate::helpers::{SseClient, TestBridge, auth_config, claims, verifier};

/// A token of `tenant` that expires in about two seconds: `exp` counts
/// whole seconds, so between one and two from now.
fn expiring_token(tenant: &str) -> String {
    let mut claims = claims(tenant);
    claims.exp = claims.iat + 2;
    verifier().issue(&claims)
}

/// Token settings of the test bridge with `seconds` of leeway on `exp`.
fn leeway(seconds: u64) -> fleet_auth::Config {
    fleet_auth::Config {
        leeway_seconds: seconds,
        ..auth_config()
    }
}

#[tokio::test]
async fn a_websocket_session_is_closed_with_4003_when_its_token_expires() {
    let bridge = TestBridge::start_with_auth(|_| {}, leeway(0)).await;
    let mut client = bridge.connect_with(&expiring_token("acme")).await;
    assert!(matches!(client.next().await, ServerMessage::Snapshot(_)));
    let started = Instant::now();

    let (code, reason) = client.closed().await;

    assert_eq!(code, close_code::TOKEN_EXPIRED);
    assert!(reason.contains("expired"), "{reason}");
    assert!(started.elapsed() < Duration::from_secs(3));
    bridge.await_sessions(0).await;
}

#[tokio::test]
async fn an_sse_stream_ends_when_its_token_expires() {
    let bridge = TestBridge::start_with_auth(|_| {}, leeway(0)).await;
    let mut stream = SseClient::new(bridge.sse_request(&expiring_token("acme"), &[]).await);
    assert_eq!(stream.next().await.kind, "snapshot");
    let started = Instant::now();

    let rest = stream.rest().await;

    assert!(rest.is_empty(), "{rest:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
    bridge.await_sessions(0).await;
}

#[tokio::test]
async fn a_session_lasts_as_long_as_the_leeway_lets_its_token_be_accepted() {
    let bridge = TestBridge::start_with_auth(|_| {}, leeway(3)).await;
    let mut client = bridge.connect_with(&expiring_token("acme")).await;
    assert!(matches!(client.next().await, ServerMessage::Snapshot(_)));
    let started = Instant::now();

    let (code, _) = client.closed().await;

    assert_eq!(code, close_code::TOKEN_EXPIRED);
    // `exp` is one to two seconds away: without the leeway the session ends
    // within 2 s; with it, 3 s after `exp`.
    let lasted = started.elapsed();
    assert!(lasted >= Duration::from_secs(3), "{lasted:?}");
    assert!(lasted < Duration::from_secs(7), "{lasted:?}");
}
