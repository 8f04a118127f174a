use fleet_secrets::Error;

use crate::helpers::{AppPassword, TestVault, ids};

#[tokio::test]
async fn concurrent_rotations_from_the_same_version_have_exactly_one_winner() {
    let vault = TestVault::start().await;
    let client = vault.client().await;
    let (tenant, connection) = ids();
    let staged = client
        .stage(&tenant, &connection, &AppPassword::new("v1"))
        .await
        .unwrap();
    let expected = client.promote(&tenant, &connection, staged).await.unwrap();
    let (left, right) = (AppPassword::new("left"), AppPassword::new("right"));

    let (left_result, right_result) = tokio::join!(
        client.rotate(&tenant, &connection, &left, expected),
        client.rotate(&tenant, &connection, &right, expected),
    );

    let (winner, won, lost) = match (left_result, right_result) {
        (Ok(won), Err(lost)) => (left, won, lost),
        (Err(lost), Ok(won)) => (right, won, lost),
        other => panic!("expected exactly one winner, got {other:?}"),
    };
    let Error::Conflict {
        expected: lost_expected,
        actual,
        ..
    } = lost
    else {
        panic!("expected Conflict, got {lost:?}");
    };
    assert_eq!(lost_expected, expected);
    assert_eq!(actual, Some(won));
    let active = client
        .read_active::<AppPassword>(&tenant, &connection)
        .await
        .unwrap();
    assert_eq!((active.value, active.version), (winner, won));
}

#[tokio::test]
async fn a_rotation_of_credentials_replaced_by_a_promotion_is_a_conflict() {
    let vault = TestVault::start().await;
    let client = vault.client().await;
    let (tenant, connection) = ids();
    let first = client
        .stage(&tenant, &connection, &AppPassword::new("old grant"))
        .await
        .unwrap();
    let read_by_sync = client.promote(&tenant, &connection, first).await.unwrap();
    let second = client
        .stage(&tenant, &connection, &AppPassword::new("new grant"))
        .await
        .unwrap();
    let promoted = client.promote(&tenant, &connection, second).await.unwrap();

    let err = client
        .rotate(
            &tenant,
            &connection,
            &AppPassword::new("refreshed old grant"),
            read_by_sync,
        )
        .await
        .unwrap_err();

    assert!(
        matches!(err, Error::Conflict { actual: Some(actual), .. } if actual == promoted),
        "{err:?}"
    );
    let active = client
        .read_active::<AppPassword>(&tenant, &connection)
        .await
        .unwrap();
    assert_eq!(active.value, AppPassword::new("new grant"));
}

#[tokio::test]
async fn a_promotion_racing_a_rotation_ends_with_the_promoted_credentials() {
    let vault = TestVault::start().await;
    let client = vault.client().await;
    let (tenant, connection) = ids();
    let first = client
        .stage(&tenant, &connection, &AppPassword::new("old grant"))
        .await
        .unwrap();
    let read_by_sync = client.promote(&tenant, &connection, first).await.unwrap();
    let second = client
        .stage(&tenant, &connection, &AppPassword::new("new grant"))
        .await
        .unwrap();

    let refreshed = AppPassword::new("refreshed old grant");
    let (promoted, rotated) = tokio::join!(
        client.promote(&tenant, &connection, second),
        client.rotate(&tenant, &connection, &refreshed, read_by_sync),
    );

    let promoted = promoted.unwrap();
    if let Err(err) = rotated {
        assert!(matches!(err, Error::Conflict { .. }), "{err:?}");
    }
    let active = client
        .read_active::<AppPassword>(&tenant, &connection)
        .await
        .unwrap();
    assert_eq!(
        (active.value, active.version),
        (AppPassword::new("new grant"), promoted)
    );
}
