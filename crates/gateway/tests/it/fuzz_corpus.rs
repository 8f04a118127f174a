//! The fuzz target `oauth_callback` (fuzz/fuzz_targets/oauth_callback.rs) as an
//! ordinary test: its checks of the OAuth callback's query, cookies and state
//! run on every seed in fuzz/corpus/oauth_callback/ and every input in
//! fuzz/regressions/oauth_callback/, so they run on stable, and a crash the
//! fuzzer found stays fixed.

#[path = "../../../../fuzz/checks/oauth_callback.rs"]
mod checks;
#[path = "../../../../fuzz/checks/replay.rs"]
mod replay;

#[test]
fn oauth_callback_fuzz_seeds_and_regressions_pass_the_fuzz_checks() {
    replay::replay("oauth_callback", checks::check);
}
