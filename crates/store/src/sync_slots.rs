//! One sync per connection at a time, and a bounded number per tenant.
//!
//! A connection's *sync slot* is free, held by a queued request, or held by
//! a running sync, each hold with an expiry:
//!
//! - The gateway's "Sync now" [queues](Store::queue_sync) a request: if the
//!   slot is already held, the request is coalesced into the holder and
//!   nothing is published.
//! - The sync worker [claims](Store::claim_sync) the slot before it reads
//!   anything. A held slot (a sync running, or another request queued)
//!   coalesces the request into the holder; a tenant that already runs its
//!   maximum of syncs makes the request wait.
//! - A running sync [renews](Store::renew_sync) its hold as it goes and
//!   [releases](Store::release_sync) it when it ends. A crashed worker's
//!   hold lapses at its expiry; the redelivered request carries the same
//!   run id and takes the slot back at once.
//!
//! So two syncs never interleave their passes over one connection's
//! records, and a tenant cannot hold every sync slot of the fleet.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use fleet_events::{ConnectionId, CorrelationId, EventId, SyncTrigger, TenantId};
use serde_json::Value;
use sqlx::{Row as _, postgres::PgRow};
use uuid::Uuid;

use crate::records::{StreamState, stream_state};
use crate::{CredentialsInUse, Error, Store};

/// What [`Store::queue_sync`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queued {
    /// The slot was free; the request now holds it.
    Queued,
    /// The slot is held; the request joins the holder.
    Coalesced(SlotHolder),
}

/// Who holds a connection's sync slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotHolder {
    /// The running sync's run id, or the queued request's (its event id
    /// until a worker picks it up).
    pub run: Uuid,
    /// Whether a worker has picked it up.
    pub running: bool,
}

/// What [`Store::claim_sync`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// The run holds the slot; it may sync.
    Granted,
    /// Another request or run holds the slot: this one is coalesced into it.
    Coalesced(SlotHolder),
    /// The tenant already runs `running` syncs, its maximum: try later.
    TenantBusy {
        /// Syncs the tenant runs now.
        running: u32,
    },
    /// A later delivery of the same request holds the slot: this delivery
    /// waited too long and the server gave the message to another worker.
    Superseded {
        /// The delivery that holds it.
        holder: u32,
    },
    /// The connection does not exist (any more).
    Missing,
}

/// What [`Store::claim_sync_run`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedRun {
    /// The claim's outcome.
    pub claim: Claim,
    /// Where each of the connection's streams stands, by stream name, when
    /// the claim was granted; empty otherwise.
    pub streams: HashMap<String, StreamState>,
    /// Which version of the connection's credentials is in use, when the
    /// claim was granted; [`CredentialsInUse::Legacy`] otherwise.
    pub credentials: CredentialsInUse,
}

impl ClaimedRun {
    fn refused(claim: Claim) -> Self {
        Self {
            claim,
            streams: HashMap::new(),
            credentials: CredentialsInUse::Legacy,
        }
    }
}

/// The stream states a granted claim read, from its aggregated columns
/// (all `NULL` when the connection has no stream row yet).
fn streams_of(row: &PgRow) -> Result<HashMap<String, StreamState>, sqlx::Error> {
    let streams: Option<Vec<String>> = row.try_get("streams")?;
    let Some(streams) = streams else {
        return Ok(HashMap::new());
    };
    let high_waters: Vec<Option<DateTime<Utc>>> = row.try_get("high_waters")?;
    let last_fulls: Vec<Option<DateTime<Utc>>> = row.try_get("last_fulls")?;
    let passes: Vec<Option<Uuid>> = row.try_get("passes")?;
    let pass_fulls: Vec<Option<bool>> = row.try_get("pass_fulls")?;
    let pass_starts: Vec<Option<DateTime<Utc>>> = row.try_get("pass_starts")?;
    let cursors: Vec<Option<Value>> = row.try_get("cursors")?;
    Ok(streams
        .into_iter()
        .zip(high_waters)
        .zip(last_fulls)
        .zip(passes)
        .zip(pass_fulls)
        .zip(pass_starts)
        .zip(cursors)
        .map(
            |((((((stream, high_water), last_full), pass), full), started), cursor)| {
                stream_state((stream, high_water, last_full, pass, full, started, cursor))
            },
        )
        .collect())
}

