//! Tracing set-up, done once at start-up.

use tracing_subscriber::EnvFilter;

/// The filter when `RUST_LOG` is unset. vaultrs logs expected answers (a
/// missing secret, a lost check-and-set) at ERROR; `fleet-secrets` reports
/// what matters itself.
const DEFAULT_FILTER: &str = "info,vaultrs=off,rustify=off";

/// Installs the global subscriber: `RUST_LOG` filters (default `info`),
/// `FLEET_LOG_FORMAT=json` switches to one JSON object per line.
pub(crate) fn init() {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json_logs() {
        builder.json().flatten_event(true).init();
    } else {
        builder.init();
    }
}

#[expect(
    clippy::disallowed_methods,
    reason = "the log format is read before configuration is loaded"
)]
fn json_logs() -> bool {
    std::env::var("FLEET_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"))
}

/// Logs the error that ends the process, with its cause chain.
pub(crate) fn report_exit(error: &anyhow::Error) {
    tracing::error!(
        error.message = %error,
        error.cause_chain = ?error,
        "The command failed."
    );
}
