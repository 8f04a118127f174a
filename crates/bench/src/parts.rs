//! The full chain's Vault work and PostgreSQL work, each run alone: the
//! same requests and statements a setup chain makes, without NATS, the
//! provider, the other store or the fleet's steps around them. How many of
//! these per second the machine carries bounds the full chain from above,
//! measured in the same run on the same servers.

use std::sync::Arc;

use chrono::Utc;
use fleet_connectors::{Connector, Credentials, Page};
use fleet_events::{
    AccountInfo, ConnectionId, ConnectionStatus, ConnectorId, CorrelationId, EventId, SyncCounts,
    SyncTrigger, TenantId,
};
use fleet_store::{
    Claim, NewConnection, PageCommit, Pass, RecordUpsert, SavedConnection, SlotClaim, StatusUpdate,
    Store, SyncLease, SyncOutcome, SyncResult,
};
use uuid::Uuid;

use crate::Error;
use crate::driver::Chains;
use crate::inflight::{End, Inflight};

/// What [`VaultPart`] does per chain.
pub(crate) const VAULT: &str = "the chain's KV v2 requests on a new connection, one after the \
                                other: stage (the gateway, a check-and-set write), read the staged \
                                version (validate); the save step makes none, and the sync step \
                                reads the same version from the process's cache";
/// What [`PostgresPart`] does per chain.
pub(crate) const POSTGRES: &str = "the chain's PostgreSQL work on a new connection: promote \
                                   its staged credentials and save it; claim its sync slot (which \
                                   starts the run and reads the cursors); commit each stream's one \
                                   page (the simulated site's records) with the end of its pass; \
                                   complete the run, freeing the slot; apply the 4 statuses \
                                   (validating, saving, syncing, synced)";

/// What [`ScheduledSyncPart`] does per chain.
pub(crate) const SCHEDULED_SYNC: &str = "a scheduled sync's PostgreSQL work on one of the \
                                         scenario's connections, taken in turn: claim its sync \
                                         slot; commit each stream's page of what changed since \
                                         its last sync (nothing) with the end of its incremental \
                                         pass; complete the run; apply the 2 statuses (syncing, \
                                         synced) one by one, where the status step batches them";

/// How long a part's sync holds its connection's slot, as the sync step's
/// does without renewal.
const SLOT_HOLD: std::time::Duration = std::time::Duration::from_secs(60);

/// One chain of a part: its work, done when the future resolves.
pub(crate) trait Work: Send + Sync + 'static {
    fn run(&self) -> impl Future<Output = Result<(), Error>> + Send;
}

/// Offers a part's work to the driver as chains: a chain runs while the
/// driver "publishes" it, and ends with it.
#[derive(Debug)]
pub(crate) struct Alone<W> {
    pub(crate) work: W,
    pub(crate) inflight: Arc<Inflight>,
}

impl<W: Work> Chains for Alone<W> {
    type Chain = Uuid;

    async fn prepare(&self) -> Result<(Uuid, Uuid), Error> {
        let key = Uuid::new_v4();
        Ok((key, key))
    }

    async fn publish(&self, key: Uuid) -> Result<(), Error> {
        let done = self.work.run().await;
        let end = if done.is_ok() {
            End::Completed
        } else {
            End::Failed
        };
        self.inflight.finish(key, end);
        done
    }
}

/// One chain's Vault requests, as the gateway, validate and sync steps make
/// them (the save step makes none).
#[derive(Debug)]
pub(crate) struct VaultPart {
    pub(crate) secrets: fleet_secrets::Client,
    pub(crate) tenant: TenantId,
    pub(crate) credentials: Credentials,
}

impl Work for VaultPart {
    async fn run(&self) -> Result<(), Error> {
        let (tenant, connection) = (&self.tenant, &ConnectionId::new());
        let secrets = &self.secrets;
        async {
            let staged = secrets.stage(tenant, connection, &self.credentials).await?;
            secrets
                .read_staged::<Credentials>(tenant, connection, staged)
                .await?;
            // The save step promotes in PostgreSQL; the sync step reads
            // the same version, from the cache the validate step filled.
            secrets
                .read_version::<Credentials>(tenant, connection, staged)
                .await?;
            Ok(())
        }
        .await
        .map_err(Error::VaultPart)
    }
}

/// One chain's PostgreSQL statements, as the save, sync and status steps
/// make them.
#[derive(Debug)]
pub(crate) struct PostgresPart {
    pub(crate) store: Store,
    pub(crate) tenant: TenantId,
    pub(crate) connector: ConnectorId,
    /// Each stream's page as the provider returned it.
    pub(crate) pages: Vec<(String, Vec<RecordUpsert>)>,
}

impl Work for PostgresPart {
    async fn run(&self) -> Result<(), Error> {
        self.chain().await.map_err(Error::PostgresPart)
    }
}

impl PostgresPart {
    async fn chain(&self) -> Result<(), fleet_store::Error> {
        let (store, tenant, connection) = (&self.store, &self.tenant, &ConnectionId::new());
        // As the gateway does, before anything is published about it.
        let new = NewConnection {
            tenant,
            id: connection,
            connector: &self.connector,
            display_name: "bench",
            sync_interval: None,
        };
        store.stage_connection(new, 1).await?;
        let status = |status| apply(store, tenant, &self.connector, connection, status);
        status(ConnectionStatus::Validating).await?;
        let account = AccountInfo {
            id: "1".to_owned(),
            name: "bench".to_owned(),
        };
        status(ConnectionStatus::Saving).await?;
        let saved = SavedConnection {
            tenant,
            id: connection,
            connector: &self.connector,
            account: &account,
            sync_interval: None,
        };
        let promote = fleet_store::Promote {
            staged: 1,
            request: fleet_events::EventId::new(),
            adopted: false,
        };
        store.promote_credentials(saved, promote).await?;
        sync(
            store,
            tenant,
            connection,
            &self.pages,
            SyncTrigger::Setup,
            &status,
        )
        .await
    }
}

