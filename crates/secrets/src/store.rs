//! The operations on a connection's credentials.

use fleet_events::{ConnectionId, TenantId};
use serde::{Serialize, de::DeserializeOwned, de::IgnoredAny};
use serde_json::Value;

use crate::{
    Client, Error, Version,
    envelope::{Active, Entry, decode, encode},
    key::Key,
};

/// Credentials read from the store, with the version they were read at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored<T> {
    /// The credentials.
    pub value: T,
    /// The version of the connection's `credentials` secret they were read at: what
    /// PostgreSQL's pointer names while they are in use.
    pub version: Version,
}

impl Client {
    /// Writes the credentials of a new connection as the first version of its `credentials`
    /// secret and returns that version, which the validate and save events carry.
    ///
    /// The write is a check-and-set expecting no secret, so it never adds a version to an
    /// existing connection. A write retried after its answer was lost finds its own version
    /// and returns it.
    ///
    /// # Errors
    ///
    /// [`Error::Conflict`] when the connection already has other credentials;
    /// [`Error::Serialization`] when `credentials` do not serialize; Vault errors otherwise.
    #[tracing::instrument(skip_all, fields(tenant = %tenant, connection = %connection))]
    pub async fn stage<T: Serialize>(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        credentials: &T,
    ) -> Result<Version, Error> {
        let keys = self.keys(tenant, connection);
        let key = &keys.credentials;
        let data = encode(key, &Entry { credentials })?;
        if let Some(version) = self.write_cas(key, &data, Version::new(0)).await? {
            return Ok(version);
        }
        match self.read(key, None).await? {
            Some(found) if found.data == data => Ok(found.version),
            found => Err(conflict(key, Version::new(0), found.map(|f| f.version))),
        }
    }

    /// Reads exactly `version` of the connection's credentials: from this process's cache
    /// when it read them before, else from Vault (and keeps them in the cache).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when that version does not exist or was destroyed (rotated away,
    /// or the connection deleted); [`Error::Serialization`] when it is not a `T`.
    #[tracing::instrument(skip_all, fields(tenant = %tenant, connection = %connection, %version))]
    pub async fn read_version<T: DeserializeOwned>(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        version: Version,
    ) -> Result<Stored<T>, Error> {
        let keys = self.keys(tenant, connection);
        let key = &keys.credentials;
        if let Some(Entry { credentials }) = self.cache().get(key.path(), version.get()) {
            return Ok(Stored {
                value: credentials,
                version,
            });
        }
        let Some(read) = self.read(key, Some(version)).await? else {
            return Err(not_found(key, Some(version)));
        };
        let entry: Entry<T> = decode(key, read.data.clone())?;
        self.cache().insert(key.path(), version.get(), &read.data);
        Ok(Stored {
            value: entry.credentials,
            version,
        })
    }

    /// Reads the credentials a setup staged as `version`, for validation. Setups begun before
    /// the one-secret layout staged them in the legacy `staged` secret: they are read there
    /// when the connection's `credentials` secret lacks that version.
    ///
    /// # Errors
    ///
    /// As [`read_version`](Self::read_version).
    pub async fn read_staged<T: DeserializeOwned>(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        version: Version,
    ) -> Result<T, Error> {
        match self.read_version(tenant, connection, version).await {
            Err(Error::NotFound { path }) => {
                let keys = self.keys(tenant, connection);
                match self.read(&keys.staged, Some(version)).await? {
                    Some(read) => Ok(decode::<Entry<T>>(&keys.staged, read.data)?.credentials),
                    None => Err(Error::NotFound { path }),
                }
            }
            read => read.map(|stored| stored.value),
        }
    }

    /// Writes renewed credentials as a new version of the connection's `credentials` secret and
    /// returns it; the caller then moves PostgreSQL's pointer to it with check-and-set on the
    /// version it renewed, and [discards](Self::discard) the loser: the old version when the
    /// pointer moved, this one when it did not.
    ///
    /// The new version goes into this process's cache: it is the one its next run reads.
    ///
    /// # Errors
    ///
    /// [`Error::Serialization`] when `credentials` do not serialize; Vault errors otherwise.
    #[tracing::instrument(skip_all, fields(tenant = %tenant, connection = %connection))]
    pub async fn rotate<T: Serialize>(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        credentials: &T,
    ) -> Result<Version, Error> {
        let keys = self.keys(tenant, connection);
        let key = &keys.credentials;
        let data = encode(key, &Entry { credentials })?;
        let version = self.write(key, &data).await?;
        self.cache().insert(key.path(), version.get(), &data);
        Ok(version)
    }

