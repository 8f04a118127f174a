use crate::{IdKind, MAX_ID_LEN, SCHEMA_VERSION};

/// Why a string is not a valid identifier, subject, step or trace context.
///
/// Every message names the offending value's role and, where it helps, the
/// value itself: identifiers are routing data, never secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The identifier is the empty string.
    #[error("{kind} is empty")]
    Empty {
        /// Which identifier.
        kind: IdKind,
    },
    /// The identifier has more than [`MAX_ID_LEN`] characters.
    #[error("{kind} is longer than {max} characters (it has {len})", max = MAX_ID_LEN)]
    TooLong {
        /// Which identifier.
        kind: IdKind,
        /// Its length in characters.
        len: usize,
    },
    /// The identifier contains a character outside its alphabet.
    #[error("{kind} {value:?} contains {ch:?}, which is not allowed {rule}")]
    InvalidChar {
        /// Which identifier.
        kind: IdKind,
        /// The refused identifier.
        value: String,
        /// The first character outside the alphabet.
        ch: char,
        /// Where the character is not allowed and what to use instead.
        rule: &'static str,
    },
    /// The identifier is not a UUID.
    #[error("{kind} is not a UUID")]
    NotUuid {
        /// Which identifier.
        kind: IdKind,
        /// What the UUID parser refused.
        #[source]
        source: uuid::Error,
    },
    /// The string names no [`Step`](crate::Step).
    #[error("unknown step {value:?}; expected validate, save, sync, status, meter or webhook")]
    UnknownStep {
        /// The refused string.
        value: String,
    },
    /// The string names no [`ConnectionState`](crate::ConnectionState).
    #[error("unknown connection state {value:?}")]
    UnknownState {
        /// The refused string.
        value: String,
    },
    /// The subject is not one this crate builds.
    #[error(
        "subject {subject:?} is neither connector.<step|schedule>.<tenant>.<connection> \
         nor connector.dlq.<step>.<tenant>.<connection>"
    )]
    Subject {
        /// The refused subject.
        subject: String,
    },
    /// The W3C `traceparent` does not have the version-00 shape.
    #[error("traceparent {value:?} is not of the form 00-<32 hex>-<16 hex>-<2 hex>")]
    Traceparent {
        /// The refused value.
        value: String,
    },
    /// The W3C `tracestate` cannot travel in a NATS header.
    #[error(
        "tracestate is not printable ASCII of at most {max} characters",
        max = crate::trace::MAX_TRACESTATE_LEN
    )]
    Tracestate,
}

/// Why bytes could not be decoded into an [`Envelope`](crate::Envelope).
///
/// The variants tell a consumer what went wrong without string matching:
/// every one of them is permanent for the message at hand, so a consumer
/// dead-letters it rather than retrying. The underlying parser message, with
/// its line and column or field path, is the [`source`](std::error::Error::source).
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The bytes are not a JSON document.
    #[error("event is not valid JSON")]
    NotJson(#[source] serde_json::Error),
    /// The JSON has no string `type` field, so it is not an envelope.
    #[error("event has no string `type` field")]
    MissingType,
    /// The envelope carries another event type than the one asked for.
    #[error("expected a {expected} event, got {found:?}")]
    WrongType {
        /// The type the caller decodes.
        expected: &'static str,
        /// The type the envelope carries.
        found: String,
    },
    /// The envelope's `schema_version` is not one this build reads.
    ///
    /// A version above [`SCHEMA_VERSION`] comes from a newer producer: deploy
    /// consumers before producers when the version is raised.
    #[error(
        "unsupported schema version {found}; this build reads versions 1 to {max}",
        max = SCHEMA_VERSION
    )]
    UnsupportedVersion {
        /// The version the envelope carries.
        found: u64,
    },
    /// An identifier or the trace context is present but invalid.
    #[error("invalid `{field}`")]
    InvalidField {
        /// The envelope field, as spelled in JSON.
        field: &'static str,
        /// Why the value is refused.
        #[source]
        source: ParseError,
    },
    /// The JSON does not have the shape of the expected event.
    #[error("event does not match the {expected} schema at `{path}`")]
    Shape {
        /// The type the caller decodes.
        expected: &'static str,
        /// Where the mismatch is, as a dotted path (`.` is the top level).
        path: String,
        /// What the deserializer refused there.
        #[source]
        source: serde_json::Error,
    },
}
