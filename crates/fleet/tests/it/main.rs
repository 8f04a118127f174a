//! The `fleet` binary as operators run it: separate worker processes
//! against real nats-server, OpenBao and PostgreSQL, killed and restarted;
//! `fleet token`.

mod helpers;

mod compose;
mod processes;
mod token;
mod trace_scan;
