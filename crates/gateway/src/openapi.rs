//! The OpenAPI document, served at `/api/openapi.json`.
//!
//! Besides what the handlers declare, it holds one component schema per
//! stream of every connector, `Record.<connector>.<stream>` (such as
//! `Record.wordpress.posts`): the JSON Schema of the `payload` of that
//! stream's records, from [`fleet_connectors::stream_schemas`].

use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::AppState;
use crate::routes::{connection_health, connections, connectors, oauth, records, webhooks};

/// The gateway's API description, generated from the handlers; served
/// with the record schemas as [`openapi_document`].
#[derive(Debug, OpenApi)]
#[openapi(
    info(title = "connector-fleet", description = "Connect SaaS tenants' third-party accounts."),
    paths(
        connectors::list,
        connections::create,
        connections::list,
        connections::read,
        connections::sync_now,
        connections::remove,
        connections::records,
        connection_health::read,
        records::list,
        webhooks::create,
        webhooks::list,
        webhooks::remove,
        webhooks::deliveries,
        webhooks::redeliver,
        oauth::authorize,
        oauth::callback,
    ),
    modifiers(&TenantToken)
)]
pub struct ApiDoc;

#[derive(Debug)]
struct TenantToken;

impl Modify for TenantToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "tenant_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// The document served at `/api/openapi.json`: [`ApiDoc`] plus the
/// `Record.<connector>.<stream>` component schemas, added as committed
/// (utoipa's schema model would drop keywords it does not know, such as
/// `$schema`).
pub fn openapi_document() -> Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_else(|_| json!({}));
    let schemas = &mut doc["components"]["schemas"];
    for stream in fleet_connectors::stream_schemas() {
        schemas[stream.name()] = stream.schema();
    }
    doc
}

pub(crate) fn router() -> Router<AppState> {
    let doc = openapi_document();
    Router::new().route("/openapi.json", get(|| async move { Json(doc) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_record_schema_reaches_the_document_as_committed() {
        let doc = openapi_document();

        for stream in fleet_connectors::stream_schemas() {
            let served = &doc["components"]["schemas"][stream.name()];
            assert_eq!(served, &stream.schema(), "{}", stream.name());
        }
    }
}
