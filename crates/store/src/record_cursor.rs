//! [`RecordCursor`]: where a page of [`Store::list_records`](crate::Store::list_records) ends.

use std::{fmt, str::FromStr};

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};

use crate::Record;

/// The position after the last record of a page, for asking for the next one.
///
/// Opaque to API users: it travels as a URL-safe string (`Display` and
/// `FromStr`), base64url of the listing key `(stream, changed_at,
/// external_id)` of that record. A client that edits it only moves its own
/// position: every listing is still filtered by tenant and connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordCursor {
    pub(crate) stream: String,
    /// The record's `deleted_at`, else its `updated_at`, else its
    /// `synced_at`: the `changed_at` column.
    pub(crate) changed_at: DateTime<Utc>,
    pub(crate) external_id: String,
}

/// The key the listing is ordered by, as it is encoded: a JSON array.
type Key = (String, DateTime<Utc>, String);

impl RecordCursor {
    /// The position right after `record`.
    pub(crate) fn after(record: &Record) -> Self {
        Self {
            stream: record.stream.clone(),
            changed_at: record
                .deleted_at
                .or(record.updated_at)
                .unwrap_or(record.synced_at),
            external_id: record.external_id.clone(),
        }
    }
}

impl fmt::Display for RecordCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = (&self.stream, self.changed_at, &self.external_id);
        let json = serde_json::to_vec(&key).map_err(|_| fmt::Error)?;
        f.write_str(&URL_SAFE_NO_PAD.encode(json))
    }
}

impl FromStr for RecordCursor {
    type Err = InvalidCursor;

    fn from_str(value: &str) -> Result<Self, InvalidCursor> {
        let json = URL_SAFE_NO_PAD
            .decode(value)
            .map_err(|source| InvalidCursor(source.into()))?;
        let (stream, changed_at, external_id) =
            serde_json::from_slice::<Key>(&json).map_err(|source| InvalidCursor(source.into()))?;
        storable(&[&stream, &external_id])?;
        Ok(Self {
            stream,
            changed_at,
            external_id,
        })
    }
}

/// The position after the last record of a page of a tenant's records in
/// change order ([`Store::list_tenant_records`](crate::Store::list_tenant_records)).
///
/// Opaque to API users like [`RecordCursor`]: base64url of the key
/// `(stored_at, connection, stream, external_id)`. Every listing is still
/// filtered by tenant (and the caller's connections), so an edited cursor
/// only moves the caller's own position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeCursor {
    pub(crate) stored_at: DateTime<Utc>,
    pub(crate) connection: String,
    pub(crate) stream: String,
    pub(crate) external_id: String,
}

/// [`ChangeCursor`]'s key as it is encoded.
type ChangeKey = (DateTime<Utc>, String, String, String);

impl fmt::Display for ChangeCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = (
            self.stored_at,
            &self.connection,
            &self.stream,
            &self.external_id,
        );
        let json = serde_json::to_vec(&key).map_err(|_| fmt::Error)?;
        f.write_str(&URL_SAFE_NO_PAD.encode(json))
    }
}

impl FromStr for ChangeCursor {
    type Err = InvalidCursor;

    fn from_str(value: &str) -> Result<Self, InvalidCursor> {
        let json = URL_SAFE_NO_PAD
            .decode(value)
            .map_err(|source| InvalidCursor(source.into()))?;
        let (stored_at, connection, stream, external_id) =
            serde_json::from_slice::<ChangeKey>(&json)
                .map_err(|source| InvalidCursor(source.into()))?;
        storable(&[&connection, &stream, &external_id])?;
        Ok(Self {
            stored_at,
            connection,
            stream,
            external_id,
        })
    }
}

/// Refuses a cursor whose strings hold NUL, which no stored key has and a
/// text parameter cannot carry.
fn storable(texts: &[&str]) -> Result<(), InvalidCursor> {
    match texts.iter().find(|text| text.contains('\0')) {
        Some(_) => Err(InvalidCursor("a key with a NUL character".into())),
        None => Ok(()),
    }
}

/// A string that is not a [`RecordCursor`] this crate made: a client bug or
/// tampering, so a bad request rather than a server error.
#[derive(Debug, thiserror::Error)]
#[error("invalid record cursor")]
pub struct InvalidCursor(#[source] Box<dyn std::error::Error + Send + Sync>);

#[cfg(test)]
mod tests {
    use chrono::TimeZone as _;

    use super::*;

    fn cursor() -> RecordCursor {
        RecordCursor {
            stream: "posts".to_owned(),
            changed_at: Utc.timestamp_opt(1_700_000_000, 123_456_000).unwrap(),
            external_id: "a/b?c=d&e".to_owned(),
        }
    }

    #[test]
    fn a_cursor_survives_its_string_form() {
        let encoded = cursor().to_string();

        assert_eq!(encoded.parse::<RecordCursor>().unwrap(), cursor());
    }

    #[test]
    fn the_string_form_is_url_safe() {
        let encoded = cursor().to_string();

        assert!(
            encoded
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "{encoded}"
        );
    }

    #[test]
    fn a_change_cursor_survives_its_string_form_and_is_no_record_cursor() {
        let change = ChangeCursor {
            stored_at: Utc.timestamp_opt(1_700_000_000, 5_000).unwrap(),
            connection: "c1".to_owned(),
            stream: "posts".to_owned(),
            external_id: "42".to_owned(),
        };
        let encoded = change.to_string();

        assert_eq!(encoded.parse::<ChangeCursor>().unwrap(), change);
        assert!(encoded.parse::<RecordCursor>().is_err());
        assert!(cursor().to_string().parse::<ChangeCursor>().is_err());
    }

    #[test]
    fn strings_that_are_not_cursors_are_refused() {
        let not_json = URL_SAFE_NO_PAD.encode("hello");
        let wrong_shape = URL_SAFE_NO_PAD.encode(r#"["posts", "yesterday", "1"]"#);
        let truncated = &cursor().to_string()[..10];

        let nul = URL_SAFE_NO_PAD.encode(r#"["posts\u0000", "2024-01-01T00:00:00Z", "1"]"#);
        for value in [
            "",
            "!!!",
            not_json.as_str(),
            wrong_shape.as_str(),
            truncated,
            nul.as_str(),
        ] {
            let err = value.parse::<RecordCursor>().unwrap_err();
            assert_eq!(err.to_string(), "invalid record cursor", "{value:?}");
        }
    }
}
