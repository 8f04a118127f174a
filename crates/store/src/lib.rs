//! PostgreSQL state of connector-fleet: connections and their status, sync
//! runs, synced records and sync cursors.
//!
//! Workers write it (the status worker through [`Store::apply_status`], the
//! sync worker through [`Store::commit_page`] and the sync-run calls), and
//! the gateway and dashboards read it. Every query is a runtime-checked
//! `sqlx` query, so building needs no database; the schema lives in
//! `migrations/`, is embedded in the binary, and is applied by
//! [`Store::connect`].
//!
//! What it does not do: store credentials (they live in Vault, through
//! `fleet-secrets`; no column holds one, and errors never quote the database
//! URL), talk to NATS or providers, or decide state transitions (it stores
//! the statuses the workers publish, in event order).
//!
//! # Types to start from
//!
//! - [`Store`]: the cheap-to-clone handle; [`Store::connect`] with a
//!   [`Config`].
//! - [`Connection`] and [`NewConnection`]: a tenant's connected account.
//! - [`StatusUpdate`]: a published status, for [`Store::apply_status`].
//! - [`PageCommit`] and [`RecordQuery`]: writing and paging synced records.
//! - [`Error`]: what failed, and [`Error::is_transient`] to decide a retry.
//!
//! # Tables
//!
//! | table | key | holds |
//! | --- | --- | --- |
//! | `connections` | `(tenant, id)` | connector, name, account, last status (JSON and its `state`), last error and sync, schedule interval, who holds its sync slot until when |
//! | `sync_runs` | `id` (the sync's correlation id) | trigger, start and end, records, pages, outcome, error |
//! | `records` | `(tenant, connection, stream, external_id)` | the provider record's payload, its modification time, when it was stored, when it was found deleted, the last full pass that saw it |
//! | `sync_streams` | `(tenant, connection, stream)` | high-water mark, last full pass, the pass in progress and its position |
//! | `connection_health` | `(tenant, connection)` | last successful provider call, failures in a row and the last one, last health check and its result, token expiry, degraded since |
//! | `token_refreshes` | `(tenant, connection)` | last refresh success and failure, failures and failure days since |
//! | `webhook_endpoints` | `id` | a tenant's webhook URL and note (its signing secret is derived, never stored) |
//! | `webhook_deliveries` | `id` (filing order) | one event for one endpoint: body, state, attempts, next attempt, lease, last status and error |
//!
//! Runs, records and cursors reference their connection and are deleted
//! with it. Every query filters by tenant, so one tenant never reads or
//! changes another's rows.
//!
//! # Status ordering
//!
//! Status events can arrive twice (redelivery) or out of order (a retried
//! step overtaken by a newer one). [`Store::apply_status`] orders them by
//! `(occurred_at, event_id)`, with the event id, a time-ordered UUID v7, as
//! the tie-breaker, and applies an event only if it is greater than the last
//! one applied. A stored status is therefore always the newest published,
//! whatever the delivery order, and applying the same event again changes
//! nothing.

#![warn(missing_docs)]

mod config;
mod connections;
mod credentials;
mod error;
mod health;
mod record_cursor;
mod records;
mod refresh;
mod row;
mod status;
mod store;
mod sync_runs;
mod sync_slots;
mod tenant_records;
mod webhooks;

pub use config::Config;
pub use connections::{Connection, CredentialsInUse, NewConnection, Promotion, SavedConnection};
pub use credentials::Promote;
pub use error::Error;
pub use health::{
    CheckResult, ConnectionHealth, Degraded, DueCheck, FailureSource, HealthReport, RECENT_RUNS,
};
pub use record_cursor::{ChangeCursor, InvalidCursor, RecordCursor};
pub use records::{
    MAX_PAGE_LIMIT, PageCommit, PageCounts, Pass, PassEnd, PassOutcome, Record, RecordPage,
    RecordQuery, RecordUpsert, StreamState,
};
pub use refresh::{RefreshHistory, RefreshLock};
pub use status::{Applied, StatusUpdate};
pub use store::Store;
pub use sync_runs::{Completed, SyncOutcome, SyncResult, SyncRun};
pub use sync_slots::{Claim, ClaimedRun, Queued, SlotClaim, SlotHolder, SyncLease, run_id};
pub use tenant_records::{TenantRecord, TenantRecordPage, TenantRecordQuery};
pub use webhooks::{DeliveryEnd, DueDelivery, WebhookDelivery, WebhookEndpoint, WebhookEvent};
