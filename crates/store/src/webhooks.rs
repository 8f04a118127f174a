//! Webhook endpoints and their delivery log (migration `0007_webhooks`).
//!
//! The webhook worker files each event as one delivery per endpoint of its
//! tenant ([`Store::file_webhook_event`]); the delivery loop claims due
//! deliveries ([`Store::claim_webhook_deliveries`]), sends them and records
//! how it went ([`Store::finish_webhook_delivery`]). Only the oldest pending
//! delivery of each endpoint and connection is ever due, so the events of a
//! connection reach an endpoint in the order they were filed.

use std::time::Duration;

use chrono::{DateTime, Utc};
use fleet_events::TenantId;
use sqlx::{Row as _, postgres::PgRow};
use uuid::Uuid;

use crate::{Error, Store};

/// A tenant's webhook endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEndpoint {
    /// Its id.
    pub id: Uuid,
    /// Where deliveries go.
    pub url: String,
    /// The tenant's note on it.
    pub description: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// An event to file for every endpoint of its tenant.
#[derive(Debug, Clone, Copy)]
pub struct WebhookEvent<'a> {
    /// The tenant whose endpoints receive it.
    pub tenant: &'a TenantId,
    /// The connection it is about, which orders deliveries.
    pub connection: &'a str,
    /// Its id, the receivers' deduplication key.
    pub event_id: Uuid,
    /// Its webhook type (`connection.state_changed`, `sync.completed`).
    pub event_type: &'a str,
    /// The JSON body sent.
    pub payload: &'a str,
}

/// A delivery claimed to be sent now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueDelivery {
    /// The delivery's id in the log.
    pub id: i64,
    /// Its endpoint.
    pub endpoint_id: Uuid,
    /// The endpoint's URL.
    pub url: String,
    /// The event's id.
    pub event_id: Uuid,
    /// The JSON body.
    pub payload: String,
    /// Attempts so far, this one included.
    pub attempts: u32,
}

/// One entry of an endpoint's delivery log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookDelivery {
    /// Its id in the log.
    pub id: i64,
    /// The event's id.
    pub event_id: Uuid,
    /// The event's webhook type.
    pub event_type: String,
    /// The connection it is about.
    pub connection: String,
    /// `pending`, `delivered` or `failed` (given up until redelivered).
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
    pub next_attempt_at: DateTime<Utc>,
    /// When the endpoint accepted it.
    pub delivered_at: Option<DateTime<Utc>>,
}

/// How an attempt at a delivery ended.
#[derive(Debug, Clone, Copy)]
pub enum DeliveryEnd<'a> {
    /// The endpoint accepted it with `status`.
    Delivered {
        /// Its 2xx status.
        status: u16,
    },
    /// It failed; it is due again after `retry_in`, or given up (`failed`
    /// until redelivered) when `give_up`.
    Failed {
        /// The endpoint's status, if it answered.
        status: Option<u16>,
        /// Why, for the log. No secret.
        error: &'a str,
        /// When to try again.
        retry_in: Duration,
        /// Whether this was the last attempt.
        give_up: bool,
    },
}

fn endpoint_error(action: &'static str) -> impl FnOnce(sqlx::Error) -> Error {
    move |source| Error::WebhookEndpoint { action, source }
}

