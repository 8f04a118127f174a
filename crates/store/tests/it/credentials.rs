//! Which version of a connection's credentials is in use: promotion by the
//! save step, renewal, and the legacy layout.

use std::time::Duration;

use fleet_events::{AccountInfo, ConnectionId, EventId, TenantId};
use fleet_store::{
    Connection, CredentialsInUse, NewConnection, Promote, Promotion, SavedConnection, Store,
};

use crate::helpers::{connector, spawn_store, tenant};

fn account(name: &str) -> AccountInfo {
    AccountInfo {
        id: format!("id-{name}"),
        name: name.to_owned(),
    }
}

/// A connection the gateway staged as `staged`.
async fn staged(store: &Store, tenant: &TenantId, staged: u64) -> Connection {
    let new = NewConnection {
        tenant,
        id: &ConnectionId::new(),
        connector: &connector("wordpress"),
        display_name: "Company blog",
        sync_interval: None,
    };
    store.stage_connection(new, staged).await.unwrap()
}

async fn promote(
    store: &Store,
    connection: &Connection,
    account: &AccountInfo,
    version: u64,
) -> Promotion {
    let request = EventId::from(uuid::Uuid::from_u128(REQUEST));
    promote_by(store, connection, account, version, request).await
}

/// The save request most tests promote with.
const REQUEST: u128 = 0x0190_0000_0000_7000_8000_0000_0000_0001;

async fn promote_by(
    store: &Store,
    connection: &Connection,
    account: &AccountInfo,
    version: u64,
    request: EventId,
) -> Promotion {
    let saved = SavedConnection {
        tenant: &connection.tenant,
        id: &connection.id,
        connector: &connection.connector,
        account,
        sync_interval: Some(Duration::from_secs(3600)),
    };
    let promote = Promote {
        staged: version,
        request,
        adopted: false,
    };
    store.promote_credentials(saved, promote).await.unwrap()
}

