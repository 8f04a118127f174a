//! `/api/webhooks`: a tenant's webhook endpoints, their delivery log, and
//! manual redelivery.
//!
//! Endpoint URLs obey the connectors' outbound-address rule (no private or
//! internal addresses unless the operator allows their network); each
//! endpoint's signing secret is shown once, in the answer to its creation.
//! What is delivered, and how to check a delivery's signature, is in
//! docs/api.md ("Webhooks").

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use fleet_connectors::webhook::{Sender, Signer};
use fleet_store::{WebhookDelivery, WebhookEndpoint};
use secrecy::ExposeSecret as _;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::Tenant;
use crate::{AppState, Error};

/// Endpoints one tenant may have.
pub const MAX_ENDPOINTS: usize = 10;
/// Longest endpoint URL accepted: every list and delivery reads it.
const MAX_URL_BYTES: usize = 2048;

/// What the webhook routes need: the signer that derives endpoint secrets
/// and the sender whose rule endpoint URLs must pass.
#[derive(Debug, Clone)]
pub struct Webhooks {
    /// Derives each endpoint's signing secret.
    pub signer: Signer,
    /// Checks endpoint URLs against the outbound-address rule.
    pub sender: Sender,
}

/// The routes, relative to `/api`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/webhooks", post(create).get(list))
        .route("/webhooks/{id}", axum::routing::delete(remove))
        .route("/webhooks/{id}/deliveries", get(deliveries))
        .route(
            "/webhooks/{id}/deliveries/{delivery}/redeliver",
            post(redeliver),
        )
}

/// A new webhook endpoint.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    /// Where deliveries are POSTed: an https URL on the public internet.
    pub url: String,
    /// A note for the tenant's own use, up to 200 characters.
    pub description: Option<String>,
}

/// A webhook endpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookView {
    /// Its id.
    pub id: String,
    /// Where deliveries go.
    pub url: String,
    /// The tenant's note.
    pub description: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

impl From<WebhookEndpoint> for WebhookView {
    fn from(endpoint: WebhookEndpoint) -> Self {
        Self {
            id: endpoint.id.to_string(),
            url: endpoint.url,
            description: endpoint.description,
            created_at: endpoint.created_at,
        }
    }
}

/// The answer to a create: the endpoint and its signing secret, shown only
/// here.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedWebhook {
    /// The endpoint.
    #[serde(flatten)]
    pub endpoint: WebhookView,
    /// The secret deliveries are signed with (`whsec_...`); keep it, it is
    /// not shown again.
    pub secret: String,
}

/// The tenant's webhook endpoints.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookList {
    /// Oldest first.
    pub webhooks: Vec<WebhookView>,
}

/// One delivery of the log.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryView {
    /// Its id, for redelivery.
    pub id: i64,
    /// The event's id, sent as `Fleet-Webhook-Id`.
    pub event_id: String,
    /// `connection.state_changed` or `sync.completed`.
    pub event_type: String,
    /// The connection it is about.
    pub connection: String,
    /// `pending` (due at `next_attempt_at`), `delivered`, or `failed`
    /// (given up; redeliver it by hand).
    pub state: String,
    /// Attempts so far.
    pub attempts: u32,
    /// The endpoint's last HTTP status.
    pub last_status: Option<u16>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When it was filed.
    pub created_at: DateTime<Utc>,
    /// When the next attempt is due, while pending.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// When the endpoint accepted it.
    pub delivered_at: Option<DateTime<Utc>>,
}

impl From<WebhookDelivery> for DeliveryView {
    fn from(d: WebhookDelivery) -> Self {
        let pending = d.state == "pending";
        Self {
            id: d.id,
            event_id: d.event_id.to_string(),
            event_type: d.event_type,
            connection: d.connection,
            state: d.state,
            attempts: d.attempts,
            last_status: d.last_status,
            last_error: d.last_error,
            created_at: d.created_at,
            next_attempt_at: pending.then_some(d.next_attempt_at),
            delivered_at: d.delivered_at,
        }
    }
}

/// A page of the delivery log.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryPage {
    /// Newest first.
    pub deliveries: Vec<DeliveryView>,
    /// Pass as `before` for the next (older) page; absent on the last one.
    pub next: Option<i64>,
}

