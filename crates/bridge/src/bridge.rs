//! The [`Bridge`]: its start-up, its HTTP routes and how a session opens.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_nats::jetstream;
use async_nats::jetstream::context::ConsumerInfoErrorKind;
use axum::Router;
use axum::extract::ws::Utf8Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use fleet_auth::Verifier;
use fleet_bus::STATUS_STREAM;
use fleet_events::{ConnectionId, Step};
use fleet_serve::ops::{self, Metrics, Readiness};
use fleet_store::Store;
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_http::timeout::TimeoutLayer;
use tracing::{info, warn};

use crate::admission::{Admission, Full, Permit};
use crate::connection::Peer;
use crate::hub::{Counters, Hub, Scope, Subscription};
use crate::protocol::{ConnectionSnapshot, Position, ResyncReason, ServerMessage, Snapshot};
use crate::queue::Event;
use crate::reader::{Reader, replay};
use crate::{Config, Error, sse, ws};

/// The status writer's durable consumer, whose ack floor says what Postgres
/// holds.
const STATUS_WRITER: &str = Step::Status.as_str();

/// The WebSocket and SSE server over one reader of the status stream.
///
/// Build it with [`Bridge::build`], then [`run`](Bridge::run) it on a bound
/// listener. Processes share nothing: each reads the stream itself, so one
/// more process behind the load balancer is one more unit of capacity.
#[derive(Debug)]
pub struct Bridge {
    state: State,
    reader: Reader,
    /// Where the health changes are read from, and the health stream's
    /// last sequence when the bridge was built.
    js: jetstream::Context,
    health_start: Option<u64>,
    readiness: Readiness,
    metrics: Option<Metrics>,
}

/// A cheap-to-clone view of a running bridge's counters.
#[derive(Debug, Clone)]
pub struct Handle {
    counters: Arc<Counters>,
}

/// The bridge's counters at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Sessions registered now (WebSocket and SSE).
    pub sessions: usize,
    /// Sessions closed as slow consumers since start.
    pub closed_slow: u64,
}

impl Handle {
    /// The counters now.
    pub fn stats(&self) -> Stats {
        Stats {
            sessions: self.counters.sessions.load(Ordering::Relaxed),
            closed_slow: self.counters.closed_slow.load(Ordering::Relaxed),
        }
    }
}

/// What the routes share: settings, the token verifier, the hub and the
/// stream. Cheap to clone.
#[derive(Debug, Clone)]
pub struct State {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: Config,
    verifier: Verifier,
    hub: Arc<Hub>,
    stream: jetstream::stream::Stream,
    store: Store,
    epoch: String,
    /// Highest ack floor of the status writer seen: every event up to it
    /// is in Postgres.
    applied: AtomicU64,
    /// Cancelled when the bridge stops; sessions close with 4010.
    stop: CancellationToken,
    /// Open sessions by token and by client address.
    admission: Arc<Admission>,
    /// The clock skew tolerated on a token's `exp`: a session ends that
    /// long after it.
    leeway: Duration,
    /// The WebSocket sessions, which outlive their HTTP request.
    sessions: TaskTracker,
}

/// The routes: `GET /ws` (WebSocket) and `GET /events` (SSE), each with
/// [`Config::request_timeout_seconds`] to answer (the stream that follows
/// is not limited).
pub fn app(state: State) -> Router {
    let timeout = TimeoutLayer::with_status_code(
        StatusCode::REQUEST_TIMEOUT,
        state.config().request_timeout(),
    );
    Router::new()
        .route("/ws", get(ws::upgrade))
        .route("/events", get(sse::events))
        .layer(timeout)
        .with_state(state)
}

