use std::collections::HashSet;

use chrono::{DateTime, Utc};
use fleet_events::{ConnectionId, CorrelationId, SyncTrigger, TenantId};
use fleet_store::{
    Connection, Error, PageCommit, Pass, PassEnd, PassOutcome, RecordCursor, RecordPage,
    RecordQuery, RecordUpsert, Store,
};
use serde_json::{Value, json};

use crate::helpers::{TestStore, at, create_connection, spawn_store, tenant};

fn record(external_id: &str, payload: Value, updated_at: Option<DateTime<Utc>>) -> RecordUpsert {
    RecordUpsert {
        external_id: external_id.to_owned(),
        payload,
        updated_at,
    }
}

/// Commits `records` to `stream` of `connection` in an incremental pass,
/// with `cursor`; returns how many it added or updated.
async fn commit(
    store: &Store,
    connection: &Connection,
    stream: &str,
    records: &[RecordUpsert],
    cursor: Option<&Value>,
) -> u64 {
    commit_in(
        store,
        connection,
        stream,
        &Pass::begin(false),
        records,
        cursor,
    )
    .await
}

/// Commits `records` to `stream` of `connection` in `pass`.
async fn commit_in(
    store: &Store,
    connection: &Connection,
    stream: &str,
    pass: &Pass,
    records: &[RecordUpsert],
    cursor: Option<&Value>,
) -> u64 {
    let counts = store
        .commit_page(PageCommit {
            tenant: &connection.tenant,
            connection: &connection.id,
            stream,
            pass,
            records,
            cursor,
            gap: None,
            removed: &[],
            lease: None,
        })
        .await
        .unwrap();
    counts.added + counts.updated
}

/// Ends `pass` over `stream` of `connection`, a stream that reconciles.
async fn finish(store: &Store, connection: &Connection, stream: &str, pass: &Pass) -> PassOutcome {
    store
        .finish_pass(PassEnd {
            tenant: &connection.tenant,
            connection: &connection.id,
            stream,
            pass,
            reconcile: true,
            lease: None,
        })
        .await
        .unwrap()
}

/// The position of the stream's pass in progress, as the sync step reads it.
async fn stored_cursor(
    store: &Store,
    tenant: &TenantId,
    connection: &ConnectionId,
    stream: &str,
) -> Option<Value> {
    store
        .stream_states(tenant, connection)
        .await
        .unwrap()
        .remove(stream)
        .and_then(|state| state.pass)
        .and_then(|(_, cursor)| cursor)
}

