//! A provider that asks for a long wait (a quota window): the sync says
//! when it comes back, and the wait does not use up the request's
//! deliveries.

use fleet_events::{ConnectionState, ConnectionStatus, SetupOrigin, Step};
use fleet_sim::Fault;

use crate::helpers::{GOOGLE_USER, TestFleet};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exhausted_quota_defers_the_sync_and_says_when_it_comes_back() {
    // Every delivery is the last: a wait that counted as a failed attempt
    // would dead-letter the request and leave the connection failed.
    let fleet = TestFleet::start_google_with_sync_deliveries(1).await;
    let credentials = fleet.google_consent().await;
    let (connection, _) = fleet
        .connect_to("google-analytics", SetupOrigin::Oauth, &credentials)
        .await;
    let first = fleet.row_in(&connection, ConnectionState::Synced).await;
    let retried_before = fleet.stats(Step::Sync).retried;
    // Google's 429 for an exhausted hourly quota (it sends no Retry-After).
    fleet.sim.inject_google(
        GOOGLE_USER,
        Fault::RateLimited {
            retry_after_secs: 3600,
        },
        1,
    );

    fleet.sync_now("google-analytics", &connection).await;

    let statuses = fleet
        .statuses_until(&connection, ConnectionState::Retrying)
        .await;
    let ConnectionStatus::Retrying { next_at, .. } = statuses.last().unwrap().status else {
        unreachable!()
    };
    let wait = next_at - chrono::Utc::now();
    assert!(
        wait > chrono::TimeDelta::minutes(30),
        "the sync comes back after the quota window, not in seconds: {wait}"
    );
    // Deferred on its last delivery, the request is queued again and runs
    // once more (the fault is gone), ending synced: nothing was given up.
    let deadline = tokio::time::Instant::now() + crate::helpers::DEADLINE;
    loop {
        let row = fleet.row_in(&connection, ConnectionState::Synced).await;
        if row.last_sync_at > first.last_sync_at {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the deferred sync never ran again"
        );
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(fleet.stats(Step::Sync).retried > retried_before);
    assert_eq!(fleet.stats(Step::Sync).dead_lettered, 0);
    fleet.stop().await;
}
