//! Fuzz target `bridge_client`: the checks of fuzz/checks/bridge_client.rs on any bytes.
#![no_main]

#[path = "../checks/bridge_client.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check(data));
