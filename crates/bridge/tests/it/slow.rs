use fleet_bridge::close_code;
use fleet_bridge::protocol::ServerMessage;
use fleet_events::ConnectionStatus;

use crate::helpers::{DEADLINE, TestBridge, publish, seq_of, synced};

/// A status of about 32 KiB, so that socket buffers fill quickly.
fn bulky() -> ConnectionStatus {
    ConnectionStatus::Failed {
        reason: "x".repeat(32 * 1024),
        retryable: true,
    }
}

#[tokio::test]
async fn a_slow_client_is_closed_with_4008_while_a_fast_one_receives_everything() {
    let bridge = TestBridge::start(|config| config.queue_size = 16).await;
    let mut slow = bridge.connect("acme", None).await;
    assert!(matches!(slow.next().await, ServerMessage::Snapshot(_)));
    let mut fast = bridge.connect("acme", None).await;
    assert!(matches!(fast.next().await, ServerMessage::Snapshot(_)));
    let reader = tokio::spawn(async move {
        let mut seqs = Vec::new();
        loop {
            let (position, event) = fast.next_event().await;
            seqs.push(position.seq);
            if matches!(event.data.status, ConnectionStatus::Synced { .. }) {
                return seqs;
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
        published.push(publish(&bridge.js, "acme", "c-1", bulky()).await);
    }
    published.push(bridge.publish("acme", "c-1", synced(0)).await);

    assert_eq!(reader.await.unwrap(), published);
    assert_eq!(slow.closed().await.0, close_code::SLOW_CONSUMER);
    let mut fresh = bridge.connect("acme", None).await;
    assert!(matches!(fresh.next().await, ServerMessage::Snapshot(_)));
    let after = bridge.publish("acme", "c-1", synced(1)).await;
    assert_eq!(seq_of(&fresh.next().await), after);
}
