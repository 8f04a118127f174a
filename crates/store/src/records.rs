//! The `records` and `sync_streams` tables: synced provider data and where
//! each stream's sync stands.

use std::collections::HashMap;

use chrono::{DateTime, SubsecRound as _, Utc};
use fleet_events::{ConnectionId, TenantId};
use serde_json::Value;
use sqlx::{FromRow, Postgres, QueryBuilder};
use uuid::Uuid;

use crate::sync_slots::{SyncLease, attempt_column};
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

/// One pass over a stream: a full one, which sees every record the provider
/// has, or an incremental one, which sees what changed since
/// [`StreamState::high_water`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    /// The pass's id; a full pass marks every record it sees with it.
    pub id: Uuid,
    /// Whether the pass reads the whole stream.
    pub full: bool,
    /// When the pass began: the next incremental pass reads from here.
    pub started_at: DateTime<Utc>,
}

impl Pass {
    /// A new pass beginning now (to the microsecond, as PostgreSQL keeps
    /// it).
    pub fn begin(full: bool) -> Self {
        Self {
            id: Uuid::now_v7(),
            full,
            started_at: Utc::now().trunc_subsecs(6),
        }
    }
}

/// Where a stream's sync stands, as [`Store::stream_states`] reads it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StreamState {
    /// When the last complete pass began; `None` before the first.
    pub high_water: Option<DateTime<Utc>>,
    /// When the last complete full pass began; `None` before the first.
    pub last_full_at: Option<DateTime<Utc>>,
    /// The pass in progress and its position (the connector's cursor
    /// after its last committed page), if a run stopped in the middle.
    pub pass: Option<(Pass, Option<Value>)>,
}

/// A `sync_streams` row: stream, `high_water`, `last_full_at`, `pass`,
/// `pass_full`, `pass_started_at`, `cursor`.
pub(crate) type StreamRow = (
    String,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
    Option<Uuid>,
    Option<bool>,
    Option<DateTime<Utc>>,
    Option<Value>,
);

/// A stream's name and state from its row.
pub(crate) fn stream_state(
    (stream, high_water, last_full_at, id, full, started_at, cursor): StreamRow,
) -> (String, StreamState) {
    let pass = match (id, full, started_at) {
        (Some(id), Some(full), Some(started_at)) => Some((
            Pass {
                id,
                full,
                started_at,
            },
            cursor,
        )),
        _ => None,
    };
    let state = StreamState {
        high_water,
        last_full_at,
        pass,
    };
    (stream, state)
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
    /// The pass the page belongs to.
    pub pass: &'a Pass,
    /// The page's records. When an `external_id` repeats, the last one wins.
    pub records: &'a [RecordUpsert],
    /// External ids the provider reports removed from the stream (deleted,
    /// archived, moved away): marked deleted before `records` are stored,
    /// so an id in both stays live.
    pub removed: &'a [String],
    /// The stream's position after this page, in the connector's format;
    /// `None` on the pass's last page.
    pub cursor: Option<&'a Value>,
    /// Why the pass may have missed records, when this page says so. The
    /// first gap of a pass is kept until the pass ends, across runs.
    pub gap: Option<&'a str>,
    /// The sync's hold on the connection's sync slot: the page is refused
    /// ([`Error::SyncSlotLost`]) once a later delivery of the same request
    /// took the slot over. `None` for a writer that holds no slot.
    pub lease: Option<SyncLease>,
}

/// What [`Store::commit_page`] changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PageCounts {
    /// Records stored for the first time, or again after being deleted.
    pub added: u64,
    /// Live records whose payload changed.
    pub updated: u64,
    /// Live records marked deleted because the page named them removed.
    pub deleted: u64,
}

/// How a pass ended, for [`Store::finish_pass`].
#[derive(Debug, Clone, Copy)]
pub struct PassEnd<'a> {
    /// The tenant that owns the connection.
    pub tenant: &'a TenantId,
    /// The connection synced.
    pub connection: &'a ConnectionId,
    /// The stream.
    pub stream: &'a str,
    /// The pass.
    pub pass: &'a Pass,
    /// Whether a full pass may mark the records it did not see deleted:
    /// the stream's `reconcile`.
    pub reconcile: bool,
    /// The sync's hold on the connection's sync slot, as in
    /// [`PageCommit::lease`].
    pub lease: Option<SyncLease>,
}

/// What [`Store::finish_pass`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassOutcome {
    /// Records marked deleted.
    pub deleted: u64,
    /// Live records the stream now has.
    pub live: u64,
    /// Why the pass may have missed records, if a page said so; such a pass
    /// deleted nothing and left the high-water mark where it was.
    pub gap: Option<String>,
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
    /// When a sync found the record gone from the provider; `None` while
    /// the provider has it.
    pub deleted_at: Option<DateTime<Utc>>,
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
    /// Only records changed at or after this time (their `deleted_at`, else
    /// their `updated_at`, else their `synced_at` when the provider gave
    /// none).
    pub updated_since: Option<DateTime<Utc>>,
    /// Also records deleted at the provider (with their `deleted_at`).
    pub include_deleted: bool,
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

