//! The bridge's HTTP server loop: accepted connections served by hyper with
//! the timeouts `axum::serve` leaves off.
//!
//! `axum::serve` gives hyper no timer, so hyper cannot time out a client
//! that trickles its request headers, or sends nothing at all, and such a
//! socket stays open for as long as the client likes. Here each connection
//! gets hyper's header read timeout and a watchdog that closes it when no
//! byte has moved for the idle timeout (until it is upgraded to a
//! WebSocket, whose session pings and watches it instead). Every request
//! carries its connection's [`Peer`] as an extension.

use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt as _;
use tracing::debug;

use crate::connection::Guarded;

/// How long a connection may take at each stage.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeouts {
    /// To send a request's line and headers, or the next request on a
    /// keep-alive connection.
    pub(crate) header_read: Duration,
    /// Without a byte moving either way, until upgraded.
    pub(crate) idle: Duration,
}

/// Serves `app` on `listener` until `stop`, then lets the connections
/// finish (an SSE stream ends on `stop` too) and returns once they have.
/// Upgraded WebSockets are not waited for: their sessions are tracked by
/// the bridge.
pub(crate) async fn run(
    mut listener: TcpListener,
    app: Router,
    timeouts: Timeouts,
    stop: CancellationToken,
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
            () = stop.cancelled() => break,
            accepted = axum::serve::Listener::accept(&mut listener) => accepted,
        };
        let _ = stream.set_nodelay(true);
        let connection = Connection {
            builder: Arc::clone(&builder),
            io: Guarded::new(stream, addr),
            app: app.clone(),
            idle: timeouts.idle,
        };
        connections.spawn(connection.serve(stop.clone()));
    }
    drop(listener);
    connections.close();
    connections.wait().await;
}

/// One accepted connection, before it is served.
struct Connection {
    builder: Arc<http1::Builder>,
    io: Guarded,
    app: Router,
    idle: Duration,
}

impl Connection {
    /// Serves requests until the client leaves, a timeout fires, the
    /// connection is upgraded, or after `stop` the response in flight ends.
    async fn serve(self, stop: CancellationToken) {
        let Self {
            builder,
            io,
            app,
            idle,
        } = self;
        let peer = io.peer().clone();
        let extension = peer.clone();
        let service = app.map_request(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(extension.clone());
            request
        });
        let conn = builder
            .serve_connection(TokioIo::new(io), TowerToHyperService::new(service))
            .with_upgrades();
        let mut conn = pin!(conn);
        let mut draining = false;
        loop {
            tokio::select! {
                served = conn.as_mut() => {
                    if let Err(e) = served {
                        debug!(peer = %peer.addr(), error.message = %e, "Bridge HTTP connection ended with an error.");
                    }
                    return;
                }
                () = stop.cancelled(), if !draining => {
                    draining = true;
                    conn.as_mut().graceful_shutdown();
                }
                () = peer.idle_for(idle) => {
                    debug!(peer = %peer.addr(), idle_seconds = idle.as_secs(), "Closed a bridge connection on which nothing moved.");
                    return;
                }
            }
        }
    }
}
