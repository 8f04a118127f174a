//! Which version of a connection's credentials secret is in use.
//!
//! Vault holds every version of a connection's credentials; the connection's
//! row says which one is in use (`vault_version`), which staged
//! version that one descends from (`vault_lineage`) and which version
//! the gateway staged (`vault_staged`). Promotion and rotation are
//! check-and-set updates of these columns.

use crate::{
    CredentialsInUse, Error, Promotion, SavedConnection, Store,
    connections::{interval_seconds, version_column},
};
use fleet_events::{ConnectionId, EventId, TenantId};

/// What [`Store::promote_credentials`] promotes.
#[derive(Debug, Clone, Copy)]
pub struct Promote {
    /// The staged version, as the save request carries it.
    pub staged: u64,
    /// The save request's event id.
    pub request: EventId,
    /// Whether `staged` is a copy of a legacy connection's credentials.
    pub adopted: bool,
}

impl Store {
    /// The save step's record of a validated connection, in one statement:
    /// makes staged version `staged` of its credentials the one in use and
    /// records its provider account and, when given, its sync interval; a
    /// reconnected account starts its health history over.
    ///
    /// Promotion moves the pointer only when the connection does not yet use
    /// credentials from `staged` or a later staged version, so a redelivered
    /// save step has one effect and never puts back the credentials a
    /// renewal has replaced, and a save step that arrives after a newer one
    /// changes nothing ([`Promotion::Superseded`]). A version later than the
    /// one the gateway staged is not one of ours ([`Promotion::Unknown`]).
    ///
    /// The save request that promotes a version is recorded: the same
    /// request, redelivered, finds [`Promotion::Promoted`] again and carries
    /// out its effects again; another request for the version it promoted
    /// finds [`Promotion::Duplicate`].
    ///
    /// [`Promote::adopted`] is for a connection of the legacy layout, whose
    /// row records no staged version: the caller has copied its credentials
    /// into version `staged` of the one secret, and that version is recorded
    /// as staged.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSyncInterval`], [`Error::InvalidCredentialsVersion`],
    /// or [`Error::Credentials`] (also for an account name outside 1 to 200
    /// characters).
    #[tracing::instrument(skip_all, fields(tenant = %saved.tenant, connection = %saved.id, staged))]
    pub async fn promote_credentials(
        &self,
        saved: SavedConnection<'_>,
        promote: Promote,
    ) -> Result<Promotion, Error> {
        let sync_interval = interval_seconds(saved.sync_interval)?;
        let staged = version_column(promote.staged)?;
        let verdict: Option<String> = sqlx::query_scalar(
            "WITH current AS ( \
                 SELECT CASE \
                     WHEN vault_staged IS NULL AND NOT $7 THEN 'legacy' \
                     WHEN $6 > coalesce(vault_staged, $6) THEN 'unknown' \
                     WHEN vault_lineage > $6 THEN 'superseded' \
                     WHEN vault_lineage = $6 AND vault_promoted_by IS DISTINCT FROM $8 \
                         THEN 'duplicate' \
                     ELSE 'promoted' END AS verdict \
                 FROM connections WHERE tenant = $1 AND id = $2 FOR UPDATE), \
             saved AS ( \
                 UPDATE connections c SET \
                     account_id = $4, account_name = $5, \
                     sync_interval_seconds = coalesce($3, c.sync_interval_seconds), \
                     vault_staged = coalesce(c.vault_staged, $6), \
                     vault_version = CASE \
                         WHEN c.vault_lineage IS NULL OR c.vault_lineage < $6 THEN $6 \
                         ELSE c.vault_version END, \
                     vault_promoted_by = CASE \
                         WHEN c.vault_lineage IS NULL OR c.vault_lineage < $6 THEN $8 \
                         ELSE c.vault_promoted_by END, \
                     vault_lineage = greatest(c.vault_lineage, $6), \
                     updated_at = now() \
                 WHERE tenant = $1 AND id = $2 \
                   AND (SELECT verdict FROM current) = 'promoted' \
                 RETURNING 1), \
             healthy AS ( \
                 UPDATE connection_health \
                 SET last_ok_at = now(), consecutive_failures = 0, degraded_since = NULL, \
                     last_check_result = NULL, access_expires_at = NULL \
                 WHERE tenant = $1 AND connection = $2 AND EXISTS (SELECT 1 FROM saved)) \
             SELECT verdict FROM current",
        )
        .bind(saved.tenant.as_str())
        .bind(saved.id.as_str())
        .bind(sync_interval)
        .bind(&saved.account.id)
        .bind(&saved.account.name)
        .bind(staged)
        .bind(promote.adopted)
        .bind(promote.request.as_uuid())
        .fetch_optional(&self.pool)
        .await
        .map_err(|source| Error::Credentials {
            operation: "promote",
            source,
        })?;
        Ok(match verdict.as_deref() {
            Some("promoted") => Promotion::Promoted,
            Some("superseded") => Promotion::Superseded,
            Some("duplicate") => Promotion::Duplicate,
            Some("legacy") => Promotion::Legacy,
            _ => Promotion::Unknown,
        })
    }

