//! `/api/connections`: create (manual credentials), list, read, sync now,
//! delete, and read the synced records.

use std::collections::BTreeMap;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use fleet_connectors::Credentials;
use fleet_connectors::catalog::{Auth, FormField};
use fleet_events::{
    ConnectionId, ConnectionStatus, ConnectorId, CorrelationId, Envelope, SetupOrigin,
    StatusChanged, SyncRequested, SyncTrigger, TenantId, ValidateRequested,
};
use fleet_secrets::Version;
use fleet_store::{Connection, CredentialsInUse, NewConnection, Queued, RecordCursor, RecordQuery};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Tenant;
use crate::routes::connection_health::HealthSummary;
use crate::routes::records::{check_stream, page_cursor, page_limit};
use crate::{AppState, Error};

/// The routes, relative to `/api`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/connections", post(create).get(list))
        .route("/connections/{id}", get(read).delete(remove))
        .route("/connections/{id}/sync", post(sync_now))
        .route("/connections/{id}/records", get(records))
}

/// A new connection with credentials typed in by the user.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateConnection {
    /// Catalog id of the connector, such as `wordpress`.
    pub connector: String,
    /// A name to show; defaults to the site's host (application passwords)
    /// or the provider's name.
    pub display_name: Option<String>,
    /// The form fields of the connector: for `wordpress` and `fluentcrm`,
    /// `site_url`, `username` and `application_password`; for an
    /// `api_key` entry `api_key`, for `basic` `username` and `password`,
    /// for `oauth2_client_credentials` `client_id` and `client_secret`;
    /// and the entry's settings by name.
    pub credentials: BTreeMap<String, String>,
}

/// The answer to a create: the new connection, whose setup has started.
#[derive(Debug, Serialize, ToSchema)]
pub struct Created {
    /// The connection's id.
    pub id: String,
    /// `pending`: the validate step is queued.
    pub state: String,
}

/// The answer to "Sync now": the sync that will bring the connection up to
/// date. A request while another sync of the connection is queued or
/// running joins that one instead of starting a second.
#[derive(Debug, Serialize, ToSchema)]
pub struct SyncAccepted {
    /// The sync run's id (as in `connector.status` events' correlation of
    /// the run, and the records' sync history).
    pub run: String,
    /// `queued` (no worker has picked it up yet) or `running`.
    pub state: String,
    /// True when this request joined a sync that was already queued or
    /// running.
    pub coalesced: bool,
}

/// How long a queued "Sync now" holds the connection's sync slot before a
/// worker picks it up; past that, a new request queues another sync.
const QUEUED_SYNC_HOLD: std::time::Duration = std::time::Duration::from_secs(600);

/// A connection as dashboards see it. Never holds a credential.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionView {
    /// The connection's id.
    pub id: String,
    /// Catalog id of its connector.
    pub connector: String,
    /// The name shown for it.
    pub display_name: String,
    /// `pending`, `validating`, `invalid`, `saving`, `syncing`, `synced`,
    /// `partial`, `retrying`, `failed`, `reauth_required` or `disconnected`.
    pub state: String,
    /// The last status with its details (progress, reasons), as published.
    #[schema(value_type = Object)]
    pub status: serde_json::Value,
    /// The provider account the credentials open, once validated.
    pub account: Option<AccountView>,
    /// When the last sync finished.
    pub last_sync_at: Option<DateTime<Utc>>,
    /// The last error, in words a person can act on.
    pub last_error: Option<String>,
    /// Seconds between scheduled syncs; absent when none are scheduled.
    pub sync_interval_seconds: Option<u64>,
    /// Records stored after the last complete sync.
    pub records_total: u64,
    /// When the connection was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// How its provider calls go; `GET /api/connections/{id}/health` has
    /// the whole picture.
    pub health: Option<HealthSummary>,
}

/// A provider account.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountView {
    /// The provider's id of the account.
    pub id: String,
    /// Its name.
    pub name: String,
}

impl From<Connection> for ConnectionView {
    fn from(c: Connection) -> Self {
        Self {
            id: c.id.to_string(),
            connector: c.connector.to_string(),
            display_name: c.display_name,
            state: c.status.state().as_str().to_owned(),
            status: serde_json::to_value(&c.status).unwrap_or_default(),
            account: c.account.map(|a| AccountView {
                id: a.id,
                name: a.name,
            }),
            last_sync_at: c.last_sync_at,
            last_error: c.last_error,
            sync_interval_seconds: c.sync_interval.map(|i| i.as_secs()),
            records_total: c.records_total,
            created_at: c.created_at,
            updated_at: c.updated_at,
            health: None,
        }
    }
}

