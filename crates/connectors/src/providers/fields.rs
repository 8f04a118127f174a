//! Reading what providers send: ids written as numbers or strings, listed
//! items with the fields a connector keys them by, numeric headers.

use reqwest::header::HeaderMap;
use serde::{
    Deserialize, Deserializer,
    de::{DeserializeOwned, Error as _},
};
use serde_json::Value;

/// An item of a listing: the fields `K` read out of it, and the whole item.
pub(crate) struct Item<K> {
    /// The fields the connector needs (id, timestamp).
    pub(crate) keys: K,
    /// The item as the provider sent it.
    pub(crate) payload: Value,
}

impl<'de, K: DeserializeOwned> Deserialize<'de> for Item<K> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let payload = Value::deserialize(deserializer)?;
        let keys = K::deserialize(&payload).map_err(D::Error::custom)?;
        Ok(Self { keys, payload })
    }
}

/// A provider id that may be a JSON number or a string (`1` or `"1"`), as
/// a string.
pub(crate) fn external_id<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Id {
        Number(u64),
        Text(String),
    }

    Ok(match Id::deserialize(deserializer)? {
        Id::Number(id) => id.to_string(),
        Id::Text(id) => id,
    })
}

/// A numeric response header, such as `X-WP-Total`.
pub(crate) fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn external_id_accepts_numbers_and_strings() {
        #[derive(Deserialize)]
        struct Item {
            #[serde(deserialize_with = "external_id")]
            id: String,
        }

        let number: Item = serde_json::from_str(r#"{"id": 7}"#).unwrap();
        let text: Item = serde_json::from_str(r#"{"id": "7"}"#).unwrap();

        assert_eq!(number.id, "7");
        assert_eq!(text.id, "7");
    }
}