impl Bridge {
    /// Reads the status stream's epoch and last sequence, and prepares the
    /// reader to start right after it.
    ///
    /// # Errors
    ///
    /// [`Error::Auth`] for an unusable token key or a key set
    /// (`jwks_url`) that cannot be fetched, [`Error::Nats`] when the
    /// stream cannot be read (it is provisioned by `fleet provision` or the
    /// workers, not by the bridge, whose NATS user may not create it).
    pub async fn build(
        config: Config,
        auth: &fleet_auth::Config,
        js: &jetstream::Context,
        store: Store,
    ) -> Result<(Self, Handle), Error> {
        // A name that is not one would be ignored on every request, and
        // every client behind the proxy would share one address's sessions.
        if let Some(name) = &config.client_address_header
            && axum::http::HeaderName::from_bytes(name.as_bytes()).is_err()
        {
            return Err(Error::ClientAddressHeader { name: name.clone() });
        }
        let (verifier, refresher) = Verifier::connect(auth).await?;
        let mut stream = js
            .get_stream(STATUS_STREAM)
            .await
            .map_err(|e| Error::nats("open the stream")(e.into()))?;
        let info = stream
            .info()
            .await
            .map_err(|e| Error::nats("read stream info")(e.into()))?;
        let epoch = info.created.unix_timestamp_nanos().to_string();
        let start = info.state.last_sequence;
        let hub = Arc::new(Hub::new(start, config.queue_size));
        let handle = Handle {
            counters: Arc::clone(&hub.counters),
        };
        let reader = Reader {
            stream: stream.clone(),
            hub: Arc::clone(&hub),
            epoch: epoch.clone(),
            start,
        };
        let admission = Admission::new(
            config.max_sessions_per_token,
            config.max_sessions_per_address,
        );
        let inner = Inner {
            admission: Arc::new(admission),
            leeway: Duration::from_secs(auth.leeway_seconds),
            config,
            verifier,
            hub,
            stream,
            store,
            epoch,
            applied: AtomicU64::new(0),
            stop: CancellationToken::new(),
            sessions: TaskTracker::new(),
        };
        // Keeps a key set (`jwks_url`) current until the bridge stops; for a
        // static key it returns at once.
        tokio::spawn(refresher.run(inner.stop.clone()));
        let state = State {
            inner: Arc::new(inner),
        };
        let bridge = Self {
            state,
            reader,
            js: js.clone(),
            health_start: crate::health::position(js).await,
            readiness: Readiness::new(),
            metrics: None,
        };
        Ok((bridge, handle))
    }

    /// Serves `GET /healthz`, `GET /readyz` (with `readiness`'s probes) and,
    /// with `metrics`, `GET /metrics` beside the feed
    /// ([`fleet_serve::ops`]). Without it, `/readyz` checks nothing.
    #[must_use]
    pub fn with_ops(mut self, readiness: Readiness, metrics: Option<Metrics>) -> Self {
        self.readiness = readiness;
        self.metrics = metrics;
        self
    }

    /// The state [`app`] serves.
    pub fn state(&self) -> State {
        self.state.clone()
    }

