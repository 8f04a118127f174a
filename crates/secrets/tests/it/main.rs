//! Integration tests of the credential store against a real OpenBao, one server per test.

mod auth;
mod availability;
mod helpers;
mod lifecycle;
mod policies;
mod redaction;
mod renewal;
