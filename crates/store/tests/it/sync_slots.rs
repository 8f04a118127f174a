use std::time::Duration;

use fleet_events::{EventId, SyncTrigger};
use fleet_store::{
    Claim, Connection, Error, PageCommit, Pass, PassEnd, Queued, RecordUpsert, SlotClaim,
    SlotHolder, Store, SyncLease, SyncOutcome, SyncResult, run_id,
};
use serde_json::json;

use crate::helpers::{create_connection, spawn_store, tenant};

const HOLD: Duration = Duration::from_secs(300);

fn claim(connection: &Connection, request: EventId, max_per_tenant: u32) -> SlotClaim<'_> {
    SlotClaim {
        tenant: &connection.tenant,
        connection: &connection.id,
        run: run_id(request, 1),
        request,
        attempt: 1,
        hold: HOLD,
        max_per_tenant,
        trigger: SyncTrigger::Manual,
    }
}

/// The hold of `request`'s run (its first stream sequence) by its
/// `attempt`-th delivery.
fn lease(request: EventId, attempt: u32) -> SyncLease {
    SyncLease {
        run: run_id(request, 1),
        attempt,
    }
}

async fn queue(store: &Store, connection: &Connection, request: EventId) -> Queued {
    store
        .queue_sync(&connection.tenant, &connection.id, request, HOLD)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_second_request_while_one_is_queued_or_running_joins_it() {
    let test = spawn_store().await;
    let connection = create_connection(&test.store, &tenant("acme")).await;
    let (first, second, scheduled) = (EventId::new(), EventId::new(), EventId::new());

    assert_eq!(queue(&test.store, &connection, first).await, Queued::Queued);
    let queued = queue(&test.store, &connection, second).await;
    assert_eq!(
        queued,
        Queued::Coalesced(SlotHolder {
            run: first.as_uuid(),
            running: false
        })
    );

    // The queued request's run takes the slot; another request joins it.
    let granted = test.store.claim_sync(claim(&connection, first, 4)).await;
    assert_eq!(granted.unwrap(), Claim::Granted);
    let joined = test
        .store
        .claim_sync(claim(&connection, scheduled, 4))
        .await
        .unwrap();
    assert_eq!(
        joined,
        Claim::Coalesced(SlotHolder {
            run: run_id(first, 1).as_uuid(),
            running: true
        })
    );
    // A redelivery of the running request takes it back.
    let again = test.store.claim_sync(claim(&connection, first, 4)).await;
    assert_eq!(again.unwrap(), Claim::Granted);

    test.store
        .release_sync(&connection.tenant, &connection.id, lease(first, 1))
        .await
        .unwrap();
    assert_eq!(
        queue(&test.store, &connection, second).await,
        Queued::Queued
    );
}

#[tokio::test]
async fn a_queued_request_names_its_run_once_published() {
    let test = spawn_store().await;
    let connection = create_connection(&test.store, &tenant("acme")).await;
    let request = EventId::new();
    queue(&test.store, &connection, request).await;

    test.store
        .name_queued_run(
            &connection.tenant,
            &connection.id,
            request,
            run_id(request, 7),
        )
        .await
        .unwrap();

    let holder = queue(&test.store, &connection, EventId::new()).await;
    assert_eq!(
        holder,
        Queued::Coalesced(SlotHolder {
            run: run_id(request, 7).as_uuid(),
            running: false
        })
    );
    let mut claimed = claim(&connection, request, 4);
    claimed.run = run_id(request, 7);
    assert_eq!(
        test.store.claim_sync(claimed).await.unwrap(),
        Claim::Granted
    );
}

/// A queued request's slot is its own whatever run its message became;
/// once a run of it holds the slot, another message of the same request
/// (a schedule's next production, which carries the same stored envelope)
/// joins that run instead of taking the slot from it.
#[tokio::test]
async fn a_queued_request_takes_its_own_slot_and_its_next_message_joins_the_running_one() {
    let test = spawn_store().await;
    let connection = create_connection(&test.store, &tenant("acme")).await;
    let request = EventId::new();
    queue(&test.store, &connection, request).await;
    test.store
        .name_queued_run(
            &connection.tenant,
            &connection.id,
            request,
            run_id(request, 7),
        )
        .await
        .unwrap();

    // A message of the request under another stream sequence than the one
    // the slot was named after still takes the queued slot.
    let mut copy = claim(&connection, request, 4);
    copy.run = run_id(request, 9);
    assert_eq!(test.store.claim_sync(copy).await.unwrap(), Claim::Granted);
    // Once it runs, the next message of the same request joins it.
    let mut next = claim(&connection, request, 4);
    next.run = run_id(request, 12);
    assert_eq!(
        test.store.claim_sync(next).await.unwrap(),
        Claim::Coalesced(SlotHolder {
            run: run_id(request, 9).as_uuid(),
            running: true
        })
    );
    let other = test
        .store
        .claim_sync(claim(&connection, EventId::new(), 4))
        .await
        .unwrap();
    assert!(matches!(other, Claim::Coalesced(_)), "{other:?}");
}

#[tokio::test]
async fn a_tenant_runs_at_most_its_maximum_of_syncs_at_once() {
    let test = spawn_store().await;
    let acme = tenant("acme");
    let first = create_connection(&test.store, &acme).await;
    let second = create_connection(&test.store, &acme).await;
    let other_tenant = create_connection(&test.store, &tenant("globex")).await;
    let (a, b, c) = (EventId::new(), EventId::new(), EventId::new());

    assert_eq!(
        test.store.claim_sync(claim(&first, a, 1)).await.unwrap(),
        Claim::Granted
    );
    let busy = test.store.claim_sync(claim(&second, b, 1)).await.unwrap();
    let elsewhere = test
        .store
        .claim_sync(claim(&other_tenant, c, 1))
        .await
        .unwrap();

    assert_eq!(busy, Claim::TenantBusy { running: 1 });
    assert_eq!(
        elsewhere,
        Claim::Granted,
        "another tenant's syncs do not count"
    );
    test.store
        .release_sync(&acme, &first.id, lease(a, 1))
        .await
        .unwrap();
    assert_eq!(
        test.store.claim_sync(claim(&second, b, 1)).await.unwrap(),
        Claim::Granted
    );
}

#[tokio::test]
async fn concurrent_claims_of_one_tenant_never_exceed_its_maximum_together() {
    let test = spawn_store().await;
    let acme = tenant("acme");
    let mut connections = Vec::new();
    for _ in 0..24 {
        connections.push(create_connection(&test.store, &acme).await);
    }
    let requests: Vec<EventId> = connections.iter().map(|_| EventId::new()).collect();

    // Every claim at once, on as many pooled connections as there are:
    // each decides after the previous one under the tenant's lock committed.
    let claims = connections
        .iter()
        .zip(&requests)
        .map(|(connection, &request)| test.store.claim_sync(claim(connection, request, 3)));
    let outcomes = futures::future::join_all(claims).await;

    let granted = outcomes
        .iter()
        .filter(|outcome| matches!(outcome, Ok(Claim::Granted)))
        .count();
    assert_eq!(granted, 3, "{outcomes:?}");
    assert!(
        outcomes
            .iter()
            .all(|outcome| matches!(outcome, Ok(Claim::Granted | Claim::TenantBusy { .. }))),
        "{outcomes:?}"
    );
}

#[tokio::test]
async fn a_lapsed_hold_frees_the_slot_and_its_run_learns_it_on_renewal() {
    let test = spawn_store().await;
    let connection = create_connection(&test.store, &tenant("acme")).await;
    let (stalled, next) = (EventId::new(), EventId::new());
    let mut lapsing = claim(&connection, stalled, 4);
    lapsing.hold = Duration::ZERO;
    assert_eq!(
        test.store.claim_sync(lapsing).await.unwrap(),
        Claim::Granted
    );

    let taken = test
        .store
        .claim_sync(claim(&connection, next, 4))
        .await
        .unwrap();
    let renewed = test
        .store
        .renew_sync(&connection.tenant, &connection.id, lease(stalled, 1), HOLD)
        .await
        .unwrap();

    assert_eq!(taken, Claim::Granted);
    assert!(!renewed, "the stalled run no longer holds the slot");
    let current = test
        .store
        .renew_sync(&connection.tenant, &connection.id, lease(next, 1), HOLD)
        .await
        .unwrap();
    assert!(current);
}

#[tokio::test]
async fn claims_for_a_connection_that_does_not_exist_say_so() {
    let test = spawn_store().await;
    let connection = create_connection(&test.store, &tenant("acme")).await;
    test.store
        .delete_connection(&connection.tenant, &connection.id)
        .await
        .unwrap();

    let claimed = test
        .store
        .claim_sync(claim(&connection, EventId::new(), 4))
        .await;
    let queued = test
        .store
        .queue_sync(&connection.tenant, &connection.id, EventId::new(), HOLD)
        .await;

    assert_eq!(claimed.unwrap(), Claim::Missing);
    assert!(matches!(
        queued,
        Err(fleet_store::Error::ConnectionNotFound { .. })
    ));
}

/// A delivery of a sync request that waited past its ack wait while the
/// server gave the message to another worker: the later delivery takes the
/// run over, and from then on the earlier one can neither claim, renew,
/// write a page, end a pass nor free the slot.
#[tokio::test]
async fn a_later_delivery_of_the_running_request_fences_the_earlier_one_out() {
    let test = spawn_store().await;
    let connection = create_connection(&test.store, &tenant("acme")).await;
    let (tenant, id) = (&connection.tenant, &connection.id);
    let request = EventId::new();
    let (first, second) = (lease(request, 1), lease(request, 2));
    let mut redelivered = claim(&connection, request, 4);
    redelivered.attempt = 2;
    assert_eq!(
        test.store
            .claim_sync(claim(&connection, request, 4))
            .await
            .unwrap(),
        Claim::Granted
    );

    assert_eq!(
        test.store.claim_sync(redelivered).await.unwrap(),
        Claim::Granted,
        "a redelivery takes its run's slot over at once"
    );
    assert_eq!(
        test.store
            .claim_sync(claim(&connection, request, 4))
            .await
            .unwrap(),
        Claim::Superseded { holder: 2 }
    );
    assert!(
        !test
            .store
            .renew_sync(tenant, id, first, HOLD)
            .await
            .unwrap()
    );
    let pass = Pass::begin(true);
    let records = [RecordUpsert {
        external_id: "1".to_owned(),
        payload: json!({"title": "from the stale delivery"}),
        updated_at: None,
    }];
    let page = |lease| PageCommit {
        tenant,
        connection: id,
        stream: "posts",
        pass: &pass,
        records: &records,
        cursor: None,
        gap: None,
        removed: &[],
        lease: Some(lease),
    };
    let stale = test.store.commit_page(page(first)).await;
    assert!(
        matches!(stale, Err(Error::SyncSlotLost { .. })),
        "{stale:?}"
    );
    assert_eq!(
        test.store
            .count_records(tenant, id, Some("posts"))
            .await
            .unwrap(),
        0,
        "nothing of the refused page was stored"
    );
    let ended = test
        .store
        .finish_pass(PassEnd {
            tenant,
            connection: id,
            stream: "posts",
            pass: &pass,
            reconcile: true,
            lease: Some(first),
        })
        .await;
    assert!(
        matches!(ended, Err(Error::SyncSlotLost { .. })),
        "{ended:?}"
    );
    test.store.release_sync(tenant, id, first).await.unwrap();

    assert!(
        test.store
            .renew_sync(tenant, id, second, HOLD)
            .await
            .unwrap(),
        "the earlier delivery did not free the later one's hold"
    );
    let counts = test.store.commit_page(page(second)).await.unwrap();
    assert_eq!(counts.added, 1);
}

#[tokio::test]
async fn a_granted_claim_records_its_run_and_a_refused_one_records_none() {
    let test = spawn_store().await;
    let acme = tenant("acme");
    let running = create_connection(&test.store, &acme).await;
    let waiting = create_connection(&test.store, &acme).await;
    let (granted, refused) = (EventId::new(), EventId::new());

    assert_eq!(
        test.store
            .claim_sync(claim(&running, granted, 1))
            .await
            .unwrap(),
        Claim::Granted
    );
    assert_eq!(
        test.store
            .claim_sync(claim(&waiting, refused, 1))
            .await
            .unwrap(),
        Claim::TenantBusy { running: 1 }
    );

    let run = test
        .store
        .latest_sync_run(&acme, &running.id)
        .await
        .unwrap()
        .expect("the granted claim's run is recorded");
    assert_eq!(run.id, run_id(granted, 1));
    assert_eq!(run.trigger, SyncTrigger::Manual);
    assert_eq!(run.finished_at, None);
    assert_eq!(
        test.store
            .latest_sync_run(&acme, &waiting.id)
            .await
            .unwrap(),
        None,
        "a claim that waits records no run"
    );
}

#[tokio::test]
async fn completing_a_run_frees_its_slot_unless_a_later_delivery_holds_it() {
    let test = spawn_store().await;
    let acme = tenant("acme");
    let connection = create_connection(&test.store, &acme).await;
    let request = EventId::new();
    let outcome = SyncOutcome {
        records: 0,
        pages: 1,
        added: 0,
        updated: 0,
        deleted: 0,
        result: SyncResult::Succeeded,
    };
    let redelivered = SlotClaim {
        attempt: 2,
        ..claim(&connection, request, 4)
    };
    assert_eq!(
        test.store.claim_sync(redelivered).await.unwrap(),
        Claim::Granted
    );

    // The first delivery, fenced out, tries to complete: it is refused and
    // changes nothing, so the slot stays the second delivery's and the run
    // stays running.
    let stale = SyncOutcome {
        pages: 7,
        ..outcome.clone()
    };
    let refused = test
        .store
        .complete_sync_run(
            &acme,
            &connection.id,
            run_id(request, 1),
            &stale,
            None,
            Some(lease(request, 1)),
        )
        .await;
    assert!(
        matches!(refused, Err(Error::SyncSlotLost { .. })),
        "{refused:?}"
    );
    let run = test
        .store
        .latest_sync_run(&acme, &connection.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(run.result, None, "the run goes on in the second delivery");
    let next = EventId::new();
    assert!(matches!(
        test.store
            .claim_sync(claim(&connection, next, 4))
            .await
            .unwrap(),
        Claim::Coalesced(_)
    ));

    test.store
        .complete_sync_run(
            &acme,
            &connection.id,
            run_id(request, 1),
            &outcome,
            None,
            Some(lease(request, 2)),
        )
        .await
        .unwrap();
    // The holder's own retry (its answer lost) succeeds; the first
    // delivery, coming back after the slot was freed, is still refused.
    test.store
        .complete_sync_run(
            &acme,
            &connection.id,
            run_id(request, 1),
            &outcome,
            None,
            Some(lease(request, 2)),
        )
        .await
        .unwrap();
    let late = test
        .store
        .complete_sync_run(
            &acme,
            &connection.id,
            run_id(request, 1),
            &stale,
            None,
            Some(lease(request, 1)),
        )
        .await;
    assert!(matches!(late, Err(Error::SyncSlotLost { .. })), "{late:?}");
    let run = test
        .store
        .latest_sync_run(&acme, &connection.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(run.id, run_id(request, 1));
    assert_eq!(
        (run.pages, run.result),
        (1, Some(SyncResult::Succeeded)),
        "the holder's outcome is the run's"
    );
    assert_eq!(
        test.store
            .claim_sync(claim(&connection, next, 4))
            .await
            .unwrap(),
        Claim::Granted,
        "the holder's completion frees the slot"
    );
}

#[tokio::test]
async fn a_granted_claim_reads_where_each_stream_stands() {
    let test = spawn_store().await;
    let acme = tenant("acme");
    let connection = create_connection(&test.store, &acme).await;
    let first = EventId::new();
    let claimed = test
        .store
        .claim_sync_run(claim(&connection, first, 4))
        .await
        .unwrap();
    assert_eq!(claimed.claim, Claim::Granted);
    assert!(claimed.streams.is_empty(), "no stream has a row yet");
    // One stream stopped in the middle of a pass, with its cursor.
    let pass = Pass::begin(true);
    let records = [RecordUpsert {
        external_id: "1".to_owned(),
        payload: json!({"title": "first page"}),
        updated_at: None,
    }];
    let cursor = json!({"page": 2, "after": "2026-12-01T00:00:00Z"});
    test.store
        .commit_page(PageCommit {
            tenant: &acme,
            connection: &connection.id,
            stream: "posts",
            pass: &pass,
            records: &records,
            cursor: Some(&cursor),
            gap: None,
            removed: &[],
            lease: Some(lease(first, 1)),
        })
        .await
        .unwrap();
    test.store
        .release_sync(&acme, &connection.id, lease(first, 1))
        .await
        .unwrap();

    let next = EventId::new();
    let claimed = test
        .store
        .claim_sync_run(claim(&connection, next, 4))
        .await
        .unwrap();

    assert_eq!(claimed.claim, Claim::Granted);
    let read = test
        .store
        .stream_states(&acme, &connection.id)
        .await
        .unwrap();
    assert_eq!(claimed.streams, read);
    let (resumed, at) = claimed.streams["posts"].pass.clone().expect("a pass");
    assert_eq!(resumed, pass);
    assert_eq!(at, Some(cursor));
    let busy = test
        .store
        .claim_sync_run(claim(&connection, EventId::new(), 4))
        .await
        .unwrap();
    assert!(matches!(busy.claim, Claim::Coalesced(_)));
    assert!(busy.streams.is_empty(), "a refused claim reads nothing");
}

#[tokio::test]
async fn a_takeover_while_a_last_page_commits_does_not_resume_the_pass_that_page_ended() {
    use sqlx::Connection as _;

    let test = spawn_store().await;
    let acme = tenant("acme");
    let connection = create_connection(&test.store, &acme).await;
    let request = EventId::new();
    assert_eq!(
        test.store
            .claim_sync(claim(&connection, request, 4))
            .await
            .unwrap(),
        Claim::Granted
    );
    let pass = Pass::begin(true);
    let cursor = json!({"page": 2});
    let records = [RecordUpsert {
        external_id: "1".to_owned(),
        payload: json!({"title": "first page"}),
        updated_at: None,
    }];
    test.store
        .commit_page(PageCommit {
            tenant: &acme,
            connection: &connection.id,
            stream: "posts",
            pass: &pass,
            records: &records,
            cursor: Some(&cursor),
            gap: None,
            removed: &[],
            lease: Some(lease(request, 1)),
        })
        .await
        .unwrap();

    // The first delivery's last page, in a transaction not yet committed.
    let mut committing = sqlx::PgConnection::connect(&test.url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut committing).await.unwrap();
    sqlx::query(
        "SELECT * FROM sync_write_last_page($1, $2, 'posts', ARRAY['2'], \
         ARRAY['{\"title\": \"last page\"}'::jsonb], ARRAY[NULL::timestamptz], $3, '{}', $3, \
         true, $4, NULL, NULL, $5, 1, true)",
    )
    .bind(acme.as_str())
    .bind(connection.id.as_str())
    .bind(pass.id)
    .bind(pass.started_at)
    .bind(run_id(request, 1).as_uuid())
    .execute(&mut committing)
    .await
    .unwrap();

    // A later delivery of the same request claims the run meanwhile: its
    // claim waits for the page's lock on the connection's row.
    let takeover = test.store.claim_sync_run(SlotClaim {
        attempt: 2,
        ..claim(&connection, request, 4)
    });
    let page_commits = async {
        let mut watcher = sqlx::PgConnection::connect(&test.url).await.unwrap();
        let waiting = async {
            loop {
                let (waiters,): (i64,) = sqlx::query_as(
                    "SELECT count(*) FROM pg_stat_activity \
                     WHERE wait_event_type = 'Lock' AND query LIKE '%sync_claim%'",
                )
                .fetch_one(&mut watcher)
                .await
                .unwrap();
                if waiters > 0 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), waiting)
            .await
            .expect("the claim waits for the page");
        sqlx::query("COMMIT")
            .execute(&mut committing)
            .await
            .unwrap();
    };
    let (claimed, ()) = tokio::join!(takeover, page_commits);

    let claimed = claimed.unwrap();
    assert_eq!(claimed.claim, Claim::Granted);
    let posts = &claimed.streams["posts"];
    assert_eq!(posts.pass, None, "the pass ended with its last page");
    assert_eq!(posts.high_water, Some(pass.started_at));
}
