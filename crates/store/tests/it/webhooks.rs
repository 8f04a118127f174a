//! Webhook endpoints and deliveries: filed once per endpoint, claimed one
//! per endpoint and connection at a time in filing order, leased, retried.

use std::time::Duration;

use fleet_events::TenantId;
use fleet_store::{DeliveryEnd, Store, WebhookEvent};
use uuid::Uuid;

use crate::helpers::{spawn_store, tenant};

async fn file(store: &Store, tenant: &TenantId, connection: &str, n: u32) -> Uuid {
    let event_id = Uuid::now_v7();
    let payload = format!(r#"{{"n":{n}}}"#);
    store
        .file_webhook_event(WebhookEvent {
            tenant,
            connection,
            event_id,
            event_type: "sync.completed",
            payload: &payload,
        })
        .await
        .unwrap();
    event_id
}

fn claimed(due: &[fleet_store::DueDelivery]) -> Vec<&str> {
    let mut payloads: Vec<&str> = due.iter().map(|d| d.payload.as_str()).collect();
    payloads.sort_unstable();
    payloads
}

const LEASE: Duration = Duration::from_secs(60);

#[tokio::test]
async fn deliveries_go_out_one_per_endpoint_and_connection_in_filing_order() {
    let test = spawn_store().await;
    let store = &test.store;
    let acme = tenant("acme");
    let endpoint = Uuid::now_v7();
    store
        .create_webhook_endpoint(&acme, endpoint, "https://hooks.example.com/a", "", 10)
        .await
        .unwrap()
        .unwrap();
    // Another tenant's endpoint receives nothing of acme's.
    let globex = tenant("globex");
    let theirs = Uuid::now_v7();
    store
        .create_webhook_endpoint(&globex, theirs, "https://hooks.example.com/g", "", 10)
        .await
        .unwrap()
        .unwrap();

    let first = file(store, &acme, "c-1", 1).await;
    file(store, &acme, "c-1", 2).await;
    file(store, &acme, "c-2", 3).await;
    let again = store
        .file_webhook_event(WebhookEvent {
            tenant: &acme,
            connection: "c-1",
            event_id: first,
            event_type: "sync.completed",
            payload: r#"{"n":1}"#,
        })
        .await
        .unwrap();
    assert_eq!(again, 0, "an event is filed once per endpoint");

    let due = store.claim_webhook_deliveries(10, LEASE).await.unwrap();
    assert_eq!(
        claimed(&due),
        [r#"{"n":1}"#, r#"{"n":3}"#],
        "the head of each connection"
    );
    assert!(
        due.iter()
            .all(|d| d.endpoint_id == endpoint && d.attempts == 1)
    );
    assert!(
        store
            .claim_webhook_deliveries(10, LEASE)
            .await
            .unwrap()
            .is_empty(),
        "leased deliveries are not claimed twice, and c-1's second waits for its first"
    );

    let one = due.iter().find(|d| d.event_id == first).unwrap();
    store
        .finish_webhook_delivery(
            one.id,
            DeliveryEnd::Failed {
                status: Some(503),
                error: "the endpoint answered 503",
                retry_in: Duration::ZERO,
                give_up: false,
            },
        )
        .await
        .unwrap();
    let retried = store.claim_webhook_deliveries(10, LEASE).await.unwrap();
    assert_eq!(
        claimed(&retried),
        [r#"{"n":1}"#],
        "a failed delivery is retried first"
    );
    assert_eq!(retried[0].attempts, 2);
    store
        .finish_webhook_delivery(retried[0].id, DeliveryEnd::Delivered { status: 204 })
        .await
        .unwrap();
    let next = store.claim_webhook_deliveries(10, LEASE).await.unwrap();
    assert_eq!(
        claimed(&next),
        [r#"{"n":2}"#],
        "then the connection's next event"
    );
    store
        .finish_webhook_delivery(
            next[0].id,
            DeliveryEnd::Failed {
                status: None,
                error: "connection refused",
                retry_in: Duration::from_secs(3600),
                give_up: false,
            },
        )
        .await
        .unwrap();
    assert!(
        store
            .claim_webhook_deliveries(10, LEASE)
            .await
            .unwrap()
            .is_empty(),
        "a delivery waits out its backoff"
    );

    let log = store
        .list_webhook_deliveries(&acme, endpoint, 10, None)
        .await
        .unwrap();
    let states: Vec<(&str, &str)> = log
        .iter()
        .map(|d| (d.connection.as_str(), d.state.as_str()))
        .collect();
    assert_eq!(
        states,
        [("c-2", "pending"), ("c-1", "pending"), ("c-1", "delivered")],
        "newest first"
    );
    assert_eq!(log[1].last_error.as_deref(), Some("connection refused"));
    assert_eq!(log[2].last_status, Some(204));
    assert!(
        store
            .list_webhook_deliveries(&globex, theirs, 10, None)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .list_webhook_deliveries(&globex, endpoint, 10, None)
            .await
            .unwrap()
            .is_empty(),
        "a tenant reads only its own endpoints' logs"
    );

    // A redelivery makes it due now, attempts counted afresh.
    assert!(
        store
            .redeliver_webhook(&acme, endpoint, log[1].id)
            .await
            .unwrap()
    );
    assert!(
        !store
            .redeliver_webhook(&globex, endpoint, log[1].id)
            .await
            .unwrap()
    );
    let redelivered = store.claim_webhook_deliveries(10, LEASE).await.unwrap();
    assert_eq!(claimed(&redelivered), [r#"{"n":2}"#]);
    assert_eq!(redelivered[0].attempts, 1);

    assert!(
        store
            .delete_webhook_endpoint(&acme, endpoint)
            .await
            .unwrap()
    );
    assert!(
        store
            .list_webhook_deliveries(&acme, endpoint, 10, None)
            .await
            .unwrap()
            .is_empty(),
        "the log goes with its endpoint"
    );
    assert!(
        !store
            .delete_webhook_endpoint(&acme, endpoint)
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn concurrent_creations_never_take_a_tenant_past_its_endpoint_limit() {
    let test = spawn_store().await;
    let store = &test.store;
    let acme = tenant("acme");

    let created = futures::future::join_all((0..30).map(|i| {
        let acme = &acme;
        async move {
            store
                .create_webhook_endpoint(
                    acme,
                    Uuid::now_v7(),
                    &format!("https://hooks.example.com/{i}"),
                    "",
                    10,
                )
                .await
                .unwrap()
        }
    }))
    .await;

    assert_eq!(created.iter().flatten().count(), 10);
    assert_eq!(store.list_webhook_endpoints(&acme).await.unwrap().len(), 10);
}
