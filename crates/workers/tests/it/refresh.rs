//! OAuth token renewal in the sync step, against the simulated Google.

use chrono::Utc;
use fleet_connectors::Credentials;
use fleet_events::{ConnectionId, ConnectionState, ConnectionStatus, SetupOrigin};
use fleet_secrets::Stored;
use fleet_sim::Fault;
use secrecy::ExposeSecret as _;

use crate::helpers::{GOOGLE_USER, TestFleet};

/// A Google Analytics connection set up through consent and synced once.
async fn connected(fleet: &TestFleet) -> (ConnectionId, Stored<Credentials>) {
    let credentials = fleet.google_consent().await;
    let (connection, _) = fleet
        .connect_to("google-analytics", SetupOrigin::Oauth, &credentials)
        .await;
    fleet
        .statuses_until(&connection, ConnectionState::Synced)
        .await;
    let stored = active(fleet, &connection).await;
    (connection, stored)
}

async fn active(fleet: &TestFleet, connection: &ConnectionId) -> Stored<Credentials> {
    fleet.in_use(connection).await.unwrap()
}

/// Makes the stored access token expire `minutes` from now, as time
/// passing would.
async fn expire_in(
    fleet: &TestFleet,
    connection: &ConnectionId,
    stored: &Stored<Credentials>,
    minutes: i64,
) -> Stored<Credentials> {
    let Credentials::OAuth2 {
        access_token,
        refresh_token,
        scope,
        ..
    } = stored.value.clone()
    else {
        panic!("OAuth 2.0 credentials expected");
    };
    let value = Credentials::OAuth2 {
        access_token,
        refresh_token,
        expires_at: Some(Utc::now() + chrono::Duration::minutes(minutes)),
        scope,
        values: fleet_connectors::ConnectionValues::default(),
    };
    fleet
        .replace_in_use(connection, stored.version, value)
        .await
}

fn tokens(credentials: &Credentials) -> (String, Option<String>) {
    let Credentials::OAuth2 {
        access_token,
        refresh_token,
        ..
    } = credentials
    else {
        panic!("OAuth 2.0 credentials expected");
    };
    (
        access_token.expose_secret().to_owned(),
        refresh_token.as_ref().map(|t| t.expose_secret().to_owned()),
    )
}

#[tokio::test]
async fn a_token_about_to_expire_is_renewed_before_the_sync() {
    let fleet = TestFleet::start().await;
    let (connection, stored) = connected(&fleet).await;
    let soon = expire_in(&fleet, &connection, &stored, 5).await;

    fleet.sync_now("google-analytics", &connection).await;
    fleet
        .statuses_until_nth(&connection, ConnectionState::Synced, 2)
        .await;

    let renewed = active(&fleet, &connection).await;
    let (before_access, before_refresh) = tokens(&soon.value);
    let (after_access, after_refresh) = tokens(&renewed.value);
    assert_ne!(after_access, before_access);
    // Google's refresh response has no refresh token: the stored one stays.
    assert_eq!(after_refresh, before_refresh);
    assert!(
        !renewed
            .value
            .expires_within(std::time::Duration::from_secs(50 * 60), Utc::now())
    );
    let history = fleet
        .deps
        .store
        .refresh_history(&fleet.tenant, &connection)
        .await
        .unwrap()
        .expect("a refresh was recorded");
    assert!(history.last_success_at.is_some());
    assert_eq!(history.failures, 0);
    fleet.stop().await;
}

#[tokio::test]
async fn a_rejected_token_is_renewed_once_and_the_page_asked_again() {
    let fleet = TestFleet::start().await;
    let (connection, stored) = connected(&fleet).await;

    fleet
        .sim
        .inject_google(GOOGLE_USER, Fault::ExpiredAccessToken, 1);
    fleet.sync_now("google-analytics", &connection).await;
    let statuses = fleet
        .statuses_until_nth(&connection, ConnectionState::Synced, 2)
        .await;

    assert!(
        statuses
            .iter()
            .all(|s| s.status.state() != ConnectionState::ReauthRequired),
        "{statuses:?}"
    );
    let renewed = active(&fleet, &connection).await;
    assert_ne!(tokens(&renewed.value).0, tokens(&stored.value).0);
    fleet.stop().await;
}

