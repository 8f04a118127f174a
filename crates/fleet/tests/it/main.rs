//! The `fleet` binary as operators run it: separate worker processes
//! against real nats-server (one, or a three-node cluster), OpenBao and
//! PostgreSQL, killed and restarted;
//! `fleet token`; each process's health, readiness, metrics and traces; the
//! compose file and image users deploy with; `fleet dlq` and the other
//! operator commands; the Grafana dashboard and alert rules against the
//! documented metrics.

mod helpers;

mod catalog_import;
mod chaos;
mod cluster;
mod compose;
mod dlq;
mod observability;
mod operator;
mod ops;
mod otel;
mod processes;
mod token;
mod trace_scan;
