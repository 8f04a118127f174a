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
use crate::routes::connections::store;
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

/// One synced record and the connection it came from.
#[derive(Debug, Serialize, ToSchema)]
pub struct TenantRecordView {
    /// The connection's id.
    pub connection: String,
    /// Its connector.
    pub connector: String,
    /// The stream it belongs to.
    pub stream: String,
    /// The provider's id of the record, unique within the connection's
    /// stream.
    pub external_id: String,
    /// The record; its fields per connector and stream are described by
    /// the `Record.<connector>.<stream>` component schemas of this document
    /// (such as `Record.wordpress.posts`; connectors without their own,
    /// operators' OAuth 2.0 entries, share `Record.generic-oauth2.account`).
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    /// When the provider last changed it, when known.
    pub updated_at: Option<DateTime<Utc>>,
    /// When its current content was stored.
    pub synced_at: DateTime<Utc>,
    /// When the fleet stored its current content or found it deleted: the
    /// listing order, and what `updated_since` compares.
    pub stored_at: DateTime<Utc>,
    /// When a sync found it removed at the provider; only with
    /// `include_deleted=true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<DateTime<Utc>>,
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
    if let Some(stream) = params.stream.as_deref()
        && (stream.is_empty() || stream.len() > 64 || stream.chars().any(char::is_control))
    {
        return Err(Error::invalid(
            "stream",
            "stream is a stream's name: 1 to 64 characters, no control characters",
        ));
    }
    let after = params
        .cursor
        .as_deref()
        .map(str::parse::<ChangeCursor>)
        .transpose()
        .map_err(|_| {
            Error::invalid(
                "cursor",
                "cursor is not a value GET /api/records returned as `next`",
            )
        })?;
    let limit = params.limit.unwrap_or(100);
    if !(1..=fleet_store::MAX_PAGE_LIMIT).contains(&limit) {
        return Err(Error::invalid(
            "limit",
            format!(
                "limit must be between 1 and {}",
                fleet_store::MAX_PAGE_LIMIT
            ),
        ));
    }
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
                stream: r.record.stream,
                external_id: r.record.external_id,
                payload: r.record.payload,
                updated_at: r.record.updated_at,
                synced_at: r.record.synced_at,
                stored_at: r.stored_at,
                deleted_at: r.record.deleted_at,
            })
            .collect(),
        next: page.next.map(|cursor| cursor.to_string()),
    }))
}
