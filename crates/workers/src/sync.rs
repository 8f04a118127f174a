//! The sync step (ConnectorSyncWorkflow's activity).

use std::time::{Duration, Instant};

use chrono::Utc;
use fleet_bus::{Context, Delivery, Handler, HandlerError};
use fleet_connectors::{Connector, Credentials, ErrorClass, Page};
use fleet_events::{ConnectionStatus, CorrelationId, Envelope, SyncRequested};
use fleet_secrets::Stored;
use fleet_store::{PageCommit, RecordUpsert, SyncOutcome, SyncResult};
use uuid::Uuid;

use crate::refresh::{self, Need, RefreshError, Target};
use crate::{Deps, failure};

/// How often a running sync reports its progress at least.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// Pages through every stream of a connection, upserting each page and
/// checkpointing its cursor in one transaction, so a sync interrupted by a
/// crash resumes at its last committed page instead of starting over.
#[derive(Debug, Clone)]
pub struct Sync {
    deps: Deps,
}

impl Sync {
    /// A sync handler.
    pub fn new(deps: Deps) -> Self {
        Self { deps }
    }
}

/// Where a run is, for progress reports and the run's record.
#[derive(Debug)]
struct Progress {
    records: u64,
    pages: u64,
    stream: Option<String>,
    last_report: Instant,
}

impl Progress {
    fn status(&self) -> ConnectionStatus {
        ConnectionStatus::Syncing {
            records: self.records,
            pages: self.pages,
            stream: self.stream.clone(),
        }
    }
}

/// Where a stream's sync starts: its checkpoint from an interrupted run of
/// this request, or its beginning.
#[derive(Debug)]
struct Resume<'a> {
    stream: &'a str,
    cursor: Option<serde_json::Value>,
}

/// Why a run stopped early.
#[derive(Debug)]
enum Stop {
    /// The provider no longer accepts the credentials.
    Reauth(String),
    /// Anything else, as the bus should see it.
    Failed(HandlerError),
}

impl From<HandlerError> for Stop {
    fn from(error: HandlerError) -> Self {
        Self::Failed(error)
    }
}

impl From<RefreshError> for Stop {
    fn from(error: RefreshError) -> Self {
        match error {
            RefreshError::Reauth(reason) => Self::Reauth(reason),
            RefreshError::Failed(error) => Self::Failed(error),
        }
    }
}

/// Why a page could not be fetched.
#[derive(Debug)]
enum Fetch {
    /// The provider's answer.
    Provider(fleet_connectors::Error),
    /// Reporting progress failed.
    Stop(Stop),
}

impl From<HandlerError> for Fetch {
    fn from(error: HandlerError) -> Self {
        Self::Stop(Stop::Failed(error))
    }
}

/// The credentials a run uses, and whether it has already renewed them
/// because the provider rejected the access token (it does that once).
#[derive(Debug)]
struct Session {
    credentials: Stored<Credentials>,
    renewed_after_rejection: bool,
}

impl Handler for Sync {
    type Payload = SyncRequested;

    async fn handle(
        &self,
        event: &Envelope<SyncRequested>,
        ctx: &mut Context,
    ) -> Result<(), HandlerError> {
        let started = Instant::now();
        let (tenant, connection) = (&event.tenant, &event.connection);
        let connector = self.deps.connector(&event.connector)?;
        let run = run_id(event, ctx.delivery());
        let store = &self.deps.store;
        let mut progress = Progress {
            records: 0,
            pages: 0,
            stream: None,
            last_report: Instant::now(),
        };
        // The credentials, the run's record and the first progress report
        // do not depend on each other.
        let read = async {
            self.deps
                .secrets
                .read_active::<Credentials>(tenant, connection)
                .await
                .map_err(|e| failure::secrets(&e))
        };
        let start =
            failure::in_store(|| store.start_sync_run(tenant, connection, run, event.data.trigger));
        let cursors = failure::in_store(|| store.cursors(tenant, connection));
        let (credentials, (), mut cursors, _) =
            tokio::try_join!(read, start, cursors, ctx.status(event, progress.status()))?;
        let credentials = match refresh::fresh(
            &self.deps,
            target(event),
            credentials,
            Need::BeforeExpiry,
        )
        .await
        {
            Ok(credentials) => credentials,
            Err(error) => return self.stopped(event, ctx, run, &progress, error.into()).await,
        };
        let mut session = Session {
            credentials,
            renewed_after_rejection: false,
        };
        let streams: Vec<String> = match &event.data.streams {
            Some(streams) => streams.clone(),
            None => connector
                .streams()
                .iter()
                .map(|s| s.name.to_owned())
                .collect(),
        };
        for stream in &streams {
            let from = Resume {
                stream,
                cursor: cursors.remove(stream),
            };
            let synced = self
                .sync_stream(event, ctx, &*connector, &mut session, from, &mut progress)
                .await;
            if let Err(stop) = synced {
                return self.stopped(event, ctx, run, &progress, stop).await;
            }
        }

        let total = failure::in_store(|| {
            store.complete_sync_run(tenant, connection, run, progress.records, progress.pages)
        })
        .await?;
        let synced = ConnectionStatus::Synced {
            records: total,
            duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            last_sync_at: Utc::now(),
        };
        ctx.status(event, synced).await?;
        Ok(())
    }
}

