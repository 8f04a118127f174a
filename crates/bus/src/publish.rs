//! Publishing events to JetStream with a deduplication id and trace headers.

use async_nats::HeaderMap;
use async_nats::jetstream::{self, context::PublishAckFuture};
use fleet_events::{Envelope, Payload};

use crate::Error;

/// Header carrying the event type, so tools can route or filter without
/// decoding the body.
pub const EVENT_TYPE_HEADER: &str = "Fleet-Event-Type";
/// When a message queued again by the runtime may be handled: an RFC 3339
/// time. Until then a worker puts it back for the time that is left.
pub const NOT_BEFORE_HEADER: &str = "Fleet-Not-Before";
/// How many times the runtime has started a message over because its last
/// attempt never finished (its worker was killed, or lost the server past
/// the ack wait): a whole number, absent for none.
pub const RESTARTS_HEADER: &str = "Fleet-Restarts";
/// The stream sequence of the message a message started over by the
/// runtime stands for: its deliveries use it where a redelivery would use
/// its own (the ids of what it publishes, a sync's run), so a restart is
/// as idempotent as a redelivery.
pub const ORIGIN_SEQUENCE_HEADER: &str = "Fleet-Origin-Sequence";
/// How many attempts the message a restarted message stands for had
/// before it: its deliveries count on from there, so attempt numbers never
/// go back (a sync's slot refuses an earlier attempt than its holder's).
pub const ATTEMPTS_BEFORE_HEADER: &str = "Fleet-Attempts-Before";
/// W3C trace context header.
pub const TRACEPARENT_HEADER: &str = "traceparent";
/// W3C trace state header.
pub const TRACESTATE_HEADER: &str = "tracestate";

/// What the stream answered to a publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    /// Stream sequence of the stored message.
    pub sequence: u64,
    /// True when the stream already held a message with the same
    /// deduplication id inside its duplicate window, so nothing was stored.
    pub duplicate: bool,
}

/// Publishes envelopes and waits for the stream's acknowledgement.
///
/// Every message carries `Nats-Msg-Id`: the stream drops a second message
/// with the same id within its duplicate window, which is what makes a
/// redelivered step unable to publish its next event twice.
#[derive(Debug, Clone)]
pub struct Publisher {
    js: jetstream::Context,
}

impl Publisher {
    /// A publisher over a JetStream context.
    pub fn new(js: jetstream::Context) -> Self {
        Self { js }
    }

    /// The JetStream context this publisher uses.
    pub fn jetstream(&self) -> &jetstream::Context {
        &self.js
    }

    /// Publishes `event` on its subject with deduplication id `msg_id` and
    /// returns once the stream has stored it.
    ///
    /// A nats-server that has just restarted answers before it has loaded
    /// its streams (from a slow disk, for seconds): a publish then finds no
    /// stream, or times out. Such a publish is sent again for up to about
    /// 10 s; the deduplication id makes a copy that did land count once.
    /// So a step does not fail, and announce a retry that may come after
    /// its chain's end, only because the server was still starting.
    ///
    /// # Errors
    ///
    /// [`Error::Publish`] when the server does not acknowledge the message
    /// (no stream, permissions, timeout, stream full).
    pub async fn publish<P: Payload>(
        &self,
        event: &Envelope<P>,
        msg_id: &str,
    ) -> Result<Published, Error> {
        use backon::Retryable as _;
        let attempt = || async { self.send(event, msg_id).await?.await };
        attempt
            .retry(
                backon::ExponentialBuilder::default()
                    .with_min_delay(std::time::Duration::from_millis(100))
                    .with_max_delay(std::time::Duration::from_secs(2))
                    .with_max_times(8)
                    .with_jitter(),
            )
            .when(Error::is_server_starting)
            .notify(|error, wait| {
                tracing::debug!(error.message = %error, ?wait, "The server is not ready for the publish yet; sending it again.");
            })
            .await
    }

    /// Sends `event` and returns a future for the stream's acknowledgement,
    /// so callers can keep several publishes in flight.
    ///
    /// Inside a span with an OpenTelemetry context the event goes out with
    /// that context as its `trace` (and `traceparent` header), so the
    /// consumer's span continues the publisher's trace; elsewhere `trace`
    /// is sent as given.
    ///
    /// # Errors
    ///
    /// [`Error::Publish`] when the message cannot be sent.
    pub async fn send<P: Payload>(
        &self,
        event: &Envelope<P>,
        msg_id: &str,
    ) -> Result<PendingPublish, Error> {
        let traced;
        let event = match crate::trace::current() {
            Some(trace) if event.trace.as_ref() != Some(&trace) => {
                let mut copy = event.clone();
                copy.trace = Some(trace);
                traced = copy;
                &traced
            }
            _ => event,
        };
        let subject = event.subject();
        let message = jetstream::message::PublishMessage::build()
            .payload(event.to_json().into())
            .headers(headers(event))
            .message_id(msg_id);
        let ack = self
            .js
            .send_publish(subject.clone(), message)
            .await
            .map_err(|source| Error::Publish {
                subject: subject.clone(),
                source,
            })?;
        Ok(PendingPublish { subject, ack })
    }

    /// Publishes `payload` with `headers` as they are on `subject`, for a
    /// runtime that sends a received message again, and returns once the
    /// stream has stored it.
    pub(crate) async fn publish_raw(
        &self,
        subject: &str,
        payload: bytes::Bytes,
        headers: HeaderMap,
        msg_id: &str,
    ) -> Result<Published, Error> {
        let message = jetstream::message::PublishMessage::build()
            .payload(payload)
            .headers(headers)
            .message_id(msg_id);
        let failed = |source| Error::Publish {
            subject: subject.to_owned(),
            source,
        };
        let ack = self
            .js
            .send_publish(subject.to_owned(), message)
            .await
            .map_err(failed)?;
        PendingPublish {
            subject: subject.to_owned(),
            ack,
        }
        .await
    }
}

/// A sent message whose acknowledgement has not arrived yet.
#[derive(Debug)]
#[must_use = "a publish is only durable once its acknowledgement is awaited"]
pub struct PendingPublish {
    subject: String,
    ack: PublishAckFuture,
}

impl std::future::IntoFuture for PendingPublish {
    type Output = Result<Published, Error>;
    type IntoFuture = futures::future::BoxFuture<'static, Self::Output>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let ack = self.ack.await.map_err(|source| Error::Publish {
                subject: self.subject,
                source,
            })?;
            Ok(Published {
                sequence: ack.sequence,
                duplicate: ack.duplicate,
            })
        })
    }
}

fn headers<P: Payload>(event: &Envelope<P>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(EVENT_TYPE_HEADER, P::TYPE);
    if let Some(trace) = &event.trace {
        headers.insert(TRACEPARENT_HEADER, trace.traceparent());
        if let Some(state) = trace.tracestate() {
            headers.insert(TRACESTATE_HEADER, state);
        }
    }
    headers
}
