//! The checks of the `envelope` fuzz target, shared with fleet-events'
//! corpus replay test (`crates/events/tests/it/fuzz_corpus.rs`).
//!
//! Whatever the bytes, `peek_type`, `Envelope::<P>::decode` for every
//! payload type and `subject::parse` return instead of panicking. An
//! envelope that decodes has the `type` that `peek_type` reads (so it
//! decodes as no other payload type), re-encodes to JSON that decodes to an
//! equal envelope, and is published on a subject of its family that parses
//! back to its tenant and connection. A subject that parses is rebuilt
//! exactly from its parts.

use fleet_events::{
    DeadLetter, Envelope, Family, Payload, SaveRequested, StatusChanged, SyncRequested,
    ValidateRequested, peek_type, subject,
};

/// Runs every check on `data`; panics on the first that fails.
pub(crate) fn check(data: &[u8]) {
    let peeked = peek_type(data).ok();
    decode::<ValidateRequested>(data, peeked.as_deref());
    decode::<SaveRequested>(data, peeked.as_deref());
    decode::<SyncRequested>(data, peeked.as_deref());
    decode::<StatusChanged>(data, peeked.as_deref());
    decode::<DeadLetter>(data, peeked.as_deref());
    if let Ok(text) = std::str::from_utf8(data) {
        parse_subject(text);
    }
}

fn decode<P: Payload>(data: &[u8], peeked: Option<&str>) {
    let Ok(envelope) = Envelope::<P>::decode(data) else {
        return;
    };
    // What decodes is a JSON object whose `type` is this payload's: not an
    // array of the fields in order, nor bytes that are not UTF-8 in an
    // unknown field's value (fuzz/regressions/envelope/).
    assert_eq!(
        peeked,
        Some(P::TYPE),
        "decoded as {} but peek_type reads another type",
        P::TYPE
    );
    let json = envelope.to_json();
    let again = Envelope::<P>::decode(&json).unwrap_or_else(|error| {
        panic!(
            "a decoded {} re-encodes to JSON that does not decode: {error}",
            P::TYPE
        )
    });
    assert_eq!(
        again,
        envelope,
        "a decoded {} changed in a re-encode",
        P::TYPE
    );
    let parsed = subject::parse(&envelope.subject()).unwrap_or_else(|error| {
        panic!(
            "the subject of a decoded {} does not parse: {error}",
            P::TYPE
        )
    });
    assert_eq!(parsed.family, P::FAMILY, "{}", P::TYPE);
    assert_eq!(parsed.tenant, envelope.tenant, "{}", P::TYPE);
    assert_eq!(parsed.connection, envelope.connection, "{}", P::TYPE);
}

fn parse_subject(text: &str) {
    let Ok(parsed) = subject::parse(text) else {
        return;
    };
    let (tenant, connection) = (&parsed.tenant, &parsed.connection);
    let rebuilt = match parsed.family {
        Family::Dlq => subject::dlq(parsed.step, tenant, connection),
        Family::Schedule => subject::schedule(tenant, connection),
        family => {
            assert_eq!(Family::from(parsed.step), family, "{text:?}");
            subject::for_step(parsed.step, tenant, connection)
        }
    };
    assert_eq!(
        rebuilt, text,
        "a parsed subject is not rebuilt from its parts"
    );
}
