use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{ConnectionId, Family, Payload, TenantId, subject};

/// A connection's provider calls started or stopped failing in a row.
///
/// Published on `connector.health.<tenant>.<connection>` (stored in the
/// `CONNECTOR_HEALTH` stream) once per change: `degraded` when the failures in a row
/// (failed sync runs and health checks) reach the fleet's threshold,
/// `recovered` at the next success. Operators alert on `degraded`; the
/// connection's status says what the user must do, if anything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct HealthChanged {
    /// The connection's health now.
    pub health: HealthState,
    /// Failures in a row: the count that made it degraded, or 0 when it
    /// recovered.
    pub consecutive_failures: u32,
    /// Since when it is (`degraded`) or was (`recovered`) degraded.
    pub degraded_since: DateTime<Utc>,
    /// The last failure's reason, safe to show; absent when it recovered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<String>,
}

/// Whether a connection's provider calls fail in a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum HealthState {
    /// Failures in a row reached the threshold.
    Degraded,
    /// A provider call succeeded after the connection was degraded.
    Recovered,
}

impl Payload for HealthChanged {
    const TYPE: &'static str = "connector.health.changed";
    const FAMILY: Family = Family::Health;

    fn subject(&self, tenant: &TenantId, connection: &ConnectionId) -> String {
        subject::health(tenant, connection)
    }
}
