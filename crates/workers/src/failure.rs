//! Turning the libraries' errors into what the bus should do with a message.

use fleet_bus::HandlerError;

/// The error and each of its causes, joined: operators read these in
/// retrying/failed statuses and dead letters. The libraries keep secrets out
/// of every message, so this is safe to publish.
pub(crate) fn describe(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A Vault failure: transient ones are retried, the rest end the step.
pub(crate) fn secrets(error: &fleet_secrets::Error) -> HandlerError {
    if error.is_transient() {
        HandlerError::transient(describe(error))
    } else {
        HandlerError::permanent(describe(error))
    }
}

/// A Postgres failure: transient ones are retried, the rest end the step.
pub(crate) fn store(error: &fleet_store::Error) -> HandlerError {
    if error.is_transient() {
        HandlerError::transient(describe(error))
    } else {
        HandlerError::permanent(describe(error))
    }
}
