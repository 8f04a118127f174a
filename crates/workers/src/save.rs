//! The save step.

use fleet_bus::{Context, Handler, HandlerError};
use fleet_events::{ConnectionStatus, Envelope, SaveRequested, SyncRequested, SyncTrigger};
use fleet_secrets::Version;
use fleet_store::{Promote, Promotion, SavedConnection};

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
        let interval = self.deps.sync_interval(&event.connector);
        let saved = SavedConnection {
            tenant,
            id: connection,
            connector: &event.connector,
            account,
            sync_interval: interval,
        };
        // Promotion is one statement, and comes first: a save request for
        // credentials that were never staged (a stray or replayed event)
        // must change nothing, not the connection's status, account or
        // schedule.
        let staged = event.data.staged_version;
        let promote = Promote {
            staged,
            request: event.id,
            adopted: false,
        };
        let mut promotion = failure::in_store(|| store.promote_credentials(saved, promote)).await?;
        if promotion == Promotion::Legacy {
            promotion = self.adopt_and_promote(event, saved).await?;
        }
        match promotion {
            Promotion::Promoted => {}
            Promotion::Superseded => {
                tracing::info!(
                    staged,
                    "Newer credentials of this connection are in use; this save request changes nothing."
                );
                return Ok(());
            }
            // A validation repeated after the deduplication window asks
            // again; the first request's effects stand.
            Promotion::Duplicate => {
                tracing::info!(
                    staged,
                    "Another save request promoted these credentials; this one changes nothing."
                );
                return Ok(());
            }
            Promotion::Unknown | Promotion::Legacy => {
                return Err(HandlerError::malformed(format!(
                    "no staged credentials version {staged} for this connection: the save \
                     request does not follow a validation of them, or the connection was deleted"
                )));
            }
        }
        ctx.status_once(event, ConnectionStatus::Saving).await?;
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

impl Save {
    /// A setup begun before credentials were versioned in one secret staged
    /// them in the legacy `staged` secret: they are copied into the one
    /// secret, and that copy is promoted.
    async fn adopt_and_promote(
        &self,
        event: &Envelope<SaveRequested>,
        saved: SavedConnection<'_>,
    ) -> Result<Promotion, HandlerError> {
        let (tenant, connection) = (&event.tenant, &event.connection);
        let secrets = &self.deps.secrets;
        let staged = Version::new(event.data.staged_version);
        let copy: fleet_secrets::Stored<fleet_connectors::Credentials> =
            match secrets.adopt_legacy(tenant, connection, Some(staged)).await {
                Ok(copy) => copy,
                Err(fleet_secrets::Error::NotFound { .. }) => return Ok(Promotion::Unknown),
                Err(e) => return Err(failure::secrets(&e)),
            };
        let store = &self.deps.store;
        let version = copy.version.get();
        let promote = Promote {
            staged: version,
            request: event.id,
            adopted: true,
        };
        let promotion = failure::in_store(|| store.promote_credentials(saved, promote)).await?;
        if promotion == Promotion::Promoted {
            if let Err(error) = secrets.retire_legacy(tenant, connection).await {
                tracing::warn!(error.message = %failure::describe(&error), "Deleting the legacy secrets of an adopted connection failed; they stay until it is deleted.");
            }
        } else {
            crate::credentials::discard(&self.deps, tenant, connection, copy.version).await;
        }
        Ok(promotion)
    }
}