/// The connections of the caller's tenant.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionList {
    /// Newest first.
    pub connections: Vec<ConnectionView>,
}

/// Filters and position of a records page.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RecordParams {
    /// Only this stream (`posts`, `pages`, `subscribers`, ...).
    pub stream: Option<String>,
    /// Only records changed at or after this time (RFC 3339). A record
    /// deleted at the provider changed when the sync found it gone.
    pub updated_since: Option<DateTime<Utc>>,
    /// Also records deleted at the provider, with their `deleted_at`;
    /// `false` by default.
    #[serde(default)]
    pub include_deleted: bool,
    /// The `next` value of the previous page.
    pub cursor: Option<String>,
    /// Records per page, 1 to 1000; 100 by default.
    pub limit: Option<u32>,
}

/// One synced record.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecordView {
    /// The stream it belongs to.
    pub stream: String,
    /// The provider's id of the record.
    pub external_id: String,
    /// The record, as the connector stores it: its fields are described by
    /// the component schema `Record.<connector>.<stream>` of this document
    /// (such as `Record.wordpress.posts`; `Record.generic-oauth2.account`
    /// for operators' OAuth 2.0 entries).
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    /// When the provider last changed it, when known.
    pub updated_at: Option<DateTime<Utc>>,
    /// When it was stored.
    pub synced_at: DateTime<Utc>,
    /// When a sync found it removed at the provider (deleted, trashed,
    /// unpublished, archived); only with `include_deleted=true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<DateTime<Utc>>,
}

impl From<fleet_store::Record> for RecordView {
    fn from(r: fleet_store::Record) -> Self {
        Self {
            stream: r.stream,
            external_id: r.external_id,
            payload: r.payload,
            updated_at: r.updated_at,
            synced_at: r.synced_at,
            deleted_at: r.deleted_at,
        }
    }
}

/// A page of records.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecordPageView {
    /// The records, in a stable order.
    pub records: Vec<RecordView>,
    /// Pass as `cursor` to get the next page; absent on the last one.
    pub next: Option<String>,
}

/// Connects an account with typed-in credentials: validates the input,
/// stages the credentials in Vault, and starts the setup chain. The answer
/// comes at once; the connection's state follows over the status feed.
#[utoipa::path(post, path = "/api/connections", request_body = CreateConnection,
    responses((status = 202, body = Created), (status = 401, body = crate::ErrorBody),
              (status = 404, body = crate::ErrorBody), (status = 413, body = crate::ErrorBody),
              (status = 415, body = crate::ErrorBody), (status = 422, body = crate::ErrorBody),
              (status = 429, body = crate::ErrorBody), (status = 503, body = crate::ErrorBody)),
    security(("tenant_token" = [])))]
pub(crate) async fn create(
    State(state): State<AppState>,
    tenant: Tenant,
    body: Result<Json<CreateConnection>, JsonRejection>,
) -> Result<(StatusCode, Json<Created>), Error> {
    tenant.may_create()?;
    let Json(request) = body?;
    tenant.starts_work(&state)?;
    let entry = ConnectorId::parse(&request.connector)
        .ok()
        .and_then(|id| state.inner.connectors.catalog().get(&id))
        .ok_or_else(|| {
            Error::NotFound(format!(
                "no connector named {:?}; GET /api/connectors lists them",
                request.connector
            ))
        })?;
    if !entry.auth.is_manual() {
        return Err(Error::invalid(
            "connector",
            format!(
                "{} connects through its provider's consent page ({}), not with typed-in credentials",
                entry.display_name,
                entry.auth.kind()
            ),
        ));
    }
    let connector = entry.id.clone();
    let (fields, settings): (BTreeMap<String, String>, BTreeMap<String, String>) = request
        .credentials
        .into_iter()
        .partition(|(name, _)| !entry.settings.iter().any(|s| &s.name == name));
    check_form(&entry.form, &fields)?;
    let (credentials, site) = match &entry.auth {
        Auth::AppPassword => app_password(&fields, state.inner.config.allow_http_sites)?,
        _ => {
            let values = entry
                .check_settings(&settings)
                .map_err(|e| Error::invalid(&e.name, e.message))?;
            (
                typed_in(&entry.auth, &entry.form, &fields, values)?,
                entry.display_name.clone(),
            )
        }
    };
    let display_name = match request.display_name.as_deref().map(str::trim) {
        Some("") => {
            return Err(Error::invalid(
                "display_name",
                "display_name must not be blank",
            ));
        }
        Some(name) if name.chars().count() > 200 => {
            return Err(Error::invalid(
                "display_name",
                "display_name is longer than 200 characters",
            ));
        }
        Some(name) => name.to_owned(),
        None => site,
    };

    let connection = start_setup(
        &state,
        tenant.id().clone(),
        connector,
        &display_name,
        &credentials,
        SetupOrigin::Manual,
    )
    .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Created {
            id: connection.to_string(),
            state: "pending".to_owned(),
        }),
    ))
}

