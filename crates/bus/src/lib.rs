//! JetStream glue for connector-fleet.
//!
//! - [`Definitions`] holds the streams and durable consumers from `nats/` and
//!   applies them to a server ([`Definitions::provision`]), creating or
//!   updating each.
//! - [`Publisher`] publishes an event with a `Nats-Msg-Id` and trace headers
//!   and waits for the stream's acknowledgement.
//! - [`Worker`] runs a [`Handler`] over a durable pull consumer: bounded
//!   concurrency, in-progress acks while a handler runs, retries nak'd with
//!   the delay of a per-step [`RetryPolicy`], dead letters for poison
//!   messages, and a graceful drain on shutdown.
//! - [`dead_letters::DeadLetters`] lists, reads, replays and deletes dead
//!   letters by tenant, connection, step and reason (`fleet dlq`).
//! - [`gauges::watch`] exports each consumer's pending, in-flight and
//!   redelivered counts and the dead letters kept, as Prometheus gauges
//!   (every count the runtime keeps goes to the `metrics` facade: events
//!   by step and outcome, dead letters by reason, handler latency).
//! - [`Schedules`] sets and removes a connection's recurring sync, run by
//!   the NATS server's message schedules.
//! - [`trace`] carries the W3C trace context between `tracing` spans and
//!   events: a publish stamps the publishing span's context on the event,
//!   and a worker's step span takes the event's as its parent.
//!
//! What it does not do: decide what a step means (that is `fleet-workers`),
//! or read the environment (callers pass a [`Config`]).
//!
//! # Retry and dead-letter rules
//!
//! A handler returns `Ok` (ack), or a [`HandlerError`]: `Transient` naks
//! with the retry table's delay for the attempt (or the provider's
//! Retry-After when longer); on the consumer's last delivery it is
//! dead-lettered instead, because JetStream keeps a work-queue message that
//! reached `max_deliver` without telling anyone. A last attempt that never
//! settles (its worker was killed) comes back once more, since the
//! consumers limit attempts, not deliveries ([`ATTEMPTS_METADATA`]): the
//! runtime then starts the message over as a new one, a bounded number of
//! times, and after that dead-letters it with a `failed` status, so no
//! message is ever left behind in silence. `Permanent` terms the
//! message, or dead-letters it for a step that reports no status.
//! `Malformed`, any message that does not decode, and any message whose
//! subject names another tenant or connection than its body, is published
//! to `connector.dlq.<step>.<tenant>.<connection>` with the reason and the
//! original bytes, and only then terminated; it changes no connection's
//! status. Every failure so ends in a stored status or a dead letter, never
//! only in a log line.

#![warn(missing_docs)]

mod config;
pub mod dead_letters;
mod definitions;
mod error;
pub mod gauges;
mod handler;
mod publish;
mod retry;
mod schedule;
pub mod trace;
mod worker;

pub use config::Config;
pub use definitions::{
    ATTEMPTS_METADATA, ConsumerDefinition, DLQ_STREAM, Definitions, HEALTH_STREAM, STATUS_STREAM,
    STEPS_STREAM,
};
pub use error::Error;
pub use handler::{Context, Delivery, Handler, HandlerError};
pub use publish::{
    ATTEMPTS_BEFORE_HEADER, EVENT_TYPE_HEADER, NOT_BEFORE_HEADER, ORIGIN_SEQUENCE_HEADER,
    PendingPublish, Published, Publisher, RESTARTS_HEADER, TRACEPARENT_HEADER, TRACESTATE_HEADER,
};
pub use retry::RetryPolicy;
pub use schedule::{MIN_INTERVAL, Schedules};
pub use worker::{Worker, WorkerConfig, WorkerHandle, WorkerStats};

use secrecy::ExposeSecret as _;

/// Connects to NATS as configured, over TLS when the server or the
/// configuration asks for it (see the `tls_*` settings of [`Config`]).
///
/// # Errors
///
/// [`Error::Connect`] when the server cannot be reached, refuses the
/// credentials or fails the TLS handshake, when TLS is required and the
/// server does not offer it, or, before any connection is tried, when a
/// TLS file setting cannot be used; its source then names the setting
/// (kind [`async_nats::ConnectErrorKind::Tls`]).
pub async fn connect(config: &Config) -> Result<async_nats::Client, Error> {
    let connect_error = |source| Error::Connect {
        url: config.url.clone(),
        source,
    };
    let mut options = async_nats::ConnectOptions::new()
        .name(&config.name)
        .custom_inbox_prefix(&config.inbox_prefix);
    if let (Some(user), Some(password)) = (&config.user, &config.password) {
        options = options.user_and_password(user.clone(), password.expose_secret().to_owned());
    }
    let options = config.apply_tls(options).await.map_err(|e| {
        connect_error(async_nats::ConnectError::with_source(
            async_nats::ConnectErrorKind::Tls,
            e,
        ))
    })?;
    options
        .connect(config.servers())
        .await
        .map_err(connect_error)
}
