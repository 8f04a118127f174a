use fleet_events::{ConnectionId, CorrelationId, SyncTrigger};
use fleet_store::{Error, PageCommit, Pass, RecordUpsert, SyncOutcome, SyncResult};
use serde_json::json;

use crate::helpers::{create_connection, spawn_store, tenant};

#[tokio::test]
async fn a_run_starts_once_and_finishes_once() {
    let test = spawn_store().await;
    let acme = tenant("acme");
    let connection = create_connection(&test.store, &acme).await;
    let run = CorrelationId::new();
    let store = &test.store;

    store
        .start_sync_run(&acme, &connection.id, run, SyncTrigger::Setup)
        .await
        .unwrap();
    store
        .start_sync_run(&acme, &connection.id, run, SyncTrigger::Manual)
        .await
        .unwrap();
    let running = store
        .latest_sync_run(&acme, &connection.id)
        .await
        .unwrap()
        .unwrap();
    let succeeded = SyncOutcome {
        records: 120,
        pages: 3,
        added: 0,
        updated: 0,
        deleted: 0,
        result: SyncResult::Succeeded,
    };
    let finished = store
        .finish_sync_run(&acme, &connection.id, run, &succeeded)
        .await
        .unwrap();
    let failed_late = SyncOutcome {
        records: 0,
        pages: 0,
        added: 0,
        updated: 0,
        deleted: 0,
        result: SyncResult::Failed {
            error: "late".to_owned(),
        },
    };
    let finished_again = store
        .finish_sync_run(&acme, &connection.id, run, &failed_late)
        .await
        .unwrap();
    let done = store
        .latest_sync_run(&acme, &connection.id)
        .await
        .unwrap()
        .unwrap();

    assert_eq!(running.id, run);
    assert_eq!(running.trigger, SyncTrigger::Setup);
    assert_eq!(running.result, None);
    assert_eq!(running.finished_at, None);
    assert!(finished);
    assert!(!finished_again);
    assert_eq!(done.result, Some(SyncResult::Succeeded));
    assert_eq!((done.records, done.pages), (120, 3));
    assert!(done.finished_at.is_some_and(|at| at >= done.started_at));
}

#[tokio::test]
async fn a_failed_run_keeps_its_error() {
    let test = spawn_store().await;
    let acme = tenant("acme");
    let connection = create_connection(&test.store, &acme).await;
    let run = CorrelationId::new();
    test.store
        .start_sync_run(&acme, &connection.id, run, SyncTrigger::Scheduled)
        .await
        .unwrap();
    let outcome = SyncOutcome {
        records: 40,
        pages: 1,
        added: 0,
        updated: 0,
        deleted: 0,
        result: SyncResult::Failed {
            error: "The provider revoked the token.".to_owned(),
        },
    };

    test.store
        .finish_sync_run(&acme, &connection.id, run, &outcome)
        .await
        .unwrap();

    let stored = test
        .store
        .latest_sync_run(&acme, &connection.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.result, Some(outcome.result));
    assert_eq!(stored.trigger, SyncTrigger::Scheduled);
}

#[tokio::test]
async fn the_latest_run_is_the_one_started_last() {
    let test = spawn_store().await;
    let acme = tenant("acme");
    let connection = create_connection(&test.store, &acme).await;
    let (first, second) = (CorrelationId::new(), CorrelationId::new());

    test.store
        .start_sync_run(&acme, &connection.id, first, SyncTrigger::Setup)
        .await
        .unwrap();
    test.store
        .start_sync_run(&acme, &connection.id, second, SyncTrigger::Manual)
        .await
        .unwrap();

    let latest = test
        .store
        .latest_sync_run(&acme, &connection.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(latest.id, second);
}

#[tokio::test]
async fn another_tenant_can_neither_see_nor_finish_a_run() {
    let test = spawn_store().await;
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    let connection = create_connection(&test.store, &acme).await;
    let run = CorrelationId::new();
    test.store
        .start_sync_run(&acme, &connection.id, run, SyncTrigger::Manual)
        .await
        .unwrap();
    let outcome = SyncOutcome {
        records: 0,
        pages: 0,
        added: 0,
        updated: 0,
        deleted: 0,
        result: SyncResult::Succeeded,
    };

    let seen = test
        .store
        .latest_sync_run(&globex, &connection.id)
        .await
        .unwrap();
    let finished = test
        .store
        .finish_sync_run(&globex, &connection.id, run, &outcome)
        .await
        .unwrap();

    assert_eq!(seen, None);
    assert!(!finished);
}

#[tokio::test]
async fn starting_a_run_of_a_missing_connection_reports_it_not_found() {
    let test = spawn_store().await;

    let err = test
        .store
        .start_sync_run(
            &tenant("acme"),
            &ConnectionId::new(),
            CorrelationId::new(),
            SyncTrigger::Manual,
        )
        .await
        .unwrap_err();

    assert!(matches!(err, Error::ConnectionNotFound { .. }), "{err:?}");
}

#[tokio::test]
async fn completing_a_run_finishes_it_and_counts_the_live_records() {
    let test = spawn_store().await;
    let acme = tenant("acme");
    let store = &test.store;
    let connection = create_connection(store, &acme).await;
    let run = CorrelationId::new();
    store
        .start_sync_run(&acme, &connection.id, run, SyncTrigger::Setup)
        .await
        .unwrap();
    let records: Vec<RecordUpsert> = (1..=3)
        .map(|n| RecordUpsert {
            external_id: n.to_string(),
            payload: json!({"n": n}),
            updated_at: None,
        })
        .collect();
    for (stream, records) in [("posts", &records[..2]), ("pages", &records[2..])] {
        store
            .commit_page(PageCommit {
                tenant: &acme,
                connection: &connection.id,
                stream,
                pass: &Pass::begin(true),
                records,
                cursor: Some(&json!({"page": 2})),
                gap: None,
                removed: &[],
                lease: None,
            })
            .await
            .unwrap();
    }

    let outcome = |records, pages, added| SyncOutcome {
        records,
        pages,
        added,
        updated: 0,
        deleted: 0,
        result: SyncResult::Partial {
            reason: "stopped at the limit".to_owned(),
        },
    };
    let total = store
        .complete_sync_run(&acme, &connection.id, run, &outcome(3, 2, 3), None, None)
        .await
        .unwrap()
        .records_total;
    let again = store
        .complete_sync_run(&acme, &connection.id, run, &outcome(0, 0, 0), None, None)
        .await
        .unwrap()
        .records_total;
    let stored = store
        .get_connection(&acme, &connection.id)
        .await
        .unwrap()
        .unwrap();
    let done = store
        .latest_sync_run(&acme, &connection.id)
        .await
        .unwrap()
        .unwrap();

    assert_eq!((total, again), (3, 3));
    assert_eq!(
        done.result,
        Some(SyncResult::Partial {
            reason: "stopped at the limit".to_owned()
        })
    );
    assert_eq!((done.records, done.pages, done.added), (3, 2, 3));
    assert!(done.finished_at.is_some());
    assert_eq!(stored.records_total, 3);
}
