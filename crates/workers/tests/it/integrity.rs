//! Syncs store exactly what the provider has: after imports that tie on
//! modification time, edits, trashing and deletion, with incremental runs
//! that read only what changed.

use std::collections::BTreeSet;

use fleet_events::{ConnectionId, ConnectionState, ConnectionStatus, SyncCounts};
use fleet_sim::{Collection, SiteChange};
use fleet_store::RecordQuery;

use crate::helpers::{PAGES, PASSWORD, POSTS, SITE, TestFleet};

/// The `n`th `synced` status of `connection`: its live total and counts.
async fn nth_synced(fleet: &TestFleet, connection: &ConnectionId, n: usize) -> (u64, SyncCounts) {
    let statuses = fleet
        .statuses_until_nth(connection, ConnectionState::Synced, n)
        .await;
    match statuses.last().map(|s| &s.status) {
        Some(ConnectionStatus::Synced {
            records, counts, ..
        }) => (*records, *counts),
        other => panic!("expected synced, got {other:?}"),
    }
}

/// The ids of the live records of `stream`.
async fn stored_ids(fleet: &TestFleet, connection: &ConnectionId, stream: &str) -> BTreeSet<u64> {
    let page = fleet
        .deps
        .store
        .list_records(RecordQuery {
            tenant: &fleet.tenant,
            connection,
            stream: Some(stream),
            updated_since: None,
            include_deleted: false,
            after: None,
            limit: 1000,
        })
        .await
        .unwrap();
    assert!(page.next.is_none());
    page.records
        .iter()
        .map(|r| r.external_id.parse().unwrap())
        .collect()
}

fn published(fleet: &TestFleet, collection: Collection) -> BTreeSet<u64> {
    fleet
        .sim
        .published(SITE, collection)
        .into_iter()
        .map(|(id, _)| id)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incremental_sync_reads_only_changes_and_a_removal_triggers_reconciliation() {
    let fleet = TestFleet::start().await;
    let (connection, _) = fleet.connect(&fleet.credentials(PASSWORD)).await;
    let (total, first) = nth_synced(&fleet, &connection, 1).await;
    assert_eq!(total, u64::from(POSTS + PAGES));
    assert_eq!(first.seen, u64::from(POSTS + PAGES));
    assert_eq!(first.added, u64::from(POSTS + PAGES));

    // Two edits: the next sync reads those two posts, nothing else.
    for id in [3, 200] {
        fleet.sim.change_site(SITE, &SiteChange::Edit { id });
    }
    fleet.sync_now("wordpress", &connection).await;
    let (total, edits) = nth_synced(&fleet, &connection, 2).await;
    assert_eq!(total, u64::from(POSTS + PAGES));
    assert_eq!(
        edits,
        SyncCounts {
            seen: 2,
            added: 0,
            updated: 2,
            deleted: 0,
            requests: edits.requests,
        }
    );
    assert!(
        first.requests >= 4 && edits.requests >= 2,
        "each run counts its requests, a page each at least (three pages of posts and one of \
         pages, then a page per stream): {first:?}, then {edits:?}"
    );

    // An import of 150 posts in one second, a trashed, an unpublished
    // and a deleted post: the totals no longer agree after the
    // incremental pass, so the same run reads the posts whole.
    let import = SiteChange::Create {
        collection: Collection::Posts,
        count: 150,
        modified_gmt: None,
    };
    fleet.sim.change_site(SITE, &import);
    fleet.sim.change_site(SITE, &SiteChange::Trash { id: 10 });
    fleet
        .sim
        .change_site(SITE, &SiteChange::Unpublish { id: 11 });
    fleet.sim.change_site(SITE, &SiteChange::Delete { id: 12 });
    fleet.sync_now("wordpress", &connection).await;
    let (total, changes) = nth_synced(&fleet, &connection, 3).await;

    let posts = published(&fleet, Collection::Posts);
    assert_eq!(stored_ids(&fleet, &connection, "posts").await, posts);
    assert_eq!(
        stored_ids(&fleet, &connection, "pages").await,
        published(&fleet, Collection::Pages)
    );
    assert_eq!(total, posts.len() as u64 + u64::from(PAGES));
    assert_eq!(changes.added, 150);
    assert_eq!(changes.deleted, 3);
    let row = fleet.row_in(&connection, ConnectionState::Synced).await;
    assert_eq!(row.records_total, total);
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_that_reaches_its_budget_is_partial_and_the_next_one_continues() {
    let fleet = TestFleet::start_with_catalog("wordpress", "[sync]\nmax_pages = 2\n").await;
    let (connection, _) = fleet.connect(&fleet.credentials(PASSWORD)).await;

    let statuses = fleet
        .statuses_until(&connection, ConnectionState::Partial)
        .await;
    let Some(ConnectionStatus::Partial {
        records, reason, ..
    }) = statuses.last().map(|s| s.status.clone())
    else {
        unreachable!()
    };
    assert!(reason.contains("limit of 2 pages"), "{reason}");
    assert!(records > 0 && records < u64::from(POSTS), "{records}");

    // The next run continues where the first stopped: the third page of
    // posts and the one of pages fit in its two.
    fleet.sync_now("wordpress", &connection).await;
    let (total, counts) = nth_synced(&fleet, &connection, 1).await;
    assert_eq!(total, u64::from(POSTS + PAGES));
    assert_eq!(counts.seen + records, u64::from(POSTS + PAGES));
    assert_eq!(
        stored_ids(&fleet, &connection, "posts").await,
        published(&fleet, Collection::Posts)
    );
    fleet.stop().await;
}
