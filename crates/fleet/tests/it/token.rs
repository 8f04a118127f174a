//! `fleet token` as an operator runs it: HS256 with the shared key for the
//! local demo, EdDSA with the issuer's private key.

use std::path::Path;
use std::process::{Command, Output};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use fleet_auth::{Algorithm, Config, Verifier};

const KEY: &str = "a-local-demo-key-of-at-least-thirty-two-bytes";
const TESTDATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../auth/testdata");

fn key_file(name: &str) -> String {
    Path::new(TESTDATA).join(name).to_str().unwrap().to_owned()
}

/// Runs `fleet token` with only `env` set.
fn fleet_token(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fleet"))
        .arg("token")
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

fn printed_token(output: &Output) -> String {
    assert!(
        output.status.success(),
        "fleet token failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone())
        .unwrap()
        .trim()
        .to_owned()
}

#[test]
fn an_hs256_token_for_the_demo_carries_the_audience_user_and_connections() {
    let output = fleet_token(
        &[
            "--tenant",
            "demo",
            "--user",
            "ada@demo.example",
            "--connection",
            "c-1",
            "--connection",
            "c-2",
        ],
        &[("FLEET_AUTH__KEY", KEY)],
    );
    let token = printed_token(&output);

    let claims = Verifier::new(&Config::new(KEY.into()))
        .unwrap()
        .verify(&token)
        .unwrap();
    assert_eq!(claims.tenant.as_str(), "demo");
    assert_eq!(claims.subject.as_deref(), Some("ada@demo.example"));
    let connections: Vec<&str> = claims
        .connections
        .iter()
        .flatten()
        .map(|c| c.as_str())
        .collect();
    assert_eq!(connections, ["c-1", "c-2"]);
    assert_eq!(claims.exp - claims.iat, 24 * 3600);
}

#[test]
fn a_token_longer_than_the_maximum_lifetime_is_not_minted() {
    let output = fleet_token(
        &["--tenant", "demo", "--hours", "48"],
        &[("FLEET_AUTH__KEY", KEY)],
    );

    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("max_lifetime_seconds"), "{stderr}");
    assert!(output.stdout.is_empty());
}

#[test]
fn an_eddsa_token_is_signed_with_the_private_key_and_checked_with_the_public_one() {
    let public = std::fs::read_to_string(key_file("ed25519-public.pem")).unwrap();
    let private = key_file("ed25519-private.pem");
    let env = [
        ("FLEET_AUTH__ALGORITHM", "EdDSA"),
        ("FLEET_AUTH__PUBLIC_KEY", public.as_str()),
        ("FLEET_AUTH__AUDIENCE", "dashboards"),
    ];

    let token = printed_token(&fleet_token(
        &["--tenant", "acme", "--private-key-file", &private],
        &env,
    ));

    let mut config = Config::with_public_key(Algorithm::EdDsa, public.clone());
    config.audience = "dashboards".to_owned();
    let claims = Verifier::new(&config).unwrap().verify(&token).unwrap();
    assert_eq!(claims.tenant.as_str(), "acme");

    // Without the private key there is nothing to sign with, and a key
    // that is not the public key's pair is refused before it signs.
    let missing = fleet_token(&["--tenant", "acme"], &env);
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("private key"),
        "{}",
        String::from_utf8_lossy(&missing.stderr)
    );
    let other_public = key_file("ed25519-other-public.pem");
    let mismatch = fleet_token(
        &["--tenant", "acme", "--private-key-file", &private],
        &[
            ("FLEET_AUTH__ALGORITHM", "EdDSA"),
            ("FLEET_AUTH__PUBLIC_KEY_FILE", other_public.as_str()),
        ],
    );
    assert!(!mismatch.status.success());
    let stderr = String::from_utf8_lossy(&mismatch.stderr);
    assert!(stderr.contains("does not belong"), "{stderr}");
    assert!(
        !stderr.contains("MC4C"),
        "the key is never printed: {stderr}"
    );
}

#[test]
fn a_token_for_verifiers_with_a_key_set_names_its_key() {
    let private = key_file("ed25519-private.pem");
    let env = [
        ("FLEET_AUTH__ALGORITHM", "EdDSA"),
        (
            "FLEET_AUTH__JWKS_URL",
            "https://issuer.example/.well-known/jwks.json",
        ),
    ];

    let token = printed_token(&fleet_token(
        &[
            "--tenant",
            "acme",
            "--private-key-file",
            &private,
            "--key-id",
            "2026-05",
        ],
        &env,
    ));

    let header = URL_SAFE_NO_PAD.decode(token.split('.').next().unwrap());
    let header: serde_json::Value = serde_json::from_slice(&header.unwrap()).unwrap();
    assert_eq!(header["kid"], "2026-05");
    assert_eq!(header["alg"], "EdDSA");
    let public = std::fs::read_to_string(key_file("ed25519-public.pem")).unwrap();
    let config = Config::with_public_key(Algorithm::EdDsa, public);
    assert!(Verifier::new(&config).unwrap().verify(&token).is_ok());

    // Verifiers could not pick the key of a token without a `kid`.
    let without = fleet_token(&["--tenant", "acme", "--private-key-file", &private], &env);
    assert!(!without.status.success());
    let stderr = String::from_utf8_lossy(&without.stderr);
    assert!(stderr.contains("--key-id"), "{stderr}");
    assert!(without.stdout.is_empty());
}
