//! The `connection_health` table: how a connection's provider calls go,
//! between and across syncs.
//!
//! Writers: the sync step (a run that ends `synced` or `partial` is a
//! success, through [`Store::complete_sync_run`]; one that gives up or finds
//! the grant revoked is a failure), the save step (a validation that
//! succeeded), and the health checker, which claims connections whose last
//! provider call is older than its interval ([`Store::claim_health_checks`])
//! and records how the check went.
//!
//! Failures in a row make a connection *degraded* once they reach a
//! threshold; [`Store::record_failure`] says when a failure is the one that
//! did, and [`Store::record_success`] when a success ended a degraded
//! episode, so the caller emits one event per change.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use fleet_events::{ConnectionId, ConnectorId, TenantId};
use sqlx::{FromRow, Row as _, postgres::PgRow};

use crate::row::{UnexpectedValue, decode_column, storable_text};
use crate::{Error, RefreshHistory, Store, SyncRun};

/// How the last health check that asked the provider went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckResult {
    /// The provider accepted the credentials.
    Ok,
    /// The provider could not be asked or failed to answer.
    Failed,
    /// The provider refused the credentials, also after a token renewal.
    ReauthRequired,
}

impl CheckResult {
    /// The name in the API and the `last_check_result` column.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Failed => "failed",
            Self::ReauthRequired => "reauth_required",
        }
    }

    fn parse(name: &str) -> Result<Self, UnexpectedValue> {
        [Self::Ok, Self::Failed, Self::ReauthRequired]
            .into_iter()
            .find(|result| result.as_str() == name)
            .ok_or_else(|| UnexpectedValue(name.to_owned()))
    }
}

/// A connection's health as stored.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnectionHealth {
    /// The last provider call with the connection's credentials that
    /// succeeded: a validation, a sync run, a health check.
    pub last_ok_at: Option<DateTime<Utc>>,
    /// Failed sync runs and health checks since the last success.
    pub consecutive_failures: u32,
    /// When the last failure happened.
    pub last_failure_at: Option<DateTime<Utc>>,
    /// Why, safe to show the user.
    pub last_failure: Option<String>,
    /// When the last health check started.
    pub last_check_at: Option<DateTime<Utc>>,
    /// How it ended.
    pub last_check_result: Option<CheckResult>,
    /// When the access token expires, as a worker last read it; `None`
    /// for credentials that do not expire or were not read yet.
    pub token_expires_at: Option<DateTime<Utc>>,
    /// Since when the connection is degraded; `None` while healthy.
    pub degraded_since: Option<DateTime<Utc>>,
}

/// Everything the health endpoint shows of one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthReport {
    /// The stored health.
    pub health: ConnectionHealth,
    /// Token renewals: last success and failure, failures since.
    pub refresh: Option<RefreshHistory>,
    /// The most recent sync runs, newest first.
    pub recent_runs: Vec<SyncRun>,
    /// When the schedule is expected to sync it next: an interval after
    /// its last scheduled run (or its creation); `None` without schedule.
    pub next_sync_at: Option<DateTime<Utc>>,
}

/// A connection whose health check a worker claimed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueCheck {
    /// Its tenant.
    pub tenant: TenantId,
    /// The connection.
    pub connection: ConnectionId,
    /// Its provider.
    pub connector: ConnectorId,
}

/// A failure that made the connection degraded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Degraded {
    /// Failures in a row, this one included.
    pub consecutive_failures: u32,
    /// Since when (the first failure of the row is earlier).
    pub since: DateTime<Utc>,
}

/// Where a failure was seen, and what the health check's record says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureSource {
    /// A sync run that gave up or found the grant revoked.
    SyncRun,
    /// A health check that ended [`CheckResult::Failed`] or
    /// [`CheckResult::ReauthRequired`].
    Check(CheckResult),
}

/// The most sync runs [`Store::health_report`] returns.
pub const RECENT_RUNS: i64 = 5;

