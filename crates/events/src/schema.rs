use schemars::SchemaGenerator;
use serde_json::Value;

use crate::{
    DeadLetter, Envelope, HealthChanged, Payload, SaveRequested, StatusChanged, SyncRequested,
    ValidateRequested,
};

/// One JSON Schema (draft 2020-12) per event type, each describing the whole
/// envelope with that payload, named `<type>.json` as in `schemas/`.
///
/// Object keys are sorted whatever serde_json's features, so the files are
/// the same from every build.
pub fn schemas() -> Vec<(String, Value)> {
    vec![
        schema::<ValidateRequested>(),
        schema::<SaveRequested>(),
        schema::<SyncRequested>(),
        schema::<StatusChanged>(),
        schema::<DeadLetter>(),
        schema::<HealthChanged>(),
    ]
}

fn schema<P: Payload>() -> (String, Value) {
    let mut schema = SchemaGenerator::default().into_root_schema_for::<Envelope<P>>();
    schema.insert("title".to_owned(), P::TYPE.into());
    let mut value = schema.to_value();
    value.sort_all_objects();
    (format!("{}.json", P::TYPE), value)
}
