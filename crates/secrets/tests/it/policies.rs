//! The per-service policies of `vault/policies`, on a real OpenBao: each
//! service can do its part of a connection's life and nothing more.

use std::path::PathBuf;

use fleet_secrets::{Auth, Client, Error};

use crate::helpers::{AppPassword, PASSWORD, TestVault, ids};

/// A token of `service` with only the policy `vault/policies/<service>.hcl`
/// (rewritten for the test's mount).
async fn token_of(vault: &TestVault, service: &str) -> String {
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../vault/policies")
        .join(format!("{service}.hcl"));
    let policy = std::fs::read_to_string(file)
        .unwrap()
        .replace("path \"secret/", &format!("path \"{}/", vault.mount));
    vault.bao.token_with_policy(service, &policy).await
}

/// A client of `service`, whose token has only its policy.
async fn client_of(vault: &TestVault, service: &str) -> Client {
    let token = token_of(vault, service).await;
    Client::connect(vault.config(Auth::Token {
        token: token.into(),
    }))
    .await
    .unwrap()
}

/// A plain vaultrs client with `token`, doing what an earlier release did.
fn earlier_release(vault: &TestVault, token: &str) -> vaultrs::client::VaultClient {
    let settings = vaultrs::client::VaultClientSettingsBuilder::default()
        .address(vault.bao.addr())
        .token(token)
        .build()
        .unwrap();
    vaultrs::client::VaultClient::new(settings).unwrap()
}

#[track_caller]
fn assert_denied<T: std::fmt::Debug>(result: &Result<T, Error>, what: &str) {
    assert!(
        matches!(result, Err(Error::PermissionDenied { .. })),
        "{what} should be denied: {result:?}"
    );
}

#[tokio::test]
async fn the_gateway_and_worker_policies_cover_a_connections_life_and_no_more() {
    let vault = TestVault::start().await;
    let gateway = client_of(&vault, "gateway").await;
    let worker = client_of(&vault, "worker").await;
    let (tenant, connection) = ids();
    let credentials = AppPassword::new(PASSWORD);

    // The gateway stages; the worker validates, reads, rotates and discards.
    let staged = gateway
        .stage(&tenant, &connection, &credentials)
        .await
        .expect("the gateway stages");
    let read: AppPassword = worker
        .read_staged(&tenant, &connection, staged)
        .await
        .expect("the worker reads what it validates");
    assert_eq!(read, credentials);
    let rotated = worker
        .rotate(&tenant, &connection, &AppPassword::new("renewed"))
        .await
        .expect("the worker writes renewed tokens");
    worker
        .discard(&tenant, &connection, &[staged])
        .await
        .expect("the worker destroys the version it replaced");

    // What each may not do.
    assert_denied(
        &gateway
            .stage(&tenant, &connection, &AppPassword::new("forged"))
            .await,
        "the gateway adding a version to an existing connection",
    );
    assert_denied(
        &gateway.discard(&tenant, &connection, &[rotated]).await,
        "the gateway destroying a version",
    );
    assert_denied(
        &worker.delete(&tenant, &connection).await,
        "a worker deleting a connection's credentials",
    );

    // The gateway reads the credentials in use to revoke them, then deletes.
    let in_use = gateway
        .read_version::<AppPassword>(&tenant, &connection, rotated)
        .await
        .expect("the gateway reads credentials to revoke");
    assert_eq!(in_use.value, AppPassword::new("renewed"));
    gateway
        .delete(&tenant, &connection)
        .await
        .expect("the gateway deletes a disconnected connection");
    worker.forget(&tenant, &connection);
    assert!(matches!(
        worker
            .read_version::<AppPassword>(&tenant, &connection, rotated)
            .await,
        Err(Error::NotFound { .. })
    ));
}

#[tokio::test]
async fn a_worker_may_adopt_and_retire_a_legacy_connection() {
    let vault = TestVault::start().await;
    let worker = client_of(&vault, "worker").await;
    let (tenant, connection) = ids();
    vault
        .root_write(
            &connection,
            "active",
            &serde_json::json!({"credentials": {"username": "editor", "password": "old"},
                                "staged_version": 1}),
        )
        .await;

    let adopted = worker
        .adopt_legacy::<AppPassword>(&tenant, &connection, None)
        .await
        .expect("the worker copies legacy credentials");
    worker
        .retire_legacy(&tenant, &connection)
        .await
        .expect("the worker deletes the legacy secrets");

    assert_eq!(adopted.value, AppPassword::new("old"));
}

#[tokio::test]
async fn the_policies_let_processes_of_the_earlier_release_run_during_an_upgrade() {
    let vault = TestVault::start().await;
    let gateway = earlier_release(&vault, &token_of(&vault, "gateway").await);
    let worker = earlier_release(&vault, &token_of(&vault, "worker").await);
    let (tenant, connection) = ids();
    let prefix = format!("tenants/{tenant}/connections/{connection}");
    let credentials = serde_json::json!({"credentials": AppPassword::new(PASSWORD)});

    // The earlier gateway stages; the earlier worker reads, promotes into
    // `active` and destroys the staged version, as that release did.
    let staged = vaultrs::kv2::set(
        &gateway,
        &vault.mount,
        &format!("{prefix}/staged"),
        &credentials,
    )
    .await
    .expect("an earlier gateway stages")
    .version;
    let read: serde_json::Value =
        vaultrs::kv2::read_version(&worker, &vault.mount, &format!("{prefix}/staged"), staged)
            .await
            .expect("an earlier worker reads the staged version");
    let mut active = read.clone();
    active["staged_version"] = serde_json::json!(staged);
    vaultrs::kv2::set(&worker, &vault.mount, &format!("{prefix}/active"), &active)
        .await
        .expect("an earlier worker promotes into active");
    vaultrs::kv2::destroy_versions(
        &worker,
        &vault.mount,
        &format!("{prefix}/staged"),
        vec![staged],
    )
    .await
    .expect("an earlier worker destroys the promoted version");

    // This release's worker adopts what the earlier one left.
    let adopted = client_of(&vault, "worker")
        .await
        .adopt_legacy::<AppPassword>(&tenant, &connection, None)
        .await
        .expect("this release adopts it");
    assert_eq!(adopted.value, AppPassword::new(PASSWORD));
}
