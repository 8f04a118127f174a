//! The fleet on a three-node NATS cluster with every stream replicated three
//! times: a node stops in the middle of the work and comes back, and every
//! setup still ends with each record stored once, and a dashboard on the
//! bridge shows each end state, by replay rather than a fresh snapshot.

use fleet_events::{ConnectionState, ConnectionStatus};
use fleet_sim::{Fault, SiteConfig, UserConfig};

use crate::chaos::dashboard::Dashboard;
use crate::helpers::{SITE, USER, World};

const PASSWORD: &str = "Zq7x Kp2m Vw9r Lt4n Hb6c Fy3d";
const CONNECTIONS: usize = 12;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setups_finish_exactly_when_a_cluster_node_stops_mid_work_and_returns() {
    let site = SiteConfig::new(SITE)
        .user(UserConfig::administrator(USER, PASSWORD))
        .posts(40)
        .pages(1);
    let mut world = World::start_on_cluster(site).await;
    // Every provider call takes a while, so the node stops while syncs run.
    world
        .sim
        .inject_site(SITE, Fault::Slow { delay_ms: 40 }, 100_000);
    let _first = world.spawn_worker("worker-a", &[]).await;
    let _second = world.spawn_worker("worker-b", &[]).await;
    let (_bridge, bridge) = world.spawn_bridge("bridge").await;
    let dashboard = Dashboard::open(&bridge, world.token());

    let mut connections = Vec::new();
    for _ in 0..CONNECTIONS {
        connections.push(world.connect(&world.credentials(PASSWORD)).await);
    }
    world
        .statuses_until(&connections[0], |s| {
            matches!(s.status, ConnectionStatus::Syncing { .. })
        })
        .await;
    // The leader of the steps' stream goes, in the middle of the work.
    let mut steps = world.js.get_stream(fleet_bus::STEPS_STREAM).await.unwrap();
    let info = steps.info().await.unwrap();
    let leader = info
        .cluster
        .as_ref()
        .and_then(|c| c.leader.clone())
        .unwrap();
    world.cluster().node_named(&leader).stop();

    let (before, after) = connections.split_at(CONNECTIONS / 2);
    for connection in before {
        assert_synced(&world, connection).await;
    }
    // It comes back while the rest still run.
    world.cluster().node_named(&leader).restart().await;
    for connection in after {
        assert_synced(&world, connection).await;
    }

    for connection in &connections {
        let stored = world
            .store
            .count_records(&world.tenant, connection, None)
            .await
            .unwrap();
        assert_eq!(stored, 41, "every record of {connection} once");
    }
    assert_eq!(
        world.messages_in(fleet_bus::DLQ_STREAM).await,
        0,
        "no dead letter"
    );
    world.wait_for_messages(fleet_bus::STEPS_STREAM, 0).await;

    let shown = |dashboard: &Dashboard| {
        dashboard.with(|view| {
            connections
                .iter()
                .filter(|c| {
                    matches!(
                        view.statuses.get(*c),
                        Some(ConnectionStatus::Synced { records: 41, .. })
                    )
                })
                .count()
        })
    };
    crate::helpers::holds_within(crate::helpers::DEADLINE, || {
        let done = shown(&dashboard) == CONNECTIONS;
        async move { done }
    })
    .await;
    let view: Vec<String> = dashboard.with(|view| {
        connections
            .iter()
            .map(|c| format!("{c}: {:?}", view.statuses.get(c)))
            .collect()
    });
    assert_eq!(
        shown(&dashboard),
        CONNECTIONS,
        "the dashboard shows {view:#?} ({:?})",
        dashboard.with(|view| view.counts)
    );
    let counts = dashboard.with(|view| view.counts);
    assert_eq!(
        counts.resyncs, 0,
        "the dashboard caught up by replay: {counts:?}"
    );
    assert_eq!(
        counts.snapshots, 1,
        "one snapshot, at the start: {counts:?}"
    );
}

/// Waits until `connection` is synced with every record.
async fn assert_synced(world: &World, connection: &fleet_events::ConnectionId) {
    let statuses = world
        .statuses_until(connection, |s| s.status.state() == ConnectionState::Synced)
        .await;
    let ConnectionStatus::Synced { records, .. } = statuses.last().unwrap().status else {
        unreachable!()
    };
    assert_eq!(records, 41, "{connection}");
}
