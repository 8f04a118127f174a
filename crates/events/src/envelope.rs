use std::{borrow::Cow, fmt, marker::PhantomData};

use chrono::{DateTime, Utc};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer, de::Error as _};
use serde_json::Value;

use crate::{
    ConnectionId, ConnectorId, CorrelationId, DecodeError, EventId, ParseError, Payload, TenantId,
    TraceContext,
};

/// Version of the envelope layout and payload shapes that this build writes.
///
/// Additive, optional fields do not change it: decoders ignore unknown fields.
/// A change that an older decoder would misread (a renamed or retyped field,
/// a new required field) raises it, and older decoders then refuse the
/// event with [`DecodeError::UnsupportedVersion`] instead of misreading it.
pub const SCHEMA_VERSION: u16 = 1;

/// One event, as published on NATS: routing and lineage fields around a
/// typed payload, serialized as one flat JSON object.
///
/// ```json
/// {"id": "…", "type": "connector.validate.requested", "schema_version": 1,
///  "tenant": "acme", "connection": "…", "connector": "wordpress",
///  "correlation_id": "…", "causation_id": "…", "attempt": 1,
///  "occurred_at": "2025-01-01T00:00:00Z", "trace": {"traceparent": "…"},
///  "data": {…}}
/// ```
///
/// `type` and `schema_version` have no Rust fields: they follow from `P` and
/// [`SCHEMA_VERSION`], so an envelope cannot claim to be something it is not.
/// Payloads carry references (a Vault KV version, a provider account id),
/// never secrets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(bound = "")]
#[schemars(
    description = "An event of connector-fleet: routing, lineage and trace fields \
    around the payload in `data`, whose shape `type` names. Consumers ignore unknown fields, \
    so producers may add optional fields without raising `schema_version`."
)]
pub struct Envelope<P: Payload> {
    /// Unique id of this event, also its JetStream dedupe id.
    pub id: EventId,
    /// Event type: which payload `data` holds.
    #[serde(rename = "type")]
    kind: TypeTag<P>,
    /// Version of the envelope and payload shapes.
    schema_version: SchemaVersion,
    /// Tenant that owns the connection.
    pub tenant: TenantId,
    /// Connection the event is about.
    pub connection: ConnectionId,
    /// Provider of the connection.
    pub connector: ConnectorId,
    /// Id shared by every event of one flow (a setup, a sync run).
    pub correlation_id: CorrelationId,
    /// Id of the event whose handling published this one; absent for the first event of a flow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<EventId>,
    /// Attempt of the step that published this event, from 1: the JetStream delivery count of the
    /// message being handled.
    #[schemars(range(min = 1))]
    pub attempt: u32,
    /// When the event was created (RFC 3339, UTC).
    pub occurred_at: DateTime<Utc>,
    /// W3C trace context of the publishing span.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<TraceContext>,
    /// The payload; its shape is given by `type`.
    pub data: P,
}

impl<P: Payload> Envelope<P> {
    /// Starts a flow: a fresh id, attempt 1, no cause, no trace, occurred now.
    pub fn new(
        tenant: TenantId,
        connection: ConnectionId,
        connector: ConnectorId,
        correlation_id: CorrelationId,
        data: P,
    ) -> Self {
        Self {
            id: EventId::new(),
            kind: TypeTag(PhantomData),
            schema_version: SchemaVersion,
            tenant,
            connection,
            connector,
            correlation_id,
            causation_id: None,
            attempt: 1,
            occurred_at: Utc::now(),
            trace: None,
            data,
        }
    }

    /// The next event of the same flow, caused by this one.
    ///
    /// It keeps tenant, connection, connector, correlation id and trace
    /// context, takes this event's id as its `causation_id`, and gets a fresh
    /// id, the current time and attempt 1. A runtime handling the n-th
    /// delivery of this event sets `attempt` to n, and one with a current span
    /// replaces `trace` with it.
    pub fn caused<Q: Payload>(&self, data: Q) -> Envelope<Q> {
        Envelope {
            causation_id: Some(self.id),
            trace: self.trace.clone(),
            ..Envelope::new(
                self.tenant.clone(),
                self.connection.clone(),
                self.connector.clone(),
                self.correlation_id,
                data,
            )
        }
    }

    /// The subject to publish this event on; see [`Payload::subject`].
    pub fn subject(&self) -> String {
        self.data.subject(&self.tenant, &self.connection)
    }

