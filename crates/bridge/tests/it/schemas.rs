use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use fleet_bridge::schemas;

const HOW_TO_UPDATE: &str = "The files in schemas/bridge/ are generated from \
     crates/bridge/src/protocol.rs. If the change is intended, regenerate them with\n\n    \
     UPDATE_SCHEMAS=1 cargo test -p fleet-bridge --test it schemas\n\n\
     and commit the result with the change to the protocol (and docs/bridge.md).";

fn schemas_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas/bridge")
}

#[test]
#[expect(
    clippy::disallowed_methods,
    reason = "UPDATE_SCHEMAS is a switch of this test, not configuration"
)]
fn committed_schemas_match_the_protocol_types() {
    let update = std::env::var_os("UPDATE_SCHEMAS").is_some_and(|value| value == "1");
    let dir = schemas_dir();
    let mut problems = Vec::new();

    let generated = schemas();
    for (name, schema) in &generated {
        let path = dir.join(name);
        let expected = serde_json::to_string_pretty(schema).unwrap() + "\n";
        let committed = fs::read_to_string(&path).ok();
        if committed.as_deref() == Some(expected.as_str()) {
            continue;
        }
        if update {
            fs::create_dir_all(&dir).unwrap();
            fs::write(&path, expected).unwrap();
        } else if committed.is_none() {
            problems.push(format!("schemas/bridge/{name} is missing"));
        } else {
            problems.push(format!(
                "schemas/bridge/{name} differs from the generated schema"
            ));
        }
    }

    let names: BTreeSet<&str> = generated.iter().map(|(name, _)| name.as_str()).collect();
    for entry in fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if names.contains(name.as_str()) {
            continue;
        }
        if update {
            fs::remove_file(&path).unwrap();
        } else {
            problems.push(format!("schemas/bridge/{name} belongs to no protocol type"));
        }
    }

    assert!(
        problems.is_empty(),
        "{}\n\n{HOW_TO_UPDATE}",
        problems.join("\n")
    );
}

#[test]
fn every_message_type_of_the_protocol_is_in_the_schemas() {
    let all = schemas()
        .into_iter()
        .map(|(_, schema)| schema.to_string())
        .collect::<String>();
    for message in [
        "auth",
        "snapshot",
        "event",
        "resync",
        "too old",
        "epoch changed",
    ] {
        assert!(all.contains(&format!("\"{message}\"")), "{message}");
    }
}
