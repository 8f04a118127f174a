//! `/api/connectors`: what the platform can connect.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::Tenant;
use crate::{AppState, Error};

/// The routes, relative to `/api`.
pub fn router() -> Router<AppState> {
    Router::new().route("/connectors", get(list))
}

/// One connector on offer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectorView {
    /// Catalog id, used in `POST /api/connections`.
    pub id: String,
    /// The provider's name.
    pub display_name: String,
    /// `oauth2`, `oauth1`, `app_password`, `api_key`, `basic` or
    /// `oauth2_client_credentials`: OAuth connectors (`oauth2`, `oauth1`)
    /// connect through the provider's consent page, the others with the
    /// `form` fields and the `settings`.
    pub auth: String,
    /// Where users read about connecting.
    pub docs_url: String,
    /// Seconds between scheduled syncs by default.
    pub default_sync_interval_seconds: u64,
    /// The fields `POST /api/connections` takes as `credentials`, in order
    /// (empty for OAuth connectors).
    #[schema(value_type = Vec<Object>)]
    pub form: Vec<fleet_connectors::catalog::FormField>,
    /// The per-connection settings `GET /oauth/authorize/{connector_id}`
    /// takes in its query (or, for connectors of typed-in credentials,
    /// `POST /api/connections` among its `credentials`), in order: `name`, `label`, `help`, `example`,
    /// `pattern` (the whole value must match), `allowed` (the only values
    /// allowed, when not empty) and `required`.
    #[schema(value_type = Vec<Object>)]
    pub settings: Vec<fleet_connectors::catalog::Setting>,
    /// The streams it syncs.
    pub streams: Vec<StreamView>,
}

/// A stream of a connector.
#[derive(Debug, Serialize, ToSchema)]
pub struct StreamView {
    /// Its name, used in the records API.
    pub name: String,
    /// What it holds.
    pub description: String,
    /// The name of the JSON Schema of its records' `payload`, a component
    /// of the OpenAPI document (`#/components/schemas/<schema>`), such as
    /// `Record.wordpress.posts`.
    pub schema: Option<String>,
}

/// The connector catalog.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectorList {
    /// Sorted by id.
    pub connectors: Vec<ConnectorView>,
}

/// Lists the connectors a tenant can connect.
#[utoipa::path(get, path = "/api/connectors",
    responses((status = 200, body = ConnectorList), (status = 401, body = crate::ErrorBody),
              (status = 429, body = crate::ErrorBody)),
    security(("tenant_token" = [])))]
pub(crate) async fn list(
    State(state): State<AppState>,
    _tenant: Tenant,
) -> Result<Json<ConnectorList>, Error> {
    let registry = &state.inner.connectors;
    let mut connectors: Vec<ConnectorView> = registry
        .catalog()
        .iter()
        .map(|entry| ConnectorView {
            id: entry.id.to_string(),
            display_name: entry.display_name.clone(),
            auth: entry.auth.kind().to_owned(),
            docs_url: entry.docs_url.to_string(),
            default_sync_interval_seconds: entry.default_sync_interval.as_secs(),
            form: entry.form.clone(),
            settings: entry
                .settings
                .iter()
                .filter(|s| s.is_asked())
                .cloned()
                .collect(),
            streams: registry
                .get(&entry.id)
                .map(|connector| {
                    connector
                        .streams()
                        .iter()
                        .map(|s| StreamView {
                            name: s.name.to_owned(),
                            description: s.description.to_owned(),
                            schema: connector.stream_schema(s.name).map(|schema| schema.name()),
                        })
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect();
    connectors.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(Json(ConnectorList { connectors }))
}
