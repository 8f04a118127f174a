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
        // Promotion comes first: a save request for credentials that were
        // never staged (a stray or replayed event) must change nothing, not
        // the connection's status, account or schedule.
        self.deps
            .secrets
            .promote(tenant, connection, Version::new(event.data.staged_version))
            .await
            .map_err(|e| match e {
                fleet_secrets::Error::NotFound { .. } => HandlerError::malformed(format!(
                    "no staged credentials version {} for this connection: the save request \
                     does not follow a validation of them",
                    event.data.staged_version
                )),
                e => failure::secrets(&e),
            })?;
        let interval = self.deps.sync_interval(&event.connector);
        // The row may predate this step (the gateway creates it), so the
        // account and interval are set either way.
        let record = failure::in_store(|| {
            store.save_connection(SavedConnection {
                tenant,
                id: connection,
                connector: &event.connector,
                account,
                sync_interval: interval,
            })
        });
        tokio::try_join!(ctx.status_once(event, ConnectionStatus::Saving), record)?;
        if let Some(every) = interval {
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
