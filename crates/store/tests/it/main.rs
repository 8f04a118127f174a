//! Integration tests of fleet-store against a real PostgreSQL, started by
//! fleet-testkit, with a fresh database per test.

mod connections;
mod credentials;
mod health;
mod helpers;
mod migrations;
mod records;
mod refresh;
mod status;
mod sync_runs;
mod sync_slots;
mod tenant_records;
mod webhooks;
