//! The `records` and `sync_cursors` tables: synced provider data and where
//! each stream's sync stands.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use fleet_events::{ConnectionId, TenantId};
use serde_json::Value;
use sqlx::{FromRow, Postgres, QueryBuilder, postgres::PgArguments, query::Query};

use crate::{Error, RecordCursor, Store, row::missing_connection_or};

/// Largest [`RecordQuery::limit`].
pub const MAX_PAGE_LIMIT: u32 = 1000;

/// One provider record to store, as a connector's sync produced it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordUpsert {
    /// The provider's id of the record, unique within its stream.
    pub external_id: String,
    /// The record as the connector maps it.
    pub payload: Value,
    /// The provider's modification time of the record, when it gives one.
    pub updated_at: Option<DateTime<Utc>>,
}

/// One page of a stream's sync, as [`Store::commit_page`] stores it.
#[derive(Debug, Clone, Copy)]
pub struct PageCommit<'a> {
    /// The tenant that owns the connection.
    pub tenant: &'a TenantId,
    /// The connection synced.
    pub connection: &'a ConnectionId,
    /// The connector's stream name, such as `posts`.
    pub stream: &'a str,
    /// The page's records. When an `external_id` repeats, the last one wins.
    pub records: &'a [RecordUpsert],
    /// The stream's position after this page, in the connector's format;
    /// `None` leaves the stored cursor as it is.
    pub cursor: Option<&'a Value>,
}

/// A stored record.
#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct Record {
    /// The connector's stream name.
    pub stream: String,
    /// The provider's id of the record, unique within its stream.
    pub external_id: String,
    /// The record as last synced.
    pub payload: Value,
    /// The provider's modification time of the stored payload, if it gave one.
    pub updated_at: Option<DateTime<Utc>>,
    /// When the stored payload was written: the last sync that changed it.
    pub synced_at: DateTime<Utc>,
}

/// Which records [`Store::list_records`] returns.
#[derive(Debug, Clone, Copy)]
pub struct RecordQuery<'a> {
    /// The tenant that owns the connection.
    pub tenant: &'a TenantId,
    /// The connection whose records to list.
    pub connection: &'a ConnectionId,
    /// Only this stream; `None` lists every stream.
    pub stream: Option<&'a str>,
    /// Only records changed at or after this time (their `updated_at`, or
    /// their `synced_at` when the provider gave none).
    pub updated_since: Option<DateTime<Utc>>,
    /// Continue after this position, from a previous page's
    /// [`RecordPage::next`]; `None` starts at the beginning.
    pub after: Option<&'a RecordCursor>,
    /// Most records to return, 1 to [`MAX_PAGE_LIMIT`].
    pub limit: u32,
}

/// One page of [`Store::list_records`].
#[derive(Debug, Clone, PartialEq)]
pub struct RecordPage {
    /// The records, ordered by stream, then change time, then external id.
    pub records: Vec<Record>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<RecordCursor>,
}

