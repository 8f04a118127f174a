use fleet_bridge::protocol::ServerMessage;
use serde_json::json;

use crate::helpers::{TestBridge, seq_of, synced, syncing};

#[tokio::test]
async fn a_session_gets_a_snapshot_then_live_events_in_order() {
    let bridge = TestBridge::start(|_| {}).await;
    bridge.create_connection("acme", "c-1").await;
    let before = bridge.publish("acme", "c-1", syncing(1)).await;
    let mut client = bridge.connect("acme", None).await;

    let ServerMessage::Snapshot(snapshot) = client.next().await else {
        panic!("expected a snapshot first");
    };
    assert_eq!(snapshot.position.seq, before - 1);
    assert_eq!(snapshot.connections.len(), 1);
    assert_eq!(snapshot.connections[0].id.as_str(), "c-1");
    assert_eq!(
        seq_of(&client.next().await),
        before,
        "not stored yet, so it follows"
    );

    let mut published = Vec::new();
    for records in 2..=6 {
        published.push(bridge.publish("acme", "c-1", synced(records)).await);
    }
    let mut received = Vec::new();
    for _ in &published {
        let (position, event) = client.next_event().await;
        assert_eq!(position.epoch, snapshot.position.epoch);
        assert_eq!(event.tenant.as_str(), "acme");
        received.push(position.seq);
    }
    assert_eq!(received, published);
}

#[tokio::test]
async fn a_socket_session_sees_only_its_tenants_events() {
    let bridge = TestBridge::start(|_| {}).await;
    bridge.create_connection("acme", "c-1").await;
    bridge.create_connection("globex", "g-1").await;
    let mut acme = bridge.connect("acme", None).await;
    let mut globex = bridge.connect("globex", None).await;

    let ServerMessage::Snapshot(snapshot) = acme.next().await else {
        panic!("expected a snapshot first");
    };
    assert!(snapshot.connections.iter().all(|c| c.id.as_str() == "c-1"));
    globex.next().await;
    let theirs = bridge.publish("globex", "g-1", synced(1)).await;
    let ours = bridge.publish("acme", "c-1", synced(2)).await;

    assert_eq!(seq_of(&acme.next().await), ours);
    assert_eq!(seq_of(&globex.next().await), theirs);
}

#[tokio::test]
async fn a_session_narrowed_to_some_connections_sees_only_those() {
    let bridge = TestBridge::start(|_| {}).await;
    bridge.create_connection("acme", "c-1").await;
    bridge.create_connection("acme", "c-2").await;
    let mut client = bridge.socket().await;
    client
        .send(json!({"type": "auth", "token": bridge.token("acme"), "connections": ["c-2"]}))
        .await;

    let ServerMessage::Snapshot(snapshot) = client.next().await else {
        panic!("expected a snapshot first");
    };
    assert_eq!(snapshot.connections.len(), 1);
    assert_eq!(snapshot.connections[0].id.as_str(), "c-2");
    bridge.publish("acme", "c-1", synced(1)).await;
    let wanted = bridge.publish("acme", "c-2", synced(2)).await;

    assert_eq!(seq_of(&client.next().await), wanted);
}
