use std::{collections::HashSet, sync::Arc, time::Duration};

use chrono::{Days, Utc};
use fleet_connectors::{
    Config, Connector, Credentials, Error, ErrorClass, OAuthClient, oauth2::Client,
};
use fleet_sim::{Config as SimConfig, Fault, MetaConfig, MetaUserConfig, Sim, SimHandle};
use secrecy::{ExposeSecret as _, SecretString};

use crate::helpers::{config, consent, oauth, redirect_uri, sync_all, sync_from};

const APP_ID: &str = "100000000000001";
const APP_SECRET: &str = "sim-meta-app-secret";

/// Starts a simulator whose Meta user `ada` has `accounts` ad accounts,
/// the last `idle` of them without delivery.
async fn spawn(accounts: u32, idle: u32) -> SimHandle {
    spawn_meta(MetaConfig::default().user(MetaUserConfig::new("ada", accounts).idle(idle))).await
}

/// Starts a simulator with Meta's app and users as `meta` says.
pub(crate) async fn spawn_meta(meta: MetaConfig) -> SimHandle {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    Sim::start(listener, &SimConfig::default().meta(meta)).unwrap()
}

/// The days of `records`, sorted, without duplicates.
fn days_of(records: &[fleet_connectors::Record]) -> Vec<String> {
    let days: std::collections::BTreeSet<String> = records
        .iter()
        .map(|record| record.payload["date"].as_str().unwrap().to_owned())
        .collect();
    days.into_iter().collect()
}

/// Settings whose `meta` entry points at the simulator, with `page_size`
/// rows per Graph page and `extra` lines in its `[oauth2]` table.
fn meta_config(sim: &SimHandle, page_size: u32, extra: &str) -> (tempfile::TempDir, Config) {
    let graph = format!("{}/v22.0", sim.meta_url());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("meta.toml"),
        format!(
            "page_size = {page_size}\n[api_base_urls]\ngraph = \"{graph}\"\n\
             [oauth2]\nauthorize_url = \"{graph}/dialog/oauth\"\n\
             token_url = \"{graph}/oauth/access_token\"\nuserinfo_url = \"{graph}/me\"\n{extra}"
        ),
    )
    .unwrap();
    let client = OAuthClient {
        client_id: Some(APP_ID.to_owned()),
        client_secret: APP_SECRET.into(),
    };
    let config = Config {
        catalog_dir: Some(dir.path().to_owned()),
        oauth_clients: [("meta".to_owned(), client)].into(),
        ..config()
    };
    (dir, config)
}

/// Connects `ada`: login, code exchange and long-lived exchange.
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
) -> (Client, Arc<dyn Connector>, Credentials) {
    let (_dir, config) = meta_config(sim, page_size, "");
    let (client, connector) = oauth(&config, "meta");
    let credentials = connect(&client).await;
    (client, connector, credentials)
}

fn token(credentials: &Credentials) -> String {
    let Credentials::OAuth2 { access_token, .. } = credentials else {
        panic!("expected OAuth 2.0");
    };
    access_token.expose_secret().to_owned()
}

fn expires_at(credentials: &Credentials) -> chrono::DateTime<Utc> {
    let Credentials::OAuth2 {
        expires_at: Some(expires_at),
        ..
    } = credentials
    else {
        panic!("expected an expiry");
    };
    *expires_at
}

#[tokio::test]
async fn connecting_exchanges_the_short_lived_token_for_a_long_lived_one() {
    let sim = spawn(1, 0).await;
    let (client, connector, credentials) = connected(&sim, 25).await;

    let lifetime = expires_at(&credentials) - Utc::now();
    let account = connector.validate(&credentials).await.unwrap();

    assert!(lifetime > chrono::Duration::days(59), "{lifetime}");
    assert!(credentials.refresh_token().is_none());
    assert!(client.can_renew(&credentials));
    assert_eq!(account.name, "ada");
    assert!(
        account.id.chars().all(|c| c.is_ascii_digit()),
        "{}",
        account.id
    );
    assert_eq!(
        sim.meta_requests("ada"),
        3,
        "code exchange, long-lived exchange, /me"
    );
}

