//! The worker runtime: runs a [`Handler`] over a durable pull consumer.
//!
//! One loop pulls messages while a permit of the concurrency semaphore is
//! free and hands each to a task. The task decodes the event, runs the
//! handler while sending in-progress acks every ack-wait/3, and settles the
//! message in one place ([`Worker::settle`]): ack, nak with the retry
//! table's delay, term, or dead-letter then term.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_nats::jetstream::{self, AckKind, consumer::PullConsumer, message::Acker};
use chrono::Utc;
use fleet_events::{ConnectionStatus, DeadLetter, Envelope, Family, Payload, Step};
use futures::StreamExt as _;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument as _, debug, error, info, info_span, warn};

use crate::handler::{Context, Delivery, Handler, HandlerError};
use crate::publish::{
    ATTEMPTS_BEFORE_HEADER, NOT_BEFORE_HEADER, ORIGIN_SEQUENCE_HEADER, Publisher, RESTARTS_HEADER,
};
use crate::retry::RetryPolicy;
use crate::{Error, STATUS_STREAM, STEPS_STREAM};

/// How one step's worker runs.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// The step this worker runs; names its dead letters' subjects.
    pub step: Step,
    /// Stream the consumer reads.
    pub stream: String,
    /// Durable consumer name (from `nats/consumers`).
    pub consumer: String,
    /// Messages handled at once by this process. The consumer's
    /// `max_ack_pending` must cover the sum over all processes.
    pub concurrency: usize,
    /// Messages pulled ahead of the handlers. Pulled messages are
    /// delivered, so their ack-wait clock runs while they wait unheartbeated:
    /// near `concurrency` suits short steps; 0 pulls only as many messages
    /// as there are free handlers, so that none ever waits in the process,
    /// which long steps (sync) need: a message that waited past its ack wait
    /// would be redelivered to another worker and handled twice at once.
    pub prefetch: usize,
    /// Delay before each redelivery after a transient failure.
    pub retry: RetryPolicy,
    /// On shutdown, how long in-flight handlers may run before their
    /// messages are nak'd for another worker.
    pub grace: Duration,
    /// How many times a message whose last attempt never finished (its
    /// worker was killed, or lost the server past the ack wait) is started
    /// over as a new message with as many attempts again, before it is
    /// dead-lettered. A message that kills every worker it reaches so runs
    /// the handler `(restarts + 1) × attempts` times.
    pub restarts: u32,
    /// Publish `retrying` and `failed` status events when a step fails, so
    /// dashboards see it. Off for the steps that consume status changes
    /// (status, meter, webhook): their failures are not the connection's.
    pub report_status: bool,
}

impl WorkerConfig {
    /// Settings for `step` on its consumer from `nats/consumers` (named
    /// after the step), with concurrency and prefetch 32, the standard retry
    /// table, and status reports for every step but those that consume
    /// status changes (status, meter, webhook).
    pub fn for_step(step: Step) -> Self {
        let stream = match step {
            Step::Status | Step::Meter | Step::Webhook => STATUS_STREAM,
            Step::Validate | Step::Save | Step::Sync => STEPS_STREAM,
        };
        Self {
            step,
            stream: stream.to_owned(),
            consumer: step.as_str().to_owned(),
            concurrency: 32,
            prefetch: 32,
            retry: RetryPolicy::standard(),
            grace: Duration::from_secs(20),
            restarts: 2,
            report_status: step.family() != Family::Status,
        }
    }
}

/// Counters of a running worker; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct WorkerHandle {
    stats: Arc<Stats>,
}

#[derive(Debug, Default)]
struct Stats {
    acked: AtomicU64,
    retried: AtomicU64,
    terminated: AtomicU64,
    dead_lettered: AtomicU64,
    superseded: AtomicU64,
}

/// A snapshot of a worker's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WorkerStats {
    /// Messages handled successfully.
    pub acked: u64,
    /// Messages nak'd for a later retry.
    pub retried: u64,
    /// Messages given up after a permanent failure.
    pub terminated: u64,
    /// Messages moved to the dead-letter stream.
    pub dead_lettered: u64,
    /// Deliveries left unsettled because a later delivery of the same
    /// message took the work over.
    pub superseded: u64,
}

impl WorkerHandle {
    /// The counters so far.
    pub fn stats(&self) -> WorkerStats {
        WorkerStats {
            acked: self.stats.acked.load(Ordering::Relaxed),
            retried: self.stats.retried.load(Ordering::Relaxed),
            terminated: self.stats.terminated.load(Ordering::Relaxed),
            dead_lettered: self.stats.dead_lettered.load(Ordering::Relaxed),
            superseded: self.stats.superseded.load(Ordering::Relaxed),
        }
    }
}

