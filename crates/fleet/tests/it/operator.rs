//! The operator commands on a running fleet: `fleet connections` through
//! the gateway, `fleet events tail` following a sync live, and
//! `fleet streams status`.

use std::process::{Command, Output, Stdio};

use fleet_events::{ConnectionId, ConnectionState};
use fleet_sim::{SiteConfig, UserConfig};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt as _, BufReader};

use crate::helpers::{AUTH_KEY, DEADLINE, SITE, USER, World};

const PASSWORD: &str = "Zq7x Kp2m Vw9r Lt4n Hb6c Fy3d";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_lists_syncs_follows_and_disconnects_a_connection() {
    let site = SiteConfig::new(SITE)
        .user(UserConfig::administrator(USER, PASSWORD))
        .posts(8)
        .pages(1);
    let world = World::start(site).await;
    let _worker = world.spawn_worker("worker", &[]).await;
    let (_gateway, gateway) = world.spawn_gateway("gateway", &[]).await;
    let created: Value = reqwest::Client::new()
        .post(format!("{gateway}/api/connections"))
        .bearer_auth(world.token())
        .json(&serde_json::json!({
            "connector": "wordpress",
            "credentials": {
                "site_url": world.sim.site_url(SITE),
                "username": USER,
                "application_password": PASSWORD,
            },
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    let connection = ConnectionId::parse(&id).unwrap();
    world.synced(&connection).await;

    let connections = |args: &[&str]| {
        let mut all = vec!["connections", "--gateway", &gateway, "--tenant", "acme"];
        all.extend_from_slice(args);
        fleet(&world, &all)
    };
    let listed: Value = serde_json::from_slice(&connections(&["list", "--json"]).stdout).unwrap();
    let [only] = listed["connections"].as_array().unwrap().as_slice() else {
        panic!("{listed}")
    };
    assert_eq!(
        (only["id"].as_str(), only["state"].as_str()),
        (Some(id.as_str()), Some("synced"))
    );
    assert_eq!(only["records_total"], 9);
    let table = String::from_utf8(connections(&["list"]).stdout).unwrap();
    assert!(table.contains(&id) && table.contains("synced"), "{table}");
    let shown = String::from_utf8(connections(&["show", &id]).stdout).unwrap();
    assert!(shown.contains("records_total: 9"), "{shown}");

    // Follow the connection: the stored last status first, then live ones.
    let mut tail = tokio::process::Command::new(env!("CARGO_BIN_EXE_fleet"))
        .args([
            "events",
            "tail",
            "--connection",
            &id,
            "--last",
            "1",
            "--limit",
            "2",
        ])
        .env_clear()
        .env("FLEET_NATS__URL", world.nats_url())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(tail.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(DEADLINE, lines.next_line())
        .await
        .expect("the tail prints the stored status")
        .unwrap()
        .unwrap();
    assert!(first.contains(&id) && first.contains("synced"), "{first}");

    let synced = String::from_utf8(connections(&["sync", &id]).stdout).unwrap();
    assert!(
        synced.starts_with(&format!("Sync of {id} queued: run ")),
        "{synced}"
    );
    let live = tokio::time::timeout(DEADLINE, lines.next_line())
        .await
        .expect("the tail prints the sync's first status")
        .unwrap()
        .unwrap();
    assert!(live.contains(&id) && live.contains("syncing"), "{live}");
    let exited = tokio::time::timeout(DEADLINE, tail.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(exited.success(), "the tail stops after --limit events");
    world
        .statuses_until(&connection, |s| s.status.state() == ConnectionState::Synced)
        .await;

    let status: Value = serde_json::from_slice(
        &fleet(
            &world,
            &["streams", "status", "--sample-seconds", "1", "--json"],
        )
        .stdout,
    )
    .unwrap();
    let consumers: Vec<&str> = status["consumers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["consumer"].as_str().unwrap())
        .collect();
    assert_eq!(
        consumers,
        ["validate", "save", "sync", "status", "meter", "webhook"]
    );
    assert!(status["consumers"][2]["pending_per_second"].is_number());
    assert_eq!(status["streams"].as_array().unwrap().len(), 4);

    let gone = String::from_utf8(connections(&["disconnect", &id]).stdout).unwrap();
    assert_eq!(gone.trim(), format!("Disconnected {id}."));
    let listed: Value = serde_json::from_slice(&connections(&["list", "--json"]).stdout).unwrap();
    assert_eq!(listed["connections"], serde_json::json!([]));
    let missing = Command::new(env!("CARGO_BIN_EXE_fleet"))
        .args([
            "connections",
            "--gateway",
            &gateway,
            "--tenant",
            "acme",
            "show",
            &id,
        ])
        .env_clear()
        .env("FLEET_AUTH__KEY", AUTH_KEY)
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("404"),
        "{}",
        String::from_utf8_lossy(&missing.stderr)
    );

    // The token never travels in clear text beyond this machine.
    let remote = Command::new(env!("CARGO_BIN_EXE_fleet"))
        .args([
            "connections",
            "--gateway",
            "http://192.0.2.1:8080",
            "--tenant",
            "acme",
            "list",
        ])
        .env_clear()
        .env("FLEET_AUTH__KEY", AUTH_KEY)
        .output()
        .unwrap();
    assert!(!remote.status.success());
    assert!(
        String::from_utf8_lossy(&remote.stderr).contains("must be an https:// URL"),
        "{}",
        String::from_utf8_lossy(&remote.stderr)
    );
}

/// Runs `fleet args` with the world's NATS and token settings; it must
/// succeed.
fn fleet(world: &World, args: &[&str]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_fleet"))
        .args(args)
        .env_clear()
        .env("FLEET_NATS__URL", world.nats_url())
        .env("FLEET_AUTH__KEY", AUTH_KEY)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "fleet {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}
