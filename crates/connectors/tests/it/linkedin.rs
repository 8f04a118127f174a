use std::{collections::HashSet, sync::Arc, time::Duration};

use chrono::{Days, Utc};
use fleet_connectors::{
    Config, Connector, Credentials, Error, ErrorClass, OAuthClient, Registry, oauth2::Client,
};
use fleet_sim::{
    Config as SimConfig, Fault, GoogleConfig, LinkedInConfig, LinkedInUserConfig, Sim, SimHandle,
};
use secrecy::{ExposeSecret as _, SecretString};

use crate::helpers::{
    config, connect as connect_google, consent, google_catalog, oauth, oauth_config, redirect_uri,
    spawn_google, sync_all, sync_from,
};

const CLIENT_ID: &str = "sim-linkedin-client";
const CLIENT_SECRET: &str = "sim-linkedin-secret";

/// Starts a simulator whose LinkedIn member `lin` administers
/// `organizations` organizations.
pub(crate) async fn spawn(linkedin: LinkedInConfig, organizations: u32) -> SimHandle {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let linkedin = linkedin.user(LinkedInUserConfig::new("lin", organizations));
    Sim::start(listener, &SimConfig::default().linkedin(linkedin)).unwrap()
}

/// Settings whose `linkedin` entry points at the simulator, with
/// `page_size` ACLs per page and `extra` top-level lines (such as
/// `api_version`), and `scopes` when given.
fn linkedin_config(
    sim: &SimHandle,
    page_size: u32,
    extra: &str,
    scopes: Option<&str>,
) -> (tempfile::TempDir, Config) {
    let api = sim.linkedin_url();
    let scopes = scopes
        .map(|scopes| format!("scopes = {scopes}\n"))
        .unwrap_or_default();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("linkedin.toml"),
        format!(
            "page_size = {page_size}\n{extra}\n[api_base_urls]\napi = \"{api}\"\n\
             [oauth2]\nauthorize_url = \"{api}/oauth/v2/authorization\"\n\
             token_url = \"{api}/oauth/v2/accessToken\"\nuserinfo_url = \"{api}/v2/userinfo\"\n{scopes}"
        ),
    )
    .unwrap();
    let client = OAuthClient {
        client_id: Some(CLIENT_ID.to_owned()),
        client_secret: CLIENT_SECRET.into(),
    };
    let config = Config {
        catalog_dir: Some(dir.path().to_owned()),
        oauth_clients: [("linkedin".to_owned(), client)].into(),
        ..config()
    };
    (dir, config)
}

async fn connect(client: &Client) -> Credentials {
    let authorization = client.authorize(&redirect_uri()).unwrap();
    let code = consent(&authorization).await;
    client
        .exchange_code(&code, &redirect_uri(), None)
        .await
        .unwrap()
        .into_credentials()
}

pub(crate) async fn connected(
    sim: &SimHandle,
    page_size: u32,
    extra: &str,
) -> (Client, Arc<dyn Connector>, Credentials) {
    let (_dir, config) = linkedin_config(sim, page_size, extra, None);
    let (client, connector) = oauth(&config, "linkedin");
    let credentials = connect(&client).await;
    (client, connector, credentials)
}

#[tokio::test]
async fn validate_names_the_member_from_userinfo_and_refuses_an_unknown_token() {
    let sim = spawn(LinkedInConfig::default(), 1).await;
    let (_, connector, credentials) = connected(&sim, 10, "").await;
    let forged = Credentials::OAuth2 {
        access_token: SecretString::from("AQVforged"),
        refresh_token: None,
        expires_at: None,
        scope: None,
        values: fleet_connectors::ConnectionValues::default(),
    };

    let account = connector.validate(&credentials).await.unwrap();
    let error = connector.validate(&forged).await.unwrap_err();

    assert_eq!(account.name, "lin");
    assert!(!account.id.is_empty());
    assert!(error.wants_token_refresh(), "{error:?}");
    assert_eq!(error.class(), ErrorClass::ReauthRequired);
    assert!(!error.to_string().contains("AQVforged"), "{error}");
}

#[tokio::test]
async fn follower_statistics_sync_every_organization_over_acl_pages() {
    let sim = spawn(LinkedInConfig::default(), 5).await;
    let (_, connector, credentials) = connected(&sim, 2, "").await;

    let synced = sync_all(&*connector, &credentials, "follower_statistics").await;

    assert_eq!(synced.pages, 5, "one page per organization");
    assert_eq!(synced.records.len(), 5 * 30);
    let ids: HashSet<_> = synced.records.iter().map(|r| &r.external_id).collect();
    assert_eq!(ids.len(), synced.records.len());
    let organizations: HashSet<_> = synced
        .records
        .iter()
        .map(|r| r.payload["organization"].as_str().unwrap())
        .collect();
    assert_eq!(organizations.len(), 5);
    let record = &synced.records[0];
    let organization = record.payload["organization"].as_str().unwrap();
    assert!(
        organization.starts_with("urn:li:organization:"),
        "{organization}"
    );
    let first_day = (Utc::now().date_naive() - Days::new(30)).to_string();
    assert_eq!(record.external_id, format!("{organization}:{first_day}"));
    let yesterday = (Utc::now().date_naive() - Days::new(1)).to_string();
    assert_eq!(
        synced.records[29].payload["date"].as_str(),
        Some(yesterday.as_str())
    );
    assert!(record.payload["organicFollowerGain"].is_i64());
    assert!(record.payload["paidFollowerGain"].is_i64());
}

