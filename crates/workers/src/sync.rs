//! The sync step (ConnectorSyncWorkflow's activity).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use fleet_bus::{Context, Delivery, Handler, HandlerError};
use fleet_connectors::{Connector, Credentials, ErrorClass, Page, StreamSpec, SyncLimits};
use fleet_events::{ConnectionStatus, Envelope, SyncCounts, SyncRequested};
use fleet_secrets::Stored;
use fleet_store::{
    Claim, Completed, CredentialsInUse, FailureSource, PageCommit, Pass, RecordUpsert, SlotClaim,
    StreamState, SyncLease, SyncOutcome, SyncResult,
};

use crate::health::{Tracker, Who};
use crate::refresh::{self, Need, RefreshError, Target};
use crate::{Deps, credentials, failure};

/// How often a running sync reports its progress at least.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);
/// How long a sync holds its connection's sync slot without renewing it:
/// longer than the slowest page (a request timeout, its retries and their
/// waits), so only a crashed worker's hold lapses.
const SLOT_HOLD: Duration = Duration::from_secs(300);
/// The first wait before freeing a slot again after the database failed;
/// it doubles up to [`RELEASE_RETRY_MAX`].
const RELEASE_RETRY_FIRST: Duration = Duration::from_millis(500);
/// The longest wait between attempts to free a slot.
const RELEASE_RETRY_MAX: Duration = Duration::from_secs(10);
/// How often a running sync renews its hold.
const SLOT_RENEW_EVERY: Duration = Duration::from_secs(30);
/// A provider's wait at least this long (a quota window, not a hiccup)
/// defers the run instead of failing it, so waits never use up its
/// deliveries.
const LONG_WAIT: Duration = Duration::from_secs(300);
/// How long a sync request first waits before asking again while its
/// tenant runs its maximum of syncs; the wait doubles with each delivery up
/// to [`TENANT_WAIT_MAX`], and jitter adds up to half as much again. Short
/// syncs free a slot within a second, so the first waits are short; a long
/// queue asks less and less often.
const TENANT_WAIT: Duration = Duration::from_secs(1);
/// The longest a waiting sync request waits between asks, before jitter.
const TENANT_WAIT_MAX: Duration = Duration::from_secs(10);

/// How long a request on its `attempt`-th delivery waits for its busy
/// tenant, before jitter.
fn tenant_wait(attempt: u32) -> Duration {
    let doublings = attempt.saturating_sub(1).min(4);
    (TENANT_WAIT * 2_u32.pow(doublings)).min(TENANT_WAIT_MAX)
}

/// Pages through every stream of a connection, upserting each page and
/// checkpointing its cursor in one transaction, so a sync interrupted by a
/// crash resumes at its last committed page instead of starting over.
///
/// Each stream is read in passes. The first pass, and one every
/// [`SyncLimits::reconcile_every_secs`], is full: it reads everything and
/// marks what it did not see deleted. The others are incremental where the
/// connector can filter by change time: they read what changed since the
/// last complete pass began. After an incremental pass, a provider total
/// that differs from the live records stored (something was deleted) starts
/// a full pass at once. A run that hits its budget, or a pass the
/// connector reports a gap in, ends `partial` with the reason; the next run
/// continues where it stopped.
///
/// A run first claims the connection's sync slot (see
/// [`fleet_store::Claim`]): a request while another sync of the connection
/// runs or is queued is coalesced into it, and one while the tenant runs
/// `max_per_tenant` syncs waits and asks again, so two syncs never
/// interleave their passes over one connection and no tenant holds every
/// sync slot of the fleet.
#[derive(Debug, Clone)]
pub struct Sync {
    deps: Deps,
    max_per_tenant: u32,
    health: Tracker,
}

impl Sync {
    /// A sync handler that runs at most `max_per_tenant` syncs of one
    /// tenant at once, fleet-wide (at least one), and records each run's
    /// outcome in the connection's health with `health`.
    pub(crate) fn new(deps: Deps, max_per_tenant: u32, health: Tracker) -> Self {
        Self {
            deps,
            max_per_tenant: max_per_tenant.max(1),
            health,
        }
    }
}

