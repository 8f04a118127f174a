use chrono::{DateTime, Utc};
use fleet_events::{
    ConnectionId, ConnectionStatus, CorrelationId, Envelope, EventId, StatusChanged, TenantId,
};
use fleet_store::{Applied, Connection, StatusUpdate, Store};
use uuid::Uuid;

use crate::helpers::{at, connector, create_connection, spawn_store, tenant};

/// Applies `status` to `connection` as an event with `id` that occurred at `occurred_at`.
async fn apply(
    store: &Store,
    connection: &Connection,
    id: EventId,
    occurred_at: DateTime<Utc>,
    status: &ConnectionStatus,
) -> bool {
    store
        .apply_status(StatusUpdate {
            tenant: &connection.tenant,
            connection: &connection.id,
            connector: &connection.connector,
            event_id: id,
            occurred_at,
            status,
        })
        .await
        .unwrap()
        == Applied::Applied
}

async fn reload(store: &Store, connection: &Connection) -> Connection {
    store
        .get_connection(&connection.tenant, &connection.id)
        .await
        .unwrap()
        .unwrap()
}

fn syncing(records: u64) -> ConnectionStatus {
    ConnectionStatus::Syncing {
        records,
        pages: 1,
        stream: Some("posts".to_owned()),
    }
}

#[tokio::test]
async fn a_newer_status_replaces_the_stored_one() {
    let test = spawn_store().await;
    let connection = create_connection(&test.store, &tenant("acme")).await;
    let event = EventId::new();

    let applied = apply(&test.store, &connection, event, at(0), &syncing(10)).await;

    assert!(applied);
    let stored = reload(&test.store, &connection).await;
    assert_eq!(stored.status, syncing(10));
    assert_eq!(stored.last_status_at, Some(at(0)));
    assert_eq!(stored.last_status_event, Some(event));
}

#[tokio::test]
async fn the_same_event_applied_twice_changes_the_row_once() {
    let test = spawn_store().await;
    let connection = create_connection(&test.store, &tenant("acme")).await;
    let event = EventId::new();
    assert!(apply(&test.store, &connection, event, at(0), &syncing(10)).await);
    let after_first = reload(&test.store, &connection).await;

    let applied_again = apply(&test.store, &connection, event, at(0), &syncing(10)).await;

    assert!(!applied_again);
    assert_eq!(reload(&test.store, &connection).await, after_first);
}

#[tokio::test]
async fn an_older_event_arriving_after_a_newer_one_is_ignored() {
    let test = spawn_store().await;
    let connection = create_connection(&test.store, &tenant("acme")).await;
    let (older, newer) = (EventId::new(), EventId::new());
    assert!(apply(&test.store, &connection, newer, at(10), &syncing(20)).await);

    let applied = apply(&test.store, &connection, older, at(5), &syncing(10)).await;

    assert!(!applied);
    let stored = reload(&test.store, &connection).await;
    assert_eq!(stored.status, syncing(20));
    assert_eq!(stored.last_status_event, Some(newer));
}

#[tokio::test]
async fn events_of_the_same_instant_are_ordered_by_event_id() {
    let test = spawn_store().await;
    let connection = create_connection(&test.store, &tenant("acme")).await;
    let low = EventId::from(Uuid::from_u128(1));
    let high = EventId::from(Uuid::from_u128(2));
    assert!(apply(&test.store, &connection, high, at(0), &syncing(2)).await);

    let applied = apply(&test.store, &connection, low, at(0), &syncing(1)).await;

    assert!(!applied);
    assert_eq!(reload(&test.store, &connection).await.status, syncing(2));
}

#[tokio::test]
async fn concurrent_events_in_any_order_leave_the_newest() {
    let test = spawn_store().await;
    let connection = create_connection(&test.store, &tenant("acme")).await;
    let events: Vec<(EventId, ConnectionStatus)> =
        (0..20).map(|n| (EventId::new(), syncing(n))).collect();

    // Newest first, all at once: most arrive after a newer one was applied.
    let applications = events
        .iter()
        .rev()
        .map(|(id, status)| apply(&test.store, &connection, *id, at(0), status));
    futures::future::join_all(applications).await;

    let stored = reload(&test.store, &connection).await;
    assert_eq!(stored.status, syncing(19));
    assert_eq!(stored.last_status_event, Some(events[19].0));
}