/// Runs a [`Handler`] over a durable pull consumer until shut down.
#[derive(Debug)]
pub struct Worker<H> {
    config: WorkerConfig,
    js: jetstream::Context,
    handler: Arc<H>,
    handle: WorkerHandle,
}

/// What happened to one message, decided before it is settled.
#[derive(Debug)]
enum Outcome {
    Done,
    Retry(Duration),
    /// Wait, not counted as a failure: the work was deferred.
    Defer(Duration),
    GiveUp,
    /// Dead-letter the message, for the reason's class (a metric label).
    DeadLetter(Box<Envelope<DeadLetter>>, &'static str),
    /// Publish the message again as a new one that continues it (see
    /// [`Shared::continue_as`]), then remove this one.
    Republish(Continuation),
    Interrupted,
    /// Leave the message unsettled: a later delivery of it is another
    /// worker's now.
    Abandon,
}

/// Why a message is published again as a copy that continues it.
#[derive(Debug, Clone, Copy)]
enum Continuation {
    /// Deferred on its last attempt: handled no sooner than the wait from
    /// now.
    Waiting(Duration),
    /// Its last attempt never finished: started over, with the restarts so
    /// far.
    Restarted(u32),
}

/// Whether a delivery stayed a handler's own: when the server last
/// confirmed it, and whether a whole lease ever went by without that.
#[derive(Debug)]
struct Lease {
    confirmed: tokio::time::Instant,
    lapsed: bool,
}

impl Lease {
    /// The server has confirmed the delivery as of `at`.
    fn confirm(&mut self, at: tokio::time::Instant, lease: Duration) {
        self.lapsed |= at.saturating_duration_since(self.confirmed) >= lease;
        self.confirmed = self.confirmed.max(at);
    }
}

/// What the runtime knows of the message it is settling.
#[derive(Debug)]
struct Received {
    subject: String,
    payload: bytes::Bytes,
    /// The message's headers but its deduplication id and the server's
    /// own, kept for a requeue.
    headers: async_nats::HeaderMap,
    /// The delivery as the handler sees it: a restarted message's counts
    /// on from the message it stands for.
    delivery: Delivery,
    /// This message's own stream sequence, which the ids of what the
    /// runtime publishes to settle it derive from.
    sequence: u64,
    /// This message's own delivery count, which picks the retry delay: a
    /// restarted message's retries start from the table's first entry.
    local: u32,
}

impl<H: Handler> Worker<H> {
    /// Prepares a worker; nothing is pulled until [`Worker::run`].
    pub fn build(config: WorkerConfig, js: jetstream::Context, handler: H) -> (Self, WorkerHandle) {
        let handle = WorkerHandle::default();
        let worker = Self {
            config,
            js,
            handler: Arc::new(handler),
            handle: handle.clone(),
        };
        (worker, handle)
    }

    /// Pulls and handles messages until `shutdown` is cancelled, then stops
    /// pulling, lets in-flight handlers finish within the grace period,
    /// naks the rest and returns.
    ///
    /// # Errors
    ///
    /// [`Error::Consumer`] when the consumer does not exist or cannot be read.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), Error> {
        let consumer = self.bind().await?;
        let info = consumer.cached_info();
        let heartbeat_every = info.config.ack_wait / 3;
        // A little less than the ack wait: the server's clock for a
        // delivery starts before the handler's does.
        let lease = info.config.ack_wait.mul_f64(0.9);
        let max_attempts =
            crate::definitions::attempts_of(&info.config.metadata, info.config.max_deliver);
        let shared = Arc::new(Shared {
            publisher: Publisher::new(self.js.clone()),
            handler: self.handler,
            config: self.config,
            heartbeat_every,
            lease,
            max_attempts,
            stats: self.handle.stats.clone(),
        });
        let permits = Arc::new(Semaphore::new(shared.config.concurrency.max(1)));
        let tracker = TaskTracker::new();
        let abort = CancellationToken::new();
        info!(
            stream = %shared.config.stream,
            consumer = %shared.config.consumer,
            concurrency = shared.config.concurrency,
            prefetch = shared.config.prefetch,
            "Worker started."
        );
        let pulling = Pulling {
            shared: shared.clone(),
            permits,
            tracker: tracker.clone(),
            abort: abort.clone(),
            shutdown,
        };
        if shared.config.prefetch == 0 {
            pulling.on_demand(&consumer).await;
        } else {
            pulling.ahead(&consumer).await?;
        }

