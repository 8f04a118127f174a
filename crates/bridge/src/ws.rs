//! The WebSocket session: authenticate, open, then deliver until closed.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use futures::{Sink, SinkExt as _, Stream, StreamExt as _};
use secrecy::ExposeSecret as _;
use tokio::time::{Instant, timeout};
use tracing::{debug, error};

use crate::State;
use crate::bridge::{Item, Opening};
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

/// `GET /ws`: upgrades, and runs the session as a tracked task so that the
/// bridge waits for it on shutdown.
pub(crate) async fn upgrade(
    axum::extract::State(state): axum::extract::State<State>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let sessions = state.sessions().clone();
    upgrade
        .read_buffer_size(READ_BUFFER)
        .on_upgrade(move |socket: WebSocket| sessions.track_future(serve(socket, state)))
}

/// Runs one session over any message sink and stream (an axum WebSocket in
/// production).
pub(crate) async fn serve<S, E>(socket: S, state: State)
where
    S: Sink<Message, Error = E> + Stream<Item = Result<Message, E>> + Send,
    E: fmt::Display,
{
    let (mut tx, mut rx) = socket.split();
    // Opening awaits NATS and Postgres through deep futures; boxed, their
    // state is freed once the session is open instead of staying in every
    // session's task for its whole life.
    match Box::pin(open(&mut rx, &state)).await {
        Ok(opening) => {
            let session = Session {
                tx,
                rx,
                dead_after: state.config().dead_after(),
                last: opening.last,
                last_heard: Instant::now(),
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
}

/// Reads the `auth` message within the auth timeout, checks its token and
/// opens the session.
async fn open<R, E>(rx: &mut R, state: &State) -> Result<Opening, Refused>
where
    R: Stream<Item = Result<Message, E>> + Unpin,
{
    let seconds = state.config().auth_timeout_seconds;
    let first = timeout(state.config().auth_timeout(), first_text(rx))
        .await
        .map_err(|_| {
            let reason = format!("no auth message within {seconds} s");
            Refused::new(close_code::AUTH_TIMEOUT, reason)
        })?
        .ok_or_else(|| Refused::new(close_code::AUTH_FAILED, "closed before authenticating"))?;
    let ClientMessage::Auth {
        token,
        connections,
        since,
    } = serde_json::from_str(&first).map_err(|_| {
        let reason = r#"the first message must be {"type":"auth","token":"…"}"#;
        Refused::new(close_code::AUTH_FAILED, reason)
    })?;
    let scope = state
        .authorize(token.expose_secret(), connections)
        .map_err(|reason| Refused::new(close_code::AUTH_FAILED, reason))?;
    state.open(scope, since).await.map_err(|e| {
        error!(error.message = %e, error.cause_chain = ?e, "Could not open a bridge session.");
        Refused::new(
            close_code::INTERNAL_ERROR,
            "the bridge could not start the session; reconnect",
        )
    })
}

/// The first text message; `None` when the client leaves first.
async fn first_text<R, E>(rx: &mut R) -> Option<String>
where
    R: Stream<Item = Result<Message, E>> + Unpin,
{
    loop {
        match rx.next().await? {
            Ok(Message::Text(text)) => return Some(text.to_string()),
            Ok(Message::Binary(_)) => return Some(String::new()),
            Ok(Message::Ping(_) | Message::Pong(_)) => {}
            Ok(Message::Close(_)) | Err(_) => return None,
        }
    }
}

/// What one turn of the session loop does next.
enum Step {
    Send(Vec<Message>),
    Continue,
    Close(u16, &'static str),
    End,
}

struct Session<T, R> {
    tx: T,
    rx: R,
    dead_after: Duration,
    /// The sequence of the last event sent; queued events up to it are skipped.
    last: u64,
    last_heard: Instant,
}

impl<T, R, E> Session<T, R>
where
    T: Sink<Message> + Unpin,
    R: Stream<Item = Result<Message, E>> + Unpin,
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
        loop {
            let step = tokio::select! {
                biased;
                () = state.stop().cancelled() => {
                    Step::Close(close_code::GOING_AWAY, "the bridge is restarting; reconnect")
                }
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
                Step::Close(code, reason) => return close(&mut self.tx, code, reason).await,
                Step::End => return,
            }
        }
    }

    fn heard(&mut self, frame: Option<&Result<Message, E>>) -> Step {
        match frame {
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
            return Step::Close(close_code::SLOW_CONSUMER, SLOW_CONSUMER_REASON);
        };
        let mut messages = Vec::with_capacity(events.len());
        for event in events {
            if event.seq > self.last {
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
