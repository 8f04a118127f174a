//! Configuration from the environment: the one place that reads it.
//!
//! Every setting is `FLEET_` followed by its path, with `__` between levels:
//! `FLEET_NATS__URL` sets `nats.url`, `FLEET_NATS__PASSWORD` sets
//! `nats.password`. The libraries document each field of their `Config`;
//! docs/configuration.md lists them all.

use figment::Figment;
use figment::providers::Env;
use serde::Deserialize;

/// Settings for every part of the fleet; each command reads the parts it
/// needs.
#[derive(Debug, Deserialize)]
pub(crate) struct Config {
    /// NATS connection (`FLEET_NATS__*`).
    pub(crate) nats: fleet_bus::Config,
    /// Vault/OpenBao (`FLEET_VAULT__*`); needed by the workers.
    pub(crate) vault: Option<fleet_secrets::Config>,
    /// PostgreSQL (`FLEET_DATABASE__*`); needed by the workers.
    pub(crate) database: Option<fleet_store::Config>,
    /// Provider HTTP settings (`FLEET_CONNECTORS__*`).
    #[serde(default)]
    pub(crate) connectors: fleet_connectors::Config,
    /// Tenant token algorithm, key, issuer, audience and lifetime
    /// (`FLEET_AUTH__*`); needed by the gateway, the bridge and `fleet token`.
    pub(crate) auth: Option<fleet_auth::Config>,
    /// Gateway limits (`FLEET_GATEWAY__*`).
    #[serde(default)]
    pub(crate) gateway: fleet_gateway::Config,
    /// Bridge listener and session limits (`FLEET_BRIDGE__*`).
    #[serde(default)]
    pub(crate) bridge: fleet_bridge::Config,
    /// Usage metering to Lago (`FLEET_METERING__*`); off without it.
    pub(crate) metering: Option<fleet_workers::meter::Config>,
    /// Webhook signing and delivery (`FLEET_WEBHOOKS__*`); needed by the
    /// gateway's webhook routes and the workers' delivery loop.
    pub(crate) webhooks: Option<fleet_workers::webhook::Config>,
}

impl Config {
    /// Reads the configuration from `FLEET_*` environment variables.
    ///
    /// # Errors
    ///
    /// A missing required setting or a value of the wrong type, named by its
    /// variable.
    pub(crate) fn from_env() -> anyhow::Result<Self> {
        environment()
            .extract()
            .map_err(|e| anyhow::anyhow!("invalid configuration: {e} (settings are FLEET_* environment variables, see docs/configuration.md)"))
    }

    /// Reads only the NATS settings (`FLEET_NATS__*`), for commands that
    /// need nothing else (`fleet dlq`).
    ///
    /// # Errors
    ///
    /// A missing `FLEET_NATS__URL` or a NATS setting of the wrong type.
    pub(crate) fn nats_from_env() -> anyhow::Result<fleet_bus::Config> {
        environment().extract_inner("nats").map_err(|e| {
            anyhow::anyhow!(
                "invalid NATS settings: {e} (FLEET_NATS__URL and the other FLEET_NATS__* settings, see docs/configuration.md)"
            )
        })
    }

    /// Reads only the token settings (`FLEET_AUTH__*`), for commands that
    /// need nothing else (`fleet token`); `None` when none is set.
    ///
    /// # Errors
    ///
    /// A token setting of the wrong type, named by its variable.
    pub(crate) fn auth_from_env() -> anyhow::Result<Option<fleet_auth::Config>> {
        let figment = environment();
        if !figment.contains("auth") {
            return Ok(None);
        }
        figment.extract_inner("auth").map(Some).map_err(|e| {
            anyhow::anyhow!(
                "invalid token settings: {e} (FLEET_AUTH__*, see docs/configuration.md)"
            )
        })
    }
}

fn environment() -> Figment {
    Figment::new().merge(Env::prefixed("FLEET_").split("__"))
}