    /// Serves `listener` and reads the stream until `shutdown`, then closes
    /// every session with 4010 and returns once they are gone.
    ///
    /// # Errors
    ///
    /// [`Error::Nats`] when the reader stops (sessions are closed first).
    /// Accept errors (such as too many open files) are retried after a
    /// pause, as `axum::serve` does.
    pub async fn run(
        self,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> Result<(), Error> {
        let state = self.state;
        let stop = state.inner.stop.clone();
        let sessions = state.inner.sessions.clone();
        info!(epoch = %state.inner.epoch, position = self.reader.start, "Bridge reading the status stream.");
        tokio::spawn(crate::health::follow(
            self.js,
            Arc::clone(&state.inner.hub),
            self.health_start,
            stop.clone(),
        ));
        let read = async {
            let result = tokio::select! {
                biased;
                () = shutdown.cancelled() => Ok(()),
                result = Box::pin(self.reader.run()) => result,
            };
            stop.cancel();
            result
        };
        let config = state.config();
        if config.idle_timeout() <= config.ping_interval().max(config.request_timeout()) {
            warn!(
                idle_timeout_seconds = config.idle_timeout_seconds,
                "The idle timeout is not above the ping interval and the request timeout: quiet SSE streams and slow openings lose their connection."
            );
        }
        let timeouts = fleet_serve::Timeouts {
            header_read: config.header_read_timeout(),
            idle: config.idle_timeout(),
        };
        let routes = app(state.clone()).merge(ops::router(self.readiness, self.metrics));
        // Boxed, which keeps the bridge's own future small. Upgraded
        // WebSockets are not waited for: the bridge tracks their sessions.
        let serve = Box::pin(fleet_serve::run::<crate::connection::Guarded>(
            "bridge",
            listener,
            routes,
            timeouts,
            stop.clone(),
        ));
        let (read, ()) = tokio::join!(read, serve);
        sessions.close();
        sessions.wait().await;
        info!("Bridge stopped.");
        read
    }
}

/// How a session starts: what to send first, its registration, and the
/// last sequence those messages cover (queued events up to it are skipped).
#[derive(Debug)]
pub(crate) struct Opening {
    pub(crate) items: Vec<Item>,
    pub(crate) subscription: Subscription,
    pub(crate) last: u64,
}

/// One message of a session, before its transport sends it.
#[derive(Debug)]
pub(crate) enum Item {
    Resync(ResyncReason),
    Snapshot(Snapshot),
    Event(Arc<Event>),
}

impl Item {
    /// The message as JSON: a WebSocket text frame, or SSE data.
    pub(crate) fn frame(&self) -> Utf8Bytes {
        match self {
            Self::Resync(reason) => ServerMessage::Resync { reason: *reason }.to_json().into(),
            Self::Snapshot(snapshot) => ServerMessage::Snapshot(snapshot.clone()).to_json().into(),
            Self::Event(event) => event.frame.clone(),
        }
    }

    /// Its position, if it has one: the SSE event id.
    pub(crate) fn position(&self) -> Option<&Position> {
        match self {
            Self::Resync(_) => None,
            Self::Snapshot(snapshot) => Some(&snapshot.position),
            Self::Event(event) if event.live => None,
            Self::Event(event) => Some(&event.position),
        }
    }

    /// The SSE event type.
    pub(crate) fn sse_type(&self) -> &'static str {
        match self {
            Self::Resync(_) => "resync",
            Self::Snapshot(_) => "snapshot",
            Self::Event(event) if event.live => "health",
            Self::Event(_) => "status",
        }
    }
}

impl State {
    pub(crate) fn config(&self) -> &Config {
        &self.inner.config
    }

    pub(crate) fn stop(&self) -> &CancellationToken {
        &self.inner.stop
    }

    pub(crate) fn sessions(&self) -> &TaskTracker {
        &self.inner.sessions
    }

    /// The scope `token` grants, narrowed to `requested`, when the session
    /// must end, and its place among the token's sessions.
    ///
    /// # Errors
    ///
    /// [`Refusal::Token`] with a reason to show the client: the token is
    /// refused, or a requested connection is outside the token's;
    /// [`Refusal::Full`] when the token holds its most sessions already.
    pub(crate) fn authorize(
        &self,
        token: &str,
        requested: Option<Vec<ConnectionId>>,
    ) -> Result<Grant, Refusal> {
        let claims = self
            .inner
            .verifier
            .verify(token)
            .map_err(|e| Refusal::Token(e.to_string()))?;
        if let Some(outside) = requested
            .iter()
            .flatten()
            .find(|connection| !claims.allows(connection))
        {
            let reason = format!("the token does not cover connection {outside}");
            return Err(Refusal::Token(reason));
        }
        let permit = self.inner.admission.token(token).map_err(Refusal::Full)?;
        let connections: Option<HashSet<ConnectionId>> = match (requested, claims.connections) {
            (Some(requested), _) => Some(requested.into_iter().collect()),
            (None, allowed) => allowed.map(|allowed| allowed.into_iter().collect()),
        };
        Ok(Grant {
            scope: Scope {
                tenant: claims.tenant,
                connections,
            },
            expires: expiry(claims.exp, self.inner.leeway),
            permit,
        })
    }

