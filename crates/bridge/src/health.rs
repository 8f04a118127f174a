//! Health changes, forwarded live to the tenant's sessions.
//!
//! A connection that becomes degraded or recovers publishes
//! `connector.health.changed` on the `CONNECTOR_HEALTH` stream. The bridge
//! follows that stream from the time it starts and hands each event to the
//! sessions that may see the connection, as a `health` message. Unlike
//! status events these are live only: they have no position, are not
//! replayed after a reconnect, and do not move the session's position (a
//! reconnecting dashboard reads the health again from the API).

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::ErrorCode;
use async_nats::jetstream::context::GetStreamErrorKind;
use async_nats::jetstream::{self, consumer::DeliverPolicy, consumer::pull::OrderedConfig};
use fleet_bus::HEALTH_STREAM;
use fleet_events::{Envelope, HealthChanged, subject};
use futures::StreamExt as _;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::hub::Hub;
use crate::queue::Event;

/// How long to wait before opening the stream again after a failure (it
/// may not exist yet: the workers create it).
const RETRY: Duration = Duration::from_secs(5);

/// The health stream's last sequence now: the bridge forwards what comes
/// after it. 0 when the stream does not exist yet (the workers create it),
/// so that everything it will hold is forwarded; `None` when the server
/// cannot say (the reader then starts with the events that come next).
pub(crate) async fn position(js: &jetstream::Context) -> Option<u64> {
    match js.get_stream(HEALTH_STREAM).await {
        Ok(mut stream) => stream
            .info()
            .await
            .ok()
            .map(|info| info.state.last_sequence),
        Err(e)
            if matches!(
                e.kind(),
                GetStreamErrorKind::JetStream(ref error)
                    if error.error_code() == ErrorCode::STREAM_NOT_FOUND
            ) =>
        {
            Some(0)
        }
        Err(_) => None,
    }
}

/// Follows the health stream from after `after` (from its next event when
/// `None`) until `stop`, handing its events to `hub`.
pub(crate) async fn follow(
    js: jetstream::Context,
    hub: Arc<Hub>,
    mut after: Option<u64>,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            ended = read(&js, &hub, &mut after) => {
                if let Err(reason) = ended {
                    warn!(reason, "The health stream reader stopped; it starts again shortly.");
                }
            }
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(RETRY) => {}
        }
    }
}

/// Reads from after `after` (its next event when `None`) until the
/// consumer fails; `after` follows the last event read.
async fn read(js: &jetstream::Context, hub: &Hub, after: &mut Option<u64>) -> Result<(), String> {
    let stream = js
        .get_stream(HEALTH_STREAM)
        .await
        .map_err(|e| format!("cannot open {HEALTH_STREAM}: {e}"))?;
    let deliver_policy = match *after {
        Some(seq) => DeliverPolicy::ByStartSequence {
            start_sequence: seq + 1,
        },
        None => DeliverPolicy::New,
    };
    let consumer = stream
        .create_consumer(OrderedConfig {
            filter_subject: subject::HEALTH_ALL.to_owned(),
            deliver_policy,
            ..OrderedConfig::default()
        })
        .await
        .map_err(|e| format!("cannot follow {HEALTH_STREAM}: {e}"))?;
    let mut messages = consumer
        .messages()
        .await
        .map_err(|e| format!("cannot read {HEALTH_STREAM}: {e}"))?;
    info!("Bridge forwarding health changes.");
    while let Some(message) = messages.next().await {
        let message = message.map_err(|e| e.to_string())?;
        if let Ok(info) = message.info() {
            *after = Some(info.stream_sequence);
        }
        let envelope = match Envelope::<HealthChanged>::decode(&message.payload) {
            Ok(envelope) if envelope.subject() == message.subject.as_str() => envelope,
            Ok(_) => {
                warn!(subject = %message.subject, "Skipped a health event published on another connection's subject.");
                continue;
            }
            Err(e) => {
                warn!(subject = %message.subject, error.message = %e, "Skipped a health message that does not decode.");
                continue;
            }
        };
        let tenant = envelope.tenant.clone();
        hub.notify(&tenant, &Arc::new(Event::health(envelope)));
    }
    Err(format!("{HEALTH_STREAM} ended"))
}
