use fleet_testkit::OpenBao;
use serde_json::{Value, json};
use vaultrs::client::{VaultClient, VaultClientSettingsBuilder};
use vaultrs::error::ClientError;
use vaultrs::kv2;

use crate::helpers::assert_stopped_and_removed;

fn vault_client(bao: &OpenBao, token: &str) -> VaultClient {
    let settings = VaultClientSettingsBuilder::default()
        .address(bao.addr())
        .token(token)
        .build()
        .unwrap();
    VaultClient::new(settings).unwrap()
}

#[tokio::test]
async fn secret_written_to_a_fresh_kv_mount_reads_back() {
    let bao = OpenBao::start().await;
    let mount = bao.new_kv_mount().await;
    let vault = vault_client(&bao, bao.root_token());
    let secret = json!({ "access_token": "at-1", "refresh_token": "rt-1" });

    kv2::set(&vault, &mount, "tenant-a/connection-1", &secret)
        .await
        .unwrap();

    let read: Value = kv2::read(&vault, &mount, "tenant-a/connection-1")
        .await
        .unwrap();
    assert_eq!(read, secret);
}

#[tokio::test]
async fn kv_mounts_do_not_see_each_others_secrets() {
    let bao = OpenBao::start().await;
    let (first, second) = (bao.new_kv_mount().await, bao.new_kv_mount().await);
    let vault = vault_client(&bao, bao.root_token());

    kv2::set(
        &vault,
        &first,
        "tenant-a/connection-1",
        &json!({ "k": "v" }),
    )
    .await
    .unwrap();

    assert_ne!(first, second);
    let missing = kv2::read::<Value>(&vault, &second, "tenant-a/connection-1").await;
    assert!(
        matches!(missing, Err(ClientError::APIError { code: 404, .. })),
        "{missing:?}"
    );
}

#[tokio::test]
async fn secrets_survive_a_restart() {
    let mut bao = OpenBao::start().await;
    let mount = bao.new_kv_mount().await;
    let secret = json!({ "api_key": "key-1" });
    kv2::set(
        &vault_client(&bao, bao.root_token()),
        &mount,
        "tenant-a/c1",
        &secret,
    )
    .await
    .unwrap();

    bao.restart().await;

    let vault = vault_client(&bao, bao.root_token());
    let read: Value = kv2::read(&vault, &mount, "tenant-a/c1").await.unwrap();
    assert_eq!(read, secret);
}

#[tokio::test]
async fn secrets_survive_a_kill() {
    let mut bao = OpenBao::start().await;
    let mount = bao.new_kv_mount().await;
    let secret = json!({ "api_key": "key-1" });
    kv2::set(
        &vault_client(&bao, bao.root_token()),
        &mount,
        "tenant-a/c1",
        &secret,
    )
    .await
    .unwrap();

    bao.kill();
    bao.restart().await;

    let vault = vault_client(&bao, bao.root_token());
    let read: Value = kv2::read(&vault, &mount, "tenant-a/c1").await.unwrap();
    assert_eq!(read, secret);
}

#[tokio::test]
async fn approle_login_gets_a_token_limited_to_its_mount() {
    let bao = OpenBao::start().await;
    let (own, other) = (bao.new_kv_mount().await, bao.new_kv_mount().await);
    let credentials = bao.enable_approle("connector-worker", &own).await;
    let other_credentials = bao.enable_approle("other-worker", &other).await;
    let root = vault_client(&bao, bao.root_token());

    let login = vaultrs::auth::approle::login(
        &root,
        "approle",
        &credentials.role_id,
        &credentials.secret_id,
    )
    .await
    .unwrap();

    assert_ne!(credentials.role_id, other_credentials.role_id);
    let worker = vault_client(&bao, &login.client_token);
    let secret = json!({ "password": "app-password" });
    kv2::set(&worker, &own, "tenant-a/c1", &secret)
        .await
        .unwrap();
    let denied = kv2::set(&worker, &other, "tenant-a/c1", &secret).await;
    assert!(
        matches!(denied, Err(ClientError::APIError { code: 403, .. })),
        "{denied:?}"
    );
}

#[tokio::test]
async fn dropping_the_server_stops_it_and_removes_its_data() {
    let bao = OpenBao::start().await;
    let (port, dir) = (bao.port(), bao.dir().to_path_buf());

    drop(bao);

    assert_stopped_and_removed(port, &dir);
}