async fn in_use(store: &Store, connection: &Connection) -> Option<CredentialsInUse> {
    store
        .credentials_in_use(&connection.tenant, &connection.id)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_staged_version_is_promoted_with_the_account_and_a_redelivery_has_one_effect() {
    let test = spawn_store().await;
    let connection = staged(&test.store, &tenant("acme"), 1).await;
    assert_eq!(connection.credentials, CredentialsInUse::NotYet(1));

    let first = promote(&test.store, &connection, &account("blog"), 1).await;
    let again = promote(&test.store, &connection, &account("blog"), 1).await;

    assert_eq!((first, again), (Promotion::Promoted, Promotion::Promoted));
    let row = test
        .store
        .get_connection(&connection.tenant, &connection.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.credentials, CredentialsInUse::Version(1));
    assert_eq!(row.account, Some(account("blog")));
    assert_eq!(row.sync_interval, Some(Duration::from_secs(3600)));
}

#[tokio::test]
async fn another_save_request_for_the_promoted_version_is_a_duplicate() {
    let test = spawn_store().await;
    let connection = staged(&test.store, &tenant("acme"), 1).await;
    promote(&test.store, &connection, &account("blog"), 1).await;

    let again = promote_by(
        &test.store,
        &connection,
        &account("again"),
        1,
        EventId::new(),
    )
    .await;

    assert_eq!(again, Promotion::Duplicate);
    let row = test
        .store
        .get_connection(&connection.tenant, &connection.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.account, Some(account("blog")));
}

#[tokio::test]
async fn a_redelivered_promotion_keeps_the_version_a_renewal_moved_to() {
    let test = spawn_store().await;
    let connection = staged(&test.store, &tenant("acme"), 1).await;
    promote(&test.store, &connection, &account("blog"), 1).await;
    let (tenant, id) = (&connection.tenant, &connection.id);

    assert!(test.store.move_credentials(tenant, id, 1, 2).await.unwrap());
    let redelivered = promote(&test.store, &connection, &account("blog"), 1).await;

    assert_eq!(redelivered, Promotion::Promoted);
    assert_eq!(
        in_use(&test.store, &connection).await,
        Some(CredentialsInUse::Version(2))
    );
}

#[tokio::test]
async fn a_renewal_moves_the_pointer_only_from_the_version_it_renewed() {
    let test = spawn_store().await;
    let connection = staged(&test.store, &tenant("acme"), 1).await;
    let (tenant, id) = (&connection.tenant, &connection.id);
    // Nothing to move from before the promotion.
    assert!(!test.store.move_credentials(tenant, id, 1, 2).await.unwrap());
    promote(&test.store, &connection, &account("blog"), 1).await;

    let first = test.store.move_credentials(tenant, id, 1, 2).await.unwrap();
    let stale = test.store.move_credentials(tenant, id, 1, 3).await.unwrap();
    let retried = test.store.move_credentials(tenant, id, 1, 2).await.unwrap();

    assert!(first);
    assert!(retried, "a move retried after it landed reports it moved");
    assert!(!stale, "a renewal of a replaced version loses");
    assert_eq!(
        in_use(&test.store, &connection).await,
        Some(CredentialsInUse::Version(2))
    );
}

#[tokio::test]
async fn a_save_for_a_version_never_staged_changes_nothing() {
    let test = spawn_store().await;
    let acme = tenant("acme");
    let connection = staged(&test.store, &acme, 1).await;

    let forged = promote(&test.store, &connection, &account("forged"), 2).await;
    let deleted = staged(&test.store, &acme, 1).await;
    test.store
        .delete_connection(&acme, &deleted.id)
        .await
        .unwrap();
    let gone = promote(&test.store, &deleted, &account("gone"), 1).await;

    assert_eq!((forged, gone), (Promotion::Unknown, Promotion::Unknown));
    let row = test
        .store
        .get_connection(&acme, &connection.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.credentials, CredentialsInUse::NotYet(1));
    assert_eq!(row.account, None);
    assert_eq!(in_use(&test.store, &deleted).await, None);
}

#[tokio::test]
async fn a_save_for_an_older_staged_version_after_a_newer_one_changes_nothing() {
    let test = spawn_store().await;
    let connection = staged(&test.store, &tenant("acme"), 3).await;
    promote(&test.store, &connection, &account("newer"), 3).await;

    let older = promote(&test.store, &connection, &account("older"), 2).await;

    assert_eq!(older, Promotion::Superseded);
    let row = test
        .store
        .get_connection(&connection.tenant, &connection.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.credentials, CredentialsInUse::Version(3));
    assert_eq!(row.account, Some(account("newer")));
}

#[tokio::test]
async fn a_connection_of_the_legacy_layout_is_reported_then_adopted_once() {
    let test = spawn_store().await;
    let acme = tenant("acme");
    let wordpress = connector("wordpress");
    let new = |id| NewConnection {
        tenant: &acme,
        id,
        connector: &wordpress,
        display_name: "Old blog",
        sync_interval: None,
    };
    let (first, second) = (ConnectionId::new(), ConnectionId::new());
    let legacy = test.store.create_connection(new(&first)).await.unwrap();
    let in_flight = test.store.create_connection(new(&second)).await.unwrap();
    assert_eq!(legacy.credentials, CredentialsInUse::Legacy);

    let reported = promote(&test.store, &legacy, &account("old"), 1).await;
    let adopted = test
        .store
        .adopt_credentials(&acme, &first, 5)
        .await
        .unwrap();
    let retried = test
        .store
        .adopt_credentials(&acme, &first, 5)
        .await
        .unwrap();
    let twice = test
        .store
        .adopt_credentials(&acme, &first, 6)
        .await
        .unwrap();
    let saved = SavedConnection {
        tenant: &acme,
        id: &second,
        connector: &in_flight.connector,
        account: &account("adopted"),
        sync_interval: None,
    };
    let adopt = Promote {
        staged: 1,
        request: EventId::new(),
        adopted: true,
    };
    let promoted = test.store.promote_credentials(saved, adopt).await.unwrap();

    assert_eq!(reported, Promotion::Legacy);
    assert!(adopted);
    assert!(
        retried,
        "an adoption retried after it landed reports it adopted"
    );
    assert!(!twice, "the second adoption loses and discards its copy");
    assert_eq!(
        in_use(&test.store, &legacy).await,
        Some(CredentialsInUse::Version(5))
    );
    assert_eq!(promoted, Promotion::Promoted);
    assert_eq!(
        in_use(&test.store, &in_flight).await,
        Some(CredentialsInUse::Version(1))
    );
}
