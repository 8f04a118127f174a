//! Keeping OAuth access tokens fresh: before they expire, and once when a
//! provider rejects one. Client credentials get a new access token the same
//! way, fetched with the client id and secret (there is no refresh token).
//!
//! A refresh is single-flight across the fleet. The worker takes the
//! connection's refresh lock ([`fleet_store::Store::lock_refresh`]), reads
//! which version of the credentials is in use (another worker may have
//! refreshed while this one waited: then it uses theirs and asks the
//! provider nothing), renews them, writes them as the next version, moves
//! the connection to it with check-and-set on the version it renewed, and
//! only then releases the lock. So two workers never both present a refresh
//! token, and a rotated refresh token is never lost. The version replaced is
//! destroyed after.
//!
//! Failures are remembered in the store. Within [`COOLDOWN`] of a failure,
//! no worker asks the provider again (the message is retried after the
//! cooldown instead). A refresh the provider refuses for good
//! (`invalid_grant`, a revoked app) and failures on [`MAX_FAILURE_DAYS`]
//! different days end in `reauth_required`, never in a retry loop.

use std::time::Duration;

use chrono::Utc;
use fleet_bus::HandlerError;
use fleet_connectors::{Credentials, ErrorClass};
use fleet_events::{ConnectionId, ConnectorId, TenantId};
use fleet_secrets::{Stored, Version};
use fleet_store::CredentialsInUse;

use crate::{Deps, credentials, failure};

/// How long after a failed refresh nobody tries again.
pub(crate) const COOLDOWN: Duration = Duration::from_secs(30);

/// After failed refreshes on this many different days (and no success in
/// between), the connection needs its user to reconnect.
pub(crate) const MAX_FAILURE_DAYS: u32 = 4;

/// Why fresh credentials could not be had.
#[derive(Debug)]
pub(crate) enum RefreshError {
    /// The user has to reconnect; the reason is safe to show.
    Reauth(String),
    /// The provider failed to renew them, as the bus should see it.
    Failed(HandlerError),
    /// Nobody asked the provider: the secret store or the database failed,
    /// or an earlier failure's cooldown runs; as the bus should see it.
    NotAsked(HandlerError),
}

/// Our own dependencies' failures ([`failure::in_store`],
/// [`failure::secrets`]).
impl From<HandlerError> for RefreshError {
    fn from(error: HandlerError) -> Self {
        Self::NotAsked(error)
    }
}

/// When to renew.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Need {
    /// Only when the access token expires within the provider's margin.
    BeforeExpiry,
    /// Now: the provider has just rejected the access token.
    Rejected,
}

/// The connection whose tokens are renewed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Target<'a> {
    pub(crate) tenant: &'a TenantId,
    pub(crate) connection: &'a ConnectionId,
    pub(crate) connector: &'a ConnectorId,
}

