//! Errors of the bus crate.

/// What went wrong talking to NATS.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Could not connect to the server.
    #[error("failed to connect to NATS at {url}")]
    Connect {
        /// Server URL, without credentials.
        url: String,
        /// Cause.
        #[source]
        source: async_nats::ConnectError,
    },
    /// A definition file under `nats/` does not parse.
    #[error("invalid JetStream definition {path}: {reason}")]
    Definition {
        /// File path relative to the repository root.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The server refused a stream or consumer definition.
    #[error("failed to provision {what}")]
    Provision {
        /// `stream NAME` or `consumer STREAM/NAME`.
        what: String,
        /// Cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// No consumer of that name is defined.
    #[error("no consumer named {0:?} is defined in nats/consumers")]
    UnknownConsumer(String),
    /// Could not look up or bind the durable consumer.
    #[error("failed to bind consumer {stream}/{consumer}")]
    Consumer {
        /// Stream name.
        stream: String,
        /// Consumer name.
        consumer: String,
        /// Cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A publish was not acknowledged by the stream.
    #[error("failed to publish to {subject}")]
    Publish {
        /// Subject published to.
        subject: String,
        /// Cause.
        #[source]
        source: async_nats::jetstream::context::PublishError,
    },
}

impl Error {
    /// Whether this is a publish that a nats-server still starting (its
    /// streams not loaded yet) turned away: no stream for the subject, or
    /// no acknowledgement in time.
    pub fn is_server_starting(&self) -> bool {
        use async_nats::jetstream::context::PublishErrorKind;
        matches!(
            self,
            Self::Publish { source, .. }
                if matches!(source.kind(), PublishErrorKind::StreamNotFound | PublishErrorKind::TimedOut)
        )
    }
}
