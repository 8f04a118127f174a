//! The validate step.

use fleet_bus::{Context, Handler, HandlerError};
use fleet_connectors::{Credentials, ErrorClass};
use fleet_events::{ConnectionStatus, Envelope, SaveRequested, ValidateRequested};
use fleet_secrets::Version;
use fleet_store::CredentialsInUse;
use tracing::info;

use crate::{Deps, failure};

/// Checks staged credentials with the provider: valid ones go on to the
/// save step, refused ones end as `invalid` with the provider's reason.
#[derive(Debug, Clone)]
pub struct Validate {
    deps: Deps,
}

impl Validate {
    /// A validate handler.
    pub fn new(deps: Deps) -> Self {
        Self { deps }
    }
}

impl Handler for Validate {
    type Payload = ValidateRequested;

    async fn handle(
        &self,
        event: &Envelope<ValidateRequested>,
        ctx: &mut Context,
    ) -> Result<(), HandlerError> {
        let connector = self.deps.connector(&event.connector)?;
        let staged = Version::new(event.data.staged_version);
        let (tenant, connection) = (&event.tenant, &event.connection);
        let read = async {
            match self
                .deps
                .secrets
                .read_staged(tenant, connection, staged)
                .await
            {
                Ok(credentials) => Ok(Some(credentials)),
                // A disconnect deletes them: the setup was withdrawn.
                Err(fleet_secrets::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(failure::secrets(&e)),
            }
        };
        // The save step does not destroy what it promotes: the row says
        // whether this setup already went on.
        let store = &self.deps.store;
        let in_use = failure::in_store(|| store.credentials_in_use(tenant, connection));
        let (credentials, in_use): (Option<Credentials>, _) = tokio::try_join!(read, in_use)?;
        let Some(credentials) = credentials else {
            info!(%staged, "Staged credentials are gone; the setup was withdrawn.");
            return Ok(());
        };
        match in_use {
            Some(CredentialsInUse::NotYet(_) | CredentialsInUse::Legacy) => {}
            // A redelivery (past the deduplication window) of a setup that
            // was carried through: asking again would show `validating`
            // over the connection's current status.
            Some(CredentialsInUse::Version(_)) => {
                info!(%staged, "These credentials were validated and saved already; a redelivery has nothing to do.");
                return Ok(());
            }
            None => {
                info!(%staged, "The connection was deleted; the setup was withdrawn.");
                return Ok(());
            }
        }
        ctx.status_once(event, ConnectionStatus::Validating).await?;
        let account = match connector.validate(&credentials).await {
            Ok(account) => account,
            Err(e) => {
                return match e.class() {
                    ErrorClass::Retryable { retry_after } => Err(HandlerError::Transient {
                        reason: failure::describe(&e),
                        retry_after,
                    }),
                    ErrorClass::Permanent | ErrorClass::ReauthRequired => {
                        let reason = e.to_string();
                        ctx.status(event, ConnectionStatus::Invalid { reason })
                            .await?;
                        Ok(())
                    }
                };
            }
        };
        let save = SaveRequested {
            staged_version: event.data.staged_version,
            account: account.into(),
        };
        ctx.emit(event, save).await?;
        Ok(())
    }
}
