//! The JSON Schemas of the streams' payloads: one for every stream, each
//! valid draft 2020-12, and each matched by what a sync against the
//! simulator stores.

use std::collections::BTreeSet;

use fleet_connectors::{Config, Registry, schemas, stream_schemas};
use fleet_sim::{GoogleConfig, LinkedInConfig, MetaConfig, MetaUserConfig, TrelloConfig};
use serde_json::json;

use crate::helpers::{
    acme, assert_match_schema, bob, config, connect, connector, consent, google_catalog, oauth,
    oauth_config, redirect_uri, spawn, spawn_google, sync_all,
};

/// A registry of the built-in catalog plus `acme-id`, an OAuth 2.0 entry
/// without a connector of its own.
fn registry_with_a_generic_entry() -> (tempfile::TempDir, Registry) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("acme-id.toml"),
        "display_name = \"Acme ID\"\nauth = \"oauth2\"\ndocs_url = \"https://acme.test/docs\"\n\
         default_sync_interval_secs = 600\n[oauth2]\nauthorize_url = \"https://acme.test/a\"\n\
         token_url = \"https://acme.test/t\"\nuserinfo_url = \"https://acme.test/me\"\n",
    )
    .unwrap();
    let registry = Registry::new(&Config {
        catalog_dir: Some(dir.path().to_owned()),
        ..Config::default()
    })
    .unwrap();
    (dir, registry)
}

#[test]
fn every_stream_of_every_connector_has_a_valid_draft_2020_12_schema() {
    let (_dir, registry) = registry_with_a_generic_entry();

    let mut used = BTreeSet::new();
    let mut streams = 0;
    for connector in registry.iter() {
        for stream in connector.streams() {
            let schema = connector
                .stream_schema(stream.name)
                .unwrap_or_else(|| panic!("{} has no schema for {}", connector.id(), stream.name));
            streams += 1;
            used.insert(schema.name());
        }
    }
    for schema in stream_schemas() {
        let value = schema.schema();
        if let Err(error) = jsonschema::draft202012::meta::validate(&value) {
            panic!("{} is not valid draft 2020-12: {error}", schema.name());
        }
        jsonschema::draft202012::new(&value).unwrap();
    }

    // The nine streams of the six built-in connectors, and the generic
    // connector's `account`.
    assert_eq!(streams, 10);
    let all: BTreeSet<String> = stream_schemas().iter().map(|s| s.name()).collect();
    assert_eq!(
        used, all,
        "a schema without a stream, or a stream without one"
    );
    let generic = registry
        .get(&fleet_events::ConnectorId::parse("acme-id").unwrap())
        .unwrap();
    assert_eq!(
        generic.stream_schema("account").unwrap().name(),
        "Record.generic-oauth2.account"
    );
    assert!(generic.stream_schema("posts").is_none());
}

#[test]
fn a_payload_that_breaks_its_promise_does_not_match_the_schema() {
    let schema = schemas::stream_schema("google-analytics", "daily_metrics").unwrap();
    let validator = jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&schema.schema())
        .unwrap();
    let good = json!({"property": "properties/1", "date": "2026-01-02", "sessions": 3,
        "totalUsers": 2, "screenPageViews": 5});
    let as_sent = json!({"property": "properties/1", "date": "20260102", "sessions": "3",
        "totalUsers": 2, "screenPageViews": 5});
    let missing = json!({"property": "properties/1", "date": "2026-01-02", "sessions": 3});

    assert!(validator.is_valid(&good));
    // Google's strings and YYYYMMDD dates are what the connector converts.
    assert_eq!(validator.iter_errors(&as_sent).count(), 2);
    assert!(!validator.is_valid(&missing));
}

#[tokio::test]
async fn wordpress_posts_and_pages_match_their_schemas() {
    let sim = spawn([acme(3).pages(2)]).await;
    let wordpress = connector(&config(), "wordpress");

    for stream in ["posts", "pages"] {
        let synced = sync_all(&*wordpress, &bob(&sim), stream).await;

        assert!(!synced.records.is_empty(), "{stream}");
        assert_match_schema(&*wordpress, stream, &synced.records);
    }
}

#[tokio::test]
async fn fluentcrm_subscribers_and_lists_match_their_schemas() {
    let sim = spawn([acme(0).fluentcrm(5, 2)]).await;
    let fluentcrm = connector(&config(), "fluentcrm");

    for stream in ["subscribers", "lists"] {
        let synced = sync_all(&*fluentcrm, &bob(&sim), stream).await;

        assert!(!synced.records.is_empty(), "{stream}");
        assert_match_schema(&*fluentcrm, stream, &synced.records);
    }
}

