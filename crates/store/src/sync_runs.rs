//! The `sync_runs` table: one row per sync, keyed by its correlation id.

use chrono::{DateTime, Utc};
use fleet_events::{ConnectionId, CorrelationId, SyncTrigger, TenantId};
use sqlx::{FromRow, Row as _, postgres::PgRow};
use uuid::Uuid;

use crate::{
    Error, Store,
    row::{UnexpectedValue, decode_column, missing_connection_or, to_bigint},
    sync_slots::{SyncLease, attempt_column},
};

/// One sync of a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncRun {
    /// The correlation id of the sync's events.
    pub id: CorrelationId,
    /// The tenant that owns the connection.
    pub tenant: TenantId,
    /// The connection synced.
    pub connection: ConnectionId,
    /// What started it.
    pub trigger: SyncTrigger,
    /// When it was recorded as started.
    pub started_at: DateTime<Utc>,
    /// When it was recorded as finished; `None` while it runs.
    pub finished_at: Option<DateTime<Utc>>,
    /// Records read from the provider, as reported when it finished (0
    /// while it runs).
    pub records: u64,
    /// Pages fetched, as reported when it finished (0 while it runs).
    pub pages: u64,
    /// Records it stored for the first time (or again after a deletion).
    pub added: u64,
    /// Records whose content it changed.
    pub updated: u64,
    /// Records it marked deleted.
    pub deleted: u64,
    /// How it ended; `None` while it runs.
    pub result: Option<SyncResult>,
}

/// How a sync run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncResult {
    /// Every stream was synced completely.
    Succeeded,
    /// Every stream was read, but the run cannot promise that nothing is
    /// missing (the provider changed in a way paging could not follow, a
    /// provider object could not be read, or the run reached its budget
    /// and continues in the next one).
    Partial {
        /// Why, safe to show the user.
        reason: String,
    },
    /// The run gave up.
    Failed {
        /// Why, safe to show the user; never a secret.
        error: String,
    },
}

/// What [`Store::complete_sync_run`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Completed {
    /// The connection's live records now, in all streams.
    pub records_total: u64,
    /// Since when the connection had been degraded, when this run's
    /// success ended that (see [`Store::record_failure`]).
    pub recovered_from: Option<DateTime<Utc>>,
}

/// What [`Store::finish_sync_run`] records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncOutcome {
    /// Records read from the provider by the run.
    pub records: u64,
    /// Pages fetched by the run.
    pub pages: u64,
    /// Records added by the run.
    pub added: u64,
    /// Records updated by the run.
    pub updated: u64,
    /// Records marked deleted by the run.
    pub deleted: u64,
    /// How it ended.
    pub result: SyncResult,
}

impl<'r> FromRow<'r, PgRow> for SyncRun {
    fn from_row(row: &'r PgRow) -> Result<Self, sqlx::Error> {
        let error: Option<String> = row.try_get("error")?;
        Ok(Self {
            id: CorrelationId::from(row.try_get::<Uuid, _>("id")?),
            tenant: decode_column(row, "tenant", TenantId::parse)?,
            connection: decode_column(row, "connection", ConnectionId::parse)?,
            trigger: decode_column(row, "trigger", parse_trigger)?,
            started_at: row.try_get("started_at")?,
            finished_at: row.try_get("finished_at")?,
            records: decode_column(row, "records", |records: i64| u64::try_from(records))?,
            pages: decode_column(row, "pages", |pages: i64| u64::try_from(pages))?,
            added: decode_column(row, "added", |n: i64| u64::try_from(n))?,
            updated: decode_column(row, "updated", |n: i64| u64::try_from(n))?,
            deleted: decode_column(row, "deleted", |n: i64| u64::try_from(n))?,
            result: decode_column(row, "outcome", |outcome: &str| match outcome {
                "running" => Ok(None),
                "succeeded" => Ok(Some(SyncResult::Succeeded)),
                "partial" => Ok(Some(SyncResult::Partial {
                    reason: error.unwrap_or_default(),
                })),
                "failed" => Ok(Some(SyncResult::Failed {
                    error: error.unwrap_or_default(),
                })),
                other => Err(UnexpectedValue(other.to_owned())),
            })?,
        })
    }
}

