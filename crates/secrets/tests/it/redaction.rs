use fleet_secrets::{Auth, Client, Error, Version};
use serde::Deserialize;

use crate::helpers::{AppPassword, PASSWORD, TestVault, assert_absent, everything_printed, ids};

/// A credential type that does not fit what was stored: the password is not a number.
#[derive(Debug, Deserialize)]
struct PinCode {
    #[expect(dead_code, reason = "only deserialized, and that fails")]
    password: u64,
}

#[tokio::test]
async fn debug_output_of_config_and_client_shows_no_token_or_secret_id() {
    let vault = TestVault::start().await;
    let token_config = vault.config(Auth::Token {
        token: PASSWORD.into(),
    });
    let approle_config = vault.config(Auth::approle("role", PASSWORD));

    let client = vault.client().await;

    assert_absent(&format!("{token_config:?} {approle_config:?}"), PASSWORD);
    assert_absent(&format!("{client:?}"), vault.bao.root_token());
}

#[tokio::test]
async fn errors_never_show_the_credentials_or_the_token() {
    let vault = TestVault::start().await;
    let client = vault.client().await;
    let (tenant, connection) = ids();
    let credentials = AppPassword::new(PASSWORD);
    let staged = client
        .stage(&tenant, &connection, &credentials)
        .await
        .unwrap();
    let rotated = client
        .rotate(&tenant, &connection, &credentials)
        .await
        .unwrap();
    let (_, other) = ids();
    vault
        .root_write(
            &other,
            "credentials",
            &serde_json::json!({"credentials": PASSWORD}),
        )
        .await;

    let errors: Vec<Error> = vec![
        Client::connect(vault.config(Auth::Token {
            token: PASSWORD.into(),
        }))
        .await
        .unwrap_err(),
        client
            .read_staged::<PinCode>(&tenant, &connection, staged)
            .await
            .unwrap_err(),
        client
            .read_version::<PinCode>(&tenant, &other, Version::new(1))
            .await
            .unwrap_err(),
        client
            .read_version::<AppPassword>(&tenant, &connection, Version::new(rotated.get() + 1))
            .await
            .unwrap_err(),
        client
            .stage(&tenant, &connection, &AppPassword::new("another"))
            .await
            .unwrap_err(),
    ];

    assert!(
        matches!(
            errors[0],
            Error::Login {
                method: "token",
                ..
            }
        ),
        "{:?}",
        errors[0]
    );
    assert!(
        matches!(errors[1], Error::Serialization { .. }),
        "{:?}",
        errors[1]
    );
    assert!(
        matches!(errors[2], Error::Serialization { .. }),
        "{:?}",
        errors[2]
    );
    assert!(
        matches!(errors[3], Error::NotFound { .. }),
        "{:?}",
        errors[3]
    );
    assert!(
        matches!(errors[4], Error::Conflict { .. }),
        "{:?}",
        errors[4]
    );
    for error in &errors {
        let printed = everything_printed(error);
        assert_absent(&printed, PASSWORD);
        assert_absent(&printed, vault.bao.root_token());
    }
}
