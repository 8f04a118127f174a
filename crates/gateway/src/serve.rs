//! The HTTP server loop: accepted connections served by hyper with the
//! timeouts `axum::serve` leaves off.
//!
//! `axum::serve` gives hyper no timer, so hyper cannot time out a client
//! that trickles its request headers, or sends nothing at all, and such a
//! socket stays open for as long as the client likes. Here each connection
//! gets hyper's header read timeout (which also bounds how long an idle
//! keep-alive connection waits for its next request) and a watchdog that
//! closes a connection on which no byte has moved for the idle timeout: a
//! client that stops sending a body or stops reading a response.

use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt as _;
use tracing::{debug, warn};

/// How long a connection may take at each stage.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeouts {
    /// To send a request's line and headers, or the next request on a
    /// keep-alive connection.
    pub(crate) header_read: Duration,
    /// Without a byte moving either way.
    pub(crate) idle: Duration,
    /// For one request: only checked against `idle`, which must exceed it.
    pub(crate) request: Duration,
}

/// Serves `app` on `listener` until `shutdown`, then lets the connections
/// finish their requests in flight and returns once they have.
pub(crate) async fn run(
    mut listener: TcpListener,
    app: Router,
    timeouts: Timeouts,
    shutdown: CancellationToken,
) {
    if timeouts.idle <= timeouts.request {
        warn!(
            idle_timeout_secs = timeouts.idle.as_secs(),
            request_timeout_secs = timeouts.request.as_secs(),
            "The idle timeout is not above the request timeout: slow requests lose their connection before their 408."
        );
    }
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(timeouts.header_read);
    let builder = Arc::new(builder);
    let connections = TaskTracker::new();
    loop {
        let (stream, peer) = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            accepted = axum::serve::Listener::accept(&mut listener) => accepted,
        };
        let _ = stream.set_nodelay(true);
        let connection = Connection {
            builder: Arc::clone(&builder),
            io: Watched::new(stream),
            app: app.clone(),
            peer,
            idle: timeouts.idle,
        };
        connections.spawn(connection.serve(shutdown.clone()));
    }
    drop(listener);
    connections.close();
    connections.wait().await;
}

/// One accepted connection, before it is served.
struct Connection {
    builder: Arc<http1::Builder>,
    io: Watched,
    app: Router,
    peer: SocketAddr,
    idle: Duration,
}

impl Connection {
    /// Serves requests until the client leaves, a timeout fires, or after
    /// `shutdown` the request in flight is answered.
    async fn serve(self, shutdown: CancellationToken) {
        let Self {
            builder,
            io,
            app,
            peer,
            idle,
        } = self;
        let activity = io.activity.clone();
        let service = app.map_request(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            request
        });
        let conn = builder.serve_connection(TokioIo::new(io), TowerToHyperService::new(service));
        let mut conn = pin!(conn);
        let mut draining = false;
        loop {
            tokio::select! {
                served = conn.as_mut() => {
                    if let Err(e) = served {
                        debug!(%peer, error.message = %e, "HTTP connection ended with an error.");
                    }
                    return;
                }
                () = shutdown.cancelled(), if !draining => {
                    draining = true;
                    conn.as_mut().graceful_shutdown();
                }
                () = activity.idle_for(idle) => {
                    debug!(%peer, idle_secs = idle.as_secs(), "Closed an HTTP connection on which nothing moved.");
                    return;
                }
            }
        }
    }
}

/// When a connection last moved a byte; shared between its socket and its
/// watchdog.
#[derive(Debug, Clone)]
struct Activity(Arc<ActivityState>);

#[derive(Debug)]
struct ActivityState {
    opened: Instant,
    /// Milliseconds from `opened` to the last byte read or written.
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Self(Arc::new(ActivityState {
            opened: Instant::now(),
            last_ms: AtomicU64::new(0),
        }))
    }

    fn touch(&self) {
        let elapsed = self.0.opened.elapsed().as_millis();
        let ms = u64::try_from(elapsed).unwrap_or(u64::MAX);
        self.0.last_ms.store(ms, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        self.0.opened + Duration::from_millis(self.0.last_ms.load(Ordering::Relaxed))
    }

    /// Returns once nothing has moved for `limit`.
    async fn idle_for(&self, limit: Duration) {
        loop {
            let deadline = self.last() + limit;
            if deadline <= Instant::now() {
                return;
            }
            sleep_until(deadline).await;
        }
    }
}

/// A TCP connection that records when it last moved a byte.
#[derive(Debug)]
struct Watched {
    io: TcpStream,
    activity: Activity,
}

impl Watched {
    fn new(io: TcpStream) -> Self {
        Self {
            io,
            activity: Activity::new(),
        }
    }

    fn moved<T>(&self, polled: Poll<io::Result<T>>, moved: bool) -> Poll<io::Result<T>> {
        if moved {
            self.activity.touch();
        }
        polled
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.io).poll_read(cx, buf);
        let moved = matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before;
        this.moved(polled, moved)
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_write(cx, buf);
        let moved = matches!(polled, Poll::Ready(Ok(n)) if n > 0);
        this.moved(polled, moved)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        let moved = matches!(polled, Poll::Ready(Ok(n)) if n > 0);
        this.moved(polled, moved)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}