#[tokio::test]
async fn renew_trades_a_valid_token_for_a_new_long_lived_one() {
    let sim = spawn(1, 0).await;
    let (client, connector, credentials) = connected(&sim, 25).await;

    let renewed = client.renew(&credentials).await.unwrap().into_credentials();

    assert_ne!(token(&renewed), token(&credentials));
    assert!(expires_at(&renewed) - Utc::now() > chrono::Duration::days(59));
    assert_eq!(connector.validate(&renewed).await.unwrap().name, "ada");
}

#[tokio::test]
async fn an_expired_token_wants_renewal_and_renewing_it_needs_a_new_login() {
    let sim = spawn(1, 0).await;
    let (client, connector, credentials) = connected(&sim, 25).await;
    sim.inject_meta("ada", Fault::ExpiredAccessToken, 2);

    let rejected = connector.validate(&credentials).await.unwrap_err();
    let renewal = client.renew(&credentials).await.unwrap_err();

    assert!(rejected.wants_token_refresh(), "{rejected:?}");
    assert_eq!(rejected.class(), ErrorClass::ReauthRequired);
    assert!(
        rejected.to_string().contains("Session has expired"),
        "{rejected}"
    );
    assert_eq!(renewal.class(), ErrorClass::ReauthRequired);
    assert!(!renewal.wants_token_refresh());
    let text = renewal.to_string();
    assert!(text.contains("OAuthException 190/463"), "{text}");
    assert!(!text.contains(&token(&credentials)), "{text}");
    assert!(!text.contains(APP_SECRET), "{text}");
    let expired = Credentials::OAuth2 {
        access_token: SecretString::from(token(&credentials)),
        refresh_token: None,
        expires_at: Some(Utc::now() - chrono::Duration::minutes(1)),
        scope: None,
        values: fleet_connectors::ConnectionValues::default(),
    };
    assert!(!client.can_renew(&expired));
}

#[tokio::test]
async fn validate_with_an_unknown_token_needs_a_new_login() {
    let sim = spawn(1, 0).await;
    let (_dir, config) = meta_config(&sim, 25, "");
    let (_, connector) = oauth(&config, "meta");
    let credentials = Credentials::OAuth2 {
        access_token: SecretString::from("EAAforged"),
        refresh_token: None,
        expires_at: None,
        scope: None,
        values: fleet_connectors::ConnectionValues::default(),
    };

    let error = connector.validate(&credentials).await.unwrap_err();

    assert_eq!(error.class(), ErrorClass::ReauthRequired);
    assert!(!error.to_string().contains("EAAforged"), "{error}");
}