impl Store {
    /// Stores a page of a stream's records and, in the same transaction, the
    /// stream's cursor after it; returns how many records were written.
    ///
    /// Records are upserted by `(stream, external_id)`, so a re-sync updates
    /// rows in place. A record whose payload is unchanged is not written:
    /// its `synced_at` and `updated_at` keep saying when its content last
    /// changed, which is what listings order by and `updated_since` filters
    /// on, and an unchanged re-sync costs no row versions. The count
    /// returned therefore covers new and changed records only.
    ///
    /// Because records and cursor commit together, a crash never leaves the
    /// cursor ahead of the records: a resumed sync at worst fetches this
    /// page again, and the upsert makes that harmless.
    ///
    /// # Errors
    ///
    /// [`Error::ConnectionNotFound`] when the connection has no row, or
    /// [`Error::CommitPage`]. Either way nothing of the page is stored.
    #[tracing::instrument(skip_all, fields(
        tenant = %page.tenant,
        connection = %page.connection,
        stream = page.stream,
        records = page.records.len(),
    ))]
    pub async fn commit_page(&self, page: PageCommit<'_>) -> Result<u64, Error> {
        self.write_page(&page).await.map_err(|source| {
            missing_connection_or(source, page.tenant, page.connection, Error::CommitPage)
        })
    }

    async fn write_page(&self, page: &PageCommit<'_>) -> Result<u64, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let written = match page.records {
            [] => 0,
            records => upsert_records(page, records)
                .execute(&mut *tx)
                .await?
                .rows_affected(),
        };
        if let Some(cursor) = page.cursor {
            sqlx::query(
                "INSERT INTO sync_cursors (tenant, connection, stream, cursor) \
                 VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (tenant, connection, stream) \
                 DO UPDATE SET cursor = EXCLUDED.cursor, updated_at = now()",
            )
            .bind(page.tenant.as_str())
            .bind(page.connection.as_str())
            .bind(page.stream)
            .bind(cursor)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(written)
    }

    /// Every stream cursor of the connection, by stream: where each
    /// stream's last committed page said the next one starts. A stream
    /// without a cursor is absent.
    ///
    /// # Errors
    ///
    /// [`Error::ReadCursors`].
    #[tracing::instrument(skip_all, fields(tenant = %tenant, connection = %connection))]
    pub async fn cursors(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
    ) -> Result<HashMap<String, Value>, Error> {
        let rows: Vec<(String, Value)> = sqlx::query_as(
            "SELECT stream, cursor FROM sync_cursors WHERE tenant = $1 AND connection = $2",
        )
        .bind(tenant.as_str())
        .bind(connection.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(Error::ReadCursors)?;
        Ok(rows.into_iter().collect())
    }

    /// A page of the connection's records, in listing order: stream, then
    /// change time (`updated_at`, else `synced_at`), then external id.
    ///
    /// Pagination is by key, not offset, so following [`RecordPage::next`]
    /// returns every record that stays unchanged during the walk exactly
    /// once, however many others are inserted or changed meanwhile. A record
    /// that changes during the walk moves to its new change time: it shows
    /// up again, with its new payload, if that time is after the current
    /// position.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidLimit`] for a limit outside `1..=1000`, or
    /// [`Error::ListRecords`].
    #[tracing::instrument(skip_all, fields(tenant = %query.tenant, connection = %query.connection))]
    pub async fn list_records(&self, query: RecordQuery<'_>) -> Result<RecordPage, Error> {
        if !(1..=MAX_PAGE_LIMIT).contains(&query.limit) {
            return Err(Error::InvalidLimit { limit: query.limit });
        }
        let mut records: Vec<Record> = select_records(&query)
            .build_query_as()
            .fetch_all(&self.pool)
            .await
            .map_err(Error::ListRecords)?;
        // The query asks for one record more than the limit: its presence
        // says whether there is a next page.
        let limit = usize::try_from(query.limit).unwrap_or(usize::MAX);
        let next = if records.len() > limit {
            records.truncate(limit);
            records.last().map(RecordCursor::after)
        } else {
            None
        };
        Ok(RecordPage { records, next })
    }

    /// How many records the connection has, in one stream or in all.
    ///
    /// # Errors
    ///
    /// [`Error::CountRecords`].
    #[tracing::instrument(skip_all, fields(tenant = %tenant, connection = %connection))]
    pub async fn count_records(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        stream: Option<&str>,
    ) -> Result<u64, Error> {
        let count: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM records \
             WHERE tenant = $1 AND connection = $2 AND ($3::text IS NULL OR stream = $3)",
        )
        .bind(tenant.as_str())
        .bind(connection.as_str())
        .bind(stream)
        .fetch_one(&self.pool)
        .await
        .map_err(Error::CountRecords)?;
        // count(*) is never negative.
        Ok(count.unsigned_abs())
    }
}

/// The upsert of a page's records: one statement over arrays, whatever the
/// page size.
///
/// `DISTINCT ON` keeps the last of repeated external ids (a row cannot be
/// updated twice by one statement), and its ordering makes concurrent pages
/// of one stream lock rows in the same order, so they cannot deadlock.
fn upsert_records(
    page: &PageCommit<'_>,
    records: &[RecordUpsert],
) -> Query<'static, Postgres, PgArguments> {
    let external_ids: Vec<&str> = records.iter().map(|r| r.external_id.as_str()).collect();
    let payloads: Vec<&Value> = records.iter().map(|r| &r.payload).collect();
    let updated_ats: Vec<Option<DateTime<Utc>>> = records.iter().map(|r| r.updated_at).collect();
    sqlx::query(
        "INSERT INTO records AS r (tenant, connection, stream, external_id, payload, updated_at) \
         SELECT DISTINCT ON (page.external_id) \
                $1, $2, $3, page.external_id, page.payload, page.updated_at \
         FROM unnest($4::text[], $5::jsonb[], $6::timestamptz[]) \
              WITH ORDINALITY AS page (external_id, payload, updated_at, position) \
         ORDER BY page.external_id, page.position DESC \
         ON CONFLICT (tenant, connection, stream, external_id) DO UPDATE \
         SET payload = EXCLUDED.payload, updated_at = EXCLUDED.updated_at, synced_at = now() \
         WHERE r.payload IS DISTINCT FROM EXCLUDED.payload",
    )
    .bind(page.tenant.as_str())
    .bind(page.connection.as_str())
    .bind(page.stream)
    .bind(external_ids)
    .bind(payloads)
    .bind(updated_ats)
}

/// The `SELECT` of one page of [`Store::list_records`], with only the
/// conditions the query uses, so that every one of them can use the listing
/// index.
fn select_records(query: &RecordQuery<'_>) -> QueryBuilder<Postgres> {
    let mut sql = QueryBuilder::new(
        "SELECT stream, external_id, payload, updated_at, synced_at FROM records WHERE tenant = ",
    );
    sql.push_bind(query.tenant.as_str())
        .push(" AND connection = ")
        .push_bind(query.connection.as_str());
    if let Some(stream) = query.stream {
        sql.push(" AND stream = ").push_bind(stream);
    }
    if let Some(since) = query.updated_since {
        sql.push(" AND changed_at >= ").push_bind(since);
    }
    if let Some(after) = query.after {
        sql.push(" AND (stream, changed_at, external_id) > (")
            .push_bind(after.stream.as_str())
            .push(", ")
            .push_bind(after.changed_at)
            .push(", ")
            .push_bind(after.external_id.as_str())
            .push(")");
    }
    sql.push(" ORDER BY stream, changed_at, external_id LIMIT ")
        .push_bind(i64::from(query.limit) + 1);
    sql
}
