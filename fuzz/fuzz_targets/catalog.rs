//! Fuzz target `catalog`: the checks of fuzz/checks/catalog.rs on any bytes.
#![no_main]

#[path = "../checks/catalog.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check(data));
