use fleet_connectors::{ErrorClass, Page};
use fleet_sim::{Fault, GoogleConfig};
use serde_json::json;

use crate::helpers::{connect, google_catalog, oauth, oauth_config, spawn_google, sync_all};

const GA: &str = "google-analytics";

#[tokio::test]
async fn validate_names_the_first_property_of_the_account_summaries() {
    let sim = spawn_google(GoogleConfig::default()).await;
    let dir = google_catalog(&sim, 7);
    let (client, connector) = oauth(&oauth_config(&dir, &[GA]), GA);
    let credentials = connect(&client).await;

    let account = connector.validate(&credentials).await.unwrap();

    assert_eq!(account.id, "properties/1000001");
    assert_eq!(account.name, "Property 1000001 (ada account 1)");
}

#[tokio::test]
async fn daily_metrics_sync_over_several_pages_with_parsed_metrics() {
    let sim = spawn_google(GoogleConfig::default()).await;
    let dir = google_catalog(&sim, 7);
    let (client, connector) = oauth(&oauth_config(&dir, &[GA]), GA);
    let credentials = connect(&client).await;

    let synced = sync_all(&*connector, &credentials, "daily_metrics").await;

    assert_eq!(synced.pages, 5);
    assert_eq!(synced.records.len(), 30);
    assert!(synced.totals.iter().all(|total| *total == Some(30)));
    let first = &synced.records[0];
    assert!(
        first.external_id.starts_with("1000001:"),
        "{}",
        first.external_id
    );
    let sessions = first.payload["sessions"].as_u64().unwrap();
    assert_eq!(first.payload["screenPageViews"], json!(sessions * 3));
    let dates: Vec<_> = synced
        .records
        .iter()
        .map(|record| record.payload["date"].as_str().unwrap().to_owned())
        .collect();
    assert!(dates.windows(2).all(|pair| pair[0] < pair[1]), "{dates:?}");
}

#[tokio::test]
async fn rate_limiting_without_retry_after_is_retryable() {
    let sim = spawn_google(GoogleConfig::default()).await;
    let dir = google_catalog(&sim, 7);
    let (client, connector) = oauth(&oauth_config(&dir, &[GA]), GA);
    let credentials = connect(&client).await;
    sim.inject_google(
        "ada",
        Fault::RateLimited {
            retry_after_secs: 0,
        },
        3,
    );

    let error = connector
        .sync_page(&credentials, "daily_metrics", None)
        .await
        .unwrap_err();

    assert_eq!(error.class(), ErrorClass::Retryable { retry_after: None });
    assert!(error.to_string().contains("HTTP 429"), "{error}");
}

#[tokio::test]
async fn an_expired_access_token_is_cured_by_one_refresh() {
    let sim = spawn_google(GoogleConfig::default()).await;
    let dir = google_catalog(&sim, 7);
    let (client, connector) = oauth(&oauth_config(&dir, &[GA]), GA);
    let credentials = connect(&client).await;
    sim.inject_google("ada", Fault::ExpiredAccessToken, 1);

    let error = connector
        .sync_page(&credentials, "daily_metrics", None)
        .await
        .unwrap_err();
    assert!(error.wants_token_refresh(), "{error:?}");
    assert_eq!(error.class(), ErrorClass::ReauthRequired);
    let refreshed = client
        .refresh(credentials.refresh_token().unwrap())
        .await
        .unwrap();
    let credentials = credentials.merge_refresh(refreshed);

    let page: Page = connector
        .sync_page(&credentials, "daily_metrics", None)
        .await
        .unwrap();
    assert_eq!(page.records.len(), 7);
}