/// Creates a connection with `credentials`: stages them in Vault, records
/// the connection, and publishes its `pending` status and the validate
/// request that starts the setup chain.
pub(crate) async fn start_setup(
    state: &AppState,
    tenant: TenantId,
    connector: ConnectorId,
    display_name: &str,
    credentials: &Credentials,
    origin: SetupOrigin,
) -> Result<ConnectionId, Error> {
    let connection = ConnectionId::new();
    let staged = state
        .inner
        .secrets
        .stage(&tenant, &connection, credentials)
        .await
        .map_err(|e| {
            let transient = e.is_transient();
            Error::dependency(e, transient)
        })?;
    let new = NewConnection {
        tenant: &tenant,
        id: &connection,
        connector: &connector,
        display_name,
        sync_interval: None,
    };
    store(state.inner.store.stage_connection(new, staged.get())).await?;
    let validate = Envelope::new(
        tenant,
        connection.clone(),
        connector,
        CorrelationId::new(),
        ValidateRequested {
            origin,
            staged_version: staged.get(),
        },
    );
    let pending = validate.caused(StatusChanged {
        status: ConnectionStatus::Pending,
    });
    publish(state, &pending, &format!("{}:pending", validate.id)).await?;
    publish(state, &validate, &validate.id.to_string()).await?;
    Ok(connection)
}

/// The caller's connections (only those its token covers).
#[utoipa::path(get, path = "/api/connections",
    responses((status = 200, body = ConnectionList), (status = 401, body = crate::ErrorBody),
              (status = 429, body = crate::ErrorBody)),
    security(("tenant_token" = [])))]
pub(crate) async fn list(
    State(state): State<AppState>,
    tenant: Tenant,
) -> Result<Json<ConnectionList>, Error> {
    let db = &state.inner.store;
    let (connections, mut health) = tokio::try_join!(
        store(db.list_connections(tenant.id())),
        store(db.tenant_health(tenant.id(), None)),
    )?;
    Ok(Json(ConnectionList {
        connections: connections
            .into_iter()
            .filter(|c| tenant.may_see(&c.id))
            .map(|c| {
                let health = health.remove(&c.id);
                let mut view = ConnectionView::from(c);
                view.health = health.as_ref().map(HealthSummary::from);
                view
            })
            .collect(),
    }))
}

/// One connection.
#[utoipa::path(get, path = "/api/connections/{id}", params(("id" = String, Path)),
    responses((status = 200, body = ConnectionView), (status = 401, body = crate::ErrorBody),
              (status = 404, body = crate::ErrorBody), (status = 429, body = crate::ErrorBody)),
    security(("tenant_token" = [])))]
pub(crate) async fn read(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(id): Path<String>,
) -> Result<Json<ConnectionView>, Error> {
    let connection = find(&state, &tenant, &id).await?;
    let mut health = store(
        state
            .inner
            .store
            .tenant_health(tenant.id(), Some(&connection.id)),
    )
    .await?;
    let summary = health.remove(&connection.id);
    let mut view = ConnectionView::from(connection);
    view.health = summary.as_ref().map(HealthSummary::from);
    Ok(Json(view))
}