/// Where a run is, for progress reports and the run's record.
#[derive(Debug)]
struct Progress {
    /// The run and the delivery of its request that hold the connection's
    /// sync slot.
    lease: SyncLease,
    /// When the run last renewed its hold on the slot.
    slot_renewed: Instant,
    counts: SyncCounts,
    pages: u64,
    bytes: u64,
    stream: Option<String>,
    last_report: Instant,
    /// Why the run cannot promise a complete picture, in the order found.
    gaps: Vec<String>,
}

impl Progress {
    fn status(&self) -> ConnectionStatus {
        ConnectionStatus::Syncing {
            records: self.counts.seen,
            pages: self.pages,
            stream: self.stream.clone(),
        }
    }

    /// The run's record, ended with `result`.
    fn outcome(&self, result: SyncResult) -> SyncOutcome {
        SyncOutcome {
            records: self.counts.seen,
            pages: self.pages,
            added: self.counts.added,
            updated: self.counts.updated,
            deleted: self.counts.deleted,
            result,
        }
    }
}

/// What one run may spend, from the catalog entry's [`SyncLimits`].
#[derive(Debug)]
struct Budget {
    limits: SyncLimits,
    started: Instant,
}

impl Budget {
    /// Which limit `progress` has reached, as the end of a sentence.
    fn exhausted(&self, progress: &Progress) -> Option<String> {
        let limits = &self.limits;
        if progress.pages >= limits.max_pages {
            return Some(format!("{} pages", limits.max_pages));
        }
        if progress.counts.seen >= limits.max_records {
            return Some(format!("{} records", limits.max_records));
        }
        if progress.bytes >= limits.max_bytes {
            return Some(format!("{} MiB", limits.max_bytes / (1024 * 1024)));
        }
        if self.started.elapsed() >= Duration::from_secs(limits.max_seconds) {
            return Some(format!("{} s", limits.max_seconds));
        }
        None
    }
}

/// How a stream's part of a run ended.
#[derive(Debug, PartialEq, Eq)]
enum StreamEnd {
    /// The stream's pass finished.
    Finished,
    /// The run's budget ran out; the pass keeps its position.
    OutOfBudget(String),
}

/// A stream to sync: its name, what the connector says of it, and where
/// its sync stands.
#[derive(Debug)]
struct StreamTarget<'a> {
    name: &'a str,
    spec: StreamSpec,
    state: StreamState,
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
            RefreshError::Failed(error) | RefreshError::NotAsked(error) => Self::Failed(error),
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
        let (tenant, connection) = (&event.tenant, &event.connection);
        let store = &self.deps.store;
        let run = fleet_store::run_id(event.id, ctx.delivery().stream_sequence);
        let lease = SyncLease {
            run,
            attempt: ctx.delivery().attempt,
        };
        let claim = SlotClaim {
            tenant,
            connection,
            run,
            request: event.id,
            attempt: lease.attempt,
            hold: SLOT_HOLD,
            max_per_tenant: self.max_per_tenant,
            trigger: event.data.trigger,
        };
        let claimed = failure::in_store(|| store.claim_sync_run(claim)).await?;
        match claimed.claim {
            Claim::Granted => {}
            Claim::Coalesced(holder) => {
                tracing::info!(
                    holder = %holder.run,
                    running = holder.running,
                    "Another sync of this connection is queued or running; this request joins it."
                );
                return Ok(());
            }
            Claim::Superseded { holder } => {
                return Err(HandlerError::superseded(format!(
                    "delivery {holder} of this sync request runs it; this is delivery {}",
                    lease.attempt
                )));
            }
            Claim::TenantBusy { running } => {
                let wait = tenant_wait(ctx.delivery().attempt);
                let jitter = wait.mul_f64(fastrand::f64() / 2.0);
                return Err(HandlerError::deferred(
                    format!("the tenant runs {running} syncs, its maximum at once"),
                    wait + jitter,
                ));
            }
            // A stray or forged request: no connection to report a status
            // for, so it goes to the dead letters as it is.
            Claim::Missing => {
                self.deps.secrets.forget(tenant, connection);
                return Err(HandlerError::malformed(format!(
                    "tenant {tenant} has no connection {connection}"
                )));
            }
        }
        let result = self
            .run(event, ctx, lease, claimed.streams, claimed.credentials)
            .await;
        match &result {
            // A run that ended freed the slot before its last status.
            Ok(()) => {}
            // Waiting for the provider: the run keeps the slot through the
            // wait, so requests meanwhile join it instead of each starting
            // a run that waits too. Its next message claims it again by the
            // request's id.
            Err(HandlerError::Deferred { retry_after, .. }) => {
                let held = store
                    .renew_sync(tenant, connection, lease, *retry_after + SLOT_HOLD)
                    .await;
                if let Err(e) = held {
                    tracing::warn!(error.message = %e, "Could not keep the connection's sync slot through the wait.");
                }
            }
            // Retried: the redelivery is the same run and claims it again.
            Err(HandlerError::Transient { .. }) if !ctx.delivery().is_last_attempt() => {}
            // A later delivery runs it: the slot and the outcome are its.
            Err(HandlerError::Superseded { .. }) => {}
            // Given up: the slot is free for the next request.
            Err(error) => self.give_up(event, lease, &error.to_string()).await,
        }
        result
    }

    /// Ends the run an unfinished last attempt left; the runtime reports
    /// the `failed` status.
    async fn abandoned(&self, event: &Envelope<SyncRequested>, delivery: Delivery, reason: &str) {
        let lease = SyncLease {
            run: fleet_store::run_id(event.id, delivery.stream_sequence),
            attempt: delivery.attempt,
        };
        self.give_up(event, lease, reason).await;
    }
}

