//! Reading a connection's status events as dashboards and the status step
//! see them: from the status stream, in the order published.

use std::fmt::Display;
use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull};
use fleet_events::{ConnectionId, Envelope, StatusChanged, TenantId, subject};
use futures::StreamExt as _;

/// The status events of `tenant`'s connection `connection`, from the
/// first, until one for which `done` holds (that one included).
///
/// # Panics
///
/// When `deadline` passes first, naming `what` and every status seen, so a
/// failure shows where the chain stopped; or when the stream cannot be
/// read or holds an event that does not decode.
pub async fn status_events_until(
    js: &jetstream::Context,
    tenant: &TenantId,
    connection: &ConnectionId,
    deadline: Duration,
    what: impl Display,
    mut done: impl FnMut(&Envelope<StatusChanged>) -> bool,
) -> Vec<Envelope<StatusChanged>> {
    let consumer = js
        .create_consumer_on_stream(
            pull::OrderedConfig {
                filter_subject: subject::status(tenant, connection),
                ..Default::default()
            },
            fleet_bus::STATUS_STREAM,
        )
        .await
        .expect("an ordered consumer of the status stream");
    let mut messages = consumer.messages().await.expect("the status messages");
    let mut seen = Vec::new();
    let found = tokio::time::timeout(deadline, async {
        while let Some(Ok(message)) = messages.next().await {
            let event =
                Envelope::<StatusChanged>::decode(&message.payload).expect("a status event");
            let reached = done(&event);
            seen.push(event);
            if reached {
                return;
            }
        }
    })
    .await;
    assert!(
        found.is_ok(),
        "{what} did not come within {deadline:?}; saw {:?}",
        seen.iter().map(|event| &event.data).collect::<Vec<_>>()
    );
    seen
}
