//! What a step implements: a [`Handler`] for one payload type, and the
//! [`Context`] it uses to publish its next events.

use std::future::Future;
use std::time::Duration;

use fleet_events::{ConnectionStatus, Envelope, Payload, StatusChanged};

use crate::publish::{Published, Publisher};

/// One step of the workflow (validate, save, sync, status).
///
/// The runtime decodes the message, calls `handle`, and settles the message
/// from the result: `Ok` acks it, [`HandlerError`] says whether to retry,
/// give up or dead-letter. Handlers never ack themselves, and must be
/// idempotent: after a crash the same event is delivered again.
pub trait Handler: Send + Sync + 'static {
    /// The event this step consumes.
    type Payload: Payload + Send + Sync;

    /// Does the step's work and publishes its next events through `ctx`.
    ///
    /// # Errors
    ///
    /// A [`HandlerError`] that tells the runtime what to do with the message.
    fn handle<'a>(
        &'a self,
        event: &'a Envelope<Self::Payload>,
        ctx: &'a mut Context,
    ) -> impl Future<Output = Result<(), HandlerError>> + Send + 'a;

    /// Called when the runtime gives `event` up without running
    /// [`Handler::handle`]: its attempts ran out and the last one never
    /// finished (its worker was killed), even after the message was started
    /// over. The runtime then dead-letters it and reports it failed; this
    /// lets the step let go of what an unfinished attempt holds (a sync's
    /// slot). Does nothing by default.
    fn abandoned<'a>(
        &'a self,
        event: &'a Envelope<Self::Payload>,
        delivery: Delivery,
        reason: &'a str,
    ) -> impl Future<Output = ()> + Send + 'a {
        let _ = (event, delivery, reason);
        std::future::ready(())
    }
}

/// Why a handler could not finish, and so what happens to the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandlerError {
    /// Worth retrying: a dependency is down, slow or rate-limiting. The
    /// message is redelivered after the step's retry delay for this attempt,
    /// or after `retry_after` when that is longer. On the last attempt it
    /// goes to the dead-letter stream instead.
    #[error("{reason}")]
    Transient {
        /// What failed, in words an operator can act on. No secrets.
        reason: String,
        /// The least time to wait, e.g. from a provider's `Retry-After`.
        retry_after: Option<Duration>,
    },
    /// Retrying cannot help (the connection was deleted, the provider
    /// refuses for good). The message is terminated and the connection's
    /// status becomes failed with this reason. A step that reports no
    /// status (the status step itself) dead-letters it instead, so the
    /// failure is kept somewhere a person can find it.
    #[error("{reason}")]
    Permanent {
        /// What failed. No secrets.
        reason: String,
    },
    /// The work may not start yet; see [`HandlerError::deferred`].
    #[error("{reason}")]
    Deferred {
        /// Why it waits.
        reason: String,
        /// When to try again.
        retry_after: Duration,
    },
    /// The event is valid JSON but cannot be acted on: its fields do not
    /// agree with each other or with the stored state (a save request for
    /// credentials that were never staged, a status for a connection that
    /// does not exist). It goes to the dead-letter stream with this reason.
    /// The connection's status is left as it is: such an event says nothing
    /// trustworthy about the connection, and may come from a misbehaving
    /// publisher.
    #[error("{reason}")]
    Malformed {
        /// What is wrong with the event.
        reason: String,
    },
    /// A later delivery of the same message has taken the work over (this
    /// delivery waited past its ack wait, and the server gave the message
    /// to another worker). The message is left alone: neither acked nor
    /// nak'd, since settling it would settle the other worker's delivery,
    /// and no status is reported, since the other attempt speaks for the
    /// connection now.
    #[error("{reason}")]
    Superseded {
        /// Which later delivery took over.
        reason: String,
    },
}

impl HandlerError {
    /// Work that may not start yet, through no fault of its own (its tenant
    /// runs its maximum of concurrent syncs). The message is redelivered
    /// after `retry_after` with no status report; on the consumer's last
    /// delivery it is published again as a new message instead, so waiting
    /// never exhausts its deliveries.
    pub fn deferred(reason: impl Into<String>, retry_after: Duration) -> Self {
        Self::Deferred {
            reason: reason.into(),
            retry_after,
        }
    }

    /// A transient failure with no minimum delay.
    pub fn transient(reason: impl Into<String>) -> Self {
        Self::Transient {
            reason: reason.into(),
            retry_after: None,
        }
    }

    /// A permanent failure.
    pub fn permanent(reason: impl Into<String>) -> Self {
        Self::Permanent {
            reason: reason.into(),
        }
    }

    /// A delivery that a later delivery of the same message took over.
    pub fn superseded(reason: impl Into<String>) -> Self {
        Self::Superseded {
            reason: reason.into(),
        }
    }

    /// A malformed event.
    pub fn malformed(reason: impl Into<String>) -> Self {
        Self::Malformed {
            reason: reason.into(),
        }
    }
}