    /// Which version of the connection's credentials is in use; `None` when
    /// the connection does not exist.
    ///
    /// # Errors
    ///
    /// [`Error::Credentials`].
    #[tracing::instrument(skip_all, fields(tenant = %tenant, connection = %connection))]
    pub async fn credentials_in_use(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
    ) -> Result<Option<CredentialsInUse>, Error> {
        let mut db = self
            .pool
            .acquire()
            .await
            .map_err(|source| Error::Credentials {
                operation: "read",
                source,
            })?;
        in_use(&mut db, tenant, connection).await
    }

    /// Points a connection of the legacy layout at `version`, the copy of
    /// its legacy credentials in the one secret, if its row still records no
    /// version; returns whether it did (also when it already points there: a
    /// call retried after its answer was lost). When it returns `false`,
    /// another worker adopted them first (or the connection is gone):
    /// discard `version` and read the row again.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidCredentialsVersion`] or [`Error::Credentials`].
    #[tracing::instrument(skip_all, fields(tenant = %tenant, connection = %connection, version))]
    pub async fn adopt_credentials(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        version: u64,
    ) -> Result<bool, Error> {
        let version = version_column(version)?;
        let moved = sqlx::query(
            "UPDATE connections SET vault_staged = $3, vault_version = $3, \
                                    vault_lineage = $3, updated_at = now() \
             WHERE tenant = $1 AND id = $2 \
               AND ((vault_staged IS NULL AND vault_version IS NULL) OR vault_version = $3)",
        )
        .bind(tenant.as_str())
        .bind(connection.as_str())
        .bind(version)
        .execute(&self.pool)
        .await
        .map_err(|source| Error::Credentials {
            operation: "adopt",
            source,
        })?;
        Ok(moved.rows_affected() == 1)
    }
}

impl Store {
    /// Moves the connection to version `to` of its credentials if version
    /// `from` is still the one in use; returns whether it moved (also when it
    /// is at `to` already: a call retried after its answer was lost must not
    /// lead its caller to destroy the version in use). A renewal calls it
    /// after writing `to`, while it holds the refresh lock.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidCredentialsVersion`] or [`Error::Credentials`].
    #[tracing::instrument(skip_all, fields(tenant = %tenant, connection = %connection, from, to))]
    pub async fn move_credentials(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        from: u64,
        to: u64,
    ) -> Result<bool, Error> {
        let (from, to) = (version_column(from)?, version_column(to)?);
        let moved = sqlx::query(
            "UPDATE connections SET vault_version = $4, updated_at = now() \
             WHERE tenant = $1 AND id = $2 AND vault_version IN ($3, $4)",
        )
        .bind(tenant.as_str())
        .bind(connection.as_str())
        .bind(from)
        .bind(to)
        .execute(&self.pool)
        .await
        .map_err(|source| Error::Credentials {
            operation: "move",
            source,
        })?;
        Ok(moved.rows_affected() == 1)
    }
}

/// Reads the version in use within `tx`.
pub(crate) async fn in_use(
    tx: &mut sqlx::PgConnection,
    tenant: &TenantId,
    connection: &ConnectionId,
) -> Result<Option<CredentialsInUse>, Error> {
    let read = |source| Error::Credentials {
        operation: "read",
        source,
    };
    let row = sqlx::query(
        "SELECT vault_staged, vault_version FROM connections \
         WHERE tenant = $1 AND id = $2",
    )
    .bind(tenant.as_str())
    .bind(connection.as_str())
    .fetch_optional(&mut *tx)
    .await
    .map_err(read)?;
    row.map(|row| CredentialsInUse::from_row(&row))
        .transpose()
        .map_err(read)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_row_tells_a_promoted_version_from_a_pending_setup_and_the_legacy_layout() {
        assert_eq!(
            CredentialsInUse::of(Some(1), Some(3)),
            CredentialsInUse::Version(3)
        );
        assert_eq!(
            CredentialsInUse::of(Some(1), None),
            CredentialsInUse::NotYet(1)
        );
        assert_eq!(CredentialsInUse::of(None, None), CredentialsInUse::Legacy);
    }
}
