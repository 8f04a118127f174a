//! Fuzz target `oauth_callback`: the checks of fuzz/checks/oauth_callback.rs on any bytes.
#![no_main]

#[path = "../checks/oauth_callback.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check(data));
