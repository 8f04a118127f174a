use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{ConnectionId, Family, Payload, TenantId, subject};

/// Asks the validate worker to check credentials the gateway staged in Vault.
///
/// The first event of a setup flow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ValidateRequested {
    /// How the user supplied the credentials.
    pub origin: SetupOrigin,
    /// Vault KV v2 version of the staged secret. The worker reads exactly this version, so
    /// credentials staged again later are validated by their own request.
    pub staged_version: u64,
}

impl Payload for ValidateRequested {
    const TYPE: &'static str = "connector.validate.requested";
    const FAMILY: Family = Family::Validate;

    fn subject(&self, tenant: &TenantId, connection: &ConnectionId) -> String {
        subject::validate(tenant, connection)
    }
}

/// How the credentials of a setup were obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SetupOrigin {
    /// Typed in by the user: an API key or an application password.
    Manual,
    /// Returned by the provider at the end of an OAuth authorization.
    Oauth,
}
