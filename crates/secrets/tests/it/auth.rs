use fleet_secrets::{Auth, Client, Error};
use vaultrs::api::token::requests::CreateTokenRequest;

use crate::helpers::{AppPassword, TestVault, assert_absent, everything_printed, ids};

#[tokio::test]
async fn approle_login_gets_a_token_that_can_write_credentials() {
    let vault = TestVault::start().await;
    let role = vault.approle().await;
    let auth = Auth::approle(role.role_id, role.secret_id);
    let client = Client::connect(vault.config(auth)).await.unwrap();
    let (tenant, connection) = ids();

    let staged = client
        .stage(&tenant, &connection, &AppPassword::new("via approle"))
        .await
        .unwrap();

    let read = client
        .read_version::<AppPassword>(&tenant, &connection, staged)
        .await
        .unwrap();
    assert_eq!(read.value, AppPassword::new("via approle"));
}

#[tokio::test]
async fn a_wrong_secret_id_is_a_login_error_that_shows_neither_id() {
    let vault = TestVault::start().await;
    let role = vault.approle().await;
    let wrong_secret_id = "0b5e7c1d-wrong-secret-id";
    let auth = Auth::approle(role.role_id.clone(), wrong_secret_id);

    let err = Client::connect(vault.config(auth)).await.unwrap_err();

    assert!(
        matches!(
            err,
            Error::Login {
                method: "approle",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!err.is_transient());
    let printed = everything_printed(&err);
    assert_absent(&printed, wrong_secret_id);
    assert_absent(&printed, &role.secret_id);
    assert_absent(&printed, &role.role_id);
}

#[tokio::test]
async fn a_token_with_the_documented_policy_can_run_every_operation() {
    let vault = TestVault::start().await;
    let root = vault.root_vaultrs();
    let mount = &vault.mount;
    let policy = format!(
        r#"
        path "{mount}/data/tenants/*" {{ capabilities = ["create", "read", "update"] }}
        path "{mount}/destroy/tenants/*" {{ capabilities = ["update"] }}
        path "{mount}/metadata/tenants/*" {{ capabilities = ["delete"] }}
        "#
    );
    vaultrs::sys::policy::set(&root, "fleet-secrets", &policy)
        .await
        .unwrap();
    let token = vaultrs::token::new(
        &root,
        Some(CreateTokenRequest::builder().policies(vec!["fleet-secrets".to_owned()])),
    )
    .await
    .unwrap()
    .client_token;
    let client = Client::connect(vault.config(Auth::Token {
        token: token.into(),
    }))
    .await
    .unwrap();
    let (tenant, connection) = ids();

    let staged = client
        .stage(&tenant, &connection, &AppPassword::new("a"))
        .await
        .unwrap();
    let _: AppPassword = client
        .read_staged(&tenant, &connection, staged)
        .await
        .unwrap();
    let rotated = client
        .rotate(&tenant, &connection, &AppPassword::new("b"))
        .await
        .unwrap();
    client
        .discard(&tenant, &connection, &[staged])
        .await
        .unwrap();
    let active = client
        .read_version::<AppPassword>(&tenant, &connection, rotated)
        .await
        .unwrap();
    client.delete(&tenant, &connection).await.unwrap();

    assert_eq!(active.value, AppPassword::new("b"));
}

#[tokio::test]
async fn approle_reads_its_secret_id_from_a_file_at_login() {
    let vault = TestVault::start().await;
    let role = vault.approle().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secret-id");
    // As a mounted secret often is: with a trailing newline.
    std::fs::write(&file, format!("{}\n", role.secret_id)).unwrap();
    let auth = Auth::AppRole {
        mount: "approle".to_owned(),
        role_id: role.role_id.clone(),
        secret_id: None,
        secret_id_file: Some(file.clone()),
    };
    let client = Client::connect(vault.config(auth)).await.unwrap();
    let (tenant, connection) = ids();
    client
        .stage(&tenant, &connection, &AppPassword::new("via a file"))
        .await
        .unwrap();

    std::fs::write(&file, "\n").unwrap();
    let empty = Auth::AppRole {
        mount: "approle".to_owned(),
        role_id: role.role_id.clone(),
        secret_id: None,
        secret_id_file: Some(file.clone()),
    };
    let err = Client::connect(vault.config(empty)).await.unwrap_err();
    assert!(matches!(err, Error::Config { .. }), "{err:?}");
    assert!(err.to_string().contains("secret_id_file"), "{err}");

    let missing = Auth::AppRole {
        mount: "approle".to_owned(),
        role_id: role.role_id.clone(),
        secret_id: None,
        secret_id_file: Some(dir.path().join("absent")),
    };
    let err = Client::connect(vault.config(missing)).await.unwrap_err();
    assert!(err.to_string().contains("cannot be read"), "{err}");

    let both = Auth::AppRole {
        mount: "approle".to_owned(),
        role_id: role.role_id,
        secret_id: Some(role.secret_id.clone().into()),
        secret_id_file: Some(file),
    };
    let err = Client::connect(vault.config(both)).await.unwrap_err();
    assert!(err.to_string().contains("both set"), "{err}");
    assert_absent(&everything_printed(&err), &role.secret_id);
}
