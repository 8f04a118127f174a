use fleet_bridge::protocol::ServerMessage;
use fleet_events::ConnectionStatus;

use crate::helpers::{TestBridge, seq_of, synced};

#[tokio::test]
async fn an_event_not_yet_stored_in_postgres_when_the_snapshot_is_read_follows_the_snapshot() {
    let bridge = TestBridge::start(|_| {}).await;
    bridge.create_connection("acme", "c-1").await;
    let mut witness = bridge.connect("acme", None).await;
    assert!(matches!(witness.next().await, ServerMessage::Snapshot(_)));
    let stored = bridge.publish_stored("acme", "c-1", synced(1)).await;
    let failed = ConnectionStatus::Failed {
        reason: "the provider is down".into(),
        retryable: true,
    };
    let unstored = bridge.publish("acme", "c-1", failed.clone()).await;
    assert_eq!(seq_of(&witness.next().await), stored);
    assert_eq!(seq_of(&witness.next().await), unstored);

    let mut client = bridge.connect("acme", None).await;

    let ServerMessage::Snapshot(snapshot) = client.next().await else {
        panic!("expected a snapshot first");
    };
    assert!(matches!(
        snapshot.connections[0].status,
        ConnectionStatus::Synced { records: 1, .. }
    ));
    assert_eq!(snapshot.position.seq, unstored - 1);
    let (position, event) = client.next_event().await;
    assert_eq!(position.seq, unstored);
    assert_eq!(event.data.status, failed);
    let live = bridge.publish("acme", "c-1", synced(2)).await;
    assert_eq!(seq_of(&client.next().await), live);
}

#[tokio::test]
async fn a_snapshot_of_a_stored_feed_is_followed_by_live_events_only() {
    let bridge = TestBridge::start(|_| {}).await;
    bridge.create_connection("acme", "c-1").await;
    let mut witness = bridge.connect("acme", None).await;
    assert!(matches!(witness.next().await, ServerMessage::Snapshot(_)));
    let stored = bridge.publish_stored("acme", "c-1", synced(1)).await;
    assert_eq!(seq_of(&witness.next().await), stored);

    let mut client = bridge.connect("acme", None).await;

    let ServerMessage::Snapshot(snapshot) = client.next().await else {
        panic!("expected a snapshot first");
    };
    assert_eq!(snapshot.position.seq, stored);
    assert!(matches!(
        snapshot.connections[0].status,
        ConnectionStatus::Synced { records: 1, .. }
    ));
    let live = bridge.publish("acme", "c-1", synced(2)).await;
    assert_eq!(seq_of(&client.next().await), live);
}
