//! The gateway over HTTP against real NATS, OpenBao and PostgreSQL, with the
//! workers running and the provider simulator answering.

mod helpers;

mod connections;
mod dashboard;
mod fuzz_corpus;
mod input;
mod isolation;
mod limits;
mod oauth;
mod real_oauth;
mod slow_clients;
mod tokens;
mod typed_in;
mod webhooks;
