use chrono::{DateTime, Utc};
use fleet_events::{
    AccountInfo, ConnectionId, ConnectionStatus, ConnectorId, CorrelationId, DeadLetter, Envelope,
    EventId, Payload, SaveRequested, SetupOrigin, StatusChanged, Step, SyncCounts, SyncRequested,
    SyncTrigger, TenantId, TraceContext, ValidateRequested, subject,
};
use proptest::{option, prelude::*, sample::select};
use serde_json::Value;
use uuid::Uuid;

use crate::helpers::{chain, envelope, validate_requested};

fn tenant() -> impl Strategy<Value = TenantId> {
    "[A-Za-z0-9_-]{1,64}".prop_map(|s| TenantId::parse(&s).unwrap())
}

fn connection() -> impl Strategy<Value = ConnectionId> {
    "[A-Za-z0-9_-]{1,64}".prop_map(|s| ConnectionId::parse(&s).unwrap())
}

fn connector() -> impl Strategy<Value = ConnectorId> {
    "[a-z0-9_-]{1,64}".prop_map(|s| ConnectorId::parse(&s).unwrap())
}

fn uuid() -> impl Strategy<Value = Uuid> {
    any::<u128>().prop_map(Uuid::from_u128)
}

/// Instants from 1970 to 9999, with nanoseconds, as RFC 3339 can write them.
fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    (0i64..253_402_300_800, 0u32..1_000_000_000)
        .prop_map(|(secs, nanos)| DateTime::from_timestamp(secs, nanos).unwrap())
}

fn trace() -> impl Strategy<Value = TraceContext> {
    (
        "00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}",
        option::of("[ -~]{0,64}"),
    )
        .prop_map(|(parent, state)| TraceContext::new(parent, state).unwrap())
}

/// JSON without floats, which serde_json does not promise to round-trip bit for bit.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<String>().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(any::<String>(), inner, 0..4)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

fn envelope_of<P: Payload>(data: impl Strategy<Value = P>) -> impl Strategy<Value = Envelope<P>> {
    (
        (tenant(), connection(), connector(), uuid(), uuid()),
        (option::of(uuid()), 1u32.., instant(), option::of(trace())),
        data,
    )
        .prop_map(
            |(
                (tenant, connection, connector, id, correlation),
                (cause, attempt, at, trace),
                data,
            )| {
                let mut envelope = Envelope::new(
                    tenant,
                    connection,
                    connector,
                    CorrelationId::from(correlation),
                    data,
                );
                envelope.id = EventId::from(id);
                envelope.causation_id = cause.map(EventId::from);
                envelope.attempt = attempt;
                envelope.occurred_at = at;
                envelope.trace = trace;
                envelope
            },
        )
}

fn validate_requested_data() -> impl Strategy<Value = ValidateRequested> {
    (
        select(vec![SetupOrigin::Manual, SetupOrigin::Oauth]),
        any::<u64>(),
    )
        .prop_map(|(origin, staged_version)| ValidateRequested {
            origin,
            staged_version,
        })
}

fn save_requested_data() -> impl Strategy<Value = SaveRequested> {
    (any::<u64>(), any::<String>(), any::<String>()).prop_map(|(staged_version, id, name)| {
        SaveRequested {
            staged_version,
            account: AccountInfo { id, name },
        }
    })
}

fn sync_requested_data() -> impl Strategy<Value = SyncRequested> {
    (
        select(vec![
            SyncTrigger::Manual,
            SyncTrigger::Scheduled,
            SyncTrigger::Setup,
        ]),
        option::of(prop::collection::vec(any::<String>(), 0..4)),
        option::of(json().prop_filter("a null cursor reads as absent", |v| !v.is_null())),
    )
        .prop_map(|(trigger, streams, cursor)| SyncRequested {
            trigger,
            streams,
            cursor,
        })
}

fn status_changed_data() -> impl Strategy<Value = StatusChanged> {
    let status = prop_oneof![
        Just(ConnectionStatus::Pending),
        Just(ConnectionStatus::Validating),
        any::<String>().prop_map(|reason| ConnectionStatus::Invalid { reason }),
        Just(ConnectionStatus::Saving),
        (any::<u64>(), any::<u64>(), option::of(any::<String>())).prop_map(
            |(records, pages, stream)| ConnectionStatus::Syncing {
                records,
                pages,
                stream
            }
        ),
        (any::<u64>(), counts(), any::<u64>(), instant(), run_id()).prop_map(
            |(records, counts, duration_ms, last_sync_at, run_id)| ConnectionStatus::Synced {
                records,
                counts,
                duration_ms,
                last_sync_at,
                run_id,
            }
        ),
        (
            any::<u64>(),
            counts(),
            any::<u64>(),
            instant(),
            any::<String>(),
            run_id()
        )
            .prop_map(
                |(records, counts, duration_ms, last_sync_at, reason, run_id)| {
                    ConnectionStatus::Partial {
                        records,
                        counts,
                        duration_ms,
                        last_sync_at,
                        reason,
                        run_id,
                    }
                }
            ),
        (any::<u32>(), instant(), any::<String>()).prop_map(|(attempt, next_at, reason)| {
            ConnectionStatus::Retrying {
                attempt,
                next_at,
                reason,
            }
        }),
        (any::<String>(), any::<bool>())
            .prop_map(|(reason, retryable)| ConnectionStatus::Failed { reason, retryable }),
        any::<String>().prop_map(|reason| ConnectionStatus::ReauthRequired { reason }),
        Just(ConnectionStatus::Disconnected),
    ];
    status.prop_map(|status| StatusChanged { status })
}