        tracker.close();
        if tokio::time::timeout(shared.config.grace, tracker.wait())
            .await
            .is_err()
        {
            warn!(
                consumer = %shared.config.consumer,
                in_flight = tracker.len(),
                "Grace period over; handing unfinished messages back."
            );
            abort.cancel();
            tracker.wait().await;
        }
        info!(consumer = %shared.config.consumer, "Worker stopped.");
        Ok(())
    }

    async fn bind(&self) -> Result<PullConsumer, Error> {
        self.js
            .get_consumer_from_stream(&self.config.consumer, &self.config.stream)
            .await
            .map_err(|e| consumer_error(&self.config, e))
    }
}

fn consumer_error(
    config: &WorkerConfig,
    e: impl std::error::Error + Send + Sync + 'static,
) -> Error {
    Error::Consumer {
        stream: config.stream.clone(),
        consumer: config.consumer.clone(),
        source: Box::new(e),
    }
}

/// The pull loop of a running worker: hands each message to a task that
/// holds one of the concurrency permits.
struct Pulling<H> {
    shared: Arc<Shared<H>>,
    permits: Arc<Semaphore>,
    tracker: TaskTracker,
    abort: CancellationToken,
    shutdown: CancellationToken,
}

/// How long one pull request of [`Pulling::on_demand`] waits for messages
/// before it is made again. Short, so that a pull request lost with a
/// nats-server restart is replaced soon.
const ON_DEMAND_EXPIRES: Duration = Duration::from_secs(5);

impl<H: Handler> Pulling<H> {
    /// Keeps up to `prefetch` messages pulled ahead of the handlers, for
    /// short steps, where a message waits for a free handler only briefly.
    async fn ahead(self, consumer: &PullConsumer) -> Result<(), Error> {
        let shared = &self.shared;
        let mut messages = consumer
            .stream()
            .max_messages_per_batch(shared.config.prefetch.max(1))
            .messages()
            .await
            .map_err(|e| consumer_error(&shared.config, e))?;
        loop {
            let permit = tokio::select! {
                biased;
                () = self.shutdown.cancelled() => break,
                permit = self.permits.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            };
            let next = tokio::select! {
                biased;
                () = self.shutdown.cancelled() => break,
                next = messages.next() => next,
            };
            match next {
                Some(Ok(message)) => {
                    self.tracker
                        .spawn(shared.clone().process(message, self.abort.clone(), permit));
                }
                Some(Err(e)) => {
                    warn!(error.message = %e, consumer = %shared.config.consumer, "Pulling messages failed; retrying.");
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                None => break,
            }
        }
        Ok(())
    }

    /// Asks the server for exactly as many messages as there are free
    /// handlers, so that no message waits in this process for a handler.
    /// A delivered message's ack wait runs from its delivery, and a message
    /// that waited past it unheartbeated would be handed to another worker
    /// while this one still meant to handle it: two workers on one sync.
    async fn on_demand(self, consumer: &PullConsumer) {
        let shared = &self.shared;
        loop {
            let first = tokio::select! {
                biased;
                () = self.shutdown.cancelled() => break,
                permit = self.permits.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            };
            let mut held = vec![first];
            while let Ok(permit) = self.permits.clone().try_acquire_owned() {
                held.push(permit);
            }
            let batch = consumer
                .batch()
                .max_messages(held.len())
                .expires(ON_DEMAND_EXPIRES)
                .messages()
                .await;
            let mut batch = match batch {
                Ok(batch) => batch,
                Err(e) => {
                    warn!(error.message = %e, consumer = %shared.config.consumer, "Pulling messages failed; retrying.");
                    drop(held);
                    tokio::select! {
                        () = self.shutdown.cancelled() => break,
                        () = tokio::time::sleep(Duration::from_millis(250)) => continue,
                    }
                }
            };
            loop {
                let next = tokio::select! {
                    biased;
                    () = self.shutdown.cancelled() => return,
                    next = batch.next() => next,
                };
                match next {
                    Some(Ok(message)) => {
                        let Some(permit) = held.pop() else {
                            // The server never sends more than asked for.
                            warn!(consumer = %shared.config.consumer, "The server sent more messages than asked for; leaving the rest for redelivery.");
                            break;
                        };
                        self.tracker.spawn(shared.clone().process(
                            message,
                            self.abort.clone(),
                            permit,
                        ));
                    }
                    Some(Err(e)) => {
                        warn!(error.message = %e, consumer = %shared.config.consumer, "Pulling messages failed; retrying.");
                        break;
                    }
                    None => break,
                }
            }
        }
    }
}

/// State shared by the tasks of one worker.
#[derive(Debug)]
struct Shared<H> {
    publisher: Publisher,
    handler: Arc<H>,
    config: WorkerConfig,
    heartbeat_every: Duration,
    /// How long a delivery is surely the handler's own without a confirmed
    /// heartbeat: after that the server may have given it to another worker.
    lease: Duration,
    max_attempts: Option<u32>,
    stats: Arc<Stats>,
}

impl<H: Handler> Shared<H> {
    async fn process(
        self: Arc<Self>,
        message: jetstream::Message,
        abort: CancellationToken,
        _permit: OwnedSemaphorePermit,
    ) {
        let headers = message.headers.as_ref();
        let (delivery, sequence, local) = match message.info() {
            Ok(info) => {
                let local = u32::try_from(info.delivered).unwrap_or(u32::MAX);
                let before: u32 = number(headers, ATTEMPTS_BEFORE_HEADER).unwrap_or(0);
                let delivery = Delivery {
                    attempt: before.saturating_add(local),
                    max_attempts: self.max_attempts.map(|max| before.saturating_add(max)),
                    // A copy continues an earlier message of its stream;
                    // a mark naming any other (a publisher's, not the
                    // runtime's) is ignored.
                    stream_sequence: number(headers, ORIGIN_SEQUENCE_HEADER)
                        .filter(|&origin| origin < info.stream_sequence)
                        .unwrap_or(info.stream_sequence),
                };
                (delivery, info.stream_sequence, local)
            }
            Err(e) => {
                warn!(error.message = %e, subject = %message.subject, "Message without JetStream metadata; ignoring it.");
                return;
            }
        };
        let headers = kept_headers(headers);
        let (message, acker) = message.split();
        let received = Received {
            subject: message.subject.to_string(),
            payload: message.payload,
            headers,
            delivery,
            sequence,
            local,
        };
        // A message queued again to wait: put back for the time that is left.
        if let Some(left) = wait_left(&received.headers) {
            self.settle(Outcome::Defer(left), &received, &acker).await;
            return;
        }
        let delivery = received.delivery;
        let outcome = if delivery
            .max_attempts
            .is_some_and(|max| delivery.attempt > max)
        {
            self.unfinished(&received).await
        } else {
            self.outcome(&received, &acker, &abort).await
        };
        self.settle(outcome, &received, &acker).await;
    }

