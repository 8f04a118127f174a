//! The dashboards: WebSocket clients of the bridge, each checking that it
//! gets every event of its tenant once and in order, and timing them.

use std::net::SocketAddr;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use fleet_auth::{Claims, Verifier};
use futures::{SinkExt as _, StreamExt as _};
use serde::Deserialize;
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::feed::{Feed, Sent};
use super::{Shape, Window};
use crate::Error;

/// Sessions being opened at once: the bridge's accept backlog and snapshot
/// queries bound how fast they open anyway.
const OPENING_AT_ONCE: usize = 256;

/// How long one session may take to open, snapshot included.
const OPEN_TIMEOUT: Duration = Duration::from_secs(60);

/// How long every session together may take to open.
const ALL_OPEN_TIMEOUT: Duration = Duration::from_secs(300);

/// How long a token lives: longer than any run.
const TOKEN_TTL: Duration = Duration::from_secs(3600);

/// A client reads only small frames; a small buffer keeps 10,000 of them
/// light.
const READ_BUFFER: usize = 8 * 1024;

/// The running clients.
#[derive(Debug)]
pub(crate) struct Clients {
    tasks: Vec<JoinHandle<Tally>>,
    /// For each client, the number of the next event it expects.
    next: Arc<Vec<AtomicU64>>,
    tenant_of: Vec<usize>,
    window: Arc<OnceLock<Range<DateTime<Utc>>>>,
    stop: CancellationToken,
}

/// What one client saw.
#[derive(Debug)]
pub(crate) struct Tally {
    /// Index of its tenant.
    pub(crate) tenant: usize,
    /// Number of the next event it expects.
    next: u64,
    /// Numbers skipped: events it never got.
    gaps: u64,
    /// Events it got a second time, or after a later one.
    pub(crate) duplicates: u64,
    /// Latency of each event published inside the window, in microseconds.
    pub(crate) latencies_us: Vec<u64>,
    /// The close code, when the bridge closed the session.
    pub(crate) closed: Option<u16>,
    /// Why the session failed, if it did.
    pub(crate) error: Option<String>,
}

impl Tally {
    fn new(tenant: usize) -> Self {
        Self {
            tenant,
            next: 1,
            gaps: 0,
            duplicates: 0,
            latencies_us: Vec::new(),
            closed: None,
            error: None,
        }
    }

    /// Events it missed, of the `published` ones of its tenant.
    pub(crate) fn missed(&self, published: u64) -> u64 {
        self.gaps + (published + 1).saturating_sub(self.next)
    }

    /// Checks event number `n` in, and times it if it was published inside
    /// `window`.
    fn record(
        &mut self,
        n: u64,
        occurred_at: DateTime<Utc>,
        window: Option<&Range<DateTime<Utc>>>,
    ) {
        let now = Utc::now();
        match n.cmp(&self.next) {
            std::cmp::Ordering::Less => self.duplicates += 1,
            std::cmp::Ordering::Equal => self.next += 1,
            std::cmp::Ordering::Greater => {
                self.gaps += n - self.next;
                self.next = n + 1;
            }
        }
        if window.is_some_and(|window| window.contains(&occurred_at)) {
            let micros = (now - occurred_at).num_microseconds().unwrap_or(0);
            self.latencies_us.push(u64::try_from(micros).unwrap_or(0));
        }
    }
}

/// The parts of a server message a client reads.
#[derive(Debug, Deserialize)]
struct Frame<'a> {
    #[serde(rename = "type", borrow)]
    kind: &'a str,
    #[serde(default)]
    event: Option<EventFrame>,
}

#[derive(Debug, Deserialize)]
struct EventFrame {
    occurred_at: DateTime<Utc>,
    data: Data,
}

#[derive(Debug, Deserialize)]
struct Data {
    status: Status,
}

#[derive(Debug, Deserialize)]
struct Status {
    #[serde(default)]
    records: u64,
}