impl Sync {
    /// Ends a run given up with `reason`: its record `failed` (a run that
    /// already ended keeps its outcome and counts; one given up in the
    /// middle records none), its slot freed, the failure in the
    /// connection's health.
    async fn give_up(&self, event: &Envelope<SyncRequested>, lease: SyncLease, reason: &str) {
        let outcome = SyncOutcome {
            records: 0,
            pages: 0,
            added: 0,
            updated: 0,
            deleted: 0,
            result: SyncResult::Failed {
                error: reason.to_owned(),
            },
        };
        let (tenant, connection) = (&event.tenant, &event.connection);
        let finished = self
            .deps
            .store
            .finish_sync_run(tenant, connection, lease.run, &outcome)
            .await;
        if let Err(e) = finished {
            tracing::warn!(error.message = %e, "Could not record the given-up sync run as failed.");
        }
        self.release(event, lease).await;
        self.health
            .failed(&self.deps, who(event), reason, FailureSource::SyncRun)
            .await;
    }

    /// One run of the sync, once it holds the connection's sync slot.
    async fn run(
        &self,
        event: &Envelope<SyncRequested>,
        ctx: &mut Context,
        lease: SyncLease,
        mut states: HashMap<String, StreamState>,
        in_use: CredentialsInUse,
    ) -> Result<(), HandlerError> {
        let run = lease.run;
        let started = Instant::now();
        let (tenant, connection) = (&event.tenant, &event.connection);
        let connector = self.deps.connector(&event.connector)?;
        let _running = Running::new(&event.connector);
        let limits = self
            .deps
            .connectors
            .catalog()
            .get(&event.connector)
            .map(|entry| entry.sync)
            .unwrap_or_default();
        let store = &self.deps.store;
        let mut progress = Progress {
            lease,
            slot_renewed: Instant::now(),
            counts: SyncCounts::default(),
            pages: 0,
            bytes: 0,
            stream: None,
            last_report: Instant::now(),
            gaps: Vec::new(),
        };
        // The credentials and the first progress report do not depend on
        // each other (the claim recorded the run and read the streams).
        let read = credentials::in_use(&self.deps, tenant, connection, Some(in_use));
        let (credentials, _) = tokio::try_join!(read, ctx.status(event, progress.status()))?;
        progress.last_report = Instant::now();
        let credentials = match refresh::fresh(
            &self.deps,
            target_of(event),
            credentials,
            Need::BeforeExpiry,
        )
        .await
        {
            Ok(credentials) => credentials,
            Err(error) => return self.stopped(event, ctx, &progress, error.into()).await,
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
        let budget = Budget {
            limits,
            started: Instant::now(),
        };
        for stream in &streams {
            let state = states.remove(stream).unwrap_or_default();
            // A stream the connector does not list fails in sync_page.
            let spec = connector
                .streams()
                .iter()
                .find(|spec| spec.name == stream)
                .copied()
                .unwrap_or(StreamSpec {
                    name: "",
                    description: "",
                    reconcile: false,
                });
            let target = StreamTarget {
                name: stream,
                spec,
                state,
            };
            let synced = self
                .sync_stream(
                    event,
                    ctx,
                    &*connector,
                    &mut session,
                    target,
                    &budget,
                    &mut progress,
                )
                .await;
            match synced {
                Ok(StreamEnd::Finished) => {}
                Ok(StreamEnd::OutOfBudget(limit)) => {
                    progress.gaps.push(format!(
                        "the sync stopped at its limit of {limit} per run; the next sync \
                         continues where it stopped"
                    ));
                    break;
                }
                Err(stop) => return self.stopped(event, ctx, &progress, stop).await,
            }
        }

        let reason = (!progress.gaps.is_empty()).then(|| progress.gaps.join("; "));
        let outcome = progress.outcome(match &reason {
            None => SyncResult::Succeeded,
            Some(reason) => SyncResult::Partial {
                reason: reason.clone(),
            },
        });
        let Completed {
            records_total: total,
            recovered_from,
        } = failure::in_store(|| {
            store.complete_sync_run(
                tenant,
                connection,
                run,
                &outcome,
                session.credentials.value.expires_at(),
                // Free the slot before saying so: whoever sees the status
                // below may ask for the next sync at once.
                Some(progress.lease),
            )
        })
        .await?;
        if let Some(since) = recovered_from {
            self.health.recovered(who(event), since).await;
        }
        let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        ended(
            event,
            if reason.is_none() {
                "synced"
            } else {
                "partial"
            },
        );
        let status = match reason {
            None => ConnectionStatus::Synced {
                records: total,
                counts: progress.counts,
                duration_ms,
                last_sync_at: Utc::now(),
                run_id: Some(run),
            },
            Some(reason) => ConnectionStatus::Partial {
                records: total,
                counts: progress.counts,
                duration_ms,
                last_sync_at: Utc::now(),
                reason,
                run_id: Some(run),
            },
        };
        ctx.status(event, status).await?;
        Ok(())
    }

    /// Frees the connection's sync slot if `run` holds it.
    ///
    /// When the database cannot be reached, it keeps trying in the
    /// background, with backoff, for as long as the hold would last: a run
    /// that is over must not keep the slot, or the connection's next
    /// requests would join a run that no longer runs, and the tenant would
    /// have one sync fewer, until the hold lapsed. Freeing only ever frees
    /// `run`'s own hold, so a late success cannot free a later run's.
    async fn release(&self, event: &Envelope<SyncRequested>, lease: SyncLease) {
        let store = self.deps.store.clone();
        let (tenant, connection) = (event.tenant.clone(), event.connection.clone());
        let Err(e) = store.release_sync(&tenant, &connection, lease).await else {
            return;
        };
        tracing::warn!(
            error.message = %e,
            "Could not free the connection's sync slot; trying again in the background."
        );
        let retry = async move {
            let started = tokio::time::Instant::now();
            let mut delay = RELEASE_RETRY_FIRST;
            while started.elapsed() < SLOT_HOLD {
                tokio::time::sleep(delay).await;
                match store.release_sync(&tenant, &connection, lease).await {
                    Ok(_) => {
                        tracing::info!("Freed the connection's sync slot.");
                        return;
                    }
                    Err(e) => {
                        tracing::debug!(error.message = %e, "Still cannot free the sync slot.")
                    }
                }
                delay = (delay * 2).min(RELEASE_RETRY_MAX);
            }
            tracing::warn!(
                "Gave up freeing the connection's sync slot; its hold lapses by itself."
            );
        };
        tokio::spawn(tracing::Instrument::in_current_span(retry));
    }
}

impl Sync {
    /// Syncs one stream: resumes its pass in progress, or begins one (full
    /// or incremental), and reads it to its end or to the run's budget.
    #[expect(
        clippy::too_many_arguments,
        reason = "one stream of one run, and where to report"
    )]
    async fn sync_stream(
        &self,
        event: &Envelope<SyncRequested>,
        ctx: &mut Context,
        connector: &dyn Connector,
        session: &mut Session,
        target: StreamTarget<'_>,
        budget: &Budget,
        progress: &mut Progress,
    ) -> Result<StreamEnd, Stop> {
        let (tenant, connection) = (&event.tenant, &event.connection);
        let store = &self.deps.store;
        let StreamTarget {
            name: stream,
            spec,
            state,
        } = target;
        progress.stream = Some(stream.to_owned());
        let (mut pass, mut cursor) = match state.pass {
            Some(resumed) => resumed,
            None => begin_pass(connector, &spec, stream, &state, &budget.limits),
        };
        // After an incremental pass, at most one full pass in the same run.
        let mut reconciled = pass.full;
        loop {
            if let Some(limit) = budget.exhausted(progress) {
                return Ok(StreamEnd::OutOfBudget(limit));
            }
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
                        refresh::fresh(&self.deps, target_of(event), current, Need::Rejected)
                            .await?;
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
            // Renewed before the page, not after: a pass's last page ends the
            // pass, and a takeover between that and a failed renewal would
            // leave the pass's end (its gap, what it swept) unreported.
            if progress.slot_renewed.elapsed() >= SLOT_RENEW_EVERY {
                let held = failure::in_store(|| {
                    store.renew_sync(tenant, connection, progress.lease, SLOT_HOLD)
                })
                .await?;
                if !held {
                    // Another delivery or run holds the slot: it writes
                    // the pages from here on, and its outcome is the run's.
                    return Err(Stop::Failed(HandlerError::superseded(
                        "another sync of this connection took over after this one stalled",
                    )));
                }
                progress.slot_renewed = Instant::now();
            }
            let commit = PageCommit {
                tenant,
                connection,
                stream,
                pass: &pass,
                records: &records,
                cursor: page.next.as_ref(),
                gap: page.gap.as_deref(),
                removed: &page.removed,
                lease: Some(progress.lease),
            };
            // The pass's last page ends the pass in the same transaction.
            let (counts, ended) = failure::in_store(|| async {
                if page.next.is_some() {
                    return store.commit_page(commit).await.map(|counts| (counts, None));
                }
                let (counts, ended) = store.commit_last_page(commit, spec.reconcile).await?;
                Ok((counts, Some(ended)))
            })
            .await?;
            let provider = event.connector.to_string();
            metrics::counter!("fleet_sync_pages_total", "provider" => provider.clone(), "stream" => stream.to_owned())
                .increment(1);
            metrics::counter!("fleet_sync_records_total", "provider" => provider, "stream" => stream.to_owned())
                .increment(records.len() as u64);
            progress.counts.seen += records.len() as u64;
            progress.counts.added += counts.added;
            progress.counts.updated += counts.updated;
            progress.counts.deleted += counts.deleted;
            progress.counts.requests += page.requests;
            progress.pages += 1;
            progress.bytes += page.bytes;
            if progress.last_report.elapsed() >= PROGRESS_EVERY {
                report(event, ctx, progress).await?;
            }
            let Some(ended) = ended else {
                cursor = page.next;
                continue;
            };
            progress.counts.deleted += ended.deleted;
            // A gap any page of the pass reported, in this run or an
            // earlier one that stopped mid-pass.
            if let Some(gap) = ended.gap {
                progress.gaps.push(gap);
                return Ok(StreamEnd::Finished);
            }
            let total = match page.total {
                Some(total) if spec.reconcile && total != ended.live => total,
                // What the provider has and what is stored agree, or there
                // is no total to compare with.
                _ => return Ok(StreamEnd::Finished),
            };
            if reconciled {
                progress.gaps.push(format!(
                    "{} reported {total} {stream} at the end of the sync and {} are stored: it \
                     changed during the sync, and the next sync catches up",
                    self.deps.provider(&event.connector),
                    ended.live
                ));
                return Ok(StreamEnd::Finished);
            }
            // Something was deleted since the last full pass: find it now.
            tracing::info!(
                stream,
                provider_total = total,
                stored = ended.live,
                "Totals differ after an incremental pass; reading the stream whole."
            );
            reconciled = true;
            pass = Pass::begin(true);
            cursor = None;
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
                _ = ticks.tick() => self.report_held(event, ctx, progress).await?,
            }
        };
        result.map_err(Fetch::Provider)
    }

    /// Reports progress while a page is awaited, if the run still holds
    /// the connection's sync slot (renewing it): a run that another
    /// delivery took over must not announce `syncing` after that one's end.
    async fn report_held(
        &self,
        event: &Envelope<SyncRequested>,
        ctx: &mut Context,
        progress: &mut Progress,
    ) -> Result<(), HandlerError> {
        let (store, lease) = (&self.deps.store, progress.lease);
        let held = failure::in_store(|| {
            store.renew_sync(&event.tenant, &event.connection, lease, SLOT_HOLD)
        })
        .await?;
        if !held {
            return Err(HandlerError::superseded(
                "another sync of this connection took over while this one waited for a page",
            ));
        }
        progress.slot_renewed = Instant::now();
        report(event, ctx, progress).await
    }

    /// Ends a run that could not finish: a transient failure leaves the run
    /// open for the redelivery to continue; anything else closes it.
    async fn stopped(
        &self,
        event: &Envelope<SyncRequested>,
        ctx: &mut Context,
        progress: &Progress,
        stop: Stop,
    ) -> Result<(), HandlerError> {
        let run = progress.lease.run;
        let (reason, reauth) = match stop {
            Stop::Failed(HandlerError::Transient {
                reason,
                retry_after: Some(wait),
            }) if wait >= LONG_WAIT => {
                // Say when it comes back, then wait without counting it as
                // a failed attempt; the pass keeps its position.
                let next_at = fleet_events::after(Utc::now(), wait);
                let retrying = ConnectionStatus::Retrying {
                    attempt: ctx.delivery().attempt,
                    next_at,
                    reason: reason.clone(),
                };
                ctx.status(event, retrying).await?;
                return Err(HandlerError::deferred(reason, wait));
            }
            Stop::Failed(
                error @ (HandlerError::Transient { .. }
                | HandlerError::Deferred { .. }
                | HandlerError::Superseded { .. }),
            ) => return Err(error),
            Stop::Failed(
                HandlerError::Permanent { reason } | HandlerError::Malformed { reason },
            ) => (reason, false),
            Stop::Reauth(reason) => (reason, true),
        };
        let outcome = progress.outcome(SyncResult::Failed {
            error: reason.clone(),
        });
        failure::in_store(|| {
            self.deps
                .store
                .finish_sync_run(&event.tenant, &event.connection, run, &outcome)
        })
        .await?;
        if !reauth {
            ended(event, "failed");
            return Err(HandlerError::permanent(reason));
        }
        ended(event, "reauth_required");
        self.release(event, progress.lease).await;
        self.health
            .failed(&self.deps, who(event), &reason, FailureSource::SyncRun)
            .await;
        ctx.status(event, ConnectionStatus::ReauthRequired { reason })
            .await?;
        Ok(())
    }
}