#[tokio::test]
async fn a_member_without_organizations_finishes_at_once() {
    let sim = spawn(LinkedInConfig::default(), 0).await;
    let (_, connector, credentials) = connected(&sim, 10, "").await;

    let synced = sync_all(&*connector, &credentials, "follower_statistics").await;

    assert_eq!((synced.pages, synced.records.len()), (1, 0));
}

#[tokio::test]
async fn a_sunset_version_is_a_permanent_error_that_names_the_fix() {
    let sim = spawn(LinkedInConfig::default(), 1).await;
    let (_, connector, credentials) = connected(&sim, 10, "api_version = \"202401\"").await;

    let error = connector
        .sync_page(&credentials, "follower_statistics", None)
        .await
        .unwrap_err();

    assert_eq!(error.class(), ErrorClass::Permanent);
    let Error::ApiVersion { version, code, .. } = &error else {
        panic!("expected ApiVersion, got {error:?}");
    };
    assert_eq!(
        (version.as_str(), code.as_str()),
        ("202401", "NONEXISTENT_VERSION")
    );
    assert!(error.to_string().contains("api_version"), "{error}");
}

#[tokio::test]
async fn a_catalog_without_a_valid_version_does_not_build() {
    let sim = spawn(LinkedInConfig::default(), 1).await;

    for extra in ["api_version = \"2026-03\"", "api_version = \"\""] {
        let (_dir, config) = linkedin_config(&sim, 10, extra, None);
        assert!(Registry::new(&config).is_err(), "{extra}");
    }
}

#[tokio::test]
async fn the_daily_limit_is_retryable_after_an_hour_without_retrying_in_the_call() {
    let sim = spawn(LinkedInConfig::default(), 1).await;
    let (_, connector, credentials) = connected(&sim, 10, "").await;
    let before = sim.linkedin_requests("lin");
    sim.inject_linkedin(
        "lin",
        Fault::RateLimited {
            retry_after_secs: 0,
        },
        1,
    );

    let error = connector
        .sync_page(&credentials, "follower_statistics", None)
        .await
        .unwrap_err();

    assert_eq!(
        error.class(),
        ErrorClass::Retryable {
            retry_after: Some(Duration::from_secs(3600))
        }
    );
    assert!(error.to_string().contains("TOO_MANY_REQUESTS"), "{error}");
    assert_eq!(sim.linkedin_requests("lin") - before, 1);
}

#[tokio::test]
async fn a_missing_organization_permission_is_permanent() {
    let sim = spawn(LinkedInConfig::default(), 1).await;
    let scopes = Some("[\"openid\", \"profile\", \"email\"]");
    let (_dir, config) = linkedin_config(&sim, 10, "", scopes);
    let (client, connector) = oauth(&config, "linkedin");
    let credentials = connect(&client).await;

    let error = connector
        .sync_page(&credentials, "follower_statistics", None)
        .await
        .unwrap_err();

    assert_eq!(error.class(), ErrorClass::Permanent);
    assert!(matches!(error, Error::PermissionDenied { .. }), "{error:?}");
    assert!(error.to_string().contains("ACCESS_DENIED"), "{error}");
}

#[tokio::test]
async fn an_expired_token_wants_renewal_and_renew_refreshes_it() {
    let sim = spawn(
        LinkedInConfig {
            refresh_tokens: true,
            ..LinkedInConfig::default()
        },
        1,
    )
    .await;
    let (client, connector, credentials) = connected(&sim, 10, "").await;
    sim.inject_linkedin("lin", Fault::ExpiredAccessToken, 1);

    let error = connector
        .sync_page(&credentials, "follower_statistics", None)
        .await
        .unwrap_err();
    assert!(error.wants_token_refresh(), "{error:?}");
    assert!(client.can_renew(&credentials));
    let renewed = client.renew(&credentials).await.unwrap().into_credentials();

    assert_eq!(
        renewed
            .refresh_token()
            .map(|t| t.expose_secret().to_owned()),
        credentials
            .refresh_token()
            .map(|t| t.expose_secret().to_owned())
    );
    let page = connector
        .sync_page(&renewed, "follower_statistics", None)
        .await
        .unwrap();
    assert_eq!(page.records.len(), 30);
}