    /// The event as compact JSON bytes.
    ///
    /// This cannot fail: every field serializes infallibly (map keys are
    /// strings, JSON values hold no NaN), and [`Payload`] is sealed, so no
    /// outside type with a failing `Serialize` can be a payload.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("envelopes of sealed payload types always serialize")
    }

    /// Decodes an event of type `P`.
    ///
    /// It never panics, whatever the bytes. The checks run from the most to
    /// the least fundamental, so the error names the first thing wrong.
    ///
    /// # Errors
    ///
    /// In order: the bytes are not JSON ([`DecodeError::NotJson`]); there is
    /// no string `type` ([`DecodeError::MissingType`]); `type` is not
    /// `P::TYPE` ([`DecodeError::WrongType`]); `schema_version` is newer than
    /// [`SCHEMA_VERSION`] ([`DecodeError::UnsupportedVersion`]); an id or the
    /// trace context is invalid ([`DecodeError::InvalidField`]); anything else
    /// does not match the schema ([`DecodeError::Shape`], with the field path).
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        // One pass for the common case: every check below is also made by
        // the fields' own `Deserialize` (the type tag, the version, the ids
        // and the trace context refuse bad values), so a typed decode that
        // succeeds has passed them all. Only a failure pays for the second
        // pass, which finds the most fundamental problem to report.
        // Only a UTF-8 JSON object takes it: serde would also read a struct
        // from an array of its fields, and skips an unknown field's value
        // without checking its UTF-8, both of which the checks below refuse.
        if is_utf8_object(bytes)
            && let Ok(envelope) = serde_json::from_slice::<Self>(bytes)
        {
            return Ok(envelope);
        }
        Self::diagnose(bytes)
    }

    /// The slow path of [`decode`](Self::decode): checks field by field so
    /// the error names the first thing wrong.
    fn diagnose(bytes: &[u8]) -> Result<Self, DecodeError> {
        let value: Value = serde_json::from_slice(bytes).map_err(DecodeError::NotJson)?;
        let found = type_of(&value)?;
        if found != P::TYPE {
            return Err(DecodeError::WrongType {
                expected: P::TYPE,
                found: found.to_owned(),
            });
        }
        check_header(&value)?;
        serde_path_to_error::deserialize(&value).map_err(|error| DecodeError::Shape {
            expected: P::TYPE,
            path: error.path().to_string(),
            source: error.into_inner(),
        })
    }
}

/// Whether `bytes` are UTF-8 whose first non-blank character opens a JSON
/// object.
fn is_utf8_object(bytes: &[u8]) -> bool {
    std::str::from_utf8(bytes).is_ok_and(|text| text.trim_start().starts_with('{'))
}

/// Reads only the `type` of an event, so a consumer of a subject that
/// carries several event types can pick the one to [`Envelope::decode`].
///
/// ```
/// use fleet_events::{DeadLetter, Envelope, Payload, StatusChanged, peek_type};
///
/// # fn handle(bytes: &[u8]) -> Result<(), fleet_events::DecodeError> {
/// match peek_type(bytes)?.as_str() {
///     StatusChanged::TYPE => { Envelope::<StatusChanged>::decode(bytes)?; }
///     DeadLetter::TYPE => { Envelope::<DeadLetter>::decode(bytes)?; }
///     _ => {} // a type this build does not know: from a newer producer
/// }
/// # Ok(()) }
/// ```
///
/// # Errors
///
/// The bytes are not JSON, or have no string `type` field.
pub fn peek_type(bytes: &[u8]) -> Result<String, DecodeError> {
    let value: Value = serde_json::from_slice(bytes).map_err(DecodeError::NotJson)?;
    type_of(&value).map(str::to_owned)
}

fn type_of(value: &Value) -> Result<&str, DecodeError> {
    value
        .get("type")
        .and_then(Value::as_str)
        .ok_or(DecodeError::MissingType)
}

/// A check of one string field of the envelope.
type FieldCheck = fn(&str) -> Result<(), ParseError>;

/// The identifier fields, checked before the full decode so that an invalid
/// id is reported as [`DecodeError::InvalidField`] with its [`ParseError`].
const ID_FIELDS: [(&str, FieldCheck); 6] = [
    ("id", |v| EventId::parse(v).map(drop)),
    ("tenant", |v| TenantId::parse(v).map(drop)),
    ("connection", |v| ConnectionId::parse(v).map(drop)),
    ("connector", |v| ConnectorId::parse(v).map(drop)),
    ("correlation_id", |v| CorrelationId::parse(v).map(drop)),
    ("causation_id", |v| EventId::parse(v).map(drop)),
];

