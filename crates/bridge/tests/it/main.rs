//! Integration tests of fleet-bridge against a real nats-server and
//! PostgreSQL: authentication, isolation, snapshots, replay, slow clients,
//! restarts, and the limits on what a client may hold and send, over
//! WebSocket and SSE.

mod auth;
mod expiry;
mod frames;
mod fuzz_corpus;
mod health;
mod helpers;
mod http;
mod isolation;
mod recovery;
mod schemas;
mod sessions;
mod slow;
mod snapshot;
mod sse;