/// Starts a sync of the connection now, or joins the one queued or running.
#[utoipa::path(post, path = "/api/connections/{id}/sync", params(("id" = String, Path)),
    responses((status = 202, body = SyncAccepted), (status = 401, body = crate::ErrorBody),
              (status = 404, body = crate::ErrorBody), (status = 429, body = crate::ErrorBody),
              (status = 503, body = crate::ErrorBody)),
    security(("tenant_token" = [])))]
pub(crate) async fn sync_now(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<SyncAccepted>), Error> {
    let connection = find(&state, &tenant, &id).await?;
    let db = &state.inner.store;
    let request = Envelope::new(
        tenant.id().clone(),
        connection.id,
        connection.connector,
        CorrelationId::new(),
        SyncRequested {
            trigger: SyncTrigger::Manual,
            streams: None,
            cursor: None,
        },
    );
    let queued = store(db.queue_sync(
        tenant.id(),
        &request.connection,
        request.id,
        QUEUED_SYNC_HOLD,
    ))
    .await?;
    if let Queued::Coalesced(holder) = queued {
        return Ok((
            StatusCode::ACCEPTED,
            Json(SyncAccepted {
                run: holder.run.to_string(),
                state: if holder.running { "running" } else { "queued" }.to_owned(),
                coalesced: true,
            }),
        ));
    }
    // Only a request that starts a sync counts against the tenant's limit.
    let published = async {
        tenant.starts_work(&state)?;
        state
            .inner
            .publisher
            .publish(&request, &request.id.to_string())
            .await
            .map_err(|e| Error::Unavailable(Box::new(e)))
    }
    .await;
    let published = match published {
        Ok(published) => published,
        Err(error) => {
            // Free the slot this request held, so the next one can queue.
            let released = db
                .release_queued_sync(tenant.id(), &request.connection, request.id)
                .await;
            if let Err(e) = released {
                tracing::warn!(error.message = %e, "Could not free the sync slot of a request that was not published; requests join it until its hold lapses.");
            }
            return Err(error);
        }
    };
    let run = fleet_store::run_id(request.id, published.sequence);
    // The sync is queued whatever happens here: naming its run only lets
    // requests that join it name the run instead of the request.
    if let Err(e) = db
        .name_queued_run(tenant.id(), &request.connection, request.id, run)
        .await
    {
        tracing::warn!(error.message = %e, "Could not name the queued sync's run.");
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(SyncAccepted {
            run: run.to_string(),
            state: "queued".to_owned(),
            coalesced: false,
        }),
    ))
}

/// Disconnects: stops scheduled syncs, revokes the grant at the provider
/// where it offers revocation, deletes the credentials from Vault and the
/// connection with its records, and tells dashboards.
#[utoipa::path(delete, path = "/api/connections/{id}", params(("id" = String, Path)),
    responses((status = 204), (status = 401, body = crate::ErrorBody), (status = 404, body = crate::ErrorBody),
              (status = 429, body = crate::ErrorBody), (status = 503, body = crate::ErrorBody)),
    security(("tenant_token" = [])))]
pub(crate) async fn remove(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(id): Path<String>,
) -> Result<StatusCode, Error> {
    let connection = find(&state, &tenant, &id).await?;
    tenant.starts_work(&state)?;
    let tenant = tenant.id().clone();
    state
        .inner
        .schedules
        .remove(&tenant, &connection.id)
        .await
        .map_err(|e| Error::Unavailable(Box::new(e)))?;
    revoke(&state, &tenant, &connection).await;
    state
        .inner
        .secrets
        .delete(&tenant, &connection.id)
        .await
        .map_err(|e| {
            let transient = e.is_transient();
            Error::dependency(e, transient)
        })?;
    store(state.inner.store.delete_connection(&tenant, &connection.id)).await?;
    let gone = Envelope::new(
        tenant,
        connection.id,
        connection.connector,
        CorrelationId::new(),
        StatusChanged {
            status: ConnectionStatus::Disconnected,
        },
    );
    publish(&state, &gone, &gone.id.to_string()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The connection's synced records, a page at a time.
///
/// Each record's `payload` follows the component schema
/// `Record.<connector>.<stream>` of this document, for the connection's
/// connector and the record's `stream`; `GET /api/connectors` names each
/// stream's schema.
#[utoipa::path(get, path = "/api/connections/{id}/records", params(("id" = String, Path), RecordParams),
    responses((status = 200, body = RecordPageView), (status = 401, body = crate::ErrorBody),
              (status = 404, body = crate::ErrorBody), (status = 422, body = crate::ErrorBody),
              (status = 429, body = crate::ErrorBody)),
    security(("tenant_token" = [])))]
