use std::time::Duration;

use chrono::Utc;
use fleet_events::{ConnectionStatus, CorrelationId, EventId, SyncCounts, SyncTrigger};
use fleet_store::{
    CheckResult, Connection, FailureSource, StatusUpdate, Store, SyncOutcome, SyncResult,
};
use sqlx::PgPool;

use crate::helpers::{create_connection, spawn_store, tenant};

async fn synced(store: &Store, connection: &Connection) {
    store
        .apply_status(StatusUpdate {
            tenant: &connection.tenant,
            connection: &connection.id,
            connector: &connection.connector,
            event_id: EventId::new(),
            occurred_at: Utc::now(),
            status: &ConnectionStatus::Synced {
                records: 0,
                counts: SyncCounts::default(),
                duration_ms: 1,
                last_sync_at: Utc::now(),
                run_id: None,
            },
        })
        .await
        .unwrap();
}

/// Moves the connection's last success and check `seconds` into the past.
async fn age(url: &str, connection: &Connection, seconds: i64) {
    let pool = PgPool::connect(url).await.unwrap();
    sqlx::query(
        "UPDATE connection_health \
         SET last_ok_at = now() - make_interval(secs => $3), \
             last_check_at = now() - make_interval(secs => $3) \
         WHERE tenant = $1 AND connection = $2",
    )
    .bind(connection.tenant.as_str())
    .bind(connection.id.as_str())
    .bind(seconds as f64)
    .execute(&pool)
    .await
    .unwrap();
}

#[tokio::test]
async fn failures_in_a_row_degrade_a_connection_once_and_a_completed_run_recovers_it() {
    let test = spawn_store().await;
    let store = &test.store;
    let acme = tenant("acme");
    let connection = create_connection(store, &acme).await;
    let id = &connection.id;

    let mut changes = Vec::new();
    for reason in ["HTTP 503", "HTTP 503", "HTTP 502", "HTTP 503"] {
        changes.push(
            store
                .record_failure(&acme, id, reason, FailureSource::SyncRun, 3)
                .await
                .unwrap(),
        );
    }
    assert!(changes[0].is_none() && changes[1].is_none() && changes[3].is_none());
    let degraded = changes[2].clone().expect("the third failure degrades it");
    assert_eq!(degraded.consecutive_failures, 3);
    let health = &store.tenant_health(&acme, None).await.unwrap()[id];
    assert_eq!(health.consecutive_failures, 4);
    assert_eq!(health.degraded_since, Some(degraded.since));
    assert_eq!(health.last_failure.as_deref(), Some("HTTP 503"));

    let run = CorrelationId::new();
    store
        .start_sync_run(&acme, id, run, SyncTrigger::Manual)
        .await
        .unwrap();
    let outcome = SyncOutcome {
        records: 0,
        pages: 1,
        added: 0,
        updated: 0,
        deleted: 0,
        result: SyncResult::Succeeded,
    };
    let expires = crate::helpers::at(3600);
    let completed = store
        .complete_sync_run(&acme, id, run, &outcome, Some(expires), None)
        .await
        .unwrap();
    assert_eq!(completed.recovered_from, Some(degraded.since));
    let again = store
        .complete_sync_run(&acme, id, run, &outcome, Some(expires), None)
        .await
        .unwrap();
    assert_eq!(
        again.recovered_from, None,
        "a redelivery recovers nothing more"
    );

    let report = store.health_report(&acme, id).await.unwrap().unwrap();
    assert_eq!(report.health.consecutive_failures, 0);
    assert_eq!(report.health.degraded_since, None);
    assert!(report.health.last_ok_at.is_some());
    assert_eq!(report.health.token_expires_at, Some(expires));
    assert_eq!(report.recent_runs.len(), 1);
    assert_eq!(report.recent_runs[0].id, run);
    // Hourly, never synced on schedule: due an hour after its creation.
    assert_eq!(
        report.next_sync_at,
        Some(connection.created_at + chrono::Duration::hours(1))
    );
    assert!(
        store
            .health_report(&tenant("globex"), id)
            .await
            .unwrap()
            .is_none(),
        "another tenant sees no health of it"
    );
}

#[tokio::test]
async fn a_due_check_is_claimed_by_one_worker_and_only_for_a_synced_idle_connection() {
    let test = spawn_store().await;
    let store = &test.store;
    let acme = tenant("acme");
    let every = Duration::from_secs(3600);
    let idle = create_connection(store, &acme).await;
    let fresh = create_connection(store, &acme).await;
    let pending = create_connection(store, &acme).await;
    let busy = create_connection(store, &acme).await;
    for connection in [&idle, &fresh, &busy] {
        synced(store, connection).await;
    }
    for connection in [&idle, &pending, &busy] {
        age(&test.url, connection, 7200).await;
    }
    assert_eq!(
        store
            .claim_sync(fleet_store::SlotClaim {
                tenant: &acme,
                connection: &busy.id,
                run: CorrelationId::new(),
                request: EventId::new(),
                attempt: 1,
                hold: Duration::from_secs(60),
                max_per_tenant: 4,
                trigger: SyncTrigger::Scheduled,
            })
            .await
            .unwrap(),
        fleet_store::Claim::Granted
    );

    let (first, second) = tokio::join!(
        store.claim_health_checks(every, 10),
        store.claim_health_checks(every, 10)
    );
    let claimed: Vec<_> = first.unwrap().into_iter().chain(second.unwrap()).collect();
    assert_eq!(
        claimed.iter().map(|c| &c.connection).collect::<Vec<_>>(),
        [&idle.id],
        "only the synced, idle connection without a success for an hour, once"
    );
    assert!(
        store
            .claim_health_checks(every, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let health = &store.tenant_health(&acme, Some(&idle.id)).await.unwrap()[&idle.id];
    assert!(
        health.last_check_at.is_some(),
        "the claim marks the check started"
    );
    assert_eq!(health.last_check_result, None, "and no check has ended yet");

    let recovered = store.record_success(&acme, &idle.id, true).await.unwrap();
    assert_eq!(recovered, None);
    let health = &store.tenant_health(&acme, Some(&idle.id)).await.unwrap()[&idle.id];
    assert_eq!(health.last_check_result, Some(CheckResult::Ok));
    assert_eq!(store.tenant_health(&acme, None).await.unwrap().len(), 4);
}
