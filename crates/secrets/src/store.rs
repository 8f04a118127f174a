//! The operations on a connection's credentials.

use fleet_events::{ConnectionId, TenantId};
use serde::{Serialize, de::DeserializeOwned, de::IgnoredAny};
use serde_json::Value;
use tracing::debug;

use crate::{
    Client, Error, Version,
    envelope::{Active, Staged, decode, encode},
    key::Key,
};

/// How often [`Client::promote`] re-reads and tries again after losing a check-and-set race.
const PROMOTE_ATTEMPTS: usize = 5;

/// Credentials read from the store, with the version they were read at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored<T> {
    /// The credentials.
    pub value: T,
    /// The KV version they were read at: the `expected` version of the next
    /// [`rotate`](Client::rotate).
    pub version: Version,
}

impl Client {
    /// Stages credentials for validation: writes a new version of the connection's `staged`
    /// secret and returns its number, which the validate and save events carry.
    ///
    /// Every call adds a version, even for equal credentials.
    ///
    /// # Errors
    ///
    /// [`Error::Serialization`] when `credentials` do not serialize; Vault errors otherwise.
    #[tracing::instrument(skip_all, fields(tenant = %tenant, connection = %connection))]
    pub async fn stage<T: Serialize>(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        credentials: &T,
    ) -> Result<Version, Error> {
        let keys = self.keys(tenant, connection);
        let data = encode(&keys.staged, &Staged { credentials })?;
        self.write(&keys.staged, &data).await
    }

    /// Reads exactly `version` of the connection's staged credentials.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when that version does not exist or was destroyed (promoted, or the
    /// connection deleted); [`Error::Serialization`] when it is not a `T`.
    #[tracing::instrument(skip_all, fields(tenant = %tenant, connection = %connection, %version))]
    pub async fn read_staged<T: DeserializeOwned>(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        version: Version,
    ) -> Result<T, Error> {
        let keys = self.keys(tenant, connection);
        let Some(read) = self.read(&keys.staged, Some(version)).await? else {
            return Err(not_found(&keys.staged, Some(version)));
        };
        let staged: Staged<T> = decode(&keys.staged, read.data)?;
        Ok(staged.credentials)
    }

    /// Makes staged `version` the connection's active credentials and destroys it in staging.
    ///
    /// The write is a check-and-set on `active`'s current version, and `active` records the
    /// staged version it descends from. Promotion writes only when `active` does not exist or
    /// descends from an older staged version. When it already descends from `staged_version`
    /// (a redelivered save step, possibly after rotations) or a newer one (a save step that
    /// arrives after a later one), nothing is written: the staged version is destroyed if it is
    /// still there and `active`'s current version is returned. So a save step can run any
    /// number of times with one effect, and never overwrites a rotated token with the
    /// credentials it was rotated from.
    ///
    /// Most promotions are a connection's first, so the first write expects `active` not to
    /// exist, which saves reading it: three requests (read staged, write, destroy). When
    /// `active` exists, the check-and-set fails, and promotion reads `active`, decides, and
    /// writes against the version it read, up to 5 writes in all.
    ///
    /// Returns the version of `active` that holds these credentials or their successors.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the staged version is gone and `active` does not descend from
    /// it; [`Error::Conflict`] when other writers won 5 races in a row (retry the step).
    #[tracing::instrument(skip_all, fields(tenant = %tenant, connection = %connection, %staged_version))]
    pub async fn promote(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        staged_version: Version,
    ) -> Result<Version, Error> {
        let keys = self.keys(tenant, connection);
        let (staged, active) = (&keys.staged, &keys.active);
        let Some(read) = self.read(staged, Some(staged_version)).await? else {
            // Promoted already (and destroyed), or never staged.
            return match self.lineage(active).await? {
                Some((current, lineage)) if lineage >= staged_version => Ok(current),
                _ => Err(not_found(staged, Some(staged_version))),
            };
        };
        let Staged { credentials } = decode::<Staged<Value>>(staged, read.data)?;
        let data = encode(
            active,
            &Active {
                credentials,
                staged_version,
            },
        )?;
        let mut expected = Version::new(0);
        for attempt in 1..=PROMOTE_ATTEMPTS {
            if let Some(promoted) = self.write_cas(active, &data, expected).await? {
                self.destroy(staged, staged_version).await?;
                return Ok(promoted);
            }
            if attempt > 1 {
                debug!(%expected, "Another writer changed the active credentials; promoting again.");
            }
            // A write retried after its answer was lost also lands here, and
            // finds its own lineage.
            match self.lineage(active).await? {
                Some((current, lineage)) if lineage >= staged_version => {
                    self.destroy(staged, staged_version).await?;
                    return Ok(current);
                }
                Some((current, _)) => expected = current,
                None => expected = Version::new(0),
            }
        }
        Err(conflict(active, expected, None))
    }

