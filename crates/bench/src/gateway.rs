//! Starting setup chains as the gateway does: stage the credentials in
//! Vault and record the connection (the full chain only), then publish
//! `connector.validate.*`.

use fleet_bus::Publisher;
use fleet_connectors::Credentials;
use fleet_events::{
    ConnectionId, ConnectorId, CorrelationId, Envelope, SetupOrigin, TenantId, ValidateRequested,
};
use uuid::Uuid;

use crate::Error;
use crate::driver::Chains;

/// Starts setup chains of one tenant. A chain's key is its correlation id,
/// which every event of the chain carries.
#[derive(Debug)]
pub(crate) struct Setups {
    publisher: Publisher,
    tenant: TenantId,
    connector: ConnectorId,
    staging: Option<Staging>,
}

/// Where and what to stage before each chain.
#[derive(Debug)]
pub(crate) struct Staging {
    pub(crate) secrets: fleet_secrets::Client,
    pub(crate) store: fleet_store::Store,
    pub(crate) credentials: Credentials,
}

impl Setups {
    /// Setups of `tenant`'s WordPress connections; with `staging`, each
    /// chain's credentials are staged first, otherwise the events name
    /// staged version 1 and nothing reads it.
    pub(crate) fn new(publisher: Publisher, tenant: TenantId, staging: Option<Staging>) -> Self {
        Self {
            publisher,
            tenant,
            connector: ConnectorId::parse("wordpress").expect("a valid connector id"),
            staging,
        }
    }
}

impl Chains for Setups {
    type Chain = Envelope<ValidateRequested>;

    async fn prepare(&self) -> Result<(Uuid, Envelope<ValidateRequested>), Error> {
        let connection = ConnectionId::new();
        let staged_version = match &self.staging {
            Some(staging) => {
                let staged = staging
                    .secrets
                    .stage(&self.tenant, &connection, &staging.credentials)
                    .await
                    .map_err(Error::Stage)?;
                staging
                    .store
                    .stage_connection(
                        fleet_store::NewConnection {
                            tenant: &self.tenant,
                            id: &connection,
                            connector: &self.connector,
                            display_name: "bench",
                            sync_interval: None,
                        },
                        staged.get(),
                    )
                    .await
                    .map_err(Error::PostgresPart)?;
                staged.get()
            }
            None => 1,
        };
        let request = Envelope::new(
            self.tenant.clone(),
            connection,
            self.connector.clone(),
            CorrelationId::new(),
            ValidateRequested {
                origin: SetupOrigin::Manual,
                staged_version,
            },
        );
        Ok((request.correlation_id.as_uuid(), request))
    }

    async fn publish(&self, request: Envelope<ValidateRequested>) -> Result<(), Error> {
        self.publisher
            .publish(&request, &request.id.to_string())
            .await
            .map_err(Error::Publish)?;
        Ok(())
    }
}