impl Sync {
    /// Syncs one stream from its checkpoint to its end.
    async fn sync_stream(
        &self,
        event: &Envelope<SyncRequested>,
        ctx: &mut Context,
        connector: &dyn Connector,
        session: &mut Session,
        from: Resume<'_>,
        progress: &mut Progress,
    ) -> Result<(), Stop> {
        let (tenant, connection) = (&event.tenant, &event.connection);
        let store = &self.deps.store;
        let Resume { stream, mut cursor } = from;
        progress.stream = Some(stream.to_owned());
        loop {
            let fetched = self
                .fetch(
                    event,
                    ctx,
                    connector,
                    &session.credentials.value,
                    stream,
                    cursor.as_ref(),
                    progress,
                )
                .await;
            let page = match fetched {
                Ok(page) => page,
                Err(Fetch::Stop(stop)) => return Err(stop),
                Err(Fetch::Provider(error))
                    if error.wants_token_refresh() && !session.renewed_after_rejection =>
                {
                    // Renew once and ask for the same page again.
                    session.renewed_after_rejection = true;
                    let current = session.credentials.clone();
                    session.credentials =
                        refresh::fresh(&self.deps, target(event), current, Need::Rejected).await?;
                    continue;
                }
                Err(Fetch::Provider(error)) => return Err(classify(&error)),
            };
            let records: Vec<RecordUpsert> = page
                .records
                .into_iter()
                .map(|r| RecordUpsert {
                    external_id: r.external_id,
                    payload: r.payload,
                    updated_at: r.updated_at,
                })
                .collect();
            failure::in_store(|| {
                store.commit_page(PageCommit {
                    tenant,
                    connection,
                    stream,
                    records: &records,
                    cursor: page.next.as_ref(),
                })
            })
            .await?;
            progress.records += records.len() as u64;
            progress.pages += 1;
            if progress.last_report.elapsed() >= PROGRESS_EVERY {
                report(event, ctx, progress).await?;
            }
            let Some(next) = page.next else {
                return Ok(());
            };
            cursor = Some(next);
        }
    }

    /// Fetches one page, reporting progress every second while it waits.
    #[expect(
        clippy::too_many_arguments,
        reason = "one page request and where to report"
    )]
    async fn fetch(
        &self,
        event: &Envelope<SyncRequested>,
        ctx: &mut Context,
        connector: &dyn Connector,
        credentials: &Credentials,
        stream: &str,
        cursor: Option<&serde_json::Value>,
        progress: &mut Progress,
    ) -> Result<Page, Fetch> {
        let page = connector.sync_page(credentials, stream, cursor);
        tokio::pin!(page);
        let mut ticks = tokio::time::interval_at(
            tokio::time::Instant::from_std(progress.last_report + PROGRESS_EVERY),
            PROGRESS_EVERY,
        );
        let result = loop {
            tokio::select! {
                result = &mut page => break result,
                _ = ticks.tick() => report(event, ctx, progress).await?,
            }
        };
        result.map_err(Fetch::Provider)
    }

    /// Ends a run that could not finish: a transient failure leaves the run
    /// open for the redelivery to continue; anything else closes it.
    async fn stopped(
        &self,
        event: &Envelope<SyncRequested>,
        ctx: &mut Context,
        run: CorrelationId,
        progress: &Progress,
        stop: Stop,
    ) -> Result<(), HandlerError> {
        let (reason, reauth) = match stop {
            Stop::Failed(error @ HandlerError::Transient { .. }) => return Err(error),
            Stop::Failed(
                HandlerError::Permanent { reason } | HandlerError::Malformed { reason },
            ) => (reason, false),
            Stop::Reauth(reason) => (reason, true),
        };
        let outcome = SyncOutcome {
            records: progress.records,
            pages: progress.pages,
            result: SyncResult::Failed {
                error: reason.clone(),
            },
        };
        failure::in_store(|| {
            self.deps
                .store
                .finish_sync_run(&event.tenant, &event.connection, run, &outcome)
        })
        .await?;
        if !reauth {
            return Err(HandlerError::permanent(reason));
        }
        ctx.status(event, ConnectionStatus::ReauthRequired { reason })
            .await?;
        Ok(())
    }
}

/// What a provider error means for the run.
fn classify(error: &fleet_connectors::Error) -> Stop {
    match error.class() {
        ErrorClass::Retryable { retry_after } => Stop::Failed(HandlerError::Transient {
            reason: failure::describe(error),
            retry_after,
        }),
        ErrorClass::ReauthRequired => Stop::Reauth(error.to_string()),
        ErrorClass::Permanent => Stop::Failed(HandlerError::permanent(error.to_string())),
    }
}

fn target(event: &Envelope<SyncRequested>) -> Target<'_> {
    Target {
        tenant: &event.tenant,
        connection: &event.connection,
        connector: &event.connector,
    }
}

async fn report(
    event: &Envelope<SyncRequested>,
    ctx: &mut Context,
    progress: &mut Progress,
) -> Result<(), HandlerError> {
    ctx.status(event, progress.status()).await?;
    progress.last_report = Instant::now();
    Ok(())
}

/// One run per sync request message: the event id and its stream sequence
/// (scheduled runs share the stored schedule's event id), stable across
/// redeliveries so a resumed run continues the same record.
fn run_id(event: &Envelope<SyncRequested>, delivery: Delivery) -> CorrelationId {
    let namespace = event.id.as_uuid();
    let name = delivery.stream_sequence.to_be_bytes();
    CorrelationId::from(Uuid::new_v5(&namespace, &name))
}