pub(crate) async fn records(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(id): Path<String>,
    params: Result<Query<RecordParams>, QueryRejection>,
) -> Result<Json<RecordPageView>, Error> {
    let Query(params) = params?;
    let connection = find(&state, &tenant, &id).await?;
    check_stream(params.stream.as_deref())?;
    let after = page_cursor::<RecordCursor>(
        params.cursor.as_deref(),
        "GET /api/connections/{id}/records",
    )?;
    let limit = page_limit(params.limit)?;
    let page = store(state.inner.store.list_records(RecordQuery {
        tenant: tenant.id(),
        connection: &connection.id,
        stream: params.stream.as_deref(),
        updated_since: params.updated_since,
        include_deleted: params.include_deleted,
        after: after.as_ref(),
        limit,
    }))
    .await?;
    Ok(Json(RecordPageView {
        records: page.records.into_iter().map(RecordView::from).collect(),
        next: page.next.map(|cursor| cursor.to_string()),
    }))
}

/// Revokes the connection's grant at its provider, when the provider
/// offers revocation: for OAuth 2.0 the refresh token (which ends the whole
/// grant at most providers), else the access token; for client credentials
/// the last access token, the client authenticating with its own id and
/// secret; for OAuth 1.0a the access token. A failure is logged and does
/// not stop the disconnect: the user asked for the connection to go, and
/// its credentials are deleted either way.
async fn revoke(state: &AppState, tenant: &TenantId, connection: &Connection) {
    let connectors = &state.inner.connectors;
    let oauth2 = connectors
        .oauth2(&connection.connector)
        .filter(|client| client.settings().revoke_url.is_some());
    let oauth1 = connectors
        .oauth1(&connection.connector)
        .filter(|client| client.settings().revoke_url.is_some());
    let client_credentials = match connectors.catalog().get(&connection.connector) {
        Some(entry) => {
            matches!(&entry.auth, Auth::ClientCredentials(cc) if cc.revoke_url.is_some())
        }
        None => false,
    };
    if oauth2.is_none() && oauth1.is_none() && !client_credentials {
        return;
    }
    let secrets = &state.inner.secrets;
    let read = match connection.credentials {
        CredentialsInUse::Version(version) | CredentialsInUse::NotYet(version) => secrets
            .read_version::<Credentials>(tenant, &connection.id, Version::new(version))
            .await
            .map(|stored| Some(stored.value)),
        CredentialsInUse::Legacy => secrets.read_legacy(tenant, &connection.id).await,
    };
    let credentials = match read {
        Ok(Some(credentials)) => credentials,
        Ok(None) | Err(fleet_secrets::Error::NotFound { .. }) => return,
        Err(error) => {
            tracing::warn!(connection = %connection.id, error.message = %error,
                "Reading the credentials to revoke failed; deleting them without revoking.");
            return;
        }
    };
    let revoked = match (&credentials, oauth2, oauth1) {
        (
            Credentials::OAuth2 {
                access_token,
                refresh_token,
                ..
            },
            Some(client),
            _,
        ) => {
            let token = refresh_token.as_ref().unwrap_or(access_token);
            client.revoke_with(token, &credentials.values()).await
        }
        (Credentials::OAuth1 { .. }, _, Some(client)) => client.revoke(&credentials).await,
        (
            Credentials::ClientCredentials {
                access_token: Some(access_token),
                ..
            },
            _,
            _,
        ) => match connectors.client_credentials(&connection.connector, &credentials) {
            Some(client) => {
                client
                    .revoke_with(access_token, &credentials.values())
                    .await
            }
            None => return,
        },
        _ => return,
    };
    match revoked {
        Ok(true) => {
            tracing::info!(connection = %connection.id, connector = %connection.connector,
                "Grant revoked at the provider.");
        }
        Ok(false) => {
            tracing::info!(connection = %connection.id, connector = %connection.connector,
                "The provider offers no revocation; deleting the credentials only.");
        }
        Err(error) => {
            tracing::warn!(connection = %connection.id, connector = %connection.connector,
                error.message = %error, "Revoking the grant at the provider failed; deleting the credentials anyway.");
        }
    }
}