/// A running sync's hold on a connection's sync slot: the run and the
/// delivery of its request that claimed it. Page commits, pass ends and
/// renewals carry it, and are refused once a later delivery of the same
/// request took the slot over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncLease {
    /// The run.
    pub run: CorrelationId,
    /// The attempt of the request's message (1 for the first delivery;
    /// counted on across a restart of the message, so it never goes back).
    pub attempt: u32,
}

/// A claim's parameters.
#[derive(Debug, Clone, Copy)]
pub struct SlotClaim<'a> {
    /// The tenant that owns the connection.
    pub tenant: &'a TenantId,
    /// The connection to sync.
    pub connection: &'a ConnectionId,
    /// The run that wants the slot.
    pub run: CorrelationId,
    /// The sync request's event id: the slot a queued request holds is
    /// claimed by the run of that request.
    pub request: EventId,
    /// The attempt of the request's message (counted on across a restart of
    /// the message): a later attempt takes the run's slot over, an earlier
    /// one than the holder's is refused.
    pub attempt: u32,
    /// How long the hold lasts without renewal.
    pub hold: Duration,
    /// The most syncs the tenant may run at once, this one included.
    pub max_per_tenant: u32,
    /// What asked for the sync, for the run's record.
    pub trigger: SyncTrigger,
}

impl Store {
    /// Queues a sync request (by its event id) in the connection's free
    /// sync slot for `hold`, or reports who holds it.
    ///
    /// # Errors
    ///
    /// [`Error::ConnectionNotFound`], or [`Error::SyncSlot`].
    #[tracing::instrument(skip_all, fields(tenant = %tenant, connection = %connection))]
    pub async fn queue_sync(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        request: EventId,
        hold: Duration,
    ) -> Result<Queued, Error> {
        let queued = sqlx::query_scalar::<_, bool>(
            "UPDATE connections \
             SET sync_slot_run = $3, sync_slot_request = $3, sync_slot_state = 'queued', \
                 sync_slot_until = now() + make_interval(secs => $4), sync_slot_attempt = NULL \
             WHERE tenant = $1 AND id = $2 \
               AND (sync_slot_until IS NULL OR sync_slot_until <= now()) \
             RETURNING true",
        )
        .bind(tenant.as_str())
        .bind(connection.as_str())
        .bind(request.as_uuid())
        .bind(hold.as_secs_f64())
        .fetch_optional(&self.pool)
        .await
        .map_err(Error::SyncSlot)?
        .is_some();
        if queued {
            return Ok(Queued::Queued);
        }
        match self.slot_holder(tenant, connection).await? {
            Some(Some(holder)) => Ok(Queued::Coalesced(holder)),
            // Freed between the two statements: try once more.
            Some(None) => Box::pin(self.queue_sync(tenant, connection, request, hold)).await,
            None => Err(Error::ConnectionNotFound {
                tenant: tenant.clone(),
                connection: connection.clone(),
            }),
        }
    }

    /// Records which run a queued request became, so that coalesced
    /// requests can name it; nothing happens if a worker already claimed
    /// the slot.
    ///
    /// # Errors
    ///
    /// [`Error::SyncSlot`].
    pub async fn name_queued_run(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        request: EventId,
        run: CorrelationId,
    ) -> Result<(), Error> {
        sqlx::query(
            "UPDATE connections SET sync_slot_run = $4 \
             WHERE tenant = $1 AND id = $2 AND sync_slot_run = $3 \
               AND sync_slot_state = 'queued'",
        )
        .bind(tenant.as_str())
        .bind(connection.as_str())
        .bind(request.as_uuid())
        .bind(run.as_uuid())
        .execute(&self.pool)
        .await
        .map_err(Error::SyncSlot)?;
        Ok(())
    }

    /// Takes the connection's sync slot for `claim.run`, if it is free, held
    /// by this run (a redelivery) or by this run's queued request, and the
    /// tenant runs fewer than `claim.max_per_tenant` other syncs; a granted
    /// claim also records that the run started (as
    /// [`Store::start_sync_run`] does).
    ///
    /// The check of the tenant's running syncs and the claim are one
    /// transaction under a per-tenant advisory lock, so concurrent claims
    /// across the fleet cannot exceed the maximum together. It is one round
    /// trip: one statement calls `sync_claim`, which takes the lock and
    /// then decides and claims, so the lock is held for that statement and
    /// its commit only.
    ///
    /// # Errors
    ///
    /// [`Error::SyncSlot`].
    pub async fn claim_sync(&self, claim: SlotClaim<'_>) -> Result<Claim, Error> {
        self.claim_sync_run(claim)
            .await
            .map(|claimed| claimed.claim)
    }

