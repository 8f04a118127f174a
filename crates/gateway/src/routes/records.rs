//! `GET /api/records`: the caller's records across its connections, in the
//! order the fleet stored them, for the platform's own tabs and "what
//! changed since" reads.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use fleet_events::ConnectorId;
use fleet_store::{ChangeCursor, TenantRecordQuery};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Tenant;
use crate::routes::connections::{RecordView, store};
use crate::{AppState, Error};

/// The routes, relative to `/api`.
pub fn router() -> Router<AppState> {
    Router::new().route("/records", get(list))
}

/// Filters and position of a page of the tenant's records.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TenantRecordParams {
    /// Only records of connections to this connector (`wordpress`,
    /// `google-analytics`, ...).
    pub connector: Option<String>,
    /// Only this stream (`posts`, `subscribers`, `daily_metrics`, ...);
    /// with `connector`, one of its streams.
    pub stream: Option<String>,
    /// Only records the fleet stored (or found deleted) at or after this
    /// time (RFC 3339): their `stored_at`.
    pub updated_since: Option<DateTime<Utc>>,
    /// Also records deleted at the provider, with their `deleted_at`;
    /// `false` by default. A reader that follows changes wants them.
    #[serde(default)]
    pub include_deleted: bool,
    /// The `next` value of the previous page.
    pub cursor: Option<String>,
    /// Records per page, 1 to 1000; 100 by default.
    pub limit: Option<u32>,
}

/// One synced record and the connection it came from: the connection's
/// fields beside those of a record of `GET /api/connections/{id}/records`.
#[derive(Debug, Serialize, ToSchema)]
pub struct TenantRecordView {
    /// The connection's id.
    pub connection: String,
    /// Its connector.
    pub connector: String,
    /// When the fleet stored its current content or found it deleted: the
    /// listing order, and what `updated_since` compares.
    pub stored_at: DateTime<Utc>,
    /// The record.
    #[serde(flatten)]
    pub record: RecordView,
}

/// A page of the tenant's records.
#[derive(Debug, Serialize, ToSchema)]
pub struct TenantRecordPageView {
    /// The records in the order the fleet stored them: `stored_at`, then
    /// connection, stream and external id.
    pub records: Vec<TenantRecordView>,
    /// Pass as `cursor` for the next page; absent on the last one. To read
    /// what changed since, ask again later with `updated_since` a minute
    /// before the last `stored_at` read.
    pub next: Option<String>,
}

/// A `stream` parameter as a stream's name: 1 to 64 characters, no control
/// character (which no stream has, and a text parameter cannot carry).
pub(crate) fn check_stream(stream: Option<&str>) -> Result<(), Error> {
    match stream {
        Some(stream)
            if stream.is_empty() || stream.len() > 64 || stream.chars().any(char::is_control) =>
        {
            Err(Error::invalid(
                "stream",
                "stream is a stream's name: 1 to 64 characters, no control characters",
            ))
        }
        _ => Ok(()),
    }
}

/// A `cursor` parameter as the `next` that `endpoint` returned.
pub(crate) fn page_cursor<C: std::str::FromStr>(
    cursor: Option<&str>,
    endpoint: &str,
) -> Result<Option<C>, Error> {
    cursor.map(str::parse::<C>).transpose().map_err(|_| {
        Error::invalid(
            "cursor",
            format!("cursor is not a value {endpoint} returned as `next`"),
        )
    })
}

/// A `limit` parameter: 1 to [`fleet_store::MAX_PAGE_LIMIT`], 100 when absent.
pub(crate) fn page_limit(limit: Option<u32>) -> Result<u32, Error> {
    let limit = limit.unwrap_or(100);
    if (1..=fleet_store::MAX_PAGE_LIMIT).contains(&limit) {
        return Ok(limit);
    }
    Err(Error::invalid(
        "limit",
        format!(
            "limit must be between 1 and {}",
            fleet_store::MAX_PAGE_LIMIT
        ),
    ))
}

/// The caller's records across its connections (those its token covers),
/// in the order the fleet stored them.
///
/// Each record's `payload` follows the component schema
/// `Record.<connector>.<stream>` of this document, named by the record's
/// `connector` and `stream` (`Record.generic-oauth2.account` for operators'
/// OAuth 2.0 entries); `GET /api/connectors` names each stream's schema.
#[utoipa::path(get, path = "/api/records", params(TenantRecordParams),
    responses((status = 200, body = TenantRecordPageView), (status = 401, body = crate::ErrorBody),
              (status = 422, body = crate::ErrorBody), (status = 429, body = crate::ErrorBody)),
    security(("tenant_token" = [])))]
pub(crate) async fn list(
    State(state): State<AppState>,
    tenant: Tenant,
    params: Result<Query<TenantRecordParams>, QueryRejection>,
) -> Result<Json<TenantRecordPageView>, Error> {
    let Query(params) = params?;
    let catalog = state.inner.connectors.catalog();
    let connector = match params.connector.as_deref() {
        None => None,
        Some(name) => {
            let id = ConnectorId::parse(name)
                .ok()
                .filter(|id| catalog.get(id).is_some())
                .ok_or_else(|| {
                    let known: Vec<String> =
                        catalog.iter().map(|entry| entry.id.to_string()).collect();
                    Error::invalid(
                        "connector",
                        format!(
                            "connector {name:?} is not in the catalog; it has {}",
                            known.join(", ")
                        ),
                    )
                })?;
            Some(id)
        }
    };
    if let (Some(id), Some(stream)) = (&connector, params.stream.as_deref())
        && let Some(implementation) = state.inner.connectors.get(id)
        && !implementation
            .streams()
            .iter()
            .any(|spec| spec.name == stream)
    {
        let names: Vec<&str> = implementation
            .streams()
            .iter()
            .map(|spec| spec.name)
            .collect();
        return Err(Error::invalid(
            "stream",
            format!(
                "{id} has no stream {stream:?}; its streams are {}",
                names.join(", ")
            ),
        ));
    }
    check_stream(params.stream.as_deref())?;
    let after = page_cursor::<ChangeCursor>(params.cursor.as_deref(), "GET /api/records")?;
    let limit = page_limit(params.limit)?;
    let page = store(state.inner.store.list_tenant_records(TenantRecordQuery {
        tenant: tenant.id(),
        connector: connector.as_ref(),
        connections: tenant.connections(),
        stream: params.stream.as_deref(),
        updated_since: params.updated_since,
        include_deleted: params.include_deleted,
        after: after.as_ref(),
        limit,
    }))
    .await?;
    Ok(Json(TenantRecordPageView {
        records: page
            .records
            .into_iter()
            .map(|r| TenantRecordView {
                connection: r.connection.to_string(),
                connector: r.connector.to_string(),
                stored_at: r.stored_at,
                record: r.record.into(),
            })
            .collect(),
        next: page.next.map(|cursor| cursor.to_string()),
    }))
}
