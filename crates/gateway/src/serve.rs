//! The gateway's HTTP server loop: [`fleet_serve::run`], with each
//! accepted connection [`Watched`] for the idle timeout and its requests
//! carrying the client's address as `ConnectInfo<SocketAddr>`.
//!
//! Each connection gets hyper's header read timeout (which also bounds how
//! long an idle keep-alive connection waits for its next request) and a
//! watchdog that closes a connection on which no byte has moved for the
//! idle timeout: a client that stops sending a body or stops reading a
//! response.

use std::time::Duration;

use axum::Router;
use fleet_serve::Watched;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::warn;

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
pub(crate) fn run(
    listener: TcpListener,
    app: Router,
    timeouts: Timeouts,
    shutdown: CancellationToken,
) -> impl Future<Output = ()> {
    if timeouts.idle <= timeouts.request {
        warn!(
            idle_timeout_secs = timeouts.idle.as_secs(),
            request_timeout_secs = timeouts.request.as_secs(),
            "The idle timeout is not above the request timeout: slow requests lose their connection before their 408."
        );
    }
    let timeouts = fleet_serve::Timeouts {
        header_read: timeouts.header_read,
        idle: timeouts.idle,
    };
    fleet_serve::run::<Watched>("gateway", listener, app, timeouts, shutdown)
}