/// Position in the delivery log.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryParams {
    /// Deliveries older than this one (the `next` of the previous page).
    pub before: Option<i64>,
    /// Deliveries per page, 1 to 100; 50 by default.
    pub limit: Option<u32>,
}

fn configured(state: &AppState) -> Result<&Webhooks, Error> {
    state.inner.webhooks.as_ref().ok_or_else(|| {
        Error::NotConfigured(
            "webhooks are not configured on this gateway (FLEET_WEBHOOKS__SIGNING_KEY)".to_owned(),
        )
    })
}

/// Webhooks concern the whole tenant: a token narrowed to some
/// connections may not manage them.
fn whole_tenant(tenant: &Tenant) -> Result<(), Error> {
    tenant.may_create().map_err(|_| {
        Error::Forbidden(
            "this token is limited to some connections (its `connections` claim), so it cannot \
             manage the tenant's webhooks; use a token for the whole tenant"
                .to_owned(),
        )
    })
}

async fn store<T>(call: impl Future<Output = Result<T, fleet_store::Error>>) -> Result<T, Error> {
    call.await.map_err(|e| {
        let transient = e.is_transient();
        Error::dependency(e, transient)
    })
}

/// The tenant's endpoint `id`, or 404.
async fn find(state: &AppState, tenant: &Tenant, id: &str) -> Result<WebhookEndpoint, Error> {
    let not_found = || Error::NotFound(format!("no webhook {id:?}"));
    let id = Uuid::parse_str(id).map_err(|_| not_found())?;
    store(state.inner.store.get_webhook_endpoint(tenant.id(), id))
        .await?
        .ok_or_else(not_found)
}

/// Creates a webhook endpoint. Its URL must be https and must not name a
/// private or internal address; the answer carries the endpoint's signing
/// secret, which is not shown again.
#[utoipa::path(post, path = "/api/webhooks", request_body = CreateWebhook,
    responses((status = 201, body = CreatedWebhook), (status = 401, body = crate::ErrorBody),
              (status = 403, body = crate::ErrorBody), (status = 422, body = crate::ErrorBody),
              (status = 429, body = crate::ErrorBody), (status = 503, body = crate::ErrorBody)),
    security(("tenant_token" = [])))]
pub(crate) async fn create(
    State(state): State<AppState>,
    tenant: Tenant,
    body: Result<Json<CreateWebhook>, JsonRejection>,
) -> Result<(StatusCode, Json<CreatedWebhook>), Error> {
    whole_tenant(&tenant)?;
    let webhooks = configured(&state)?;
    let Json(request) = body?;
    if request.url.len() > MAX_URL_BYTES {
        return Err(Error::invalid(
            "url",
            format!("url is longer than {MAX_URL_BYTES} bytes"),
        ));
    }
    let url = url::Url::parse(request.url.trim())
        .map_err(|_| Error::invalid("url", "url is not an absolute URL"))?;
    webhooks
        .sender
        .check(&url)
        .map_err(|e| Error::invalid("url", e.to_string()))?;
    let description = request.description.unwrap_or_default();
    if description.chars().count() > 200 {
        return Err(Error::invalid(
            "description",
            "description is longer than 200 characters",
        ));
    }
    let id = Uuid::now_v7();
    let created = store(state.inner.store.create_webhook_endpoint(
        tenant.id(),
        id,
        url.as_str(),
        &description,
        MAX_ENDPOINTS,
    ))
    .await?;
    let Some(endpoint) = created else {
        return Err(Error::invalid(
            "url",
            format!("a tenant has at most {MAX_ENDPOINTS} webhook endpoints; delete one first"),
        ));
    };
    let secret = webhooks.signer.secret(&id.to_string());
    Ok((
        StatusCode::CREATED,
        Json(CreatedWebhook {
            endpoint: endpoint.into(),
            secret: secret.expose_secret().to_owned(),
        }),
    ))
}

/// The tenant's webhook endpoints.
#[utoipa::path(get, path = "/api/webhooks",
    responses((status = 200, body = WebhookList), (status = 401, body = crate::ErrorBody),
              (status = 403, body = crate::ErrorBody), (status = 429, body = crate::ErrorBody)),
    security(("tenant_token" = [])))]