/// What every client shares.
#[derive(Debug, Clone)]
struct Setup {
    addr: SocketAddr,
    /// The measurement window, once it is set.
    window: Arc<OnceLock<Range<DateTime<Utc>>>>,
    next: Arc<Vec<AtomicU64>>,
    opening: Arc<Semaphore>,
    stop: CancellationToken,
}

impl Clients {
    /// Opens `shape.clients` sessions, the tenants of `feed` in turn, each
    /// with a token of its own, and returns once every one has its
    /// snapshot.
    ///
    /// # Errors
    ///
    /// [`Error::Clients`] when a session cannot be opened.
    pub(crate) async fn connect(
        addr: SocketAddr,
        feed: &Feed,
        key: &str,
        shape: Shape,
        stop: &CancellationToken,
    ) -> Result<Self, Error> {
        let verifier = Verifier::new(&fleet_auth::Config::new(key.to_owned().into()))
            .expect("the bench's key is long enough");
        let setup = Setup {
            addr,
            window: Arc::default(),
            next: Arc::new((0..shape.clients).map(|_| AtomicU64::new(1)).collect()),
            opening: Arc::new(Semaphore::new(OPENING_AT_ONCE)),
            stop: stop.child_token(),
        };
        let (opened, mut reports) = mpsc::channel(shape.clients.max(1));
        let mut tasks = Vec::with_capacity(shape.clients);
        let mut tenant_of = Vec::with_capacity(shape.clients);
        for index in 0..shape.clients {
            let tenant = index % feed.tenants.len();
            let claims = Claims::for_tenant(feed.tenants[tenant].clone(), TOKEN_TTL);
            let token = verifier.issue(&claims);
            let task = client(index, tenant, token, setup.clone(), opened.clone());
            tasks.push(tokio::spawn(task));
            tenant_of.push(tenant);
        }
        let clients = Self {
            tasks,
            next: setup.next,
            tenant_of,
            window: setup.window,
            stop: setup.stop,
        };
        let deadline = Instant::now() + ALL_OPEN_TIMEOUT;
        let (mut open, mut failed, mut first) = (0, 0, None);
        while open + failed < shape.clients {
            let report = tokio::time::timeout_at(deadline, reports.recv()).await;
            match report {
                Ok(Some(Ok(()))) => open += 1,
                Ok(Some(Err(reason))) => {
                    failed += 1;
                    first.get_or_insert(reason);
                }
                Ok(None) | Err(_) => break,
            }
        }
        if open < shape.clients {
            clients.stop.cancel();
            return Err(Error::Clients {
                failed: shape.clients - open,
                first: first.unwrap_or_else(|| "timed out".to_owned()),
            });
        }
        Ok(clients)
    }

    /// Times the events published inside `window` from now on.
    pub(crate) fn measure(&self, window: &Window) {
        let _ = self.window.set(window.wall.clone());
    }

