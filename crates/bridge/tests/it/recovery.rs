use fleet_bridge::close_code;
use fleet_bridge::protocol::{Position, ResyncReason, ServerMessage};
use fleet_bus::STATUS_STREAM;
use fleet_events::ConnectionStatus;
use tokio_util::sync::CancellationToken;

use crate::helpers::{TestBridge, WsClient, publish, seq_of, synced};

/// The record count of a `synced` event: the tests number events with it.
fn number(client_event: &fleet_events::Envelope<fleet_events::StatusChanged>) -> u64 {
    match client_event.data.status {
        ConnectionStatus::Synced { records, .. } => records,
        ref other => panic!("expected a synced status, got {other:?}"),
    }
}

/// Reads `count` events, checks they are numbered one after another from
/// `first`, and returns the position of the last.
async fn read_numbered(client: &mut WsClient, first: u64, count: u64) -> Position {
    let mut last = None;
    for expected in first..first + count {
        let (position, event) = client.next_event().await;
        assert_eq!(number(&event), expected, "a gap or a duplicate");
        last = Some(position);
    }
    last.unwrap()
}

#[tokio::test]
async fn replay_after_a_reconnect_is_exact_while_events_keep_flowing() {
    let bridge = TestBridge::start(|_| {}).await;
    let mut client = bridge.connect("acme", None).await;
    assert!(matches!(client.next().await, ServerMessage::Snapshot(_)));
    let stop = CancellationToken::new();
    let publisher = tokio::spawn({
        let (js, stop) = (bridge.js.clone(), stop.clone());
        async move {
            let mut n = 0;
            while !stop.is_cancelled() {
                publish(&js, "acme", "c-1", synced(n)).await;
                n += 1;
            }
        }
    });

    let last = read_numbered(&mut client, 0, 20).await;
    drop(client);
    let mut client = bridge.connect("acme", Some(&last)).await;
    read_numbered(&mut client, 20, 100).await;

    stop.cancel();
    publisher.await.unwrap();
}

#[tokio::test]
async fn a_position_older_than_the_stream_keeps_gets_resync_and_a_fresh_snapshot() {
    let bridge = TestBridge::start(|_| {}).await;
    bridge.create_connection("acme", "c-1").await;
    let mut client = bridge.connect("acme", None).await;
    assert!(matches!(client.next().await, ServerMessage::Snapshot(_)));
    bridge.publish("acme", "c-1", synced(0)).await;
    let (seen, _) = client.next_event().await;
    drop(client);
    let mut kept = 0;
    for n in 1..=3 {
        kept = bridge.publish("acme", "c-1", synced(n)).await;
    }
    let stream = bridge.js.get_stream(STATUS_STREAM).await.unwrap();
    stream.purge().sequence(kept).await.unwrap();

    let mut client = bridge.connect("acme", Some(&seen)).await;

    assert_eq!(
        client.next().await,
        ServerMessage::Resync {
            reason: ResyncReason::TooOld
        }
    );
    let ServerMessage::Snapshot(snapshot) = client.next().await else {
        panic!("expected a snapshot after the resync");
    };
    assert_eq!(snapshot.position.seq, kept - 1);
    assert_eq!(snapshot.connections.len(), 1);
    assert_eq!(
        seq_of(&client.next().await),
        kept,
        "not stored yet, so it follows"
    );
}

#[tokio::test]
async fn a_position_from_another_epoch_gets_resync() {
    let bridge = TestBridge::start(|_| {}).await;
    let stale = Position {
        epoch: "1".into(),
        seq: 1,
    };

    let mut client = bridge.connect("acme", Some(&stale)).await;

    assert_eq!(
        client.next().await,
        ServerMessage::Resync {
            reason: ResyncReason::EpochChanged
        }
    );
    assert!(matches!(client.next().await, ServerMessage::Snapshot(_)));
}

#[tokio::test]
async fn a_bridge_restart_loses_nothing_for_a_client_that_reconnects_with_its_position() {
    let mut bridge = TestBridge::start(|_| {}).await;
    let mut client = bridge.connect("acme", None).await;
    assert!(matches!(client.next().await, ServerMessage::Snapshot(_)));
    bridge.publish("acme", "c-1", synced(0)).await;
    let last = read_numbered(&mut client, 0, 1).await;
    let missed = bridge.publish("acme", "c-1", synced(1)).await;

    bridge.restart().await;
    assert_eq!(client.closed().await.0, close_code::GOING_AWAY);
    let while_down = bridge.publish("acme", "c-1", synced(2)).await;
    let mut client = bridge.connect("acme", Some(&last)).await;

    assert_eq!(seq_of(&client.next().await), missed);
    assert_eq!(seq_of(&client.next().await), while_down);
    let live = bridge.publish("acme", "c-1", synced(3)).await;
    assert_eq!(seq_of(&client.next().await), live);
}
