//! The checks of the `bridge_client` fuzz target, shared with fleet-bridge's
//! corpus replay test (`crates/bridge/tests/it/fuzz_corpus.rs`).
//!
//! The input is what a client can send: a WebSocket text message (the
//! bridge reads nothing else), or an SSE `Last-Event-ID`. Whatever it is,
//! parsing returns instead of panicking; an `auth` message's `Debug` never
//! shows its token; the ids and position it carries survive a round trip
//! through their text forms; and a server message that parses re-encodes
//! to an equal one.

use fleet_bridge::protocol::{ClientMessage, Position, ServerMessage};
use fleet_events::ConnectionId;
use secrecy::SecretString;

/// Runs every check on `data`; panics on the first that fails.
pub(crate) fn check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        // A text frame is UTF-8, and so is a header the bridge reads.
        return;
    };
    client_message(text);
    server_message(text);
    if let Ok(position) = text.parse::<Position>() {
        position_round_trips(&position);
    }
}

fn client_message(text: &str) {
    let Ok(message) = serde_json::from_str::<ClientMessage>(text) else {
        return;
    };
    let ClientMessage::Auth {
        connections, since, ..
    } = &message;
    let with_another_token = ClientMessage::Auth {
        token: SecretString::from("another token"),
        connections: connections.clone(),
        since: since.clone(),
    };
    assert_eq!(
        format!("{message:?}"),
        format!("{with_another_token:?}"),
        "the Debug output of an auth message depends on its token"
    );
    for id in connections.iter().flatten() {
        assert_eq!(ConnectionId::parse(id.as_str()).ok().as_ref(), Some(id));
    }
    if let Some(since) = since {
        position_round_trips(since);
    }
}

fn server_message(text: &str) {
    let Ok(message) = serde_json::from_str::<ServerMessage>(text) else {
        return;
    };
    let json = message.to_json();
    let again: ServerMessage = serde_json::from_str(&json).unwrap_or_else(|error| {
        panic!("a server message re-encodes to {json:?}, which does not parse: {error}")
    });
    assert_eq!(again, message, "a server message changed in a re-encode");
}

fn position_round_trips(position: &Position) {
    let text = position.to_string();
    assert_eq!(
        text.parse::<Position>().ok().as_ref(),
        Some(position),
        "position {text:?} does not parse back"
    );
}
