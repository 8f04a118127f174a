//! The JSON Schemas (draft 2020-12) of the record payloads each stream
//! stores, so that the platform can code against them.
//!
//! The schemas are committed files, `crates/connectors/schemas/<connector>/<stream>.json`,
//! embedded in the binary. Each names the fields the platform can rely on:
//! `required` lists only what the connector guarantees or the provider
//! always sends, and a stream that passes the provider's object through
//! allows fields the schema does not name (`additionalProperties: true`),
//! so that a provider adding a field breaks nothing. The connectors' tests
//! check every payload a sync against the simulator stores against its
//! stream's schema.

use serde_json::Value;

/// The connector name of the `account` stream that every OAuth 2.0 catalog
/// entry without a connector of its own shares (an operator's entries,
/// whose catalog ids are not known here).
pub const GENERIC_OAUTH2: &str = "generic-oauth2";

/// The schema of one stream's record payloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamSchema {
    /// The catalog id of the connector, such as `wordpress`, or
    /// [`GENERIC_OAUTH2`].
    pub connector: &'static str,
    /// The stream, such as `posts`.
    pub stream: &'static str,
    /// The schema as JSON text.
    text: &'static str,
}

impl StreamSchema {
    /// The schema's name: `Record.<connector>.<stream>`, such as
    /// `Record.wordpress.posts`; the component's name in the gateway's
    /// OpenAPI document.
    pub fn name(&self) -> String {
        format!("Record.{}.{}", self.connector, self.stream)
    }

    /// The schema as JSON text, as committed.
    pub fn text(&self) -> &'static str {
        self.text
    }

    /// The schema as a JSON value.
    ///
    /// # Panics
    ///
    /// Never for the embedded files, which the crate's tests parse.
    pub fn schema(&self) -> Value {
        serde_json::from_str(self.text).expect("an embedded schema is JSON")
    }
}

/// Declares the schema of `<connector>/<stream>.json`.
macro_rules! schema {
    ($connector:literal, $stream:literal) => {
        StreamSchema {
            connector: $connector,
            stream: $stream,
            text: include_str!(concat!("../schemas/", $connector, "/", $stream, ".json")),
        }
    };
}

/// Every schema, by connector, then in the connector's stream order.
static SCHEMAS: [StreamSchema; 10] = [
    schema!("fluentcrm", "subscribers"),
    schema!("fluentcrm", "lists"),
    schema!("generic-oauth2", "account"),
    schema!("google-analytics", "daily_metrics"),
    schema!("linkedin", "follower_statistics"),
    schema!("meta", "ad_insights"),
    schema!("trello", "boards"),
    schema!("trello", "cards"),
    schema!("wordpress", "posts"),
    schema!("wordpress", "pages"),
];

/// The schema of every stream of every built-in connector, with the
/// generic OAuth 2.0 connector's `account` under [`GENERIC_OAUTH2`].
pub fn stream_schemas() -> &'static [StreamSchema] {
    &SCHEMAS
}

/// The schema of `stream` of the connector named `connector` (a catalog id
/// or [`GENERIC_OAUTH2`]). To find the schema of a connection's records,
/// ask its connector: [`Connector::stream_schema`](crate::Connector::stream_schema)
/// also knows which connectors are generic.
pub fn stream_schema(connector: &str, stream: &str) -> Option<&'static StreamSchema> {
    SCHEMAS
        .iter()
        .find(|schema| schema.connector == connector && schema.stream == stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_embedded_schema_is_json_named_by_its_title() {
        for schema in stream_schemas() {
            let value = schema.schema();
            assert_eq!(value["title"], schema.name().as_str(), "{}", schema.name());
            assert_eq!(
                value["$schema"],
                "https://json-schema.org/draft/2020-12/schema",
                "{}",
                schema.name()
            );
        }
    }
}
