//! The `fleet` binary as operators run it: separate worker processes
//! against real nats-server, OpenBao and PostgreSQL, killed and restarted;
//! `fleet token`; each process's health, readiness and metrics; the
//! compose file and image users deploy with; `fleet dlq`; the Grafana
//! dashboard and alert rules against the documented metrics.

mod helpers;

mod compose;
mod dlq;
mod observability;
mod ops;
mod processes;
mod token;
mod trace_scan;
