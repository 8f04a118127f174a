use fleet_events::{
    DecodeError, Envelope, ParseError, Payload, SCHEMA_VERSION, SaveRequested, StatusChanged,
    SyncRequested, ValidateRequested, peek_type, subject,
};
use serde_json::{Value, json};

use crate::helpers::{
    chain, dead_letter, envelope, save_requested, status_changed, sync_requested,
    validate_requested,
};

fn assert_round_trip<P: Payload>(data: P) {
    let original = envelope(data);
    let decoded = Envelope::<P>::decode(&original.to_json()).unwrap();
    assert_eq!(decoded, original, "{} did not round-trip", P::TYPE);
}

fn assert_published_in_its_family<P: Payload>(data: P) {
    let envelope = envelope(data);
    let parsed = subject::parse(&envelope.subject()).unwrap();
    assert_eq!(parsed.family, P::FAMILY, "{}", P::TYPE);
    assert_eq!(parsed.tenant, envelope.tenant);
    assert_eq!(parsed.connection, envelope.connection);
}

/// A valid `connector.validate.requested` event as JSON, to break on purpose.
fn validate_json() -> Value {
    serde_json::from_slice(&envelope(validate_requested()).to_json()).unwrap()
}

fn decode_validate(value: &Value) -> Result<Envelope<ValidateRequested>, DecodeError> {
    Envelope::decode(&serde_json::to_vec(value).unwrap())
}

#[test]
fn every_payload_round_trips_through_json() {
    assert_round_trip(validate_requested());
    assert_round_trip(save_requested());
    assert_round_trip(sync_requested());
    assert_round_trip(status_changed());
    assert_round_trip(dead_letter());
}

#[test]
fn every_payload_is_published_on_a_subject_of_its_family() {
    assert_published_in_its_family(validate_requested());
    assert_published_in_its_family(save_requested());
    assert_published_in_its_family(sync_requested());
    assert_published_in_its_family(status_changed());
    assert_published_in_its_family(dead_letter());
    assert_eq!(
        envelope(dead_letter()).subject(),
        "connector.dlq.validate.acme.c-1"
    );
}

#[test]
fn an_envelope_is_one_flat_json_object_with_the_documented_fields() {
    let mut original = envelope(validate_requested());
    original.causation_id = Some(fleet_events::EventId::new());
    let value: Value = serde_json::from_slice(&original.to_json()).unwrap();
    let mut keys: Vec<&str> = value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut expected = [
        "id",
        "type",
        "schema_version",
        "tenant",
        "connection",
        "connector",
        "correlation_id",
        "causation_id",
        "attempt",
        "occurred_at",
        "trace",
        "data",
    ];
    keys.sort_unstable();
    expected.sort_unstable();
    assert_eq!(keys, expected);
    assert_eq!(value["type"], "connector.validate.requested");
    assert_eq!(value["schema_version"], SCHEMA_VERSION);
    assert_eq!(value["attempt"], 1);
    assert_eq!(
        value["data"],
        json!({"origin": "oauth", "staged_version": 3})
    );
}

#[test]
fn absent_optional_fields_are_omitted_and_may_be_null() {
    let mut original = envelope(validate_requested());
    original.trace = None;
    let mut value: Value = serde_json::from_slice(&original.to_json()).unwrap();
    assert!(value.get("causation_id").is_none());
    assert!(value.get("trace").is_none());

    value["causation_id"] = Value::Null;
    value["trace"] = Value::Null;
    assert_eq!(decode_validate(&value).unwrap(), original);
}

#[test]
fn unknown_fields_are_ignored_so_producers_can_add_fields() {
    let mut value = validate_json();
    value["added_later"] = json!(true);
    value["data"]["added_later"] = json!({"nested": 1});
    assert!(decode_validate(&value).is_ok());
}

#[test]
fn the_next_event_keeps_the_flow_and_points_at_its_cause() {
    let first = envelope(validate_requested());
    let next = first.caused(save_requested());
    assert_ne!(next.id, first.id);
    assert_eq!(next.causation_id, Some(first.id));
    assert_eq!(next.correlation_id, first.correlation_id);
    assert_eq!(
        (&next.tenant, &next.connection, &next.connector),
        (&first.tenant, &first.connection, &first.connector)
    );
    assert_eq!(next.trace, first.trace);
    assert_eq!(next.attempt, 1);
    assert_eq!(next.subject(), "connector.save.acme.c-1");
}

#[test]
fn bytes_that_are_not_json_are_reported_as_such() {
    let err = Envelope::<ValidateRequested>::decode(b"\xff{").unwrap_err();
    assert!(matches!(err, DecodeError::NotJson(_)), "{err:?}");
    assert!(
        chain(&err).starts_with("event is not valid JSON: "),
        "{}",
        chain(&err)
    );
}

