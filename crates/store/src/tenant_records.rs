//! A tenant's records across its connections, in the order the fleet
//! stored their changes: what the platform reads to follow the changes
//! since it last looked.

use chrono::{DateTime, Utc};
use fleet_events::{ConnectionId, ConnectorId, TenantId};
use sqlx::{FromRow, Postgres, QueryBuilder, Row as _, postgres::PgRow};

use crate::row::decode_column;
use crate::{ChangeCursor, Error, MAX_PAGE_LIMIT, Record, Store};

/// Which records [`Store::list_tenant_records`] returns.
#[derive(Debug, Clone, Copy)]
pub struct TenantRecordQuery<'a> {
    /// The tenant whose records to list.
    pub tenant: &'a TenantId,
    /// Only records of connections to this connector.
    pub connector: Option<&'a ConnectorId>,
    /// Only records of these connections (a token narrowed to some);
    /// `None` for every connection of the tenant.
    pub connections: Option<&'a [ConnectionId]>,
    /// Only this stream.
    pub stream: Option<&'a str>,
    /// Only records the fleet stored (or found deleted) at or after this
    /// time.
    pub updated_since: Option<DateTime<Utc>>,
    /// Also records deleted at the provider.
    pub include_deleted: bool,
    /// Continue after this position, from a previous page's `next`.
    pub after: Option<&'a ChangeCursor>,
    /// Most records to return, 1 to [`MAX_PAGE_LIMIT`].
    pub limit: u32,
}

/// A record with the connection it belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantRecord {
    /// The connection.
    pub connection: ConnectionId,
    /// Its connector.
    pub connector: ConnectorId,
    /// When the fleet stored its current content, or found it deleted:
    /// the listing order.
    pub stored_at: DateTime<Utc>,
    /// The record.
    pub record: Record,
}

/// One page of [`Store::list_tenant_records`].
#[derive(Debug, Clone, PartialEq)]
pub struct TenantRecordPage {
    /// The records in the order the fleet stored them: `stored_at`, then
    /// connection, stream and external id.
    pub records: Vec<TenantRecord>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<ChangeCursor>,
}

impl<'r> FromRow<'r, PgRow> for TenantRecord {
    fn from_row(row: &'r PgRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            connection: decode_column(row, "connection", ConnectionId::parse)?,
            connector: decode_column(row, "connector", ConnectorId::parse)?,
            stored_at: row.try_get("stored_at")?,
            record: Record::from_row(row)?,
        })
    }
}

impl Store {
    /// A page of the tenant's records across its connections, in the order
    /// the fleet stored them (`stored_at`: when it stored the current
    /// content, or found the record deleted; then connection, stream,
    /// external id).
    ///
    /// Pagination is by key: following [`TenantRecordPage::next`] returns
    /// every record that stays unchanged during the walk exactly once, and
    /// one that changes during it again at its new position. A record is
    /// stored with the time its page's transaction began, and becomes
    /// visible when it commits, a moment later; so a reader that follows
    /// changes asks again with `updated_since` a little (a minute) before
    /// the last `stored_at` it read, and drops what it has already seen.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidLimit`] for a limit outside `1..=1000`, or
    /// [`Error::ListRecords`].
    #[tracing::instrument(skip_all, fields(tenant = %query.tenant))]
    pub async fn list_tenant_records(
        &self,
        query: TenantRecordQuery<'_>,
    ) -> Result<TenantRecordPage, Error> {
        if !(1..=MAX_PAGE_LIMIT).contains(&query.limit) {
            return Err(Error::InvalidLimit { limit: query.limit });
        }
        let mut rows = select(&query)
            .build()
            .fetch_all(&self.pool)
            .await
            .map_err(Error::ListRecords)?;
        let limit = usize::try_from(query.limit).unwrap_or(usize::MAX);
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next = match rows.last().filter(|_| more) {
            Some(row) => Some(ChangeCursor {
                stored_at: row.try_get("stored_at").map_err(Error::ListRecords)?,
                connection: row.try_get("connection").map_err(Error::ListRecords)?,
                stream: row.try_get("stream").map_err(Error::ListRecords)?,
                external_id: row.try_get("external_id").map_err(Error::ListRecords)?,
            }),
            None => None,
        };
        let records = rows
            .iter()
            .map(TenantRecord::from_row)
            .collect::<Result<_, _>>()
            .map_err(Error::ListRecords)?;
        Ok(TenantRecordPage { records, next })
    }
}

fn select(query: &TenantRecordQuery<'_>) -> QueryBuilder<Postgres> {
    let mut sql = QueryBuilder::new(
        "SELECT r.connection, c.connector, r.stream, r.external_id, r.payload, r.updated_at, \
                r.synced_at, r.deleted_at, coalesce(r.deleted_at, r.synced_at) AS stored_at \
         FROM records r JOIN connections c ON c.tenant = r.tenant AND c.id = r.connection \
         WHERE r.tenant = ",
    );
    sql.push_bind(query.tenant.as_str());
    if let Some(connector) = query.connector {
        sql.push(" AND c.connector = ")
            .push_bind(connector.as_str());
    }
    if let Some(connections) = query.connections {
        let ids: Vec<String> = connections.iter().map(ToString::to_string).collect();
        sql.push(" AND r.connection = ANY(")
            .push_bind(ids)
            .push(")");
    }
    if !query.include_deleted {
        sql.push(" AND r.deleted_at IS NULL");
    }
    if let Some(stream) = query.stream {
        sql.push(" AND r.stream = ").push_bind(stream);
    }
    if let Some(since) = query.updated_since {
        sql.push(" AND coalesce(r.deleted_at, r.synced_at) >= ")
            .push_bind(since);
    }
    if let Some(after) = query.after {
        sql.push(
            " AND (coalesce(r.deleted_at, r.synced_at), r.connection, r.stream, r.external_id) > (",
        )
        .push_bind(after.stored_at)
        .push(", ")
        .push_bind(after.connection.clone())
        .push(", ")
        .push_bind(after.stream.clone())
        .push(", ")
        .push_bind(after.external_id.clone())
        .push(")");
    }
    sql.push(
        " ORDER BY coalesce(r.deleted_at, r.synced_at), r.connection, r.stream, r.external_id \
         LIMIT ",
    )
    .push_bind(i64::from(query.limit) + 1);
    sql
}
