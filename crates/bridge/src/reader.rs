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

/// How long the live reader waits for a message before it checks whether
/// it has stalled behind the stream.
const STALL_CHECK: Duration = Duration::from_secs(5);
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
    /// Reads for as long as the bridge runs.
    ///
    /// The ordered consumer recovers from most failures by itself, but a
    /// nats-server restart can leave it waiting for ever, and a stopped
    /// cluster node can make it skip events. So when nothing arrives for
    /// [`STALL_CHECK`] while the stream holds events past the hub's
    /// position, or when a sequence jumps past the next one, the reader
    /// starts a new consumer right after that position: dashboards never
    /// stop at a stale status.
    ///
    /// # Errors
    ///
    /// [`Error::Nats`] when the consumer cannot be created.
    pub(crate) async fn run(self) -> Result<(), Error> {
        let mut after = self.start;
        let mut gap = None;
        loop {
            let consumer = self
                .stream
                .create_consumer(ordered(subject::STATUS_ALL.to_owned(), after))
                .await
                .map_err(|e| Error::nats("create the bridge's ordered consumer")(e.into()))?;
            // Boxed: the consumer's stream is large, and the reader runs
            // for the bridge's whole life.
            let mut messages = Box::pin(
                consumer
                    .messages()
                    .await
                    .map_err(|e| Error::nats("read the bridge's ordered consumer")(e.into()))?,
            );
            loop {
                match tokio::time::timeout(STALL_CHECK, messages.next()).await {
                    Ok(Some(Ok(message))) => {
                        let Ok(info) = message.info() else {
                            warn!(subject = %message.subject, "Skipped a status message without JetStream metadata.");
                            continue;
                        };
                        let (seq, position) = (info.stream_sequence, self.hub.position());
                        if seq <= position {
                            // Read already, before the consumer started again.
                            continue;
                        }
                        // The stream holds only status subjects, so its
                        // sequences follow each other: a jump means the
                        // consumer skipped events (seen when a cluster node
                        // stops). Read from the position again; a jump
                        // found twice is events the stream no longer has.
                        if seq > position + 1 && gap != Some(seq) {
                            warn!(
                                position,
                                seq, "The status stream reader skipped events; reading them again."
                            );
                            gap = Some(seq);
                            break;
                        }
                        gap = None;
                        self.handle(&message, seq);
                    }
                    Ok(Some(Err(e))) => {
                        warn!(error.message = %e, "Status stream reader hiccuped; it resumes in order.");
                    }
                    Ok(None) => {
                        warn!("The status stream reader ended; starting it again.");
                        break;
                    }
                    Err(_) => {
                        let position = self.hub.position();
                        let last = self.stream.get_info().await.map(|i| i.state.last_sequence);
                        if matches!(last, Ok(last) if last > position) {
                            warn!(
                                position,
                                "The status stream reader stalled behind the stream; starting it again."
                            );
                            break;
                        }
                    }
                }
            }
            after = self.hub.position();
        }
    }

    /// Hands the message at stream sequence `seq` to the hub.
    fn handle(&self, message: &jetstream::Message, seq: u64) {
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
