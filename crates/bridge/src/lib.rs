//! The bridge of connector-fleet: live connection status for dashboards,
//! over WebSocket (`GET /ws`) and Server-Sent Events (`GET /events`).
//!
//! One ordered JetStream consumer per process reads every
//! `connector.status.>` event from the `CONNECTOR_STATUS` stream and fans it
//! out in memory to the sessions of its tenant. A session authenticates with
//! a tenant token ([`fleet_auth`]), gets a snapshot of its connections from
//! Postgres as of a stream position, then every event after that position,
//! each with its position. A client that reconnects with its last position
//! gets exactly the events it missed, replayed from the stream, or a
//! `resync` and a fresh snapshot when the stream no longer holds them all
//! (Centrifugo's recovery: whole or refused, never partial). docs/bridge.md
//! describes the protocol; `schemas/bridge/` holds its JSON Schemas.
//!
//! Each session has a bounded queue; progress events of one connection
//! coalesce in it, and a session whose queue still overflows is closed
//! (4008), so a slow client never slows the reader or other sessions.
//!
//! The bridge faces the internet, so every client is held to limits, each
//! in [`Config`]: a deadline for request headers and for authenticating, an
//! idle timeout, a few KiB before `auth` (1009 beyond, never buffered),
//! sessions per token and per client address (4029, or 429 for SSE), and
//! the token's own expiry, at which its session is closed (4003; an SSE
//! stream ends).
//!
//! What it does not do: write anything (its NATS user may only read the
//! stream), share state between processes, or read the environment.
//!
//! Start from:
//! - [`Bridge`]: [`build`](Bridge::build) with a [`Config`], then
//!   [`run`](Bridge::run) on a bound listener; [`app`] for the routes alone;
//! - [`Handle`]: session counters of a running bridge;
//! - [`raise_open_files_limit`]: one socket per session, so a process that
//!   serves thousands raises its soft limit first;
//! - [`protocol`]: the messages, [`close_code`]s and [`schemas`].

#![warn(missing_docs)]

mod admission;
mod bridge;
mod config;
mod connection;
mod error;
mod health;
mod hub;
mod limits;
pub mod protocol;
mod queue;
mod reader;
mod sse;
mod ws;

pub use bridge::{Bridge, Handle, State, Stats, app};
pub use config::Config;
pub use error::Error;
pub use limits::raise_open_files_limit;
pub use protocol::{close_code, schemas};
