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
    let generated: Vec<(String, String)> = schemas()
        .into_iter()
        .map(|(name, schema)| (name, serde_json::to_string_pretty(&schema).unwrap() + "\n"))
        .collect();

    let problems = fleet_testkit::generated::compare_or_update(
        &schemas_dir(),
        "schemas/bridge",
        &generated,
        update,
    );

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