/// A page's counts from the function's columns (count(*) is never negative).
fn page_counts(added: i64, updated: i64, deleted: i64) -> PageCounts {
    PageCounts {
        added: added.unsigned_abs(),
        updated: updated.unsigned_abs(),
        deleted: deleted.unsigned_abs(),
    }
}

impl Store {
    /// Stores a page of a stream's records and, in the same transaction,
    /// the stream's position after it; returns how many records it added
    /// and updated.
    ///
    /// Records are upserted by `(stream, external_id)`, so a re-sync updates
    /// rows in place. A record whose payload is unchanged keeps its
    /// `synced_at` and `updated_at`, which say when its content last
    /// changed: what listings order by and `updated_since` filters on. A
    /// full pass still marks it seen. A record stored again after being
    /// deleted is live again, and counted as added. The connection's
    /// `records_total` grows with the records added, so it is current
    /// while a long sync runs.
    ///
    /// Because records and position commit together, a crash never leaves
    /// the position ahead of the records: a resumed sync at worst fetches
    /// this page again, and the upsert makes that harmless.
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
    pub async fn commit_page(&self, page: PageCommit<'_>) -> Result<PageCounts, Error> {
        let (held, added, updated, deleted): (bool, i64, i64, i64) =
            self.write_page(&page, None).await.map_err(|source| {
                missing_connection_or(source, page.tenant, page.connection, Error::CommitPage)
            })?;
        if !held {
            return Err(Error::SyncSlotLost {
                connection: page.connection.clone(),
            });
        }
        Ok(page_counts(added, updated, deleted))
    }