    /// What to do with a delivery past the step's attempts: the last
    /// attempt never settled (its worker was killed, or lost the server
    /// past the ack wait). Starts the message over while it has restarts
    /// left, else gives it up without running the handler.
    ///
    /// Starting over reports no status: the unfinished attempt may have
    /// done its work (and lost only its ack), and a `retrying` would then
    /// come after the chain's later statuses. The copy runs as a
    /// redelivery would, under the same ids.
    async fn unfinished(&self, received: &Received) -> Outcome {
        let event = match self.event(received) {
            Ok(event) => event,
            Err(letter) => return letter,
        };
        let last = received.delivery.attempt - 1;
        let restarts = restarts_of(&received.headers);
        if restarts < self.config.restarts {
            warn!(
                step = self.config.step.as_str(),
                tenant = %event.tenant,
                connection = %event.connection,
                event_id = %event.id,
                last_attempt = last,
                restarts,
                "The last attempt never finished (its worker stopped); starting the message over."
            );
            return Outcome::Republish(Continuation::Restarted(restarts + 1));
        }
        let reason = if restarts == 0 {
            format!(
                "gave up: its last attempt ({last}) never finished (its worker stopped or lost \
                 the server)"
            )
        } else {
            format!(
                "gave up: its last attempt never finished (its worker stopped or lost the \
                 server) in each of its {} rounds of attempts; the last was attempt {last}",
                restarts + 1
            )
        };
        warn!(
            step = self.config.step.as_str(),
            tenant = %event.tenant,
            connection = %event.connection,
            event_id = %event.id,
            reason,
            "Giving a message up; dead-lettering it."
        );
        self.handler
            .abandoned(&event, received.delivery, &reason)
            .await;
        if self.config.report_status {
            let status = ConnectionStatus::Failed {
                reason: reason.clone(),
                retryable: true,
            };
            self.report(&event, status, received.delivery).await;
        }
        Outcome::DeadLetter(
            Box::new(event.caused(received.dead_letter(self.config.step, reason))),
            "unfinished",
        )
    }