/// Where a message is in its delivery history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    /// 1 for the first delivery, 2 for the first redelivery, ...; a
    /// message the runtime started over (its last attempt never finished)
    /// counts on from the message it continues.
    pub attempt: u32,
    /// The attempts the step's handler gets (the consumer's
    /// [`crate::ATTEMPTS_METADATA`], else its `max_deliver`); `None` when
    /// unlimited.
    pub max_attempts: Option<u32>,
    /// Sequence of the message in its stream; for a message the runtime
    /// started over, that of the message it continues, so that ids derived
    /// from it (what the step publishes, a sync's run) stay the same.
    pub stream_sequence: u64,
}

impl Delivery {
    /// True when no redelivery will follow this one.
    pub fn is_last_attempt(&self) -> bool {
        self.max_attempts.is_some_and(|max| self.attempt >= max)
    }
}

/// What a handler gets besides its event: its delivery and a way to
/// publish the next events of the chain.
#[derive(Debug)]
pub struct Context {
    publisher: Publisher,
    delivery: Delivery,
    emitted: u32,
    reported: u32,
}

impl Context {
    pub(crate) fn new(publisher: Publisher, delivery: Delivery) -> Self {
        Self {
            publisher,
            delivery,
            emitted: 0,
            reported: 0,
        }
    }

    /// This message's delivery.
    pub fn delivery(&self) -> Delivery {
        self.delivery
    }

    /// The publisher, for handlers that publish outside the chain.
    pub fn publisher(&self) -> &Publisher {
        &self.publisher
    }

    /// Publishes the next step's event, caused by `cause`, and waits until
    /// the stream has stored it.
    ///
    /// The deduplication id is `<cause id>:<cause stream sequence>:<type>:<n>`
    /// where `n` counts this handler's earlier `emit` calls: a handler that
    /// runs again after a redelivery and emits the same events in the same
    /// order publishes each of them once. The stream sequence tells apart the
    /// runs of a scheduled sync, which the server produces from one stored
    /// envelope and so share its id.
    ///
    /// # Errors
    ///
    /// A transient [`HandlerError`] when the stream does not acknowledge.
    pub async fn emit<P: Payload, Q: Payload>(
        &mut self,
        cause: &Envelope<P>,
        data: Q,
    ) -> Result<Published, HandlerError> {
        let msg_id = format!(
            "{}:{}:{}:{}",
            cause.id,
            self.delivery.stream_sequence,
            Q::TYPE,
            self.emitted
        );
        self.emitted += 1;
        self.publish(cause, data, &msg_id).await
    }

    /// Publishes a status change of the event's connection.
    ///
    /// Status reports are per attempt (`<cause id>:<sequence>:a<attempt>:<n>`):
    /// a redelivered step announces its progress again, and how many
    /// progress reports an attempt makes depends on timing, so they must not
    /// share ids across attempts. Duplicates are harmless: the status
    /// writer keeps the newest by event time.
    ///
    /// # Errors
    ///
    /// As [`Context::emit`].
    pub async fn status<P: Payload>(
        &mut self,
        cause: &Envelope<P>,
        status: ConnectionStatus,
    ) -> Result<Published, HandlerError> {
        let msg_id = format!(
            "{}:{}:a{}:{}",
            cause.id, self.delivery.stream_sequence, self.delivery.attempt, self.reported
        );
        self.reported += 1;
        self.publish(cause, StatusChanged { status }, &msg_id).await
    }

    /// Publishes the status a step announces as it begins (`validating`,
    /// `saving`) once per message, however often the message is delivered
    /// (`<cause id>:<sequence>:begins:<state>`).
    ///
    /// A delivery whose ack was lost comes again after the chain has moved
    /// on; announcing the step again would put the connection back at that
    /// step, after its later statuses, and nothing would move it on, since
    /// the step's next event is published once. Within the stream's
    /// duplicate window the server drops the repeat instead.
    ///
    /// # Errors
    ///
    /// As [`Context::emit`].
    pub async fn status_once<P: Payload>(
        &mut self,
        cause: &Envelope<P>,
        status: ConnectionStatus,
    ) -> Result<Published, HandlerError> {
        let msg_id = format!(
            "{}:{}:begins:{}",
            cause.id,
            self.delivery.stream_sequence,
            status.state()
        );
        self.publish(cause, StatusChanged { status }, &msg_id).await
    }

    async fn publish<P: Payload, Q: Payload>(
        &self,
        cause: &Envelope<P>,
        data: Q,
        msg_id: &str,
    ) -> Result<Published, HandlerError> {
        let mut event = cause.caused(data);
        event.attempt = self.delivery.attempt;
        self.publisher
            .publish(&event, msg_id)
            .await
            .map_err(|e| HandlerError::transient(format!("{e}: {}", source_text(&e))))
    }
}

fn source_text(error: &dyn std::error::Error) -> String {
    error
        .source()
        .map_or_else(String::new, |source| source.to_string())
}
