//! The status step: the connection's row follows its latest status.

use fleet_bus::{Context, Handler, HandlerError};
use fleet_events::{Envelope, StatusChanged};
use fleet_store::{Applied, StatusUpdate};
use tokio::sync::{mpsc, oneshot};

use crate::{Deps, failure};

/// The most statuses written in one statement.
const MAX_BATCH: usize = 128;

/// Writes each status change to Postgres. Older events than the one already
/// applied change nothing, so redeliveries and reordering are harmless.
///
/// The handlers of one process hand their statuses to one writer task,
/// which writes whatever has gathered while its previous write ran (up to
/// 128) in one statement ([`fleet_store::Store::apply_statuses`]);
/// each message is acked only after the write that holds it committed. A
/// lone status is written at once: batches form only under load.
///
/// A status creates no connection: one for a connection that does not
/// exist (under that tenant, with that provider) is dead-lettered with the
/// reason, and one for a connection its user deleted is dropped. A status
/// that cannot be stored (Postgres refuses its text) is dead-lettered too,
/// by the runtime, since this step reports no status of its own; the rest
/// of its batch is written one by one, so it takes no other status with it.
#[derive(Debug, Clone)]
pub struct Status {
    writes: mpsc::Sender<Write>,
}

/// One status handed to the writer, and where its outcome goes.
struct Write {
    event: Envelope<StatusChanged>,
    done: oneshot::Sender<Result<Applied, HandlerError>>,
}

impl Status {
    /// A status handler, and its writer task (which ends when the last
    /// clone of the handler is dropped). Call it inside a Tokio runtime.
    pub fn new(deps: Deps) -> Self {
        let (writes, queue) = mpsc::channel(MAX_BATCH);
        tokio::spawn(write_batches(deps, queue));
        Self { writes }
    }
}

impl Handler for Status {
    type Payload = StatusChanged;

    async fn handle(
        &self,
        event: &Envelope<StatusChanged>,
        _ctx: &mut Context,
    ) -> Result<(), HandlerError> {
        let stopped = || HandlerError::transient("the status writer stopped");
        let (done, outcome) = oneshot::channel();
        self.writes
            .send(Write {
                event: event.clone(),
                done,
            })
            .await
            .map_err(|_| stopped())?;
        match outcome.await.map_err(|_| stopped())?? {
            Applied::Applied | Applied::Stale | Applied::Deleted => Ok(()),
            Applied::Unknown => Err(HandlerError::malformed(format!(
                "tenant {} has no {} connection {}: a status creates no connection",
                event.tenant, event.connector, event.connection
            ))),
        }
    }
}

/// The writer task: takes what the handlers queued, up to [`MAX_BATCH`],
/// writes it and answers each handler.
async fn write_batches(deps: Deps, mut queue: mpsc::Receiver<Write>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let outcomes = write(&deps, &batch).await;
        for (write, outcome) in batch.drain(..).zip(outcomes) {
            // A handler that stopped waiting gets its message redelivered;
            // the write is idempotent.
            let _ = write.done.send(outcome);
        }
    }
}

/// Writes a batch in one statement; when that fails for good, one by one,
/// so that only the status that cannot be stored fails.
async fn write(deps: &Deps, batch: &[Write]) -> Vec<Result<Applied, HandlerError>> {
    let updates: Vec<StatusUpdate<'_>> = batch
        .iter()
        .map(|write| StatusUpdate::from(&write.event))
        .collect();
    let store = &deps.store;
    match failure::in_store(|| store.apply_statuses(&updates)).await {
        Ok(applied) => applied.into_iter().map(Ok).collect(),
        Err(error @ HandlerError::Transient { .. }) => vec![Err(error); batch.len()],
        Err(error) if batch.len() == 1 => vec![Err(error)],
        Err(_) => {
            let mut outcomes = Vec::with_capacity(batch.len());
            for update in updates {
                outcomes.push(failure::in_store(|| store.apply_status(update)).await);
            }
            outcomes
        }
    }
}