    /// Destroys versions of the connection's credentials that are no longer in use, in one
    /// request, and drops them from this process's cache. Destroying a destroyed version
    /// succeeds.
    ///
    /// # Errors
    ///
    /// Vault errors only.
    #[tracing::instrument(skip_all, fields(tenant = %tenant, connection = %connection))]
    pub async fn discard(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        versions: &[Version],
    ) -> Result<(), Error> {
        let keys = self.keys(tenant, connection);
        for version in versions {
            self.cache().remove(keys.credentials.path(), version.get());
        }
        self.destroy(&keys.credentials, versions).await
    }

    /// Reads the credentials of a connection set up before the one-secret layout (its
    /// PostgreSQL row names no version) from the legacy `active` secret, and copies them into
    /// a new version of its `credentials` secret, which is returned. The caller points
    /// PostgreSQL at that version with check-and-set (and discards it when it loses), then
    /// [retires](Self::retire_legacy) the legacy secrets.
    ///
    /// When the legacy `active` secret does not exist yet, because the setup's save step ran
    /// before the layout changed only up to its validation, `staged_version` (the version the
    /// save event carries) of the legacy `staged` secret is copied instead.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when neither exists; Vault errors otherwise.
    #[tracing::instrument(skip_all, fields(tenant = %tenant, connection = %connection))]
    pub async fn adopt_legacy<T: DeserializeOwned>(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        staged_version: Option<Version>,
    ) -> Result<Stored<T>, Error> {
        let keys = self.keys(tenant, connection);
        let credentials = match self.read(&keys.active, None).await? {
            Some(read) => decode::<Active<Value>>(&keys.active, read.data)?.credentials,
            None => {
                let staged = match staged_version {
                    Some(version) => self.read(&keys.staged, Some(version)).await?,
                    None => None,
                };
                let Some(read) = staged else {
                    return Err(not_found(&keys.active, None));
                };
                decode::<Entry<Value>>(&keys.staged, read.data)?.credentials
            }
        };
        let value: T = decode(&keys.active, credentials.clone())?;
        let data = encode(&keys.credentials, &Entry { credentials })?;
        let version = self.write(&keys.credentials, &data).await?;
        self.cache()
            .insert(keys.credentials.path(), version.get(), &data);
        Ok(Stored { value, version })
    }

    /// Deletes the legacy `staged` and `active` secrets of a connection whose credentials were
    /// [adopted](Self::adopt_legacy). Retiring them twice succeeds.
    ///
    /// # Errors
    ///
    /// Vault errors only.
    pub async fn retire_legacy(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
    ) -> Result<(), Error> {
        let keys = self.keys(tenant, connection);
        self.delete_all(&keys.active).await?;
        self.delete_all(&keys.staged).await
    }

    /// Reads the legacy `active` secret of a connection set up before the one-secret layout,
    /// without adopting it; `None` when there is none.
    ///
    /// # Errors
    ///
    /// [`Error::Serialization`] when it is not a `T`; Vault errors otherwise.
    pub async fn read_legacy<T: DeserializeOwned>(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
    ) -> Result<Option<T>, Error> {
        let keys = self.keys(tenant, connection);
        let Some(read) = self.read(&keys.active, None).await? else {
            return Ok(None);
        };
        Ok(Some(
            decode::<Active<T>>(&keys.active, read.data)?.credentials,
        ))
    }

    /// Deletes every version and the metadata of the connection's credentials (and of the
    /// legacy secrets), and drops them from this process's cache. Deleting a deleted
    /// connection succeeds.
    ///
    /// # Errors
    ///
    /// Vault errors only.
    #[tracing::instrument(skip_all, fields(tenant = %tenant, connection = %connection))]
    pub async fn delete(&self, tenant: &TenantId, connection: &ConnectionId) -> Result<(), Error> {
        self.forget(tenant, connection);
        let keys = self.keys(tenant, connection);
        self.delete_all(&keys.credentials).await?;
        self.delete_all(&keys.active).await?;
        self.delete_all(&keys.staged).await
    }

    /// Drops the connection's credentials from this process's cache, as a worker does when it
    /// learns that the connection is gone.
    pub fn forget(&self, tenant: &TenantId, connection: &ConnectionId) {
        let keys = self.keys(tenant, connection);
        self.cache().forget(&keys.prefix);
    }

    /// Whether a version of the connection's credentials is in this process's cache.
    pub fn is_cached(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        version: Version,
    ) -> bool {
        let keys = self.keys(tenant, connection);
        self.cache()
            .get::<IgnoredAny>(keys.credentials.path(), version.get())
            .is_some()
    }
}

fn not_found(key: &Key<'_>, version: Option<Version>) -> Error {
    Error::NotFound {
        path: key.at(version),
    }
}

fn conflict(key: &Key<'_>, expected: Version, actual: Option<Version>) -> Error {
    Error::Conflict {
        path: key.data(),
        expected,
        actual,
    }
}
