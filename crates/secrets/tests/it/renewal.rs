use std::time::Duration;

use fleet_secrets::{Auth, Client, Error};
use tokio::time::{Instant, sleep, timeout};
use tokio_util::sync::CancellationToken;
use vaultrs::api::token::requests::CreateTokenRequest;

use crate::helpers::{AppPassword, TestVault, ids};

/// Writes with `client` every 250 ms until `until`; any failure fails the test.
async fn keep_writing(client: &Client, until: Instant) {
    let (tenant, connection) = ids();
    while Instant::now() < until {
        client
            .stage(&tenant, &connection, &AppPassword::new("alive"))
            .await
            .unwrap();
        sleep(Duration::from_millis(250)).await;
    }
}

async fn short_lived_token(vault: &TestVault) -> Auth {
    let created = vaultrs::token::new(
        &vault.root_vaultrs(),
        Some(CreateTokenRequest::builder().ttl("3s")),
    )
    .await
    .unwrap();
    Auth::Token {
        token: created.client_token.into(),
    }
}

#[tokio::test]
async fn the_renewer_keeps_a_short_lived_token_valid_past_its_ttl() {
    let vault = TestVault::start().await;
    let renewed = Client::connect(vault.config(short_lived_token(&vault).await))
        .await
        .unwrap();
    let unattended = Client::connect(vault.config(short_lived_token(&vault).await))
        .await
        .unwrap();
    let shutdown = CancellationToken::new();
    let renewer = tokio::spawn(renewed.renewer().run(shutdown.clone()));

    keep_writing(&renewed, Instant::now() + Duration::from_secs(5)).await;

    let (tenant, connection) = ids();
    let err = unattended
        .stage(&tenant, &connection, &AppPassword::new("late"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::PermissionDenied { .. }), "{err:?}");
    shutdown.cancel();
    renewer.await.unwrap().unwrap();
}

#[tokio::test]
async fn the_renewer_logs_in_again_when_an_approle_token_reaches_its_max_ttl() {
    let vault = TestVault::start().await;
    // Tokens live 4 s, 6 s at most: the renewer renews at 2.7 s, finds the
    // max TTL near and logs in again, with 1.3 s to spare on a busy machine;
    // writing for 8 s outlives the first token's max TTL.
    let role = vault.short_lived_approle("4s", "6s").await;
    let auth = Auth::approle(role.role_id, role.secret_id);
    let client = Client::connect(vault.config(auth)).await.unwrap();
    let shutdown = CancellationToken::new();
    let renewer = tokio::spawn(client.renewer().run(shutdown.clone()));

    keep_writing(&client, Instant::now() + Duration::from_secs(8)).await;

    shutdown.cancel();
    renewer.await.unwrap().unwrap();
}

#[tokio::test]
async fn the_renewer_of_a_token_that_never_expires_waits_for_shutdown() {
    let vault = TestVault::start().await;
    let client = vault.client().await;
    let shutdown = CancellationToken::new();
    let mut renewer = tokio::spawn(client.renewer().run(shutdown.clone()));

    let idle = timeout(Duration::from_millis(500), &mut renewer).await;

    assert!(idle.is_err(), "the renewer ended early: {idle:?}");
    shutdown.cancel();
    renewer.await.unwrap().unwrap();
}
