//! The per-service users of nats/nats-server.conf, on a real server.

use std::path::PathBuf;
use std::time::Duration;

use async_nats::{Event, ServerError};
use fleet_bus::Definitions;
use fleet_testkit::NatsServer;
use tokio::sync::mpsc;

use crate::helpers::{DEADLINE, validate_event};

const USERS: [(&str, &str); 5] = [
    ("FLEET_NATS_GATEWAY_PASSWORD", "gateway-pw"),
    ("FLEET_NATS_WORKER_PASSWORD", "worker-pw"),
    ("FLEET_NATS_BRIDGE_PASSWORD", "bridge-pw"),
    ("FLEET_NATS_SERVICE_PASSWORD", "service-pw"),
    ("FLEET_NATS_ADMIN_PASSWORD", "admin-pw"),
];

fn server_config() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../nats/nats-server.conf")
}

/// Connects as `user`, returning the client and the server errors it gets.
async fn connect(
    server: &NatsServer,
    user: &str,
) -> (async_nats::Client, mpsc::UnboundedReceiver<ServerError>) {
    let password = USERS
        .iter()
        .find(|(var, _)| var.contains(&user.to_uppercase()))
        .unwrap()
        .1;
    let (errors, rx) = mpsc::unbounded_channel();
    let client = async_nats::ConnectOptions::with_user_and_password(user.into(), password.into())
        .custom_inbox_prefix(format!("_INBOX_{user}"))
        .event_callback(move |event| {
            let errors = errors.clone();
            async move {
                if let Event::ServerError(e) = event {
                    let _ = errors.send(e);
                }
            }
        })
        .connect(server.url())
        .await
        .unwrap_or_else(|e| panic!("{user} connects: {e}"));
    (client, rx)
}

async fn provisioned_server() -> NatsServer {
    let server = NatsServer::start_with_config(server_config(), USERS).await;
    let (worker, mut errors) = connect(&server, "worker").await;
    let provisioned = Definitions::builtin()
        .provision(&async_nats::jetstream::new(worker))
        .await;
    if let Err(e) = provisioned {
        let mut seen = Vec::new();
        while let Ok(error) = errors.try_recv() {
            seen.push(error.to_string());
        }
        panic!("the worker user may provision the fleet's streams: {e}; server errors: {seen:?}");
    }
    server
}

#[tokio::test]
async fn the_gateway_may_start_a_setup_but_not_skip_to_the_save_step() {
    let server = provisioned_server().await;
    let (gateway, mut errors) = connect(&server, "gateway").await;
    let js = async_nats::jetstream::new(gateway.clone());
    let event = validate_event();

    js.publish(event.subject(), event.to_json().into())
        .await
        .unwrap()
        .await
        .expect("validate is allowed");
    gateway
        .publish("connector.save.acme.c1", "{}".into())
        .await
        .unwrap();
    gateway.flush().await.unwrap();

    let error = tokio::time::timeout(DEADLINE, errors.recv())
        .await
        .expect("the server objects")
        .unwrap();
    assert!(
        error
            .to_string()
            .contains("Permissions Violation for Publish to \"connector.save.acme.c1\""),
        "{error}"
    );
}

#[tokio::test]
async fn the_bridge_may_read_status_but_publish_nothing() {
    let server = provisioned_server().await;
    let (bridge, mut errors) = connect(&server, "bridge").await;
    let js = async_nats::jetstream::new(bridge.clone());

    js.get_stream(fleet_bus::STATUS_STREAM)
        .await
        .expect("the bridge may look at the status stream");
    js.create_consumer_on_stream(
        async_nats::jetstream::consumer::pull::OrderedConfig {
            filter_subject: "connector.status.acme.>".to_owned(),
            ..Default::default()
        },
        fleet_bus::STATUS_STREAM,
    )
    .await
    .expect("the bridge may read the status stream with an ordered consumer");
    bridge
        .publish("connector.status.acme.c1", "{}".into())
        .await
        .unwrap();
    bridge.flush().await.unwrap();

    let error = tokio::time::timeout(DEADLINE, errors.recv())
        .await
        .expect("the server objects")
        .unwrap();
    assert!(
        error
            .to_string()
            .contains("Permissions Violation for Publish"),
        "{error}"
    );
}

#[tokio::test]
async fn a_wrong_password_is_refused() {
    let server = NatsServer::start_with_config(server_config(), USERS).await;
    let refused =
        async_nats::ConnectOptions::with_user_and_password("worker".into(), "wrong".into())
            .connection_timeout(Duration::from_secs(2))
            .connect(server.url())
            .await;
    assert!(refused.is_err());
}

/// The next server error `errors` receives, as text.
async fn next_error(errors: &mut mpsc::UnboundedReceiver<ServerError>) -> String {
    tokio::time::timeout(DEADLINE, errors.recv())
        .await
        .expect("the server objects")
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn an_outside_service_may_ask_for_syncs_and_nothing_else() {
    let server = provisioned_server().await;
    let (service, mut errors) = connect(&server, "service").await;
    let js = async_nats::jetstream::new(service.clone());
    let request = crate::helpers::sync_event();

    js.publish(request.subject(), request.to_json().into())
        .await
        .unwrap()
        .await
        .expect("a sync request is allowed");
    service
        .publish("connector.status.acme.c1", "{}".into())
        .await
        .unwrap();
    service.flush().await.unwrap();

    let error = next_error(&mut errors).await;
    assert!(
        error.contains("Permissions Violation for Publish to \"connector.status.acme.c1\""),
        "{error}"
    );
}

#[tokio::test]
async fn the_gateway_removes_schedules_but_cannot_purge_queued_work() {
    let server = provisioned_server().await;
    let (gateway, mut errors) = connect(&server, "gateway").await;
    let js = async_nats::jetstream::new(gateway.clone());
    let request = crate::helpers::sync_event();
    let schedules = fleet_bus::Schedules::new(js.clone());
    schedules
        .set(&request, Duration::from_secs(3600))
        .await
        .expect("the gateway may set a schedule");

    schedules
        .remove(&request.tenant, &request.connection)
        .await
        .expect("and remove it");
    let steps = js.get_stream(fleet_bus::STEPS_STREAM).await.unwrap();
    let purge = tokio::time::timeout(Duration::from_secs(3), steps.purge()).await;

    assert!(!matches!(purge, Ok(Ok(_))), "the purge went through");
    let error = next_error(&mut errors).await;
    assert!(
        error.contains("Permissions Violation for Publish to \"$JS.API.STREAM.PURGE"),
        "{error}"
    );
}

#[tokio::test]
async fn the_bridge_cannot_delete_the_status_writers_consumer() {
    let server = provisioned_server().await;
    let (bridge, mut errors) = connect(&server, "bridge").await;
    let js = async_nats::jetstream::new(bridge.clone());
    let stream = js.get_stream(fleet_bus::STATUS_STREAM).await.unwrap();

    let deleted =
        tokio::time::timeout(Duration::from_secs(3), stream.delete_consumer("status")).await;

    assert!(!matches!(deleted, Ok(Ok(_))), "the delete went through");
    let error = next_error(&mut errors).await;
    assert!(
        error.contains("Permissions Violation for Publish to \"$JS.API.CONSUMER.DELETE"),
        "{error}"
    );
}
