use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

use crate::{
    ConnectionId, ConnectorId, CorrelationId, Envelope, Family, Payload, Step, TenantId, subject,
};

/// A message a step gave up on: undecodable, refused as malformed by its
/// handler, or out of deliveries. It is published on
/// `connector.dlq.<step>.<tenant>.<connection>` with the original bytes, so
/// an operator can read why and replay it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DeadLetter {
    /// The step whose consumer gave up.
    pub step: Step,
    /// Why it gave up: the decode error, the handler's reason, or the last error before deliveries
    /// ran out.
    pub reason: String,
    /// How many times JetStream delivered the message.
    pub delivery_count: u64,
    /// The subject the message was consumed from.
    pub original_subject: String,
    /// The message's sequence in its stream, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_sequence: Option<u64>,
    /// The message body exactly as received, which may be neither JSON nor UTF-8 (standard base64
    /// in JSON).
    #[serde(with = "base64_bytes")]
    #[schemars(schema_with = "base64_schema")]
    pub original: Vec<u8>,
}

impl DeadLetter {
    /// Wraps a dead letter whose original message could not be decoded.
    ///
    /// When the original did decode, publish `original.caused(dead_letter)`
    /// instead, which keeps its tenant, connection, connector and correlation.
    ///
    /// Tenant and connection come from [`Self::original_subject`]; when it
    /// does not parse either, and always for the connector, the id is the
    /// `_unknown` placeholder (as in `connector.dlq.<step>._unknown._unknown`).
    /// The dead letter starts a new correlation, since the original's is unknown.
    pub fn into_envelope(self) -> Envelope<Self> {
        let (tenant, connection) = match subject::parse(&self.original_subject) {
            Ok(parsed) => (parsed.tenant, parsed.connection),
            Err(_) => (TenantId::unknown(), ConnectionId::unknown()),
        };
        Envelope::new(
            tenant,
            connection,
            ConnectorId::unknown(),
            CorrelationId::new(),
            self,
        )
    }
}

impl Payload for DeadLetter {
    const TYPE: &'static str = "connector.dlq.dead_letter";
    const FAMILY: Family = Family::Dlq;

    fn subject(&self, tenant: &TenantId, connection: &ConnectionId) -> String {
        subject::dlq(self.step, tenant, connection)
    }
}

fn base64_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "string", "contentEncoding": "base64" })
}

/// Bytes as a standard base64 string.
mod base64_bytes {
    use base64::{Engine, engine::general_purpose::STANDARD};
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub(super) fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&STANDARD.encode(bytes))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        STANDARD.decode(text).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dead_letter(original_subject: &str) -> DeadLetter {
        DeadLetter {
            step: Step::Sync,
            reason: "event is not valid JSON".into(),
            delivery_count: 1,
            original_subject: original_subject.into(),
            stream_sequence: Some(7),
            original: vec![0xff, 0x00, b'{'],
        }
    }

    #[test]
    fn the_original_bytes_travel_as_standard_base64() {
        let value = serde_json::to_value(dead_letter("x")).unwrap();
        assert_eq!(value["original"], "/wB7");
        let back: DeadLetter = serde_json::from_value(value).unwrap();
        assert_eq!(back.original, [0xff, 0x00, b'{']);
    }

    #[test]
    fn an_undecodable_message_is_addressed_from_its_subject() {
        let envelope = dead_letter("connector.sync.acme.c-1").into_envelope();
        assert_eq!(envelope.tenant.as_str(), "acme");
        assert_eq!(envelope.connection.as_str(), "c-1");
        assert_eq!(envelope.subject(), "connector.dlq.sync.acme.c-1");
    }

    #[test]
    fn an_unparseable_subject_sends_the_dead_letter_to_the_unknown_tokens() {
        let envelope = dead_letter("connector.sync.a b").into_envelope();
        assert_eq!(envelope.subject(), "connector.dlq.sync._unknown._unknown");
        assert_eq!(envelope.connector, ConnectorId::unknown());
    }
}
