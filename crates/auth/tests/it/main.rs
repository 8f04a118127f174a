//! Integration tests of `fleet-auth`: the issuer's key set, served over
//! HTTP on loopback.

mod helpers;
mod key_set;