    /// The message's event, or its dead letter when it does not decode or
    /// its subject names another tenant or connection than its body.
    fn event(&self, received: &Received) -> Result<Envelope<H::Payload>, Outcome> {
        let event = Envelope::<H::Payload>::decode(&received.payload).map_err(|e| {
            let reason = format!("undecodable {}: {e}", H::Payload::TYPE);
            warn!(subject = %received.subject, reason, "Dead-lettering a message that does not decode.");
            let letter = received.dead_letter(self.config.step, reason);
            Outcome::DeadLetter(Box::new(letter.into_envelope()), "undecodable")
        })?;
        if let Some(reason) = subject_mismatch(&received.subject, self.config.step, &event) {
            warn!(subject = %received.subject, reason, "Dead-lettering an event whose subject disagrees with its body.");
            let letter = received.dead_letter(self.config.step, reason);
            return Err(Outcome::DeadLetter(
                Box::new(letter.into_envelope()),
                "subject_mismatch",
            ));
        }
        Ok(event)
    }

    async fn outcome(
        &self,
        received: &Received,
        acker: &Acker,
        abort: &CancellationToken,
    ) -> Outcome {
        let event = match self.event(received) {
            Ok(event) => event,
            Err(letter) => return letter,
        };
        let span = info_span!(
            "step",
            step = self.config.step.as_str(),
            r#type = H::Payload::TYPE,
            tenant = %event.tenant,
            connection = %event.connection,
            event_id = %event.id,
            attempt = received.delivery.attempt,
        );
        if let Some(trace) = &event.trace {
            crate::trace::set_parent(&span, trace);
        }
        async {
            let mut ctx = Context::new(self.publisher.clone(), received.delivery);
            let started = std::time::Instant::now();
            let result = tokio::select! {
                biased;
                () = abort.cancelled() => return Outcome::Interrupted,
                result = self.with_heartbeat(self.handler.handle(&event, &mut ctx), acker) => result,
            };
            let (result, held) = result;
            let result_label = match &result {
                Ok(()) => "ok",
                Err(HandlerError::Transient { .. }) => "transient",
                Err(HandlerError::Permanent { .. }) => "permanent",
                Err(HandlerError::Deferred { .. }) => "deferred",
                Err(HandlerError::Malformed { .. }) => "malformed",
                Err(HandlerError::Superseded { .. }) => "superseded",
            };
            metrics::histogram!(
                "fleet_step_duration_seconds",
                "step" => self.config.step.as_str(),
                "result" => result_label,
            )
            .record(started.elapsed().as_secs_f64());
            debug!(
                result = result_label,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "Step handled the event."
            );
            self.decide(&event, result, received, held).await
        }
        .instrument(span)
        .await
    }

    /// Runs `work`, sending an in-progress ack every ack-wait/3 so a long
    /// handler is not redelivered to another worker while it runs.
    ///
    /// Also says whether the delivery stayed the handler's own throughout:
    /// each in-progress ack waits for the server's confirmation, and a gap
    /// of a lease (most of the ack wait) without one (NATS was unreachable)
    /// means the server may have redelivered the message to another worker,
    /// whose attempt then speaks for the connection, not this one.
    async fn with_heartbeat<F: Future>(&self, work: F, acker: &Acker) -> (F::Output, bool) {
        let lease = std::sync::Mutex::new(Lease {
            confirmed: tokio::time::Instant::now(),
            lapsed: false,
        });
        let beat = async {
            let start = tokio::time::Instant::now() + self.heartbeat_every;
            let mut ticks = tokio::time::interval_at(start, self.heartbeat_every);
            loop {
                ticks.tick().await;
                let sent = tokio::time::Instant::now();
                let confirmed = tokio::time::timeout(
                    self.heartbeat_every,
                    acker.double_ack_with(AckKind::Progress),
                )
                .await;
                match confirmed {
                    Ok(Ok(())) => lease
                        .lock()
                        .expect("never poisoned")
                        .confirm(sent, self.lease),
                    Ok(Err(e)) => warn!(error.message = %e, "Sending an in-progress ack failed."),
                    Err(_) => warn!("The server did not confirm an in-progress ack in time."),
                }
            }
        };
        tokio::pin!(work, beat);
        let output = tokio::select! {
            output = &mut work => output,
            () = &mut beat => unreachable!("the heartbeat never ends"),
        };
        let mut lease = lease.lock().expect("never poisoned");
        lease.confirm(tokio::time::Instant::now(), self.lease);
        (output, !lease.lapsed)
    }

