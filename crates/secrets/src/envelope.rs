//! The JSON shapes stored in KV v2 `data`.
//!
//! The credentials sit under a `credentials` key instead of being the data itself, so any
//! serializable credential type fits (KV v2 data must be an object) and `active` can carry its
//! lineage beside it.

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::Value;

use crate::{Error, Version, key::Key};

/// What a version of `staged` holds: `{"credentials": …}`.
#[derive(Serialize, Deserialize)]
pub(crate) struct Staged<C> {
    pub(crate) credentials: C,
}

/// What a version of `active` holds: `{"credentials": …, "staged_version": n}`.
#[derive(Serialize, Deserialize)]
pub(crate) struct Active<C> {
    pub(crate) credentials: C,
    /// The staged version these credentials descend from: the one promoted, kept through
    /// rotations. Promotion compares it with the version it is asked to promote.
    pub(crate) staged_version: Version,
}

/// Serializes a value bound for `key`.
pub(crate) fn encode<T: Serialize>(key: &Key<'_>, value: &T) -> Result<Value, Error> {
    // serde's error is dropped: its message can quote the value.
    serde_json::to_value(value).map_err(|_| Error::Serialization { path: key.data() })
}

/// Deserializes data read from `key`.
pub(crate) fn decode<T: DeserializeOwned>(key: &Key<'_>, data: Value) -> Result<T, Error> {
    // serde's error is dropped: "invalid type: string \"…\"" quotes the stored secret.
    serde_json::from_value(data).map_err(|_| Error::Serialization { path: key.data() })
}
