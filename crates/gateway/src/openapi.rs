//! The OpenAPI document, served at `/api/openapi.json`.

use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::AppState;
use crate::routes::{connection_health, connections, connectors, oauth, records, webhooks};

/// The gateway's API description, generated from the handlers.
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

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/openapi.json", get(|| async { Json(ApiDoc::openapi()) }))
}
