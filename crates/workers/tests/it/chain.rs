use fleet_connectors::Credentials;
use fleet_events::{ConnectionState, ConnectionStatus, Step};
use fleet_sim::Fault;

use crate::helpers::{PAGES, PASSWORD, POSTS, SITE, TestFleet};

fn states(statuses: &[fleet_events::StatusChanged]) -> Vec<&'static str> {
    let mut states: Vec<_> = statuses.iter().map(|s| s.status.state().as_str()).collect();
    states.dedup();
    states
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staged_credentials_end_as_a_synced_connection_with_its_records() {
    let fleet = TestFleet::start().await;

    let (connection, _) = fleet.connect(&fleet.credentials(PASSWORD)).await;

    let statuses = fleet
        .statuses_until(&connection, ConnectionState::Synced)
        .await;
    assert_eq!(
        states(&statuses),
        ["validating", "saving", "syncing", "synced"]
    );
    let ConnectionStatus::Synced { records, .. } = statuses.last().unwrap().status else {
        unreachable!()
    };
    assert_eq!(records, u64::from(POSTS + PAGES));

    let row = fleet.row_in(&connection, ConnectionState::Synced).await;
    assert!(row.last_sync_at.is_some());
    assert_eq!(row.last_error, None);
    assert_eq!(
        row.account.as_ref().map(|a| a.id.as_str()),
        Some(fleet.sim.site_url(SITE).as_str())
    );
    let stored = fleet
        .deps
        .store
        .count_records(&fleet.tenant, &connection, None)
        .await
        .unwrap();
    assert_eq!(stored, u64::from(POSTS + PAGES));

    let in_use = fleet.in_use(&connection).await.unwrap();
    assert_eq!(
        in_use.version,
        fleet_secrets::Version::new(1),
        "the staged version is the one in use"
    );
    assert!(matches!(in_use.value, Credentials::AppPassword { .. }));
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unavailable_then_rate_limited_provider_is_retried_until_the_chain_completes() {
    let fleet = TestFleet::start().await;
    // More failures than one call's own retries, so the step itself fails
    // and JetStream redelivers it.
    fleet.sim.inject_site(
        SITE,
        Fault::Unavailable {
            retry_after_secs: None,
        },
        3,
    );
    fleet.sim.inject_site(
        SITE,
        Fault::RateLimited {
            retry_after_secs: 1,
        },
        3,
    );

    let (connection, _) = fleet.connect(&fleet.credentials(PASSWORD)).await;

    let statuses = fleet
        .statuses_until(&connection, ConnectionState::Synced)
        .await;
    let retrying = statuses
        .iter()
        .filter(|s| s.status.state() == ConnectionState::Retrying)
        .count();
    assert!(
        retrying >= 1,
        "the failures were visible as retrying: {:?}",
        states(&statuses)
    );
    assert!(fleet.stats(Step::Validate).retried >= 1);
    fleet.row_in(&connection, ConnectionState::Synced).await;
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_ends_as_invalid_with_a_readable_reason_and_no_retries() {
    let fleet = TestFleet::start().await;

    let (connection, _) = fleet.connect(&fleet.credentials("wrong password")).await;

    let statuses = fleet
        .statuses_until(&connection, ConnectionState::Invalid)
        .await;
    let ConnectionStatus::Invalid { reason } = &statuses.last().unwrap().status else {
        unreachable!()
    };
    assert!(
        reason.contains("incorrect_password") || reason.contains("password"),
        "{reason}"
    );
    assert!(
        !reason.contains("wrong password"),
        "the reason never contains the secret"
    );
    let row = fleet.row_in(&connection, ConnectionState::Invalid).await;
    assert_eq!(row.last_error.as_deref(), Some(reason.as_str()));
    assert_eq!(fleet.stats(Step::Validate).retried, 0);
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_validate_event_delivered_twice_has_one_effect() {
    let fleet = TestFleet::start().await;
    let (connection, event) = fleet.connect(&fleet.credentials(PASSWORD)).await;
    fleet
        .statuses_until(&connection, ConnectionState::Synced)
        .await;
    let client = fleet.js.client();
    let subject = fleet_events::subject::save(&fleet.tenant, &connection);
    let mut saves = client.subscribe(subject).await.unwrap();
    let statuses = fleet_events::subject::status(&fleet.tenant, &connection);
    let mut reported = client.subscribe(statuses).await.unwrap();

    // The same bytes again, past the deduplication window (a new msg id):
    // what a redelivery after a lost ack looks like.
    let validate = fleet.stats(Step::Validate);
    fleet.publish(&event, "redelivered").await;
    fleet_testkit::eventually(
        crate::helpers::DEADLINE,
        "the second copy to be handled",
        || async { (fleet.stats(Step::Validate).acked > validate.acked).then_some(()) },
    )
    .await;
    // What the step published reached the server before its ack, so
    // before this round trip.
    client.flush().await.unwrap();

    let next = |sub| futures::FutureExt::now_or_never(futures::StreamExt::next(sub));
    assert!(next(&mut saves).is_none(), "no second save request");
    assert!(
        next(&mut reported).is_none(),
        "no status over the synced one"
    );
    let row = fleet.row_in(&connection, ConnectionState::Synced).await;
    assert_eq!(row.records_total, u64::from(POSTS + PAGES));
    let stored = fleet
        .deps
        .store
        .count_records(&fleet.tenant, &connection, None)
        .await
        .unwrap();
    assert_eq!(stored, u64::from(POSTS + PAGES), "no record twice");
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_set_up_connection_syncs_again_on_its_schedule() {
    let fleet = TestFleet::start_with(fleet_workers::SyncSchedule::Every(
        std::time::Duration::from_secs(1),
    ))
    .await;

    let (connection, _) = fleet.connect(&fleet.credentials(PASSWORD)).await;

    let row = fleet.row_in(&connection, ConnectionState::Synced).await;
    assert_eq!(row.sync_interval, Some(std::time::Duration::from_secs(1)));
    let first_sync = row.last_sync_at.unwrap();
    fleet_testkit::eventually(
        crate::helpers::DEADLINE,
        "a scheduled sync to finish",
        || async {
            let run = fleet
                .deps
                .store
                .latest_sync_run(&fleet.tenant, &connection)
                .await
                .unwrap()
                .unwrap();
            (run.trigger == fleet_events::SyncTrigger::Scheduled && run.finished_at.is_some())
                .then_some(())
        },
    )
    .await;
    let row = fleet.row_in(&connection, ConnectionState::Synced).await;
    assert!(row.last_sync_at.unwrap() > first_sync);
    let stored = fleet
        .deps
        .store
        .count_records(&fleet.tenant, &connection, None)
        .await
        .unwrap();
    assert_eq!(
        stored,
        u64::from(POSTS + PAGES),
        "a re-sync upserts, never duplicates"
    );
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_connection_syncs_at_its_catalog_entrys_default_interval() {
    let fleet =
        TestFleet::start_with_catalog("wordpress", "default_sync_interval_secs = 7200").await;

    let (connection, _) = fleet.connect(&fleet.credentials(PASSWORD)).await;

    let row = fleet.row_in(&connection, ConnectionState::Synced).await;
    assert_eq!(
        row.sync_interval,
        Some(std::time::Duration::from_secs(7200))
    );
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_set_up_before_versioned_credentials_syncs_and_is_adopted() {
    let fleet = TestFleet::start().await;
    let connection = fleet_events::ConnectionId::new();
    let wordpress = fleet_events::ConnectorId::parse("wordpress").unwrap();
    // As an earlier release left it: a row that names no version, and the
    // credentials in the legacy `active` secret.
    let new = fleet_store::NewConnection {
        tenant: &fleet.tenant,
        id: &connection,
        connector: &wordpress,
        display_name: "old",
        sync_interval: None,
    };
    fleet.deps.store.create_connection(new).await.unwrap();
    let legacy = serde_json::json!({
        "credentials": fleet.credentials(PASSWORD),
        "staged_version": 1,
    });
    let prefix = format!("tenants/{}/connections/{connection}", fleet.tenant);
    fleet
        .vault
        .kv_write(&fleet.mount, &format!("{prefix}/active"), &legacy)
        .await;

    fleet.sync_now("wordpress", &connection).await;

    let row = fleet.row_in(&connection, ConnectionState::Synced).await;
    assert_eq!(row.records_total, u64::from(POSTS + PAGES));
    let fleet_store::CredentialsInUse::Version(version) = row.credentials else {
        panic!("the row names no version: {:?}", row.credentials);
    };
    let adopted = fleet.in_use(&connection).await.unwrap();
    assert_eq!(adopted.version.get(), version);
    assert_eq!(
        serde_json::to_value(&adopted.value).unwrap(),
        serde_json::to_value(fleet.credentials(PASSWORD)).unwrap()
    );
    let left = fleet
        .deps
        .secrets
        .read_legacy::<Credentials>(&fleet.tenant, &connection)
        .await
        .unwrap();
    assert!(left.is_none(), "the legacy secret is deleted once adopted");
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_sync_reads_the_credentials_from_the_cache_the_setup_filled() {
    let fleet = TestFleet::start().await;
    let (connection, _) = fleet.connect(&fleet.credentials(PASSWORD)).await;
    let synced = fleet.row_in(&connection, ConnectionState::Synced).await;
    let fleet_store::CredentialsInUse::Version(version) = synced.credentials else {
        panic!("the row names no version: {:?}", synced.credentials);
    };
    let version = fleet_secrets::Version::new(version);
    assert!(
        fleet
            .deps
            .secrets
            .is_cached(&fleet.tenant, &connection, version),
        "the validate step's read is cached"
    );
    // Gone from Vault: only a read that asks Vault would notice.
    let path = format!(
        "tenants/{}/connections/{connection}/credentials",
        fleet.tenant
    );
    fleet
        .vault
        .kv_destroy(&fleet.mount, &path, &[version.get()])
        .await;

    fleet.sync_now("wordpress", &connection).await;

    let statuses = fleet
        .statuses_until_nth(&connection, ConnectionState::Synced, 2)
        .await;
    assert_eq!(
        statuses.last().unwrap().status.state(),
        ConnectionState::Synced
    );
    fleet.stop().await;
}
