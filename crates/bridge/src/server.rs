//! The bridge's HTTP server loop: [`fleet_serve::run`], with each accepted
//! connection [`Guarded`] so that its sessions can cut it and budget its
//! reads.
//!
//! Each connection gets hyper's header read timeout and a watchdog that
//! closes it when no byte has moved for the idle timeout (until it is
//! upgraded to a WebSocket, whose session pings and watches it instead).
//! Every request carries its connection's [`Peer`](crate::connection::Peer)
//! as an extension.

use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::connection::Guarded;

/// How long a connection may take at each stage.
pub(crate) use fleet_serve::Timeouts;

/// Serves `app` on `listener` until `stop`, then lets the connections
/// finish (an SSE stream ends on `stop` too) and returns once they have.
/// Upgraded WebSockets are not waited for: their sessions are tracked by
/// the bridge. Boxed, which keeps the bridge's own future small.
pub(crate) fn run(
    listener: TcpListener,
    app: Router,
    timeouts: Timeouts,
    stop: CancellationToken,
) -> impl Future<Output = ()> {
    Box::pin(fleet_serve::run::<Guarded>(
        "bridge", listener, app, timeouts, stop,
    ))
}
