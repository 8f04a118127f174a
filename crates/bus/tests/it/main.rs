//! Integration tests of fleet-bus against a real nats-server.

mod helpers;

mod connect;
mod definitions;
mod permissions;
mod publish;
mod schedule;
mod tls;
mod worker;
