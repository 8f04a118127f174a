//! Committed files generated from code (JSON Schemas), checked against
//! what the code generates now.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

/// Compares the `.json` files of `dir` (shown in messages as `shown`, such
/// as `schemas/bridge`) with `generated`, name and text. Returns what
/// differs: a file missing, one whose text differs, one that nothing
/// generates. With `update`, it writes and removes files instead, and
/// returns nothing.
///
/// # Panics
///
/// When `dir` cannot be read or, with `update`, written.
pub fn compare_or_update(
    dir: &Path,
    shown: &str,
    generated: &[(String, String)],
    update: bool,
) -> Vec<String> {
    let mut problems = Vec::new();
    for (name, expected) in generated {
        let path = dir.join(name);
        let committed = fs::read_to_string(&path).ok();
        if committed.as_deref() == Some(expected.as_str()) {
            continue;
        }
        if update {
            fs::create_dir_all(dir).expect("the directory can be created");
            fs::write(&path, expected).expect("the file can be written");
        } else if committed.is_none() {
            problems.push(format!("{shown}/{name} is missing"));
        } else {
            problems.push(format!("{shown}/{name} differs from the generated one"));
        }
    }
    let names: BTreeSet<&str> = generated.iter().map(|(name, _)| name.as_str()).collect();
    for entry in fs::read_dir(dir).expect("the directory can be read") {
        let path = entry.expect("a directory entry").path();
        let name = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !name.ends_with(".json") || names.contains(name.as_str()) {
            continue;
        }
        if update {
            fs::remove_file(&path).expect("the file can be removed");
        } else {
            problems.push(format!("{shown}/{name} is generated from nothing"));
        }
    }
    problems
}
