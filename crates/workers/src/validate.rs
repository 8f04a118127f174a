//! The validate step.

use fleet_bus::{Context, Handler, HandlerError};
use fleet_connectors::{Credentials, ErrorClass};
use fleet_events::{ConnectionStatus, Envelope, SaveRequested, ValidateRequested};
use fleet_secrets::Version;
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
        let credentials: Credentials = match self
            .deps
            .secrets
            .read_staged(&event.tenant, &event.connection, staged)
            .await
        {
            Ok(credentials) => credentials,
            // The save step destroys a staged version once it is active, and
            // a disconnect deletes it: either way this request was already
            // carried through or withdrawn, and a redelivery has nothing to do.
            Err(fleet_secrets::Error::NotFound { .. }) => {
                info!(%staged, "Staged credentials are gone; the setup already went on or was withdrawn.");
                return Ok(());
            }
            Err(e) => return Err(failure::secrets(&e)),
        };
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
