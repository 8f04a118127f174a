//! The HTTP server loop of connector-fleet's servers (the gateway and the
//! bridge): accepted connections served by hyper with the timeouts
//! `axum::serve` leaves off.
//!
//! `axum::serve` gives hyper no timer, so hyper cannot time out a client
//! that trickles its request headers, or sends nothing at all, and such a
//! socket stays open for as long as the client likes. Here each connection
//! gets hyper's header read timeout (which also bounds how long an idle
//! keep-alive connection waits for its next request) and a watchdog that
//! closes a connection on which no byte has moved for the idle timeout: a
//! client that stops sending a body or stops reading a response. Once a
//! connection is upgraded (to a WebSocket), hyper hands its socket to the
//! upgrade's owner and the watchdog no longer applies.
//!
//! How each accepted socket is wrapped, which extension its requests
//! carry, and how its idleness is told is up to the server: see
//! [`Accepted`]. [`Watched`] is the plain wrapper that only records
//! [`Activity`].

use std::future::Future;
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
use tracing::debug;

pub mod ops;

/// How long a connection may take at each stage.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// To send a request's line and headers, or the next request on a
    /// keep-alive connection.
    pub header_read: Duration,
    /// Without a byte moving either way, until upgraded.
    pub idle: Duration,
}

/// An accepted TCP connection as a server wraps it.
pub trait Accepted: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    /// What every request of the connection carries as an extension.
    type Extension: Clone + Send + Sync + 'static;

    /// Wraps the connection accepted from `addr`.
    fn accept(io: TcpStream, addr: SocketAddr) -> Self;

    /// The extension its requests carry.
    fn extension(&self) -> Self::Extension;

    /// Returns once nothing has been read or written for `limit`; does not
    /// borrow the connection, which hyper owns by then.
    fn idle_for(&self, limit: Duration) -> impl Future<Output = ()> + Send + 'static;
}

/// Serves `app` on `listener`, each connection wrapped as `A`, until
/// `shutdown`; then lets the connections finish their responses in flight
/// and returns once they have. Upgraded connections are not waited for:
/// their owner tracks them. `server` names the server in the logs.
pub async fn run<A: Accepted>(
    server: &'static str,
    mut listener: TcpListener,
    app: Router,
    timeouts: Timeouts,
    shutdown: CancellationToken,
) {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(timeouts.header_read);
    let builder = Arc::new(builder);
    let connections = TaskTracker::new();
    loop {
        let (stream, addr) = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            accepted = axum::serve::Listener::accept(&mut listener) => accepted,
        };
        let _ = stream.set_nodelay(true);
        let connection = Connection {
            server,
            builder: Arc::clone(&builder),
            io: A::accept(stream, addr),
            app: app.clone(),
            addr,
            idle: timeouts.idle,
        };
        connections.spawn(connection.serve(shutdown.clone()));
    }
    drop(listener);
    connections.close();
    connections.wait().await;
}

/// One accepted connection, before it is served.
struct Connection<A> {
    server: &'static str,
    builder: Arc<http1::Builder>,
    io: A,
    app: Router,
    addr: SocketAddr,
    idle: Duration,
}

impl<A: Accepted> Connection<A> {
    /// Serves requests until the client leaves, a timeout fires, the
    /// connection is upgraded, or after `shutdown` the response in flight
    /// ends.
    async fn serve(self, shutdown: CancellationToken) {
        let Self {
            server,
            builder,
            io,
            app,
            addr,
            idle,
        } = self;
        let extension = io.extension();
        let idled = io.idle_for(idle);
        let service = app.map_request(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(extension.clone());
            request
        });
        let conn = builder
            .serve_connection(TokioIo::new(io), TowerToHyperService::new(service))
            .with_upgrades();
        let mut conn = pin!(conn);
        let mut idled = pin!(idled);
        let mut draining = false;
        loop {
            tokio::select! {
                served = conn.as_mut() => {
                    if let Err(e) = served {
                        debug!(server, peer = %addr, error.message = %e, "HTTP connection ended with an error.");
                    }
                    return;
                }
                () = shutdown.cancelled(), if !draining => {
                    draining = true;
                    conn.as_mut().graceful_shutdown();
                }
                () = idled.as_mut() => {
                    debug!(server, peer = %addr, idle_secs = idle.as_secs(), "Closed an HTTP connection on which nothing moved.");
                    return;
                }
            }
        }
    }
}

/// When a connection last moved a byte; cheap to clone, shared between its
/// socket and its watchdog.
#[derive(Debug, Clone)]
pub struct Activity(Arc<ActivityState>);

#[derive(Debug)]
struct ActivityState {
    opened: Instant,
    /// Milliseconds from `opened` to the last byte read or written.
    last_ms: AtomicU64,
}

impl Activity {
    /// Starts counting from now.
    #[must_use]
    pub fn new() -> Self {
        Self(Arc::new(ActivityState {
            opened: Instant::now(),
            last_ms: AtomicU64::new(0),
        }))
    }

    /// Records that a byte moved now.
    pub fn touch(&self) {
        let elapsed = self.0.opened.elapsed().as_millis();
        let ms = u64::try_from(elapsed).unwrap_or(u64::MAX);
        self.0.last_ms.store(ms, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        self.0.opened + Duration::from_millis(self.0.last_ms.load(Ordering::Relaxed))
    }

    /// Returns once nothing has moved for `limit`.
    pub async fn idle_for(&self, limit: Duration) {
        loop {
            let deadline = self.last() + limit;
            if deadline <= Instant::now() {
                return;
            }
            sleep_until(deadline).await;
        }
    }
}

impl Default for Activity {
    fn default() -> Self {
        Self::new()
    }
}

/// A TCP connection that records when it last moved a byte; its requests
/// carry the client's address as `ConnectInfo<SocketAddr>`.
#[derive(Debug)]
pub struct Watched {
    io: TcpStream,
    addr: SocketAddr,
    activity: Activity,
}

impl Watched {
    fn moved<T>(&self, polled: Poll<io::Result<T>>, moved: bool) -> Poll<io::Result<T>> {
        if moved {
            self.activity.touch();
        }
        polled
    }
}

impl Accepted for Watched {
    type Extension = ConnectInfo<SocketAddr>;

    fn accept(io: TcpStream, addr: SocketAddr) -> Self {
        Self {
            io,
            addr,
            activity: Activity::new(),
        }
    }

    fn extension(&self) -> Self::Extension {
        ConnectInfo(self.addr)
    }

    fn idle_for(&self, limit: Duration) -> impl Future<Output = ()> + Send + 'static {
        let activity = self.activity.clone();
        async move { activity.idle_for(limit).await }
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
