//! The JSON messages of the bridge protocol, and their JSON Schemas.
//!
//! docs/bridge.md describes the conversation; `schemas/bridge/` holds the
//! schemas generated from these types, checked for drift by a test.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use fleet_events::{
    ConnectionId, ConnectionStatus, ConnectorId, Envelope, EventId, HealthChanged, StatusChanged,
};
use schemars::{JsonSchema, SchemaGenerator};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// WebSocket close codes of the bridge.
pub mod close_code {
    /// The token is missing, invalid or expired, or the first message is not `auth`; the
    /// reason says which. Get a new token before reconnecting.
    pub const AUTH_FAILED: u16 = 4001;
    /// No `auth` message arrived within the auth timeout.
    pub const AUTH_TIMEOUT: u16 = 4002;
    /// The session's token expired (at its `exp`, plus the configured leeway). Get a new
    /// token, then reconnect with the last position.
    pub const TOKEN_EXPIRED: u16 = 4003;
    /// Too many sessions are open with the same token, or from the same address; the reason
    /// says which. Close one before opening another.
    pub const TOO_MANY_SESSIONS: u16 = 4029;
    /// The client sent a frame or message larger than the bridge accepts: a few KiB before
    /// `auth`, more after it. The reason gives the limit.
    pub const MESSAGE_TOO_BIG: u16 = 1009;
    /// The client read too slowly and its queue overflowed; reconnect with the last position.
    pub const SLOW_CONSUMER: u16 = 4008;
    /// The bridge is shutting down; reconnect (the load balancer picks another process) with
    /// the last position.
    pub const GOING_AWAY: u16 = 4010;
    /// The bridge could not open the session (Postgres or NATS failed); reconnect later.
    pub const INTERNAL_ERROR: u16 = 1011;
}

/// A point in the status stream: the stream's epoch and a sequence in it.
///
/// The epoch changes when the stream is recreated, so sequences of
/// different epochs are not comparable. In SSE it is written
/// `<epoch>:<seq>` (see [`Position::from_str`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Position {
    /// Identity of the stream: its creation time, in nanoseconds since the Unix epoch, as a
    /// decimal string.
    pub epoch: String,
    /// Stream sequence of the last event the position covers; 0 before the first.
    pub seq: u64,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.epoch, self.seq)
    }
}

/// A `Last-Event-ID` that is not `<epoch>:<seq>`.
#[derive(Debug, thiserror::Error)]
#[error("a position is written <epoch>:<seq>, with a decimal sequence")]
pub struct InvalidPosition;

impl FromStr for Position {
    type Err = InvalidPosition;

    fn from_str(value: &str) -> Result<Self, InvalidPosition> {
        let (epoch, seq) = value.rsplit_once(':').ok_or(InvalidPosition)?;
        if epoch.is_empty() {
            return Err(InvalidPosition);
        }
        Ok(Self {
            epoch: epoch.to_owned(),
            seq: seq.parse().map_err(|_| InvalidPosition)?,
        })
    }
}

/// What a WebSocket client sends. The first message must be `auth`; the
/// bridge ignores any later text message.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    /// Authenticates the session and says where to start.
    Auth {
        /// The tenant token, as the gateway issues it.
        #[schemars(with = "String")]
        token: SecretString,
        /// Only these connections; absent means all the token allows.
        #[serde(default)]
        connections: Option<Vec<ConnectionId>>,
        /// The position of the last message received before a reconnect; absent on a first
        /// connect, which starts with a snapshot.
        #[serde(default)]
        since: Option<Position>,
    },
}

/// What the bridge sends: one JSON text frame each (WebSocket), or the
/// `data` of an SSE event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// The current status of the session's connections, as of `position`. Events after
    /// `position` follow.
    Snapshot(Snapshot),
    /// One status change, at `position`.
    Event {
        /// Position of this event; send it back as `since` after a reconnect.
        position: Position,
        /// The status event, exactly as on the `connector.status.changed` subject.
        event: Box<Envelope<StatusChanged>>,
    },
    /// A connection became degraded (its provider calls failed in a row) or recovered. Live
    /// only: it has no position, is not replayed after a reconnect, and leaves the position
    /// to send back as it was.
    Health {
        /// The health event, exactly as on the `connector.health.changed` subject.
        event: Box<Envelope<HealthChanged>>,
    },
    /// The requested `since` cannot be replayed whole; a snapshot follows.
    Resync {
        /// Why.
        reason: ResyncReason,
    },
}