#[tokio::test]
async fn invalid_sets_last_error_and_progress_after_it_keeps_it() {
    let test = spawn_store().await;
    let connection = create_connection(&test.store, &tenant("acme")).await;
    let invalid = ConnectionStatus::Invalid {
        reason: "The application password was rejected.".to_owned(),
    };

    apply(&test.store, &connection, EventId::new(), at(0), &invalid).await;
    let after_invalid = reload(&test.store, &connection).await;
    apply(
        &test.store,
        &connection,
        EventId::new(),
        at(1),
        &ConnectionStatus::Validating,
    )
    .await;
    let after_validating = reload(&test.store, &connection).await;

    let reason = Some("The application password was rejected.".to_owned());
    assert_eq!(after_invalid.last_error, reason);
    assert_eq!(after_validating.status, ConnectionStatus::Validating);
    assert_eq!(after_validating.last_error, reason);
}

#[tokio::test]
async fn synced_sets_last_sync_and_records_and_clears_last_error() {
    let test = spawn_store().await;
    let connection = create_connection(&test.store, &tenant("acme")).await;
    let failed = ConnectionStatus::Failed {
        reason: "The provider timed out.".to_owned(),
        retryable: true,
    };
    let synced = ConnectionStatus::Synced {
        records: 1234,
        counts: fleet_events::SyncCounts::default(),
        duration_ms: 5000,
        last_sync_at: at(60),
        run_id: None,
    };

    apply(&test.store, &connection, EventId::new(), at(0), &failed).await;
    apply(&test.store, &connection, EventId::new(), at(61), &synced).await;
    let stored = reload(&test.store, &connection).await;

    assert_eq!(stored.status, synced);
    assert_eq!(stored.last_error, None);
    assert_eq!(stored.last_sync_at, Some(at(60)));
    assert_eq!(stored.records_total, 1234);
}

#[tokio::test]
async fn a_later_sync_keeps_the_last_sync_time_until_it_completes() {
    let test = spawn_store().await;
    let connection = create_connection(&test.store, &tenant("acme")).await;
    let synced = ConnectionStatus::Synced {
        records: 7,
        counts: fleet_events::SyncCounts::default(),
        duration_ms: 100,
        last_sync_at: at(10),
        run_id: None,
    };
    apply(&test.store, &connection, EventId::new(), at(10), &synced).await;

    apply(
        &test.store,
        &connection,
        EventId::new(),
        at(20),
        &syncing(3),
    )
    .await;

    let stored = reload(&test.store, &connection).await;
    assert_eq!(stored.last_sync_at, Some(at(10)));
    assert_eq!(stored.records_total, 7);
}

#[tokio::test]
async fn a_status_for_an_unknown_connection_creates_no_row() {
    let test = spawn_store().await;
    let acme = tenant("acme");
    let id = ConnectionId::new();
    let trello = connector("trello");
    let retrying = ConnectionStatus::Retrying {
        attempt: 1,
        next_at: at(30),
        reason: "Trello rate-limited the request.".to_owned(),
    };

    let applied = test
        .store
        .apply_status(StatusUpdate {
            tenant: &acme,
            connection: &id,
            connector: &trello,
            event_id: EventId::new(),
            occurred_at: at(0),
            status: &retrying,
        })
        .await
        .unwrap();

    assert_eq!(applied, Applied::Unknown);
    assert_eq!(test.store.get_connection(&acme, &id).await.unwrap(), None);
}

#[tokio::test]
async fn a_status_naming_another_provider_is_not_applied() {
    let test = spawn_store().await;
    let connection = create_connection(&test.store, &tenant("acme")).await;
    let before = reload(&test.store, &connection).await;
    let other = connector("trello");
    assert_ne!(connection.connector, other);

    let applied = test
        .store
        .apply_status(StatusUpdate {
            tenant: &connection.tenant,
            connection: &connection.id,
            connector: &other,
            event_id: EventId::new(),
            occurred_at: at(0),
            status: &syncing(1),
        })
        .await
        .unwrap();

    assert_eq!(applied, Applied::Unknown);
    assert_eq!(reload(&test.store, &connection).await, before);
}

