//! What an operator's Prometheus and orchestrator see: each process's
//! `/metrics` after a setup chain, and `/readyz` following a dependency
//! going away and coming back.

use std::process::Command;

use fleet_events::ConnectionId;
use fleet_sim::{SiteConfig, UserConfig};
use serde_json::Value;

use crate::helpers::{SITE, USER, World, eventually};

const PASSWORD: &str = "Zq7x Kp2m Vw9r Lt4n Hb6c Fy3d";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_a_chain_and_readiness_follows_the_database() {
    let site = SiteConfig::new(SITE)
        .user(UserConfig::administrator(USER, PASSWORD))
        .posts(30)
        .pages(2);
    let mut world = World::start(site).await;
    let (_worker, worker) = world.spawn_worker_listening("worker").await;
    let (_gateway, gateway) = world.spawn_gateway("gateway", &[]).await;
    let http = reqwest::Client::new();

    let created = http
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
        .unwrap();
    assert_eq!(created.status(), 202);
    let body: Value = created.json().await.unwrap();
    let connection = ConnectionId::parse(body["id"].as_str().unwrap()).unwrap();
    world.synced(&connection).await;

    let api = scrape(&http, &gateway).await;
    assert_eq!(
        sample(
            &api,
            "fleet_http_requests_total",
            &[
                ("route", "/api/connections"),
                ("method", "POST"),
                ("status", "202")
            ]
        ),
        Some(1.0),
        "{api}"
    );
    assert!(
        sample(
            &api,
            "fleet_http_request_duration_seconds_count",
            &[("route", "/api/connections")]
        )
        .is_some_and(|n| n >= 1.0),
        "{api}"
    );

    // The status step may still be settling the last status when the
    // dashboard has seen it: wait for the counters, with a deadline.
    let steps = eventually("every step counted once", || async {
        let text = scrape(&http, &worker).await;
        let done = ["validate", "save", "sync"].iter().all(|step| {
            sample(
                &text,
                "fleet_events_total",
                &[("step", step), ("outcome", "ok")],
            ) == Some(1.0)
        }) && sample(&text, "fleet_consumer_pending", &[("consumer", "sync")]).is_some();
        done.then_some(text)
    })
    .await;
    let provider = [("provider", "wordpress")];
    assert_eq!(
        sample(
            &steps,
            "fleet_syncs_total",
            &[("provider", "wordpress"), ("outcome", "synced")]
        ),
        Some(1.0),
        "{steps}"
    );
    assert_eq!(
        sample(
            &steps,
            "fleet_sync_records_total",
            &[("provider", "wordpress"), ("stream", "posts")]
        ),
        Some(30.0)
    );
    assert_eq!(
        sample(&steps, "fleet_syncs_running", &provider),
        Some(0.0),
        "the sync has ended"
    );
    assert!(
        sample(
            &steps,
            "fleet_step_duration_seconds_count",
            &[("step", "validate"), ("result", "ok")]
        )
        .is_some_and(|n| n >= 1.0),
        "{steps}"
    );
    assert!(
        sample(&steps, "fleet_events_total", &[("step", "status")]).is_some_and(|n| n >= 3.0),
        "the status step counts its events too"
    );
    assert_eq!(sample(&steps, "fleet_dead_letter_messages", &[]), Some(0.0));
    assert!(
        sample(
            &steps,
            "fleet_provider_requests_total",
            &[("status", "200")]
        )
        .is_some_and(|n| n >= 3.0),
        "the validate call and the sync's pages count as provider requests: {steps}"
    );
    assert!(
        sample(&steps, "fleet_provider_request_seconds_count", &[]).is_some_and(|n| n >= 3.0),
        "{steps}"
    );
    assert!(!steps.contains("acme"), "no tenant in any label");
    assert!(!steps.contains(connection.as_str()), "no connection id");

    for base in [&worker, &gateway] {
        let (status, ready) = readyz(&http, base).await;
        assert_eq!(status, 200, "{ready}");
        assert_eq!(ready["checks"]["postgres"], "ok");
        assert_eq!(ready["checks"]["vault"], "ok");
        assert_eq!(ready["checks"]["nats"], "ok");
        assert!(healthcheck(&format!("{base}/readyz")));
    }
    assert_eq!(readyz(&http, &worker).await.1["checks"]["consumers"], "ok");

    world.postgres.stop();
    for base in [&worker, &gateway] {
        let ready = eventually("readyz to fail without the database", || async {
            let (status, ready) = readyz(&http, base).await;
            (status == 503).then_some(ready)
        })
        .await;
        assert_eq!(ready["ready"], false);
        assert_eq!(ready["checks"]["postgres"], "unavailable");
        assert_eq!(ready["checks"]["nats"], "ok", "{ready}");
        assert!(!healthcheck(&format!("{base}/readyz")));
        assert!(healthcheck(&format!("{base}/healthz")), "still alive");
    }

    world.postgres.restart().await;
    for base in [&worker, &gateway] {
        eventually("readyz to pass once the database is back", || async {
            (readyz(&http, base).await.0 == 200).then_some(())
        })
        .await;
    }
}

async fn scrape(http: &reqwest::Client, base: &str) -> String {
    let response = http.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let kind = response.headers()["content-type"].to_str().unwrap();
    assert!(kind.starts_with("text/plain"), "{kind}");
    response.text().await.unwrap()
}

async fn readyz(http: &reqwest::Client, base: &str) -> (u16, Value) {
    let response = http.get(format!("{base}/readyz")).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// Runs `fleet healthcheck url`: whether it exited 0.
fn healthcheck(url: &str) -> bool {
    Command::new(env!("CARGO_BIN_EXE_fleet"))
        .args(["healthcheck", url])
        .env_clear()
        .output()
        .unwrap()
        .status
        .success()
}

/// The value of the series `name` whose labels include every pair of
/// `labels`, summed over the series that match.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut found = None;
    for line in text.lines().filter(|line| !line.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let (metric, rest) = series.split_once('{').unwrap_or((series, ""));
        if metric != name {
            continue;
        }
        if labels
            .iter()
            .all(|(key, value)| rest.contains(&format!("{key}=\"{value}\"")))
        {
            *found.get_or_insert(0.0) += value.parse::<f64>().unwrap();
        }
    }
    found
}

/// The production binary leaves the benchmark out: `fleet bench` and
/// `fleet bench-compare` exist only in a build with the `bench` feature,
/// which scripts/bench enables.
#[test]
fn bench_is_only_in_a_binary_built_with_its_feature() {
    let help = Command::new(env!("CARGO_BIN_EXE_fleet"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for command in ["bench", "bench-compare"] {
        let output = Command::new(env!("CARGO_BIN_EXE_fleet"))
            .args([command, "--help"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.success(),
            cfg!(feature = "bench"),
            "{command}: {stderr}"
        );
        assert_eq!(
            help.contains(&format!("\n  {command} ")),
            cfg!(feature = "bench"),
            "{help}"
        );
    }
}
