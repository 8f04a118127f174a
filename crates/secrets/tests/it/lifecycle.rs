use fleet_secrets::{Error, Version};
use serde_json::json;

use crate::helpers::{AppPassword, TestVault, ids};

#[track_caller]
fn assert_not_found<T: std::fmt::Debug>(result: &Result<T, Error>) {
    assert!(
        matches!(result, Err(Error::NotFound { .. })),
        "expected not found: {result:?}"
    );
}

#[tokio::test]
async fn staged_credentials_are_the_first_version_and_read_back_at_it() {
    let vault = TestVault::start().await;
    let client = vault.client().await;
    let (tenant, connection) = ids();
    let credentials = AppPassword::new("first");

    let staged = client
        .stage(&tenant, &connection, &credentials)
        .await
        .unwrap();

    assert_eq!(staged, Version::new(1));
    let validated: AppPassword = client
        .read_staged(&tenant, &connection, staged)
        .await
        .unwrap();
    assert_eq!(validated, credentials);
    let in_use = vault
        .uncached_client()
        .await
        .read_version::<AppPassword>(&tenant, &connection, staged)
        .await
        .unwrap();
    assert_eq!(in_use.value, credentials);
    assert_eq!(in_use.version, staged);
}

#[tokio::test]
async fn a_connection_is_staged_once_and_a_retried_stage_finds_its_own_version() {
    let vault = TestVault::start().await;
    let client = vault.client().await;
    let (tenant, connection) = ids();
    let credentials = AppPassword::new("once");
    let staged = client
        .stage(&tenant, &connection, &credentials)
        .await
        .unwrap();

    let retried = client.stage(&tenant, &connection, &credentials).await;
    let other = client
        .stage(&tenant, &connection, &AppPassword::new("someone else's"))
        .await;

    assert_eq!(retried.unwrap(), staged);
    assert!(
        matches!(
            other,
            Err(Error::Conflict {
                expected,
                actual: Some(actual),
                ..
            }) if expected == Version::new(0) && actual == staged
        ),
        "{other:?}"
    );
    let kept = client
        .read_version::<AppPassword>(&tenant, &connection, staged)
        .await
        .unwrap();
    assert_eq!(kept.value, credentials);
}

#[tokio::test]
async fn a_rotation_writes_the_next_version_and_the_replaced_one_is_discarded() {
    let vault = TestVault::start().await;
    let client = vault.client().await;
    let other_process = vault.uncached_client().await;
    let (tenant, connection) = ids();
    let staged = client
        .stage(&tenant, &connection, &AppPassword::new("old"))
        .await
        .unwrap();

    let rotated = client
        .rotate(&tenant, &connection, &AppPassword::new("renewed"))
        .await
        .unwrap();

    assert_eq!(rotated, Version::new(2));
    // Until the pointer moves, both versions are there.
    let old = other_process
        .read_version::<AppPassword>(&tenant, &connection, staged)
        .await
        .unwrap();
    assert_eq!(old.value, AppPassword::new("old"));
    client
        .discard(&tenant, &connection, &[staged])
        .await
        .unwrap();
    assert_not_found(
        &other_process
            .read_version::<AppPassword>(&tenant, &connection, staged)
            .await,
    );
    assert_not_found(
        &client
            .read_version::<AppPassword>(&tenant, &connection, staged)
            .await,
    );
    let renewed = other_process
        .read_version::<AppPassword>(&tenant, &connection, rotated)
        .await
        .unwrap();
    assert_eq!(renewed.value, AppPassword::new("renewed"));
}