    /// A place for one more session from the client of `peer` and
    /// `headers` (see [`Config::client_address_header`]).
    ///
    /// # Errors
    ///
    /// [`Full::Address`] when its address holds its most sessions already.
    pub(crate) fn admit_address(
        &self,
        peer: Option<&Peer>,
        headers: &HeaderMap,
    ) -> Result<Permit, Full> {
        let config = &self.inner.config;
        // Only a trusted proxy says where a request comes from.
        let proxied = peer.is_some_and(|peer| {
            let ip = peer.addr().ip().to_canonical();
            config.trusted_proxies.iter().any(|net| net.contains(&ip))
        });
        let forwarded = config
            .client_address_header
            .as_deref()
            .filter(|_| proxied)
            .and_then(|name| headers.get_all(name).iter().next_back())
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.rsplit(',').next())
            .and_then(|last| last.trim().parse::<IpAddr>().ok());
        let address = forwarded.or_else(|| peer.map(|peer| peer.addr().ip()));
        self.inner.admission.address(address)
    }

    /// Registers a session and decides what it gets first: a snapshot, or
    /// what it missed since `since`, or a resync and a snapshot.
    ///
    /// The registration comes first, then the snapshot is read as of the
    /// registration's position, so every event after that position reaches
    /// the session's queue and none falls between. Events up to that
    /// position which the status writer has not stored yet follow the
    /// snapshot (see [`State::snapshot`]).
    ///
    /// # Errors
    ///
    /// [`Error::Snapshot`], or the [`Error::Nats`] and
    /// [`Error::ReplayTimeout`] of a replay.
    pub(crate) async fn open(
        &self,
        scope: Scope,
        since: Option<Position>,
    ) -> Result<Opening, Error> {
        let subscription = self.inner.hub.subscribe(scope);
        let start = subscription.start;
        let mut resync = None;
        if let Some(since) = since {
            match self.recover(&subscription.scope, &since, start).await? {
                Ok(events) => {
                    return Ok(Opening {
                        items: events.into_iter().map(Item::Event).collect(),
                        subscription,
                        last: since.seq.max(start),
                    });
                }
                Err(reason) => resync = Some(Item::Resync(reason)),
            }
        }
        let (snapshot, unapplied) = self.snapshot(&subscription.scope, start).await?;
        Ok(Opening {
            items: resync
                .into_iter()
                .chain([Item::Snapshot(snapshot)])
                .chain(unapplied.into_iter().map(Item::Event))
                .collect(),
            subscription,
            last: start,
        })
    }

    /// The events after `since` up to `until`, or why they cannot be
    /// replayed whole.
    async fn recover(
        &self,
        scope: &Scope,
        since: &Position,
        until: u64,
    ) -> Result<Result<Vec<Arc<Event>>, ResyncReason>, Error> {
        if since.epoch != self.inner.epoch {
            return Ok(Err(ResyncReason::EpochChanged));
        }
        if since.seq >= until {
            return Ok(Ok(Vec::new()));
        }
        let info = self
            .inner
            .stream
            .get_info()
            .await
            .map_err(|e| Error::nats("read stream info")(e.into()))?;
        if since.seq + 1 < info.state.first_sequence {
            return Ok(Err(ResyncReason::TooOld));
        }
        let max = self.inner.config.max_replay;
        let epoch = &self.inner.epoch;
        let events = replay(&self.inner.stream, scope, epoch, since.seq, until, max).await?;
        Ok(events.ok_or(ResyncReason::TooOld))
    }

    /// The connections of `scope` as of stream position `start`, and the
    /// events up to `start` that Postgres does not reflect yet, in stream
    /// order.
    ///
    /// Postgres lags the stream: the status writer applies an event a little
    /// after the reader has fanned it out. So the rows alone are not the
    /// state as of `start`. Every event up to the writer's ack floor is
    /// applied (it acks after the write), so the events after the floor are
    /// read back from the stream (at most `max_replay` sequences) and those
    /// newer than their row's last status, in the writer's own order, are
    /// sent after the snapshot. The snapshot's position is then the one
    /// just before the first of them, so positions keep increasing.
    async fn snapshot(
        &self,
        scope: &Scope,
        start: u64,
    ) -> Result<(Snapshot, Vec<Arc<Event>>), Error> {
        let applied = self.applied_through(start).await?;
        let rows = self
            .inner
            .store
            .list_connections(&scope.tenant)
            .await
            .map_err(Error::Snapshot)?;
        let after = applied.max(start.saturating_sub(self.inner.config.max_replay));
        let mut unapplied = Vec::new();
        if after < start {
            let epoch = &self.inner.epoch;
            let events = replay(&self.inner.stream, scope, epoch, after, start, u64::MAX).await?;
            unapplied = events.unwrap_or_default();
            unapplied.retain(|event| !stored(&rows, event));
        }
        let seq = unapplied.first().map_or(start, |event| event.seq - 1);
        let connections = rows
            .into_iter()
            .filter(|row| scope.allows(&row.id))
            .map(ConnectionSnapshot::from)
            .collect();
        let position = Position {
            epoch: self.inner.epoch.clone(),
            seq,
        };
        Ok((
            Snapshot {
                position,
                connections,
            },
            unapplied,
        ))
    }

    /// A sequence up to which the status writer has applied every event,
    /// at most `start`: its durable consumer's ack floor, or 0 when it has
    /// none.
    async fn applied_through(&self, start: u64) -> Result<u64, Error> {
        if start == 0 || self.inner.applied.load(Ordering::Relaxed) >= start {
            return Ok(start);
        }
        let floor = match self.inner.stream.consumer_info(STATUS_WRITER).await {
            Ok(info) => info.ack_floor.stream_sequence,
            Err(e) if e.kind() == ConsumerInfoErrorKind::NotFound => 0,
            Err(e) => return Err(Error::nats("read the status writer's progress")(e.into())),
        };
        self.inner.applied.fetch_max(floor, Ordering::Relaxed);
        Ok(floor.min(start))
    }
}

