//! Reading the credentials a connection uses now.
//!
//! The connection's row names the version of its credentials secret in use;
//! the secret store serves that version from this process's cache when it
//! has read it before. A connection set up before credentials were versioned
//! in one secret is adopted the first time a worker meets it: its legacy
//! credentials are copied into the one secret, the row is pointed at the
//! copy with check-and-set, and the legacy secrets are deleted.

use fleet_bus::HandlerError;
use fleet_connectors::Credentials;
use fleet_events::{ConnectionId, TenantId};
use fleet_secrets::{Stored, Version};
use fleet_store::CredentialsInUse;

use crate::{Deps, failure};

/// The connection's credentials in use. `known` is the row's pointer when
/// the caller has just read it (the sync claim does); else it is read here.
pub(crate) async fn in_use(
    deps: &Deps,
    tenant: &TenantId,
    connection: &ConnectionId,
    known: Option<CredentialsInUse>,
) -> Result<Stored<Credentials>, HandlerError> {
    let pointer = match known {
        Some(pointer) => pointer,
        None => read_pointer(deps, tenant, connection).await?,
    };
    let version = match pointer {
        CredentialsInUse::Version(version) => version,
        CredentialsInUse::NotYet(_) => return Err(not_saved()),
        CredentialsInUse::Legacy => match adopt(deps, tenant, connection).await? {
            Adopted::Ours(stored) => return Ok(stored),
            Adopted::Theirs(version) => version,
        },
    };
    deps.secrets
        .read_version(tenant, connection, Version::new(version))
        .await
        .map_err(|e| failure::secrets(&e))
}

async fn read_pointer(
    deps: &Deps,
    tenant: &TenantId,
    connection: &ConnectionId,
) -> Result<CredentialsInUse, HandlerError> {
    let store = &deps.store;
    failure::in_store(|| store.credentials_in_use(tenant, connection))
        .await?
        .ok_or_else(|| {
            deps.secrets.forget(tenant, connection);
            HandlerError::permanent("the connection was deleted")
        })
}

fn not_saved() -> HandlerError {
    HandlerError::permanent("the connection's credentials have not been validated and saved yet")
}

enum Adopted {
    /// This worker's copy is the one in use.
    Ours(Stored<Credentials>),
    /// Another worker adopted them first: this version is in use.
    Theirs(u64),
}

/// Copies a legacy connection's credentials into the one secret and points
/// its row at the copy.
async fn adopt(
    deps: &Deps,
    tenant: &TenantId,
    connection: &ConnectionId,
) -> Result<Adopted, HandlerError> {
    let secrets = &deps.secrets;
    let copy: Stored<Credentials> = secrets
        .adopt_legacy(tenant, connection, None)
        .await
        .map_err(|e| failure::secrets(&e))?;
    let store = &deps.store;
    let version = copy.version.get();
    if failure::in_store(|| store.adopt_credentials(tenant, connection, version)).await? {
        tracing::info!(%tenant, %connection, version, "Adopted legacy credentials into the versioned secret.");
        if let Err(error) = secrets.retire_legacy(tenant, connection).await {
            tracing::warn!(error.message = %failure::describe(&error), "Deleting the legacy secrets of an adopted connection failed; they stay until it is deleted.");
        }
        return Ok(Adopted::Ours(copy));
    }
    discard(deps, tenant, connection, copy.version).await;
    match read_pointer(deps, tenant, connection).await? {
        CredentialsInUse::Version(version) => Ok(Adopted::Theirs(version)),
        CredentialsInUse::NotYet(_) | CredentialsInUse::Legacy => Err(not_saved()),
    }
}

/// Destroys a version no longer in use; a failure leaves it until the
/// connection is deleted, which is logged and otherwise harmless.
pub(crate) async fn discard(
    deps: &Deps,
    tenant: &TenantId,
    connection: &ConnectionId,
    version: Version,
) {
    if let Err(error) = deps.secrets.discard(tenant, connection, &[version]).await {
        tracing::warn!(error.message = %failure::describe(&error), %version,
            "Destroying a replaced credentials version failed; it stays until the connection is deleted.");
    }
}