#[tokio::test]
async fn a_status_from_the_future_counts_as_applied_now_and_does_not_freeze_the_row() {
    let test = spawn_store().await;
    let connection = create_connection(&test.store, &tenant("acme")).await;
    let failed = ConnectionStatus::Failed {
        reason: "forged".to_owned(),
        retryable: false,
    };
    let far_future = Utc::now() + chrono::TimeDelta::days(365 * 10);
    assert!(
        apply(
            &test.store,
            &connection,
            EventId::new(),
            far_future,
            &failed
        )
        .await
    );
    let stored = reload(&test.store, &connection).await;
    assert!(stored.last_status_at.unwrap() <= Utc::now());

    // A status made after the forged one was applied replaces it.
    let later = Utc::now() + chrono::TimeDelta::seconds(1);
    let applied = apply(&test.store, &connection, EventId::new(), later, &syncing(5)).await;

    assert!(applied);
    assert_eq!(reload(&test.store, &connection).await.status, syncing(5));
}

#[tokio::test]
async fn a_status_event_applies_through_its_envelope() {
    let test = spawn_store().await;
    let acme: TenantId = tenant("acme");
    let connection = create_connection(&test.store, &acme).await;
    let event = Envelope::new(
        acme.clone(),
        connection.id.clone(),
        connection.connector.clone(),
        CorrelationId::new(),
        StatusChanged {
            status: ConnectionStatus::Saving,
        },
    );

    let applied = test
        .store
        .apply_status(StatusUpdate::from(&event))
        .await
        .unwrap();

    assert_eq!(applied, Applied::Applied);
    let stored = reload(&test.store, &connection).await;
    assert_eq!(stored.status, ConnectionStatus::Saving);
    assert_eq!(stored.last_status_event, Some(event.id));
}

#[tokio::test]
async fn a_status_arriving_after_the_connection_was_deleted_does_not_bring_it_back() {
    let test = spawn_store().await;
    let connection = create_connection(&test.store, &tenant("acme")).await;
    assert!(
        test.store
            .delete_connection(&connection.tenant, &connection.id)
            .await
            .unwrap()
    );

    let applied = apply(
        &test.store,
        &connection,
        EventId::new(),
        at(5),
        &syncing(10),
    )
    .await;

    assert!(!applied);
    let row = test
        .store
        .get_connection(&connection.tenant, &connection.id)
        .await
        .unwrap();
    assert_eq!(row, None);
}

#[tokio::test]
async fn a_reason_with_nul_characters_is_stored_with_them_replaced() {
    let test = spawn_store().await;
    let connection = create_connection(&test.store, &tenant("acme")).await;
    let failed = ConnectionStatus::Failed {
        reason: "bad\0byte".to_owned(),
        retryable: false,
    };

    assert!(apply(&test.store, &connection, EventId::new(), at(0), &failed).await);

    let stored = reload(&test.store, &connection).await;
    assert_eq!(stored.last_error.as_deref(), Some("bad\u{fffd}byte"));
    assert_eq!(
        stored.status,
        ConnectionStatus::Failed {
            reason: "bad\u{fffd}byte".to_owned(),
            retryable: false,
        }
    );
}

fn update<'a>(
    connection: &'a Connection,
    id: EventId,
    occurred_at: DateTime<Utc>,
    status: &'a ConnectionStatus,
) -> StatusUpdate<'a> {
    StatusUpdate {
        tenant: &connection.tenant,
        connection: &connection.id,
        connector: &connection.connector,
        event_id: id,
        occurred_at,
        status,
    }
}