    /// Turns the handler's result into an outcome, reporting the connection's
    /// status for failures when configured to.
    async fn decide(
        &self,
        event: &Envelope<H::Payload>,
        result: Result<(), HandlerError>,
        received: &Received,
        held: bool,
    ) -> Outcome {
        let delivery = received.delivery;
        let dead_letter = |reason: String, class: &'static str| {
            Outcome::DeadLetter(
                Box::new(event.caused(received.dead_letter(self.config.step, reason))),
                class,
            )
        };
        let (outcome, status) = match result {
            Ok(()) => return Outcome::Done,
            Err(HandlerError::Transient { reason, .. }) if delivery.is_last_attempt() => {
                warn!(
                    reason,
                    "Step failed on its last attempt; dead-lettering it."
                );
                let status = ConnectionStatus::Failed {
                    reason: reason.clone(),
                    retryable: true,
                };
                let reason = format!("gave up after {} attempts: {reason}", delivery.attempt);
                (dead_letter(reason, "exhausted"), status)
            }
            Err(HandlerError::Transient {
                reason,
                retry_after,
            }) => {
                let delay = self.config.retry.delay(received.local, retry_after);
                warn!(
                    reason,
                    delay_ms = delay.as_millis() as u64,
                    "Step failed; retrying later."
                );
                let next_at = fleet_events::after(Utc::now(), delay);
                let status = ConnectionStatus::Retrying {
                    attempt: delivery.attempt,
                    next_at,
                    reason,
                };
                (Outcome::Retry(delay), status)
            }
            Err(HandlerError::Permanent { reason }) if !self.config.report_status => {
                warn!(reason, "Step failed for good; dead-lettering it.");
                return dead_letter(reason, "permanent");
            }
            Err(HandlerError::Permanent { reason }) => {
                warn!(reason, "Step failed for good.");
                (
                    Outcome::GiveUp,
                    ConnectionStatus::Failed {
                        reason,
                        retryable: false,
                    },
                )
            }
            Err(HandlerError::Deferred {
                reason,
                retry_after,
            }) if delivery.is_last_attempt() => {
                debug!(
                    reason,
                    delay_ms = retry_after.as_millis() as u64,
                    "Step deferred on its last delivery; queuing it again."
                );
                return Outcome::Republish(Continuation::Waiting(retry_after));
            }
            Err(HandlerError::Deferred {
                reason,
                retry_after,
            }) => {
                debug!(
                    reason,
                    delay_ms = retry_after.as_millis() as u64,
                    "Step deferred."
                );
                return Outcome::Defer(retry_after);
            }
            Err(HandlerError::Malformed { reason }) => {
                warn!(reason, "Event cannot be acted on; dead-lettering it.");
                return dead_letter(reason, "malformed");
            }
            Err(HandlerError::Superseded { reason }) => {
                info!(
                    reason,
                    "A later delivery of this message took the work over; leaving it to that one."
                );
                return Outcome::Abandon;
            }
        };
        if self.config.report_status && held {
            self.report(event, status, delivery).await;
        } else if self.config.report_status {
            // Another worker may have run the redelivered message to its end
            // meanwhile: a status from this attempt would come after it and
            // say something no longer true.
            warn!(
                state = %status.state(),
                "The delivery outlived its ack wait without a confirmed heartbeat; reporting no status for it."
            );
        }
        outcome
    }

    async fn report(
        &self,
        event: &Envelope<H::Payload>,
        status: ConnectionStatus,
        delivery: Delivery,
    ) {
        let data = fleet_events::StatusChanged { status };
        let mut report = event.caused(data);
        report.attempt = delivery.attempt;
        let msg_id = format!(
            "{}:{}:failure:{}",
            event.id, delivery.stream_sequence, delivery.attempt
        );
        if let Err(e) = self.publisher.publish(&report, &msg_id).await {
            warn!(error.message = %e, "Could not publish the failure status.");
        }
    }

