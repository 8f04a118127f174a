use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{ConnectionId, Family, Payload, TenantId, subject};

/// Asks the sync worker to copy the connection's data from the provider.
///
/// With trigger `scheduled`, the envelope is a definition stored on
/// `connector.schedule.<tenant>.<connection>` that the server republishes on
/// `connector.sync.<tenant>.<connection>` at every run, so the same event
/// `id` arrives once per run: a consumer that deduplicates must key
/// scheduled runs on the delivery (stream sequence), not on the id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SyncRequested {
    /// What started the sync.
    pub trigger: SyncTrigger,
    /// Streams to sync, by the connector's stream names; absent means every stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub streams: Option<Vec<String>>,
    /// Resume point, in the connector's own checkpoint format; absent when the request gives none
    /// (null reads as absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<Value>,
}

impl Payload for SyncRequested {
    const TYPE: &'static str = "connector.sync.requested";
    const FAMILY: Family = Family::Sync;

    fn subject(&self, tenant: &TenantId, connection: &ConnectionId) -> String {
        subject::sync(tenant, connection)
    }
}

/// What started a sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SyncTrigger {
    /// The user asked for it.
    Manual,
    /// The connection's schedule fired.
    Scheduled,
    /// The first sync, at the end of a setup.
    Setup,
}
