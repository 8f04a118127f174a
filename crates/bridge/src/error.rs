//! Errors of the bridge.

/// What stopped the bridge or failed a session's start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A JetStream request failed.
    #[error("failed to {what} on stream CONNECTOR_STATUS")]
    Nats {
        /// What was asked.
        what: &'static str,
        /// Cause.
        #[source]
        source: async_nats::Error,
    },
    /// The token key cannot be used.
    #[error("invalid token configuration")]
    Auth(#[from] fleet_auth::KeyError),
    /// `client_address_header` is not a header name.
    #[error("client_address_header {name:?} is not an HTTP header name")]
    ClientAddressHeader {
        /// The configured value.
        name: String,
    },
    /// Reading a snapshot from Postgres failed.
    #[error("failed to read the connections for a snapshot")]
    Snapshot(#[source] fleet_store::Error),
    /// A replay did not complete in time.
    #[error("replaying missed events took longer than {seconds} s")]
    ReplayTimeout {
        /// The deadline.
        seconds: u64,
    },
}

impl Error {
    pub(crate) fn nats(what: &'static str) -> impl FnOnce(async_nats::Error) -> Self {
        move |source| Self::Nats { what, source }
    }
}