/// Returns `current`, or renewed credentials when `need` says so and the
/// connector is an OAuth 2.0 one; see the [module docs](self).
pub(crate) async fn fresh(
    deps: &Deps,
    target: Target<'_>,
    current: Stored<Credentials>,
    need: Need,
) -> Result<Stored<Credentials>, RefreshError> {
    let client = match &current.value {
        Credentials::OAuth2 { .. } => deps.connectors.oauth2(target.connector),
        // A new access token is fetched with the client id and secret.
        Credentials::ClientCredentials { .. } => deps
            .connectors
            .client_credentials(target.connector, &current.value),
        _ => None,
    };
    let Some(client) = client else {
        return Ok(current);
    };
    let margin = client.settings().token_expiry_margin;
    // A grant checked at the token endpoint only, whose access token does
    // not say when it expires, is renewed on every sync: nothing else
    // would ever ask the provider about it.
    let unchecked = |credentials: &Credentials| {
        client.settings().token_only && credentials.expires_at().is_none()
    };
    let due = |credentials: &Credentials| match need {
        Need::Rejected => true,
        Need::BeforeExpiry => {
            credentials.lacks_access_token()
                || credentials.expires_within(margin, Utc::now())
                || unchecked(credentials)
        }
    };
    if !due(&current.value) {
        return Ok(current);
    }
    if !client.can_renew(&current.value) {
        return match need {
            // Still valid for a while; nothing to do until it is rejected.
            Need::BeforeExpiry => Ok(current),
            Need::Rejected => Err(RefreshError::Reauth(format!(
                "The access token was rejected and {} issued no way to renew it: reconnect the account.",
                deps.provider(target.connector)
            ))),
        };
    }
    let (tenant, connection) = (target.tenant, target.connection);
    let store = &deps.store;
    let history = failure::in_store(|| store.refresh_history(tenant, connection)).await?;
    if let Some(history) = history
        && history.failures > 0
        && let Some(at) = history.last_failure_at
    {
        let since = Utc::now()
            .signed_duration_since(at)
            .to_std()
            .unwrap_or_default();
        if since < COOLDOWN {
            return Err(RefreshError::NotAsked(HandlerError::Transient {
                reason: format!(
                    "the last token refresh failed {}s ago ({}); waiting out the cooldown",
                    since.as_secs(),
                    history
                        .last_error
                        .as_deref()
                        .unwrap_or("no reason recorded")
                ),
                retry_after: Some(COOLDOWN - since),
            }));
        }
    }

    let mut lock = failure::in_store(|| store.lock_refresh(tenant, connection)).await?;
    let in_use = match lock.credentials_in_use().await {
        Ok(in_use) => in_use,
        Err(error) => {
            release(lock).await;
            return Err(failure::store(&error).into());
        }
    };
    let Some(CredentialsInUse::Version(in_use)) = in_use else {
        release(lock).await;
        return Err(HandlerError::permanent(
            "the connection was deleted, or its credentials are not saved yet",
        )
        .into());
    };
    if in_use != current.version.get() {
        // Another worker refreshed while this one waited for the lock (or
        // after this one's token was rejected): use theirs and ask the
        // provider nothing.
        release(lock).await;
        return deps
            .secrets
            .read_version(tenant, connection, Version::new(in_use))
            .await
            .map_err(|e| failure::secrets(&e).into());
    }
    let latest = current;
    let renewed = client.renew(&latest.value).await;
    let outcome = match &renewed {
        Ok(_) => "renewed",
        Err(error) => match error.class() {
            ErrorClass::ReauthRequired => "rejected",
            ErrorClass::Permanent | ErrorClass::Retryable { .. } => "failed",
        },
    };
    metrics::counter!(
        "fleet_token_renewals_total",
        "provider" => target.connector.to_string(),
        "outcome" => outcome,
    )
    .increment(1);
    match renewed {
        Ok(tokens) => {
            let renewed = latest.value.merge_refresh(tokens);
            stored(deps, target, lock, latest.version, renewed).await
        }
        Err(error) => {
            let reason = error.to_string();
            let history = lock
                .record_failure(&reason)
                .await
                .map_err(|e| failure::store(&e))?;
            match error.class() {
                ErrorClass::ReauthRequired => Err(RefreshError::Reauth(reason)),
                ErrorClass::Permanent => Err(RefreshError::Failed(HandlerError::permanent(
                    format!("the token refresh failed: {reason}"),
                ))),
                ErrorClass::Retryable { .. } if history.failure_days >= MAX_FAILURE_DAYS => {
                    Err(RefreshError::Reauth(format!(
                        "Renewing the access token has failed on {} different days (last: {reason}): reconnect the account.",
                        history.failure_days
                    )))
                }
                ErrorClass::Retryable { retry_after } => {
                    Err(RefreshError::Failed(HandlerError::Transient {
                        reason: format!("the token refresh failed: {reason}"),
                        retry_after: Some(retry_after.map_or(COOLDOWN, |r| r.max(COOLDOWN))),
                    }))
                }
            }
        }
    }
}

/// Stores renewed credentials: writes them as the next version, moves the
/// connection to it if `replaced` is still the version in use, records the
/// success and releases the lock, then destroys the version that lost (none
/// when the database failed and which one is in use is unknown).
///
/// The tokens are renewed at the provider before they are stored: with
/// rotating refresh tokens, the stored one may be dead once this fails, so
/// the write and the move are retried, and a failure is only reported.
async fn stored(
    deps: &Deps,
    target: Target<'_>,
    lock: fleet_store::RefreshLock,
    replaced: Version,
    renewed: Credentials,
) -> Result<Stored<Credentials>, RefreshError> {
    let (tenant, connection) = (target.tenant, target.connection);
    let version = match deps.secrets.rotate(tenant, connection, &renewed).await {
        Ok(version) => version,
        Err(error) => {
            release(lock).await;
            return Err(failure::secrets(&error).into());
        }
    };
    let store = &deps.store;
    let moved = failure::in_store(|| {
        store.move_credentials(tenant, connection, replaced.get(), version.get())
    })
    .await;
    match moved {
        Ok(true) => {
            if let Err(error) = lock.record_success().await {
                tracing::warn!(error.message = %error, "Recording a token refresh failed; the new tokens are stored.");
            }
            tracing::info!(connector = %target.connector, "Access token renewed.");
            credentials::discard(deps, tenant, connection, replaced).await;
            Ok(Stored {
                value: renewed,
                version,
            })
        }
        Ok(false) => {
            release(lock).await;
            credentials::discard(deps, tenant, connection, version).await;
            Err(HandlerError::transient(
                "the connection's credentials changed while its token was renewed; reading them again",
            )
            .into())
        }
        // Whether the move landed is unknown: the new version may be the
        // one in use, and holds the only copy of the renewed tokens, so it
        // stays.
        Err(error) => {
            release(lock).await;
            Err(error.into())
        }
    }
}

async fn release(lock: fleet_store::RefreshLock) {
    if let Err(error) = lock.release().await {
        tracing::warn!(error.message = %error, "Releasing the refresh lock failed; it is released with its connection.");
    }
}
