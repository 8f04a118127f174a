//! Integration tests of fleet-bridge against a real nats-server and
//! PostgreSQL: authentication, isolation, snapshots, replay, slow clients
//! and restarts, over WebSocket and SSE.

mod auth;
mod helpers;
mod isolation;
mod recovery;
mod schemas;
mod slow;
mod snapshot;
mod sse;