#[tokio::test]
async fn a_batch_leaves_each_row_as_its_statuses_applied_in_order_would() {
    let test = spawn_store().await;
    let acme = tenant("acme");
    let (failing, finishing) = (
        create_connection(&test.store, &acme).await,
        create_connection(&test.store, &acme).await,
    );
    let failed = ConnectionStatus::Failed {
        reason: "The provider timed out.".to_owned(),
        retryable: true,
    };
    let synced = ConnectionStatus::Synced {
        records: 42,
        counts: fleet_events::SyncCounts::default(),
        duration_ms: 100,
        last_sync_at: at(10),
        run_id: None,
    };
    let (failed_id, newest_failing, synced_id, newest_finishing) = (
        EventId::new(),
        EventId::new(),
        EventId::new(),
        EventId::new(),
    );
    let early = syncing(3);
    // Interleaved and out of order, with a duplicate: the newest of each
    // connection wins, and the statuses before it leave their error and
    // sync time as they would one after the other.
    let batch = [
        update(
            &failing,
            newest_failing,
            at(20),
            &ConnectionStatus::Validating,
        ),
        update(&finishing, synced_id, at(10), &synced),
        update(&failing, failed_id, at(10), &failed),
        update(
            &finishing,
            newest_finishing,
            at(20),
            &ConnectionStatus::Validating,
        ),
        update(&failing, failed_id, at(10), &failed),
        update(&finishing, EventId::new(), at(5), &early),
    ];

    let applied = test.store.apply_statuses(&batch).await.unwrap();

    assert_eq!(applied, vec![Applied::Applied; batch.len()]);
    let failing = reload(&test.store, &failing).await;
    assert_eq!(failing.status, ConnectionStatus::Validating);
    assert_eq!(failing.last_status_event, Some(newest_failing));
    assert_eq!(
        failing.last_error.as_deref(),
        Some("The provider timed out.")
    );
    let finishing = reload(&test.store, &finishing).await;
    assert_eq!(finishing.status, ConnectionStatus::Validating);
    assert_eq!(finishing.last_status_event, Some(newest_finishing));
    assert_eq!(finishing.last_sync_at, Some(at(10)));
    assert_eq!(finishing.records_total, 42);
    assert_eq!(finishing.last_error, None);
}

#[tokio::test]
async fn a_batch_says_of_each_status_whether_it_was_applied_stale_deleted_or_unknown() {
    let test = spawn_store().await;
    let acme = tenant("acme");
    let current = create_connection(&test.store, &acme).await;
    let deleted = create_connection(&test.store, &acme).await;
    assert!(
        test.store
            .delete_connection(&deleted.tenant, &deleted.id)
            .await
            .unwrap()
    );
    assert!(apply(&test.store, &current, EventId::new(), at(10), &syncing(5)).await);
    let unknown = Connection {
        id: ConnectionId::new(),
        ..current.clone()
    };
    let other_provider = Connection {
        connector: connector("trello"),
        ..current.clone()
    };
    let (older, newer) = (syncing(1), syncing(9));

    let applied = test
        .store
        .apply_statuses(&[
            update(&current, EventId::new(), at(5), &older),
            update(&deleted, EventId::new(), at(20), &newer),
            update(&unknown, EventId::new(), at(20), &newer),
            update(&other_provider, EventId::new(), at(20), &newer),
            update(&current, EventId::new(), at(20), &newer),
        ])
        .await
        .unwrap();

    assert_eq!(
        applied,
        vec![
            Applied::Stale,
            Applied::Deleted,
            Applied::Unknown,
            Applied::Unknown,
            Applied::Applied
        ]
    );
    assert_eq!(reload(&test.store, &current).await.status, newer);
    assert_eq!(
        test.store
            .get_connection(&unknown.tenant, &unknown.id)
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn concurrent_batches_over_the_same_rows_all_commit_and_leave_the_newest() {
    let test = spawn_store().await;
    let acme = tenant("acme");
    let mut connections = Vec::new();
    for _ in 0..20 {
        connections.push(create_connection(&test.store, &acme).await);
    }
    let statuses: Vec<ConnectionStatus> = (0..8).map(syncing).collect();
    let batches: Vec<Vec<StatusUpdate<'_>>> = statuses
        .iter()
        .enumerate()
        .map(|(n, status)| {
            let mut batch: Vec<StatusUpdate<'_>> = connections
                .iter()
                .map(|connection| update(connection, EventId::new(), at(n as i64), status))
                .collect();
            if n % 2 == 1 {
                batch.reverse();
            }
            batch
        })
        .collect();

    let written =
        futures::future::join_all(batches.iter().map(|batch| test.store.apply_statuses(batch)))
            .await;

    for result in written {
        result.expect("no batch fails, none deadlocks");
    }
    for connection in &connections {
        assert_eq!(reload(&test.store, connection).await.status, syncing(7));
    }
}
