//! Applying published connection statuses to the `connections` table.

use chrono::{DateTime, Utc};
use fleet_events::{
    ConnectionId, ConnectionStatus, ConnectorId, Envelope, EventId, StatusChanged, TenantId,
};
use sqlx::types::Json;

use crate::{Error, Store, row::to_bigint};

/// One published status, as [`Store::apply_status`] takes it.
#[derive(Debug, Clone, Copy)]
pub struct StatusUpdate<'a> {
    /// The tenant that owns the connection.
    pub tenant: &'a TenantId,
    /// The connection the status is about.
    pub connection: &'a ConnectionId,
    /// Its provider, recorded if the row has to be created.
    pub connector: &'a ConnectorId,
    /// The event's id: the tie-breaker between events of the same
    /// `occurred_at` (UUID v7 ids sort by creation time).
    pub event_id: EventId,
    /// When the event was created: the ordering key.
    pub occurred_at: DateTime<Utc>,
    /// The status.
    pub status: &'a ConnectionStatus,
}

impl<'a> From<&'a Envelope<StatusChanged>> for StatusUpdate<'a> {
    fn from(event: &'a Envelope<StatusChanged>) -> Self {
        Self {
            tenant: &event.tenant,
            connection: &event.connection,
            connector: &event.connector,
            event_id: event.id,
            occurred_at: event.occurred_at,
            status: &event.data.status,
        }
    }
}

/// The columns a status sets besides `status` itself.
struct Derived<'a> {
    /// New `last_error`, written unless `keep_last_error`.
    last_error: Option<&'a str>,
    /// Whether the status says nothing about errors.
    keep_last_error: bool,
    /// New `last_sync_at`, if the status completes a sync.
    last_sync_at: Option<DateTime<Utc>>,
    /// New `records_total`, if the status completes a sync.
    records_total: Option<i64>,
}

impl<'a> Derived<'a> {
    fn of(status: &'a ConnectionStatus) -> Self {
        let keep = Self {
            last_error: None,
            keep_last_error: true,
            last_sync_at: None,
            records_total: None,
        };
        match status {
            ConnectionStatus::Invalid { reason }
            | ConnectionStatus::Retrying { reason, .. }
            | ConnectionStatus::Failed { reason, .. }
            | ConnectionStatus::ReauthRequired { reason } => Self {
                last_error: Some(reason),
                keep_last_error: false,
                ..keep
            },
            ConnectionStatus::Synced {
                records,
                last_sync_at,
                ..
            } => Self {
                last_error: None,
                keep_last_error: false,
                last_sync_at: Some(*last_sync_at),
                records_total: Some(to_bigint(*records)),
            },
            ConnectionStatus::Partial {
                records,
                last_sync_at,
                reason,
                ..
            } => Self {
                last_error: Some(reason),
                keep_last_error: false,
                last_sync_at: Some(*last_sync_at),
                records_total: Some(to_bigint(*records)),
            },
            ConnectionStatus::Pending
            | ConnectionStatus::Validating
            | ConnectionStatus::Saving
            | ConnectionStatus::Syncing { .. }
            | ConnectionStatus::Disconnected => keep,
        }
    }
}

impl Store {
    /// Stores a published status, if it is newer than the one stored; returns
    /// whether it was applied.
    ///
    /// Events are ordered by `(occurred_at, event_id)`. A redelivered event,
    /// or one overtaken by a newer event, changes nothing and returns
    /// `false`, so the status worker can ack it either way. A status for a
    /// connection without a row creates the row (named after its connector),
    /// because a status event may overtake the request that creates it;
    /// a deleted connection is never created again this way.
    ///
    /// Besides `status`, it sets `last_error` to the reason of an `invalid`,
    /// `retrying`, `failed` or `reauth_required` status and clears it on
    /// `synced`, which also sets `last_sync_at` and `records_total`.
    ///
    /// It is one `INSERT .. ON CONFLICT DO UPDATE .. WHERE` statement, so
    /// concurrent status writers need no lock: PostgreSQL serializes them on
    /// the row and re-checks the ordering against the winner's values.
    ///
    /// # Errors
    ///
    /// [`Error::ApplyStatus`].
    #[tracing::instrument(skip_all, fields(
        tenant = %update.tenant,
        connection = %update.connection,
        event_id = %update.event_id,
        state = %update.status.state(),
    ))]
    pub async fn apply_status(&self, update: StatusUpdate<'_>) -> Result<bool, Error> {
        let derived = Derived::of(update.status);
        let applied = sqlx::query_scalar::<_, bool>(
            "INSERT INTO connections AS c \
                 (tenant, id, connector, display_name, status, last_error, last_sync_at, \
                  records_total, last_status_at, last_status_event) \
             SELECT $1, $2, $3, $3, $4, $5, $7, coalesce($8, 0), $9, $10 \
             WHERE NOT EXISTS (SELECT 1 FROM deleted_connections d WHERE d.tenant = $1 AND d.id = $2) \
             ON CONFLICT (tenant, id) DO UPDATE SET \
                 status = EXCLUDED.status, \
                 last_error = CASE WHEN $6 THEN c.last_error ELSE EXCLUDED.last_error END, \
                 last_sync_at = coalesce(EXCLUDED.last_sync_at, c.last_sync_at), \
                 records_total = coalesce($8, c.records_total), \
                 last_status_at = EXCLUDED.last_status_at, \
                 last_status_event = EXCLUDED.last_status_event, \
                 updated_at = now() \
             WHERE c.last_status_at IS NULL \
                OR (c.last_status_at, c.last_status_event) \
                   < (EXCLUDED.last_status_at, EXCLUDED.last_status_event) \
             RETURNING true",
        )
        .bind(update.tenant.as_str())
        .bind(update.connection.as_str())
        .bind(update.connector.as_str())
        .bind(Json(update.status))
        .bind(derived.last_error)
        .bind(derived.keep_last_error)
        .bind(derived.last_sync_at)
        .bind(derived.records_total)
        .bind(update.occurred_at)
        .bind(update.event_id.as_uuid())
        .fetch_optional(&self.pool)
        .await
        .map_err(Error::ApplyStatus)?
        .is_some();
        if !applied {
            tracing::debug!("Ignored a status older than the stored one.");
        }
        Ok(applied)
    }
}
