use fleet_bridge::protocol::ServerMessage;

use crate::helpers::{TestBridge, seq_of, synced};

#[tokio::test]
async fn an_sse_session_sees_only_its_tenants_events() {
    let bridge = TestBridge::start(|_| {}).await;
    bridge.create_connection("acme", "c-1").await;
    let mut acme = bridge.sse("acme", None).await;
    let mut globex = bridge.sse("globex", None).await;

    let snapshot = acme.next().await;
    assert_eq!(snapshot.kind, "snapshot");
    let ServerMessage::Snapshot(body) = &snapshot.message else {
        panic!("expected a snapshot, got {snapshot:?}");
    };
    assert_eq!(snapshot.id, Some(body.position.to_string()));
    assert_eq!(body.connections.len(), 1);
    let ServerMessage::Snapshot(theirs) = globex.next().await.message else {
        panic!("expected a snapshot");
    };
    assert!(theirs.connections.is_empty());
    let other = bridge.publish("globex", "g-1", synced(1)).await;
    let ours = bridge.publish("acme", "c-1", synced(2)).await;

    let event = acme.next().await;
    assert_eq!(event.kind, "status");
    assert_eq!(seq_of(&event.message), ours);
    assert_eq!(seq_of(&globex.next().await.message), other);
}

#[tokio::test]
async fn sse_last_event_id_replays_exactly_what_was_missed() {
    let bridge = TestBridge::start(|_| {}).await;
    let mut client = bridge.sse("acme", None).await;
    assert_eq!(client.next().await.kind, "snapshot");
    bridge.publish("acme", "c-1", synced(0)).await;
    let seen = client.next().await;
    drop(client);
    let missed = [
        bridge.publish("acme", "c-1", synced(1)).await,
        bridge.publish("acme", "c-1", synced(2)).await,
    ];
    let ServerMessage::Event { position, .. } = &seen.message else {
        panic!("expected a status event, got {seen:?}");
    };
    assert_eq!(seen.id, Some(position.to_string()));

    let mut client = bridge.sse("acme", Some(position)).await;

    for seq in missed {
        let event = client.next().await;
        assert_eq!(event.kind, "status");
        assert_eq!(event.id, Some(format!("{}:{seq}", position.epoch)));
        assert_eq!(seq_of(&event.message), seq);
    }
    let live = bridge.publish("acme", "c-1", synced(3)).await;
    assert_eq!(seq_of(&client.next().await.message), live);
}