    /// The one place where a message is acked, nak'd or terminated.
    async fn settle(&self, outcome: Outcome, received: &Received, acker: &Acker) {
        let step = self.config.step.as_str();
        let (kind, counter, label) = match outcome {
            Outcome::Abandon => {
                self.stats.superseded.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("fleet_events_total", "step" => step, "outcome" => "superseded")
                    .increment(1);
                return;
            }
            Outcome::Done => (AckKind::Ack, &self.stats.acked, "ok"),
            Outcome::Retry(delay) => (AckKind::Nak(Some(delay)), &self.stats.retried, "retried"),
            Outcome::Defer(delay) => (AckKind::Nak(Some(delay)), &self.stats.retried, "deferred"),
            Outcome::GiveUp => (AckKind::Term, &self.stats.terminated, "failed"),
            Outcome::Interrupted => (AckKind::Nak(None), &self.stats.retried, "interrupted"),
            Outcome::Republish(copy) => {
                let label = match copy {
                    Continuation::Waiting(_) => "requeued",
                    Continuation::Restarted(_) => "restarted",
                };
                match self.continue_as(received, copy).await {
                    Ok(()) => (AckKind::Term, &self.stats.retried, label),
                    Err(e) => {
                        warn!(error.message = %e, label, "Could not publish the message again; it will be redelivered.");
                        let delay = self.config.retry.delay(received.local, None);
                        (AckKind::Nak(Some(delay)), &self.stats.retried, "retried")
                    }
                }
            }
            Outcome::DeadLetter(letter, class) => match self.dead_letter(&letter, received).await {
                Ok(()) => {
                    metrics::counter!("fleet_dead_letters_total", "step" => step, "reason" => class)
                        .increment(1);
                    (AckKind::Term, &self.stats.dead_lettered, "dead_lettered")
                }
                Err(e) => {
                    error!(error.message = %e, error.cause_chain = ?e, "Could not publish a dead letter; the message will be redelivered.");
                    let delay = self.config.retry.delay(received.local, None);
                    (AckKind::Nak(Some(delay)), &self.stats.retried, "retried")
                }
            },
        };
        match acker.ack_with(kind).await {
            Ok(()) => {
                counter.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("fleet_events_total", "step" => step, "outcome" => label)
                    .increment(1);
            }
            Err(e) => {
                warn!(error.message = %e, "Settling a message failed; it will be redelivered.")
            }
        }
        debug!(?kind, "Settled message.");
    }

    /// Publishes the message's bytes and headers again on its subject as a
    /// new message that continues this one: its deliveries use this one's
    /// stream sequence ([`ORIGIN_SEQUENCE_HEADER`]), so a sync keeps its
    /// run (and the slot it held), and count their attempts on from it
    /// ([`ATTEMPTS_BEFORE_HEADER`]), with as many again. A waiting copy is
    /// marked not to be handled before the wait is over
    /// ([`NOT_BEFORE_HEADER`]); a restarted one with its restarts so far
    /// ([`RESTARTS_HEADER`]). The id is derived from the consumer and this
    /// message's stream sequence, so a crash between this and the term
    /// cannot publish it twice.
    async fn continue_as(&self, received: &Received, copy: Continuation) -> Result<(), Error> {
        let delivery = received.delivery;
        let mut headers = received.headers.clone();
        headers.insert(
            ORIGIN_SEQUENCE_HEADER,
            delivery.stream_sequence.to_string().as_str(),
        );
        headers.insert(
            ATTEMPTS_BEFORE_HEADER,
            delivery.attempt.to_string().as_str(),
        );
        let kind = match copy {
            Continuation::Waiting(wait) => {
                let not_before = fleet_events::after(Utc::now(), wait);
                headers.insert(
                    NOT_BEFORE_HEADER,
                    not_before.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                );
                "requeue"
            }
            Continuation::Restarted(restarts) => {
                headers.insert(RESTARTS_HEADER, restarts.to_string().as_str());
                "restart"
            }
        };
        let msg_id = format!("{kind}:{}:{}", self.config.consumer, received.sequence);
        self.publisher
            .publish_raw(
                &received.subject,
                received.payload.clone(),
                headers,
                &msg_id,
            )
            .await?;
        Ok(())
    }

    /// Publishes a dead letter and waits for the stream's ack. The id is
    /// derived from the consumer and the stream sequence, so a crash between
    /// this and the term cannot store it twice.
    async fn dead_letter(
        &self,
        letter: &Envelope<DeadLetter>,
        received: &Received,
    ) -> Result<(), Error> {
        let msg_id = format!("dlq:{}:{}", self.config.consumer, received.sequence);
        self.publisher.publish(letter, &msg_id).await?;
        Ok(())
    }
}

