//! Events from publishers that are wrong or hostile: each ends in a dead
//! letter with its reason, and changes no connection it does not address.

use async_nats::jetstream::consumer::pull;
use chrono::{TimeDelta, Utc};
use fleet_events::{
    AccountInfo, ConnectionId, ConnectionState, ConnectionStatus, ConnectorId, CorrelationId,
    DeadLetter, Envelope, SaveRequested, StatusChanged, SyncRequested, SyncTrigger, TenantId,
    subject,
};
use futures::StreamExt as _;

use crate::helpers::{DEADLINE, PASSWORD, TestFleet};

/// The first dead letter on `filter`.
async fn dead_letter(fleet: &TestFleet, filter: &str) -> (String, Envelope<DeadLetter>) {
    let consumer = fleet
        .js
        .create_consumer_on_stream(
            pull::OrderedConfig {
                filter_subject: filter.to_owned(),
                ..Default::default()
            },
            fleet_bus::DLQ_STREAM,
        )
        .await
        .unwrap();
    let mut messages = consumer.messages().await.unwrap();
    let message = tokio::time::timeout(DEADLINE, messages.next())
        .await
        .unwrap_or_else(|_| panic!("no dead letter on {filter} in time"))
        .unwrap()
        .unwrap();
    let letter = Envelope::<DeadLetter>::decode(&message.payload).unwrap();
    (message.subject.to_string(), letter)
}

async fn publish_raw(fleet: &TestFleet, subject: String, body: Vec<u8>) {
    fleet
        .js
        .publish(subject, body.into())
        .await
        .unwrap()
        .await
        .expect("stored");
}

/// A connection of the test tenant that has synced.
async fn synced_connection(fleet: &TestFleet) -> ConnectionId {
    let (connection, _) = fleet.connect(&fleet.credentials(PASSWORD)).await;
    fleet
        .statuses_until(&connection, ConnectionState::Synced)
        .await;
    fleet.row_in(&connection, ConnectionState::Synced).await;
    connection
}

fn wordpress() -> ConnectorId {
    ConnectorId::parse("wordpress").unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_request_whose_subject_names_another_tenant_syncs_nothing() {
    let fleet = TestFleet::start().await;
    let connection = synced_connection(&fleet).await;
    let run_before = fleet
        .deps
        .store
        .latest_sync_run(&fleet.tenant, &connection)
        .await
        .unwrap()
        .unwrap();
    let evil = TenantId::parse("evil").unwrap();
    // A publisher allowed only `connector.sync.evil.>` names acme in the body.
    let forged = Envelope::new(
        fleet.tenant.clone(),
        connection.clone(),
        wordpress(),
        CorrelationId::new(),
        SyncRequested {
            trigger: SyncTrigger::Manual,
            streams: None,
            cursor: None,
        },
    );
    publish_raw(&fleet, subject::sync(&evil, &connection), forged.to_json()).await;

    let (letter_subject, letter) = dead_letter(&fleet, "connector.dlq.sync.>").await;

    assert_eq!(
        letter_subject,
        subject::dlq(fleet_events::Step::Sync, &evil, &connection)
    );
    assert!(
        letter.data.reason.contains("the subject names tenant evil")
            && letter.data.reason.contains("the event names tenant acme"),
        "{}",
        letter.data.reason
    );
    let run_after = fleet
        .deps
        .store
        .latest_sync_run(&fleet.tenant, &connection)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        run_after.id, run_before.id,
        "no sync of acme's connection ran"
    );
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_whose_subject_names_another_tenant_changes_no_row() {
    let fleet = TestFleet::start().await;
    let connection = synced_connection(&fleet).await;
    let forged = Envelope::new(
        fleet.tenant.clone(),
        connection.clone(),
        wordpress(),
        CorrelationId::new(),
        StatusChanged {
            status: ConnectionStatus::Failed {
                reason: "forged".to_owned(),
                retryable: false,
            },
        },
    );
    let other = TenantId::parse("x").unwrap();
    publish_raw(
        &fleet,
        subject::status(&other, &connection),
        forged.to_json(),
    )
    .await;

    let (_, letter) = dead_letter(&fleet, "connector.dlq.status.>").await;

    assert!(
        letter.data.reason.contains("the subject names tenant x"),
        "{}",
        letter.data.reason
    );
    let row = fleet.row_in(&connection, ConnectionState::Synced).await;
    assert_eq!(row.last_error, None);
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_for_a_connection_that_does_not_exist_creates_none() {
    let fleet = TestFleet::start().await;
    let ghost = ConnectionId::new();
    let status = Envelope::new(
        fleet.tenant.clone(),
        ghost.clone(),
        wordpress(),
        CorrelationId::new(),
        StatusChanged {
            status: ConnectionStatus::Validating,
        },
    );
    publish_raw(&fleet, status.subject(), status.to_json()).await;

    let (_, letter) = dead_letter(&fleet, "connector.dlq.status.>").await;

    assert!(
        letter
            .data
            .reason
            .contains("a status creates no connection"),
        "{}",
        letter.data.reason
    );
    let row = fleet
        .deps
        .store
        .get_connection(&fleet.tenant, &ghost)
        .await
        .unwrap();
    assert_eq!(row, None);
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stray_save_request_leaves_a_healthy_connection_as_it_was() {
    let fleet = TestFleet::start().await;
    let connection = synced_connection(&fleet).await;
    let before = fleet.row_in(&connection, ConnectionState::Synced).await;
    let stray = Envelope::new(
        fleet.tenant.clone(),
        connection.clone(),
        wordpress(),
        CorrelationId::new(),
        SaveRequested {
            staged_version: 99,
            account: AccountInfo {
                id: "https://attacker.example".to_owned(),
                name: "Not yours".to_owned(),
            },
        },
    );
    publish_raw(&fleet, stray.subject(), stray.to_json()).await;

    let (_, letter) = dead_letter(&fleet, "connector.dlq.save.>").await;

    assert!(
        letter
            .data
            .reason
            .contains("no staged credentials version 99"),
        "{}",
        letter.data.reason
    );
    let after = fleet.row_in(&connection, ConnectionState::Synced).await;
    assert_eq!(after.account, before.account);
    assert_eq!(after.last_error, None);
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statuses_with_nul_characters_or_from_the_future_are_stored_and_bounded() {
    let fleet = TestFleet::start().await;
    let connection = synced_connection(&fleet).await;
    let mut future = Envelope::new(
        fleet.tenant.clone(),
        connection.clone(),
        wordpress(),
        CorrelationId::new(),
        StatusChanged {
            status: ConnectionStatus::Failed {
                reason: "bad\0byte".to_owned(),
                retryable: false,
            },
        },
    );
    future.occurred_at = Utc::now() + TimeDelta::days(3650);
    publish_raw(&fleet, future.subject(), future.to_json()).await;

    let failed = fleet.row_in(&connection, ConnectionState::Failed).await;
    assert_eq!(failed.last_error.as_deref(), Some("bad\u{fffd}byte"));
    assert!(failed.last_status_at.unwrap() <= Utc::now());

    // The next sync's statuses are applied: the forged date froze nothing.
    fleet.sync_now("wordpress", &connection).await;
    fleet.row_in(&connection, ConnectionState::Synced).await;
    fleet.stop().await;
}