    /// [`Store::claim_sync`], which also reads, when the claim is granted,
    /// where each of the connection's streams stands (as
    /// [`Store::stream_states`] does), in the same statement.
    ///
    /// # Errors
    ///
    /// [`Error::SyncSlot`].
    #[tracing::instrument(skip_all, fields(tenant = %claim.tenant, connection = %claim.connection, run = %claim.run))]
    pub async fn claim_sync_run(&self, claim: SlotClaim<'_>) -> Result<ClaimedRun, Error> {
        // One statement: the function takes the tenant's lock, then decides
        // and claims with the rows as they are once it is held (see
        // migrations/0012_sync_functions.sql).
        let row = sqlx::query("SELECT * FROM sync_claim($1, $2, $3, $4, $5, $6, $7, $8, $9)")
            .bind(claim.tenant.as_str())
            .bind(claim.connection.as_str())
            .bind(claim.run.as_uuid())
            .bind(claim.hold.as_secs_f64())
            .bind(claim.request.as_uuid())
            .bind(attempt_column(claim.attempt))
            .bind(i64::from(claim.max_per_tenant))
            .bind(crate::sync_runs::trigger_name(claim.trigger))
            .bind(tenant_lock_key(claim.tenant))
            .fetch_optional(&self.pool)
            .await
            .map_err(Error::SyncSlot)?;
        let Some(row) = row else {
            return Ok(ClaimedRun::refused(Claim::Missing));
        };
        let granted: bool = row.try_get("granted").map_err(Error::SyncSlot)?;
        if granted {
            return Ok(ClaimedRun {
                claim: Claim::Granted,
                streams: streams_of(&row).map_err(Error::SyncSlot)?,
                credentials: CredentialsInUse::from_row(&row).map_err(Error::SyncSlot)?,
            });
        }
        let holder: Option<Uuid> = row.try_get("sync_slot_run").map_err(Error::SyncSlot)?;
        let request: Option<Uuid> = row.try_get("sync_slot_request").map_err(Error::SyncSlot)?;
        let state: Option<String> = row.try_get("sync_slot_state").map_err(Error::SyncSlot)?;
        let holder_attempt: Option<i32> =
            row.try_get("sync_slot_attempt").map_err(Error::SyncSlot)?;
        let held: bool = row.try_get("held").map_err(Error::SyncSlot)?;
        let running: i64 = row.try_get("running").map_err(Error::SyncSlot)?;
        // An earlier delivery of the run that holds the slot: it waited past
        // its ack wait and a later delivery is the run's now.
        let holder_attempt = holder_attempt.and_then(|a| u32::try_from(a).ok());
        if held
            && holder == Some(claim.run.as_uuid())
            && state.as_deref() == Some("running")
            && let Some(holder) = holder_attempt.filter(|&a| a > claim.attempt)
        {
            return Ok(ClaimedRun::refused(Claim::Superseded { holder }));
        }
        // This delivery's run, or the run of the queued request that holds
        // the slot. Another message of the same request while it runs (a
        // schedule's next production, which carries the same stored
        // envelope) joins the running one.
        let ours = holder == Some(claim.run.as_uuid())
            || (state.as_deref() == Some("queued") && request == Some(claim.request.as_uuid()));
        if held && !ours {
            let holder = SlotHolder {
                run: holder.unwrap_or_default(),
                running: state.as_deref() == Some("running"),
            };
            return Ok(ClaimedRun::refused(Claim::Coalesced(holder)));
        }
        Ok(ClaimedRun::refused(Claim::TenantBusy {
            running: u32::try_from(running).unwrap_or(u32::MAX),
        }))
    }

    /// Extends `lease`'s hold on the connection's sync slot to `hold` from
    /// now; returns `false` when it no longer holds it (its hold lapsed and
    /// another run took the slot, or a later delivery of the same request
    /// took it over).
    ///
    /// # Errors
    ///
    /// [`Error::SyncSlot`].
    pub async fn renew_sync(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        lease: SyncLease,
        hold: Duration,
    ) -> Result<bool, Error> {
        let renewed = sqlx::query(
            "UPDATE connections SET sync_slot_until = now() + make_interval(secs => $4) \
             WHERE tenant = $1 AND id = $2 AND sync_slot_run = $3 \
               AND sync_slot_state = 'running' AND sync_slot_attempt = $5",
        )
        .bind(tenant.as_str())
        .bind(connection.as_str())
        .bind(lease.run.as_uuid())
        .bind(hold.as_secs_f64())
        .bind(attempt_column(lease.attempt))
        .execute(&self.pool)
        .await
        .map_err(Error::SyncSlot)?;
        Ok(renewed.rows_affected() > 0)
    }

