use fleet_bridge::close_code;
use fleet_bridge::protocol::{Position, ServerMessage};
use fleet_events::{ConnectionStatus, Envelope, StatusChanged};

use crate::helpers::{DEADLINE, TestBridge, bulky, publish, seq_of, synced, syncing};

#[tokio::test]
async fn a_slow_client_is_closed_with_4008_while_a_fast_one_receives_everything() {
    let bridge = TestBridge::start(|config| config.queue_size = 16).await;
    let mut slow = bridge.connect("acme", None).await;
    assert!(matches!(slow.next().await, ServerMessage::Snapshot(_)));
    let mut fast = bridge.connect("acme", None).await;
    assert!(matches!(fast.next().await, ServerMessage::Snapshot(_)));
    let reader = tokio::spawn(async move {
        let mut positions = Vec::new();
        loop {
            let (position, event) = fast.next_event().await;
            positions.push(position);
            if matches!(event.data.status, ConnectionStatus::Synced { .. }) {
                return positions;
            }
        }
    });

    let mut published = Vec::new();
    let deadline = tokio::time::Instant::now() + 3 * DEADLINE;
    while bridge.handle.stats().closed_slow == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the slow client was never closed"
        );
        published.push(publish(&bridge.js, "acme", "c-1", bulky(32)).await);
    }
    published.push(bridge.publish("acme", "c-1", synced(0)).await);

    let received = reader.await.unwrap();
    let seqs: Vec<u64> = received.iter().map(|position| position.seq).collect();
    assert_eq!(seqs, published);
    assert_eq!(slow.closed().await.0, close_code::SLOW_CONSUMER);
    let mut resumed = bridge.connect("acme", received.last()).await;
    let after = bridge.publish("acme", "c-1", synced(1)).await;
    assert_eq!(seq_of(&resumed.next().await), after);
}

/// What a client that fell behind received of one connection's events:
/// progress events by record count, the others by their state.
fn summary(events: &[(Position, Envelope<StatusChanged>)]) -> Vec<String> {
    events
        .iter()
        .map(|(_, event)| match &event.data.status {
            ConnectionStatus::Syncing { records, .. } => format!("syncing {records}"),
            ConnectionStatus::Synced { records, .. } => format!("synced {records}"),
            other => other.state().to_string(),
        })
        .collect()
}

#[tokio::test]
async fn a_client_that_falls_behind_gets_the_latest_progress_and_every_state_change_in_order() {
    let bridge = TestBridge::start(|config| config.queue_size = 1024).await;
    let mut client = bridge.connect("acme", None).await;
    assert!(matches!(client.next().await, ServerMessage::Snapshot(_)));

    // 16 MiB the client does not read: more than the socket buffers hold,
    // so the rest waits in the session's queue and so does what follows.
    let backlog = 512;
    for _ in 0..backlog {
        publish(&bridge.js, "acme", "c-1", bulky(32)).await;
    }
    for records in 1..=100 {
        bridge.publish("acme", "c-1", syncing(records)).await;
    }
    bridge.publish("acme", "c-1", synced(100)).await;
    for records in 101..=200 {
        bridge.publish("acme", "c-1", syncing(records)).await;
    }
    bridge
        .publish("acme", "c-1", ConnectionStatus::Disconnected)
        .await;

    let mut received = Vec::new();
    loop {
        let event = client.next_event().await;
        let last = matches!(event.1.data.status, ConnectionStatus::Disconnected);
        received.push(event);
        if last {
            break;
        }
    }
    let seqs: Vec<u64> = received.iter().map(|(position, _)| position.seq).collect();
    assert!(seqs.is_sorted_by(|a, b| a < b), "out of order: {seqs:?}");
    let summary = summary(&received);
    assert_eq!(summary.len(), backlog + 4, "{:?}", &summary[backlog..]);
    assert!(summary[..backlog].iter().all(|state| state == "failed"));
    assert_eq!(
        summary[backlog..],
        ["syncing 100", "synced 100", "syncing 200", "disconnected"]
    );
    assert_eq!(bridge.handle.stats().closed_slow, 0);
}

#[tokio::test]
async fn an_sse_client_that_stops_reading_is_dropped_while_a_fast_one_keeps_receiving() {
    let bridge = TestBridge::start(|config| config.queue_size = 16).await;
    let mut slow = bridge.sse("acme", None).await;
    assert_eq!(slow.next().await.kind, "snapshot");
    let mut fast = bridge.sse("acme", None).await;
    assert_eq!(fast.next().await.kind, "snapshot");
    let reader = tokio::spawn(async move {
        let mut seqs = Vec::new();
        loop {
            let event = fast.next().await;
            seqs.push(seq_of(&event.message));
            if let ServerMessage::Event { event, .. } = event.message
                && event.data.status == ConnectionStatus::Disconnected
            {
                return seqs;
            }
        }
    });

    let mut published = Vec::new();
    let deadline = tokio::time::Instant::now() + 3 * DEADLINE;
    while bridge.handle.stats().closed_slow == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the slow client's queue never overflowed"
        );
        published.push(publish(&bridge.js, "acme", "c-1", bulky(32)).await);
    }
    bridge.await_sessions(1).await;
    let after = bridge.publish("acme", "c-1", synced(0)).await;
    published.push(after);
    published.push(
        bridge
            .publish("acme", "c-1", ConnectionStatus::Disconnected)
            .await,
    );

    assert_eq!(reader.await.unwrap(), published);
    let rest = slow.rest().await;
    assert!(!rest.is_empty(), "what the socket held still arrives");
    assert!(rest.iter().all(|event| seq_of(&event.message) < after));
}
