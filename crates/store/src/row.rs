//! Helpers between rows and Rust values: narrowing decodes, counts, and
//! foreign-key failures.

use fleet_events::{ConnectionId, TenantId};
use sqlx::{Decode, Postgres, Row as _, Type, postgres::PgRow};

use crate::Error;

/// Reads `column` as `T` and narrows it with `convert`, reporting a refused
/// value as a decode error of that column.
///
/// The schema's checks keep such values out, so this fails only if a row was
/// written around them (by hand, or by a newer schema).
pub(crate) fn decode_column<'r, T, U, E>(
    row: &'r PgRow,
    column: &str,
    convert: impl FnOnce(T) -> Result<U, E>,
) -> Result<U, sqlx::Error>
where
    T: Decode<'r, Postgres> + Type<Postgres>,
    E: std::error::Error + Send + Sync + 'static,
{
    convert(row.try_get(column)?).map_err(|source| sqlx::Error::ColumnDecode {
        index: column.to_owned(),
        source: Box::new(source),
    })
}

/// A text column holds a value outside the set the schema's check allows.
#[derive(Debug, thiserror::Error)]
#[error("unexpected value {0:?}")]
pub(crate) struct UnexpectedValue(pub(crate) String);

/// [`Error::ConnectionNotFound`] when a statement failed because the
/// connection row it references does not exist (a foreign-key violation),
/// `otherwise(error)` for any other failure.
pub(crate) fn missing_connection_or(
    error: sqlx::Error,
    tenant: &TenantId,
    connection: &ConnectionId,
    otherwise: fn(sqlx::Error) -> Error,
) -> Error {
    match &error {
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => Error::ConnectionNotFound {
            tenant: tenant.clone(),
            connection: connection.clone(),
        },
        _ => otherwise(error),
    }
}

/// A count or size as stored in a `bigint` column, saturating at `i64::MAX`
/// (no count reaches it).
pub(crate) fn to_bigint(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// `text` as PostgreSQL can store it: text and jsonb cannot hold NUL, which
/// a provider's message or record may; each becomes U+FFFD.
pub(crate) fn storable_text(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains('\0') {
        std::borrow::Cow::Owned(text.replace('\0', "\u{fffd}"))
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

/// Whether any string (key or value) of `value` holds NUL.
pub(crate) fn has_nul(value: &serde_json::Value) -> bool {
    use serde_json::Value;
    match value {
        Value::String(text) => text.contains('\0'),
        Value::Array(items) => items.iter().any(has_nul),
        Value::Object(fields) => fields
            .iter()
            .any(|(key, value)| key.contains('\0') || has_nul(value)),
        _ => false,
    }
}

/// `value` with every NUL of its strings (keys included) replaced by U+FFFD.
pub(crate) fn without_nul(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::String(text) => Value::String(storable_text(&text).into_owned()),
        Value::Array(items) => Value::Array(items.into_iter().map(without_nul).collect()),
        Value::Object(fields) => Value::Object(
            fields
                .into_iter()
                .map(|(key, value)| (storable_text(&key).into_owned(), without_nul(value)))
                .collect(),
        ),
        other => other,
    }
}
