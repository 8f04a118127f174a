use std::{
    fs,
    path::{Path, PathBuf},
};

use fleet_events::{Family, schemas};

const HOW_TO_UPDATE: &str = "The files in schemas/ are generated from crates/events. \
     If the change is intended, regenerate them with\n\n    \
     UPDATE_SCHEMAS=1 cargo test -p fleet-events --test it schemas\n\n\
     and commit the result with the change to the event types.";

fn schemas_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas")
}

fn render(schema: &serde_json::Value) -> String {
    serde_json::to_string_pretty(schema).unwrap() + "\n"
}

#[test]
#[expect(
    clippy::disallowed_methods,
    reason = "UPDATE_SCHEMAS is a switch of this test, not configuration"
)]
fn committed_schemas_match_the_event_types() {
    let update = std::env::var_os("UPDATE_SCHEMAS").is_some_and(|value| value == "1");
    let generated: Vec<(String, String)> = schemas()
        .into_iter()
        .map(|(name, schema)| (name, render(&schema)))
        .collect();

    let problems =
        fleet_testkit::generated::compare_or_update(&schemas_dir(), "schemas", &generated, update);

    assert!(
        problems.is_empty(),
        "{}\n\n{HOW_TO_UPDATE}",
        problems.join("\n")
    );
}

#[test]
fn every_schema_pins_its_event_type_and_schema_version() {
    for (name, schema) in schemas() {
        let event_type = name.trim_end_matches(".json");
        assert_eq!(schema["title"], event_type, "{name}");
        assert_eq!(schema["properties"]["type"]["const"], event_type, "{name}");
        assert_eq!(
            schema["properties"]["schema_version"]["const"],
            fleet_events::SCHEMA_VERSION,
            "{name}"
        );
        assert_eq!(
            schema["$schema"], "https://json-schema.org/draft/2020-12/schema",
            "{name}"
        );
    }
}

fn asyncapi() -> String {
    fs::read_to_string(schemas_dir().join("asyncapi.yaml")).unwrap()
}

#[test]
fn asyncapi_references_every_event_schema() {
    let spec = asyncapi();
    let missing: Vec<String> = schemas()
        .into_iter()
        .map(|(name, _)| format!("$ref: './{name}'"))
        .filter(|reference| !spec.contains(reference.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "schemas/asyncapi.yaml lacks a message with {missing:?}: describe the new event \
         (message, channel, who sends and receives it) there"
    );
}

#[test]
fn asyncapi_has_a_channel_for_every_subject_family() {
    let spec = asyncapi();
    for family in Family::ALL {
        let address = match family {
            Family::Dlq => "connector.dlq.{step}.{tenant}.{connection}".to_owned(),
            other => format!("connector.{}.{{tenant}}.{{connection}}", other.as_str()),
        };
        assert!(
            spec.contains(&format!("address: '{address}'")),
            "schemas/asyncapi.yaml has no channel with address '{address}'"
        );
    }
}
