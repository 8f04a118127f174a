//! The WebSocket session: authenticate, open, then deliver until closed.

use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::extract::State as Shared;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::Response;
use futures::{Sink, SinkExt as _, Stream, StreamExt as _};
use secrecy::ExposeSecret as _;
use tokio::time::{Instant, sleep_until, timeout};
use tracing::{debug, error};

use crate::State;
use crate::admission::{Full, Permit};
use crate::bridge::{Item, Opening, Refusal};
use crate::connection::{Peer, ReadBudgetExceeded};
use crate::protocol::{ClientMessage, close_code};
use crate::queue::Event;

/// Longest a close frame may take to go out.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// Longest close reason a frame carries, in bytes.
const MAX_REASON_LEN: usize = 123;

/// Most queued events written with one flush: a session that fell behind
/// catches up in few writes.
const MAX_BATCH: usize = 64;

/// Read buffer of a session's socket. A client sends only its `auth`
/// message and control frames (a larger frame grows the buffer as it
/// needs), and the buffer is allocated and zeroed up front: tungstenite's
/// default of 128 KiB would make it most of a session's memory.
const READ_BUFFER: usize = 1024;

/// `GET /ws`: takes the client address's place, upgrades, and runs the
/// session as a tracked task so that the bridge waits for it on shutdown.
///
/// Frames and messages are limited to [`Config::max_message_bytes`]
/// (tungstenite refuses a larger frame from its header, before reading
/// it); before `auth`, the socket's reads are budgeted to
/// [`Config::max_auth_message_bytes`].
///
/// [`Config::max_message_bytes`]: crate::Config::max_message_bytes
/// [`Config::max_auth_message_bytes`]: crate::Config::max_auth_message_bytes
pub(crate) async fn upgrade(
    Shared(state): Shared<State>,
    peer: Option<Extension<Peer>>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let peer = peer.map(|Extension(peer)| peer);
    let address = state.admit_address(peer.as_ref(), &headers);
    let sessions = state.sessions().clone();
    let max = state.config().max_message_bytes;
    upgrade
        .read_buffer_size(READ_BUFFER)
        .max_frame_size(max)
        .max_message_size(max)
        .on_upgrade(move |socket: WebSocket| {
            if let Some(peer) = &peer {
                peer.limit_reads(state.config().max_auth_message_bytes);
            }
            let client = Client { peer, address };
            sessions.track_future(serve(socket, state, client))
        })
}

/// Who is at the other end of a session's socket.
#[derive(Debug)]
pub(crate) struct Client {
    /// Its connection, when served by the bridge's server.
    peer: Option<Peer>,
    /// Its place among its address's sessions, or the limit it exceeds.
    address: Result<Permit, Full>,
}

/// Runs one session over any message sink and stream (an axum WebSocket in
/// production).
pub(crate) async fn serve<S, E>(socket: S, state: State, client: Client)
where
    S: Sink<Message, Error = E> + Stream<Item = Result<Message, E>> + Send,
    E: std::error::Error + 'static,
{
    let (mut tx, mut rx) = socket.split();
    // Opening awaits NATS and Postgres through deep futures; boxed, their
    // state is freed once the session is open instead of staying in every
    // session's task for its whole life.
    match Box::pin(open(&mut rx, &state, client)).await {
        Ok(Opened {
            opening,
            expires,
            permits,
        }) => {
            let session = Session {
                tx,
                rx,
                dead_after: state.config().dead_after(),
                max_message_bytes: state.config().max_message_bytes,
                last: opening.last,
                last_heard: Instant::now(),
                expires,
                _permits: permits,
            };
            session.run(opening, &state).await;
        }
        Err(Refused { code, reason }) => close(&mut tx, code, &reason).await,
    }
}

/// Why a session did not open, as its close frame.
struct Refused {
    code: u16,
    reason: String,
}

impl Refused {
    fn new(code: u16, reason: impl Into<String>) -> Self {
        Self {
            code,
            reason: reason.into(),
        }
    }

    fn full(full: Full) -> Self {
        Self::new(close_code::TOO_MANY_SESSIONS, full.reason())
    }
}

/// An authenticated session, ready to run.
struct Opened {
    opening: Opening,
    /// When its token expires.
    expires: Instant,
    /// Its places under its address's and its token's limits.
    permits: [Permit; 2],
}

