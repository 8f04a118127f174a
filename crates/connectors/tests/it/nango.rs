//! The importer of Nango's provider definitions against the real file of
//! the pinned npm package, which `scripts/setup` unpacks into
//! `.tools/nango/package/providers.yaml`.

use std::{collections::BTreeMap, path::PathBuf};

use fleet_connectors::{
    Catalog, Config, Registry,
    catalog::{
        Auth,
        nango::{self, Count},
    },
};

/// The pinned definitions file, if `scripts/setup` has fetched it.
fn definitions() -> Option<String> {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.tools/nango/package/providers.yaml");
    match std::fs::read_to_string(&path) {
        Ok(text) => Some(text),
        Err(error) => {
            eprintln!(
                "SKIPPED: {} cannot be read ({error}); scripts/setup fetches it",
                path.display()
            );
            None
        }
    }
}

#[test]
fn the_pinned_nango_definitions_import_and_every_file_loads_through_the_catalog() {
    let Some(yaml) = definitions() else {
        return;
    };

    let import = nango::import(&yaml, None).unwrap();

    let counts = import.counts();
    println!("auth mode: imported (ready to validate) / skipped");
    for (mode, count) in &counts {
        println!(
            "  {mode}: {} ({}) / {}",
            count.imported, count.ready, count.skipped
        );
    }
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    for skipped in &import.skipped {
        *reasons
            .entry(format!("{}: {}", skipped.auth_mode, skipped.reason))
            .or_default() += 1;
    }
    for (reason, n) in &reasons {
        println!("  {n} x {reason}");
    }
    let dir = tempfile::tempdir().unwrap();
    for entry in &import.imported {
        std::fs::write(dir.path().join(format!("{}.toml", entry.id)), &entry.text).unwrap();
    }
    let catalog = Catalog::with_overrides(dir.path()).unwrap();
    for entry in &import.imported {
        let loaded = catalog.get(&entry.id).unwrap();
        assert_eq!(
            loaded.file,
            dir.path()
                .join(format!("{}.toml", entry.id))
                .display()
                .to_string()
        );
    }
    let oauth2 = catalog
        .iter()
        .filter(|e| matches!(e.auth, Auth::OAuth2(_)))
        .count();
    assert!(oauth2 >= counts["OAUTH2"].imported);
    // The entries that declare auth_mode OAUTH2 themselves (not through
    // an alias): the 302 of the 0.71.10 file.
    let raw: serde_json::Value = serde_norway::from_str(&yaml).unwrap();
    let own_oauth2: Vec<&String> = raw
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, entry)| entry["auth_mode"] == "OAUTH2")
        .map(|(id, _)| id)
        .collect();
    let own_imported = import
        .imported
        .iter()
        .filter(|e| own_oauth2.iter().any(|id| *id == e.id.as_str()))
        .count();
    println!(
        "entries declaring auth_mode OAUTH2: {own_imported} of {} imported",
        own_oauth2.len()
    );
    assert!(
        own_imported >= 290,
        "{own_imported} of the entries declaring OAUTH2 imported, fewer than 290"
    );
    let floor = |mode: &str| counts.get(mode).copied().unwrap_or_default();
    // Aliases included. Nango declares a validation endpoint for one; the
    // others are checked at their token endpoint only (`token_only`). An
    // entry whose setting chooses a host freely (no pattern, or one that
    // fixes no domain), or that uses a value Nango fills in
    // itself, imports not ready: the operator fixes the value
    // (`[[settings]]` `value`).
    assert_floor(&floor("OAUTH2"), 348, 325);
    // API-key and Basic entries without a GET to validate against import
    // not ready; client-credentials ones are checked at the token endpoint.
    assert_floor(&floor("API_KEY"), 330, 198);
    assert_floor(&floor("BASIC"), 99, 51);
    assert_floor(&floor("OAUTH2_CC"), 96, 83);

    // The files that name an endpoint to validate against start a fleet:
    // every one of them gets its connector.
    let ready = tempfile::tempdir().unwrap();
    let mut ids = Vec::new();
    for entry in &import.imported {
        if !entry.ready {
            continue;
        }
        std::fs::write(ready.path().join(format!("{}.toml", entry.id)), &entry.text).unwrap();
        ids.push(entry.id.clone());
    }
    let registry = Registry::new(&Config {
        catalog_dir: Some(ready.path().to_owned()),
        ..Config::default()
    })
    .unwrap();
    for id in &ids {
        let connector = registry.get(id).unwrap();
        let streams: Vec<_> = connector.streams().iter().map(|s| s.name).collect();
        assert_eq!(streams, ["account"], "{id}");
    }
}

/// Fails when fewer entries import than the floor.
fn assert_floor(count: &Count, imported: usize, ready: usize) {
    assert!(
        count.imported >= imported && count.ready >= ready,
        "{count:?} is below the floor of {imported} imported, {ready} ready"
    );
}
