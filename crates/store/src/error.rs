//! Errors of the store crate.

use std::time::Duration;

use fleet_events::{ConnectionId, TenantId};
use sqlx::migrate::MigrateError;

use crate::records::MAX_PAGE_LIMIT;

/// What went wrong reading or writing the fleet's state.
///
/// Each database variant names the operation that failed; the
/// [`sqlx::Error`] is the source. No variant quotes the database URL,
/// credentials or record payloads.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configured URL is not a PostgreSQL URL.
    #[error("invalid database URL")]
    InvalidUrl(#[source] sqlx::Error),
    /// The database could not be reached or refused the login.
    #[error("failed to connect to the database")]
    Connect(#[source] sqlx::Error),
    /// The schema migrations failed.
    #[error("failed to migrate the database schema")]
    Migrate(#[source] MigrateError),
    /// [`Store::ping`](crate::Store::ping) failed: the database does not
    /// answer.
    #[error("the database does not answer")]
    Ping(#[source] sqlx::Error),
    /// [`Store::create_connection`](crate::Store::create_connection) failed.
    #[error("failed to create the connection")]
    CreateConnection(#[source] sqlx::Error),
    /// [`Store::save_connection`](crate::Store::save_connection) failed.
    #[error("failed to save the connection")]
    SaveConnection(#[source] sqlx::Error),
    /// Promoting, reading or moving the version of a connection's
    /// credentials in use failed
    /// ([`Store::promote_credentials`](crate::Store::promote_credentials) and
    /// friends).
    #[error("failed to {operation} the connection's credentials version")]
    Credentials {
        /// What was being done: `promote`, `read`, `move` or `adopt`.
        operation: &'static str,
        /// What failed.
        #[source]
        source: sqlx::Error,
    },
    /// A credentials version above `i64::MAX`, which PostgreSQL's `bigint`
    /// cannot hold.
    #[error("credentials version {version} is too large")]
    InvalidCredentialsVersion {
        /// The refused version.
        version: u64,
    },
    /// [`Store::get_connection`](crate::Store::get_connection) failed.
    #[error("failed to read the connection")]
    GetConnection(#[source] sqlx::Error),
    /// [`Store::list_connections`](crate::Store::list_connections) failed.
    #[error("failed to list the connections")]
    ListConnections(#[source] sqlx::Error),
    /// [`Store::set_sync_interval`](crate::Store::set_sync_interval) failed.
    #[error("failed to set the connection's sync interval")]
    SetSyncInterval(#[source] sqlx::Error),
    /// [`Store::delete_connection`](crate::Store::delete_connection) failed.
    #[error("failed to delete the connection")]
    DeleteConnection(#[source] sqlx::Error),
    /// [`Store::apply_status`](crate::Store::apply_status) failed.
    #[error("failed to apply the connection status")]
    ApplyStatus(#[source] sqlx::Error),
    /// [`Store::start_sync_run`](crate::Store::start_sync_run) failed.
    #[error("failed to record the start of the sync run")]
    StartSyncRun(#[source] sqlx::Error),
    /// [`Store::finish_sync_run`](crate::Store::finish_sync_run) failed.
    #[error("failed to record the end of the sync run")]
    FinishSyncRun(#[source] sqlx::Error),
    /// [`Store::complete_sync_run`](crate::Store::complete_sync_run) failed;
    /// the run, the cursors and the records are as they were.
    #[error("failed to record the completed sync run")]
    CompleteSyncRun(#[source] sqlx::Error),
    /// [`Store::latest_sync_run`](crate::Store::latest_sync_run) failed.
    #[error("failed to read the latest sync run")]
    LatestSyncRun(#[source] sqlx::Error),
    /// Queuing, claiming, renewing or releasing a connection's sync slot
    /// failed.
    #[error("failed to update the connection's sync slot")]
    SyncSlot(#[source] sqlx::Error),
    /// A page, pass end or renewal of a sync whose delivery no longer holds
    /// the connection's sync slot: a later delivery of the same request
    /// took it over. Nothing was written.
    #[error("a later delivery of this sync request took connection {connection}'s sync over")]
    SyncSlotLost {
        /// The connection.
        connection: ConnectionId,
    },
    /// [`Store::commit_page`](crate::Store::commit_page) failed; nothing of
    /// the page was written.
    #[error("failed to commit the page of records")]
    CommitPage(#[source] sqlx::Error),
    /// [`Store::stream_states`](crate::Store::stream_states) failed.
    #[error("failed to read where the streams' syncs stand")]
    ReadCursors(#[source] sqlx::Error),
    /// [`Store::finish_pass`](crate::Store::finish_pass) failed; nothing
    /// changed.
    #[error("failed to finish the stream's sync pass")]
    FinishPass(#[source] sqlx::Error),
    /// [`Store::list_records`](crate::Store::list_records) failed.
    #[error("failed to list the records")]
    ListRecords(#[source] sqlx::Error),
    /// [`Store::count_records`](crate::Store::count_records) failed.
    #[error("failed to count the records")]
    CountRecords(#[source] sqlx::Error),
    /// [`Store::lock_refresh`](crate::Store::lock_refresh) failed.
    #[error("failed to take the token refresh lock")]
    LockRefresh(#[source] sqlx::Error),
    /// Recording a refresh outcome failed.
    #[error("failed to record the token refresh")]
    RecordRefresh(#[source] sqlx::Error),
    /// [`Store::refresh_history`](crate::Store::refresh_history) failed.
    #[error("failed to read the token refresh history")]
    RefreshHistory(#[source] sqlx::Error),
    /// Reading or writing connections' health failed.
    #[error("failed to {action} the connections' health")]
    Health {
        /// What was being done: `read`, `record a failure in`, ...
        action: &'static str,
        /// The database error.
        #[source]
        source: sqlx::Error,
    },
    /// Creating, listing, reading or deleting a webhook endpoint failed.
    #[error("failed to {action} the webhook endpoint")]
    WebhookEndpoint {
        /// What was being done.
        action: &'static str,
        /// Cause.
        #[source]
        source: sqlx::Error,
    },
    /// Filing, claiming, finishing, listing or redelivering webhook
    /// deliveries failed.
    #[error("failed to {action} webhook deliveries")]
    WebhookDelivery {
        /// What was being done.
        action: &'static str,
        /// Cause.
        #[source]
        source: sqlx::Error,
    },
    /// The operation needs a connection row that does not exist (it was
    /// never created, or it was deleted).
    #[error("connection {connection} of tenant {tenant} does not exist")]
    ConnectionNotFound {
        /// The tenant asked for.
        tenant: TenantId,
        /// The connection asked for.
        connection: ConnectionId,
    },
    /// A sync interval below one second or above `i32::MAX` seconds.
    #[error("sync interval {interval:?} is not between 1 second and {max} seconds", max = i32::MAX)]
    InvalidSyncInterval {
        /// The refused interval.
        interval: Duration,
    },
    /// A [`RecordQuery::limit`](crate::RecordQuery::limit) outside `1..=1000`.
    #[error("page limit {limit} is not between 1 and {MAX_PAGE_LIMIT}")]
    InvalidLimit {
        /// The refused limit.
        limit: u32,
    },
}

impl Error {
    /// Whether retrying the same call later may succeed: the database was
    /// unreachable, the pool had no free connection in time, the server was
    /// shutting down or refusing connections, or the transaction lost a
    /// deadlock or serialization conflict.
    ///
    /// Everything else (a constraint violation, a missing connection, an
    /// invalid argument) fails the same way again.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Migrate(
                MigrateError::Execute(source) | MigrateError::ExecuteMigration(source, _),
            ) => is_transient(source),
            Self::Migrate(_)
            | Self::InvalidUrl(_)
            | Self::ConnectionNotFound { .. }
            | Self::SyncSlotLost { .. }
            | Self::InvalidSyncInterval { .. }
            | Self::InvalidCredentialsVersion { .. }
            | Self::InvalidLimit { .. } => false,
            Self::Connect(source)
            | Self::Ping(source)
            | Self::CreateConnection(source)
            | Self::SaveConnection(source)
            | Self::GetConnection(source)
            | Self::ListConnections(source)
            | Self::SetSyncInterval(source)
            | Self::DeleteConnection(source)
            | Self::ApplyStatus(source)
            | Self::StartSyncRun(source)
            | Self::FinishSyncRun(source)
            | Self::CompleteSyncRun(source)
            | Self::LatestSyncRun(source)
            | Self::SyncSlot(source)
            | Self::CommitPage(source)
            | Self::ReadCursors(source)
            | Self::FinishPass(source)
            | Self::ListRecords(source)
            | Self::CountRecords(source)
            | Self::LockRefresh(source)
            | Self::RecordRefresh(source)
            | Self::RefreshHistory(source)
            | Self::Health { source, .. }
            | Self::Credentials { source, .. }
            | Self::WebhookEndpoint { source, .. }
            | Self::WebhookDelivery { source, .. } => is_transient(source),
        }
    }
}

/// SQLSTATEs, besides class 08 (connection exception), after which the same
/// statement may succeed: serialization failure, deadlock, too many
/// connections, admin and crash shutdown, and "cannot connect now" (the
/// server is starting).
const TRANSIENT_SQLSTATES: [&str; 6] = ["40001", "40P01", "53300", "57P01", "57P02", "57P03"];

fn is_transient(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(error) => error
            .code()
            .is_some_and(|code| code.starts_with("08") || TRANSIENT_SQLSTATES.contains(&&*code)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_timeouts_and_io_errors_are_transient() {
        assert!(Error::GetConnection(sqlx::Error::PoolTimedOut).is_transient());
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert!(Error::Connect(sqlx::Error::Io(refused)).is_transient());
    }

    #[test]
    fn a_closed_pool_and_bad_arguments_are_not_transient() {
        assert!(!Error::CommitPage(sqlx::Error::PoolClosed).is_transient());
        assert!(!Error::InvalidLimit { limit: 0 }.is_transient());
    }

    #[test]
    fn messages_name_the_failed_operation_once_and_leave_the_cause_to_the_source() {
        let err = Error::CommitPage(sqlx::Error::PoolTimedOut);

        assert_eq!(err.to_string(), "failed to commit the page of records");
        let source = std::error::Error::source(&err).unwrap();
        assert_eq!(
            source.to_string(),
            "pool timed out while waiting for an open connection"
        );
    }
}