/// Reads the `auth` message within the auth timeout, checks its token and
/// opens the session.
async fn open<R, E>(rx: &mut R, state: &State, client: Client) -> Result<Opened, Refused>
where
    R: Stream<Item = Result<Message, E>> + Unpin,
    E: std::error::Error + 'static,
{
    let address = client.address.map_err(Refused::full)?;
    let seconds = state.config().auth_timeout_seconds;
    let first = timeout(state.config().auth_timeout(), first_text(rx, state))
        .await
        .map_err(|_| {
            let reason = format!("no auth message within {seconds} s");
            Refused::new(close_code::AUTH_TIMEOUT, reason)
        })??;
    let ClientMessage::Auth {
        token,
        connections,
        since,
    } = serde_json::from_str(&first).map_err(|_| {
        let reason = r#"the first message must be {"type":"auth","token":"…"}"#;
        Refused::new(close_code::AUTH_FAILED, reason)
    })?;
    let grant = state
        .authorize(token.expose_secret(), connections)
        .map_err(|refusal| match refusal {
            Refusal::Token(reason) => Refused::new(close_code::AUTH_FAILED, reason),
            Refusal::Full(full) => Refused::full(full),
        })?;
    if let Some(peer) = &client.peer {
        peer.unlimit_reads();
    }
    let opening = state.open(grant.scope, since).await.map_err(|e| {
        error!(error.message = %e, error.cause_chain = ?e, "Could not open a bridge session.");
        Refused::new(
            close_code::INTERNAL_ERROR,
            "the bridge could not start the session; reconnect",
        )
    })?;
    Ok(Opened {
        opening,
        expires: grant.expires,
        permits: [address, grant.permit],
    })
}

/// The first text message.
///
/// # Errors
///
/// 1009 when the client sends more than it may before authenticating, 4001
/// when it leaves first.
async fn first_text<R, E>(rx: &mut R, state: &State) -> Result<String, Refused>
where
    R: Stream<Item = Result<Message, E>> + Unpin,
    E: std::error::Error + 'static,
{
    let gone = || Refused::new(close_code::AUTH_FAILED, "closed before authenticating");
    loop {
        match rx.next().await.ok_or_else(gone)? {
            Ok(Message::Text(text)) => return Ok(text.to_string()),
            Ok(Message::Binary(_)) => return Ok(String::new()),
            Ok(Message::Ping(_) | Message::Pong(_)) => {}
            Ok(Message::Close(_)) => return Err(gone()),
            Err(e) if too_big(&e) => {
                let max = state.config().max_auth_message_bytes;
                let reason = format!("send at most {max} bytes before authenticating");
                return Err(Refused::new(close_code::MESSAGE_TOO_BIG, reason));
            }
            Err(_) => return Err(gone()),
        }
    }
}