/// Checks the version and the fields whose errors have a specific variant.
/// Missing or mistyped fields are left to the full decode, which reports them
/// with their path.
fn check_header(value: &Value) -> Result<(), DecodeError> {
    if let Some(found) = value.get("schema_version").and_then(Value::as_u64)
        && !is_supported_version(found)
    {
        return Err(DecodeError::UnsupportedVersion { found });
    }
    for (field, check) in ID_FIELDS {
        if let Some(id) = value.get(field).and_then(Value::as_str) {
            check(id).map_err(|source| DecodeError::InvalidField { field, source })?;
        }
    }
    if let Some(traceparent) = value.pointer("/trace/traceparent").and_then(Value::as_str) {
        let tracestate = value.pointer("/trace/tracestate").and_then(Value::as_str);
        TraceContext::new(traceparent.to_owned(), tracestate.map(str::to_owned)).map_err(
            |source| DecodeError::InvalidField {
                field: "trace",
                source,
            },
        )?;
    }
    Ok(())
}

fn is_supported_version(version: u64) -> bool {
    (1..=u64::from(SCHEMA_VERSION)).contains(&version)
}

/// The `type` field: `P::TYPE` when serialized, checked when deserialized.
struct TypeTag<P>(PhantomData<fn() -> P>);

impl<P> Clone for TypeTag<P> {
    fn clone(&self) -> Self {
        Self(PhantomData)
    }
}

impl<P> PartialEq for TypeTag<P> {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl<P: Payload> fmt::Debug for TypeTag<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        P::TYPE.fmt(f)
    }
}

impl<P: Payload> Serialize for TypeTag<P> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(P::TYPE)
    }
}

impl<'de, P: Payload> Deserialize<'de> for TypeTag<P> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let found = String::deserialize(deserializer)?;
        if found == P::TYPE {
            Ok(Self(PhantomData))
        } else {
            Err(D::Error::custom(DecodeError::WrongType {
                expected: P::TYPE,
                found,
            }))
        }
    }
}

impl<P: Payload> JsonSchema for TypeTag<P> {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        "EventType".into()
    }

    fn schema_id() -> Cow<'static, str> {
        format!("fleet_events::EventType<{}>", P::TYPE).into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "const": P::TYPE })
    }
}

/// The `schema_version` field: [`SCHEMA_VERSION`] when serialized, checked
/// when deserialized.
#[derive(Clone, PartialEq)]
struct SchemaVersion;

impl fmt::Debug for SchemaVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        SCHEMA_VERSION.fmt(f)
    }
}

impl Serialize for SchemaVersion {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u16(SCHEMA_VERSION)
    }
}

impl<'de> Deserialize<'de> for SchemaVersion {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let found = u64::deserialize(deserializer)?;
        if is_supported_version(found) {
            Ok(Self)
        } else {
            Err(D::Error::custom(DecodeError::UnsupportedVersion { found }))
        }
    }
}

impl JsonSchema for SchemaVersion {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        "SchemaVersion".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "integer", "const": SCHEMA_VERSION })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SetupOrigin, ValidateRequested};

    /// The one-pass decode accepts exactly what the field-by-field check
    /// accepts.
    #[test]
    fn the_fast_path_agrees_with_the_field_by_field_check() {
        let event = Envelope::new(
            TenantId::parse("acme").unwrap(),
            ConnectionId::new(),
            ConnectorId::parse("wordpress").unwrap(),
            CorrelationId::new(),
            ValidateRequested {
                origin: SetupOrigin::Manual,
                staged_version: 3,
            },
        );
        let good = serde_json::to_value(&event).unwrap();
        let variants: Vec<Value> = vec![
            good.clone(),
            patched(&good, "schema_version", Value::from(2)),
            patched(&good, "schema_version", Value::from(0)),
            patched(&good, "type", Value::from("connector.sync.requested")),
            patched(&good, "tenant", Value::from("a b")),
            patched(&good, "id", Value::from("not-a-uuid")),
            patched(&good, "attempt", Value::from(-1)),
            patched(&good, "extra", Value::from("ignored")),
            patched(&good, "trace", serde_json::json!({"traceparent": "00-bad"})),
        ];
        for variant in variants {
            let bytes = serde_json::to_vec(&variant).unwrap();
            let fast = Envelope::<ValidateRequested>::decode(&bytes);
            let slow = Envelope::<ValidateRequested>::diagnose(&bytes);
            assert_eq!(fast.is_ok(), slow.is_ok(), "{variant}");
            if let (Ok(fast), Ok(slow)) = (fast, slow) {
                assert_eq!(fast, slow);
            }
        }
        let mut duplicated = serde_json::to_string(&good).unwrap();
        duplicated.insert_str(1, "\"attempt\":7,");
        let decoded = Envelope::<ValidateRequested>::decode(duplicated.as_bytes());
        let diagnosed = Envelope::<ValidateRequested>::diagnose(duplicated.as_bytes());
        assert_eq!(decoded.is_ok(), diagnosed.is_ok());
    }

    fn patched(value: &Value, field: &str, new: Value) -> Value {
        let mut value = value.clone();
        value[field] = new;
        value
    }
}
