//! `fleet dlq` as an operator uses it: a setup that ran out of deliveries
//! while the provider was down is listed, shown, replayed once the provider
//! is back, and completes; junk is purged.

use std::process::{Command, Output};

use fleet_events::{ConnectionState, ConnectionStatus};
use fleet_sim::{Fault, SiteConfig, UserConfig};
use serde_json::Value;

use crate::helpers::{SITE, USER, World};

const PASSWORD: &str = "Zq7x Kp2m Vw9r Lt4n Hb6c Fy3d";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_lettered_setup_is_replayed_to_a_completed_chain_and_junk_is_purged() {
    let site = SiteConfig::new(SITE)
        .user(UserConfig::administrator(USER, PASSWORD))
        .posts(12)
        .pages(1);
    let world = World::start(site).await;
    // One delivery per validate request: the first failure dead-letters it.
    world.set_attempts(fleet_bus::STEPS_STREAM, "validate", 1);
    world.sim.inject_site(
        SITE,
        Fault::Unavailable {
            retry_after_secs: None,
        },
        1000,
    );
    let _worker = world.spawn_worker("worker", &[]).await;

    let connection = world.connect(&world.credentials(PASSWORD)).await;
    world
        .statuses_until(&connection, |s| {
            matches!(
                s.status,
                ConnectionStatus::Failed {
                    retryable: true,
                    ..
                }
            )
        })
        .await;

    let listed = dlq(
        &world,
        &["list", "--json", "--connection", connection.as_str()],
    );
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    let [letter] = listed.as_array().unwrap().as_slice() else {
        panic!("one dead letter: {listed}")
    };
    assert_eq!(letter["step"], "validate");
    assert_eq!(letter["tenant"], world.tenant.as_str());
    assert_eq!(letter["delivery_count"], 1);
    let reason = letter["reason"].as_str().unwrap();
    assert!(reason.starts_with("gave up after 1 attempts"), "{reason}");
    let sequence = letter["sequence"].as_u64().unwrap();

    let table = dlq(&world, &["list", "--step", "validate"]);
    let table = String::from_utf8(table.stdout).unwrap();
    assert!(table.contains(connection.as_str()), "{table}");
    assert!(table.contains("1 dead letter(s)."), "{table}");
    let other_step = dlq(&world, &["list", "--json", "--step", "sync"]);
    assert_eq!(
        serde_json::from_slice::<Value>(&other_step.stdout).unwrap(),
        serde_json::json!([])
    );

    let shown = dlq(&world, &["show", "--json", &sequence.to_string()]);
    let shown: Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(shown["original"]["type"], "connector.validate.requested");
    assert_eq!(shown["original"]["connection"], connection.as_str());
    assert_eq!(
        shown["original_subject"],
        format!("connector.validate.{}.{connection}", world.tenant)
    );

    let dry = dlq(
        &world,
        &["replay", "--connection", connection.as_str(), "--dry-run"],
    );
    assert!(String::from_utf8_lossy(&dry.stdout).contains("replay (dry run): 1 of 1"));
    assert_eq!(
        world.messages_in(fleet_bus::DLQ_STREAM).await,
        1,
        "a dry run changes nothing"
    );

    world.sim.clear_faults();
    let replayed = dlq(
        &world,
        &["replay", "--json", "--connection", connection.as_str()],
    );
    let line: Value = serde_json::from_slice(&replayed.stdout).unwrap();
    assert_eq!(line["ok"], true, "{line}");
    let statuses = world
        .statuses_until(&connection, |s| s.status.state() == ConnectionState::Synced)
        .await;
    let ConnectionStatus::Synced { records, .. } = statuses.last().unwrap().status else {
        unreachable!()
    };
    assert_eq!(records, 13);
    assert_eq!(
        world.messages_in(fleet_bus::DLQ_STREAM).await,
        0,
        "replayed letters leave"
    );

    // A message that is not an event: dead-lettered as undecodable, purged.
    world
        .js
        .publish(
            format!("connector.validate.{}.junk", world.tenant),
            "not an event".into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    world.wait_for_messages(fleet_bus::DLQ_STREAM, 1).await;
    let refused = Command::new(env!("CARGO_BIN_EXE_fleet"))
        .args(["dlq", "purge"])
        .env_clear()
        .env("FLEET_NATS__URL", world.nats_url())
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("purge needs a filter"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let purged = dlq(&world, &["purge", "--reason", "undecodable"]);
    assert!(String::from_utf8_lossy(&purged.stdout).contains("purge: 1 of 1"));
    assert_eq!(world.messages_in(fleet_bus::DLQ_STREAM).await, 0);

    // A dead letter written by someone else, claiming to come from another
    // tenant's sync: a replay does not publish it there.
    let forged = fleet_events::DeadLetter {
        step: fleet_events::Step::Validate,
        reason: "forged".to_owned(),
        delivery_count: 1,
        original_subject: format!("connector.sync.other.{connection}"),
        stream_sequence: None,
        original: b"{}".to_vec(),
    };
    let forged = fleet_events::Envelope::new(
        world.tenant.clone(),
        connection.clone(),
        fleet_events::ConnectorId::parse("wordpress").unwrap(),
        fleet_events::CorrelationId::new(),
        forged,
    );
    fleet_bus::Publisher::new(world.js.clone())
        .publish(&forged, &forged.id.to_string())
        .await
        .unwrap();
    let steps_before = world.messages_in(fleet_bus::STEPS_STREAM).await;
    let replay = Command::new(env!("CARGO_BIN_EXE_fleet"))
        .args(["dlq", "replay", "--reason", "forged"])
        .env_clear()
        .env("FLEET_NATS__URL", world.nats_url())
        .output()
        .unwrap();
    assert!(!replay.status.success());
    let said = String::from_utf8_lossy(&replay.stdout);
    assert!(said.contains("is not a validate subject"), "{said}");
    assert_eq!(
        world.messages_in(fleet_bus::STEPS_STREAM).await,
        steps_before
    );
    assert_eq!(world.messages_in(fleet_bus::DLQ_STREAM).await, 1, "kept");
}

/// Runs `fleet dlq args` against the world's NATS; it must succeed.
fn dlq(world: &World, args: &[&str]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_fleet"))
        .arg("dlq")
        .args(args)
        .env_clear()
        .env("FLEET_NATS__URL", world.nats_url())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "fleet dlq {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}
