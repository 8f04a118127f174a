//! `GET /api/connections/{id}/health`: how a connection's provider calls
//! go, its token's expiry and renewal, its next sync and its last runs.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use fleet_connectors::catalog::Auth;
use fleet_store::{ConnectionHealth, HealthReport, SyncResult, SyncRun};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::Tenant;
use crate::routes::connections::{find, store};
use crate::{AppState, Error};

/// The routes, relative to `/api`.
pub fn router() -> Router<AppState> {
    Router::new().route("/connections/{id}/health", get(read))
}

/// A connection's health in brief, as the connection list shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthSummary {
    /// True when its provider calls failed `consecutive_failures` times in
    /// a row, at least the fleet's threshold (3 by default).
    pub degraded: bool,
    /// Since when it is degraded.
    pub degraded_since: Option<DateTime<Utc>>,
    /// The last provider call with its credentials that succeeded: a
    /// validation, a sync run (synced or partial), a health check.
    pub last_ok_at: Option<DateTime<Utc>>,
    /// Failed sync runs and health checks since the last success.
    pub consecutive_failures: u32,
    /// When the last health check started.
    pub last_check_at: Option<DateTime<Utc>>,
    /// How the last check that asked the provider ended: `ok`, `failed` or
    /// `reauth_required`; absent before the first.
    pub last_check_result: Option<String>,
    /// When the access token expires (OAuth 2.0 connections whose provider
    /// says); absent otherwise.
    pub token_expires_at: Option<DateTime<Utc>>,
}

impl From<&ConnectionHealth> for HealthSummary {
    fn from(health: &ConnectionHealth) -> Self {
        Self {
            degraded: health.degraded_since.is_some(),
            degraded_since: health.degraded_since,
            last_ok_at: health.last_ok_at,
            consecutive_failures: health.consecutive_failures,
            last_check_at: health.last_check_at,
            last_check_result: health.last_check_result.map(|r| r.as_str().to_owned()),
            token_expires_at: health.token_expires_at,
        }
    }
}

/// A connection's health in full.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthView {
    /// The connection's id.
    pub id: String,
    /// Its state, as in the connection.
    pub state: String,
    /// The brief health, as in the connection list.
    #[serde(flatten)]
    pub summary: HealthSummary,
    /// The last failure's reason, in words a person can act on.
    pub last_failure: Option<String>,
    /// When it happened.
    pub last_failure_at: Option<DateTime<Utc>>,
    /// The access token and its renewal; absent for credentials that do
    /// not expire.
    pub token: Option<TokenView>,
    /// When the schedule is expected to sync it next: an interval after
    /// its last scheduled sync (or its creation). Absent without schedule.
    pub next_sync_at: Option<DateTime<Utc>>,
    /// The last sync runs, newest first (at most 5).
    pub recent_runs: Vec<RunView>,
}

/// An access token's expiry and renewals. Never the token.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenView {
    /// When the access token expires, as last read.
    pub expires_at: Option<DateTime<Utc>>,
    /// From when the next sync or health check renews it: its expiry less
    /// the provider's margin.
    pub renews_after: Option<DateTime<Utc>>,
    /// The last renewal that succeeded.
    pub last_renewed_at: Option<DateTime<Utc>>,
    /// The last renewal that failed.
    pub last_renewal_failure_at: Option<DateTime<Utc>>,
    /// Failed renewals since the last success.
    pub renewal_failures: u32,
    /// Why the last renewal failed.
    pub last_renewal_error: Option<String>,
}

/// One sync run.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunView {
    /// The run's id.
    pub id: String,
    /// `manual`, `scheduled` or `setup`.
    pub trigger: String,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it ended; absent while it runs.
    pub finished_at: Option<DateTime<Utc>>,
    /// `running`, `succeeded`, `partial` or `failed`.
    pub outcome: String,
    /// Why it failed or is partial.
    pub error: Option<String>,
    /// Records read from the provider.
    pub records: u64,
    /// Records added.
    pub added: u64,
    /// Records changed.
    pub updated: u64,
    /// Records found deleted.
    pub deleted: u64,
}

impl From<SyncRun> for RunView {
    fn from(run: SyncRun) -> Self {
        let (outcome, error) = match run.result {
            None => ("running", None),
            Some(SyncResult::Succeeded) => ("succeeded", None),
            Some(SyncResult::Partial { reason }) => ("partial", Some(reason)),
            Some(SyncResult::Failed { error }) => ("failed", Some(error)),
        };
        Self {
            id: run.id.to_string(),
            trigger: serde_json::to_value(run.trigger)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            started_at: run.started_at,
            finished_at: run.finished_at,
            outcome: outcome.to_owned(),
            error,
            records: run.records,
            added: run.added,
            updated: run.updated,
            deleted: run.deleted,
        }
    }
}

/// A connection's health.
#[utoipa::path(get, path = "/api/connections/{id}/health", params(("id" = String, Path)),
    responses((status = 200, body = HealthView), (status = 401, body = crate::ErrorBody),
              (status = 404, body = crate::ErrorBody), (status = 429, body = crate::ErrorBody)),
    security(("tenant_token" = [])))]
pub(crate) async fn read(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(id): Path<String>,
) -> Result<Json<HealthView>, Error> {
    let connection = find(&state, &tenant, &id).await?;
    let report = store(state.inner.store.health_report(tenant.id(), &connection.id))
        .await?
        .ok_or_else(|| Error::NotFound(format!("no connection {id:?}")))?;
    let HealthReport {
        health,
        refresh,
        recent_runs,
        next_sync_at,
    } = report;
    let margin = state
        .inner
        .connectors
        .catalog()
        .get(&connection.connector)
        .and_then(|entry| match &entry.auth {
            Auth::OAuth2(settings) => chrono::Duration::from_std(settings.token_expiry_margin).ok(),
            Auth::ClientCredentials(settings) => {
                chrono::Duration::from_std(settings.token_expiry_margin).ok()
            }
            _ => None,
        });
    let token = (health.token_expires_at.is_some() || refresh.is_some()).then(|| TokenView {
        expires_at: health.token_expires_at,
        renews_after: health
            .token_expires_at
            .zip(margin)
            .and_then(|(at, margin)| at.checked_sub_signed(margin)),
        last_renewed_at: refresh.as_ref().and_then(|r| r.last_success_at),
        last_renewal_failure_at: refresh.as_ref().and_then(|r| r.last_failure_at),
        renewal_failures: refresh.as_ref().map_or(0, |r| r.failures),
        last_renewal_error: refresh.and_then(|r| r.last_error),
    });
    Ok(Json(HealthView {
        id: connection.id.to_string(),
        state: connection.status.state().as_str().to_owned(),
        summary: HealthSummary::from(&health),
        last_failure: health.last_failure,
        last_failure_at: health.last_failure_at,
        token,
        next_sync_at,
        recent_runs: recent_runs.into_iter().map(RunView::from).collect(),
    }))
}