    /// Waits until every client has every event of its tenant in `sent`,
    /// or `timeout`; returns whether they all have.
    pub(crate) async fn drain(&self, sent: &Sent, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let behind = self
                .tenant_of
                .iter()
                .zip(self.next.iter())
                .filter(|(tenant, next)| next.load(Ordering::Relaxed) <= sent.count(**tenant))
                .count();
            if behind == 0 {
                return true;
            }
            if Instant::now() >= deadline {
                warn!(behind, "Clients still behind at the end of the drain.");
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops every client and returns what each saw.
    pub(crate) async fn stop(self) -> Vec<Tally> {
        self.stop.cancel();
        let mut tallies = Vec::with_capacity(self.tasks.len());
        for task in self.tasks {
            match task.await {
                Ok(tally) => tallies.push(tally),
                Err(e) => warn!(error.message = %e, "A bench client panicked."),
            }
        }
        tallies
    }
}

/// One dashboard: opens its session, reports it, then reads until stopped.
async fn client(
    index: usize,
    tenant: usize,
    token: String,
    setup: Setup,
    opened: mpsc::Sender<Result<(), String>>,
) -> Tally {
    let mut tally = Tally::new(tenant);
    let opening = tokio::select! {
        () = setup.stop.cancelled() => Err("the bench stopped".to_owned()),
        opening = tokio::time::timeout(OPEN_TIMEOUT, open(&setup, &token)) => {
            opening.unwrap_or_else(|_| Err(format!("no snapshot within {} s", OPEN_TIMEOUT.as_secs())))
        }
    };
    let mut ws = match opening {
        Ok(ws) => {
            let _ = opened.send(Ok(())).await;
            ws
        }
        Err(reason) => {
            let _ = opened.send(Err(reason.clone())).await;
            tally.error = Some(reason);
            return tally;
        }
    };
    drop(opened);
    loop {
        let frame = tokio::select! {
            biased;
            () = setup.stop.cancelled() => break,
            frame = ws.next() => frame,
        };
        match frame {
            Some(Ok(Message::Text(text))) => {
                if let Err(reason) = read(&text, &mut tally, setup.window.get()) {
                    tally.error = Some(reason);
                    break;
                }
                setup.next[index].store(tally.next, Ordering::Relaxed);
            }
            Some(Ok(Message::Close(frame))) => {
                tally.closed = Some(frame.map_or(1005, |frame| frame.code.into()));
                break;
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                tally.error = Some(e.to_string());
                break;
            }
            None => {
                tally.error = Some("the bridge closed the socket".to_owned());
                break;
            }
        }
    }
    tally
}

/// Connects, authenticates and waits for the snapshot.
async fn open(setup: &Setup, token: &str) -> Result<WebSocketStream<TcpStream>, String> {
    let _permit = setup
        .opening
        .acquire()
        .await
        .map_err(|_| "the bench stopped".to_owned())?;
    let stream = TcpStream::connect(setup.addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER);
    let url = format!("ws://{}/ws", setup.addr);
    let (mut ws, _) = tokio_tungstenite::client_async_with_config(url, stream, Some(config))
        .await
        .map_err(|e| format!("upgrade: {e}"))?;
    let auth = serde_json::json!({"type": "auth", "token": token}).to_string();
    ws.send(Message::Text(auth.into()))
        .await
        .map_err(|e| format!("auth: {e}"))?;
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => {
                let frame: Frame<'_> = serde_json::from_str(&text).map_err(|e| e.to_string())?;
                if frame.kind == "snapshot" {
                    return Ok(ws);
                }
                return Err(format!("expected a snapshot first, got {}", frame.kind));
            }
            Some(Ok(Message::Close(frame))) => {
                return Err(format!("closed before the snapshot: {frame:?}"));
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.to_string()),
            None => return Err("closed before the snapshot".to_owned()),
        }
    }
}

/// Checks one message in.
fn read(
    text: &str,
    tally: &mut Tally,
    window: Option<&Range<DateTime<Utc>>>,
) -> Result<(), String> {
    let frame: Frame<'_> = serde_json::from_str(text).map_err(|e| e.to_string())?;
    match (frame.kind, frame.event) {
        ("event", Some(event)) => {
            tally.record(event.data.status.records, event.occurred_at, window);
            Ok(())
        }
        (kind, _) => Err(format!("unexpected {kind} message")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(seconds, 0).unwrap()
    }

    #[test]
    fn gaps_and_a_missing_tail_count_as_missed_and_late_repeats_as_duplicates() {
        let mut tally = Tally::new(0);
        for n in [1, 2, 4, 4, 5, 3] {
            tally.record(n, at(0), None);
        }

        assert_eq!(tally.duplicates, 2);
        assert_eq!(tally.missed(5), 1, "number 3 came after 5");
        assert_eq!(tally.missed(7), 3, "and 6 and 7 never came");
    }

    #[test]
    fn only_events_published_inside_the_window_are_timed() {
        let mut tally = Tally::new(0);
        let window = at(10)..at(20);

        tally.record(1, at(5), Some(&window));
        tally.record(2, at(15), Some(&window));
        tally.record(3, at(25), None);

        assert_eq!(tally.latencies_us.len(), 1);
        assert_eq!(tally.missed(3), 0);
    }
}