/// Counts a run that ended, by its outcome (`fleet_syncs_total`).
fn ended(event: &Envelope<SyncRequested>, outcome: &'static str) {
    metrics::counter!("fleet_syncs_total", "provider" => event.connector.to_string(), "outcome" => outcome)
        .increment(1);
}

/// A sync running in this process, counted in `fleet_syncs_running` for as
/// long as it lives.
struct Running(metrics::Gauge);

impl Running {
    fn new(connector: &fleet_events::ConnectorId) -> Self {
        let gauge = metrics::gauge!("fleet_syncs_running", "provider" => connector.to_string());
        gauge.increment(1.0);
        Self(gauge)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.decrement(1.0);
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

/// The pass a stream begins with: full when it has never completed one,
/// when its last full pass is older than the reconciliation interval, or
/// when the connector cannot read it incrementally; else incremental from
/// the start of the last complete pass.
fn begin_pass(
    connector: &dyn Connector,
    spec: &StreamSpec,
    stream: &str,
    state: &StreamState,
    limits: &SyncLimits,
) -> (Pass, Option<serde_json::Value>) {
    let reconcile_every =
        TimeDelta::seconds(i64::try_from(limits.reconcile_every_secs).unwrap_or(i64::MAX));
    let due_full = spec.reconcile
        && state
            .last_full_at
            .is_none_or(|at| Utc::now() - at >= reconcile_every);
    let incremental = match state.high_water {
        Some(since) if !due_full => connector.incremental_start(stream, since),
        _ => None,
    };
    match incremental {
        Some(cursor) => (Pass::begin(false), Some(cursor)),
        None => (Pass::begin(true), None),
    }
}

fn who(event: &Envelope<SyncRequested>) -> Who<'_> {
    Who {
        tenant: &event.tenant,
        connection: &event.connection,
        connector: &event.connector,
    }
}

fn target_of(event: &Envelope<SyncRequested>) -> Target<'_> {
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

#[cfg(test)]
mod tests {
    #[test]
    fn a_busy_tenant_s_requests_wait_longer_each_time_up_to_ten_seconds() {
        let waits: Vec<u64> = (1..=7).map(|a| super::tenant_wait(a).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 10, 10, 10]);
    }
}