impl Store {
    /// Records that a sync run started. Idempotent: a redelivered sync
    /// request with the same run id leaves the first record as it is.
    ///
    /// # Errors
    ///
    /// [`Error::ConnectionNotFound`] when the connection has no row, or
    /// [`Error::StartSyncRun`].
    #[tracing::instrument(skip_all, fields(tenant = %tenant, connection = %connection, run = %run))]
    pub async fn start_sync_run(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        run: CorrelationId,
        trigger: SyncTrigger,
    ) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO sync_runs (id, tenant, connection, trigger) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(run.as_uuid())
        .bind(tenant.as_str())
        .bind(connection.as_str())
        .bind(trigger_name(trigger))
        .execute(&self.pool)
        .await
        .map_err(|source| missing_connection_or(source, tenant, connection, Error::StartSyncRun))?;
        Ok(())
    }

    /// Records how a running sync run ended; returns whether it did.
    ///
    /// Only the first outcome counts: for a run already finished (a
    /// redelivered completion) or unknown, it changes nothing and returns
    /// `false`.
    ///
    /// # Errors
    ///
    /// [`Error::FinishSyncRun`].
    #[tracing::instrument(skip_all, fields(tenant = %tenant, connection = %connection, run = %run))]
    pub async fn finish_sync_run(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        run: CorrelationId,
        outcome: &SyncOutcome,
    ) -> Result<bool, Error> {
        let (name, error) = outcome.result.columns();
        let result = sqlx::query(
            "UPDATE sync_runs \
             SET finished_at = now(), records = $4, pages = $5, outcome = $6, error = $7, \
                 added = $8, updated = $9, deleted = $10 \
             WHERE id = $1 AND tenant = $2 AND connection = $3 AND outcome = 'running'",
        )
        .bind(run.as_uuid())
        .bind(tenant.as_str())
        .bind(connection.as_str())
        .bind(to_bigint(outcome.records))
        .bind(to_bigint(outcome.pages))
        .bind(name)
        .bind(error)
        .bind(to_bigint(outcome.added))
        .bind(to_bigint(outcome.updated))
        .bind(to_bigint(outcome.deleted))
        .execute(&self.pool)
        .await
        .map_err(Error::FinishSyncRun)?;
        Ok(result.rows_affected() > 0)
    }

    /// Completes a run that read every stream in one statement: records
    /// its outcome (as [`Store::finish_sync_run`] does), sets the
    /// connection's `records_total` to its live records, records the
    /// provider's success in the connection's health
    /// ([`Store::record_success`]) with when its access token expires
    /// (`None` for credentials that do not), and returns the count and
    /// whether the connection was degraded until then.
    ///
    /// Redelivered, it leaves the run's first outcome and the health as
    /// they are.
    ///
    /// With `release`, it frees the connection's sync slot in the same
    /// statement, as [`Store::release_sync`] would; and when a later
    /// delivery of the same run has taken the slot over, or another
    /// delivery already ended the run (and this one does not hold the slot),
    /// it changes nothing and fails with [`Error::SyncSlotLost`]: the run's
    /// outcome is that delivery's. A repeat by the delivery that completed
    /// the run (a retry after a lost answer) succeeds and changes nothing.
    ///
    /// # Errors
    ///
    /// [`Error::SyncSlotLost`], or [`Error::CompleteSyncRun`]; nothing
    /// changed then.
    #[tracing::instrument(skip_all, fields(tenant = %tenant, connection = %connection, run = %run))]
    pub async fn complete_sync_run(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        run: CorrelationId,
        outcome: &SyncOutcome,
        access_expires_at: Option<DateTime<Utc>>,
        release: Option<SyncLease>,
    ) -> Result<Completed, Error> {
        let (name, error) = outcome.result.columns();
        // Data-modifying WITH clauses run whether or not the SELECT reads
        // them; every part sees the rows as they were before the statement.
        let row = sqlx::query(
            "WITH slot AS ( \
                 SELECT sync_slot_run, sync_slot_attempt FROM connections \
                 WHERE tenant = $2 AND id = $3 \
                 FOR NO KEY UPDATE), \
             fenced AS ( \
                 SELECT coalesce(bool_or(sync_slot_run = $12 AND sync_slot_attempt > $13), \
                                 false) \
                        OR ($12::uuid IS NOT NULL \
                            AND EXISTS (SELECT 1 FROM sync_runs \
                                        WHERE id = $1 AND tenant = $2 AND connection = $3 \
                                          AND outcome <> 'running' \
                                          AND finished_attempt IS DISTINCT FROM $13) \
                            AND NOT coalesce(bool_or(sync_slot_run = $12 \
                                                     AND sync_slot_attempt = $13), false)) \
                        AS out \
                 FROM slot), \
             live AS ( \
                 SELECT count(*) AS n FROM records \
                 WHERE tenant = $2 AND connection = $3 AND deleted_at IS NULL), \
             finished AS ( \
                 UPDATE sync_runs \
                 SET finished_at = now(), records = $4, pages = $5, outcome = $6, error = $7, \
                     added = $8, updated = $9, deleted = $10, \
                     finished_attempt = CASE WHEN $12::uuid IS NULL THEN NULL ELSE $13 END \
                 WHERE id = $1 AND tenant = $2 AND connection = $3 AND outcome = 'running' \
                   AND NOT (SELECT out FROM fenced) \
                 RETURNING id), \
             freed AS ( \
                 SELECT coalesce(sync_slot_run = $12 \
                                 AND coalesce(sync_slot_attempt <= $13, true), false) AS slot \
                 FROM slot), \
             counted AS ( \
                 UPDATE connections SET records_total = (SELECT n FROM live), \
                     sync_slot_run = CASE WHEN f.slot THEN NULL ELSE sync_slot_run END, \
                     sync_slot_request = CASE WHEN f.slot THEN NULL ELSE sync_slot_request END, \
                     sync_slot_state = CASE WHEN f.slot THEN NULL ELSE sync_slot_state END, \
                     sync_slot_until = CASE WHEN f.slot THEN NULL ELSE sync_slot_until END, \
                     sync_slot_attempt = CASE WHEN f.slot THEN NULL ELSE sync_slot_attempt END \
                 FROM freed f \
                 WHERE tenant = $2 AND id = $3 AND NOT (SELECT out FROM fenced)), \
             before AS ( \
                 SELECT degraded_since FROM connection_health \
                 WHERE tenant = $2 AND connection = $3 AND EXISTS (SELECT 1 FROM finished) \
                 FOR UPDATE), \
             healthy AS ( \
                 UPDATE connection_health \
                 SET last_ok_at = now(), consecutive_failures = 0, degraded_since = NULL, \
                     access_expires_at = $11 \
                 WHERE tenant = $2 AND connection = $3 AND EXISTS (SELECT 1 FROM finished)) \
             SELECT (SELECT n FROM live) AS n, (SELECT degraded_since FROM before) AS degraded_since, \
                    (SELECT out FROM fenced) AS fenced",
        )
        .bind(run.as_uuid())
        .bind(tenant.as_str())
        .bind(connection.as_str())
        .bind(to_bigint(outcome.records))
        .bind(to_bigint(outcome.pages))
        .bind(name)
        .bind(error)
        .bind(to_bigint(outcome.added))
        .bind(to_bigint(outcome.updated))
        .bind(to_bigint(outcome.deleted))
        .bind(access_expires_at)
        .bind(release.map(|lease| lease.run.as_uuid()))
        .bind(release.map_or(0, |lease| attempt_column(lease.attempt)))
        .fetch_one(&self.pool)
        .await
        .map_err(Error::CompleteSyncRun)?;
        let fenced: bool = row.try_get("fenced").map_err(Error::CompleteSyncRun)?;
        if fenced {
            return Err(Error::SyncSlotLost {
                connection: connection.clone(),
            });
        }
        let total: i64 = row.try_get("n").map_err(Error::CompleteSyncRun)?;
        Ok(Completed {
            // count(*) is never negative.
            records_total: total.unsigned_abs(),
            recovered_from: row
                .try_get("degraded_since")
                .map_err(Error::CompleteSyncRun)?,
        })
    }

    /// The connection's most recently started sync run, if any.
    ///
    /// # Errors
    ///
    /// [`Error::LatestSyncRun`].
    #[tracing::instrument(skip_all, fields(tenant = %tenant, connection = %connection))]
    pub async fn latest_sync_run(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
    ) -> Result<Option<SyncRun>, Error> {
        sqlx::query_as(
            "SELECT id, tenant, connection, trigger, started_at, finished_at, records, pages, \
                    added, updated, deleted, outcome, error \
             FROM sync_runs WHERE tenant = $1 AND connection = $2 \
             ORDER BY started_at DESC, id DESC LIMIT 1",
        )
        .bind(tenant.as_str())
        .bind(connection.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(Error::LatestSyncRun)
    }
}

impl SyncResult {
    /// The `outcome` and `error` columns of this result.
    /// The `error` as stored: a provider's text may hold NUL, which a
    /// text column cannot.
    fn columns(&self) -> (&'static str, Option<std::borrow::Cow<'_, str>>) {
        match self {
            Self::Succeeded => ("succeeded", None),
            Self::Partial { reason } => ("partial", Some(crate::row::storable_text(reason))),
            Self::Failed { error } => ("failed", Some(crate::row::storable_text(error))),
        }
    }
}

/// The `trigger` column value of `trigger`.
pub(crate) fn trigger_name(trigger: SyncTrigger) -> &'static str {
    match trigger {
        SyncTrigger::Manual => "manual",
        SyncTrigger::Scheduled => "scheduled",
        SyncTrigger::Setup => "setup",
    }
}

/// The trigger named `name` in the `trigger` column.
fn parse_trigger(name: &str) -> Result<SyncTrigger, UnexpectedValue> {
    [
        SyncTrigger::Manual,
        SyncTrigger::Scheduled,
        SyncTrigger::Setup,
    ]
    .into_iter()
    .find(|&trigger| trigger_name(trigger) == name)
    .ok_or_else(|| UnexpectedValue(name.to_owned()))
}
