//! The per-service policies of `vault/policies`, on a real OpenBao: each
//! service can do its part of a connection's life and nothing more.

use std::path::PathBuf;

use fleet_secrets::{Auth, Client, Error, Version};

use crate::helpers::{AppPassword, PASSWORD, TestVault, ids};

/// A client of `service`, whose token has only the policy
/// `vault/policies/<service>.hcl` (rewritten for the test's mount).
async fn client_of(vault: &TestVault, service: &str) -> Client {
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../vault/policies")
        .join(format!("{service}.hcl"));
    let policy = std::fs::read_to_string(file)
        .unwrap()
        .replace("path \"secret/", &format!("path \"{}/", vault.mount));
    let token = vault.bao.token_with_policy(service, &policy).await;
    Client::connect(vault.config(Auth::Token {
        token: token.into(),
    }))
    .await
    .unwrap()
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

    // Gateway stages, the worker validates, promotes, reads and rotates.
    let staged = gateway
        .stage(&tenant, &connection, &credentials)
        .await
        .expect("the gateway stages");
    let read: AppPassword = worker
        .read_staged(&tenant, &connection, staged)
        .await
        .expect("the worker reads what it validates");
    assert_eq!(read, credentials);
    let active = worker
        .promote(&tenant, &connection, staged)
        .await
        .expect("the worker promotes");
    let stored = worker
        .read_active::<AppPassword>(&tenant, &connection)
        .await
        .expect("the worker reads active credentials");
    worker
        .rotate(&tenant, &connection, &AppPassword::new("renewed"), active)
        .await
        .expect("the worker rotates renewed tokens");
    assert_eq!(stored.value, credentials);

    // What each may not do.
    assert_denied(
        &gateway
            .rotate(
                &tenant,
                &connection,
                &AppPassword::new("forged"),
                Version::new(2),
            )
            .await,
        "the gateway overwriting active credentials",
    );
    assert_denied(
        &gateway
            .read_staged::<AppPassword>(&tenant, &connection, staged)
            .await,
        "the gateway reading staged credentials back",
    );
    assert_denied(
        &worker.stage(&tenant, &connection, &credentials).await,
        "a worker staging credentials",
    );
    assert_denied(
        &worker.delete(&tenant, &connection).await,
        "a worker deleting a connection's credentials",
    );

    // The gateway reads active credentials to revoke them, then deletes.
    gateway
        .read_active::<AppPassword>(&tenant, &connection)
        .await
        .expect("the gateway reads credentials to revoke");
    gateway
        .delete(&tenant, &connection)
        .await
        .expect("the gateway deletes a disconnected connection");
    assert!(matches!(
        worker
            .read_active::<AppPassword>(&tenant, &connection)
            .await,
        Err(Error::NotFound { .. })
    ));
}