/// The tenant's connection `id`, or 404: also for another tenant's id, and
/// for one the caller's token does not cover, so neither can be told from
/// an unknown id.
pub(crate) async fn find(state: &AppState, tenant: &Tenant, id: &str) -> Result<Connection, Error> {
    let not_found = || Error::NotFound(format!("no connection {id:?}"));
    let id = ConnectionId::parse(id).map_err(|_| not_found())?;
    if !tenant.may_see(&id) {
        return Err(not_found());
    }
    store(state.inner.store.get_connection(tenant.id(), &id))
        .await?
        .ok_or_else(not_found)
}

/// Checks the submitted fields against the connector's form: every field
/// known, every required one present, every value matching its pattern.
fn check_form(form: &[FormField], fields: &BTreeMap<String, String>) -> Result<(), Error> {
    if let Some(unknown) = fields
        .keys()
        .find(|name| !form.iter().any(|f| &f.name == *name))
    {
        let known: Vec<&str> = form.iter().map(|f| f.name.as_str()).collect();
        return Err(Error::invalid(
            unknown,
            format!(
                "credentials.{unknown} is not a field of this connector; its fields are {}",
                known.join(", ")
            ),
        ));
    }
    for field in form {
        let value = fields
            .get(&field.name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty());
        let Some(value) = value else {
            if field.required {
                return Err(Error::invalid(
                    &field.name,
                    format!("credentials.{} ({}) is required", field.name, field.label),
                ));
            }
            continue;
        };
        let Some(pattern) = &field.pattern else {
            continue;
        };
        // The whole value must match, as the HTML `pattern` attribute has
        // it; the catalog refused a pattern that does not compile.
        let whole = regex::Regex::new(&format!("^(?:{pattern})$"));
        if whole.is_ok_and(|re| !re.is_match(value)) {
            let hint = field.help.as_deref().unwrap_or("check the value");
            return Err(Error::invalid(
                &field.name,
                format!(
                    "credentials.{} ({}) does not look right: {hint}",
                    field.name, field.label
                ),
            ));
        }
    }
    Ok(())
}

/// The longest API key, user name, password, client id or secret taken.
const MAX_TYPED_IN_BYTES: usize = 4096;

/// Reads the fields of an `api_key`, `basic` or
/// `oauth2_client_credentials` entry (checked against its form) into
/// credentials with the connection's settings `values`.
fn typed_in(
    auth: &Auth,
    form: &[FormField],
    fields: &BTreeMap<String, String>,
    values: fleet_connectors::ConnectionValues,
) -> Result<Credentials, Error> {
    // A basic entry may leave its user name or password empty (an API
    // key sent as the one or the other).
    let optional = |name: &str| form.iter().any(|f| f.name == name && !f.required);
    let field = |name: &str| {
        let value = fields.get(name).map(|value| value.trim().to_owned());
        match value {
            // Sent in headers and queries: no control characters, and
            // bounded like any other field.
            Some(value) if value.chars().any(char::is_control) => Err(Error::invalid(
                name,
                format!("credentials.{name} holds control characters"),
            )),
            Some(value) if value.len() > MAX_TYPED_IN_BYTES => Err(Error::invalid(
                name,
                format!("credentials.{name} is longer than {MAX_TYPED_IN_BYTES} bytes"),
            )),
            Some(value) if !value.is_empty() => Ok(value),
            _ if optional(name) => Ok(String::new()),
            _ => Err(Error::invalid(
                name,
                format!("credentials.{name} is required"),
            )),
        }
    };
    let secret = |name: &str| field(name).map(secrecy::SecretString::from);
    Ok(match auth {
        Auth::ApiKey(_) => Credentials::ApiKey {
            api_key: secret("api_key")?,
            values,
        },
        Auth::Basic(_) => Credentials::Basic {
            username: field("username")?,
            password: secret("password")?,
            values,
        },
        Auth::ClientCredentials(_) => Credentials::ClientCredentials {
            client_id: field("client_id")?,
            client_secret: secret("client_secret")?,
            access_token: None,
            expires_at: None,
            values,
        },
        Auth::AppPassword | Auth::OAuth2(_) | Auth::OAuth1(_) => {
            return Err(Error::invalid(
                "connector",
                "this connector takes no typed-in credentials of this kind",
            ));
        }
    })
}