/// Whether `error` says the client sent more than it may: a frame or
/// message over tungstenite's limits, or reads past the budget before
/// `auth`.
fn too_big(error: &(dyn std::error::Error + 'static)) -> bool {
    let over_budget = |io: &std::io::Error| {
        io.get_ref()
            .is_some_and(|inner| inner.is::<ReadBudgetExceeded>())
    };
    let mut cause = Some(error);
    while let Some(error) = cause {
        if let Some(error) = error.downcast_ref::<tungstenite::Error>() {
            return match error {
                tungstenite::Error::Capacity(_) => true,
                tungstenite::Error::Io(io) => over_budget(io),
                _ => false,
            };
        }
        if let Some(io) = error.downcast_ref::<std::io::Error>() {
            return over_budget(io);
        }
        cause = error.source();
    }
    false
}

/// What one turn of the session loop does next.
enum Step {
    Send(Vec<Message>),
    Continue,
    Close(u16, String),
    End,
}

struct Session<T, R> {
    tx: T,
    rx: R,
    dead_after: Duration,
    /// Most bytes of one client message, for the reason of a 1009.
    max_message_bytes: usize,
    /// The sequence of the last event sent; queued events up to it are skipped.
    last: u64,
    last_heard: Instant,
    /// When the token expires and the session closes with 4003.
    expires: Instant,
    /// Held for the session's life.
    _permits: [Permit; 2],
}

impl<T, R, E> Session<T, R>
where
    T: Sink<Message> + Unpin,
    R: Stream<Item = Result<Message, E>> + Unpin,
    E: std::error::Error + 'static,
{
    async fn run(mut self, opening: Opening, state: &State) {
        let Opening {
            items,
            subscription,
            ..
        } = opening;
        let opening: Vec<Message> = items
            .iter()
            .map(|item| Message::Text(item.frame()))
            .collect();
        if !self.send_all(opening).await {
            return;
        }
        let interval = state.config().ping_interval();
        let mut ping = tokio::time::interval_at(Instant::now() + interval, interval);
        let expiry = sleep_until(self.expires);
        let mut expiry = pin!(expiry);
        loop {
            let step = tokio::select! {
                biased;
                () = state.stop().cancelled() => {
                    Step::Close(close_code::GOING_AWAY, "the bridge is restarting; reconnect".into())
                }
                () = &mut expiry => Step::Close(close_code::TOKEN_EXPIRED, TOKEN_EXPIRED_REASON.into()),
                frame = self.rx.next() => self.heard(frame.as_ref()),
                _ = ping.tick() => self.ping(),
                batch = subscription.queue.next_batch(MAX_BATCH) => self.deliver(batch),
            };
            match step {
                Step::Send(messages) => {
                    if !self.send_all(messages).await {
                        return;
                    }
                }
                Step::Continue => {}
                Step::Close(code, reason) => return close(&mut self.tx, code, &reason).await,
                Step::End => return,
            }
        }
    }

    fn heard(&mut self, frame: Option<&Result<Message, E>>) -> Step {
        match frame {
            Some(Err(e)) if too_big(e) => {
                let max = self.max_message_bytes;
                let reason = format!("a client message may hold at most {max} bytes");
                Step::Close(close_code::MESSAGE_TOO_BIG, reason)
            }
            Some(Ok(Message::Close(_)) | Err(_)) | None => Step::End,
            Some(Ok(_)) => {
                self.last_heard = Instant::now();
                Step::Continue
            }
        }
    }

    fn ping(&self) -> Step {
        if self.last_heard.elapsed() > self.dead_after {
            debug!("Dropped a bridge session that stopped answering pings.");
            return Step::End;
        }
        Step::Send(vec![Message::Ping(Default::default())])
    }

    /// The events of `batch` this session has not sent yet, or the close of
    /// a slow consumer.
    fn deliver(&mut self, batch: Option<Vec<Arc<Event>>>) -> Step {
        let Some(events) = batch else {
            return Step::Close(close_code::SLOW_CONSUMER, SLOW_CONSUMER_REASON.into());
        };
        let mut messages = Vec::with_capacity(events.len());
        for event in events {
            if event.live {
                messages.push(Message::Text(Item::Event(event).frame()));
            } else if event.seq > self.last {
                self.last = event.seq;
                messages.push(Message::Text(Item::Event(event).frame()));
            }
        }
        if messages.is_empty() {
            return Step::Continue;
        }
        Step::Send(messages)
    }

    /// Writes `messages` and flushes once; `false` when the socket failed or
    /// accepted nothing for `dead_after`, and the session is over.
    async fn send_all(&mut self, messages: impl IntoIterator<Item = Message>) -> bool {
        let tx = &mut self.tx;
        let write = async move {
            for message in messages {
                tx.feed(message).await?;
            }
            tx.flush().await
        };
        matches!(timeout(self.dead_after, write).await, Ok(Ok(())))
    }
}

/// Reason of a 4008 close.
const SLOW_CONSUMER_REASON: &str = "the client reads too slowly; reconnect with its last position";

/// Reason of a 4003 close, and the comment that ends an SSE stream.
pub(crate) const TOKEN_EXPIRED_REASON: &str =
    "the session expired with its token; reconnect with a new token and the last position";

/// Sends a close frame with `code` and `reason`, cut to what a frame holds.
async fn close<T: Sink<Message> + Unpin>(tx: &mut T, code: u16, reason: &str) {
    let mut end = reason.len().min(MAX_REASON_LEN);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let frame = CloseFrame {
        code,
        reason: reason[..end].into(),
    };
    let _ = timeout(CLOSE_TIMEOUT, tx.send(Message::Close(Some(frame)))).await;
}
