use std::time::Duration;

use chrono::{Days, NaiveDate, Utc};
use fleet_connectors::{Error, ErrorClass, Page, Record};
use fleet_sim::{Config as SimConfig, Fault, GoogleConfig, GoogleUserConfig, Sim, SimHandle};
use secrecy::ExposeSecret as _;
use serde_json::json;

use crate::helpers::{
    connect, google_catalog, oauth, oauth_config, spawn_google, sync_all, sync_from,
};

const GA: &str = "google-analytics";

/// The property the connector reads: the first of `ada`'s first account.
const PROPERTY: u64 = 1_000_001;

/// Starts a simulator whose only Google user is `user`.
async fn spawn_user(user: GoogleUserConfig) -> SimHandle {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let google = GoogleConfig::default().user(user);
    Sim::start(listener, &SimConfig::default().google(google)).unwrap()
}

/// The days of `records`, in order.
fn dates(records: &[Record]) -> Vec<NaiveDate> {
    records
        .iter()
        .map(|record| {
            NaiveDate::parse_from_str(record.payload["date"].as_str().unwrap(), "%Y-%m-%d").unwrap()
        })
        .collect()
}

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

    // 31 days: the property's last 30, from a start one day earlier that
    // covers a property west of UTC.
    assert_eq!(synced.pages, 5);
    assert_eq!(synced.records.len(), 31);
    assert!(synced.totals.iter().all(|total| *total == Some(31)));
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
async fn an_exhausted_hourly_quota_waits_an_hour_instead_of_retrying_at_once() {
    let sim = spawn_google(GoogleConfig::default()).await;
    let dir = google_catalog(&sim, 7);
    let (client, connector) = oauth(&oauth_config(&dir, &[GA]), GA);
    let credentials = connect(&client).await;
    let before = sim.google_requests("ada");
    sim.inject_google(
        "ada",
        Fault::RateLimited {
            retry_after_secs: 3600,
        },
        3,
    );

    let error = connector
        .sync_page(&credentials, "daily_metrics", None)
        .await
        .unwrap_err();

    assert_eq!(
        error.class(),
        ErrorClass::Retryable {
            retry_after: Some(Duration::from_secs(3600))
        }
    );
    assert!(matches!(error, Error::Throttled { .. }), "{error:?}");
    assert!(
        error.to_string().contains("RESOURCE_EXHAUSTED")
            && error.to_string().contains("tokens per hour"),
        "{error}"
    );
    assert_eq!(sim.google_requests("ada") - before, 1, "no quick retries");
}

#[tokio::test]
async fn an_exhausted_daily_quota_waits_for_midnight_pacific_time() {
    let sim = spawn_google(GoogleConfig::default()).await;
    let dir = google_catalog(&sim, 7);
    let (client, connector) = oauth(&oauth_config(&dir, &[GA]), GA);
    let credentials = connect(&client).await;
    let before = sim.google_requests("ada");
    sim.inject_google(
        "ada",
        Fault::RateLimited {
            retry_after_secs: 86_400,
        },
        3,
    );

    let error = connector
        .sync_page(&credentials, "daily_metrics", None)
        .await
        .unwrap_err();

    let ErrorClass::Retryable {
        retry_after: Some(wait),
    } = error.class()
    else {
        panic!("expected a retryable error with a wait, got {error:?}");
    };
    // Until the next midnight at UTC-8: within a day, never a few seconds.
    let to_midnight = {
        let pacific = Utc::now() - chrono::Duration::hours(8);
        let midnight = (pacific.date_naive() + Days::new(1))
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc();
        (midnight - pacific.naive_utc().and_utc()).to_std().unwrap()
    };
    assert!(
        wait.abs_diff(to_midnight) < Duration::from_secs(60),
        "{wait:?} vs {to_midnight:?}"
    );
    assert!(error.to_string().contains("per day"), "{error}");
    assert_eq!(sim.google_requests("ada") - before, 1, "no quick retries");
}

#[tokio::test]
async fn the_concurrent_requests_quota_is_retried_within_the_call() {
    let sim = spawn_google(GoogleConfig::default()).await;
    let dir = google_catalog(&sim, 7);
    let (client, connector) = oauth(&oauth_config(&dir, &[GA]), GA);
    let credentials = connect(&client).await;
    sim.inject_google(
        "ada",
        Fault::RateLimited {
            retry_after_secs: 0,
        },
        1,
    );

    let page = connector
        .sync_page(&credentials, "daily_metrics", None)
        .await
        .unwrap();

    assert_eq!(page.records.len(), 7);
}

