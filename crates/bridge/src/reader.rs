//! Reading the status stream: the live reader of a bridge process, and the
//! replays that recover a reconnecting session.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer::DeliverPolicy, consumer::pull::OrderedConfig};
use fleet_events::{Envelope, StatusChanged, subject};
use futures::StreamExt as _;
use tracing::warn;

use crate::Error;
use crate::hub::{Hub, Scope};
use crate::protocol::Position;
use crate::queue::Event;

/// Longest a replay may wait for its next message.
const REPLAY_TIMEOUT: Duration = Duration::from_secs(10);

/// The one reader of a bridge process: an ordered consumer over every
/// status subject, handing each event to the [`Hub`].
#[derive(Debug)]
pub(crate) struct Reader {
    pub(crate) stream: jetstream::stream::Stream,
    pub(crate) hub: Arc<Hub>,
    pub(crate) epoch: String,
    /// The last sequence already in the stream when the bridge started.
    pub(crate) start: u64,
}

impl Reader {
    /// Reads until the consumer ends.
    ///
    /// # Errors
    ///
    /// [`Error::Nats`] when the consumer cannot be created, or ends.
    pub(crate) async fn run(self) -> Result<(), Error> {
        let consumer = self
            .stream
            .create_consumer(ordered(subject::STATUS_ALL.to_owned(), self.start))
            .await
            .map_err(|e| Error::nats("create the bridge's ordered consumer")(e.into()))?;
        let mut messages = consumer
            .messages()
            .await
            .map_err(|e| Error::nats("read the bridge's ordered consumer")(e.into()))?;
        while let Some(message) = messages.next().await {
            match message {
                Ok(message) => self.handle(&message),
                Err(e) => {
                    warn!(error.message = %e, "Status stream reader hiccuped; it resumes in order.");
                }
            }
        }
        Err(Error::nats("keep reading")(
            "the ordered consumer ended".into(),
        ))
    }

    fn handle(&self, message: &jetstream::Message) {
        let Ok(info) = message.info() else {
            warn!(subject = %message.subject, "Skipped a status message without JetStream metadata.");
            return;
        };
        let seq = info.stream_sequence;
        match decode(message, &self.epoch, seq) {
            Some((event, tenant)) => self.hub.publish(&tenant, &Arc::new(event)),
            None => self.hub.skip(seq),
        }
    }
}

/// The tenant's events after `after` up to `until`, in stream order and
/// narrowed to `scope`; `None` when more than `max` remain to replay.
///
/// # Errors
///
/// [`Error::Nats`] when the replay consumer fails, [`Error::ReplayTimeout`]
/// when a message takes too long.
pub(crate) async fn replay(
    stream: &jetstream::stream::Stream,
    scope: &Scope,
    epoch: &str,
    after: u64,
    until: u64,
    max: u64,
) -> Result<Option<Vec<Arc<Event>>>, Error> {
    let filter = subject::status_for_tenant(&scope.tenant);
    let consumer = stream
        .create_consumer(ordered(filter, after))
        .await
        .map_err(|e| Error::nats("create a replay consumer")(e.into()))?;
    let pending = consumer.cached_info().num_pending;
    if pending > max {
        return Ok(None);
    }
    let mut messages = consumer
        .messages()
        .await
        .map_err(|e| Error::nats("read a replay consumer")(e.into()))?;
    let mut events = Vec::new();
    for _ in 0..pending {
        let next = tokio::time::timeout(REPLAY_TIMEOUT, messages.next())
            .await
            .map_err(|_| Error::ReplayTimeout {
                seconds: REPLAY_TIMEOUT.as_secs(),
            })?;
        let Some(message) = next else { break };
        let message = message.map_err(|e| Error::nats("read a replay consumer")(e.into()))?;
        let seq = message
            .info()
            .map_err(Error::nats("read a replayed message's metadata"))?
            .stream_sequence;
        if seq > until {
            break;
        }
        if let Some((event, _)) = decode(&message, epoch, seq)
            && scope.allows(&event.connection)
        {
            events.push(Arc::new(event));
        }
    }
    Ok(Some(events))
}

fn ordered(filter_subject: String, after: u64) -> OrderedConfig {
    OrderedConfig {
        filter_subject,
        deliver_policy: DeliverPolicy::ByStartSequence {
            start_sequence: after + 1,
        },
        ..OrderedConfig::default()
    }
}

/// The event in `message` and its tenant, or `None` (logged) for a message
/// that is not a status event on its own tenant's and connection's subject.
fn decode(
    message: &jetstream::Message,
    epoch: &str,
    seq: u64,
) -> Option<(Event, fleet_events::TenantId)> {
    let envelope = match Envelope::<StatusChanged>::decode(&message.payload) {
        Ok(envelope) => envelope,
        Err(e) => {
            warn!(seq, subject = %message.subject, error.message = %e, "Skipped a status message that does not decode.");
            return None;
        }
    };
    if envelope.subject() != message.subject.as_str() {
        warn!(seq, subject = %message.subject, "Skipped a status event published on another connection's subject.");
        return None;
    }
    let tenant = envelope.tenant.clone();
    let position = Position {
        epoch: epoch.to_owned(),
        seq,
    };
    Some((Event::new(position, envelope), tenant))
}
