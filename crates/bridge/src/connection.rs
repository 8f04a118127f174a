//! An accepted TCP connection of the bridge: its socket ([`Guarded`]) and
//! the handle ([`Peer`]) its requests and sessions hold.
//!
//! Through the handle a session can:
//! - **cut** the connection from outside its task. A Server-Sent Events
//!   response is a body that hyper polls only when the socket has room for
//!   more, so a client that stops reading leaves its session suspended:
//!   nothing polls the body again, nothing notices that its queue
//!   overflowed, and the connection would stay until the peer goes away.
//!   Once cut, every read and write fails and the connection's task is
//!   woken, so hyper sees the error and drops the connection, and with it
//!   the session;
//! - **budget its reads**: before a WebSocket client has authenticated, the
//!   socket yields at most a few KiB, then fails reads with
//!   [`ReadBudgetExceeded`], so an oversized first frame or a message in
//!   endless fragments is never buffered;
//! - tell **how long nothing has moved**, for the server's idle timeout;
//! - give the client's **address**, for the per-address session limit.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use fleet_serve::{Accepted, Activity};
use futures::task::AtomicWaker;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Reads are not budgeted.
const UNLIMITED: usize = usize::MAX;

/// The error of a read past the budget set by [`Peer::limit_reads`].
#[derive(Debug, thiserror::Error)]
#[error("the client sent more than it may before authenticating")]
pub(crate) struct ReadBudgetExceeded;

/// The handle on one accepted connection; cheap to clone. Every request of
/// the connection carries it as an extension.
#[derive(Debug, Clone)]
pub(crate) struct Peer(Arc<PeerState>);

#[derive(Debug)]
struct PeerState {
    addr: SocketAddr,
    cut: AtomicBool,
    /// The task that last waited on the connection.
    waker: AtomicWaker,
    /// Bytes reads may still yield; [`UNLIMITED`] when not budgeted.
    budget: AtomicUsize,
    /// When the last byte was read or written.
    activity: Activity,
}

impl Peer {
    fn new(addr: SocketAddr) -> Self {
        Self(Arc::new(PeerState {
            addr,
            cut: AtomicBool::new(false),
            waker: AtomicWaker::new(),
            budget: AtomicUsize::new(UNLIMITED),
            activity: Activity::new(),
        }))
    }

    /// The TCP peer's address.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.0.addr
    }

    /// Fails the connection's reads and writes from now on, and wakes its
    /// task so that it notices.
    pub(crate) fn cut(&self) {
        self.0.cut.store(true, Ordering::Release);
        self.0.waker.wake();
    }

    /// Lets reads yield at most `bytes` more, then fail with
    /// [`ReadBudgetExceeded`].
    pub(crate) fn limit_reads(&self, bytes: usize) {
        self.0
            .budget
            .store(bytes.min(UNLIMITED - 1), Ordering::Release);
    }

    /// Lifts the budget of [`limit_reads`](Self::limit_reads).
    pub(crate) fn unlimit_reads(&self) {
        self.0.budget.store(UNLIMITED, Ordering::Release);
    }

    /// Returns once nothing has been read or written for `limit`.
    pub(crate) async fn idle_for(&self, limit: Duration) {
        self.0.activity.idle_for(limit).await;
    }

    fn moved(&self) {
        self.0.activity.touch();
    }

    fn check(&self) -> io::Result<()> {
        if self.0.cut.load(Ordering::Acquire) {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "the bridge dropped a session that stopped reading",
            ));
        }
        Ok(())
    }

    /// Polls `io` unless the connection is cut. A task left waiting on the
    /// socket is registered to be woken by [`Peer::cut`]; one that is not
    /// polls again anyway, so the hot path stays a load and a poll.
    fn poll<T>(
        &self,
        cx: &mut Context<'_>,
        io: impl FnOnce(&mut Context<'_>) -> Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        self.check()?;
        let polled = io(cx);
        if polled.is_pending() {
            self.0.waker.register(cx.waker());
            self.check()?;
        }
        polled
    }
}

/// A TCP connection that fails once its [`Peer`] cuts it, and whose reads
/// the peer can budget.
#[derive(Debug)]
pub(crate) struct Guarded {
    io: TcpStream,
    peer: Peer,
}

/// The server loop wraps each accepted connection as a [`Guarded`], gives
/// its requests the [`Peer`], and watches the peer for idleness.
impl Accepted for Guarded {
    type Extension = Peer;

    fn accept(io: TcpStream, addr: SocketAddr) -> Self {
        Self {
            io,
            peer: Peer::new(addr),
        }
    }

    fn extension(&self) -> Peer {
        self.peer.clone()
    }

    fn idle_for(&self, limit: Duration) -> impl Future<Output = ()> + Send + 'static {
        let peer = self.peer.clone();
        async move { peer.idle_for(limit).await }
    }
}

/// Reads from `io` at most what `peer`'s budget allows, and takes what was
/// read off the budget.
fn read_budgeted(
    io: &mut TcpStream,
    peer: &Peer,
    cx: &mut Context<'_>,
    buf: &mut ReadBuf<'_>,
) -> Poll<io::Result<()>> {
    let budget = peer.0.budget.load(Ordering::Acquire);
    if budget == UNLIMITED {
        return Pin::new(io).poll_read(cx, buf);
    }
    if budget == 0 {
        return Poll::Ready(Err(io::Error::other(ReadBudgetExceeded)));
    }
    let room = buf.remaining().min(budget);
    let mut limited = ReadBuf::new(buf.initialize_unfilled_to(room));
    let polled = Pin::new(io).poll_read(cx, &mut limited);
    let read = limited.filled().len();
    buf.advance(read);
    let _ = peer
        .0
        .budget
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |left| {
            (left != UNLIMITED).then(|| left.saturating_sub(read))
        });
    polled
}

impl AsyncRead for Guarded {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let Self { io, peer } = self.get_mut();
        let before = buf.filled().len();
        let polled = peer.poll(cx, |cx| read_budgeted(io, peer, cx, buf));
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            peer.moved();
        }
        polled
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = this
            .peer
            .poll(cx, |cx| Pin::new(&mut this.io).poll_write(cx, buf));
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            this.peer.moved();
        }
        polled
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = this.peer.poll(cx, |cx| {
            Pin::new(&mut this.io).poll_write_vectored(cx, bufs)
        });
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            this.peer.moved();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.peer
            .poll(cx, |cx| Pin::new(&mut this.io).poll_flush(cx))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