#[tokio::test]
async fn days_without_traffic_are_skipped_without_error_and_the_pass_finishes() {
    let sim = spawn_user(GoogleUserConfig::new("ada", 1, 1).no_traffic_every(4)).await;
    let dir = google_catalog(&sim, 7);
    let (client, connector) = oauth(&oauth_config(&dir, &[GA]), GA);
    let credentials = connect(&client).await;
    let today = Utc::now().date_naive();

    let synced = sync_all(&*connector, &credentials, "daily_metrics").await;

    let expected: Vec<NaiveDate> = (0..=30)
        .rev()
        .map(|ago| today - Days::new(ago))
        .filter(|day| sim.google_sessions(PROPERTY, *day).is_some())
        .collect();
    assert!(expected.len() < 31 && expected.len() > 20, "{expected:?}");
    assert_eq!(dates(&synced.records), expected);
    assert!(synced.gaps.is_empty(), "{:?}", synced.gaps);
    assert_eq!(synced.totals.last(), Some(&Some(expected.len() as u64)));
}

#[tokio::test]
async fn a_property_east_of_utc_has_its_today_read() {
    // A whole day ahead: the property's today is UTC's tomorrow.
    let sim = spawn_user(GoogleUserConfig::new("ada", 1, 1).utc_offset_minutes(1440)).await;
    let dir = google_catalog(&sim, 10_000);
    let (client, connector) = oauth(&oauth_config(&dir, &[GA]), GA);
    let credentials = connect(&client).await;
    let local_today = Utc::now().date_naive() + Days::new(1);

    let synced = sync_all(&*connector, &credentials, "daily_metrics").await;

    let dates = dates(&synced.records);
    assert_eq!(dates.last(), Some(&local_today), "{dates:?}");
    assert!(dates.contains(&(local_today - Days::new(29))), "{dates:?}");
}

#[tokio::test]
async fn a_property_west_of_utc_has_all_of_its_last_thirty_days_read() {
    // A whole day behind: the property's today is UTC's yesterday.
    let sim = spawn_user(GoogleUserConfig::new("ada", 1, 1).utc_offset_minutes(-1440)).await;
    let dir = google_catalog(&sim, 10_000);
    let (client, connector) = oauth(&oauth_config(&dir, &[GA]), GA);
    let credentials = connect(&client).await;
    let local_today = Utc::now().date_naive() - Days::new(1);

    let synced = sync_all(&*connector, &credentials, "daily_metrics").await;

    let expected: Vec<NaiveDate> = (0..30)
        .rev()
        .map(|ago| local_today - Days::new(ago))
        .collect();
    assert_eq!(dates(&synced.records), expected);
}

#[tokio::test]
async fn an_incremental_pass_rereads_the_revised_days_since_the_last_pass() {
    let sim = spawn_google(GoogleConfig::default()).await;
    let dir = google_catalog(&sim, 7);
    let (client, connector) = oauth(&oauth_config(&dir, &[GA]), GA);
    let credentials = connect(&client).await;
    let today = Utc::now().date_naive();
    sim.set_google_sessions(PROPERTY, today - Days::new(3), Some(4242));

    let since = Utc::now() - chrono::Duration::hours(1);
    let start = connector.incremental_start("daily_metrics", since).unwrap();
    let synced = sync_from(&*connector, &credentials, "daily_metrics", Some(start)).await;

    let dates = dates(&synced.records);
    // From 3 days before the last pass, one more for time zones, to today.
    let first = since.date_naive() - Days::new(4);
    assert_eq!(dates.first(), Some(&first), "{dates:?}");
    assert_eq!(dates.last(), Some(&today));
    let revised = synced
        .records
        .iter()
        .find(|record| {
            record.external_id == format!("{PROPERTY}:{}", (today - Days::new(3)).format("%Y%m%d"))
        })
        .unwrap();
    assert_eq!(revised.payload["sessions"], 4242);
}

#[tokio::test]
async fn an_incremental_pass_after_a_long_pause_reads_every_day_since() {
    let sim = spawn_google(GoogleConfig::default()).await;
    let dir = google_catalog(&sim, 10_000);
    let (client, connector) = oauth(&oauth_config(&dir, &[GA]), GA);
    let credentials = connect(&client).await;
    let today = Utc::now().date_naive();

    let start = connector
        .incremental_start("daily_metrics", Utc::now() - chrono::Duration::days(45))
        .unwrap();
    let synced = sync_from(&*connector, &credentials, "daily_metrics", Some(start)).await;

    let dates = dates(&synced.records);
    assert_eq!(dates.first(), Some(&(today - Days::new(49))), "{dates:?}");
    assert_eq!(dates.len(), 50);
}

#[tokio::test]
async fn reconnecting_with_the_catalogs_prompt_consent_gets_a_refresh_token_again() {
    let sim = spawn_google(GoogleConfig::default()).await;
    let dir = google_catalog(&sim, 7);
    let (client, connector) = oauth(&oauth_config(&dir, &[GA]), GA);

    let first = connect(&client).await;
    let again = connect(&client).await;

    let first_refresh = first.refresh_token().unwrap();
    let again_refresh = again
        .refresh_token()
        .expect("re-consent brings a refresh token");
    assert_ne!(first_refresh.expose_secret(), again_refresh.expose_secret());
    for credentials in [first, again] {
        let refreshed = client
            .refresh(credentials.refresh_token().unwrap())
            .await
            .unwrap();
        let credentials = credentials.merge_refresh(refreshed);
        assert!(connector.validate(&credentials).await.is_ok());
    }
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
