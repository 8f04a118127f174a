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
        }
    }

    /// Whether the holder may see `connection`.
    pub fn allows(&self, connection: &ConnectionId) -> bool {
        self.connections
            .as_ref()
            .is_none_or(|allowed| allowed.contains(connection))
    }
}

/// The claims as they travel, before the ids are checked.
#[derive(Serialize, Deserialize)]
pub(crate) struct Wire {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) tenant: Option<String>,
    pub(crate) exp: u64,
    pub(crate) iat: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) connections: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) iss: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) aud: Option<String>,
}