fn delivery_error(action: &'static str) -> impl FnOnce(sqlx::Error) -> Error {
    move |source| Error::WebhookDelivery { action, source }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

impl Store {
    /// Creates a webhook endpoint of `tenant` unless it has `max` already;
    /// `None` when it has. Concurrent creations for one tenant take turns
    /// (a per-tenant lock), so the limit holds under any race.
    ///
    /// # Errors
    ///
    /// [`Error::WebhookEndpoint`].
    pub async fn create_webhook_endpoint(
        &self,
        tenant: &TenantId,
        id: Uuid,
        url: &str,
        description: &str,
        max: usize,
    ) -> Result<Option<WebhookEndpoint>, Error> {
        let mut tx = self.pool.begin().await.map_err(endpoint_error("create"))?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('webhooks/' || $1, 0))")
            .bind(tenant.as_str())
            .execute(&mut *tx)
            .await
            .map_err(endpoint_error("create"))?;
        let row = sqlx::query(
            "INSERT INTO webhook_endpoints (id, tenant, url, description) \
             SELECT $1, $2, $3, $4 \
             WHERE (SELECT count(*) FROM webhook_endpoints WHERE tenant = $2) < $5 \
             RETURNING id, url, description, created_at",
        )
        .bind(id)
        .bind(tenant.as_str())
        .bind(url)
        .bind(crate::row::storable_text(description))
        .bind(i64::try_from(max).unwrap_or(i64::MAX))
        .fetch_optional(&mut *tx)
        .await
        .map_err(endpoint_error("create"))?;
        tx.commit().await.map_err(endpoint_error("create"))?;
        row.as_ref()
            .map(endpoint)
            .transpose()
            .map_err(endpoint_error("create"))
    }

    /// `tenant`'s webhook endpoints, oldest first.
    ///
    /// # Errors
    ///
    /// [`Error::WebhookEndpoint`].
    pub async fn list_webhook_endpoints(
        &self,
        tenant: &TenantId,
    ) -> Result<Vec<WebhookEndpoint>, Error> {
        let rows = sqlx::query(
            "SELECT id, url, description, created_at FROM webhook_endpoints \
             WHERE tenant = $1 ORDER BY created_at, id",
        )
        .bind(tenant.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(endpoint_error("list"))?;
        rows.iter()
            .map(endpoint)
            .collect::<Result<_, _>>()
            .map_err(endpoint_error("list"))
    }

    /// `tenant`'s endpoint `id`, if it has one.
    ///
    /// # Errors
    ///
    /// [`Error::WebhookEndpoint`].
    pub async fn get_webhook_endpoint(
        &self,
        tenant: &TenantId,
        id: Uuid,
    ) -> Result<Option<WebhookEndpoint>, Error> {
        let row = sqlx::query(
            "SELECT id, url, description, created_at FROM webhook_endpoints \
             WHERE tenant = $1 AND id = $2",
        )
        .bind(tenant.as_str())
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(endpoint_error("read"))?;
        row.as_ref()
            .map(endpoint)
            .transpose()
            .map_err(endpoint_error("read"))
    }

    /// Deletes `tenant`'s endpoint `id` and its delivery log; `false` when
    /// there was none.
    ///
    /// # Errors
    ///
    /// [`Error::WebhookEndpoint`].
    pub async fn delete_webhook_endpoint(
        &self,
        tenant: &TenantId,
        id: Uuid,
    ) -> Result<bool, Error> {
        let deleted = sqlx::query("DELETE FROM webhook_endpoints WHERE tenant = $1 AND id = $2")
            .bind(tenant.as_str())
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(endpoint_error("delete"))?;
        Ok(deleted.rows_affected() > 0)
    }

    /// Files `event` as a pending delivery for every endpoint of its
    /// tenant, once per endpoint however often it is filed; returns how
    /// many deliveries are new.
    ///
    /// # Errors
    ///
    /// [`Error::WebhookDelivery`].
    pub async fn file_webhook_event(&self, event: WebhookEvent<'_>) -> Result<u64, Error> {
        let filed = sqlx::query(
            "INSERT INTO webhook_deliveries \
               (endpoint_id, tenant, connection, event_id, event_type, payload) \
             SELECT id, tenant, $2, $3, $4, $5 FROM webhook_endpoints WHERE tenant = $1 \
             ORDER BY created_at, id \
             ON CONFLICT (endpoint_id, event_id) DO NOTHING",
        )
        .bind(event.tenant.as_str())
        .bind(event.connection)
        .bind(event.event_id)
        .bind(event.event_type)
        .bind(event.payload)
        .execute(&self.pool)
        .await
        .map_err(delivery_error("file"))?;
        Ok(filed.rows_affected())
    }

    /// Claims up to `limit` due deliveries for `lease`: of each endpoint
    /// and connection, the oldest pending delivery, when its next attempt
    /// is due and no other worker holds it. Counts the attempt.
    ///
    /// # Errors
    ///
    /// [`Error::WebhookDelivery`].
    pub async fn claim_webhook_deliveries(
        &self,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<DueDelivery>, Error> {
        let rows = sqlx::query(
            "UPDATE webhook_deliveries d \
             SET claimed_until = now() + $2 * interval '1 millisecond', attempts = d.attempts + 1 \
             FROM ( \
               SELECT id FROM ( \
                 SELECT DISTINCT ON (endpoint_id, connection) id, next_attempt_at, claimed_until \
                 FROM webhook_deliveries WHERE state = 'pending' \
                 ORDER BY endpoint_id, connection, id \
               ) heads \
               WHERE next_attempt_at <= now() AND (claimed_until IS NULL OR claimed_until < now()) \
               ORDER BY id LIMIT $1 \
             ) due, webhook_endpoints e \
             WHERE d.id = due.id AND e.id = d.endpoint_id AND d.state = 'pending' \
               AND (d.claimed_until IS NULL OR d.claimed_until < now()) \
             RETURNING d.id, d.endpoint_id, e.url, d.event_id, d.payload, d.attempts",
        )
        .bind(i64::from(limit))
        .bind(millis(lease))
        .fetch_all(&self.pool)
        .await
        .map_err(delivery_error("claim"))?;
        rows.iter()
            .map(|row| {
                Ok(DueDelivery {
                    id: row.try_get("id")?,
                    endpoint_id: row.try_get("endpoint_id")?,
                    url: row.try_get("url")?,
                    event_id: row.try_get("event_id")?,
                    payload: row.try_get("payload")?,
                    attempts: u32::try_from(row.try_get::<i32, _>("attempts")?).unwrap_or(0),
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(delivery_error("claim"))
    }

    /// Records how an attempt at delivery `id` ended and releases it. An
    /// attempt whose delivery was redelivered by hand meanwhile (which
    /// releases the claim) records nothing: the redelivery still goes out.
    ///
    /// # Errors
    ///
    /// [`Error::WebhookDelivery`].
    pub async fn finish_webhook_delivery(
        &self,
        id: i64,
        end: DeliveryEnd<'_>,
    ) -> Result<(), Error> {
        let query = match end {
            DeliveryEnd::Delivered { status } => sqlx::query(
                "UPDATE webhook_deliveries SET state = 'delivered', delivered_at = now(), \
                 claimed_until = NULL, last_status = $2, last_error = NULL \
                 WHERE id = $1 AND claimed_until IS NOT NULL",
            )
            .bind(id)
            .bind(i32::from(status)),
            DeliveryEnd::Failed {
                status,
                error,
                retry_in,
                give_up,
            } => sqlx::query(
                "UPDATE webhook_deliveries SET \
                 state = CASE WHEN $5 THEN 'failed' ELSE 'pending' END, \
                 next_attempt_at = now() + $4 * interval '1 millisecond', claimed_until = NULL, \
                 last_status = $2, last_error = $3 WHERE id = $1 AND claimed_until IS NOT NULL",
            )
            .bind(id)
            .bind(status.map(i32::from))
            .bind(crate::row::storable_text(error))
            .bind(millis(retry_in))
            .bind(give_up),
        };
        query
            .execute(&self.pool)
            .await
            .map_err(delivery_error("finish"))?;
        Ok(())
    }

    /// The newest `limit` deliveries of `tenant`'s endpoint `endpoint`,
    /// newest first, from before delivery `before` when given.
    ///
    /// # Errors
    ///
    /// [`Error::WebhookDelivery`].
    pub async fn list_webhook_deliveries(
        &self,
        tenant: &TenantId,
        endpoint: Uuid,
        limit: u32,
        before: Option<i64>,
    ) -> Result<Vec<WebhookDelivery>, Error> {
        let rows = sqlx::query(
            "SELECT id, event_id, event_type, connection, state, attempts, last_status, \
             last_error, created_at, next_attempt_at, delivered_at FROM webhook_deliveries \
             WHERE tenant = $1 AND endpoint_id = $2 AND ($4::bigint IS NULL OR id < $4) \
             ORDER BY id DESC LIMIT $3",
        )
        .bind(tenant.as_str())
        .bind(endpoint)
        .bind(i64::from(limit))
        .bind(before)
        .fetch_all(&self.pool)
        .await
        .map_err(delivery_error("list"))?;
        rows.iter()
            .map(delivery)
            .collect::<Result<_, _>>()
            .map_err(delivery_error("list"))
    }

    /// Sends delivery `id` of `tenant`'s endpoint `endpoint` again: pending,
    /// due now, with its attempts counted from zero. `false` when there is
    /// no such delivery.
    ///
    /// # Errors
    ///
    /// [`Error::WebhookDelivery`].
    pub async fn redeliver_webhook(
        &self,
        tenant: &TenantId,
        endpoint: Uuid,
        id: i64,
    ) -> Result<bool, Error> {
        let updated = sqlx::query(
            "UPDATE webhook_deliveries SET state = 'pending', attempts = 0, \
             next_attempt_at = now(), delivered_at = NULL, claimed_until = NULL \
             WHERE tenant = $1 AND endpoint_id = $2 AND id = $3",
        )
        .bind(tenant.as_str())
        .bind(endpoint)
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(delivery_error("redeliver"))?;
        Ok(updated.rows_affected() > 0)
    }
}

fn endpoint(row: &PgRow) -> Result<WebhookEndpoint, sqlx::Error> {
    Ok(WebhookEndpoint {
        id: row.try_get("id")?,
        url: row.try_get("url")?,
        description: row.try_get("description")?,
        created_at: row.try_get("created_at")?,
    })
}

fn delivery(row: &PgRow) -> Result<WebhookDelivery, sqlx::Error> {
    Ok(WebhookDelivery {
        id: row.try_get("id")?,
        event_id: row.try_get("event_id")?,
        event_type: row.try_get("event_type")?,
        connection: row.try_get("connection")?,
        state: row.try_get("state")?,
        attempts: u32::try_from(row.try_get::<i32, _>("attempts")?).unwrap_or(0),
        last_status: row
            .try_get::<Option<i32>, _>("last_status")?
            .and_then(|status| u16::try_from(status).ok()),
        last_error: row.try_get("last_error")?,
        created_at: row.try_get("created_at")?,
        next_attempt_at: row.try_get("next_attempt_at")?,
        delivered_at: row.try_get("delivered_at")?,
    })
}
