//! The status step: the connection's row follows its latest status.

use fleet_bus::{Context, Handler, HandlerError};
use fleet_events::{Envelope, StatusChanged};
use fleet_store::StatusUpdate;

use crate::{Deps, failure};

/// Writes each status change to Postgres. Older events than the one already
/// applied change nothing, so redeliveries and reordering are harmless.
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
        failure::in_store(|| self.deps.store.apply_status(StatusUpdate::from(event))).await?;
        Ok(())
    }
}