/// What a checked token grants a session.
#[derive(Debug)]
pub(crate) struct Grant {
    /// What the session sees.
    pub(crate) scope: Scope,
    /// When the token stops being valid: its `exp` plus the leeway, the
    /// moment the bridge would refuse it. The session ends then.
    pub(crate) expires: Instant,
    /// The session's place among the token's sessions.
    pub(crate) permit: Permit,
}

/// Why [`State::authorize`] refused a session.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// The token is not valid, or does not cover what was asked; the
    /// reason says which.
    Token(String),
    /// The token holds its most sessions already.
    Full(Full),
}

/// The moment a token expiring at `exp` (seconds since the Unix epoch)
/// stops being accepted, `leeway` later. At most a year away: the timer's
/// range, longer than any session lives.
fn expiry(exp: u64, leeway: Duration) -> Instant {
    const MAX: Duration = Duration::from_secs(365 * 24 * 3600);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let left = Duration::from_secs(exp)
        .saturating_add(leeway)
        .saturating_sub(now);
    Instant::now() + left.min(MAX)
}

/// Whether the status writer has stored `event`, or a newer event of its
/// connection: the row's last status is at least as new in the writer's
/// `(occurred_at, id)` order. A connection without a row has stored nothing.
fn stored(rows: &[fleet_store::Connection], event: &Event) -> bool {
    rows.iter()
        .find(|row| row.id == event.connection)
        .and_then(|row| row.last_status_at.zip(row.last_status_event))
        .is_some_and(|last| last >= event.order)
}
