use std::time::Duration;

use fleet_events::ConnectionId;
use fleet_store::{
    ChangeCursor, Connection, NewConnection, PageCommit, Pass, RecordUpsert, Store,
    TenantRecordQuery,
};
use serde_json::json;

use crate::helpers::{at, connector, create_connection, spawn_store, tenant};

async fn store_records(store: &Store, connection: &Connection, stream: &str, at_secs: &[i64]) {
    let records: Vec<RecordUpsert> = at_secs
        .iter()
        .map(|&secs| RecordUpsert {
            external_id: format!("{stream}-{secs}"),
            payload: json!({"at": secs}),
            updated_at: Some(at(secs)),
        })
        .collect();
    store
        .commit_page(PageCommit {
            tenant: &connection.tenant,
            connection: &connection.id,
            stream,
            pass: &Pass::begin(false),
            records: &records,
            cursor: None,
            gap: None,
            removed: &[],
            lease: None,
        })
        .await
        .unwrap();
}

/// Every record of `query`, following `next`, as (connection, external id).
async fn walk(store: &Store, query: TenantRecordQuery<'_>) -> Vec<(ConnectionId, String)> {
    let mut seen = Vec::new();
    let mut after: Option<ChangeCursor> = None;
    loop {
        let page = store
            .list_tenant_records(TenantRecordQuery {
                after: after.as_ref(),
                ..query
            })
            .await
            .unwrap();
        seen.extend(
            page.records
                .iter()
                .map(|r| (r.connection.clone(), r.record.external_id.clone())),
        );
        match page.next {
            Some(next) => after = Some(next),
            None => return seen,
        }
    }
}

#[tokio::test]
async fn a_tenant_s_records_across_connections_come_in_the_order_stored_filtered_and_only_its_own()
{
    let test = spawn_store().await;
    let store = &test.store;
    let acme = tenant("acme");
    let blog = create_connection(store, &acme).await;
    let crm = store
        .create_connection(NewConnection {
            tenant: &acme,
            id: &ConnectionId::new(),
            connector: &connector("fluentcrm"),
            display_name: "CRM",
            sync_interval: Some(Duration::from_secs(3600)),
        })
        .await
        .unwrap();
    let other = create_connection(store, &tenant("globex")).await;
    store_records(store, &blog, "posts", &[10, 30, 50]).await;
    store_records(store, &crm, "subscribers", &[20, 40]).await;
    store_records(store, &other, "posts", &[15]).await;
    let all = TenantRecordQuery {
        tenant: &acme,
        connector: None,
        connections: None,
        stream: None,
        updated_since: None,
        include_deleted: false,
        after: None,
        limit: 2,
    };

    let every = walk(store, all).await;
    let ids: Vec<&str> = every.iter().map(|(_, id)| id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "posts-10",
            "posts-30",
            "posts-50",
            "subscribers-20",
            "subscribers-40"
        ],
        "in the order they were stored, each once, none of another tenant"
    );

    let crm_only = walk(
        store,
        TenantRecordQuery {
            connector: Some(&crm.connector),
            ..all
        },
    )
    .await;
    assert!(crm_only.iter().all(|(c, _)| c == &crm.id) && crm_only.len() == 2);

    // A reader that has read everything asks again from the last time it
    // read: a record stored since comes, though its provider says it
    // changed long before.
    let last = store
        .list_tenant_records(TenantRecordQuery { limit: 1000, ..all })
        .await
        .unwrap()
        .records
        .last()
        .unwrap()
        .stored_at;
    store_records(store, &blog, "posts", &[5]).await;
    let since = walk(
        store,
        TenantRecordQuery {
            updated_since: Some(last),
            stream: Some("posts"),
            ..all
        },
    )
    .await;
    assert_eq!(
        since.iter().map(|(_, id)| id.as_str()).collect::<Vec<_>>(),
        ["posts-5"]
    );

    let allowed = [crm.id.clone()];
    let narrowed = walk(
        store,
        TenantRecordQuery {
            connections: Some(&allowed),
            ..all
        },
    )
    .await;
    assert_eq!(narrowed.len(), 2);
    assert!(narrowed.iter().all(|(c, _)| c == &crm.id));
    let none = walk(
        store,
        TenantRecordQuery {
            connections: Some(std::slice::from_ref(&other.id)),
            ..all
        },
    )
    .await;
    assert!(none.is_empty(), "another tenant's connection lists nothing");
}