impl<'r> FromRow<'r, PgRow> for ConnectionHealth {
    fn from_row(row: &'r PgRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            last_ok_at: row.try_get("last_ok_at")?,
            consecutive_failures: decode_column(row, "consecutive_failures", |n: i32| {
                u32::try_from(n)
            })?,
            last_failure_at: row.try_get("last_failure_at")?,
            last_failure: row.try_get("last_failure")?,
            last_check_at: row.try_get("last_check_at")?,
            last_check_result: decode_column(row, "last_check_result", |name: Option<&str>| {
                name.map(CheckResult::parse).transpose()
            })?,
            token_expires_at: row.try_get("access_expires_at")?,
            degraded_since: row.try_get("degraded_since")?,
        })
    }
}

/// The columns [`ConnectionHealth`] is read from, of `connection_health h`.
macro_rules! health_columns {
    () => {
        "h.last_ok_at, h.consecutive_failures, h.last_failure_at, h.last_failure, \
         h.last_check_at, h.last_check_result, h.access_expires_at, h.degraded_since"
    };
}

impl Store {
    /// The health of every connection of `tenant` (or only of `only`), by
    /// connection id.
    ///
    /// # Errors
    ///
    /// [`Error::Health`].
    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    pub async fn tenant_health(
        &self,
        tenant: &TenantId,
        only: Option<&ConnectionId>,
    ) -> Result<HashMap<ConnectionId, ConnectionHealth>, Error> {
        let rows = sqlx::query(concat!(
            "SELECT h.connection, ",
            health_columns!(),
            " FROM connection_health h \
             WHERE h.tenant = $1 AND ($2::text IS NULL OR h.connection = $2)"
        ))
        .bind(tenant.as_str())
        .bind(only.map(ConnectionId::as_str))
        .fetch_all(&self.pool)
        .await
        .map_err(|source| Error::Health {
            action: "read",
            source,
        })?;
        rows.iter()
            .map(|row| {
                let id = decode_column(row, "connection", ConnectionId::parse)?;
                Ok((id, ConnectionHealth::from_row(row)?))
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(|source| Error::Health {
                action: "read",
                source,
            })
    }

    /// The connection's health, its last [`RECENT_RUNS`] sync runs, its
    /// token renewals and its next expected scheduled sync; `None` when the
    /// connection does not exist.
    ///
    /// # Errors
    ///
    /// [`Error::Health`].
    #[tracing::instrument(skip_all, fields(tenant = %tenant, connection = %connection))]
    pub async fn health_report(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
    ) -> Result<Option<HealthReport>, Error> {
        let read = |source| Error::Health {
            action: "read",
            source,
        };
        let row = sqlx::query(concat!(
            "SELECT ",
            health_columns!(),
            ", r.last_success_at, r.last_failure_at AS refresh_failure_at, \
                    r.failures, r.failure_days, r.last_error, \
                    CASE WHEN c.sync_interval_seconds IS NULL THEN NULL ELSE \
                        coalesce((SELECT max(s.started_at) FROM sync_runs s \
                                  WHERE s.tenant = c.tenant AND s.connection = c.id \
                                    AND s.trigger = 'scheduled'), c.created_at) \
                        + make_interval(secs => c.sync_interval_seconds) END AS next_sync_at \
             FROM connections c \
             JOIN connection_health h ON h.tenant = c.tenant AND h.connection = c.id \
             LEFT JOIN token_refreshes r ON r.tenant = c.tenant AND r.connection = c.id \
             WHERE c.tenant = $1 AND c.id = $2"
        ))
        .bind(tenant.as_str())
        .bind(connection.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(read)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let health = ConnectionHealth::from_row(&row).map_err(read)?;
        let failures: Option<i32> = row.try_get("failures").map_err(read)?;
        let refresh = match failures {
            None => None,
            Some(failures) => Some(RefreshHistory {
                last_success_at: row.try_get("last_success_at").map_err(read)?,
                last_failure_at: row.try_get("refresh_failure_at").map_err(read)?,
                failures: failures.unsigned_abs(),
                failure_days: row
                    .try_get::<i32, _>("failure_days")
                    .map_err(read)?
                    .unsigned_abs(),
                last_error: row.try_get("last_error").map_err(read)?,
            }),
        };
        let next_sync_at = row.try_get("next_sync_at").map_err(read)?;
        let recent_runs = sqlx::query_as(
            "SELECT id, tenant, connection, trigger, started_at, finished_at, records, pages, \
                    added, updated, deleted, outcome, error \
             FROM sync_runs WHERE tenant = $1 AND connection = $2 \
             ORDER BY started_at DESC, id DESC LIMIT $3",
        )
        .bind(tenant.as_str())
        .bind(connection.as_str())
        .bind(RECENT_RUNS)
        .fetch_all(&self.pool)
        .await
        .map_err(read)?;
        Ok(Some(HealthReport {
            health,
            refresh,
            recent_runs,
            next_sync_at,
        }))
    }

    /// Records a provider call that succeeded: clears the failures in a
    /// row, and, from a health check, its result. Returns since when the
    /// connection had been degraded, if it was: this success recovered it.
    ///
    /// # Errors
    ///
    /// [`Error::Health`].
    #[tracing::instrument(skip_all, fields(tenant = %tenant, connection = %connection))]
    pub async fn record_success(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        from_check: bool,
    ) -> Result<Option<DateTime<Utc>>, Error> {
        sqlx::query_scalar(
            "WITH before AS ( \
                 SELECT degraded_since FROM connection_health \
                 WHERE tenant = $1 AND connection = $2 FOR UPDATE), \
             healthy AS ( \
                 UPDATE connection_health SET last_ok_at = now(), consecutive_failures = 0, \
                     degraded_since = NULL, \
                     last_check_result = CASE WHEN $3 THEN 'ok' ELSE last_check_result END \
                 WHERE tenant = $1 AND connection = $2) \
             SELECT degraded_since FROM before",
        )
        .bind(tenant.as_str())
        .bind(connection.as_str())
        .bind(from_check)
        .fetch_optional(&self.pool)
        .await
        .map(Option::flatten)
        .map_err(|source| Error::Health {
            action: "record a success in",
            source,
        })
    }

    /// Records a failed provider call, with `reason` (safe to show). When
    /// it brings the failures in a row to `degraded_after` (at least 1)
    /// and the connection was not degraded yet, returns the change.
    ///
    /// # Errors
    ///
    /// [`Error::Health`].
    #[tracing::instrument(skip_all, fields(tenant = %tenant, connection = %connection))]
    pub async fn record_failure(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        reason: &str,
        source: FailureSource,
        degraded_after: u32,
    ) -> Result<Option<Degraded>, Error> {
        let check = match source {
            FailureSource::SyncRun => None,
            FailureSource::Check(result) => Some(result.as_str()),
        };
        // The old value is read under the row's lock, so of two failures
        // at once exactly one sees the connection become degraded.
        let row = sqlx::query(
            "WITH old AS ( \
                 SELECT degraded_since FROM connection_health \
                 WHERE tenant = $1 AND connection = $2 FOR UPDATE) \
             UPDATE connection_health h SET \
                 consecutive_failures = h.consecutive_failures + 1, \
                 last_failure_at = now(), last_failure = $3, \
                 last_check_result = coalesce($4, h.last_check_result), \
                 degraded_since = CASE \
                     WHEN h.degraded_since IS NULL AND h.consecutive_failures + 1 >= $5 \
                     THEN now() ELSE h.degraded_since END \
             FROM old WHERE h.tenant = $1 AND h.connection = $2 \
             RETURNING h.consecutive_failures, h.degraded_since, \
                       (old.degraded_since IS NULL AND h.degraded_since IS NOT NULL) \
                           AS now_degraded",
        )
        .bind(tenant.as_str())
        .bind(connection.as_str())
        .bind(storable_text(reason))
        .bind(check)
        .bind(i32::try_from(degraded_after.max(1)).unwrap_or(i32::MAX))
        .fetch_optional(&self.pool)
        .await
        .map_err(|source| Error::Health {
            action: "record a failure in",
            source,
        })?;
        let Some(row) = row else {
            return Ok(None);
        };
        let degraded = |source| Error::Health {
            action: "record a failure in",
            source,
        };
        let now_degraded: Option<bool> = row.try_get("now_degraded").map_err(degraded)?;
        if now_degraded != Some(true) {
            return Ok(None);
        }
        Ok(Some(Degraded {
            consecutive_failures: row
                .try_get::<i32, _>("consecutive_failures")
                .map_err(degraded)?
                .unsigned_abs(),
            since: row.try_get("degraded_since").map_err(degraded)?,
        }))
    }

    /// Notes when the connection's access token expires, as just read.
    ///
    /// # Errors
    ///
    /// [`Error::Health`].
    #[tracing::instrument(skip_all, fields(tenant = %tenant, connection = %connection))]
    pub async fn note_token_expiry(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<(), Error> {
        sqlx::query(
            "UPDATE connection_health SET access_expires_at = $3 \
             WHERE tenant = $1 AND connection = $2 \
               AND access_expires_at IS DISTINCT FROM $3",
        )
        .bind(tenant.as_str())
        .bind(connection.as_str())
        .bind(expires_at)
        .execute(&self.pool)
        .await
        .map_err(|source| Error::Health {
            action: "record the token expiry in",
            source,
        })?;
        Ok(())
    }

    /// Claims up to `limit` connections whose health check is due, oldest
    /// first, marking their check started, so no other worker claims them
    /// for another `every`.
    ///
    /// A check is due for a connection that is `synced` or `partial`, has
    /// no sync running or queued (or only one whose hold lapsed), and whose
    /// last success and last check
    /// (its creation, without either) are both `every` old. A connection
    /// whose syncs succeed more often than `every` is never checked: its
    /// syncs are the checks.
    ///
    /// # Errors
    ///
    /// [`Error::Health`].
    #[tracing::instrument(skip_all)]
    pub async fn claim_health_checks(
        &self,
        every: Duration,
        limit: u32,
    ) -> Result<Vec<DueCheck>, Error> {
        let rows = sqlx::query(
            "WITH due AS ( \
                 SELECT h.tenant, h.connection, c.connector FROM connection_health h \
                 JOIN connections c ON c.tenant = h.tenant AND c.id = h.connection \
                 WHERE c.state IN ('synced', 'partial') \
                   AND (c.sync_slot_run IS NULL OR c.sync_slot_until <= now()) \
                   AND coalesce(greatest(h.last_ok_at, h.last_check_at), c.created_at) \
                       <= now() - make_interval(secs => $1) \
                 ORDER BY coalesce(greatest(h.last_ok_at, h.last_check_at), c.created_at) \
                 LIMIT $2 FOR UPDATE OF h SKIP LOCKED) \
             UPDATE connection_health h SET last_check_at = now() \
             FROM due WHERE h.tenant = due.tenant AND h.connection = due.connection \
             RETURNING h.tenant, h.connection, due.connector",
        )
        .bind(every.as_secs_f64())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(|source| Error::Health {
            action: "claim checks in",
            source,
        })?;
        rows.iter()
            .map(|row| {
                Ok(DueCheck {
                    tenant: decode_column(row, "tenant", TenantId::parse)?,
                    connection: decode_column(row, "connection", ConnectionId::parse)?,
                    connector: decode_column(row, "connector", ConnectorId::parse)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(|source| Error::Health {
                action: "claim checks in",
                source,
            })
    }
}