#[tokio::test]
async fn ad_insights_sync_every_account_page_by_page() {
    let sim = spawn(8, 1).await;
    let (_, connector, credentials) = connected(&sim, 7).await;

    let synced = sync_all(&*connector, &credentials, "ad_insights").await;

    // 8 accounts (listed 7 + 1), each with 30 days in pages of 7: 5 pages
    // each; the idle account's pages are empty.
    assert_eq!(synced.pages, 40);
    assert_eq!(synced.records.len(), 7 * 30);
    let ids: HashSet<_> = synced.records.iter().map(|r| &r.external_id).collect();
    assert_eq!(ids.len(), synced.records.len());
    let accounts: HashSet<_> = synced
        .records
        .iter()
        .map(|r| r.payload["account"].as_str().unwrap())
        .collect();
    assert_eq!(accounts.len(), 7);
    let yesterday = (Utc::now().date_naive() - Days::new(1)).to_string();
    let first_day = (Utc::now().date_naive() - Days::new(30)).to_string();
    let dates: Vec<_> = synced
        .records
        .iter()
        .map(|r| r.payload["date"].as_str().unwrap())
        .collect();
    assert_eq!(dates.iter().max(), Some(&yesterday.as_str()));
    assert_eq!(dates.iter().min(), Some(&first_day.as_str()));
    let record = &synced.records[0];
    assert_eq!(
        record.external_id,
        format!(
            "{}:{}",
            record.payload["account"].as_str().unwrap(),
            record.payload["date"].as_str().unwrap()
        )
    );
    assert!(record.payload["impressions"].is_string());
    let impressions: u64 = record.payload["impressions"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(record.payload["numbers"]["impressions"], impressions);
    assert!(record.payload["numbers"]["spend"].is_f64());
}

#[tokio::test]
async fn cursors_carry_no_token_and_resume_after_a_round_trip_through_json() {
    let sim = spawn(2, 0).await;
    let (_, connector, credentials) = connected(&sim, 20).await;

    let first = connector
        .sync_page(&credentials, "ad_insights", None)
        .await
        .unwrap();
    let cursor = first.next.unwrap();
    let stored = cursor.to_string();
    let resumed: serde_json::Value = serde_json::from_str(&stored).unwrap();
    let second = connector
        .sync_page(&credentials, "ad_insights", Some(&resumed))
        .await
        .unwrap();

    assert!(!stored.contains(&token(&credentials)), "{stored}");
    assert_eq!((first.records.len(), second.records.len()), (20, 10));
    assert_eq!(
        first.records[0].payload["account"],
        second.records[0].payload["account"]
    );
    assert!(second.next.is_some(), "the second account is still to come");
}

#[tokio::test]
async fn an_ad_account_limit_is_retryable_after_the_minutes_meta_names() {
    let sim = spawn(1, 0).await;
    let (_, connector, credentials) = connected(&sim, 25).await;
    let before = sim.meta_requests("ada");
    sim.inject_meta(
        "ada",
        Fault::RateLimited {
            retry_after_secs: 300,
        },
        1,
    );

    let error = connector
        .sync_page(&credentials, "ad_insights", None)
        .await
        .unwrap_err();

    assert_eq!(
        error.class(),
        ErrorClass::Retryable {
            retry_after: Some(Duration::from_secs(300))
        }
    );
    let Error::Throttled { code, .. } = &error else {
        panic!("expected Throttled, got {error:?}");
    };
    assert_eq!(code, "OAuthException 80000/2446079");
    assert_eq!(
        sim.meta_requests("ada") - before,
        1,
        "a long wait is handed back, not waited out"
    );
}

#[tokio::test]
async fn a_user_request_limit_without_a_wait_is_retried_within_the_call() {
    let sim = spawn(1, 0).await;
    let (_, connector, credentials) = connected(&sim, 25).await;
    sim.inject_meta(
        "ada",
        Fault::RateLimited {
            retry_after_secs: 0,
        },
        1,
    );

    let page = connector
        .sync_page(&credentials, "ad_insights", None)
        .await
        .unwrap();

    assert_eq!(page.records.len(), 25);
}

#[tokio::test]
async fn a_token_without_ads_read_asks_to_reconnect_and_names_the_permission() {
    let sim = spawn(1, 0).await;
    let (_dir, config) = meta_config(&sim, 25, "scopes = [\"public_profile\"]\n");
    let (client, connector) = oauth(&config, "meta");
    let credentials = connect(&client).await;

    let error = connector
        .sync_page(&credentials, "ad_insights", None)
        .await
        .unwrap_err();

    assert_eq!(error.class(), ErrorClass::ReauthRequired);
    let Error::PermissionMissing { permission, .. } = &error else {
        panic!("expected PermissionMissing, got {error:?}");
    };
    assert_eq!(permission, "ads_management or ads_read");
    let text = error.to_string();
    assert!(
        text.contains("lacks a permission: ads_management or ads_read")
            && text.contains("reconnect"),
        "{text}"
    );
}

#[tokio::test]
async fn every_graph_call_carries_the_appsecret_proof_an_app_may_require() {
    let sim = spawn_meta(
        MetaConfig {
            require_appsecret_proof: true,
            ..MetaConfig::default()
        }
        .user(MetaUserConfig::new("ada", 2)),
    )
    .await;
    let (_, connector, credentials) = connected(&sim, 25).await;

    let account = connector.validate(&credentials).await.unwrap();
    let synced = sync_all(&*connector, &credentials, "ad_insights").await;

    assert_eq!(account.name, "ada");
    assert_eq!(synced.records.len(), 2 * 30);
}

#[tokio::test]
async fn too_much_data_is_asked_for_again_in_halves_and_nothing_is_missed() {
    let sim =
        spawn_meta(MetaConfig::default().user(MetaUserConfig::new("ada", 2).insights_day_limit(7)))
            .await;
    let (_, connector, credentials) = connected(&sim, 25).await;

    let synced = sync_all(&*connector, &credentials, "ad_insights").await;

    assert!(synced.gaps.is_empty(), "{:?}", synced.gaps);
    assert_eq!(synced.records.len(), 2 * 30);
    let ids: HashSet<_> = synced.records.iter().map(|r| &r.external_id).collect();
    assert_eq!(ids.len(), 2 * 30);
    assert_eq!(days_of(&synced.records).len(), 30);
    // Per account: 30 and 15 days refused, then 7, 7, 7, 7, 7 (cut to 2).
    assert_eq!(synced.pages, 2 * 5);
}

#[tokio::test]
async fn a_day_that_fails_even_alone_is_a_gap_that_names_it_and_the_pass_goes_on() {
    let sim =
        spawn_meta(MetaConfig::default().user(MetaUserConfig::new("ada", 1).insights_day_limit(0)))
            .await;
    let (_, connector, credentials) = connected(&sim, 25).await;
    let yesterday = (Utc::now().date_naive() - Days::new(1)).to_string();

    let synced = sync_all(&*connector, &credentials, "ad_insights").await;

    assert!(synced.records.is_empty());
    assert_eq!(synced.gaps.len(), 30, "{:?}", synced.gaps);
    let last = synced.gaps.last().unwrap();
    assert!(
        last.contains(&yesterday)
            && last.contains("act_")
            && last.contains("reduce the amount of data"),
        "{last}"
    );
}

#[tokio::test]
async fn an_incremental_pass_reopens_the_attribution_window_and_reads_revisions() {
    let sim = spawn(1, 0).await;
    let (_, connector, credentials) = connected(&sim, 100).await;
    let first = sync_all(&*connector, &credentials, "ad_insights").await;
    let account = first.records[0].payload["account"]
        .as_str()
        .unwrap()
        .to_owned();
    let revised = Utc::now().date_naive() - Days::new(20);
    sim.set_meta_impressions(&account, revised, Some(77_777));

    let since = Utc::now() - chrono::Duration::hours(6);
    let start = connector.incremental_start("ad_insights", since).unwrap();
    let synced = sync_from(&*connector, &credentials, "ad_insights", Some(start)).await;

    let record = synced
        .records
        .iter()
        .find(|record| record.payload["date"] == revised.to_string())
        .unwrap();
    assert_eq!(record.payload["numbers"]["impressions"], 77_777);
    let days = days_of(&synced.records);
    let today = Utc::now().date_naive();
    // 28 days of attribution and one for time zones before the last pass.
    let first = since.date_naive() - Days::new(29);
    assert_eq!(days.first(), Some(&first.to_string()), "{days:?}");
    assert_eq!(days.last(), Some(&(today - Days::new(1)).to_string()));
}

#[tokio::test]
async fn an_incremental_pass_after_a_long_pause_fills_every_day_since() {
    let sim = spawn(1, 0).await;
    let (_, connector, credentials) = connected(&sim, 100).await;

    let start = connector
        .incremental_start("ad_insights", Utc::now() - chrono::Duration::days(60))
        .unwrap();
    let synced = sync_from(&*connector, &credentials, "ad_insights", Some(start)).await;

    let days = days_of(&synced.records);
    let today = Utc::now().date_naive();
    assert_eq!(
        days.first(),
        Some(&(today - Days::new(89)).to_string()),
        "{days:?}"
    );
    assert_eq!(days.len(), 89);
}
