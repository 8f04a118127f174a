//! Health changes reach the tenant's sessions live, and nothing else.

use chrono::Utc;
use fleet_bridge::protocol::ServerMessage;
use fleet_bus::Publisher;
use fleet_events::{
    ConnectionId, ConnectorId, CorrelationId, Envelope, HealthChanged, HealthState, TenantId,
};

use crate::helpers::{TestBridge, seq_of, synced};

async fn degrade(bridge: &TestBridge, tenant: &str, connection: &str) -> Envelope<HealthChanged> {
    let event = Envelope::new(
        TenantId::parse(tenant).unwrap(),
        ConnectionId::parse(connection).unwrap(),
        ConnectorId::parse("wordpress").unwrap(),
        CorrelationId::new(),
        HealthChanged {
            health: HealthState::Degraded,
            consecutive_failures: 3,
            degraded_since: Utc::now(),
            last_failure: Some("the site answered HTTP 503".to_owned()),
        },
    );
    Publisher::new(bridge.js.clone())
        .publish(&event, &event.id.to_string())
        .await
        .unwrap();
    event
}

#[tokio::test]
async fn a_health_change_reaches_its_tenant_s_sessions_live_without_a_position() {
    let bridge = TestBridge::start(|_| {}).await;
    bridge.create_connection("acme", "c-1").await;
    bridge.create_connection("globex", "g-1").await;
    let mut acme = bridge.connect("acme", None).await;
    let mut globex = bridge.connect("globex", None).await;
    let mut sse = bridge.sse("acme", None).await;
    assert!(matches!(acme.next().await, ServerMessage::Snapshot(_)));
    assert!(matches!(globex.next().await, ServerMessage::Snapshot(_)));
    assert_eq!(sse.next().await.kind, "snapshot");

    let degraded = degrade(&bridge, "acme", "c-1").await;
    let ServerMessage::Health { event } = acme.next().await else {
        panic!("expected the health change");
    };
    assert_eq!(*event, degraded);
    let pushed = sse.next().await;
    assert_eq!(pushed.kind, "health");
    assert_eq!(
        pushed.id, None,
        "a health message has no position to resume from"
    );

    // The status events go on at their own positions, and the other tenant
    // got no health message.
    let theirs = bridge.publish("globex", "g-1", synced(1)).await;
    let ours = bridge.publish("acme", "c-1", synced(2)).await;
    assert_eq!(seq_of(&globex.next().await), theirs);
    assert_eq!(seq_of(&acme.next().await), ours);
    let status = sse.next().await;
    assert_eq!(status.kind, "status");
    assert_eq!(
        status.id.unwrap().rsplit(':').next(),
        Some(ours.to_string().as_str())
    );
}
