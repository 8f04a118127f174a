use std::error::Error;

use fleet_events::{
    AccountInfo, ConnectionId, ConnectionStatus, ConnectorId, CorrelationId, DeadLetter, Envelope,
    Payload, SaveRequested, SetupOrigin, StatusChanged, Step, SyncRequested, SyncTrigger, TenantId,
    TraceContext, ValidateRequested,
};
use serde_json::json;

/// An envelope for `acme`'s WordPress connection `c-1`, with a trace.
pub(crate) fn envelope<P: Payload>(data: P) -> Envelope<P> {
    let mut envelope = Envelope::new(
        TenantId::parse("acme").unwrap(),
        ConnectionId::parse("c-1").unwrap(),
        ConnectorId::parse("wordpress").unwrap(),
        CorrelationId::new(),
        data,
    );
    envelope.trace = Some(
        TraceContext::new(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into(),
            Some("fleet=1".into()),
        )
        .unwrap(),
    );
    envelope
}

pub(crate) fn validate_requested() -> ValidateRequested {
    ValidateRequested {
        origin: SetupOrigin::Oauth,
        staged_version: 3,
    }
}

pub(crate) fn save_requested() -> SaveRequested {
    SaveRequested {
        staged_version: 3,
        account: AccountInfo {
            id: "site-42".into(),
            name: "Acme blog".into(),
        },
    }
}

pub(crate) fn sync_requested() -> SyncRequested {
    SyncRequested {
        trigger: SyncTrigger::Manual,
        streams: Some(vec!["posts".into()]),
        cursor: Some(json!({"after": "2025-01-01", "page": 2})),
    }
}

pub(crate) fn status_changed() -> StatusChanged {
    StatusChanged {
        status: ConnectionStatus::Retrying {
            attempt: 2,
            next_at: "2025-01-01T00:00:30Z".parse().unwrap(),
            reason: "provider rate-limited the request".into(),
        },
    }
}

pub(crate) fn dead_letter() -> DeadLetter {
    DeadLetter {
        step: Step::Validate,
        reason: "event is not valid JSON".into(),
        delivery_count: 1,
        original_subject: "connector.validate.acme.c-1".into(),
        stream_sequence: Some(9),
        original: b"\xff not json".to_vec(),
    }
}

/// The error and its sources, joined as `a: b: c`, as a log line prints them.
pub(crate) fn chain(error: &dyn Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