#[tokio::test]
async fn a_token_still_rejected_after_renewal_ends_as_reauth_required() {
    let fleet = TestFleet::start().await;
    let (connection, _) = connected(&fleet).await;

    fleet
        .sim
        .inject_google(GOOGLE_USER, Fault::ExpiredAccessToken, 3);
    fleet.sync_now("google-analytics", &connection).await;
    let statuses = fleet
        .statuses_until(&connection, ConnectionState::ReauthRequired)
        .await;

    let Some(ConnectionStatus::ReauthRequired { reason }) = statuses.last().map(|s| &s.status)
    else {
        panic!("{statuses:?}");
    };
    assert!(!reason.is_empty());
    fleet.sim.clear_faults();
    fleet
        .row_in(&connection, ConnectionState::ReauthRequired)
        .await;
    fleet.stop().await;
}

#[tokio::test]
async fn invalid_grant_ends_as_reauth_required_without_retries() {
    let fleet = TestFleet::start().await;
    let (connection, _) = connected(&fleet).await;

    fleet
        .sim
        .inject_google(GOOGLE_USER, Fault::ExpiredAccessToken, 1);
    fleet.sim.inject_google(GOOGLE_USER, Fault::InvalidGrant, 1);
    let before = fleet.sim.google_requests(GOOGLE_USER);
    fleet.sync_now("google-analytics", &connection).await;
    let statuses = fleet
        .statuses_until(&connection, ConnectionState::ReauthRequired)
        .await;

    let Some(ConnectionStatus::ReauthRequired { reason }) = statuses.last().map(|s| &s.status)
    else {
        panic!("{statuses:?}");
    };
    assert!(reason.contains("invalid_grant"), "{reason}");
    // One API call and one refresh: no retry against the provider.
    assert_eq!(fleet.sim.google_requests(GOOGLE_USER) - before, 2);
    let history = fleet
        .deps
        .store
        .refresh_history(&fleet.tenant, &connection)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(history.failures, 1);
    fleet.stop().await;
}

#[tokio::test]
async fn two_sync_requests_at_once_renew_once_and_keep_a_working_rotated_refresh_token() {
    let fleet = TestFleet::start_google(fleet_sim::GoogleConfig {
        rotate_refresh_tokens: true,
        ..fleet_sim::GoogleConfig::default()
    })
    .await;
    let (connection, stored) = connected(&fleet).await;
    let soon = expire_in(&fleet, &connection, &stored, 1).await;
    let acked_before = fleet.stats(fleet_events::Step::Sync).acked;

    // The second joins the first, or runs after it: never beside it.
    fleet.sync_now("google-analytics", &connection).await;
    fleet.sync_now("google-analytics", &connection).await;
    fleet_testkit::eventually(
        crate::helpers::DEADLINE,
        "both requests to be handled",
        || async {
            (fleet.stats(fleet_events::Step::Sync).acked >= acked_before + 2).then_some(())
        },
    )
    .await;
    let statuses = fleet
        .statuses_until_nth(&connection, ConnectionState::Synced, 2)
        .await;

    assert!(
        statuses
            .iter()
            .all(|s| s.status.state() != ConnectionState::ReauthRequired),
        "{statuses:?}"
    );
    let renewed = active(&fleet, &connection).await;
    assert_eq!(
        renewed.version.get(),
        soon.version.get() + 1,
        "exactly one renewal"
    );
    let (_, refresh_token) = tokens(&renewed.value);
    assert_ne!(
        refresh_token,
        tokens(&soon.value).1,
        "the provider rotated it"
    );
    // The stored refresh token is the live one.
    let refresh_token = secrecy::SecretString::from(refresh_token.unwrap());
    fleet.google().refresh(&refresh_token).await.unwrap();
    fleet.stop().await;
}
