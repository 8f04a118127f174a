//! The fuzz target `envelope` (fuzz/fuzz_targets/envelope.rs) as an ordinary
//! test: its checks of envelope decoding and subject parsing run on every seed
//! in fuzz/corpus/envelope/ and every input in fuzz/regressions/envelope/, so
//! they run on stable, and a crash the fuzzer found stays fixed.

#[path = "../../../../fuzz/checks/envelope.rs"]
mod checks;
#[path = "../../../../fuzz/checks/replay.rs"]
mod replay;

#[test]
fn envelope_fuzz_seeds_and_regressions_pass_the_fuzz_checks() {
    replay::replay("envelope", checks::check);
}
