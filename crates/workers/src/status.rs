//! The status step: the connection's row follows its latest status.

use fleet_bus::{Context, Handler, HandlerError};
use fleet_events::{Envelope, StatusChanged};
use fleet_store::{Applied, StatusUpdate};

use crate::{Deps, failure};

/// Writes each status change to Postgres. Older events than the one already
/// applied change nothing, so redeliveries and reordering are harmless.
///
/// A status creates no connection: one for a connection that does not
/// exist (under that tenant, with that provider) is dead-lettered with the
/// reason, and one for a connection its user deleted is dropped. A status
/// that cannot be stored (Postgres refuses its text) is dead-lettered too,
/// by the runtime, since this step reports no status of its own.
#[derive(Debug, Clone)]
pub struct Status {
    deps: Deps,
}

impl Status {
    /// A status handler.
    pub fn new(deps: Deps) -> Self {
        Self { deps }
    }
}

impl Handler for Status {
    type Payload = StatusChanged;

    async fn handle(
        &self,
        event: &Envelope<StatusChanged>,
        _ctx: &mut Context,
    ) -> Result<(), HandlerError> {
        match failure::in_store(|| self.deps.store.apply_status(StatusUpdate::from(event))).await? {
            Applied::Applied | Applied::Stale | Applied::Deleted => Ok(()),
            Applied::Unknown => Err(HandlerError::malformed(format!(
                "tenant {} has no {} connection {}: a status creates no connection",
                event.tenant, event.connector, event.connection
            ))),
        }
    }
}