pub(crate) async fn list(
    State(state): State<AppState>,
    tenant: Tenant,
) -> Result<Json<WebhookList>, Error> {
    whole_tenant(&tenant)?;
    let endpoints = store(state.inner.store.list_webhook_endpoints(tenant.id())).await?;
    Ok(Json(WebhookList {
        webhooks: endpoints.into_iter().map(WebhookView::from).collect(),
    }))
}

/// Deletes a webhook endpoint and its delivery log; pending deliveries are
/// not sent.
#[utoipa::path(delete, path = "/api/webhooks/{id}", params(("id" = String, Path)),
    responses((status = 204), (status = 401, body = crate::ErrorBody),
              (status = 403, body = crate::ErrorBody), (status = 404, body = crate::ErrorBody),
              (status = 429, body = crate::ErrorBody)),
    security(("tenant_token" = [])))]
pub(crate) async fn remove(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(id): Path<String>,
) -> Result<StatusCode, Error> {
    whole_tenant(&tenant)?;
    let endpoint = find(&state, &tenant, &id).await?;
    store(
        state
            .inner
            .store
            .delete_webhook_endpoint(tenant.id(), endpoint.id),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The endpoint's delivery log, newest first.
#[utoipa::path(get, path = "/api/webhooks/{id}/deliveries",
    params(("id" = String, Path), DeliveryParams),
    responses((status = 200, body = DeliveryPage), (status = 401, body = crate::ErrorBody),
              (status = 403, body = crate::ErrorBody), (status = 404, body = crate::ErrorBody),
              (status = 422, body = crate::ErrorBody), (status = 429, body = crate::ErrorBody)),
    security(("tenant_token" = [])))]
pub(crate) async fn deliveries(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(id): Path<String>,
    params: Result<Query<DeliveryParams>, QueryRejection>,
) -> Result<Json<DeliveryPage>, Error> {
    whole_tenant(&tenant)?;
    let Query(params) = params?;
    let limit = params.limit.unwrap_or(50);
    if !(1..=100).contains(&limit) {
        return Err(Error::invalid("limit", "limit is not between 1 and 100"));
    }
    let endpoint = find(&state, &tenant, &id).await?;
    let deliveries = store(state.inner.store.list_webhook_deliveries(
        tenant.id(),
        endpoint.id,
        limit,
        params.before,
    ))
    .await?;
    let next = (deliveries.len() == limit as usize)
        .then(|| deliveries.last().map(|d| d.id))
        .flatten();
    Ok(Json(DeliveryPage {
        deliveries: deliveries.into_iter().map(DeliveryView::from).collect(),
        next,
    }))
}

/// Sends a delivery again, whatever its state: it becomes pending, due
/// now, with its attempts counted afresh. The event keeps its id, so a
/// receiver that already has it can tell.
#[utoipa::path(post, path = "/api/webhooks/{id}/deliveries/{delivery}/redeliver",
    params(("id" = String, Path), ("delivery" = i64, Path)),
    responses((status = 202), (status = 401, body = crate::ErrorBody),
              (status = 403, body = crate::ErrorBody), (status = 404, body = crate::ErrorBody),
              (status = 429, body = crate::ErrorBody)),
    security(("tenant_token" = [])))]
pub(crate) async fn redeliver(
    State(state): State<AppState>,
    tenant: Tenant,
    Path((id, delivery)): Path<(String, String)>,
) -> Result<StatusCode, Error> {
    whole_tenant(&tenant)?;
    tenant.starts_work(&state)?;
    let endpoint = find(&state, &tenant, &id).await?;
    let not_found = || Error::NotFound(format!("no delivery {delivery:?} of webhook {id:?}"));
    let delivery: i64 = delivery.parse().map_err(|_| not_found())?;
    let found = store(
        state
            .inner
            .store
            .redeliver_webhook(tenant.id(), endpoint.id, delivery),
    )
    .await?;
    if !found {
        return Err(not_found());
    }
    Ok(StatusCode::ACCEPTED)
}
