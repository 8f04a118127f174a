//! Fuzz target `envelope`: the checks of fuzz/checks/envelope.rs on any bytes.
#![no_main]

#[path = "../checks/envelope.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check(data));
