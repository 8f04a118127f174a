use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use async_nats::jetstream::{consumer::pull, stream};
use fleet_bus::Definitions;

use crate::helpers::TestBus;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[tokio::test]
async fn provisioning_twice_succeeds_and_creates_every_stream_and_consumer() {
    let bus = TestBus::start(|_| {}).await;
    bus.definitions
        .provision(&bus.js)
        .await
        .expect("second provision is a no-op");

    for config in &bus.definitions.streams {
        let mut stream = bus
            .js
            .get_stream(&config.name)
            .await
            .expect("stream exists");
        assert_eq!(
            stream.info().await.unwrap().config.subjects,
            config.subjects
        );
    }
    for consumer in &bus.definitions.consumers {
        let name = consumer.config.durable_name.as_deref().unwrap();
        let stream = bus.js.get_stream(&consumer.stream).await.unwrap();
        let info = stream.consumer_info(name).await.expect("consumer exists");
        assert_eq!(info.config.filter_subject, consumer.config.filter_subject);
    }
}

#[tokio::test]
async fn a_changed_definition_is_applied_on_the_next_provision() {
    let bus = TestBus::start(|_| {}).await;
    let mut changed = bus.definitions.clone();
    changed
        .set_ack_wait("sync", Duration::from_secs(7))
        .unwrap();
    changed.streams[1].max_age = Duration::from_secs(3600);

    changed.provision(&bus.js).await.expect("update applies");

    let stream = bus.js.get_stream(fleet_bus::STEPS_STREAM).await.unwrap();
    let sync = stream.consumer_info("sync").await.unwrap();
    assert_eq!(sync.config.ack_wait, Duration::from_secs(7));
    let mut status = bus.js.get_stream(&changed.streams[1].name).await.unwrap();
    assert_eq!(
        status.info().await.unwrap().config.max_age,
        Duration::from_secs(3600)
    );
}

/// A server provisioned by the earlier release (attempts limited by
/// `max_deliver` alone) takes this release's consumers in place: unlimited
/// deliveries, with the attempts in the metadata.
#[tokio::test]
async fn consumers_limited_by_max_deliver_are_updated_to_limit_attempts() {
    let bus = TestBus::start(|defs| {
        for consumer in &mut defs.consumers {
            consumer.config.metadata.clear();
            if consumer.config.durable_name.as_deref() == Some("sync") {
                consumer.config.max_deliver = 8;
            }
        }
    })
    .await;
    let stream = bus.js.get_stream(fleet_bus::STEPS_STREAM).await.unwrap();
    assert_eq!(
        stream
            .consumer_info("sync")
            .await
            .unwrap()
            .config
            .max_deliver,
        8
    );

    Definitions::builtin()
        .provision(&bus.js)
        .await
        .expect("the update applies in place");

    let sync = stream.consumer_info("sync").await.unwrap().config;
    assert_eq!(sync.max_deliver, -1);
    assert_eq!(
        sync.metadata
            .get(fleet_bus::ATTEMPTS_METADATA)
            .map(String::as_str),
        Some("8")
    );
}

#[tokio::test]
async fn the_steps_stream_accepts_message_schedules() {
    let bus = TestBus::start(|_| {}).await;
    let mut stream = bus.js.get_stream(fleet_bus::STEPS_STREAM).await.unwrap();
    assert!(stream.info().await.unwrap().config.allow_message_schedules);
}

#[test]
fn every_definition_file_under_nats_is_embedded() {
    let mut on_disk = BTreeSet::new();
    for dir in [
        "nats/streams",
        "nats/consumers/CONNECTOR_STEPS",
        "nats/consumers/CONNECTOR_STATUS",
    ] {
        for entry in std::fs::read_dir(repo_root().join(dir)).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            on_disk.insert(format!("{dir}/{name}"));
        }
    }
    let embedded: BTreeSet<String> = Definitions::embedded_paths().map(str::to_owned).collect();
    assert_eq!(
        on_disk, embedded,
        "nats/ and Definitions::builtin() disagree"
    );
}

/// A misspelt field would be dropped silently by serde: every key in a
/// file must come back when the parsed config is serialised again.
#[test]
fn every_field_in_the_definition_files_is_understood() {
    for path in Definitions::embedded_paths() {
        let text = std::fs::read_to_string(repo_root().join(path)).unwrap();
        let written: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&text).unwrap();
        let understood = if path.starts_with("nats/streams") {
            serde_json::to_value(serde_json::from_str::<stream::Config>(&text).unwrap()).unwrap()
        } else {
            serde_json::to_value(serde_json::from_str::<pull::Config>(&text).unwrap()).unwrap()
        };
        for (key, value) in &written {
            let Some(back) = understood.get(key) else {
                panic!(
                    "{path}: field {key:?} is not understood by async-nats (or is written with its default value: leave it out)"
                );
            };
            if !(value.is_number() && back.is_number()) && value != back {
                panic!("{path}: field {key:?} is {value} in the file but {back} after parsing");
            }
        }
    }
}

#[test]
fn definitions_read_from_the_nats_directory_match_the_embedded_ones() {
    let from_dir = Definitions::from_dir(&repo_root().join("nats")).unwrap();
    let builtin = Definitions::builtin();
    let names = |d: &Definitions| {
        let streams: Vec<_> = d.streams.iter().map(|s| s.name.clone()).collect();
        let mut consumers: Vec<_> = d
            .consumers
            .iter()
            .map(|c| c.config.durable_name.clone().unwrap())
            .collect();
        consumers.sort();
        (streams.len(), consumers)
    };
    assert_eq!(names(&from_dir), names(&builtin));
    let sync = from_dir.consumer("sync").unwrap();
    assert_eq!(
        sync.config.ack_wait,
        builtin.consumer("sync").unwrap().config.ack_wait
    );
}

#[test]
fn a_definitions_directory_that_does_not_exist_is_a_clear_error() {
    let error = Definitions::from_dir(std::path::Path::new("/nonexistent/nats")).unwrap_err();
    assert!(
        error.to_string().contains("/nonexistent/nats/streams"),
        "{error}"
    );
}
