//! The checks of the `catalog` fuzz target, shared with fleet-connectors'
//! corpus replay test (`crates/connectors/tests/it/fuzz_corpus.rs`).
//!
//! The input is an operator's catalog file. A first line `#<id>` (a TOML
//! comment) names the file `<id>.toml`, so it overrides that built-in entry
//! or adds one; without it the file adds the entry `fuzzed`. Whatever the
//! bytes, loading the catalog returns instead of panicking. A catalog that
//! loads keeps every rule `Catalog` promises: every entry is valid (no zero
//! interval, page size or sync limit, a form for manual entries, an issuer
//! where `iss` is required, no client secret read from a file), the file
//! changes its own entry only, and the merge takes the file's values.

use std::sync::OnceLock;

use fleet_connectors::Catalog;
use fleet_connectors::catalog::{Auth, CatalogEntry};
use fleet_events::ConnectorId;

/// Runs every check on `data`; panics on the first that fails.
pub(crate) fn check(data: &[u8]) {
    let id = file_id(data);
    let dir = tempfile::tempdir().expect("a temporary directory");
    std::fs::write(dir.path().join(format!("{id}.toml")), data)
        .expect("a writable temporary directory");
    let Ok(catalog) = Catalog::with_overrides(dir.path()) else {
        return;
    };
    let builtin = builtin();
    for entry in catalog.iter() {
        valid(entry);
        if entry.id != id {
            let original = builtin.get(&entry.id);
            assert_eq!(
                original.map(debug),
                Some(debug(entry)),
                "the file {id}.toml changed entry {}",
                entry.id
            );
        }
    }
    let entry = catalog
        .get(&id)
        .expect("the file's entry is in the catalog");
    let added = usize::from(builtin.get(&id).is_none());
    assert_eq!(catalog.iter().count(), builtin.iter().count() + added);
    let overlay: toml::Table = std::str::from_utf8(data)
        .ok()
        .and_then(|text| toml::from_str(text).ok())
        .expect("a file that loads is TOML");
    if overlay.is_empty() {
        assert_eq!(
            builtin.get(&id).map(debug),
            Some(debug(entry)),
            "an empty file changed {id}"
        );
    }
    if let Some(name) = overlay.get("display_name").and_then(toml::Value::as_str) {
        assert_eq!(
            entry.display_name, name,
            "the file's display_name was not taken"
        );
    }
}

/// The built-in catalog, built once.
fn builtin() -> &'static Catalog {
    static BUILTIN: OnceLock<Catalog> = OnceLock::new();
    BUILTIN.get_or_init(Catalog::builtin)
}

/// The id a first line `#<id>` names, else `fuzzed`.
fn file_id(data: &[u8]) -> ConnectorId {
    data.strip_prefix(b"#")
        .and_then(|rest| rest.split(|b| *b == b'\n').next())
        .and_then(|line| std::str::from_utf8(line).ok())
        .and_then(|line| ConnectorId::parse(line.trim()).ok())
        .unwrap_or_else(|| ConnectorId::parse("fuzzed").expect("a valid id"))
}

fn valid(entry: &CatalogEntry) {
    let id = &entry.id;
    assert!(
        !entry.default_sync_interval.is_zero(),
        "{id}: zero sync interval"
    );
    assert_ne!(entry.page_size, Some(0), "{id}: zero page size");
    let limits = entry.sync;
    for limit in [
        limits.max_pages,
        limits.max_records,
        limits.max_bytes,
        limits.max_seconds,
        limits.reconcile_every_secs,
    ] {
        assert_ne!(limit, 0, "{id}: a zero sync limit in {limits:?}");
    }
    match &entry.auth {
        Auth::OAuth2(settings) => {
            assert!(
                settings.client_secret.is_none(),
                "{id}: a client secret from a file"
            );
            assert!(
                settings.issuer.is_some()
                    || !settings.authorization_response_iss_parameter_supported,
                "{id}: requires iss without an issuer"
            );
        }
        Auth::OAuth1(settings) => {
            assert!(
                settings.client_secret.is_none(),
                "{id}: a client secret from a file"
            );
        }
        Auth::AppPassword | Auth::ApiKey(_) | Auth::Basic(_) | Auth::ClientCredentials(_) => {
            assert!(
                !entry.form.is_empty(),
                "{id}: a manual entry without a form"
            );
        }
    }
}

/// `entry` as `Debug` shows it, without the file it came from (which an
/// override changes while its values stay the same).
fn debug(entry: &CatalogEntry) -> String {
    let entry = CatalogEntry {
        file: String::new(),
        ..entry.clone()
    };
    format!("{entry:?}")
}
