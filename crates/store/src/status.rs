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
    /// Its provider: a status that names another provider than the
    /// connection's is not about this connection ([`Applied::Unknown`]).
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

/// What [`Store::apply_status`] did with a status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The connection's row now shows it.
    Applied,
    /// The row already shows this status or a newer one (a redelivery, or
    /// an event overtaken by a newer one).
    Stale,
    /// The connection was deleted by its user; statuses still in flight for
    /// it change nothing.
    Deleted,
    /// No connection of that tenant has this id and provider, and none had:
    /// a status creates no connection.
    Unknown,
}

impl Store {
    /// Stores a published status, if it is newer than the one stored.
    ///
    /// Events are ordered by `(occurred_at, event_id)`, where `occurred_at`
    /// counts as at most the time the status is applied: a publisher's clock
    /// (or a forged event) far in the future could otherwise freeze the
    /// connection's state until that time. A redelivered event, or one
    /// overtaken by a newer event, changes nothing ([`Applied::Stale`]), so
    /// the status worker can ack it either way. A status never creates a
    /// connection: the gateway records a connection before it publishes
    /// anything about it, and the save step records the ones made without
    /// the gateway ([`Applied::Unknown`], [`Applied::Deleted`]).
    ///
    /// Besides `status`, it sets `last_error` to the reason of an `invalid`,
    /// `retrying`, `failed`, `reauth_required` or `partial` status and
    /// clears it on `synced`, which also sets `last_sync_at` and
    /// `records_total`.
    ///
    /// It is [`Store::apply_statuses`] with a batch of one: one statement,
    /// which locks the row before it compares, so concurrent status writers
    /// need no other lock.
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
    pub async fn apply_status(&self, update: StatusUpdate<'_>) -> Result<Applied, Error> {
        let derived = Derived::of(update.status);
        // PostgreSQL text and jsonb cannot hold NUL; a provider's message
        // may. The status is stored with each NUL replaced, not lost.
        let status = crate::row::without_nul(
            serde_json::to_value(update.status)
                .map_err(|e| Error::ApplyStatus(sqlx::Error::Encode(Box::new(e))))?,
        );
        let last_error = derived
            .last_error
            .map(|reason| crate::row::storable_text(reason).into_owned());
        let applied = sqlx::query_scalar::<_, bool>(
            "UPDATE connections AS c SET \
                 status = $3, \
                 last_error = CASE WHEN $5 THEN c.last_error ELSE $4 END, \
                 last_sync_at = coalesce($6, c.last_sync_at), \
                 records_total = coalesce($7, c.records_total), \
                 last_status_at = least($8, now()), \
                 last_status_event = $9, \
                 updated_at = now() \
             WHERE c.tenant = $1 AND c.id = $2 AND c.connector = $10 \
               AND (c.last_status_at IS NULL \
                    OR (c.last_status_at, c.last_status_event) < (least($8, now()), $9)) \
             RETURNING true",
        )
        .bind(update.tenant.as_str())
        .bind(update.connection.as_str())
        .bind(Json(status))
        .bind(last_error)
        .bind(derived.keep_last_error)
        .bind(derived.last_sync_at)
        .bind(derived.records_total)
        .bind(update.occurred_at)
        .bind(update.event_id.as_uuid())
        .bind(update.connector.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(Error::ApplyStatus)?
        .is_some();
        if applied {
            return Ok(Applied::Applied);
        }
        let (exists, deleted): (bool, bool) = sqlx::query_as(
            "SELECT EXISTS (SELECT 1 FROM connections \
                            WHERE tenant = $1 AND id = $2 AND connector = $3), \
                    EXISTS (SELECT 1 FROM deleted_connections WHERE tenant = $1 AND id = $2)",
        )
        .bind(update.tenant.as_str())
        .bind(update.connection.as_str())
        .bind(update.connector.as_str())
        .fetch_one(&self.pool)
        .await
        .map_err(Error::ApplyStatus)?;
        Ok(if exists {
            tracing::debug!("Ignored a status older than the stored one.");
            Applied::Stale
        } else if deleted {
            tracing::debug!("Ignored a status of a deleted connection.");
            Applied::Deleted
        } else {
            tracing::warn!(connector = %update.connector, "A status names no known connection.");
            Applied::Unknown
        })
    }

    /// Stores a batch of published statuses in one statement, as
    /// [`Store::apply_status`] would one after the other in the order of
    /// their `(occurred_at, event_id)`; returns what happened to each, in
    /// the batch's order. PostgreSQL takes longer to plan this statement
    /// than to plan [`Store::apply_status`]'s, so a batch of one is stored
    /// by that.
    ///
    /// Per connection, the row shows the newest status of those newer than
    /// the stored one; `last_error` comes from the newest of them that
    /// sets or clears it, and `last_sync_at` and `records_total` from the
    /// newest that completed a sync. The statement locks the batch's rows
    /// in key order before reading them, so concurrent batches neither
    /// deadlock nor apply an order decided on a stale read.
    ///
    /// # Errors
    ///
    /// [`Error::ApplyStatus`]; no status of the batch is stored then.
    #[tracing::instrument(skip_all, fields(statuses = updates.len()))]
    pub async fn apply_statuses(
        &self,
        updates: &[StatusUpdate<'_>],
    ) -> Result<Vec<Applied>, Error> {
        match updates {
            [] => return Ok(Vec::new()),
            [update] => return Ok(vec![self.apply_status(*update).await?]),
            _ => {}
        }
        let mut columns = Columns::with_capacity(updates.len());
        for update in updates {
            columns.push(update)?;
        }
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "WITH batch AS ( \
                 SELECT b.*, least(b.occurred_at, now()) AS at \
                 FROM unnest($1::text[], $2::text[], $3::text[], $4::uuid[], \
                             $5::timestamptz[], $6::text[], $7::text[], $8::bool[], \
                             $9::timestamptz[], $10::bigint[]) \
                      WITH ORDINALITY AS b(tenant, id, connector, event_id, occurred_at, \
                                           status, last_error, keep_last_error, \
                                           last_sync_at, records_total, ord)), \
             locked AS ( \
                 SELECT c.tenant, c.id, c.connector, c.last_status_at, c.last_status_event \
                 FROM connections c \
                 WHERE (c.tenant, c.id, c.connector) IN \
                       (SELECT tenant, id, connector FROM batch) \
                 ORDER BY c.tenant, c.id \
                 FOR UPDATE), \
             fresh AS ( \
                 SELECT b.* FROM batch b \
                 JOIN locked l \
                   ON l.tenant = b.tenant AND l.id = b.id AND l.connector = b.connector \
                 WHERE l.last_status_at IS NULL \
                    OR (l.last_status_at, l.last_status_event) < (b.at, b.event_id)), \
             latest AS ( \
                 SELECT DISTINCT ON (tenant, id) tenant, id, status, at, event_id \
                 FROM fresh ORDER BY tenant, id, at DESC, event_id DESC), \
             error AS ( \
                 SELECT DISTINCT ON (tenant, id) tenant, id, last_error \
                 FROM fresh WHERE NOT keep_last_error \
                 ORDER BY tenant, id, at DESC, event_id DESC), \
             completed AS ( \
                 SELECT DISTINCT ON (tenant, id) tenant, id, last_sync_at, records_total \
                 FROM fresh WHERE last_sync_at IS NOT NULL \
                 ORDER BY tenant, id, at DESC, event_id DESC), \
             updated AS ( \
                 UPDATE connections AS c SET \
                     status = l.status::jsonb, \
                     last_error = CASE WHEN e.id IS NULL THEN c.last_error \
                                       ELSE e.last_error END, \
                     last_sync_at = coalesce(s.last_sync_at, c.last_sync_at), \
                     records_total = coalesce(s.records_total, c.records_total), \
                     last_status_at = l.at, \
                     last_status_event = l.event_id, \
                     updated_at = now() \
                 FROM latest l \
                 LEFT JOIN error e ON e.tenant = l.tenant AND e.id = l.id \
                 LEFT JOIN completed s ON s.tenant = l.tenant AND s.id = l.id \
                 WHERE c.tenant = l.tenant AND c.id = l.id \
                 RETURNING c.id) \
             SELECT b.ord, \
                    CASE WHEN EXISTS (SELECT 1 FROM fresh f WHERE f.ord = b.ord) \
                              THEN 'applied' \
                         WHEN EXISTS (SELECT 1 FROM locked l \
                                      WHERE l.tenant = b.tenant AND l.id = b.id \
                                        AND l.connector = b.connector) \
                              THEN 'stale' \
                         WHEN EXISTS (SELECT 1 FROM deleted_connections d \
                                      WHERE d.tenant = b.tenant AND d.id = b.id) \
                              THEN 'deleted' \
                         ELSE 'unknown' END \
             FROM batch b ORDER BY b.ord",
        )
        .bind(columns.tenant)
        .bind(columns.id)
        .bind(columns.connector)
        .bind(columns.event_id)
        .bind(columns.occurred_at)
        .bind(columns.status)
        .bind(columns.last_error)
        .bind(columns.keep_last_error)
        .bind(columns.last_sync_at)
        .bind(columns.records_total)
        .fetch_all(&self.pool)
        .await
        .map_err(Error::ApplyStatus)?;
        let outcomes = rows
            .into_iter()
            .zip(updates)
            .map(|((_, outcome), update)| match outcome.as_str() {
                "applied" => Applied::Applied,
                "stale" => {
                    tracing::debug!(connection = %update.connection, "Ignored a status older than the stored one.");
                    Applied::Stale
                }
                "deleted" => {
                    tracing::debug!(connection = %update.connection, "Ignored a status of a deleted connection.");
                    Applied::Deleted
                }
                _ => {
                    tracing::warn!(
                        tenant = %update.tenant,
                        connection = %update.connection,
                        connector = %update.connector,
                        "A status names no known connection."
                    );
                    Applied::Unknown
                }
            })
            .collect();
        Ok(outcomes)
    }
}

/// A batch of statuses as the columns [`Store::apply_statuses`] binds.
struct Columns {
    tenant: Vec<String>,
    id: Vec<String>,
    connector: Vec<String>,
    event_id: Vec<uuid::Uuid>,
    occurred_at: Vec<DateTime<Utc>>,
    status: Vec<String>,
    last_error: Vec<Option<String>>,
    keep_last_error: Vec<bool>,
    last_sync_at: Vec<Option<DateTime<Utc>>>,
    records_total: Vec<Option<i64>>,
}

impl Columns {
    fn with_capacity(n: usize) -> Self {
        Self {
            tenant: Vec::with_capacity(n),
            id: Vec::with_capacity(n),
            connector: Vec::with_capacity(n),
            event_id: Vec::with_capacity(n),
            occurred_at: Vec::with_capacity(n),
            status: Vec::with_capacity(n),
            last_error: Vec::with_capacity(n),
            keep_last_error: Vec::with_capacity(n),
            last_sync_at: Vec::with_capacity(n),
            records_total: Vec::with_capacity(n),
        }
    }

    fn push(&mut self, update: &StatusUpdate<'_>) -> Result<(), Error> {
        let derived = Derived::of(update.status);
        // PostgreSQL text and jsonb cannot hold NUL; a provider's message
        // may. The status is stored with each NUL replaced, not lost.
        let status = crate::row::without_nul(
            serde_json::to_value(update.status)
                .map_err(|e| Error::ApplyStatus(sqlx::Error::Encode(Box::new(e))))?,
        );
        self.tenant.push(update.tenant.as_str().to_owned());
        self.id.push(update.connection.as_str().to_owned());
        self.connector.push(update.connector.as_str().to_owned());
        self.event_id.push(update.event_id.as_uuid());
        self.occurred_at.push(update.occurred_at);
        self.status.push(status.to_string());
        self.last_error.push(
            derived
                .last_error
                .map(|reason| crate::row::storable_text(reason).into_owned()),
        );
        self.keep_last_error.push(derived.keep_last_error);
        self.last_sync_at.push(derived.last_sync_at);
        self.records_total.push(derived.records_total);
        Ok(())
    }
}