#[tokio::test]
async fn an_expired_refresh_token_refused_with_invalid_request_asks_the_member_to_reconnect() {
    let sim = spawn(
        LinkedInConfig {
            refresh_tokens: true,
            ..LinkedInConfig::default()
        },
        1,
    )
    .await;
    let (client, _, credentials) = connected(&sim, 10, "").await;
    sim.expire_linkedin_refresh_tokens("lin");
    let before = sim.linkedin_requests("lin");

    let error = client.renew(&credentials).await.unwrap_err();

    assert_eq!(error.class(), ErrorClass::ReauthRequired);
    assert!(
        matches!(error, Error::RefreshTokenRejected { .. }),
        "{error:?}"
    );
    let text = error.to_string();
    assert!(
        text.contains("invalid_request") && text.contains("reconnect"),
        "{text}"
    );
    let refresh_token = credentials.refresh_token().unwrap().expose_secret();
    assert!(!text.contains(refresh_token), "{text}");
    assert!(!text.contains(CLIENT_SECRET), "{text}");
    assert!(sim.linkedin_requests("lin") - before <= 1, "no retries");
}

#[tokio::test]
async fn an_incremental_pass_reads_from_three_days_before_the_last_one_with_revisions() {
    let sim = spawn(LinkedInConfig::default(), 2).await;
    let (_, connector, credentials) = connected(&sim, 10, "").await;
    let first = sync_all(&*connector, &credentials, "follower_statistics").await;
    let organization = first.records[0].payload["organization"]
        .as_str()
        .unwrap()
        .to_owned();
    let today = Utc::now().date_naive();
    sim.set_linkedin_gains(&organization, today - Days::new(2), 41, 3);

    let since = Utc::now() - chrono::Duration::hours(2);
    let start = connector
        .incremental_start("follower_statistics", since)
        .unwrap();
    let synced = sync_from(
        &*connector,
        &credentials,
        "follower_statistics",
        Some(start),
    )
    .await;

    let first_day = since.date_naive() - Days::new(3);
    let days = u64::try_from((today - first_day).num_days()).unwrap();
    assert_eq!(synced.records.len() as u64, 2 * days);
    let revised = synced
        .records
        .iter()
        .find(|record| {
            record.payload["organization"] == organization.as_str()
                && record.payload["date"] == (today - Days::new(2)).to_string()
        })
        .unwrap();
    assert_eq!(
        (
            revised.payload["organicFollowerGain"].clone(),
            revised.payload["paidFollowerGain"].clone()
        ),
        (serde_json::json!(41), serde_json::json!(3))
    );
    let dates: HashSet<_> = synced
        .records
        .iter()
        .map(|record| record.payload["date"].as_str().unwrap().to_owned())
        .collect();
    assert!(dates.contains(&first_day.to_string()), "{dates:?}");
    assert!(
        !dates.contains(&today.to_string()),
        "today is not whole yet"
    );
}

#[tokio::test]
async fn an_incremental_pass_after_a_long_pause_fills_every_day_since() {
    let sim = spawn(LinkedInConfig::default(), 1).await;
    let (_, connector, credentials) = connected(&sim, 10, "").await;

    let start = connector
        .incremental_start(
            "follower_statistics",
            Utc::now() - chrono::Duration::days(50),
        )
        .unwrap();
    let synced = sync_from(
        &*connector,
        &credentials,
        "follower_statistics",
        Some(start),
    )
    .await;

    assert_eq!(synced.records.len(), 53);
}

#[tokio::test]
async fn renew_without_a_refresh_token_asks_the_user_to_reconnect() {
    let sim = spawn(LinkedInConfig::default(), 1).await;
    let (client, _, credentials) = connected(&sim, 10, "").await;
    let before = sim.linkedin_requests("lin");

    let error = client.renew(&credentials).await.unwrap_err();

    assert!(!client.can_renew(&credentials));
    assert_eq!(error.class(), ErrorClass::ReauthRequired);
    assert!(matches!(error, Error::NoRefreshToken { .. }), "{error:?}");
    assert!(
        error.to_string().contains("no refresh token") && error.to_string().contains("reconnect"),
        "{error}"
    );
    assert_eq!(sim.linkedin_requests("lin"), before, "no request is made");
}

#[tokio::test]
async fn renew_keeps_the_stored_refresh_token_when_the_refresh_response_has_none() {
    let sim = spawn_google(GoogleConfig::default()).await;
    let dir = google_catalog(&sim, 7);
    let (client, connector) = oauth(
        &oauth_config(&dir, &["google-analytics"]),
        "google-analytics",
    );
    let credentials = connect_google(&client).await;

    let renewed = client.renew(&credentials).await.unwrap();

    let stored = credentials.refresh_token().unwrap().expose_secret();
    assert_eq!(
        renewed.refresh_token.as_ref().map(|t| t.expose_secret()),
        Some(stored)
    );
    let renewed = renewed.into_credentials();
    assert!(connector.validate(&renewed).await.is_ok());
}
