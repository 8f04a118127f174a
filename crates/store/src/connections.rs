//! The `connections` table: one row per connected third-party account.

use std::time::Duration;

use chrono::{DateTime, Utc};
use fleet_events::{AccountInfo, ConnectionId, ConnectionStatus, ConnectorId, EventId, TenantId};
use sqlx::{FromRow, Row as _, postgres::PgRow, types::Json};
use uuid::Uuid;

use crate::{Error, Store, row::decode_column};

/// The columns [`Connection`] is read from, in `SELECT` and `RETURNING` lists.
macro_rules! connection_columns {
    () => {
        "tenant, id, connector, display_name, status, account_id, account_name, last_sync_at, \
         last_error, sync_interval_seconds, records_total, last_status_at, last_status_event, \
         created_at, updated_at, vault_staged, vault_version"
    };
}

/// A tenant's connection to a third-party account, with its latest status.
#[derive(Debug, Clone, PartialEq)]
pub struct Connection {
    /// The tenant that owns it.
    pub tenant: TenantId,
    /// Its id, unique within the tenant.
    pub id: ConnectionId,
    /// The provider it connects to.
    pub connector: ConnectorId,
    /// The name the user gave it (the connector id when a status event
    /// created the row).
    pub display_name: String,
    /// The last status applied, with its details; `Pending` until the first
    /// status event. [`ConnectionStatus::state`] gives the bare state.
    pub status: ConnectionStatus,
    /// The provider account, once validation has identified it.
    pub account: Option<AccountInfo>,
    /// When the last successful sync completed.
    pub last_sync_at: Option<DateTime<Utc>>,
    /// Reason of the last `invalid`, `retrying`, `failed` or `reauth_required`
    /// status, cleared by the next `synced` one. Safe to show the user.
    pub last_error: Option<String>,
    /// How often the schedule syncs it, in whole seconds; `None` when it
    /// syncs only on demand.
    pub sync_interval: Option<Duration>,
    /// Records stored by the last successful sync.
    pub records_total: u64,
    /// `occurred_at` of the status event applied last.
    pub last_status_at: Option<DateTime<Utc>>,
    /// Id of the status event applied last.
    pub last_status_event: Option<EventId>,
    /// When the row was created.
    pub created_at: DateTime<Utc>,
    /// When the row last changed.
    pub updated_at: DateTime<Utc>,
    /// Which version of its credentials secret is in use.
    pub credentials: CredentialsInUse,
}

/// Which version of a connection's credentials secret is in use, as its row
/// records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialsInUse {
    /// This version.
    Version(u64),
    /// None yet: the credentials staged as this version have not been
    /// validated and promoted.
    NotYet(u64),
    /// The connection was set up before credentials were versioned in one
    /// secret: they are in the legacy `active` secret, to be adopted.
    Legacy,
}

impl CredentialsInUse {
    /// From the row's `vault_staged` and `vault_version`.
    pub(crate) fn of(staged: Option<i64>, in_use: Option<i64>) -> Self {
        let version = |v: Option<i64>| v.and_then(|v| u64::try_from(v).ok());
        match (version(staged), version(in_use)) {
            (_, Some(version)) => Self::Version(version),
            (Some(staged), None) => Self::NotYet(staged),
            (None, None) => Self::Legacy,
        }
    }

    /// Reads them from `row`.
    pub(crate) fn from_row(row: &PgRow) -> Result<Self, sqlx::Error> {
        Ok(Self::of(
            row.try_get("vault_staged")?,
            row.try_get("vault_version")?,
        ))
    }
}

/// What [`Store::promote_credentials`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Promotion {
    /// The staged version is in use now, or was already (a redelivered save
    /// step; tokens renewed since are kept). The connection's account and
    /// interval are recorded.
    Promoted,
    /// The connection uses credentials from a newer staged version: nothing
    /// changed.
    Superseded,
    /// Another save request promoted this version already: nothing changed,
    /// and its effects are that request's.
    Duplicate,
    /// The connection does not exist (it was deleted) or never staged this
    /// version: nothing changed.
    Unknown,
    /// The connection was set up before credentials were versioned in one
    /// secret: nothing records what it staged, and nothing changed. Adopt
    /// the credentials, then promote with `adopted`.
    Legacy,
}

