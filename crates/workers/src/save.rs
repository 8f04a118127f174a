//! The save step.

use fleet_bus::{Context, Handler, HandlerError};
use fleet_events::{ConnectionStatus, Envelope, SaveRequested, SyncRequested, SyncTrigger};
use fleet_secrets::Version;
use fleet_store::SavedConnection;

use crate::{Deps, failure};

/// Makes validated credentials the connection's active ones, records the
/// connection and schedules its recurring sync, then asks for its first
/// sync.
#[derive(Debug, Clone)]
pub struct Save {
    deps: Deps,
}

impl Save {
    /// A save handler.
    pub fn new(deps: Deps) -> Self {
        Self { deps }
    }
}

impl Handler for Save {
    type Payload = SaveRequested;

    async fn handle(
        &self,
        event: &Envelope<SaveRequested>,
        ctx: &mut Context,
    ) -> Result<(), HandlerError> {
        let (tenant, connection) = (&event.tenant, &event.connection);
        let account = &event.data.account;
        let store = &self.deps.store;
        // Vault and Postgres are independent here: the status, the
        // promotion and the connection's row go out together. Each is
        // idempotent, so a redelivery after a partial failure redoes them.
        let promote = async {
            self.deps
                .secrets
                .promote(tenant, connection, Version::new(event.data.staged_version))
                .await
                .map_err(|e| failure::secrets(&e))
        };
        // The row may predate this step (the gateway or the status writer
        // creates it), so the account and interval are set either way.
        let record = failure::in_store(|| {
            store.save_connection(SavedConnection {
                tenant,
                id: connection,
                connector: &event.connector,
                account,
                sync_interval: self.deps.sync_interval,
            })
        });
        tokio::try_join!(ctx.status(event, ConnectionStatus::Saving), promote, record)?;
        if let Some(every) = self.deps.sync_interval {
            // Scheduled only once the credentials are active.
            let scheduled = event.caused(SyncRequested {
                trigger: SyncTrigger::Scheduled,
                streams: None,
                cursor: None,
            });
            self.deps
                .schedules
                .set(&scheduled, every)
                .await
                .map_err(|e| HandlerError::transient(failure::describe(&e)))?;
        }
        let sync = SyncRequested {
            trigger: SyncTrigger::Setup,
            streams: None,
            cursor: None,
        };
        ctx.emit(event, sync).await?;
        Ok(())
    }
}
