//! SIGTERM and SIGINT: the first asks for a graceful stop, the second exits.

use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;
use tracing::warn;

/// A token cancelled on the first SIGTERM or SIGINT; a second signal ends
/// the process at once with status 130.
pub(crate) fn shutdown_token() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            warn!("Could not install signal handlers; the process stops only when killed.");
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        warn!("Shutting down: finishing in-flight work. Send the signal again to exit now.");
        cancel.cancel();
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        warn!("Second signal: exiting now.");
        std::process::exit(130);
    });
    token
}