#[tokio::test]
async fn a_version_read_once_is_served_from_the_cache_until_forgotten() {
    let vault = TestVault::start().await;
    let client = vault.client().await;
    let (tenant, connection) = ids();
    let staged = vault
        .uncached_client()
        .await
        .stage(&tenant, &connection, &AppPassword::new("cached"))
        .await
        .unwrap();
    assert!(!client.is_cached(&tenant, &connection, staged));
    client
        .read_version::<AppPassword>(&tenant, &connection, staged)
        .await
        .unwrap();
    assert!(client.is_cached(&tenant, &connection, staged));

    // Destroyed behind its back: only a process that asks Vault notices.
    vault.root_destroy(&connection, staged.get()).await;

    let cached = client
        .read_version::<AppPassword>(&tenant, &connection, staged)
        .await
        .unwrap();
    assert_eq!(cached.value, AppPassword::new("cached"));
    assert_not_found(
        &vault
            .uncached_client()
            .await
            .read_version::<AppPassword>(&tenant, &connection, staged)
            .await,
    );
    client.forget(&tenant, &connection);
    assert!(!client.is_cached(&tenant, &connection, staged));
    assert_not_found(
        &client
            .read_version::<AppPassword>(&tenant, &connection, staged)
            .await,
    );
}

#[tokio::test]
async fn deleting_a_connection_removes_every_version_from_vault_and_the_cache() {
    let vault = TestVault::start().await;
    let client = vault.client().await;
    let (tenant, connection) = ids();
    let staged = client
        .stage(&tenant, &connection, &AppPassword::new("a"))
        .await
        .unwrap();
    let rotated = client
        .rotate(&tenant, &connection, &AppPassword::new("b"))
        .await
        .unwrap();

    client.delete(&tenant, &connection).await.unwrap();
    client.delete(&tenant, &connection).await.unwrap();

    assert!(!client.is_cached(&tenant, &connection, rotated));
    for version in [staged, rotated] {
        assert_not_found(
            &client
                .read_version::<AppPassword>(&tenant, &connection, version)
                .await,
        );
    }
    // A deleted connection's id can be staged again from scratch.
    let again = client
        .stage(&tenant, &connection, &AppPassword::new("c"))
        .await
        .unwrap();
    assert_eq!(again, Version::new(1));
}

#[tokio::test]
async fn a_connection_of_the_legacy_layout_is_adopted_into_one_secret() {
    let vault = TestVault::start().await;
    let client = vault.client().await;
    let (tenant, connection) = ids();
    vault
        .root_write(
            &connection,
            "active",
            &json!({"credentials": {"username": "editor", "password": "legacy"}, "staged_version": 3}),
        )
        .await;

    let legacy = client
        .read_legacy::<AppPassword>(&tenant, &connection)
        .await
        .unwrap();
    let adopted = client
        .adopt_legacy::<AppPassword>(&tenant, &connection, None)
        .await
        .unwrap();
    client.retire_legacy(&tenant, &connection).await.unwrap();

    assert_eq!(legacy, Some(AppPassword::new("legacy")));
    assert_eq!(adopted.value, AppPassword::new("legacy"));
    let read = vault
        .uncached_client()
        .await
        .read_version::<AppPassword>(&tenant, &connection, adopted.version)
        .await
        .unwrap();
    assert_eq!(read.value, AppPassword::new("legacy"));
    assert_eq!(
        client
            .read_legacy::<AppPassword>(&tenant, &connection)
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn a_legacy_setup_in_flight_is_validated_and_adopted_from_its_staged_version() {
    let vault = TestVault::start().await;
    let client = vault.client().await;
    let (tenant, connection) = ids();
    let staged = vault
        .root_write(
            &connection,
            "staged",
            &json!({"credentials": {"username": "editor", "password": "in flight"}}),
        )
        .await;

    let validated: AppPassword = client
        .read_staged(&tenant, &connection, Version::new(staged))
        .await
        .unwrap();
    let adopted = client
        .adopt_legacy::<AppPassword>(&tenant, &connection, Some(Version::new(staged)))
        .await
        .unwrap();

    assert_eq!(validated, AppPassword::new("in flight"));
    assert_eq!(adopted.value, validated);
    assert_not_found(
        &client
            .adopt_legacy::<AppPassword>(&ids().0, &ids().1, Some(Version::new(1)))
            .await,
    );
}