/// A query for every record of `connection`, `limit` at a time.
fn all_records(connection: &Connection, limit: u32) -> RecordQuery<'_> {
    RecordQuery {
        tenant: &connection.tenant,
        connection: &connection.id,
        stream: None,
        updated_since: None,
        include_deleted: false,
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
async fn the_position_is_saved_with_its_page_and_cleared_by_the_last() {
    let test = spawn_store().await;
    let connection = create_connection(&test.store, &tenant("acme")).await;
    let (tenant, id) = (&connection.tenant, &connection.id);
    let page = [record("1", json!({}), None)];
    let pass = Pass::begin(true);

    commit_in(
        &test.store,
        &connection,
        "posts",
        &pass,
        &page,
        Some(&json!({"page": 2})),
    )
    .await;
    let after_first = stored_cursor(&test.store, tenant, id, "posts").await;
    commit_in(
        &test.store,
        &connection,
        "posts",
        &pass,
        &[],
        Some(&json!({"page": 3})),
    )
    .await;
    let after_second = stored_cursor(&test.store, tenant, id, "posts").await;
    commit_in(&test.store, &connection, "posts", &pass, &page, None).await;
    let state = test.store.stream_states(tenant, id).await.unwrap();

    assert_eq!(after_first, Some(json!({"page": 2})));
    assert_eq!(after_second, Some(json!({"page": 3})));
    assert_eq!(state["posts"].pass, Some((pass, None)));
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
            pass: &Pass::begin(true),
            records: &[record("1", json!({}), None)],
            cursor: Some(&json!({"page": 2})),
            gap: None,
            removed: &[],
            lease: None,
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
async fn finishing_a_pass_forgets_its_position_and_moves_the_high_water_mark() {
    let test = spawn_store().await;
    let acme = tenant("acme");
    let connection = create_connection(&test.store, &acme).await;
    let other = create_connection(&test.store, &acme).await;
    let cursor = json!("abc");
    let pass = Pass::begin(false);
    for stream in ["posts", "comments"] {
        commit_in(&test.store, &connection, stream, &pass, &[], Some(&cursor)).await;
    }
    commit_in(&test.store, &other, "posts", &pass, &[], Some(&cursor)).await;

    let ended = finish(&test.store, &connection, "posts", &pass).await;
    let states = test
        .store
        .stream_states(&acme, &connection.id)
        .await
        .unwrap();

    assert_eq!(ended.deleted, 0, "an incremental pass deletes nothing");
    assert_eq!(states["posts"].pass, None);
    assert_eq!(states["posts"].high_water, Some(pass.started_at));
    assert_eq!(states["posts"].last_full_at, None);
    assert_eq!(
        stored_cursor(&test.store, &acme, &connection.id, "comments").await,
        Some(cursor.clone())
    );
    assert_eq!(
        stored_cursor(&test.store, &acme, &other.id, "posts").await,
        Some(cursor)
    );
}

#[tokio::test]
async fn a_complete_full_pass_marks_what_it_did_not_see_deleted_and_a_later_one_revives_it() {
    let test = spawn_store().await;
    let acme = tenant("acme");
    let connection = create_connection(&test.store, &acme).await;
    let full = |records: &'static [&'static str]| {
        records
            .iter()
            .map(|id| record(id, json!({"id": id}), None))
            .collect::<Vec<_>>()
    };
    let first = Pass::begin(true);
    commit_in(
        &test.store,
        &connection,
        "posts",
        &first,
        &full(&["1", "2", "3"]),
        None,
    )
    .await;
    finish(&test.store, &connection, "posts", &first).await;

    let second = Pass::begin(true);
    commit_in(
        &test.store,
        &connection,
        "posts",
        &second,
        &full(&["1", "3"]),
        None,
    )
    .await;
    let gone = finish(&test.store, &connection, "posts", &second).await;
    let live = test
        .store
        .list_records(all_records(&connection, 10))
        .await
        .unwrap();
    let mut with_deleted = all_records(&connection, 10);
    with_deleted.include_deleted = true;
    let all = test.store.list_records(with_deleted).await.unwrap();
    let stored = test
        .store
        .get_connection(&acme, &connection.id)
        .await
        .unwrap()
        .unwrap();

    let third = Pass::begin(false);
    let revived = test
        .store
        .commit_page(PageCommit {
            tenant: &acme,
            connection: &connection.id,
            stream: "posts",
            pass: &third,
            records: &full(&["2"]),
            cursor: None,
            gap: None,
            removed: &[],
            lease: None,
        })
        .await
        .unwrap();

    assert_eq!(gone.deleted, 1);
    assert_eq!(gone.live, 2);
    let ids = |page: &RecordPage| {
        page.records
            .iter()
            .map(|r| r.external_id.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&live), ["1", "3"]);
    assert_eq!(all.records.len(), 3);
    assert!(
        all.records
            .iter()
            .any(|r| r.external_id == "2" && r.deleted_at.is_some())
    );
    assert_eq!(stored.records_total, 2, "records_total counts live records");
    assert_eq!(revived.added, 1, "a deleted record seen again is added");
    assert_eq!(
        test.store
            .count_records(&acme, &connection.id, None)
            .await
            .unwrap(),
        3
    );
}

#[tokio::test]
async fn a_gap_on_any_page_keeps_the_pass_from_deleting_or_moving_the_high_water_mark() {
    let test = spawn_store().await;
    let acme = tenant("acme");
    let connection = create_connection(&test.store, &acme).await;
    let pass = Pass::begin(true);
    let both = [record("1", json!({}), None), record("2", json!({}), None)];
    commit_in(&test.store, &connection, "posts", &pass, &both, None).await;
    finish(&test.store, &connection, "posts", &pass).await;
    // A full pass whose first page reports a gap and whose last does not.
    let gappy = Pass::begin(true);
    let reason = "posts were removed during the sync";
    test.store
        .commit_page(PageCommit {
            tenant: &acme,
            connection: &connection.id,
            stream: "posts",
            pass: &gappy,
            records: &[record("1", json!({}), None)],
            cursor: Some(&json!({"page": 2})),
            gap: Some(reason),
            removed: &[],
            lease: None,
        })
        .await
        .unwrap();
    commit_in(&test.store, &connection, "posts", &gappy, &[], None).await;

    let ended = finish(&test.store, &connection, "posts", &gappy).await;
    let states = test
        .store
        .stream_states(&acme, &connection.id)
        .await
        .unwrap();

    assert_eq!(ended.gap.as_deref(), Some(reason));
    assert_eq!(ended.deleted, 0, "record 2 was not seen, but may exist");
    assert_eq!(ended.live, 2);
    assert_eq!(states["posts"].pass, None);
    assert_eq!(states["posts"].high_water, Some(pass.started_at));
    assert_eq!(states["posts"].last_full_at, Some(pass.started_at));
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
async fn every_stream_position_of_a_connection_is_read_at_once() {
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

    let states = test
        .store
        .stream_states(&acme, &connection.id)
        .await
        .unwrap();
    let elsewhere = test
        .store
        .stream_states(&tenant("globex"), &connection.id)
        .await
        .unwrap();

    let cursor = |stream: &str| states[stream].pass.as_ref().and_then(|(_, c)| c.clone());
    assert_eq!(states.len(), 2);
    assert_eq!(cursor("posts"), Some(json!({"page": 2})));
    assert_eq!(cursor("pages"), Some(json!({"after": "x"})));
    assert!(elsewhere.is_empty());
}

#[tokio::test]
async fn ids_a_page_reports_removed_are_marked_deleted_at_once() {
    let test = spawn_store().await;
    let connection = create_connection(&test.store, &tenant("acme")).await;
    let records = [
        record("c1", json!({"name": "one"}), Some(at(1))),
        record("c2", json!({"name": "two"}), Some(at(2))),
        record("c3", json!({"name": "three"}), Some(at(3))),
    ];
    commit(&test.store, &connection, "cards", &records, None).await;

    let counts = test
        .store
        .commit_page(PageCommit {
            tenant: &connection.tenant,
            connection: &connection.id,
            stream: "cards",
            pass: &Pass::begin(false),
            records: &[],
            cursor: None,
            gap: None,
            removed: &["c2".to_owned(), "c9".to_owned()],
            lease: None,
        })
        .await
        .unwrap();

    assert_eq!(counts.deleted, 1, "c9 was never stored");
    let live = test
        .store
        .count_records(&connection.tenant, &connection.id, Some("cards"))
        .await
        .unwrap();
    assert_eq!(live, 2);
    let row = test
        .store
        .get_connection(&connection.tenant, &connection.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.records_total, 2);
}

#[tokio::test]
async fn an_id_both_removed_and_read_on_a_page_counts_as_neither_deleted_nor_added() {
    let test = spawn_store().await;
    let connection = create_connection(&test.store, &tenant("acme")).await;
    let cards = [record("c1", json!({"name": "one"}), Some(at(1)))];
    commit(&test.store, &connection, "cards", &cards, None).await;

    // Archived and restored between two of the provider's answers.
    let again = [record("c1", json!({"name": "one again"}), Some(at(2)))];
    let counts = test
        .store
        .commit_page(PageCommit {
            tenant: &connection.tenant,
            connection: &connection.id,
            stream: "cards",
            pass: &Pass::begin(false),
            records: &again,
            cursor: None,
            gap: None,
            removed: &["c1".to_owned()],
            lease: None,
        })
        .await
        .unwrap();

    assert_eq!((counts.deleted, counts.added, counts.updated), (0, 0, 1));
    let row = test
        .store
        .get_connection(&connection.tenant, &connection.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.records_total, 1);
}

#[tokio::test]
async fn a_record_with_nul_characters_is_stored_with_them_replaced() {
    let test = spawn_store().await;
    let connection = create_connection(&test.store, &tenant("acme")).await;
    let records = [
        record(
            "1",
            json!({"title": "bad\u{0}byte", "tags": ["a\u{0}"]}),
            None,
        ),
        record("2", json!({"title": "clean"}), None),
    ];

    let written = commit(&test.store, &connection, "posts", &records, None).await;

    assert_eq!(written, 2);
    let page = test
        .store
        .list_records(all_records(&connection, 10))
        .await
        .unwrap();
    let titles: HashSet<_> = page
        .records
        .iter()
        .map(|r| r.payload["title"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        titles,
        HashSet::from(["bad\u{fffd}byte".to_owned(), "clean".to_owned()])
    );
}

#[tokio::test]
async fn paging_with_deleted_records_lists_each_record_once() {
    let test = spawn_store().await;
    let acme = tenant("acme");
    let connection = create_connection(&test.store, &acme).await;
    let ids = ["1", "2", "3", "4", "5", "6"];
    let first = Pass::begin(true);
    let records: Vec<_> = ids
        .iter()
        .enumerate()
        .map(|(n, id)| record(id, json!({"id": id}), Some(at(n as i64))))
        .collect();
    commit_in(&test.store, &connection, "posts", &first, &records, None).await;
    finish(&test.store, &connection, "posts", &first).await;
    // The provider deletes every other record: their listing time becomes
    // their deletion time, later than every update.
    let second = Pass::begin(true);
    let kept: Vec<_> = records.iter().step_by(2).cloned().collect();
    commit_in(&test.store, &connection, "posts", &second, &kept, None).await;
    finish(&test.store, &connection, "posts", &second).await;

    let mut query = all_records(&connection, 2);
    query.include_deleted = true;
    let seen = walk(&test.store, query, async |_| {}).await;

    let mut listed: Vec<&str> = seen.iter().map(|(_, id)| id.as_str()).collect();
    assert_eq!(listed.len(), ids.len(), "each record once: {listed:?}");
    listed.sort_unstable();
    assert_eq!(listed, ids);
}

#[tokio::test]
async fn a_last_page_ends_its_pass_in_the_same_commit_and_sweeps_only_what_it_did_not_see() {
    let test = spawn_store().await;
    let acme = tenant("acme");
    let connection = create_connection(&test.store, &acme).await;
    let first = Pass::begin(true);
    let seeded = [
        record("a", json!({"v": 1}), None),
        record("b", json!({"v": 1}), None),
        record("c", json!({"v": 1}), None),
        record("d", json!({"v": 1}), None),
    ];
    commit_in(&test.store, &connection, "posts", &first, &seeded, None).await;
    finish(&test.store, &connection, "posts", &first).await;

    // A second full pass: its first page sees a, its last page sees b
    // (changed) and a new e, and says d was removed; c is not seen at all.
    let second = Pass::begin(true);
    let cursor = json!("page-2");
    let a = [record("a", json!({"v": 1}), None)];
    commit_in(
        &test.store,
        &connection,
        "posts",
        &second,
        &a,
        Some(&cursor),
    )
    .await;
    let last = [
        record("b", json!({"v": 2}), None),
        record("e", json!({"v": 1}), None),
    ];
    let removed = ["d".to_owned()];
    let last_page = PageCommit {
        tenant: &acme,
        connection: &connection.id,
        stream: "posts",
        pass: &second,
        records: &last,
        cursor: None,
        gap: None,
        removed: &removed,
        lease: None,
    };
    let (counts, ended) = test.store.commit_last_page(last_page, true).await.unwrap();

    assert_eq!((counts.added, counts.updated, counts.deleted), (1, 1, 1));
    assert_eq!(ended.deleted, 1, "only c, which no page of the pass saw");
    assert_eq!(ended.live, 3, "a, b and e");
    assert_eq!(ended.gap, None);
    let live: HashSet<String> = test
        .store
        .list_records(all_records(&connection, 100))
        .await
        .unwrap()
        .records
        .into_iter()
        .map(|r| r.external_id)
        .collect();
    assert_eq!(live, HashSet::from(["a", "b", "e"].map(str::to_owned)));
    let states = test
        .store
        .stream_states(&acme, &connection.id)
        .await
        .unwrap();
    assert_eq!(
        states["posts"].pass, None,
        "the pass ended with its last page"
    );
    assert_eq!(states["posts"].high_water, Some(second.started_at));
    assert_eq!(states["posts"].last_full_at, Some(second.started_at));
    let row = test
        .store
        .get_connection(&acme, &connection.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.records_total, 3);

    // Called again (a retry whose first answer was lost), it stores nothing
    // and reports the pass's end as it was.
    let (again, ended_again) = test.store.commit_last_page(last_page, true).await.unwrap();
    assert_eq!((again.added, again.updated, again.deleted), (0, 0, 0));
    assert_eq!((ended_again.deleted, ended_again.live), (1, 3));
    assert_eq!(
        test.store
            .stream_states(&acme, &connection.id)
            .await
            .unwrap()["posts"]
            .pass,
        None,
        "the repeat opened no pass"
    );
}

/// Why the second pass of [`PassWithAGap`] may have missed records.
const GAP: &str = "page 1 skipped 2 items";

/// A connection whose posts a, b and c a complete full pass stored
/// (`first`), and a second full pass whose first page read a and reported
/// [`GAP`] (`second`); its last page, with b, is not stored yet.
struct PassWithAGap {
    test: TestStore,
    connection: Connection,
    first: Pass,
    second: Pass,
    last: [RecordUpsert; 1],
}

impl PassWithAGap {
    async fn start() -> Self {
        let test = spawn_store().await;
        let connection = create_connection(&test.store, &tenant("acme")).await;
        let first = Pass::begin(true);
        let seeded = ["a", "b", "c"].map(|id| record(id, json!({"v": 1}), None));
        commit_in(&test.store, &connection, "posts", &first, &seeded, None).await;
        finish(&test.store, &connection, "posts", &first).await;
        let second = Pass::begin(true);
        let cursor = json!("page-2");
        test.store
            .commit_page(PageCommit {
                gap: Some(GAP),
                cursor: Some(&cursor),
                records: &[record("a", json!({"v": 1}), None)],
                ..page_of(&connection, &second, &[])
            })
            .await
            .unwrap();
        Self {
            test,
            connection,
            first,
            second,
            last: [record("b", json!({"v": 1}), None)],
        }
    }

    /// Stores the second pass's last page through the store.
    async fn commit_last(&self) -> PassOutcome {
        let page = page_of(&self.connection, &self.second, &self.last);
        let (_, ended) = self.test.store.commit_last_page(page, true).await.unwrap();
        ended
    }

    /// Checks that the second pass ended as a pass with a gap must: nothing
    /// deleted, the high-water mark where it was.
    async fn assert_ended_with_its_gap(&self, ended: &PassOutcome) {
        assert_eq!(ended.gap.as_deref(), Some(GAP));
        assert_eq!(
            (ended.deleted, ended.live),
            (0, 3),
            "a pass with a gap deletes nothing"
        );
        let connection = &self.connection;
        let states = self
            .test
            .store
            .stream_states(&connection.tenant, &connection.id)
            .await
            .unwrap();
        assert_eq!(states["posts"].pass, None);
        assert_eq!(
            states["posts"].high_water,
            Some(self.first.started_at),
            "a pass with a gap leaves the high-water mark where it was"
        );
        let row = self
            .test
            .store
            .get_connection(&connection.tenant, &connection.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.records_total, 3);
    }
}

/// A page of `records` in `pass` over `posts` of `connection`, without a
/// cursor (a pass's last page), gap, removals or lease.
fn page_of<'a>(
    connection: &'a Connection,
    pass: &'a Pass,
    records: &'a [RecordUpsert],
) -> PageCommit<'a> {
    PageCommit {
        tenant: &connection.tenant,
        connection: &connection.id,
        stream: "posts",
        pass,
        records,
        cursor: None,
        gap: None,
        removed: &[],
        lease: None,
    }
}

#[tokio::test]
async fn a_repeated_last_page_of_a_pass_with_a_gap_still_reports_the_gap_and_deletes_nothing() {
    let pass = PassWithAGap::start().await;

    let ended = pass.commit_last().await;
    // The same call again, as a retry after a lost answer makes it.
    let repeated = pass.commit_last().await;

    pass.assert_ended_with_its_gap(&ended).await;
    pass.assert_ended_with_its_gap(&repeated).await;
}

#[tokio::test]
async fn a_last_page_retried_while_its_first_call_still_runs_waits_for_it_and_keeps_the_gap() {
    use sqlx::Connection as _;

    let pass = PassWithAGap::start().await;
    let connection = &pass.connection;
    // The first call of the last page runs in a transaction that has not
    // committed yet, as a call whose answer was lost may still be running.
    let mut running = sqlx::PgConnection::connect(&pass.test.url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut running).await.unwrap();
    sqlx::query(
        "SELECT * FROM sync_write_last_page($1, $2, 'posts', ARRAY['b'], \
         ARRAY['{\"v\": 1}'::jsonb], ARRAY[NULL::timestamptz], $3, '{}', $3, true, $4, NULL, \
         NULL, NULL, 0, true)",
    )
    .bind(connection.tenant.as_str())
    .bind(connection.id.as_str())
    .bind(pass.second.id)
    .bind(pass.second.started_at)
    .execute(&mut running)
    .await
    .unwrap();

    let first_commits = async {
        // Commit once the retry waits on the stream's lock.
        let mut watcher = sqlx::PgConnection::connect(&pass.test.url).await.unwrap();
        let waiting = async {
            loop {
                let (waiters,): (i64,) = sqlx::query_as(
                    "SELECT count(*) FROM pg_stat_activity \
                     WHERE wait_event_type = 'Lock' AND wait_event = 'advisory'",
                )
                .fetch_one(&mut watcher)
                .await
                .unwrap();
                if waiters > 0 {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(10), waiting)
            .await
            .expect("the retry waits for the running call");
        sqlx::query("COMMIT").execute(&mut running).await.unwrap();
    };
    let (retried, ()) = tokio::join!(pass.commit_last(), first_commits);

    pass.assert_ended_with_its_gap(&retried).await;
}
