//! The [`Store`] handle: the pool, start-up and migrations.

use std::time::Duration;

use secrecy::ExposeSecret as _;
use sqlx::{
    PgPool,
    migrate::Migrator,
    postgres::{PgConnectOptions, PgPoolOptions},
};

use crate::{Config, Error};

/// The schema, from `migrations/`, embedded at compile time.
static MIGRATOR: Migrator = sqlx::migrate!();

/// The fleet's PostgreSQL state.
///
/// A cheap-to-clone handle over a connection pool: clone it into every task
/// that needs it. Every method takes the tenant and filters by it, so one
/// tenant never reads or changes another's rows.
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) pool: PgPool,
}

impl Store {
    /// Opens a pool to the configured database and brings its schema up to
    /// date.
    ///
    /// Safe to call from several processes starting at once: migrations run
    /// under a database-wide advisory lock, so one process applies them and
    /// the others wait, then find nothing left to do.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidUrl`] for a malformed URL, [`Error::Connect`] when the
    /// database cannot be reached or refuses the login (transient when it is
    /// unreachable), and [`Error::Migrate`] when the schema cannot be migrated.
    #[tracing::instrument(skip_all)]
    pub async fn connect(config: &Config) -> Result<Self, Error> {
        let options: PgConnectOptions = config
            .url
            .expose_secret()
            .parse()
            .map_err(Error::InvalidUrl)?;
        let pool = PgPoolOptions::new()
            .max_connections(config.max_connections)
            .acquire_timeout(Duration::from_secs(config.acquire_timeout_seconds))
            .connect_with(options)
            .await
            .map_err(Error::Connect)?;
        let store = Self::from_pool(pool);
        store.migrate().await?;
        Ok(store)
    }

    /// Wraps an existing pool, without touching the schema; see
    /// [`Store::migrate`].
    pub fn from_pool(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Checks that the database answers, with one round trip on a pooled
    /// connection.
    ///
    /// # Errors
    ///
    /// [`Error::Ping`] when no connection can be had or the query fails.
    pub async fn ping(&self) -> Result<(), Error> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(Error::Ping)
    }

    /// Applies the migrations the database does not have yet.
    ///
    /// # Errors
    ///
    /// [`Error::Migrate`] when a migration fails, or when the database has a
    /// migration this build does not know or one whose text has changed.
    #[tracing::instrument(skip_all)]
    pub async fn migrate(&self) -> Result<(), Error> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(|source| Error::Migrate(source.into()))?;
        // The migrator holds a session-level advisory lock, which it does not
        // release when a migration fails; closing the connection instead of
        // returning it to the pool releases the lock in every case.
        conn.close_on_drop();
        MIGRATOR.run(&mut *conn).await.map_err(Error::Migrate)?;
        tracing::debug!("Database schema is up to date.");
        Ok(())
    }
}
