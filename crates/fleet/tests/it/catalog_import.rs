//! `fleet catalog import` as an operator runs it, on a small file in
//! Nango's format: the files it writes load as a catalog, and what it
//! skips is printed with the reason.

use std::process::{Command, Output};

const DEFINITIONS: &str = r#"
helpdesk:
    display_name: Helpdesk
    auth_mode: OAUTH2
    authorization_url: https://${connectionConfig.subdomain}.helpdesk.example/oauth/authorize
    token_url: https://${connectionConfig.subdomain}.helpdesk.example/oauth/token
    docs: https://docs.helpdesk.example
    proxy:
        base_url: https://${connectionConfig.subdomain}.helpdesk.example/api
        verification:
            method: GET
            endpoints: [/v2/users/me]
    connection_config:
        subdomain:
            type: string
            title: Subdomain
            pattern: '^[a-z0-9-]+$'
keyed:
    display_name: Keyed
    auth_mode: API_KEY
    docs: https://docs.keyed.example
    proxy:
        base_url: https://api.keyed.example
        headers:
            x-api-key: ${apiKey}
        verification:
            endpoints: [/me]
plain:
    display_name: Plain
    auth_mode: OAUTH2
    authorization_url: https://plain.example/oauth/authorize
    token_url: https://plain.example/oauth/token
    docs: https://docs.plain.example
signed:
    display_name: Signed
    auth_mode: SIGNATURE
    docs: https://docs.signed.example
"#;

fn import(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fleet"))
        .args(["catalog", "import"])
        .args(args)
        .env_clear()
        .output()
        .unwrap()
}

#[test]
fn import_writes_files_that_load_and_prints_each_skipped_entry_and_the_counts() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("providers.yaml");
    std::fs::write(&file, DEFINITIONS).unwrap();
    let out = dir.path().join("catalog");

    let output = import(&[
        "--nango",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);

    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("skipped signed (SIGNATURE): auth mode SIGNATURE is not supported yet"),
        "{stdout}"
    );
    assert!(stdout.contains("  API_KEY: 1 (1) / 0"), "{stdout}");
    assert!(stdout.contains("  OAUTH2: 2 (2) / 0"), "{stdout}");
    assert!(
        stdout.contains("imported plain (OAUTH2)") && stdout.contains("note: token_only: "),
        "{stdout}"
    );
    assert!(stdout.contains("  SIGNATURE: 0 (0) / 1"), "{stdout}");
    let catalog = fleet_connectors::Catalog::with_overrides(&out).unwrap();
    let ids: Vec<&str> = catalog.iter().map(|e| e.id.as_str()).collect();
    assert!(
        ids.contains(&"helpdesk") && ids.contains(&"keyed"),
        "{ids:?}"
    );
}

#[test]
fn one_oauth2_provider_imports_ready_with_the_operators_userinfo_url() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("providers.yaml");
    std::fs::write(&file, DEFINITIONS).unwrap();
    let out = dir.path().join("catalog");
    let args = |only: &str| {
        import(&[
            "--nango",
            file.to_str().unwrap(),
            "--only",
            only,
            "--userinfo-url",
            "https://api.plain.example/v1/me",
            "--out",
            out.to_str().unwrap(),
        ])
    };

    let output = args("plain");

    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("  OAUTH2: 1 (1) / 0"), "{stdout}");
    let registry = fleet_connectors::Registry::new(&fleet_connectors::Config {
        catalog_dir: Some(out.clone()),
        ..fleet_connectors::Config::default()
    })
    .unwrap();
    let plain = fleet_events::ConnectorId::parse("plain").unwrap();
    assert!(
        registry.get(&plain).is_some(),
        "a fleet starts with the file"
    );

    let output = args("plain,keyed");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--userinfo-url goes with --only naming one provider"),
        "{stderr}"
    );
}

#[test]
fn import_of_an_id_the_file_lacks_fails_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("providers.yaml");
    std::fs::write(&file, DEFINITIONS).unwrap();

    let output = import(&[
        "--nango",
        file.to_str().unwrap(),
        "--only",
        "keyed,nope",
        "--out",
        dir.path().to_str().unwrap(),
    ]);

    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no provider nope in the definitions"),
        "{stderr}"
    );
    assert!(!dir.path().join("keyed.toml").exists());
}
