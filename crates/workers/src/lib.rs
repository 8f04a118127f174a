//! The steps of connector-fleet, as [`fleet_bus::Handler`]s.
//!
//! | handler | consumes | does | publishes |
//! | --- | --- | --- | --- |
//! | [`Validate`] | `connector.validate.*` | reads the staged credentials from Vault, asks the provider | `validating`, then `connector.save.*`, or `invalid` |
//! | [`Save`] | `connector.save.*` | promotes staged → active in Vault (CAS), records the connection in Postgres, schedules its recurring sync | `saving`, then `connector.sync.*` |
//! | [`Sync`] | `connector.sync.*` | renews OAuth tokens that are about to expire (single-flight across the fleet), pages through each stream, upserts records and checkpoints the cursor per page; renews once and retries the page when the provider rejects the token | `syncing` progress at least every second, then `synced`, or `reauth_required` |
//! | [`health::Checker`] | (Postgres: connections due a check) | beside the sync step: asks the provider whether each connection's credentials still work when neither a sync nor a check did for an interval; counts failures in a row | `reauth_required` for a revoked grant; `connector.health.*` when a connection becomes degraded or recovers |
//! | [`Status`] | `connector.status.*` | applies the status to the connection's row, newest wins | nothing |
//! | [`Webhooks`] | `connector.status.*` (its own consumer, one at a time) | files each state change and sync completion as a delivery per webhook endpoint of the tenant; the [`webhook::Dispatcher`] sends them, signed, in order per connection | nothing |
//! | [`Meter`] | `connector.status.*` (its own consumer) | reports each `synced` or `partial` run's usage to Lago ([`meter`]), keyed by the run's id | nothing |
//!
//! Every handler is idempotent: a redelivered event finds its effects
//! already there (Vault CAS with lineage, upserts by natural key, status
//! ordered by event time) and its next events deduplicated by the bus.
//!
//! What it does not do: run consumers (that is [`fleet_bus::Worker`]) or
//! read configuration ([`Deps`] is built by the caller).

#![warn(missing_docs)]

mod credentials;
mod failure;
pub mod health;
pub mod meter;
mod refresh;
mod runner;
mod save;
mod status;
mod sync;
mod validate;
pub mod webhook;

use std::sync::Arc;

pub use health::HealthSettings;
pub use meter::Meter;
pub use runner::{Settings, spawn_steps};
pub use save::Save;
pub use status::Status;
pub use sync::Sync;
pub use validate::Validate;
pub use webhook::Webhooks;

/// What the step handlers use, built once per process and shared.
#[derive(Debug, Clone)]
pub struct Deps {
    /// Credential store.
    pub secrets: fleet_secrets::Client,
    /// Postgres state.
    pub store: fleet_store::Store,
    /// The connector catalog.
    pub connectors: Arc<fleet_connectors::Registry>,
    /// Where recurring syncs are scheduled.
    pub schedules: fleet_bus::Schedules,
    /// How often a new connection syncs after its setup.
    pub schedule: SyncSchedule,
    /// Where the meter step reports usage; `None` turns metering off.
    pub meter: Option<meter::Lago>,
    /// How webhook deliveries are sent; `None` runs no delivery loop (the
    /// webhook step still files deliveries for endpoints that exist).
    pub webhooks: Option<webhook::Delivery>,
}

/// How often new connections sync on a schedule after their setup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncSchedule {
    /// Never on a schedule; only when asked.
    Off,
    /// Each connection at its catalog entry's `default_sync_interval_secs`.
    CatalogDefault,
    /// Every connection at this interval, whatever its catalog entry says.
    Every(std::time::Duration),
}

impl Deps {
    /// The interval of a new connection to `connector`, if it syncs on a
    /// schedule.
    fn sync_interval(&self, connector: &fleet_events::ConnectorId) -> Option<std::time::Duration> {
        match self.schedule {
            SyncSchedule::Off => None,
            SyncSchedule::Every(every) => Some(every),
            SyncSchedule::CatalogDefault => self
                .connectors
                .catalog()
                .get(connector)
                .map(|entry| entry.default_sync_interval),
        }
    }

    /// The provider's name for messages: the catalog's display name.
    fn provider(&self, id: &fleet_events::ConnectorId) -> String {
        self.connectors
            .catalog()
            .get(id)
            .map_or_else(|| id.to_string(), |entry| entry.display_name.clone())
    }

    fn connector(
        &self,
        id: &fleet_events::ConnectorId,
    ) -> Result<Arc<dyn fleet_connectors::Connector>, fleet_bus::HandlerError> {
        self.connectors.get(id).ok_or_else(|| {
            fleet_bus::HandlerError::permanent(format!("no connector named {id:?} in the catalog"))
        })
    }
}
