//! The tenant of a request, from its bearer token.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use fleet_events::TenantId;

use crate::{AppState, Error};

/// The authenticated tenant: every `/api` handler takes one, so no route
/// can forget to check the token, and every query is scoped by it.
#[derive(Debug, Clone)]
pub struct Tenant(pub TenantId);

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
        Ok(Self(claims.tenant))
    }
}
