use std::time::Duration;

use fleet_events::ConnectionId;

use crate::helpers::{create_connection, spawn_store, tenant};

#[tokio::test]
async fn a_second_refresh_of_the_same_connection_waits_for_the_first() {
    let db = spawn_store().await;
    let acme = tenant("acme");
    let connection = create_connection(&db.store, &acme).await;
    let first = db.store.lock_refresh(&acme, &connection.id).await.unwrap();

    let (store, id, tenant) = (db.store.clone(), connection.id.clone(), acme.clone());
    let second = tokio::spawn(async move { store.lock_refresh(&tenant, &id).await.unwrap() });
    // While the first holds the lock, the second must not get it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!second.is_finished(), "the lock is exclusive");

    first.record_success().await.unwrap();
    let second = tokio::time::timeout(Duration::from_secs(5), second)
        .await
        .expect("released")
        .unwrap();
    second.release().await.unwrap();
}

#[tokio::test]
async fn refreshes_of_different_connections_do_not_wait_for_each_other() {
    let db = spawn_store().await;
    let acme = tenant("acme");
    let one = create_connection(&db.store, &acme).await;
    let two = create_connection(&db.store, &acme).await;

    let first = db.store.lock_refresh(&acme, &one.id).await.unwrap();
    let second = tokio::time::timeout(
        Duration::from_secs(5),
        db.store.lock_refresh(&acme, &two.id),
    )
    .await
    .expect("not blocked by another connection's lock")
    .unwrap();

    first.release().await.unwrap();
    second.release().await.unwrap();
}

#[tokio::test]
async fn a_dropped_lock_is_released() {
    let db = spawn_store().await;
    let acme = tenant("acme");
    let connection = create_connection(&db.store, &acme).await;

    drop(db.store.lock_refresh(&acme, &connection.id).await.unwrap());

    let again = tokio::time::timeout(
        Duration::from_secs(5),
        db.store.lock_refresh(&acme, &connection.id),
    )
    .await
    .expect("the dropped lock was released")
    .unwrap();
    again.release().await.unwrap();
}

#[tokio::test]
async fn failures_count_until_a_success_resets_them() {
    let db = spawn_store().await;
    let acme = tenant("acme");
    let connection = create_connection(&db.store, &acme).await;
    assert_eq!(
        db.store
            .refresh_history(&acme, &connection.id)
            .await
            .unwrap(),
        None
    );

    let lock = db.store.lock_refresh(&acme, &connection.id).await.unwrap();
    let first = lock.record_failure("provider returned 503").await.unwrap();
    let lock = db.store.lock_refresh(&acme, &connection.id).await.unwrap();
    let second = lock.record_failure("provider returned 502").await.unwrap();

    assert_eq!((first.failures, first.failure_days), (1, 1));
    assert_eq!(
        (second.failures, second.failure_days),
        (2, 1),
        "same day, one failure day"
    );
    assert_eq!(second.last_error.as_deref(), Some("provider returned 502"));

    let lock = db.store.lock_refresh(&acme, &connection.id).await.unwrap();
    lock.record_success().await.unwrap();
    let history = db
        .store
        .refresh_history(&acme, &connection.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (history.failures, history.failure_days, history.last_error),
        (0, 0, None)
    );
    assert!(history.last_success_at.is_some());
}

#[tokio::test]
async fn recording_a_refresh_of_a_deleted_connection_is_a_clear_error() {
    let db = spawn_store().await;
    let acme = tenant("acme");
    let ghost = ConnectionId::new();

    let lock = db.store.lock_refresh(&acme, &ghost).await.unwrap();
    let error = lock.record_success().await.unwrap_err();

    assert!(
        matches!(error, fleet_store::Error::ConnectionNotFound { .. }),
        "{error}"
    );
}
