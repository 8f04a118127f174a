//! The bridge's listener: accepted TCP connections that a session can cut.
//!
//! A Server-Sent Events response is a body that hyper polls only when the
//! socket has room for more. A client that stops reading therefore leaves
//! its session suspended: nothing polls the body again, so nothing notices
//! that its queue overflowed, and the connection and its registration would
//! stay until the peer goes away. Each accepted connection is wrapped in
//! [`Guarded`], which fails every read and write once its [`Cut`] is pulled
//! and wakes the connection's task, so hyper sees the error and drops the
//! connection, and with it the session.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;
use futures::task::AtomicWaker;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// A TCP listener whose connections are [`Guarded`].
#[derive(Debug)]
pub(crate) struct Listener(pub(crate) TcpListener);

impl axum::serve::Listener for Listener {
    type Io = Guarded;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Guarded, SocketAddr) {
        let (io, addr) = axum::serve::Listener::accept(&mut self.0).await;
        let _ = io.set_nodelay(true);
        let cut = Cut::default();
        (Guarded { io, cut }, addr)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

/// Ends one connection from outside its task; cheap to clone. A handler
/// gets its connection's as `ConnectInfo<Cut>`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Cut(Arc<CutState>);

#[derive(Debug, Default)]
struct CutState {
    cut: AtomicBool,
    /// The task that last polled the connection.
    waker: AtomicWaker,
}

impl Cut {
    /// Fails the connection's reads and writes from now on, and wakes its
    /// task so that it notices.
    pub(crate) fn cut(&self) {
        self.0.cut.store(true, Ordering::Release);
        self.0.waker.wake();
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
    /// socket is registered to be woken by [`Cut::cut`]; one that is not
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

impl Connected<IncomingStream<'_, Listener>> for Cut {
    fn connect_info(stream: IncomingStream<'_, Listener>) -> Self {
        stream.io().cut.clone()
    }
}

/// A TCP connection that fails once its [`Cut`] is pulled.
#[derive(Debug)]
pub(crate) struct Guarded {
    io: TcpStream,
    cut: Cut,
}

impl AsyncRead for Guarded {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.cut
            .poll(cx, |cx| Pin::new(&mut this.io).poll_read(cx, buf))
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.cut
            .poll(cx, |cx| Pin::new(&mut this.io).poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.cut.poll(cx, |cx| {
            Pin::new(&mut this.io).poll_write_vectored(cx, bufs)
        })
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.cut
            .poll(cx, |cx| Pin::new(&mut this.io).poll_flush(cx))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
