use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{ConnectionId, Family, Payload, TenantId, subject};

/// Asks the save worker to promote validated credentials from staged to
/// active in Vault and to record the connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SaveRequested {
    /// Vault KV v2 version of the staged secret that was validated; the save worker promotes this
    /// version only (check-and-set).
    pub staged_version: u64,
    /// The provider account the credentials belong to, as the provider reported it during
    /// validation.
    pub account: AccountInfo,
}

impl Payload for SaveRequested {
    const TYPE: &'static str = "connector.save.requested";
    const FAMILY: Family = Family::Save;

    fn subject(&self, tenant: &TenantId, connection: &ConnectionId) -> String {
        subject::save(tenant, connection)
    }
}

/// A provider account, as shown to the user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AccountInfo {
    /// The provider's id of the account (a property id, a site URL, a board id).
    pub id: String,
    /// Display name of the account.
    pub name: String,
}
