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
    let fleet = TestFleet::start_google_with_sync_attempts(1).await;
    let credentials = fleet.google_consent().await;
    let (connection, _) = fleet
        .connect_to("google-analytics", SetupOrigin::Oauth, &credentials)
        .await;
    let first = fleet.row_in(&connection, ConnectionState::Synced).await;
    let retried_before = fleet.stats(Step::Sync).retried;
    let acked_before = fleet.stats(Step::Sync).acked;
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
    // Deferred on its last delivery, the request is queued again as a new
    // message marked not to run before `next_at`; a worker takes it and
    // puts it back for the time left, without calling the provider.
    let subject = fleet_events::subject::sync(&fleet.tenant, &connection);
    let steps = fleet.js.get_stream(fleet_bus::STEPS_STREAM).await.unwrap();
    let requeued = fleet_testkit::eventually(
        crate::helpers::DEADLINE,
        "the deferred request to be queued again",
        || async {
            let message = steps.get_last_raw_message_by_subject(&subject).await.ok()?;
            message
                .headers
                .get(fleet_bus::NOT_BEFORE_HEADER)
                .and_then(|at| chrono::DateTime::parse_from_rfc3339(at.as_str()).ok())
        },
    )
    .await;
    let skew = (requeued.with_timezone(&chrono::Utc) - next_at).abs();
    assert!(
        skew < chrono::TimeDelta::seconds(5),
        "{requeued} vs {next_at}"
    );
    let requests = fleet.sim.google_requests(GOOGLE_USER);
    // Queued again (one), then taken and put back for the wait (two).
    fleet_testkit::eventually(
        crate::helpers::DEADLINE,
        "a worker to put the queued request back",
        || async { (fleet.stats(Step::Sync).retried >= retried_before + 2).then_some(()) },
    )
    .await;
    assert_eq!(
        fleet.stats(Step::Sync).acked,
        acked_before,
        "it did not run"
    );
    assert!(
        steps
            .get_last_raw_message_by_subject(&subject)
            .await
            .is_ok(),
        "it waits in the work queue"
    );
    assert_eq!(
        fleet.sim.google_requests(GOOGLE_USER),
        requests,
        "nothing asked of the provider before the quota window ends"
    );
    let row = fleet.row_in(&connection, ConnectionState::Retrying).await;
    assert_eq!(row.last_sync_at, first.last_sync_at);
    assert_eq!(fleet.stats(Step::Sync).dead_lettered, 0);
    fleet.stop().await;
}
