use fleet_events::{ConnectionState, ConnectionStatus};
use fleet_sim::{Fault, SiteConfig, UserConfig};

use crate::helpers::{DEADLINE, SITE, USER, World, holds_within};

const PASSWORD: &str = "Zq7x Kp2m Vw9r Lt4n Hb6c Fy3d";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_sync_is_taken_over_by_another_and_no_record_is_duplicated() {
    let world = World::start(slow_site()).await;
    let (_, statuses) = kill_mid_sync_then_finish(&world).await;
    assert!(
        !statuses
            .iter()
            .any(|s| s.status.state() == ConnectionState::Retrying),
        "the redelivery resumed the sync without starting it over: {statuses:?}"
    );
}

/// The killed delivery was the request's last attempt: JetStream would
/// deliver it no more and tell no one, and the connection would stay
/// `syncing`. The step's consumer limits attempts, not deliveries, so the
/// next worker gets it once more and starts it over as a new request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_whose_last_attempt_was_killed_is_started_over_and_completes() {
    let world = World::start(slow_site()).await;
    world.set_attempts(fleet_bus::STEPS_STREAM, "sync", 1);
    let (connection, statuses) = kill_mid_sync_then_finish(&world).await;
    // The copy resumed the run as a redelivery would: one run, its record
    // finished, no `retrying` on the way.
    assert!(
        !statuses
            .iter()
            .any(|s| s.status.state() == ConnectionState::Retrying),
        "{statuses:?}"
    );
    let pool = sqlx::PgPool::connect(&world.database_url).await.unwrap();
    let runs: Vec<(Option<String>, String)> =
        sqlx::query_as("SELECT finished_at::text, outcome FROM sync_runs WHERE connection = $1")
            .bind(connection.as_str())
            .fetch_all(&pool)
            .await
            .unwrap();
    let [(finished, outcome)] = runs.as_slice() else {
        panic!("one sync run, resumed rather than started anew: {runs:?}")
    };
    assert!(finished.is_some() && outcome == "succeeded", "{runs:?}");
}

/// 1,205 records behind a provider that takes 300 ms per call, so a sync
/// runs for seconds.
fn slow_site() -> SiteConfig {
    SiteConfig::new(SITE)
        .user(UserConfig::administrator(USER, PASSWORD))
        .posts(1200)
        .pages(5)
}

/// Connects the site, kills the worker in the middle of the first sync,
/// starts another, and checks that the sync completes with every record
/// once and nothing left behind; returns the connection and its statuses.
async fn kill_mid_sync_then_finish(
    world: &World,
) -> (fleet_events::ConnectionId, Vec<fleet_events::StatusChanged>) {
    world
        .sim
        .inject_site(SITE, Fault::Slow { delay_ms: 300 }, 1000);
    let mut first = world.spawn_worker("first", &[]).await;

    let connection = world.connect(&world.credentials(PASSWORD)).await;
    world
        .statuses_until(
            &connection,
            |s| matches!(s.status, ConnectionStatus::Syncing { records, .. } if records >= 200),
        )
        .await;
    first.kill();
    let _second = world.spawn_worker("second", &[]).await;

    let statuses = world.synced(&connection).await;
    let ConnectionStatus::Synced { records, .. } = statuses.last().unwrap().status else {
        unreachable!()
    };
    assert_eq!(records, 1205);
    let stored = world
        .store
        .count_records(&world.tenant, &connection, None)
        .await
        .unwrap();
    assert_eq!(stored, 1205, "every record once");
    assert_eq!(world.messages_in(fleet_bus::DLQ_STREAM).await, 0);
    assert_eq!(
        world.messages_in(fleet_bus::STEPS_STREAM).await,
        0,
        "no step left behind"
    );
    (connection, statuses)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_sync_processes_share_the_syncs() {
    let site = SiteConfig::new(SITE)
        .user(UserConfig::administrator(USER, PASSWORD))
        .posts(150)
        .pages(2);
    let world = World::start(site).await;
    world
        .sim
        .inject_site(SITE, Fault::Slow { delay_ms: 100 }, 10_000);
    let _steps = world
        .spawn_worker("steps", &["--steps", "validate,save,status"])
        .await;
    let mut syncers = Vec::new();
    for name in ["sync-1", "sync-2", "sync-3"] {
        syncers.push(
            world
                // One tenant's twelve connections: the per-tenant cap would
                // make some wait their turn, which this test does not count.
                .spawn_worker(
                    name,
                    &[
                        "--steps",
                        "sync",
                        "--concurrency",
                        "2",
                        "--max-syncs-per-tenant",
                        "12",
                    ],
                )
                .await,
        );
    }

    let mut connections = Vec::new();
    for _ in 0..12 {
        connections.push(world.connect(&world.credentials(PASSWORD)).await);
    }
    for connection in &connections {
        world.synced(connection).await;
    }

    // A sync's message is settled just after its last status is out; once
    // the work queue is empty no delivery, first or repeated, is left.
    world.wait_for_messages(fleet_bus::STEPS_STREAM, 0).await;
    let count = || -> Vec<usize> {
        syncers
            .iter()
            .map(|p| p.count_logged("Settled message."))
            .collect()
    };
    holds_within(DEADLINE, || {
        let done = count().iter().sum::<usize>() >= 12;
        async move { done }
    })
    .await;
    let handled = count();
    assert_eq!(
        handled.iter().sum::<usize>(),
        12,
        "each sync handled once: {handled:?}"
    );
    assert!(
        handled.iter().all(|&n| n > 0),
        "every process took some syncs: {handled:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_a_worker_finish_and_exit_cleanly() {
    let site = SiteConfig::new(SITE)
        .user(UserConfig::administrator(USER, PASSWORD))
        .posts(20);
    let world = World::start(site).await;
    let mut worker = world.spawn_worker("worker", &[]).await;
    let connection = world.connect(&world.credentials(PASSWORD)).await;
    world.synced(&connection).await;

    let status = worker.terminate().await;

    assert!(
        status.success(),
        "exit status {status:?}; log:\n{}",
        worker.log()
    );
    assert!(worker.count_logged("Fleet worker stopped.") == 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_value_appears_in_any_stream_table_or_log() {
    let wrong = "Wr0ng Pa55 word Xx99 Yy88 Zz77";
    let site = SiteConfig::new(SITE)
        .user(UserConfig::administrator(USER, PASSWORD))
        .posts(30)
        .pages(3);
    let world = World::start(site).await;
    world.sim.inject_site(
        SITE,
        Fault::Unavailable {
            retry_after_secs: None,
        },
        3,
    );
    let worker = world.spawn_worker("worker", &[]).await;

    let good = world.connect(&world.credentials(PASSWORD)).await;
    let bad = world.connect(&world.credentials(wrong)).await;
    world.synced(&good).await;
    world
        .statuses_until(&bad, |s| s.status.state() == ConnectionState::Invalid)
        .await;

    let mut everything = String::new();
    for stream in [
        fleet_bus::STEPS_STREAM,
        fleet_bus::STATUS_STREAM,
        fleet_bus::DLQ_STREAM,
    ] {
        everything += &world.stream_text(stream).await;
    }
    everything += &world.table_text().await;
    everything += &worker.log();
    assert!(
        everything.contains(good.as_str()),
        "the scan covers the connection's data"
    );
    for secret in [PASSWORD, wrong, "Zq7xKp2mVw9rLt4nHb6cFy3d"] {
        assert!(!everything.contains(secret), "{secret:?} leaked");
    }
}