    /// Reads the connection's active credentials and their version.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when nothing was promoted yet or the connection was deleted;
    /// [`Error::Serialization`] when they are not a `T`.
    #[tracing::instrument(skip_all, fields(tenant = %tenant, connection = %connection))]
    pub async fn read_active<T: DeserializeOwned>(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
    ) -> Result<Stored<T>, Error> {
        let keys = self.keys(tenant, connection);
        let Some(read) = self.read(&keys.active, None).await? else {
            return Err(not_found(&keys.active, None));
        };
        let active: Active<T> = decode(&keys.active, read.data)?;
        Ok(Stored {
            value: active.credentials,
            version: read.version,
        })
    }

    /// Replaces the active credentials, typically after a token refresh, if `active` is still
    /// at version `expected`; returns the new version.
    ///
    /// The new version keeps the lineage (the staged version) of the one it replaces. When the
    /// check-and-set write loses but `active` holds exactly these credentials, the write was
    /// this call's own, retried after its answer was lost, and its version is returned.
    ///
    /// # Errors
    ///
    /// [`Error::Conflict`] with the version found when someone else wrote first (a promotion
    /// or another rotation): re-read, and use the winner's credentials;
    /// [`Error::NotFound`] when there are no active credentials.
    #[tracing::instrument(skip_all, fields(tenant = %tenant, connection = %connection, %expected))]
    pub async fn rotate<T: Serialize>(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        credentials: &T,
        expected: Version,
    ) -> Result<Version, Error> {
        let keys = self.keys(tenant, connection);
        let active = &keys.active;
        let Some(current) = self.read(active, None).await? else {
            return Err(not_found(active, None));
        };
        if current.version != expected {
            return Err(conflict(active, expected, Some(current.version)));
        }
        let lineage: Active<IgnoredAny> = decode(active, current.data)?;
        let credentials = encode(active, credentials)?;
        let data = encode(
            active,
            &Active {
                credentials: &credentials,
                staged_version: lineage.staged_version,
            },
        )?;
        if let Some(version) = self.write_cas(active, &data, expected).await? {
            return Ok(version);
        }
        self.settle_lost_rotation(active, &credentials, expected)
            .await
    }

    /// Deletes the connection's staged and active credentials with all their versions and
    /// metadata. Deleting a deleted connection succeeds.
    ///
    /// # Errors
    ///
    /// Vault errors only.
    #[tracing::instrument(skip_all, fields(tenant = %tenant, connection = %connection))]
    pub async fn delete(&self, tenant: &TenantId, connection: &ConnectionId) -> Result<(), Error> {
        let keys = self.keys(tenant, connection);
        self.delete_all(&keys.active).await?;
        self.delete_all(&keys.staged).await
    }

    /// `active`'s current version and the staged version it descends from, if it exists.
    async fn lineage(&self, active: &Key<'_>) -> Result<Option<(Version, Version)>, Error> {
        let Some(read) = self.read(active, None).await? else {
            return Ok(None);
        };
        let lineage = decode::<Active<IgnoredAny>>(active, read.data)?.staged_version;
        Ok(Some((read.version, lineage)))
    }

    /// Tells a lost rotation from one whose own earlier attempt won.
    async fn settle_lost_rotation(
        &self,
        active: &Key<'_>,
        credentials: &Value,
        expected: Version,
    ) -> Result<Version, Error> {
        let Some(current) = self.read(active, None).await? else {
            return Err(not_found(active, None));
        };
        let winner: Active<Value> = decode(active, current.data)?;
        if winner.credentials == *credentials {
            return Ok(current.version);
        }
        Err(conflict(active, expected, Some(current.version)))
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