impl<'r> FromRow<'r, PgRow> for Connection {
    fn from_row(row: &'r PgRow) -> Result<Self, sqlx::Error> {
        let account_id: Option<String> = row.try_get("account_id")?;
        let account_name: Option<String> = row.try_get("account_name")?;
        Ok(Self {
            tenant: decode_column(row, "tenant", TenantId::parse)?,
            id: decode_column(row, "id", ConnectionId::parse)?,
            connector: decode_column(row, "connector", ConnectorId::parse)?,
            display_name: row.try_get("display_name")?,
            status: row.try_get::<Json<ConnectionStatus>, _>("status")?.0,
            account: account_id
                .zip(account_name)
                .map(|(id, name)| AccountInfo { id, name }),
            last_sync_at: row.try_get("last_sync_at")?,
            last_error: row.try_get("last_error")?,
            sync_interval: decode_column(row, "sync_interval_seconds", |seconds: Option<i32>| {
                seconds
                    .map(|seconds| u64::try_from(seconds).map(Duration::from_secs))
                    .transpose()
            })?,
            records_total: decode_column(row, "records_total", |total: i64| u64::try_from(total))?,
            last_status_at: row.try_get("last_status_at")?,
            last_status_event: row
                .try_get::<Option<Uuid>, _>("last_status_event")?
                .map(EventId::from),
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
            credentials: CredentialsInUse::from_row(row)?,
        })
    }
}

/// What [`Store::create_connection`] records.
#[derive(Debug, Clone, Copy)]
pub struct NewConnection<'a> {
    /// The tenant that owns it.
    pub tenant: &'a TenantId,
    /// Its id, unique within the tenant; the idempotency key.
    pub id: &'a ConnectionId,
    /// The provider it connects to.
    pub connector: &'a ConnectorId,
    /// A name for the user, 1 to 200 characters.
    pub display_name: &'a str,
    /// How often to sync it; see [`Store::set_sync_interval`].
    pub sync_interval: Option<Duration>,
}

/// What [`Store::save_connection`] records: a connection whose credentials
/// were validated.
#[derive(Debug, Clone, Copy)]
pub struct SavedConnection<'a> {
    /// The tenant that owns it.
    pub tenant: &'a TenantId,
    /// Its id, unique within the tenant.
    pub id: &'a ConnectionId,
    /// The provider it connects to.
    pub connector: &'a ConnectorId,
    /// The provider account that validation identified. A new row is
    /// named after it (1 to 200 characters); an existing row keeps its
    /// name.
    pub account: &'a AccountInfo,
    /// How often to sync it; `None` keeps the row's interval (none for a
    /// new row). See [`Store::set_sync_interval`].
    pub sync_interval: Option<Duration>,
}

impl Store {
    /// Records a new connection in state `pending`, or returns the existing
    /// one with the same tenant and id.
    ///
    /// Idempotent: a redelivered request finds the row it created the first
    /// time. An existing row is returned unchanged, whatever `connection`
    /// says about its connector or name.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSyncInterval`], or [`Error::CreateConnection`] (also
    /// for a display name outside 1 to 200 characters).
    #[tracing::instrument(skip_all, fields(tenant = %connection.tenant, connection = %connection.id))]
    pub async fn create_connection(
        &self,
        connection: NewConnection<'_>,
    ) -> Result<Connection, Error> {
        self.insert_connection(connection, None).await
    }

    /// Records a new connection in state `pending` whose credentials the
    /// gateway staged as version `staged` of its credentials secret, or
    /// returns the existing one, as [`create_connection`](Self::create_connection)
    /// does. Only a save request for that version (or an earlier one) can
    /// promote credentials of this connection.
    ///
    /// # Errors
    ///
    /// As [`create_connection`](Self::create_connection).
    #[tracing::instrument(skip_all, fields(tenant = %connection.tenant, connection = %connection.id, staged))]
    pub async fn stage_connection(
        &self,
        connection: NewConnection<'_>,
        staged: u64,
    ) -> Result<Connection, Error> {
        self.insert_connection(connection, Some(staged)).await
    }

