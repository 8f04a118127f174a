//! The fuzz target `catalog` (fuzz/fuzz_targets/catalog.rs) as an ordinary
//! test: its checks of catalog override files run on every seed in
//! fuzz/corpus/catalog/ and every input in fuzz/regressions/catalog/, so they
//! run on stable, and a crash the fuzzer found stays fixed.

#[path = "../../../../fuzz/checks/catalog.rs"]
mod checks;
#[path = "../../../../fuzz/checks/replay.rs"]
mod replay;

#[test]
fn catalog_fuzz_seeds_and_regressions_pass_the_fuzz_checks() {
    replay::replay("catalog", checks::check);
}
