//! The setup and sync chain end to end: real nats-server, OpenBao and
//! PostgreSQL, and the provider simulator.

mod helpers;

mod chain;
mod exact;
mod generic;
mod health;
mod integrity;
mod meter;
mod publishers;
mod quota;
mod refresh;
mod slots;
mod trello;
mod typed_in;
mod webhooks;
