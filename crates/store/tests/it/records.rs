use std::collections::HashSet;

use chrono::{DateTime, Utc};
use fleet_events::{ConnectionId, CorrelationId, SyncTrigger, TenantId};
use fleet_store::{
    Connection, Error, PageCommit, RecordCursor, RecordPage, RecordQuery, RecordUpsert, Store,
};
use serde_json::{Value, json};

use crate::helpers::{at, create_connection, spawn_store, tenant};

fn record(external_id: &str, payload: Value, updated_at: Option<DateTime<Utc>>) -> RecordUpsert {
    RecordUpsert {
        external_id: external_id.to_owned(),
        payload,
        updated_at,
    }
}

/// Commits `records` to `stream` of `connection`, with `cursor`.
async fn commit(
    store: &Store,
    connection: &Connection,
    stream: &str,
    records: &[RecordUpsert],
    cursor: Option<&Value>,
) -> u64 {
    store
        .commit_page(PageCommit {
            tenant: &connection.tenant,
            connection: &connection.id,
            stream,
            records,
            cursor,
        })
        .await
        .unwrap()
}

/// The stream's cursor, as the sync step reads it.
async fn stored_cursor(
    store: &Store,
    tenant: &TenantId,
    connection: &ConnectionId,
    stream: &str,
) -> Option<Value> {
    store
        .cursors(tenant, connection)
        .await
        .unwrap()
        .remove(stream)
}

/// A query for every record of `connection`, `limit` at a time.
fn all_records(connection: &Connection, limit: u32) -> RecordQuery<'_> {
    RecordQuery {
        tenant: &connection.tenant,
        connection: &connection.id,
        stream: None,
        updated_since: None,
        after: None,
        limit,
    }
}

/// Follows `next` from the first page of `query` to the last, calling
/// `between_pages` after each page; returns `(stream, external_id)` of every
/// record seen, in order.
async fn walk<'a>(
    store: &Store,
    query: RecordQuery<'a>,
    mut between_pages: impl AsyncFnMut(&RecordPage),
) -> Vec<(String, String)> {
    let mut seen = Vec::new();
    let mut after: Option<RecordCursor> = None;
    loop {
        let page = store
            .list_records(RecordQuery {
                after: after.as_ref(),
                ..query
            })
            .await
            .unwrap();
        assert!(page.records.len() <= query.limit as usize);
        seen.extend(
            page.records
                .iter()
                .map(|r| (r.stream.clone(), r.external_id.clone())),
        );
        between_pages(&page).await;
        // Cursors travel as strings through clients.
        let Some(next) = page.next else {
            return seen;
        };
        after = Some(next.to_string().parse().unwrap());
    }
}

#[tokio::test]
async fn committing_the_same_records_twice_keeps_one_row_each_with_the_new_payload() {
    let test = spawn_store().await;
    let connection = create_connection(&test.store, &tenant("acme")).await;
    let first = [
        record("1", json!({"title": "Hello"}), Some(at(1))),
        record("2", json!({"title": "World"}), Some(at(2))),
    ];
    let second = [
        record("1", json!({"title": "Hello again"}), Some(at(3))),
        record("2", json!({"title": "World"}), Some(at(2))),
    ];

    let written_first = commit(&test.store, &connection, "posts", &first, None).await;
    let written_second = commit(&test.store, &connection, "posts", &second, None).await;

    assert_eq!((written_first, written_second), (2, 1));
    let page = test
        .store
        .list_records(all_records(&connection, 10))
        .await
        .unwrap();
    let stored: Vec<_> = page
        .records
        .iter()
        .map(|r| (r.external_id.as_str(), &r.payload, r.updated_at))
        .collect();
    assert_eq!(
        stored,
        [
            ("2", &json!({"title": "World"}), Some(at(2))),
            ("1", &json!({"title": "Hello again"}), Some(at(3))),
        ]
    );
}

#[tokio::test]
async fn an_unchanged_record_keeps_its_synced_at() {
    let test = spawn_store().await;
    let connection = create_connection(&test.store, &tenant("acme")).await;
    let page = [record("1", json!({"title": "Hello"}), None)];
    commit(&test.store, &connection, "posts", &page, None).await;
    let before = test
        .store
        .list_records(all_records(&connection, 1))
        .await
        .unwrap();

    let written = commit(&test.store, &connection, "posts", &page, None).await;

    let after = test
        .store
        .list_records(all_records(&connection, 1))
        .await
        .unwrap();
    assert_eq!(written, 0);
    assert_eq!(after.records, before.records);
}

