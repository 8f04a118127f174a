//! Connection health: the periodic check finds a revoked grant between
//! syncs, and failures in a row make a connection degraded once, until a
//! success recovers it.

use std::time::Duration;

use async_nats::jetstream::consumer::pull;
use fleet_bus::Publisher;
use fleet_events::{
    ConnectionId, ConnectionState, ConnectionStatus, Envelope, HealthChanged, HealthState,
};
use fleet_sim::Fault;
use fleet_store::CheckResult;
use fleet_workers::HealthSettings;
use fleet_workers::health::Checker;
use futures::StreamExt as _;
use tokio_util::sync::CancellationToken;

use crate::helpers::{DEADLINE, PASSWORD, SITE, TestFleet, USER};

/// Checks every second, degraded after two failures in a row.
fn every_second() -> HealthSettings {
    HealthSettings {
        every: Some(Duration::from_secs(1)),
        degraded_after: 2,
        ..HealthSettings::default()
    }
}

/// Runs a health checker beside the fleet's steps until the token is
/// cancelled.
fn check(fleet: &TestFleet, settings: HealthSettings) -> CancellationToken {
    let stop = CancellationToken::new();
    let checker = Checker::new(
        fleet.deps.clone(),
        Publisher::new(fleet.js.clone()),
        settings,
    );
    tokio::spawn(checker.run(stop.clone()));
    stop
}

async fn sync_runs(fleet: &TestFleet, connection: &ConnectionId) -> usize {
    fleet
        .deps
        .store
        .health_report(&fleet.tenant, connection)
        .await
        .unwrap()
        .expect("the connection's health")
        .recent_runs
        .len()
}

/// The connection's health events, in order, until `n` have arrived.
async fn health_events(
    fleet: &TestFleet,
    connection: &ConnectionId,
    n: usize,
) -> Vec<HealthChanged> {
    let consumer = fleet
        .js
        .create_consumer_on_stream(
            pull::OrderedConfig {
                filter_subject: fleet_events::subject::health(&fleet.tenant, connection),
                ..Default::default()
            },
            fleet_bus::HEALTH_STREAM,
        )
        .await
        .unwrap();
    let mut messages = consumer.messages().await.unwrap();
    let mut seen = Vec::new();
    let arrived = tokio::time::timeout(DEADLINE, async {
        while seen.len() < n {
            let message = messages.next().await.unwrap().unwrap();
            seen.push(
                Envelope::<HealthChanged>::decode(&message.payload)
                    .unwrap()
                    .data,
            );
        }
    })
    .await;
    assert!(
        arrived.is_ok(),
        "no {n} health events in time; saw {seen:?}"
    );
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_revoked_between_syncs_shows_as_reauth_required_from_a_health_check() {
    let fleet = TestFleet::start().await;
    let (connection, _) = fleet.connect(&fleet.credentials(PASSWORD)).await;
    fleet.row_in(&connection, ConnectionState::Synced).await;
    let runs = sync_runs(&fleet, &connection).await;

    // The user revokes the application password at the site.
    let revoked = reqwest::Client::new()
        .post(format!(
            "{}/_sim/sites/{SITE}/users/{USER}/revoke",
            fleet.sim.base_url()
        ))
        .send()
        .await
        .unwrap();
    assert!(revoked.status().is_success());
    let stop = check(&fleet, every_second());

    let statuses = fleet
        .statuses_until(&connection, ConnectionState::ReauthRequired)
        .await;
    let ConnectionStatus::ReauthRequired { reason } = &statuses.last().unwrap().status else {
        unreachable!()
    };
    assert!(!reason.is_empty());
    assert!(!reason.contains(PASSWORD), "no secret in {reason:?}");
    let row = fleet
        .row_in(&connection, ConnectionState::ReauthRequired)
        .await;
    assert_eq!(row.last_error.as_deref(), Some(reason.as_str()));

    // The check publishes the status, then records its result.
    let report = fleet_testkit::eventually(
        crate::helpers::DEADLINE,
        "the check's result to be recorded",
        || async {
            let report = fleet
                .deps
                .store
                .health_report(&fleet.tenant, &connection)
                .await
                .unwrap()
                .unwrap();
            (report.health.last_check_result == Some(CheckResult::ReauthRequired)).then_some(report)
        },
    )
    .await;
    assert_eq!(
        report.recent_runs.len(),
        runs,
        "the check ran no sync: {:?}",
        report.recent_runs
    );
    assert_eq!(report.health.consecutive_failures, 1);
    assert_eq!(report.health.last_failure.as_deref(), Some(reason.as_str()));
    stop.cancel();
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_checks_make_a_connection_degraded_once_and_a_success_recovers_it() {
    let fleet = TestFleet::start().await;
    let (connection, _) = fleet.connect(&fleet.credentials(PASSWORD)).await;
    fleet.row_in(&connection, ConnectionState::Synced).await;

    // The site answers 503 to every request for a while.
    fleet.sim.inject_site(
        SITE,
        Fault::Unavailable {
            retry_after_secs: None,
        },
        1_000,
    );
    let stop = check(&fleet, every_second());
    let degraded = health_events(&fleet, &connection, 1).await;
    assert_eq!(degraded[0].health, HealthState::Degraded);
    assert_eq!(degraded[0].consecutive_failures, 2);
    let reason = degraded[0].last_failure.as_deref().unwrap_or_default();
    assert!(
        reason.contains("503"),
        "the reason says what failed: {reason:?}"
    );

    // A third failure says nothing new; the site recovers after it.
    let report = fleet_testkit::eventually(DEADLINE, "a third failure", || async {
        let report = fleet
            .deps
            .store
            .health_report(&fleet.tenant, &connection)
            .await
            .unwrap()
            .unwrap();
        (report.health.consecutive_failures >= 3).then_some(report)
    })
    .await;
    assert!(report.health.degraded_since.is_some());
    reqwest::Client::new()
        .delete(format!("{}/_sim/faults", fleet.sim.base_url()))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();

    let events = health_events(&fleet, &connection, 2).await;
    assert_eq!(events[1].health, HealthState::Recovered);
    assert_eq!(events[1].degraded_since, degraded[0].degraded_since);
    let report = fleet
        .deps
        .store
        .health_report(&fleet.tenant, &connection)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(report.health.consecutive_failures, 0);
    assert_eq!(report.health.degraded_since, None);
    assert_eq!(report.health.last_check_result, Some(CheckResult::Ok));
    // Health checks never change a connection that answers.
    let row = fleet.row_in(&connection, ConnectionState::Synced).await;
    assert_eq!(row.last_error, None);
    stop.cancel();
    fleet.stop().await;
}