#[test]
fn json_without_a_string_type_is_not_an_envelope() {
    for value in [json!([1, 2]), json!({"type": 7}), json!({"data": {}})] {
        let err = decode_validate(&value).unwrap_err();
        assert!(matches!(err, DecodeError::MissingType), "{err:?}");
    }
}

#[test]
fn decoding_another_event_type_names_both_types() {
    let bytes = envelope(save_requested()).to_json();
    let err = Envelope::<ValidateRequested>::decode(&bytes).unwrap_err();
    assert!(matches!(err, DecodeError::WrongType { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "expected a connector.validate.requested event, got \"connector.save.requested\""
    );
}

#[test]
fn a_newer_schema_version_is_refused_before_its_shape_is_read() {
    let mut value = validate_json();
    value["schema_version"] = json!(2);
    value["data"] = json!({"renamed": true});
    let err = decode_validate(&value).unwrap_err();
    assert!(
        matches!(err, DecodeError::UnsupportedVersion { found: 2 }),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "unsupported schema version 2; this build reads versions 1 to 1"
    );
}

#[test]
fn schema_version_zero_is_refused() {
    let mut value = validate_json();
    value["schema_version"] = json!(0);
    let err = decode_validate(&value).unwrap_err();
    assert!(
        matches!(err, DecodeError::UnsupportedVersion { found: 0 }),
        "{err:?}"
    );
}

#[test]
fn an_invalid_tenant_is_reported_with_the_reason() {
    let mut value = validate_json();
    value["tenant"] = json!("a.b");
    let err = decode_validate(&value).unwrap_err();
    assert!(
        matches!(
            &err,
            DecodeError::InvalidField {
                field: "tenant",
                source: ParseError::InvalidChar { ch: '.', .. }
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        chain(&err),
        "invalid `tenant`: tenant id \"a.b\" contains '.', which is not allowed in a subject \
         token; use letters, digits, '-' or '_'"
    );
}

#[test]
fn invalid_ids_and_trace_contexts_name_their_field() {
    for (field, bad) in [
        ("id", json!("not-a-uuid")),
        ("connection", json!("")),
        ("connector", json!("WordPress")),
        ("correlation_id", json!("x")),
        ("causation_id", json!("x")),
        ("trace", json!({"traceparent": "00-xyz"})),
    ] {
        let mut value = validate_json();
        value[field] = bad;
        let err = decode_validate(&value).unwrap_err();
        assert!(
            matches!(&err, DecodeError::InvalidField { field: f, .. } if *f == field),
            "{field}: {err:?}"
        );
    }
}

#[test]
fn a_shape_error_names_the_field_path_and_the_problem() {
    let mut value = validate_json();
    value["data"]["staged_version"] = json!("three");
    let err = decode_validate(&value).unwrap_err();
    assert!(matches!(err, DecodeError::Shape { .. }), "{err:?}");
    assert_eq!(
        chain(&err),
        "event does not match the connector.validate.requested schema at `data.staged_version`: \
         invalid type: string \"three\", expected u64"
    );
}

#[test]
fn a_missing_required_field_is_a_shape_error() {
    let mut value = validate_json();
    value["data"].as_object_mut().unwrap().remove("origin");
    let err = decode_validate(&value).unwrap_err();
    assert_eq!(
        chain(&err),
        "event does not match the connector.validate.requested schema at `data`: \
         missing field `origin`"
    );
}

#[test]
fn an_unknown_status_state_is_a_shape_error() {
    let mut value: Value = serde_json::from_slice(&envelope(status_changed()).to_json()).unwrap();
    value["data"]["status"] = json!({"state": "exploded"});
    let err = Envelope::<StatusChanged>::decode(&serde_json::to_vec(&value).unwrap()).unwrap_err();
    assert!(matches!(err, DecodeError::Shape { .. }), "{err:?}");
    assert!(
        chain(&err).contains("unknown variant `exploded`"),
        "{}",
        chain(&err)
    );
}

#[test]
fn a_null_cursor_reads_as_no_cursor() {
    let mut value: Value = serde_json::from_slice(&envelope(sync_requested()).to_json()).unwrap();
    value["data"]["cursor"] = Value::Null;
    let decoded = Envelope::<SyncRequested>::decode(&serde_json::to_vec(&value).unwrap()).unwrap();
    assert_eq!(decoded.data.cursor, None);
}

#[test]
fn peeking_reads_the_type_of_any_event() {
    assert_eq!(
        peek_type(&envelope(save_requested()).to_json()).unwrap(),
        SaveRequested::TYPE
    );
    assert_eq!(
        peek_type(br#"{"type": "connector.future.event", "data": 1}"#).unwrap(),
        "connector.future.event"
    );
    assert!(matches!(peek_type(b"nope"), Err(DecodeError::NotJson(_))));
    assert!(matches!(peek_type(b"{}"), Err(DecodeError::MissingType)));
}