    /// [`Store::commit_page`] of a pass's last page and [`Store::finish_pass`]
    /// of its pass (reconciling when `reconcile`, as [`PassEnd::reconcile`]),
    /// in one transaction and one round trip: the end sees what the page
    /// wrote, and a crash cannot come between them.
    ///
    /// # Errors
    ///
    /// As [`Store::commit_page`]; nothing of the page is stored, and the
    /// pass goes on, then.
    #[tracing::instrument(skip_all, fields(
        tenant = %page.tenant,
        connection = %page.connection,
        stream = page.stream,
        records = page.records.len(),
    ))]
    pub async fn commit_last_page(
        &self,
        page: PageCommit<'_>,
        reconcile: bool,
    ) -> Result<(PageCounts, PassOutcome), Error> {
        type Row = (bool, i64, i64, i64, i64, i64, Option<String>);
        let (held, added, updated, deleted, swept, live, gap): Row = self
            .write_page(&page, Some(reconcile))
            .await
            .map_err(|source| {
                missing_connection_or(source, page.tenant, page.connection, Error::CommitPage)
            })?;
        if !held {
            return Err(Error::SyncSlotLost {
                connection: page.connection.clone(),
            });
        }
        let ended = PassOutcome {
            deleted: swept.unsigned_abs(),
            live: live.unsigned_abs(),
            gap,
        };
        Ok((page_counts(added, updated, deleted), ended))
    }

    /// The row of `sync_write_page` (`held`, `added`, `updated`,
    /// `deleted`), or with `reconcile` of `sync_write_last_page` (those,
    /// then the pass end's `swept`, `live` and `gap`); see
    /// migrations/0012_sync_functions.sql. `held` is false, and nothing
    /// written, when the page's lease no longer holds the connection's sync
    /// slot.
    async fn write_page<O>(
        &self,
        page: &PageCommit<'_>,
        reconcile: Option<bool>,
    ) -> Result<O, sqlx::Error>
    where
        O: for<'r> FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
    {
        let external_ids: Vec<&str> = page
            .records
            .iter()
            .map(|r| r.external_id.as_str())
            .collect();
        let updated_ats: Vec<Option<DateTime<Utc>>> =
            page.records.iter().map(|r| r.updated_at).collect();
        // jsonb cannot hold NUL, which a provider's record may.
        let cleaned: Vec<Option<Value>> = page
            .records
            .iter()
            .map(|r| {
                crate::row::has_nul(&r.payload).then(|| crate::row::without_nul(r.payload.clone()))
            })
            .collect();
        let payloads: Vec<&Value> = page
            .records
            .iter()
            .zip(&cleaned)
            .map(|(r, cleaned)| cleaned.as_ref().unwrap_or(&r.payload))
            .collect();
        let seen_pass = page.pass.full.then_some(page.pass.id);
        let sql = match reconcile {
            None => {
                "SELECT * FROM sync_write_page($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, \
                                               $12, $13, $14, $15)"
            }
            Some(_) => {
                "SELECT * FROM sync_write_last_page($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, \
                                                    $11, $12, $13, $14, $15, $16)"
            }
        };
        let query = sqlx::query_as::<_, O>(sql)
            .bind(page.tenant.as_str())
            .bind(page.connection.as_str())
            .bind(page.stream)
            .bind(external_ids)
            .bind(payloads)
            .bind(updated_ats)
            .bind(seen_pass)
            .bind(page.removed)
            .bind(page.pass.id)
            .bind(page.pass.full)
            .bind(page.pass.started_at)
            .bind(page.cursor)
            .bind(page.gap)
            .bind(page.lease.map(|lease| lease.run.as_uuid()))
            .bind(page.lease.map(|lease| attempt_column(lease.attempt)));
        match reconcile {
            None => query.fetch_one(&self.pool).await,
            Some(reconcile) => query.bind(reconcile).fetch_one(&self.pool).await,
        }
    }

    /// Ends a stream's pass: forgets its position and, when no page of it
    /// reported a gap, moves the stream's high-water mark to the pass's
    /// start. Such a complete full pass of a stream that reconciles also
    /// marks every live record it did not see deleted, and takes them off
    /// the connection's `records_total`.
    ///
    /// Called again for a pass it ended, it changes nothing and returns
    /// what that end marked deleted and its gap again.
    ///
    /// # Errors
    ///
    /// [`Error::FinishPass`]; nothing changed then.
    #[tracing::instrument(skip_all, fields(
        tenant = %end.tenant, connection = %end.connection, stream = end.stream,
    ))]
    pub async fn finish_pass(&self, end: PassEnd<'_>) -> Result<PassOutcome, Error> {
        let (held, deleted, live, gap): (bool, i64, i64, Option<String>) =
            sqlx::query_as("SELECT * FROM sync_end_pass($1, $2, $3, $4, $5, $6, $7, $8, $9)")
                .bind(end.tenant.as_str())
                .bind(end.connection.as_str())
                .bind(end.stream)
                .bind(end.pass.id)
                .bind(end.pass.started_at)
                .bind(end.pass.full)
                .bind(end.reconcile)
                .bind(end.lease.map(|lease| lease.run.as_uuid()))
                .bind(end.lease.map(|lease| attempt_column(lease.attempt)))
                .fetch_one(&self.pool)
                .await
                .map_err(Error::FinishPass)?;
        if !held {
            return Err(Error::SyncSlotLost {
                connection: end.connection.clone(),
            });
        }
        Ok(PassOutcome {
            deleted: deleted.unsigned_abs(),
            live: live.unsigned_abs(),
            gap,
        })
    }

    /// Where each of the connection's streams stands, by stream. A stream
    /// never synced is absent.
    ///
    /// # Errors
    ///
    /// [`Error::ReadCursors`].
    #[tracing::instrument(skip_all, fields(tenant = %tenant, connection = %connection))]
    pub async fn stream_states(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
    ) -> Result<HashMap<String, StreamState>, Error> {
        let rows: Vec<StreamRow> = sqlx::query_as(
            "SELECT stream, high_water, last_full_at, pass, pass_full, pass_started_at, cursor \
             FROM sync_streams WHERE tenant = $1 AND connection = $2",
        )
        .bind(tenant.as_str())
        .bind(connection.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(Error::ReadCursors)?;
        Ok(rows.into_iter().map(stream_state).collect())
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

    /// How many live records the connection has, in one stream or in all.
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
             WHERE tenant = $1 AND connection = $2 AND ($3::text IS NULL OR stream = $3) \
               AND deleted_at IS NULL",
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

    /// How many live records the connection has, and the bytes their
    /// payloads take as stored (jsonb, after PostgreSQL's compression).
    ///
    /// # Errors
    ///
    /// [`Error::CountRecords`].
    #[tracing::instrument(skip_all, fields(tenant = %tenant, connection = %connection))]
    pub async fn records_size(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
    ) -> Result<(u64, u64), Error> {
        let (count, bytes): (i64, i64) = sqlx::query_as(
            "SELECT count(*), coalesce(sum(pg_column_size(payload)), 0)::bigint FROM records \
             WHERE tenant = $1 AND connection = $2 AND deleted_at IS NULL",
        )
        .bind(tenant.as_str())
        .bind(connection.as_str())
        .fetch_one(&self.pool)
        .await
        .map_err(Error::CountRecords)?;
        // Neither a count nor a sum of sizes is negative.
        Ok((count.unsigned_abs(), bytes.unsigned_abs()))
    }
}

/// The `SELECT` of one page of [`Store::list_records`], with only the
/// conditions the query uses, so that every one of them can use the listing
/// index.
fn select_records(query: &RecordQuery<'_>) -> QueryBuilder<Postgres> {
    let mut sql = QueryBuilder::new(
        "SELECT stream, external_id, payload, updated_at, synced_at, deleted_at FROM records \
         WHERE tenant = ",
    );
    sql.push_bind(query.tenant.as_str())
        .push(" AND connection = ")
        .push_bind(query.connection.as_str());
    if !query.include_deleted {
        sql.push(" AND deleted_at IS NULL");
    }
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
