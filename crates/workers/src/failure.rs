//! Turning the libraries' errors into what the bus should do with a message.

use std::future::Future;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable as _};
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

/// The innermost cause of `error`: what went wrong underneath, without the
/// paths and addresses the layers above it name.
fn root_cause(error: &dyn std::error::Error) -> String {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

/// A Vault failure: transient ones are retried, the rest end the step.
///
/// A transient failure's reason, shown to the tenant while the step waits
/// to run again, says whether Vault answered, but not its address or the
/// secret's path; the whole error goes to the log.
pub(crate) fn secrets(error: &fleet_secrets::Error) -> HandlerError {
    if error.is_transient() {
        tracing::warn!(error.message = %describe(error), "The secret store failed.");
        let cause = error.vault_status().map_or_else(
            || "no answer".to_owned(),
            |status| format!("it answered HTTP {status}"),
        );
        HandlerError::transient(format!("the secret store is unavailable ({cause})"))
    } else {
        HandlerError::permanent(describe(error))
    }
}

/// Runs a Postgres call, retrying it briefly (jittered, 3 times within about
/// a second) while it fails transiently, so a pool hiccup does not cost the
/// whole step a redelivery; what still fails goes through [`store`].
pub(crate) async fn in_store<T, F, Fut>(call: F) -> Result<T, HandlerError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, fleet_store::Error>>,
{
    let backoff = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(50))
        .with_max_delay(Duration::from_millis(500))
        .with_max_times(3)
        .with_jitter();
    call.retry(backoff)
        .when(fleet_store::Error::is_transient)
        .await
        .map_err(|e| store(&e))
}

/// A Postgres failure: transient ones are retried, the rest end the step.
///
/// As with [`secrets`], a transient failure's reason names the cause, and
/// the whole error goes to the log.
pub(crate) fn store(error: &fleet_store::Error) -> HandlerError {
    if let fleet_store::Error::SyncSlotLost { .. } = error {
        return HandlerError::superseded(error.to_string());
    }
    if error.is_transient() {
        tracing::warn!(error.message = %describe(error), "The database failed.");
        HandlerError::transient(format!(
            "the database is unavailable ({})",
            root_cause(error)
        ))
    } else {
        HandlerError::permanent(describe(error))
    }
}
