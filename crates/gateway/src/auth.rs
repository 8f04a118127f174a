//! The caller of a request, from its bearer token: its tenant, and the
//! connections the token is narrowed to.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use fleet_auth::Claims;
use fleet_events::{ConnectionId, TenantId};

use crate::{AppState, Error};

/// The authenticated tenant: every `/api` handler and `/oauth/authorize`
/// take one, so no route can forget to check the token, and every query is
/// scoped by it.
///
/// A token may be narrowed to some of the tenant's connections (its
/// `connections` claim). Such a token sees only those: the others look
/// like unknown ids ([`may_see`](Self::may_see)), and it cannot create
/// connections ([`may_create`](Self::may_create)).
#[derive(Debug, Clone)]
pub struct Tenant {
    claims: Claims,
}

impl Tenant {
    /// The tenant.
    pub fn id(&self) -> &TenantId {
        &self.claims.tenant
    }

    /// The connections the token is narrowed to; `None` for the whole
    /// tenant.
    pub fn connections(&self) -> Option<&[ConnectionId]> {
        self.claims.connections.as_deref()
    }

    /// Whether the token covers `connection`.
    pub fn may_see(&self, connection: &ConnectionId) -> bool {
        self.claims.allows(connection)
    }

    /// Whether the token may create connections: only a token for the
    /// whole tenant. New connections get ids the server picks, so a token
    /// narrowed to some connections never lists them.
    ///
    /// # Errors
    ///
    /// [`Error::Forbidden`] for a narrowed token.
    pub fn may_create(&self) -> Result<(), Error> {
        if self.claims.is_narrowed() {
            return Err(Error::Forbidden(
                "this token is limited to some connections (its `connections` claim), so it cannot connect new accounts; use a token for the whole tenant".to_owned(),
            ));
        }
        Ok(())
    }
}

impl Tenant {
    /// Counts a request that starts work elsewhere (connecting, syncing,
    /// authorizing, disconnecting) against the tenant's smaller limit for
    /// those; see [`limits`](crate::limits).
    ///
    /// # Errors
    ///
    /// [`Error::TooManyRequests`] over the limit.
    pub(crate) fn starts_work(&self, state: &AppState) -> Result<(), Error> {
        state.inner.limits.change(self.id())
    }
}

impl FromRequestParts<AppState> for Tenant {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        let header = parts.headers.get(AUTHORIZATION).ok_or_else(|| {
            Error::Unauthorized("send `Authorization: Bearer <tenant token>`".to_owned())
        })?;
        let token = header
            .to_str()
            .ok()
            .and_then(|value| value.strip_prefix("Bearer "))
            .ok_or_else(|| {
                Error::Unauthorized(
                    "the Authorization header must be `Bearer <tenant token>`".to_owned(),
                )
            })?;
        let claims = state
            .inner
            .verifier
            .verify(token.trim())
            .map_err(|e| Error::Unauthorized(format!("the tenant token was refused: {e}")))?;
        state.inner.limits.request(&claims.tenant)?;
        Ok(Self { claims })
    }
}