#[tokio::test]
async fn a_repeated_external_id_within_a_page_keeps_the_last() {
    let test = spawn_store().await;
    let connection = create_connection(&test.store, &tenant("acme")).await;
    let page = [
        record("1", json!({"v": 1}), None),
        record("1", json!({"v": 2}), None),
    ];

    let written = commit(&test.store, &connection, "posts", &page, None).await;

    assert_eq!(written, 1);
    let stored = test
        .store
        .list_records(all_records(&connection, 10))
        .await
        .unwrap();
    assert_eq!(stored.records.len(), 1);
    assert_eq!(stored.records[0].payload, json!({"v": 2}));
}

#[tokio::test]
async fn the_cursor_is_saved_with_its_page_and_kept_by_a_page_without_one() {
    let test = spawn_store().await;
    let connection = create_connection(&test.store, &tenant("acme")).await;
    let (tenant, id) = (&connection.tenant, &connection.id);
    let page = [record("1", json!({}), None)];

    commit(
        &test.store,
        &connection,
        "posts",
        &page,
        Some(&json!({"page": 2})),
    )
    .await;
    let after_first = stored_cursor(&test.store, tenant, id, "posts").await;
    commit(&test.store, &connection, "posts", &page, None).await;
    let after_second = stored_cursor(&test.store, tenant, id, "posts").await;
    commit(
        &test.store,
        &connection,
        "posts",
        &[],
        Some(&json!({"page": 3})),
    )
    .await;
    let after_third = stored_cursor(&test.store, tenant, id, "posts").await;

    assert_eq!(after_first, Some(json!({"page": 2})));
    assert_eq!(after_second, Some(json!({"page": 2})));
    assert_eq!(after_third, Some(json!({"page": 3})));
    assert_eq!(
        stored_cursor(&test.store, tenant, id, "comments").await,
        None
    );
}

#[tokio::test]
async fn a_page_of_a_missing_connection_stores_neither_records_nor_cursor() {
    let test = spawn_store().await;
    let acme = tenant("acme");
    let missing = ConnectionId::new();

    let err = test
        .store
        .commit_page(PageCommit {
            tenant: &acme,
            connection: &missing,
            stream: "posts",
            records: &[record("1", json!({}), None)],
            cursor: Some(&json!({"page": 2})),
        })
        .await
        .unwrap_err();

    assert!(matches!(err, Error::ConnectionNotFound { .. }), "{err:?}");
    assert_eq!(
        stored_cursor(&test.store, &acme, &missing, "posts").await,
        None
    );
    assert_eq!(
        test.store
            .count_records(&acme, &missing, None)
            .await
            .unwrap(),
        0
    );
}

#[tokio::test]
async fn completing_a_run_forgets_every_stream_cursor_of_the_connection_only() {
    let test = spawn_store().await;
    let acme = tenant("acme");
    let connection = create_connection(&test.store, &acme).await;
    let other = create_connection(&test.store, &acme).await;
    let cursor = json!("abc");
    for stream in ["posts", "comments"] {
        commit(&test.store, &connection, stream, &[], Some(&cursor)).await;
    }
    commit(&test.store, &other, "posts", &[], Some(&cursor)).await;
    let run = CorrelationId::new();
    test.store
        .start_sync_run(&acme, &connection.id, run, SyncTrigger::Manual)
        .await
        .unwrap();

    test.store
        .complete_sync_run(&acme, &connection.id, run, 0, 2)
        .await
        .unwrap();

    assert_eq!(
        stored_cursor(&test.store, &acme, &connection.id, "posts").await,
        None
    );
    assert_eq!(
        stored_cursor(&test.store, &acme, &connection.id, "comments").await,
        None
    );
    assert_eq!(
        stored_cursor(&test.store, &acme, &other.id, "posts").await,
        Some(cursor)
    );
}