fn counts() -> impl Strategy<Value = SyncCounts> {
    (
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
    )
        .prop_map(|(seen, added, updated, deleted, requests)| SyncCounts {
            seen,
            added,
            updated,
            deleted,
            requests,
        })
}

/// A sync run's id, or none as from a producer older than the field.
fn run_id() -> impl Strategy<Value = Option<CorrelationId>> {
    option::of(any::<u128>()).prop_map(|id| id.map(|id| CorrelationId::from(Uuid::from_u128(id))))
}

fn dead_letter_data() -> impl Strategy<Value = DeadLetter> {
    (
        select(Step::ALL.to_vec()),
        any::<String>(),
        any::<u64>(),
        any::<String>(),
        option::of(any::<u64>()),
        any::<Vec<u8>>(),
    )
        .prop_map(
            |(step, reason, delivery_count, original_subject, stream_sequence, original)| {
                DeadLetter {
                    step,
                    reason,
                    delivery_count,
                    original_subject,
                    stream_sequence,
                    original,
                }
            },
        )
}

fn assert_round_trip<P: Payload>(envelope: &Envelope<P>) -> Result<(), TestCaseError> {
    let decoded = Envelope::<P>::decode(&envelope.to_json())
        .map_err(|err| TestCaseError::fail(chain(&err)))?;
    prop_assert_eq!(&decoded, envelope);
    Ok(())
}

/// Candidate ids: arbitrary Unicode, strings of valid characters mixed with
/// those that would break a subject, and valid characters around the length
/// limits.
fn candidate_id() -> impl Strategy<Value = String> {
    prop_oneof![
        1 => any::<String>(),
        1 => "[A-Za-z0-9_.*> \t-]{0,70}",
        2 => "[A-Za-z0-9_-]{0,66}",
    ]
}

proptest! {
    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in any::<Vec<u8>>()) {
        let _ = Envelope::<ValidateRequested>::decode(&bytes);
        let _ = Envelope::<SaveRequested>::decode(&bytes);
        let _ = Envelope::<SyncRequested>::decode(&bytes);
        let _ = Envelope::<StatusChanged>::decode(&bytes);
        let _ = Envelope::<DeadLetter>::decode(&bytes);
        let _ = fleet_events::peek_type(&bytes);
    }

    #[test]
    fn decoding_an_envelope_with_any_field_replaced_never_panics(
        field in select(vec![
            "id", "type", "schema_version", "tenant", "connection", "connector",
            "correlation_id", "causation_id", "attempt", "occurred_at", "trace", "data",
        ]),
        replacement in json(),
    ) {
        let bytes = envelope(validate_requested()).to_json();
        let mut value: Value = serde_json::from_slice(&bytes).unwrap();
        value[field] = replacement;
        let _ = Envelope::<ValidateRequested>::decode(&serde_json::to_vec(&value).unwrap());
    }

    #[test]
    fn accepted_ids_always_make_subjects_with_fixed_tokens_and_no_wildcard(
        candidate in candidate_id(),
    ) {
        let (Ok(tenant), Ok(connection)) =
            (TenantId::parse(&candidate), ConnectionId::parse(&candidate))
        else {
            return Ok(());
        };
        for step in Step::ALL {
            for (subject, tokens) in [
                (subject::for_step(step, &tenant, &connection), 4),
                (subject::dlq(step, &tenant, &connection), 5),
                (subject::schedule(&tenant, &connection), 4),
            ] {
                prop_assert_eq!(subject.split('.').count(), tokens, "{}", subject);
                let well_formed = |t: &str| !t.is_empty() && t != "*" && t != ">";
                prop_assert!(subject.split('.').all(well_formed), "{}", subject);
                prop_assert!(!subject.contains(char::is_whitespace), "{}", subject);
                let parsed = subject::parse(&subject).unwrap();
                prop_assert_eq!((&parsed.tenant, &parsed.connection), (&tenant, &connection));
            }
        }
    }

    #[test]
    fn connector_ids_parse_without_panicking(value in candidate_id()) {
        if let Ok(id) = ConnectorId::parse(&value) {
            prop_assert_eq!(id.as_str(), value.as_str());
        }
    }

    #[test]
    fn validate_requested_envelopes_round_trip(e in envelope_of(validate_requested_data())) {
        assert_round_trip(&e)?;
    }

    #[test]
    fn save_requested_envelopes_round_trip(e in envelope_of(save_requested_data())) {
        assert_round_trip(&e)?;
    }

    #[test]
    fn sync_requested_envelopes_round_trip(e in envelope_of(sync_requested_data())) {
        assert_round_trip(&e)?;
    }

    #[test]
    fn status_changed_envelopes_round_trip(e in envelope_of(status_changed_data())) {
        assert_round_trip(&e)?;
    }

    #[test]
    fn dead_letter_envelopes_round_trip(e in envelope_of(dead_letter_data())) {
        assert_round_trip(&e)?;
    }
}