/// A scheduled sync's PostgreSQL statements alone, on connections set up
/// before, taken in turn.
#[derive(Debug)]
pub(crate) struct ScheduledSyncPart {
    pub(crate) store: Store,
    pub(crate) tenant: TenantId,
    pub(crate) connector: ConnectorId,
    /// The connections no chain is syncing, longest idle first: a chain
    /// takes one and gives it back when it ends, so two chains never claim
    /// one connection (the second would be refused).
    pub(crate) idle: std::sync::Mutex<std::collections::VecDeque<ConnectionId>>,
    /// Each stream's page of what changed since the last sync.
    pub(crate) pages: Vec<(String, Vec<RecordUpsert>)>,
}

impl Work for ScheduledSyncPart {
    async fn run(&self) -> Result<(), Error> {
        let taken = self.idle.lock().ok().and_then(|mut idle| idle.pop_front());
        let Some(connection) = taken else {
            return Err(Error::NoIdleConnection);
        };
        let status = |status| {
            apply(
                &self.store,
                &self.tenant,
                &self.connector,
                &connection,
                status,
            )
        };
        let synced = sync(
            &self.store,
            &self.tenant,
            &connection,
            &self.pages,
            SyncTrigger::Scheduled,
            &status,
        )
        .await;
        if let Ok(mut idle) = self.idle.lock() {
            idle.push_back(connection);
        }
        synced.map_err(Error::PostgresPart)
    }
}

/// Applies `status` to `connection` as the status step does, from a new
/// event.
async fn apply(
    store: &Store,
    tenant: &TenantId,
    connector: &ConnectorId,
    connection: &ConnectionId,
    status: ConnectionStatus,
) -> Result<fleet_store::Applied, fleet_store::Error> {
    store
        .apply_status(StatusUpdate {
            tenant,
            connection,
            connector,
            event_id: EventId::new(),
            occurred_at: Utc::now(),
            status: &status,
        })
        .await
}

/// One sync's statements, as the sync step makes them for `connection`:
/// claim the slot (which starts the run and reads the cursors), commit each
/// stream's one page with the end of its pass, complete the run (freeing
/// the slot), with the `syncing` and `synced` statuses applied by `status`.
async fn sync<F, Fut>(
    store: &Store,
    tenant: &TenantId,
    connection: &ConnectionId,
    pages: &[(String, Vec<RecordUpsert>)],
    trigger: SyncTrigger,
    status: &F,
) -> Result<(), fleet_store::Error>
where
    F: Fn(ConnectionStatus) -> Fut,
    Fut: Future<Output = Result<fleet_store::Applied, fleet_store::Error>>,
{
    let run = CorrelationId::new();
    let claim = SlotClaim {
        tenant,
        connection,
        run,
        request: EventId::new(),
        attempt: 1,
        hold: SLOT_HOLD,
        max_per_tenant: u32::MAX,
        trigger,
    };
    let claimed = store.claim_sync_run(claim).await?;
    if claimed.claim != Claim::Granted {
        return Err(fleet_store::Error::SyncSlotLost {
            connection: connection.clone(),
        });
    }
    let lease = SyncLease { run, attempt: 1 };
    let syncing = ConnectionStatus::Syncing {
        records: 0,
        pages: 0,
        stream: None,
    };
    status(syncing).await?;
    let mut counts = SyncCounts::default();
    for (stream, page) in pages {
        // A setup's first sync reads each stream whole; a scheduled one
        // reads what changed since the last.
        let pass = Pass::begin(trigger == SyncTrigger::Setup);
        let commit = PageCommit {
            tenant,
            connection,
            stream,
            pass: &pass,
            records: page,
            cursor: None,
            gap: None,
            removed: &[],
            lease: Some(lease),
        };
        let (written, ended) = store.commit_last_page(commit, true).await?;
        counts.seen += page.len() as u64;
        counts.added += written.added;
        counts.updated += written.updated;
        counts.deleted += ended.deleted;
    }
    let outcome = SyncOutcome {
        records: counts.seen,
        pages: pages.len() as u64,
        added: counts.added,
        updated: counts.updated,
        deleted: counts.deleted,
        result: SyncResult::Succeeded,
    };
    let total = store
        .complete_sync_run(tenant, connection, run, &outcome, None, Some(lease))
        .await?
        .records_total;
    status(ConnectionStatus::Synced {
        records: total,
        counts,
        duration_ms: 0,
        last_sync_at: Utc::now(),
        run_id: None,
    })
    .await?;
    Ok(())
}

/// The first page of each of `connector`'s streams, as records to store:
/// of the whole stream, or with `since` of what changed since then (as an
/// incremental pass reads it).
pub(crate) async fn first_pages(
    connector: &dyn Connector,
    credentials: &Credentials,
    since: Option<chrono::DateTime<Utc>>,
) -> Result<Vec<(String, Vec<RecordUpsert>)>, Error> {
    let mut pages = Vec::new();
    for stream in connector.streams() {
        let cursor = since.and_then(|since| connector.incremental_start(stream.name, since));
        let Page { records, .. } = connector
            .sync_page(credentials, stream.name, cursor.as_ref())
            .await
            .map_err(Error::Fetch)?;
        let records = records
            .into_iter()
            .map(|r| RecordUpsert {
                external_id: r.external_id,
                payload: r.payload,
                updated_at: r.updated_at,
            })
            .collect();
        pages.push((stream.name.to_owned(), records));
    }
    Ok(pages)
}
