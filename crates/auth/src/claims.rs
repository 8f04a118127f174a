//! What a tenant token says.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fleet_events::{ConnectionId, TenantId};
use serde::{Deserialize, Serialize};

/// The checked claims of a tenant token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// The tenant whose data the holder may see (claim `tenant`).
    pub tenant: TenantId,
    /// Expiry, in seconds since the Unix epoch (claim `exp`).
    pub exp: u64,
    /// Issue time, in seconds since the Unix epoch (claim `iat`).
    pub iat: u64,
    /// The connections the holder may see; `None` allows all of the
    /// tenant's (claim `connections`).
    pub connections: Option<Vec<ConnectionId>>,
    /// Who holds the token, in the platform's words (claim `sub`): shown
    /// to people, never used to decide what the holder may do.
    pub subject: Option<String>,
}

impl Claims {
    /// Claims for all of `tenant`'s connections, issued now and valid for `ttl`.
    pub fn for_tenant(tenant: TenantId, ttl: Duration) -> Self {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        Self {
            tenant,
            exp: now.saturating_add(ttl.as_secs()),
            iat: now,
            connections: None,
            subject: None,
        }
    }

    /// Whether the token is narrowed to some connections (claim
    /// `connections`).
    pub fn is_narrowed(&self) -> bool {
        self.connections.is_some()
    }

    /// Whether the holder may see `connection`.
    pub fn allows(&self, connection: &ConnectionId) -> bool {
        self.connections
            .as_ref()
            .is_none_or(|allowed| allowed.contains(connection))
    }
}

/// The claims as they travel, before the ids are checked. The registered
/// claims are optional here so that a missing one is reported by name.
#[derive(Serialize, Deserialize)]
pub(crate) struct Wire {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) tenant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) exp: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) iat: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) connections: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) sub: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) iss: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) aud: Option<Audience>,
}

/// `aud`: one audience or several (RFC 7519 allows both).
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
pub(crate) enum Audience {
    One(String),
    Many(Vec<String>),
}