#[tokio::test]
async fn google_analytics_daily_metrics_and_a_generic_account_match_their_schemas() {
    let sim = spawn_google(GoogleConfig::default()).await;
    let dir = google_catalog(&sim, 7);
    let config = oauth_config(&dir, &["google-analytics", "sim-id"]);
    let (client, analytics) = oauth(&config, "google-analytics");
    let credentials = connect(&client).await;
    let (generic_client, generic) = oauth(&config, "sim-id");
    let authorization = generic_client.authorize(&redirect_uri()).unwrap();
    let code = consent(&authorization).await;
    let generic_credentials = generic_client
        .exchange_code(&code, &redirect_uri(), None)
        .await
        .unwrap()
        .into_credentials();

    let metrics = sync_all(&*analytics, &credentials, "daily_metrics").await;
    let account = sync_all(&*generic, &generic_credentials, "account").await;

    assert!(!metrics.records.is_empty());
    assert_match_schema(&*analytics, "daily_metrics", &metrics.records);
    assert_eq!(account.records.len(), 1);
    assert_match_schema(&*generic, "account", &account.records);
}

/// An entry without a userinfo endpoint, checked at the token endpoint
/// only: the grant the token endpoint just issued validates it, and its
/// one record is that grant, with no token in it.
#[tokio::test]
async fn a_token_only_entry_stores_its_grant_and_needs_reauthorisation_once_it_cannot_renew() {
    let sim = spawn_google(GoogleConfig::default()).await;
    let dir = google_catalog(&sim, 7);
    let config = oauth_config(&dir, &["sim-grant"]);
    let (client, generic) = oauth(&config, "sim-grant");
    let credentials = connect(&client).await;

    let account = generic.validate(&credentials).await.unwrap();
    // One page, made of the stored grant: no response body is read.
    let page = generic
        .sync_page(&credentials, "account", None)
        .await
        .unwrap();

    assert_eq!(account.name, "Sim Grant");
    assert!(page.next.is_none(), "one page");
    let [record] = page.records.as_slice() else {
        panic!("one record: {:?}", page.records)
    };
    assert_eq!(record.external_id, "grant");
    assert_eq!(record.payload["renewable"], json!(true));
    assert!(
        record.payload["expires_at"].is_string(),
        "{}",
        record.payload
    );
    let fleet_connectors::Credentials::OAuth2 {
        access_token,
        refresh_token,
        ..
    } = &credentials
    else {
        unreachable!()
    };
    let text = record.payload.to_string();
    for token in [Some(access_token), refresh_token.as_ref()]
        .into_iter()
        .flatten()
    {
        use secrecy::ExposeSecret as _;
        assert!(!text.contains(token.expose_secret()), "no token in {text}");
    }
    assert_match_schema(&*generic, "account", &page.records);

    // Expired, with no refresh token to renew it by.
    let expired = fleet_connectors::Credentials::OAuth2 {
        access_token: access_token.clone(),
        refresh_token: None,
        expires_at: Some(chrono::Utc::now() - chrono::TimeDelta::minutes(1)),
        scope: None,
        values: Default::default(),
    };
    let error = generic.validate(&expired).await.unwrap_err();
    assert_eq!(error.class(), fleet_connectors::ErrorClass::ReauthRequired);
    assert!(
        error.to_string().contains("issued no refresh token"),
        "{error}"
    );
}

#[tokio::test]
async fn meta_ad_insights_match_their_schema() {
    let sim =
        crate::meta::spawn_meta(MetaConfig::default().user(MetaUserConfig::new("ada", 2))).await;
    let (_, meta, credentials) = crate::meta::connected(&sim, 10).await;

    let synced = sync_all(&*meta, &credentials, "ad_insights").await;

    assert!(!synced.records.is_empty());
    assert_match_schema(&*meta, "ad_insights", &synced.records);
}

#[tokio::test]
async fn linkedin_follower_statistics_match_their_schema() {
    let sim = crate::linkedin::spawn(LinkedInConfig::default(), 2).await;
    let (_, linkedin, credentials) = crate::linkedin::connected(&sim, 10, "").await;

    let synced = sync_all(&*linkedin, &credentials, "follower_statistics").await;

    assert!(!synced.records.is_empty());
    assert_match_schema(&*linkedin, "follower_statistics", &synced.records);
}

#[tokio::test]
async fn trello_boards_and_cards_match_their_schemas() {
    let sim = crate::trello::spawn(TrelloConfig::default()).await;
    let dir = crate::trello::catalog(&sim, 100);
    let (client, trello) =
        crate::trello::trello(&crate::trello::trello_config(&dir, crate::trello::SECRET));
    let credentials = crate::trello::connect(&client).await;

    for stream in ["boards", "cards"] {
        let synced = sync_all(&*trello, &credentials, stream).await;

        assert!(!synced.records.is_empty(), "{stream}");
        assert_match_schema(&*trello, stream, &synced.records);
    }
}
