//! Recurring sync requests, run by the NATS server itself.
//!
//! A connection's schedule is one message on `connector.schedule.<tenant>.
//! <connection>` in the steps stream, with `Nats-Schedule: @every <n>s` and
//! `Nats-Schedule-Target: connector.sync.<tenant>.<connection>` (NATS 2.14
//! message schedules). The server publishes its body to the target on every
//! interval, once for the whole cluster however many fleet processes run,
//! and keeps it through restarts with the rest of the stream. No worker
//! consumes schedule subjects, so the work queue never deletes them.

use std::time::Duration;

use async_nats::header::{NATS_MESSAGE_TTL, NATS_ROLLUP, NATS_SCHEDULE, NATS_SCHEDULE_TARGET};
use async_nats::jetstream;
use fleet_events::{ConnectionId, Envelope, SyncRequested, TenantId, subject};

use crate::Error;

/// The shortest interval the server accepts.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// Sets, replaces and removes connections' sync schedules.
#[derive(Debug, Clone)]
pub struct Schedules {
    js: jetstream::Context,
}

impl Schedules {
    /// Schedules on the steps stream of `js`.
    pub fn new(js: jetstream::Context) -> Self {
        Self { js }
    }

    /// Makes the server publish `request` to the connection's sync subject
    /// every `every` (whole seconds, at least [`MIN_INTERVAL`]), replacing
    /// any schedule the connection had. Takes effect at once.
    ///
    /// # Errors
    ///
    /// [`Error::Publish`] when the stream does not store the schedule.
    pub async fn set(
        &self,
        request: &Envelope<SyncRequested>,
        every: Duration,
    ) -> Result<(), Error> {
        let every = every.max(MIN_INTERVAL).as_secs();
        let schedule = subject::schedule(&request.tenant, &request.connection);
        let message = jetstream::message::PublishMessage::build()
            .payload(request.to_json().into())
            .header(NATS_SCHEDULE, format!("@every {every}s").as_str())
            .header(NATS_SCHEDULE_TARGET, request.subject().as_str())
            // Keep only this message on the schedule subject.
            .header(NATS_ROLLUP, "sub");
        self.js
            .send_publish(schedule.clone(), message)
            .await
            .map_err(|source| Error::Publish {
                subject: schedule.clone(),
                source,
            })?
            .await
            .map_err(|source| Error::Publish {
                subject: schedule,
                source,
            })?;
        Ok(())
    }

    /// Removes the connection's schedule, if any. Takes effect at once.
    ///
    /// It publishes an empty message on the schedule's subject that rolls
    /// up (replaces) the schedule and expires a second later by itself
    /// (`Nats-TTL`), rather than purging the stream: a purge request cannot
    /// be limited to one subject by NATS permissions, so a service allowed
    /// to purge could empty every tenant's queued work.
    ///
    /// # Errors
    ///
    /// [`Error::Publish`] when the stream does not store the removal.
    pub async fn remove(&self, tenant: &TenantId, connection: &ConnectionId) -> Result<(), Error> {
        let schedule = subject::schedule(tenant, connection);
        let message = jetstream::message::PublishMessage::build()
            .payload(bytes::Bytes::new())
            .header(NATS_ROLLUP, "sub")
            .header(NATS_MESSAGE_TTL, "1s");
        self.js
            .send_publish(schedule.clone(), message)
            .await
            .map_err(|source| Error::Publish {
                subject: schedule.clone(),
                source,
            })?
            .await
            .map_err(|source| Error::Publish {
                subject: schedule,
                source,
            })?;
        Ok(())
    }
}
