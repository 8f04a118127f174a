//! One sync per connection at a time: a request while one runs joins it.

use fleet_events::{ConnectionState, Step};
use fleet_sim::Fault;

use crate::helpers::{DEADLINE, PASSWORD, SITE, TestFleet};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_requested_while_one_runs_joins_it_instead_of_running_beside_it() {
    let fleet = TestFleet::start().await;
    let (connection, _) = fleet.connect(&fleet.credentials(PASSWORD)).await;
    fleet.row_in(&connection, ConnectionState::Synced).await;
    let acked_before = fleet.stats(Step::Sync).acked;
    // The next sync's first request takes a while, so the second request
    // arrives while it runs.
    fleet
        .sim
        .inject_site(SITE, Fault::Slow { delay_ms: 2000 }, 1);

    fleet.sync_now("wordpress", &connection).await;
    fleet.row_in(&connection, ConnectionState::Syncing).await;
    let running = fleet
        .deps
        .store
        .latest_sync_run(&fleet.tenant, &connection)
        .await
        .unwrap()
        .unwrap();
    fleet.sync_now("wordpress", &connection).await;

    fleet_testkit::eventually(DEADLINE, "both requests to be handled", || async {
        (fleet.stats(Step::Sync).acked >= acked_before + 2).then_some(())
    })
    .await;
    let latest = fleet
        .deps
        .store
        .latest_sync_run(&fleet.tenant, &connection)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(latest.id, running.id, "the second request started no run");
    assert!(latest.finished_at.is_some());
    fleet.row_in(&connection, ConnectionState::Synced).await;
    fleet.stop().await;
}