#[tokio::test]
async fn paging_with_a_small_limit_returns_every_record_exactly_once_in_order() {
    let test = spawn_store().await;
    let connection = create_connection(&test.store, &tenant("acme")).await;
    for stream in ["posts", "comments", "users"] {
        // Some records share a change time, so the external id decides.
        let page: Vec<_> = (0..9)
            .map(|n| record(&format!("{stream}-{n}"), json!({"n": n}), Some(at(n / 3))))
            .collect();
        commit(&test.store, &connection, stream, &page, None).await;
    }

    let seen = walk(&test.store, all_records(&connection, 4), async |_| {}).await;

    let mut expected: Vec<(String, String)> = ["comments", "posts", "users"]
        .into_iter()
        .flat_map(|stream| (0..9).map(move |n| (stream.to_owned(), format!("{stream}-{n}"))))
        .collect();
    expected.sort();
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn records_inserted_during_a_walk_cause_no_gap_and_no_duplicate() {
    let test = spawn_store().await;
    let connection = create_connection(&test.store, &tenant("acme")).await;
    let originals: Vec<_> = (0..20)
        .map(|n| record(&format!("{n:02}"), json!({"n": n}), Some(at(n))))
        .collect();
    commit(&test.store, &connection, "posts", &originals, None).await;
    let mut inserted = 0;

    let seen = walk(&test.store, all_records(&connection, 3), async |_| {
        // Before and after the walk's position alike.
        let early = record(&format!("early-{inserted}"), json!({}), Some(at(-1)));
        let late = record(&format!("late-{inserted}"), json!({}), Some(at(100)));
        commit(&test.store, &connection, "posts", &[early, late], None).await;
        inserted += 1;
    })
    .await;

    let originals_seen: Vec<_> = seen
        .iter()
        .map(|(_, id)| id.as_str())
        .filter(|id| !id.starts_with("early") && !id.starts_with("late"))
        .collect();
    let expected: Vec<_> = originals.iter().map(|r| r.external_id.as_str()).collect();
    assert_eq!(originals_seen, expected);
    let distinct: HashSet<_> = seen.iter().collect();
    assert_eq!(distinct.len(), seen.len(), "duplicates in {seen:?}");
}

#[tokio::test]
async fn one_stream_and_changes_since_a_time_can_be_listed_alone() {
    let test = spawn_store().await;
    let connection = create_connection(&test.store, &tenant("acme")).await;
    let posts: Vec<_> = (0..6)
        .map(|n| record(&format!("p{n}"), json!({}), Some(at(n * 10))))
        .collect();
    commit(&test.store, &connection, "posts", &posts, None).await;
    commit(
        &test.store,
        &connection,
        "comments",
        &[record("c1", json!({}), Some(at(50)))],
        None,
    )
    .await;
    let query = RecordQuery {
        stream: Some("posts"),
        updated_since: Some(at(30)),
        ..all_records(&connection, 2)
    };

    let seen = walk(&test.store, query, async |_| {}).await;

    let ids: Vec<_> = seen.iter().map(|(_, id)| id.as_str()).collect();
    assert_eq!(ids, ["p3", "p4", "p5"]);
}

#[tokio::test]
async fn records_without_a_provider_time_are_listed_by_when_they_were_stored() {
    let test = spawn_store().await;
    let connection = create_connection(&test.store, &tenant("acme")).await;
    commit(
        &test.store,
        &connection,
        "posts",
        &[record("b", json!({}), None)],
        None,
    )
    .await;
    commit(
        &test.store,
        &connection,
        "posts",
        &[record("a", json!({}), None)],
        None,
    )
    .await;

    let page = test
        .store
        .list_records(all_records(&connection, 10))
        .await
        .unwrap();

    let ids: Vec<_> = page
        .records
        .iter()
        .map(|r| r.external_id.as_str())
        .collect();
    assert_eq!(ids, ["b", "a"]);
    assert!(page.records[0].synced_at <= page.records[1].synced_at);
}

#[tokio::test]
async fn a_garbage_cursor_string_is_a_clear_error() {
    let err = "not-a-cursor!".parse::<RecordCursor>().unwrap_err();

    assert_eq!(err.to_string(), "invalid record cursor");
}

#[tokio::test]
async fn a_limit_outside_1_to_1000_is_refused() {
    let test = spawn_store().await;
    let connection = create_connection(&test.store, &tenant("acme")).await;

    for limit in [0, 1001] {
        let err = test
            .store
            .list_records(all_records(&connection, limit))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidLimit { .. }), "{err:?}");
    }
}

