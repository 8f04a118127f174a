use fleet_secrets::{Error, Version};
use serde_json::json;

use crate::helpers::{AppPassword, TestVault, ids};

#[tokio::test]
async fn promoted_credentials_are_active_and_gone_from_staging() {
    let vault = TestVault::start().await;
    let client = vault.client().await;
    let (tenant, connection) = ids();
    let credentials = AppPassword::new("first");

    let staged = client
        .stage(&tenant, &connection, &credentials)
        .await
        .unwrap();
    let read: AppPassword = client
        .read_staged(&tenant, &connection, staged)
        .await
        .unwrap();
    assert_eq!(read, credentials);

    let promoted = client.promote(&tenant, &connection, staged).await.unwrap();

    let active = client
        .read_active::<AppPassword>(&tenant, &connection)
        .await
        .unwrap();
    assert_eq!(active.value, credentials);
    assert_eq!(active.version, promoted);
    let err = client
        .read_staged::<AppPassword>(&tenant, &connection, staged)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
}

#[tokio::test]
async fn promoting_the_same_staged_version_twice_has_one_effect() {
    let vault = TestVault::start().await;
    let client = vault.client().await;
    let (tenant, connection) = ids();
    let staged = client
        .stage(&tenant, &connection, &AppPassword::new("once"))
        .await
        .unwrap();

    let first = client.promote(&tenant, &connection, staged).await.unwrap();
    let second = client.promote(&tenant, &connection, staged).await.unwrap();

    assert_eq!(first, second);
    let active = client
        .read_active::<AppPassword>(&tenant, &connection)
        .await
        .unwrap();
    assert_eq!(active.version, first);
}

#[tokio::test]
async fn a_redelivered_promotion_keeps_the_token_rotated_since() {
    let vault = TestVault::start().await;
    let client = vault.client().await;
    let (tenant, connection) = ids();
    let staged = client
        .stage(&tenant, &connection, &AppPassword::new("original"))
        .await
        .unwrap();
    let promoted = client.promote(&tenant, &connection, staged).await.unwrap();
    let rotated = client
        .rotate(&tenant, &connection, &AppPassword::new("rotated"), promoted)
        .await
        .unwrap();

    let redelivered = client.promote(&tenant, &connection, staged).await.unwrap();

    assert_eq!(redelivered, rotated);
    let active = client
        .read_active::<AppPassword>(&tenant, &connection)
        .await
        .unwrap();
    assert_eq!(active.value, AppPassword::new("rotated"));
}

#[tokio::test]
async fn a_promotion_that_arrives_after_a_newer_one_changes_nothing() {
    let vault = TestVault::start().await;
    let client = vault.client().await;
    let (tenant, connection) = ids();
    let older = client
        .stage(&tenant, &connection, &AppPassword::new("older"))
        .await
        .unwrap();
    let newer = client
        .stage(&tenant, &connection, &AppPassword::new("newer"))
        .await
        .unwrap();
    let promoted = client.promote(&tenant, &connection, newer).await.unwrap();

    let late = client.promote(&tenant, &connection, older).await.unwrap();

    assert_eq!(late, promoted);
    let active = client
        .read_active::<AppPassword>(&tenant, &connection)
        .await
        .unwrap();
    assert_eq!(active.value, AppPassword::new("newer"));
    let err = client
        .read_staged::<AppPassword>(&tenant, &connection, older)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
}

#[tokio::test]
async fn promoting_a_version_that_was_never_staged_is_not_found() {
    let vault = TestVault::start().await;
    let client = vault.client().await;
    let (tenant, connection) = ids();

    let err = client
        .promote(&tenant, &connection, Version::new(7))
        .await
        .unwrap_err();

    let Error::NotFound { path } = &err else {
        panic!("expected NotFound, got {err:?}");
    };
    assert!(
        path.ends_with(&format!("{connection}/staged?version=7")),
        "{path}"
    );
    assert!(!err.is_transient());
}

#[tokio::test]
async fn deleting_a_connection_removes_staged_and_active_credentials() {
    let vault = TestVault::start().await;
    let client = vault.client().await;
    let (tenant, connection) = ids();
    let staged = client
        .stage(&tenant, &connection, &AppPassword::new("a"))
        .await
        .unwrap();
    client.promote(&tenant, &connection, staged).await.unwrap();
    let pending = client
        .stage(&tenant, &connection, &AppPassword::new("b"))
        .await
        .unwrap();

    client.delete(&tenant, &connection).await.unwrap();

    let err = client
        .read_active::<AppPassword>(&tenant, &connection)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    let err = client
        .read_staged::<AppPassword>(&tenant, &connection, pending)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    client.delete(&tenant, &connection).await.unwrap();
}

#[tokio::test]
async fn a_promotion_interrupted_before_destroying_staging_finishes_without_overwriting() {
    let vault = TestVault::start().await;
    let client = vault.client().await;
    let (tenant, connection) = ids();
    let staged = client
        .stage(&tenant, &connection, &AppPassword::new("original"))
        .await
        .unwrap();
    // What a save worker that crashed between writing `active` and destroying staging leaves.
    vaultrs::kv2::set(
        &vault.root_vaultrs(),
        &vault.mount,
        &format!("tenants/{tenant}/connections/{connection}/active"),
        &json!({ "credentials": AppPassword::new("original"), "staged_version": staged }),
    )
    .await
    .unwrap();
    let written = client
        .read_active::<AppPassword>(&tenant, &connection)
        .await
        .unwrap();
    let rotated = client
        .rotate(
            &tenant,
            &connection,
            &AppPassword::new("rotated"),
            written.version,
        )
        .await
        .unwrap();

    let redelivered = client.promote(&tenant, &connection, staged).await.unwrap();

    assert_eq!(redelivered, rotated);
    let active = client
        .read_active::<AppPassword>(&tenant, &connection)
        .await
        .unwrap();
    assert_eq!(active.value, AppPassword::new("rotated"));
    let err = client
        .read_staged::<AppPassword>(&tenant, &connection, staged)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
}