/// `headers` without the server's: the deduplication id, which a requeue
/// replaces, and every other `Nats-` header, which the server sets or acts
/// on (a message produced by a schedule carries `Nats-Scheduler` and
/// `Nats-Schedule-Next`, which the server refuses in a client's publish).
fn kept_headers(headers: Option<&async_nats::HeaderMap>) -> async_nats::HeaderMap {
    let mut kept = async_nats::HeaderMap::new();
    for (name, values) in headers.into_iter().flat_map(|h| h.iter()) {
        let name_text: &str = name.as_ref();
        let servers = name_text
            .get(..5)
            .is_some_and(|prefix| prefix.eq_ignore_ascii_case("nats-"));
        if servers {
            continue;
        }
        for value in values {
            kept.append(name.clone(), value.clone());
        }
    }
    kept
}

/// The number in header `name`; `None` when absent or unreadable.
fn number<T: std::str::FromStr>(headers: Option<&async_nats::HeaderMap>, name: &str) -> Option<T> {
    headers?.get(name)?.as_str().parse().ok()
}

/// How many times the runtime has started the message over
/// ([`RESTARTS_HEADER`]); 0 when unmarked or unreadable.
fn restarts_of(headers: &async_nats::HeaderMap) -> u32 {
    number(Some(headers), RESTARTS_HEADER).unwrap_or(0)
}

/// How long a message marked [`NOT_BEFORE_HEADER`] must still wait; `None`
/// when it may be handled now, or carries no (readable) mark.
fn wait_left(headers: &async_nats::HeaderMap) -> Option<Duration> {
    let at = headers.get(NOT_BEFORE_HEADER)?.as_str();
    let at = chrono::DateTime::parse_from_rfc3339(at).ok()?;
    (at.with_timezone(&Utc) - Utc::now())
        .to_std()
        .ok()
        .filter(|left| !left.is_zero())
}

/// Why an event may not be handled as addressed: its subject is not one of
/// `step`'s, or names another tenant or connection than its body. Workers
/// act on the body, while NATS permissions and consumer filters see only
/// the subject; a publisher allowed one tenant's subjects must not reach
/// another tenant's connection by naming it in the body.
fn subject_mismatch<P: Payload>(subject: &str, step: Step, event: &Envelope<P>) -> Option<String> {
    let parsed = match fleet_events::subject::parse(subject) {
        Ok(parsed) => parsed,
        Err(e) => return Some(format!("the subject is not one of the fleet's: {e}")),
    };
    if parsed.family != Family::from(step) {
        return Some(format!("the subject {subject} is not a {step} subject"));
    }
    if parsed.tenant != event.tenant || parsed.connection != event.connection {
        return Some(format!(
            "the subject names tenant {} and connection {}, but the event names tenant {} and \
             connection {}",
            parsed.tenant, parsed.connection, event.tenant, event.connection
        ));
    }
    None
}

impl Received {
    fn dead_letter(&self, step: Step, reason: String) -> DeadLetter {
        DeadLetter {
            step,
            reason,
            delivery_count: self.delivery.attempt.into(),
            original_subject: self.subject.clone(),
            stream_sequence: Some(self.sequence),
            original: self.payload.to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_requeue_or_restart_keeps_no_header_the_server_sets_or_acts_on() {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(async_nats::header::NATS_MESSAGE_ID, "abc");
        headers.insert("Nats-Scheduler", "connector.schedule.acme.c1");
        headers.insert("Nats-Schedule-Next", "2026-12-07T18:00:00Z");
        headers.insert("nats-ttl", "5s");
        headers.insert(crate::TRACEPARENT_HEADER, "00-abc-def-01");
        headers.insert(RESTARTS_HEADER, "1");

        let kept = kept_headers(Some(&headers));

        let mut names: Vec<&str> = kept.iter().map(|(name, _)| name.as_ref()).collect();
        names.sort_unstable();
        assert_eq!(names, [RESTARTS_HEADER, crate::TRACEPARENT_HEADER]);
    }

    #[test]
    fn a_copy_reads_what_it_continues_and_an_unreadable_mark_counts_as_none() {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(ORIGIN_SEQUENCE_HEADER, "41");
        headers.insert(ATTEMPTS_BEFORE_HEADER, "9");
        headers.insert(RESTARTS_HEADER, "many");

        assert_eq!(
            number::<u64>(Some(&headers), ORIGIN_SEQUENCE_HEADER),
            Some(41)
        );
        assert_eq!(
            number::<u32>(Some(&headers), ATTEMPTS_BEFORE_HEADER),
            Some(9)
        );
        assert_eq!(restarts_of(&headers), 0);
        assert_eq!(number::<u64>(None, ORIGIN_SEQUENCE_HEADER), None);
    }
}
