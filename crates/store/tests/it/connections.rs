use std::time::Duration;

use fleet_events::{AccountInfo, ConnectionId, ConnectionStatus};
use fleet_store::{Error, NewConnection, SavedConnection};

use crate::helpers::{connector, create_connection, spawn_store, tenant};

#[tokio::test]
async fn a_new_connection_is_pending_without_account_error_or_sync() {
    let test = spawn_store().await;
    let acme = tenant("acme");
    let id = ConnectionId::new();

    let connection = test
        .store
        .create_connection(NewConnection {
            tenant: &acme,
            id: &id,
            connector: &connector("wordpress"),
            display_name: "Company blog",
            sync_interval: Some(Duration::from_secs(900)),
        })
        .await
        .unwrap();

    assert_eq!(connection.tenant, acme);
    assert_eq!(connection.id, id);
    assert_eq!(connection.connector.as_str(), "wordpress");
    assert_eq!(connection.display_name, "Company blog");
    assert_eq!(connection.status, ConnectionStatus::Pending);
    assert_eq!(connection.sync_interval, Some(Duration::from_secs(900)));
    assert_eq!(connection.account, None);
    assert_eq!(connection.last_error, None);
    assert_eq!(connection.last_sync_at, None);
    assert_eq!(connection.records_total, 0);
    assert_eq!(connection.last_status_event, None);
}

#[tokio::test]
async fn creating_the_same_connection_twice_keeps_one_row_and_returns_it() {
    let test = spawn_store().await;
    let acme = tenant("acme");
    let first = create_connection(&test.store, &acme).await;

    let second = test
        .store
        .create_connection(NewConnection {
            tenant: &acme,
            id: &first.id,
            connector: &first.connector,
            display_name: "Another name",
            sync_interval: None,
        })
        .await
        .unwrap();

    assert_eq!(second, first);
    assert_eq!(test.store.list_connections(&acme).await.unwrap(), [first]);
}

#[tokio::test]
async fn tenants_see_and_delete_only_their_own_connections() {
    let test = spawn_store().await;
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    let acme_connection = create_connection(&test.store, &acme).await;
    let globex_connection = create_connection(&test.store, &globex).await;

    let seen_by_globex = test
        .store
        .get_connection(&globex, &acme_connection.id)
        .await
        .unwrap();
    let listed_for_globex = test.store.list_connections(&globex).await.unwrap();
    let deleted_by_globex = test
        .store
        .delete_connection(&globex, &acme_connection.id)
        .await
        .unwrap();

    assert_eq!(seen_by_globex, None);
    assert_eq!(listed_for_globex, [globex_connection]);
    assert!(!deleted_by_globex);
    let still_there = test
        .store
        .get_connection(&acme, &acme_connection.id)
        .await
        .unwrap();
    assert_eq!(still_there, Some(acme_connection));
}

#[tokio::test]
async fn the_same_connection_id_can_exist_in_two_tenants() {
    let test = spawn_store().await;
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    let acme_connection = create_connection(&test.store, &acme).await;

    let globex_connection = test
        .store
        .create_connection(NewConnection {
            tenant: &globex,
            id: &acme_connection.id,
            connector: &connector("trello"),
            display_name: "Boards",
            sync_interval: None,
        })
        .await
        .unwrap();

    assert_eq!(globex_connection.connector.as_str(), "trello");
    assert_eq!(
        test.store.list_connections(&acme).await.unwrap(),
        [acme_connection]
    );
}

#[tokio::test]
async fn connections_are_listed_oldest_first() {
    let test = spawn_store().await;
    let acme = tenant("acme");
    let first = create_connection(&test.store, &acme).await;
    let second = create_connection(&test.store, &acme).await;

    let listed = test.store.list_connections(&acme).await.unwrap();

    assert_eq!(listed, [first, second]);
}