    async fn insert_connection(
        &self,
        connection: NewConnection<'_>,
        staged: Option<u64>,
    ) -> Result<Connection, Error> {
        let staged = staged.map(version_column).transpose()?;
        let sync_interval = interval_seconds(connection.sync_interval)?;
        // `DO UPDATE` with a no-op assignment, unlike `DO NOTHING`, returns
        // the existing row, even one a concurrent call has just inserted.
        sqlx::query_as(concat!(
            "INSERT INTO connections (tenant, id, connector, display_name, status, \
                                      sync_interval_seconds, vault_staged) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (tenant, id) DO UPDATE SET id = EXCLUDED.id \
             RETURNING ",
            connection_columns!()
        ))
        .bind(connection.tenant.as_str())
        .bind(connection.id.as_str())
        .bind(connection.connector.as_str())
        .bind(connection.display_name)
        .bind(Json(ConnectionStatus::Pending))
        .bind(sync_interval)
        .bind(staged)
        .fetch_one(&self.pool)
        .await
        .map_err(Error::CreateConnection)
    }

    /// Records a validated connection in one statement: creates its row in
    /// state `pending` when there is none (the gateway or a status event
    /// may have created it already), and sets its provider account and,
    /// when given, its sync interval.
    ///
    /// Idempotent: a redelivered save step writes the same values again.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSyncInterval`], or [`Error::SaveConnection`] (also
    /// for a new row whose account name is outside 1 to 200 characters).
    #[tracing::instrument(skip_all, fields(tenant = %connection.tenant, connection = %connection.id))]
    pub async fn save_connection(&self, connection: SavedConnection<'_>) -> Result<(), Error> {
        let sync_interval = interval_seconds(connection.sync_interval)?;
        // A new row gets its health row, starting with this success, from
        // a trigger; an existing one (a reconnection) starts over healthy,
        // without a recovered event: new credentials, a new history.
        sqlx::query(
            "WITH saved AS ( \
                 INSERT INTO connections AS c (tenant, id, connector, display_name, status, \
                                               sync_interval_seconds, account_id, account_name) \
                 VALUES ($1, $2, $3, $7, $4, $5, $6, $7) \
                 ON CONFLICT (tenant, id) DO UPDATE SET \
                     account_id = EXCLUDED.account_id, \
                     account_name = EXCLUDED.account_name, \
                     sync_interval_seconds = \
                         coalesce(EXCLUDED.sync_interval_seconds, c.sync_interval_seconds), \
                     updated_at = now()) \
             UPDATE connection_health \
             SET last_ok_at = now(), consecutive_failures = 0, degraded_since = NULL, \
                 last_check_result = NULL, access_expires_at = NULL \
             WHERE tenant = $1 AND connection = $2",
        )
        .bind(connection.tenant.as_str())
        .bind(connection.id.as_str())
        .bind(connection.connector.as_str())
        .bind(Json(ConnectionStatus::Pending))
        .bind(sync_interval)
        .bind(&connection.account.id)
        .bind(&connection.account.name)
        .execute(&self.pool)
        .await
        .map_err(Error::SaveConnection)?;
        Ok(())
    }