/// The status of a session's connections at one position.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Snapshot {
    /// The position the snapshot reflects.
    pub position: Position,
    /// The connections, oldest first.
    pub connections: Vec<ConnectionSnapshot>,
}

/// One connection in a snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ConnectionSnapshot {
    /// Connection id.
    pub id: ConnectionId,
    /// Provider.
    pub connector: ConnectorId,
    /// Name the user gave it.
    pub display_name: String,
    /// Last status, with its details.
    pub status: ConnectionStatus,
    /// `occurred_at` of the event that set `status` (to the microsecond), absent when no
    /// event has set one yet. An `event` of this connection that is older, in the order
    /// (`occurred_at`, `id`), was overtaken by this status: keep the status.
    pub status_at: Option<DateTime<Utc>>,
    /// `id` of the event that set `status`, which breaks ties of `status_at`.
    pub status_event: Option<EventId>,
    /// When the last successful sync completed.
    pub last_sync_at: Option<DateTime<Utc>>,
    /// Reason of the last failure, safe to show; cleared by a successful sync.
    pub last_error: Option<String>,
    /// Records stored by the last successful sync.
    pub records_total: u64,
}

impl From<fleet_store::Connection> for ConnectionSnapshot {
    fn from(row: fleet_store::Connection) -> Self {
        Self {
            id: row.id,
            connector: row.connector,
            display_name: row.display_name,
            status: row.status,
            status_at: row.last_status_at,
            status_event: row.last_status_event,
            last_sync_at: row.last_sync_at,
            last_error: row.last_error,
            records_total: row.records_total,
        }
    }
}

/// Why a `since` position cannot be replayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ResyncReason {
    /// The stream no longer holds every event after the position.
    #[serde(rename = "too old")]
    TooOld,
    /// The position belongs to a stream that has since been recreated.
    #[serde(rename = "epoch changed")]
    EpochChanged,
}

impl ServerMessage {
    /// The message as a compact JSON text.
    ///
    /// # Panics
    ///
    /// Never: every field serializes infallibly.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("bridge messages always serialize")
    }
}

/// The JSON Schemas (draft 2020-12) of the protocol, named as in
/// `schemas/bridge/`: `client-message.json` and `server-message.json`.
pub fn schemas() -> Vec<(String, Value)> {
    vec![
        schema::<ClientMessage>("client-message.json", "bridge client message"),
        schema::<ServerMessage>("server-message.json", "bridge server message"),
    ]
}

fn schema<T: JsonSchema>(name: &str, title: &str) -> (String, Value) {
    let mut schema = SchemaGenerator::default().into_root_schema_for::<T>();
    schema.insert("title".to_owned(), title.into());
    let mut value = schema.to_value();
    value.sort_all_objects();
    (name.to_owned(), value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_position_round_trips_through_its_sse_form() {
        let position = Position {
            epoch: "1735689600000000000".into(),
            seq: 42,
        };

        assert_eq!(position.to_string(), "1735689600000000000:42");
        assert_eq!(position.to_string().parse::<Position>().unwrap(), position);
    }

    #[test]
    fn malformed_positions_are_refused() {
        for value in ["", "42", ":42", "e:", "e:-1", "e:x"] {
            assert!(value.parse::<Position>().is_err(), "{value:?}");
        }
    }

    #[test]
    fn resync_reasons_are_the_documented_words() {
        let message = ServerMessage::Resync {
            reason: ResyncReason::TooOld,
        };

        assert_eq!(message.to_json(), r#"{"type":"resync","reason":"too old"}"#);
    }

    #[test]
    fn the_auth_message_does_not_show_its_token_in_debug_output() {
        let message: ClientMessage =
            serde_json::from_str(r#"{"type":"auth","token":"s3cret"}"#).unwrap();

        assert!(!format!("{message:?}").contains("s3cret"));
    }
}
