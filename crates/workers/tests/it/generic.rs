//! A provider the catalog describes without a sync mapping of its own: its
//! syncs check the grant at the provider every time.

use fleet_events::{ConnectionState, ConnectionStatus, SetupOrigin};
use fleet_sim::Fault;

use crate::helpers::{GOOGLE_CLIENT_ID, GOOGLE_USER, TestFleet};

/// An OpenID Connect provider (the simulated Google's endpoints) added by
/// the operator, with no connector of its own.
fn openid_entry() -> String {
    format!(
        "display_name = \"Acme ID\"\nauth = \"oauth2\"\ndocs_url = \"https://id.acme.test\"\n\
         default_sync_interval_secs = 3600\n[oauth2]\n\
         authorize_url = \"{{google}}/o/oauth2/v2/auth\"\ntoken_url = \"{{google}}/token\"\n\
         userinfo_url = \"{{google}}/v1/userinfo\"\nscopes = [\"openid\"]\n\
         client_id = \"{GOOGLE_CLIENT_ID}\"\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sync_of_a_provider_without_a_mapping_asks_the_provider() {
    let fleet = TestFleet::start_with_catalog("acme-id", &openid_entry()).await;
    let credentials = fleet.google_consent().await;

    let (connection, _) = fleet
        .connect_to("acme-id", SetupOrigin::Oauth, &credentials)
        .await;

    let statuses = fleet
        .statuses_until(&connection, ConnectionState::Synced)
        .await;
    let ConnectionStatus::Synced { records, .. } = statuses.last().unwrap().status else {
        unreachable!()
    };
    assert_eq!(records, 1, "the account's identity is its one record");

    // The provider stops honouring the token, and renewing it fails (no
    // client secret is configured for this entry): the next sync says so
    // instead of `synced`.
    fleet
        .sim
        .inject_google(GOOGLE_USER, Fault::ExpiredAccessToken, 100);
    fleet.sync_now("acme-id", &connection).await;

    let row = fleet.row_in(&connection, ConnectionState::Failed).await;
    let error = row.last_error.unwrap();
    assert!(error.contains("the token refresh failed"), "{error}");
    fleet.stop().await;
}