/// Reads application-password fields into credentials and returns them
/// with the site's host (the default display name).
fn app_password(
    fields: &BTreeMap<String, String>,
    allow_http: bool,
) -> Result<(Credentials, String), Error> {
    let field = |name: &str| -> Result<&str, Error> {
        fields
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| Error::invalid(name, format!("credentials.{name} is required")))
    };
    let site_url = field("site_url")?;
    let url = url::Url::parse(site_url).map_err(|e| {
        Error::invalid(
            "site_url",
            format!("site_url is not a URL ({e}); write it like https://example.com"),
        )
    })?;
    match url.scheme() {
        "https" => {}
        "http" if allow_http => {}
        "http" => {
            return Err(Error::invalid(
                "site_url",
                "site_url must use https: WordPress accepts application passwords only over HTTPS",
            ));
        }
        other => {
            return Err(Error::invalid(
                "site_url",
                format!("site_url must be an https URL, not {other}:"),
            ));
        }
    }
    let host = url
        .host_str()
        .ok_or_else(|| Error::invalid("site_url", "site_url has no host"))?
        .to_owned();
    let credentials =
        Credentials::app_password(site_url, field("username")?, field("application_password")?);
    Ok((credentials, host))
}

pub(crate) async fn store<T>(
    call: impl Future<Output = Result<T, fleet_store::Error>>,
) -> Result<T, Error> {
    call.await.map_err(|e| {
        let transient = e.is_transient();
        Error::dependency(e, transient)
    })
}

async fn publish<P: fleet_events::Payload>(
    state: &AppState,
    event: &Envelope<P>,
    msg_id: &str,
) -> Result<(), Error> {
    state
        .inner
        .publisher
        .publish(event, msg_id)
        .await
        .map_err(|e| Error::Unavailable(Box::new(e)))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(site_url: &str) -> BTreeMap<String, String> {
        [
            ("site_url", site_url),
            ("username", "bob"),
            ("application_password", "abcd efgh"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    fn field_of(error: Error) -> Option<String> {
        match error {
            Error::Invalid { field, .. } => field,
            other => panic!("expected an invalid field, got {other:?}"),
        }
    }

    #[test]
    fn an_https_site_gives_credentials_and_its_host_as_the_name() {
        let (credentials, host) =
            app_password(&fields("https://blog.example.com/wp"), false).unwrap();
        assert_eq!(host, "blog.example.com");
        assert!(matches!(credentials, Credentials::AppPassword { .. }));
    }

    #[test]
    fn an_http_site_is_refused_unless_allowed() {
        let error = app_password(&fields("http://blog.example.com"), false).unwrap_err();
        assert!(error.to_string().contains("HTTPS"), "{error}");
        assert!(app_password(&fields("http://localhost:8080"), true).is_ok());
    }

    #[test]
    fn blank_and_unknown_fields_are_named() {
        let mut blank = fields("https://example.com");
        blank.insert("username".to_owned(), "   ".to_owned());
        assert_eq!(
            field_of(app_password(&blank, false).unwrap_err()).as_deref(),
            Some("username")
        );

        let form = fleet_connectors::Catalog::builtin()
            .get(&ConnectorId::parse("wordpress").unwrap())
            .unwrap()
            .form
            .clone();
        let mut extra = fields("https://example.com");
        extra.insert("api_key".to_owned(), "x".to_owned());
        assert_eq!(
            field_of(check_form(&form, &extra).unwrap_err()).as_deref(),
            Some("api_key")
        );
        let short_password = fields("https://example.com");
        let error = check_form(&form, &short_password).unwrap_err();
        assert_eq!(field_of(error).as_deref(), Some("application_password"));
    }

    #[test]
    fn a_pattern_must_match_the_whole_value() {
        let form = vec![FormField {
            name: "site_id".to_owned(),
            label: "Site id".to_owned(),
            kind: fleet_connectors::catalog::FieldKind::Text,
            required: true,
            pattern: Some("[0-9]+".to_owned()),
            help: None,
        }];
        let value = |v: &str| [("site_id".to_owned(), v.to_owned())].into();

        assert!(check_form(&form, &value("123")).is_ok());
        assert!(check_form(&form, &value("123; or anything")).is_err());
    }
}
