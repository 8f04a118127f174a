use chrono::SubsecRound as _;
use fleet_bridge::protocol::ServerMessage;
use fleet_events::ConnectionStatus;

use crate::helpers::{TestBridge, event, publish_event, seq_of, synced, syncing};

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

/// A redelivered sync's first attempt can report progress after the run
/// ended: that report reaches the stream after `synced` but is older. The
/// snapshot says when its status was set, so a client can tell.
#[tokio::test]
async fn a_snapshot_says_which_event_set_each_status_so_a_late_older_event_is_told_apart() {
    let bridge = TestBridge::start(|_| {}).await;
    bridge.create_connection("acme", "c-1").await;
    let mut witness = bridge.connect("acme", None).await;
    assert!(matches!(witness.next().await, ServerMessage::Snapshot(_)));
    let synced = event("acme", "c-1", synced(251));
    let mut late = event("acme", "c-1", syncing(250));
    late.occurred_at = synced.occurred_at - chrono::TimeDelta::milliseconds(5);
    let stored = bridge.publish_stored_event(&synced).await;
    // The bridge has read it: the next session's snapshot covers it.
    assert_eq!(seq_of(&witness.next().await), stored);

    let mut client = bridge.connect("acme", None).await;
    let ServerMessage::Snapshot(snapshot) = client.next().await else {
        panic!("expected a snapshot first");
    };
    let shown = &snapshot.connections[0];
    assert!(matches!(
        shown.status,
        ConnectionStatus::Synced { records: 251, .. }
    ));
    assert_eq!(shown.status_at, Some(synced.occurred_at.trunc_subsecs(6)));
    assert_eq!(shown.status_event, Some(synced.id));

    let seq = publish_event(&bridge.js, &late).await;
    let (position, overtaken) = client.next_event().await;
    assert_eq!(position.seq, seq);
    assert!(
        (overtaken.occurred_at.trunc_subsecs(6), overtaken.id)
            < (shown.status_at.unwrap(), shown.status_event.unwrap()),
        "the late progress report sorts before the status the snapshot shows"
    );
}
