use fleet_secrets::Error;

use crate::helpers::{AppPassword, PASSWORD, TestVault, assert_absent, everything_printed, ids};

#[tokio::test]
async fn an_unreachable_vault_is_a_transient_error_and_the_client_recovers_after_a_restart() {
    let mut vault = TestVault::start().await;
    let client = vault.client().await;
    let (tenant, connection) = ids();
    let credentials = AppPassword::new(PASSWORD);

    vault.bao.kill();
    let err = client
        .stage(&tenant, &connection, &credentials)
        .await
        .unwrap_err();

    assert!(matches!(err, Error::Unavailable { .. }), "{err:?}");
    assert!(err.is_transient());
    assert_absent(&everything_printed(&err), PASSWORD);
    vault.bao.restart().await;
    let staged = client
        .stage(&tenant, &connection, &credentials)
        .await
        .unwrap();
    let read: AppPassword = client
        .read_staged(&tenant, &connection, staged)
        .await
        .unwrap();
    assert_eq!(read, credentials);
}
