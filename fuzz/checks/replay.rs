//! Replays a fuzz target's committed inputs through its checks, as an
//! ordinary test on stable: every file of `fuzz/corpus/<target>/` (the
//! seeds) and of `fuzz/regressions/<target>/` (inputs that once failed).
//! Included by each fuzzed crate's `tests/it/fuzz_corpus.rs`.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

/// Runs `check` on every seed and regression input of `target`; fails
/// naming every input whose check panics.
pub(crate) fn replay(target: &str, check: fn(&[u8])) {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let seeds = files(&fuzz.join("corpus").join(target));
    assert!(
        !seeds.is_empty(),
        "fuzz/corpus/{target}/ holds no seed inputs"
    );
    let regressions = files(&fuzz.join("regressions").join(target));
    let failures: Vec<String> = seeds
        .iter()
        .chain(&regressions)
        .filter_map(|path| {
            let data = std::fs::read(path)
                .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
            let outcome = catch_unwind(AssertUnwindSafe(|| check(&data)));
            outcome
                .err()
                .map(|panic| format!("{}: {}", path.display(), message(panic.as_ref())))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} inputs of the fuzz target {target} fail its checks:\n{}",
        failures.len(),
        seeds.len() + regressions.len(),
        failures.join("\n")
    );
}

/// The files of `dir`, sorted; none when it does not exist.
fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

fn message(panic: &(dyn Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|text| (*text).to_owned()))
        .unwrap_or_else(|| "a panic without a message".to_owned())
}
