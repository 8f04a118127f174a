//! The `fleet` binary as operators run it: separate worker processes
//! against real nats-server, OpenBao and PostgreSQL, killed and restarted;
//! `fleet token`; each process's health, readiness, metrics and traces; the
//! compose file and image users deploy with; `fleet dlq`.

mod helpers;

mod compose;
mod dlq;
mod ops;
mod otel;
mod processes;
mod token;
mod trace_scan;
