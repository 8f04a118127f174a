//! The JSON shapes stored in KV v2 `data`.
//!
//! The credentials sit under a `credentials` key instead of being the data itself, so any
//! serializable credential type fits (KV v2 data must be an object) and the legacy `active`
//! secret could carry its lineage beside it.

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::Value;

use crate::{Error, key::Key};

/// What a version of `credentials` (and of the legacy `staged`) holds: `{"credentials": …}`.
#[derive(Serialize, Deserialize)]
pub(crate) struct Entry<C> {
    pub(crate) credentials: C,
}

/// What a version of the legacy `active` holds: `{"credentials": …, "staged_version": n}`;
/// only the credentials are read.
#[derive(Deserialize)]
pub(crate) struct Active<C> {
    pub(crate) credentials: C,
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
