//! The fuzz target `bridge_client` (fuzz/fuzz_targets/bridge_client.rs) as an
//! ordinary test: its checks of the messages a client sends run on every seed
//! in fuzz/corpus/bridge_client/ and every input in
//! fuzz/regressions/bridge_client/, so they run on stable, and a crash the
//! fuzzer found stays fixed.

#[path = "../../../../fuzz/checks/bridge_client.rs"]
mod checks;
#[path = "../../../../fuzz/checks/replay.rs"]
mod replay;

#[test]
fn bridge_client_fuzz_seeds_and_regressions_pass_the_fuzz_checks() {
    replay::replay("bridge_client", checks::check);
}