    /// Frees the connection's sync slot if `lease` holds it, or an earlier
    /// delivery of the same run does; never a later delivery's hold.
    ///
    /// # Errors
    ///
    /// [`Error::SyncSlot`].
    pub async fn release_sync(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        lease: SyncLease,
    ) -> Result<(), Error> {
        sqlx::query(
            "UPDATE connections \
             SET sync_slot_run = NULL, sync_slot_request = NULL, sync_slot_state = NULL, \
                 sync_slot_until = NULL, sync_slot_attempt = NULL \
             WHERE tenant = $1 AND id = $2 AND sync_slot_run = $3 \
               AND coalesce(sync_slot_attempt <= $4, true)",
        )
        .bind(tenant.as_str())
        .bind(connection.as_str())
        .bind(lease.run.as_uuid())
        .bind(attempt_column(lease.attempt))
        .execute(&self.pool)
        .await
        .map_err(Error::SyncSlot)?;
        Ok(())
    }

    /// Frees the connection's sync slot if the queued request `request`
    /// holds it (a request that could not be published).
    ///
    /// # Errors
    ///
    /// [`Error::SyncSlot`].
    pub async fn release_queued_sync(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        request: EventId,
    ) -> Result<(), Error> {
        sqlx::query(
            "UPDATE connections \
             SET sync_slot_run = NULL, sync_slot_request = NULL, sync_slot_state = NULL, \
                 sync_slot_until = NULL, sync_slot_attempt = NULL \
             WHERE tenant = $1 AND id = $2 AND sync_slot_run = $3 AND sync_slot_state = 'queued'",
        )
        .bind(tenant.as_str())
        .bind(connection.as_str())
        .bind(request.as_uuid())
        .execute(&self.pool)
        .await
        .map_err(Error::SyncSlot)?;
        Ok(())
    }

    /// Who holds the connection's sync slot: `None` when the connection
    /// does not exist, `Some(None)` when the slot is free.
    async fn slot_holder(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
    ) -> Result<Option<Option<SlotHolder>>, Error> {
        let row = sqlx::query(
            "SELECT sync_slot_run, sync_slot_state, \
                    coalesce(sync_slot_until > now(), false) AS held \
             FROM connections WHERE tenant = $1 AND id = $2",
        )
        .bind(tenant.as_str())
        .bind(connection.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(Error::SyncSlot)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let run: Option<Uuid> = row.try_get("sync_slot_run").map_err(Error::SyncSlot)?;
        let state: Option<String> = row.try_get("sync_slot_state").map_err(Error::SyncSlot)?;
        let held: bool = row.try_get("held").map_err(Error::SyncSlot)?;
        Ok(Some(run.filter(|_| held).map(|run| SlotHolder {
            run,
            running: state.as_deref() == Some("running"),
        })))
    }
}

/// The key of the advisory lock under which a tenant's sync slots are
/// claimed: FNV-1a of the tenant's id. Two tenants that share a key share
/// the lock's waits, nothing else.
fn tenant_lock_key(tenant: &TenantId) -> i64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let hash = b"sync-slots:"
        .iter()
        .chain(tenant.as_str().as_bytes())
        .fold(OFFSET, |hash, &byte| {
            (hash ^ u64::from(byte)).wrapping_mul(PRIME)
        });
    i64::from_ne_bytes(hash.to_ne_bytes())
}

/// A delivery count as the `integer` column keeps it (counts beyond
/// `i32::MAX` do not occur: consumers redeliver a handful of times).
pub(crate) fn attempt_column(attempt: u32) -> i32 {
    i32::try_from(attempt).unwrap_or(i32::MAX)
}

/// The id of the sync run that the delivery of the sync request `request`
/// at `stream_sequence` starts. A scheduled sync's requests are one stored
/// envelope the server publishes again and again, so the sequence tells
/// its runs apart; a redelivery keeps both, and so the run.
pub fn run_id(request: EventId, stream_sequence: u64) -> CorrelationId {
    CorrelationId::from(Uuid::new_v5(
        &request.as_uuid(),
        &stream_sequence.to_be_bytes(),
    ))
}
