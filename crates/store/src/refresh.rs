//! Serialising OAuth token refreshes across the fleet, and their history.
//!
//! Two workers that find the same expired token must not both refresh it:
//! with rotating refresh tokens the slower one would present a token the
//! provider has just invalidated. [`Store::lock_refresh`] takes a
//! transaction-level advisory lock on the connection, so one refresh runs
//! at a time fleet-wide; the holder re-reads the stored credentials (another
//! worker may have refreshed meanwhile), refreshes, writes the new tokens to
//! Vault, and records the outcome, which commits and releases the lock. A
//! lock dropped without an outcome (a panic, a cancelled task) rolls back and
//! is released too.

use chrono::{DateTime, Utc};
use fleet_events::{ConnectionId, TenantId};
use sqlx::{Postgres, Row as _, Transaction};

use crate::row::missing_connection_or;
use crate::{CredentialsInUse, Error, Store};

/// The refresh lock of one connection; see the [module docs](self).
#[derive(Debug)]
#[must_use = "the lock is released by record_success, record_failure or release"]
pub struct RefreshLock {
    tx: Transaction<'static, Postgres>,
    tenant: TenantId,
    connection: ConnectionId,
}

/// A connection's refresh history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshHistory {
    /// The last successful refresh.
    pub last_success_at: Option<DateTime<Utc>>,
    /// The last failed refresh.
    pub last_failure_at: Option<DateTime<Utc>>,
    /// Failures since the last success.
    pub failures: u32,
    /// Distinct UTC days with a failure since the last success.
    pub failure_days: u32,
    /// Why the last refresh failed.
    pub last_error: Option<String>,
}

impl Store {
    /// Waits for, and takes, the refresh lock of a connection.
    ///
    /// # Errors
    ///
    /// [`Error::LockRefresh`] when the database cannot be reached.
    #[tracing::instrument(skip_all, fields(tenant = %tenant, connection = %connection))]
    pub async fn lock_refresh(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
    ) -> Result<RefreshLock, Error> {
        let mut tx = self.pool.begin().await.map_err(Error::LockRefresh)?;
        sqlx::query(
            "SELECT pg_advisory_xact_lock(hashtextextended('refresh/' || $1 || '/' || $2, 0))",
        )
        .bind(tenant.as_str())
        .bind(connection.as_str())
        .execute(&mut *tx)
        .await
        .map_err(Error::LockRefresh)?;
        Ok(RefreshLock {
            tx,
            tenant: tenant.clone(),
            connection: connection.clone(),
        })
    }

    /// The connection's refresh history; `None` before its first refresh.
    ///
    /// # Errors
    ///
    /// [`Error::RefreshHistory`].
    #[tracing::instrument(skip_all, fields(tenant = %tenant, connection = %connection))]
    pub async fn refresh_history(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
    ) -> Result<Option<RefreshHistory>, Error> {
        let row = sqlx::query(
            "SELECT last_success_at, last_failure_at, failures, failure_days, last_error \
             FROM token_refreshes WHERE tenant = $1 AND connection = $2",
        )
        .bind(tenant.as_str())
        .bind(connection.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(Error::RefreshHistory)?;
        row.map(|row| history(&row))
            .transpose()
            .map_err(Error::RefreshHistory)
    }
}

impl RefreshLock {
    /// Which version of the connection's credentials is in use, read under
    /// the lock; `None` when the connection is gone.
    ///
    /// # Errors
    ///
    /// [`Error::Credentials`].
    pub async fn credentials_in_use(&mut self) -> Result<Option<CredentialsInUse>, Error> {
        crate::credentials::in_use(&mut self.tx, &self.tenant, &self.connection).await
    }

    /// Records a successful refresh and releases the lock.
    ///
    /// # Errors
    ///
    /// [`Error::ConnectionNotFound`] when the connection was deleted, or
    /// [`Error::RecordRefresh`].
    pub async fn record_success(mut self) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO token_refreshes (tenant, connection, last_success_at) VALUES ($1, $2, now()) \
             ON CONFLICT (tenant, connection) DO UPDATE SET last_success_at = now(), failures = 0, \
             failure_days = 0, last_error = NULL",
        )
        .bind(self.tenant.as_str())
        .bind(self.connection.as_str())
        .execute(&mut *self.tx)
        .await
        .map_err(|e| missing_connection_or(e, &self.tenant, &self.connection, Error::RecordRefresh))?;
        self.tx.commit().await.map_err(Error::RecordRefresh)
    }

    /// Records a failed refresh with a reason safe to show, releases the
    /// lock, and returns the history including this failure.
    ///
    /// # Errors
    ///
    /// [`Error::ConnectionNotFound`] when the connection was deleted, or
    /// [`Error::RecordRefresh`].
    pub async fn record_failure(mut self, reason: &str) -> Result<RefreshHistory, Error> {
        let row = sqlx::query(
            "INSERT INTO token_refreshes AS r (tenant, connection, last_failure_at, failures, failure_days, last_error) \
             VALUES ($1, $2, now(), 1, 1, $3) \
             ON CONFLICT (tenant, connection) DO UPDATE SET \
               failure_days = r.failure_days + CASE \
                 WHEN r.last_failure_at IS NOT NULL AND r.failures > 0 \
                      AND (r.last_failure_at AT TIME ZONE 'UTC')::date = (now() AT TIME ZONE 'UTC')::date \
                 THEN 0 ELSE 1 END, \
               failures = r.failures + 1, last_failure_at = now(), last_error = $3 \
             RETURNING last_success_at, last_failure_at, failures, failure_days, last_error",
        )
        .bind(self.tenant.as_str())
        .bind(self.connection.as_str())
        .bind(reason)
        .fetch_one(&mut *self.tx)
        .await
        .map_err(|e| missing_connection_or(e, &self.tenant, &self.connection, Error::RecordRefresh))?;
        let history = history(&row).map_err(Error::RecordRefresh)?;
        self.tx.commit().await.map_err(Error::RecordRefresh)?;
        Ok(history)
    }

    /// Releases the lock without recording anything (another worker had
    /// already refreshed).
    ///
    /// # Errors
    ///
    /// [`Error::RecordRefresh`] when the database connection broke; the lock
    /// is released with it.
    pub async fn release(self) -> Result<(), Error> {
        self.tx.rollback().await.map_err(Error::RecordRefresh)
    }
}

fn history(row: &sqlx::postgres::PgRow) -> Result<RefreshHistory, sqlx::Error> {
    let count = |name: &str| -> Result<u32, sqlx::Error> {
        let value: i32 = row.try_get(name)?;
        Ok(u32::try_from(value).unwrap_or(0))
    };
    Ok(RefreshHistory {
        last_success_at: row.try_get("last_success_at")?,
        last_failure_at: row.try_get("last_failure_at")?,
        failures: count("failures")?,
        failure_days: count("failure_days")?,
        last_error: row.try_get("last_error")?,
    })
}