#[tokio::test]
async fn the_account_and_sync_interval_are_stored_and_the_interval_can_be_cleared() {
    let test = spawn_store().await;
    let acme = tenant("acme");
    let connection = create_connection(&test.store, &acme).await;
    let account = AccountInfo {
        id: "site-42".to_owned(),
        name: "blog.acme.example".to_owned(),
    };

    test.store
        .save_connection(SavedConnection {
            tenant: &acme,
            id: &connection.id,
            connector: &connection.connector,
            account: &account,
            sync_interval: None,
        })
        .await
        .unwrap();
    test.store
        .set_sync_interval(&acme, &connection.id, Some(Duration::from_secs(60)))
        .await
        .unwrap();
    let scheduled = test
        .store
        .get_connection(&acme, &connection.id)
        .await
        .unwrap()
        .unwrap();
    test.store
        .set_sync_interval(&acme, &connection.id, None)
        .await
        .unwrap();
    let unscheduled = test
        .store
        .get_connection(&acme, &connection.id)
        .await
        .unwrap()
        .unwrap();

    assert_eq!(scheduled.account, Some(account));
    assert_eq!(scheduled.sync_interval, Some(Duration::from_secs(60)));
    assert!(scheduled.updated_at >= connection.updated_at);
    assert_eq!(unscheduled.sync_interval, None);
}

#[tokio::test]
async fn updating_a_connection_of_another_tenant_reports_it_not_found() {
    let test = spawn_store().await;
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    let connection = create_connection(&test.store, &acme).await;

    let err = test
        .store
        .set_sync_interval(&globex, &connection.id, None)
        .await
        .unwrap_err();

    assert!(
        matches!(&err, Error::ConnectionNotFound { tenant, connection: id }
            if *tenant == globex && *id == connection.id),
        "{err:?}"
    );
    assert!(!err.is_transient());
}

#[tokio::test]
async fn a_sync_interval_under_a_second_is_refused() {
    let test = spawn_store().await;
    let acme = tenant("acme");
    let connection = create_connection(&test.store, &acme).await;

    let err = test
        .store
        .set_sync_interval(&acme, &connection.id, Some(Duration::from_millis(500)))
        .await
        .unwrap_err();

    assert!(matches!(err, Error::InvalidSyncInterval { .. }), "{err:?}");
}

#[tokio::test]
async fn deleting_a_connection_twice_reports_whether_it_existed() {
    let test = spawn_store().await;
    let acme = tenant("acme");
    let connection = create_connection(&test.store, &acme).await;

    let first = test
        .store
        .delete_connection(&acme, &connection.id)
        .await
        .unwrap();
    let second = test
        .store
        .delete_connection(&acme, &connection.id)
        .await
        .unwrap();

    assert!(first);
    assert!(!second);
    assert_eq!(
        test.store
            .get_connection(&acme, &connection.id)
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn saving_creates_a_row_named_after_the_account_or_completes_the_existing_one() {
    let test = spawn_store().await;
    let acme = tenant("acme");
    let existing = create_connection(&test.store, &acme).await;
    let fresh = ConnectionId::parse("wp-new").unwrap();
    let account = AccountInfo {
        id: "site-42".to_owned(),
        name: "blog.acme.example".to_owned(),
    };
    let saved = |id, sync_interval| SavedConnection {
        tenant: &acme,
        id,
        connector: &existing.connector,
        account: &account,
        sync_interval,
    };
    let hourly = Some(Duration::from_secs(3600));

    test.store
        .save_connection(saved(&fresh, None))
        .await
        .unwrap();
    test.store
        .save_connection(saved(&existing.id, hourly))
        .await
        .unwrap();
    // A redelivered save without an interval keeps the one stored.
    test.store
        .save_connection(saved(&existing.id, None))
        .await
        .unwrap();
    let get = |id| test.store.get_connection(&acme, id);
    let fresh_row = get(&fresh).await.unwrap().unwrap();
    let existing_row = get(&existing.id).await.unwrap().unwrap();

    assert_eq!(fresh_row.display_name, "blog.acme.example");
    assert_eq!(fresh_row.status, ConnectionStatus::Pending);
    assert_eq!(fresh_row.account.as_ref(), Some(&account));
    assert_eq!(fresh_row.sync_interval, None);
    assert_eq!(existing_row.display_name, existing.display_name);
    assert_eq!(existing_row.account, Some(account.clone()));
    assert_eq!(existing_row.sync_interval, hourly);
    let unnamed = AccountInfo {
        id: "site-43".to_owned(),
        name: String::new(),
    };
    assert!(matches!(
        test.store
            .save_connection(SavedConnection {
                account: &unnamed,
                ..saved(&ConnectionId::parse("wp-unnamed").unwrap(), None)
            })
            .await,
        Err(Error::SaveConnection(_))
    ));
}
