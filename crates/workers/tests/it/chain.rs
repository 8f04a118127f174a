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

    let active = fleet
        .deps
        .secrets
        .read_active::<Credentials>(&fleet.tenant, &connection)
        .await;
    assert!(active.is_ok(), "the credentials are active in Vault");
    let staged = fleet
        .deps
        .secrets
        .read_staged::<Credentials>(&fleet.tenant, &connection, fleet_secrets::Version::new(1))
        .await;
    assert!(
        matches!(staged, Err(fleet_secrets::Error::NotFound { .. })),
        "and gone from staging: {staged:?}"
    );
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

    let row = fleet.row_in(&connection, ConnectionState::Synced).await;
    assert_eq!(row.records_total, u64::from(POSTS + PAGES));
    let stored = fleet
        .deps
        .store
        .count_records(&fleet.tenant, &connection, None)
        .await
        .unwrap();
    assert_eq!(stored, u64::from(POSTS + PAGES), "no record twice");
    assert_eq!(fleet.stats(Step::Save).acked, 1, "no second save");
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