#[tokio::test]
async fn another_tenant_sees_no_records_even_with_the_same_connection_id() {
    let test = spawn_store().await;
    let connection = create_connection(&test.store, &tenant("acme")).await;
    commit(
        &test.store,
        &connection,
        "posts",
        &[record("1", json!({}), None)],
        None,
    )
    .await;
    let globex = tenant("globex");

    let page = test
        .store
        .list_records(RecordQuery {
            tenant: &globex,
            ..all_records(&connection, 10)
        })
        .await
        .unwrap();
    let count = test
        .store
        .count_records(&globex, &connection.id, None)
        .await
        .unwrap();

    assert_eq!(page.records, []);
    assert_eq!(count, 0);
}

#[tokio::test]
async fn records_are_counted_per_stream_or_in_total() {
    let test = spawn_store().await;
    let connection = create_connection(&test.store, &tenant("acme")).await;
    let (tenant, id) = (&connection.tenant, &connection.id);
    let posts: Vec<_> = (0..3)
        .map(|n| record(&n.to_string(), json!({}), None))
        .collect();
    commit(&test.store, &connection, "posts", &posts, None).await;
    commit(&test.store, &connection, "comments", &posts[..1], None).await;

    assert_eq!(
        test.store
            .count_records(tenant, id, Some("posts"))
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        test.store
            .count_records(tenant, id, Some("users"))
            .await
            .unwrap(),
        0
    );
    assert_eq!(test.store.count_records(tenant, id, None).await.unwrap(), 4);
}

#[tokio::test]
async fn deleting_a_connection_removes_its_records_cursors_and_runs_and_no_others() {
    let test = spawn_store().await;
    let acme = tenant("acme");
    let doomed = create_connection(&test.store, &acme).await;
    let kept = create_connection(&test.store, &acme).await;
    for connection in [&doomed, &kept] {
        let records = [record("1", json!({}), None)];
        commit(&test.store, connection, "posts", &records, Some(&json!(1))).await;
        test.store
            .start_sync_run(
                &acme,
                &connection.id,
                CorrelationId::new(),
                SyncTrigger::Manual,
            )
            .await
            .unwrap();
    }

    assert!(
        test.store
            .delete_connection(&acme, &doomed.id)
            .await
            .unwrap()
    );

    let store = &test.store;
    assert_eq!(
        store.count_records(&acme, &doomed.id, None).await.unwrap(),
        0
    );
    assert_eq!(stored_cursor(store, &acme, &doomed.id, "posts").await, None);
    assert_eq!(
        store.latest_sync_run(&acme, &doomed.id).await.unwrap(),
        None
    );
    assert_eq!(store.count_records(&acme, &kept.id, None).await.unwrap(), 1);
    assert_eq!(
        stored_cursor(store, &acme, &kept.id, "posts").await,
        Some(json!(1))
    );
    assert!(
        store
            .latest_sync_run(&acme, &kept.id)
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn every_stream_cursor_of_a_connection_is_read_at_once() {
    let test = spawn_store().await;
    let acme = tenant("acme");
    let connection = create_connection(&test.store, &acme).await;
    let other = create_connection(&test.store, &acme).await;
    let page = [record("1", json!({}), None)];
    commit(
        &test.store,
        &connection,
        "posts",
        &page,
        Some(&json!({"page": 2})),
    )
    .await;
    commit(
        &test.store,
        &connection,
        "pages",
        &page,
        Some(&json!({"after": "x"})),
    )
    .await;
    commit(
        &test.store,
        &other,
        "posts",
        &page,
        Some(&json!({"page": 9})),
    )
    .await;

    let cursors = test.store.cursors(&acme, &connection.id).await.unwrap();
    let elsewhere = test
        .store
        .cursors(&tenant("globex"), &connection.id)
        .await
        .unwrap();

    assert_eq!(cursors.len(), 2);
    assert_eq!(cursors["posts"], json!({"page": 2}));
    assert_eq!(cursors["pages"], json!({"after": "x"}));
    assert!(elsewhere.is_empty());
}