    /// The connection `id` of `tenant`, if it exists.
    ///
    /// # Errors
    ///
    /// [`Error::GetConnection`].
    #[tracing::instrument(skip_all, fields(tenant = %tenant, connection = %id))]
    pub async fn get_connection(
        &self,
        tenant: &TenantId,
        id: &ConnectionId,
    ) -> Result<Option<Connection>, Error> {
        sqlx::query_as(concat!(
            "SELECT ",
            connection_columns!(),
            " FROM connections WHERE tenant = $1 AND id = $2"
        ))
        .bind(tenant.as_str())
        .bind(id.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(Error::GetConnection)
    }

    /// Every connection of `tenant`, oldest first.
    ///
    /// # Errors
    ///
    /// [`Error::ListConnections`].
    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    pub async fn list_connections(&self, tenant: &TenantId) -> Result<Vec<Connection>, Error> {
        sqlx::query_as(concat!(
            "SELECT ",
            connection_columns!(),
            " FROM connections WHERE tenant = $1 ORDER BY created_at, id"
        ))
        .bind(tenant.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(Error::ListConnections)
    }

    /// Sets how often the connection syncs on schedule; `None` stops
    /// scheduled syncs. Whole seconds count: a fraction is dropped.
    ///
    /// This records the interval for dashboards and for whoever maintains
    /// the schedule; it does not schedule anything itself.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSyncInterval`] below one second or above `i32::MAX`
    /// seconds, [`Error::ConnectionNotFound`] or [`Error::SetSyncInterval`].
    #[tracing::instrument(skip_all, fields(tenant = %tenant, connection = %id))]
    pub async fn set_sync_interval(
        &self,
        tenant: &TenantId,
        id: &ConnectionId,
        interval: Option<Duration>,
    ) -> Result<(), Error> {
        let seconds = interval_seconds(interval)?;
        let result = sqlx::query(
            "UPDATE connections SET sync_interval_seconds = $3, updated_at = now() \
             WHERE tenant = $1 AND id = $2",
        )
        .bind(tenant.as_str())
        .bind(id.as_str())
        .bind(seconds)
        .execute(&self.pool)
        .await
        .map_err(Error::SetSyncInterval)?;
        found(result.rows_affected(), tenant, id)
    }

    /// Deletes the connection with its sync runs, records and cursors.
    /// Returns whether it existed.
    ///
    /// The id is remembered as deleted, so a status event still in flight
    /// (a sync that was running) does not bring the row back through
    /// [`Store::apply_status`].
    ///
    /// # Errors
    ///
    /// [`Error::DeleteConnection`].
    #[tracing::instrument(skip_all, fields(tenant = %tenant, connection = %id))]
    pub async fn delete_connection(
        &self,
        tenant: &TenantId,
        id: &ConnectionId,
    ) -> Result<bool, Error> {
        let deleted: Option<bool> = sqlx::query_scalar(
            "WITH gone AS (DELETE FROM connections WHERE tenant = $1 AND id = $2 RETURNING id), \
                  remembered AS (INSERT INTO deleted_connections (tenant, id) VALUES ($1, $2) \
                                 ON CONFLICT DO NOTHING) \
             SELECT EXISTS (SELECT 1 FROM gone)",
        )
        .bind(tenant.as_str())
        .bind(id.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(Error::DeleteConnection)?;
        Ok(deleted.unwrap_or(false))
    }
}

/// The `sync_interval_seconds` value of `interval`.
/// A credentials version as PostgreSQL stores it.
pub(crate) fn version_column(version: u64) -> Result<i64, Error> {
    i64::try_from(version).map_err(|_| Error::InvalidCredentialsVersion { version })
}

pub(crate) fn interval_seconds(interval: Option<Duration>) -> Result<Option<i32>, Error> {
    interval
        .map(|interval| {
            i32::try_from(interval.as_secs())
                .ok()
                .filter(|&seconds| seconds > 0)
                .ok_or(Error::InvalidSyncInterval { interval })
        })
        .transpose()
}

/// `Ok` when an update touched the row, [`Error::ConnectionNotFound`] otherwise.
fn found(rows_affected: u64, tenant: &TenantId, id: &ConnectionId) -> Result<(), Error> {
    if rows_affected == 0 {
        return Err(Error::ConnectionNotFound {
            tenant: tenant.clone(),
            connection: id.clone(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_intervals_are_stored_in_whole_seconds() {
        assert_eq!(interval_seconds(None).unwrap(), None);
        assert_eq!(
            interval_seconds(Some(Duration::from_millis(90_500))).unwrap(),
            Some(90)
        );
    }

    #[test]
    fn sync_intervals_under_a_second_or_beyond_the_column_are_refused() {
        for interval in [
            Duration::ZERO,
            Duration::from_millis(999),
            Duration::from_secs(1 << 31),
        ] {
            assert!(
                matches!(
                    interval_seconds(Some(interval)),
                    Err(Error::InvalidSyncInterval { .. })
                ),
                "{interval:?}"
            );
        }
    }
}
