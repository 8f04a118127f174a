use std::collections::HashSet;

use chrono::NaiveDateTime;
use fleet_connectors::{Credentials, Error, ErrorClass};
use fleet_sim::SiteConfig;
use secrecy::SecretString;
use serde_json::json;

use crate::helpers::{PASSWORD, acme, bob, config, connector, spawn, sync_all};

#[tokio::test]
async fn validate_returns_the_site_and_user_for_a_valid_application_password() {
    let sim = spawn([acme(0)]).await;
    let wordpress = connector(&config(), "wordpress");

    let account = wordpress.validate(&bob(&sim)).await.unwrap();

    assert_eq!(account.id, sim.site_url("acme"));
    assert!(
        account.name.starts_with("bob on 127.0.0.1:"),
        "{}",
        account.name
    );
}

#[tokio::test]
async fn validate_accepts_the_password_without_its_spaces() {
    let sim = spawn([acme(0)]).await;
    let credentials =
        Credentials::app_password(sim.site_url("acme"), "bob", PASSWORD.replace(' ', ""));

    let account = connector(&config(), "wordpress")
        .validate(&credentials)
        .await
        .unwrap();

    assert_eq!(account.id, sim.site_url("acme"));
}

#[tokio::test]
async fn wrong_password_requires_reauth_with_a_readable_message_and_no_secret() {
    let sim = spawn([acme(0)]).await;
    let secret = "wxyz wxyz wxyz wxyz wxyz wxyz";
    let credentials = Credentials::app_password(sim.site_url("acme"), "bob", secret);

    let error = connector(&config(), "wordpress")
        .validate(&credentials)
        .await
        .unwrap_err();

    assert_eq!(error.class(), ErrorClass::ReauthRequired);
    let message = error.to_string();
    assert!(
        message.starts_with("WordPress at http://127.0.0.1:"),
        "{message}"
    );
    assert!(
        message.contains("rejected the application password for user 'bob' (incorrect_password)"),
        "{message}"
    );
    for shown in [message, format!("{error:?}")] {
        assert!(
            !shown.contains(secret) && !shown.contains("wxyz"),
            "{shown}"
        );
    }
}

#[tokio::test]
async fn unknown_user_requires_reauth() {
    let sim = spawn([acme(0)]).await;
    let credentials = Credentials::app_password(sim.site_url("acme"), "eve", PASSWORD);

    let error = connector(&config(), "wordpress")
        .validate(&credentials)
        .await
        .unwrap_err();

    assert_eq!(error.class(), ErrorClass::ReauthRequired);
    assert!(
        error.to_string().contains("user 'eve' (invalid_username)"),
        "{error}"
    );
}

#[tokio::test]
async fn revoked_password_requires_reauth() {
    let sim = spawn([acme(0)]).await;
    let wordpress = connector(&config(), "wordpress");
    wordpress.validate(&bob(&sim)).await.unwrap();

    assert!(sim.revoke_passwords("acme", "bob"));
    let error = wordpress.validate(&bob(&sim)).await.unwrap_err();

    assert_eq!(error.class(), ErrorClass::ReauthRequired);
}

#[tokio::test]
async fn stripped_authorization_header_is_permanent_and_says_so() {
    let sim = spawn([acme(0)]).await;
    sim.inject_site("acme", fleet_sim::Fault::StripAuthorization, 1);

    let error = connector(&config(), "wordpress")
        .validate(&bob(&sim))
        .await
        .unwrap_err();

    assert_eq!(error.class(), ErrorClass::Permanent);
    assert!(
        matches!(error, Error::AuthorizationStripped { .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains("rest_not_logged_in"), "{message}");
    assert!(
        message.contains("strips the Authorization header"),
        "{message}"
    );
}

#[tokio::test]
async fn syncing_posts_pages_through_all_250_without_duplicates() {
    let sim = spawn([acme(250).utc_offset_minutes(120)]).await;

    let synced = sync_all(&*connector(&config(), "wordpress"), &bob(&sim), "posts").await;

    assert_eq!(synced.pages, 3);
    assert_eq!(synced.totals, [Some(250); 3]);
    let ids: HashSet<_> = synced
        .records
        .iter()
        .map(|r| r.external_id.as_str())
        .collect();
    assert_eq!(synced.records.len(), 250);
    assert_eq!(ids.len(), 250);
    assert!(ids.contains("1") && ids.contains("250"));
    // Oldest modification first, dated by `modified_gmt` read as UTC, not by
    // the site-local `modified`.
    let dates: Vec<_> = synced
        .records
        .iter()
        .map(|r| r.updated_at.unwrap())
        .collect();
    assert!(dates.is_sorted());
    let first = &synced.records[0];
    let modified_gmt: NaiveDateTime = first.payload["modified_gmt"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(first.updated_at, Some(modified_gmt.and_utc()));
}

#[tokio::test]
async fn syncing_an_empty_site_gives_no_records_and_finishes() {
    let sim = spawn([acme(0)]).await;

    let page = connector(&config(), "wordpress")
        .sync_page(&bob(&sim), "posts", None)
        .await
        .unwrap();

    assert!(page.records.is_empty());
    assert_eq!(page.next, None);
    assert_eq!(page.total, Some(0));
}

#[tokio::test]
async fn cursor_past_the_last_page_finishes_the_stream() {
    let sim = spawn([acme(30)]).await;

    let page = connector(&config(), "wordpress")
        .sync_page(&bob(&sim), "posts", Some(&json!({"page": 9})))
        .await
        .unwrap();

    assert!(page.records.is_empty());
    assert_eq!(page.next, None);
}

#[tokio::test]
async fn modified_after_in_the_cursor_syncs_only_newer_posts() {
    let sim = spawn([acme(120).utc_offset_minutes(-300)]).await;
    let wordpress = connector(&config(), "wordpress");
    let everything = sync_all(&*wordpress, &bob(&sim), "posts").await;
    let mark = everything.records[99].payload["modified"]
        .as_str()
        .unwrap()
        .to_owned();

    let page = wordpress
        .sync_page(
            &bob(&sim),
            "posts",
            Some(&json!({"page": 1, "modified_after": mark})),
        )
        .await
        .unwrap();

    let newer: Vec<_> = everything
        .records
        .iter()
        .filter(|r| r.payload["modified"].as_str().unwrap() > mark.as_str())
        .map(|r| r.external_id.as_str())
        .collect();
    let got: Vec<_> = page
        .records
        .iter()
        .map(|r| r.external_id.as_str())
        .collect();
    assert!(!newer.is_empty() && newer.len() <= 20);
    assert_eq!(got, newer);
    assert_eq!(page.total, Some(newer.len() as u64));
    assert_eq!(page.next, None);
}

#[tokio::test]
async fn pages_stream_syncs_pages() {
    let sim = spawn([acme(5).pages(3)]).await;

    let synced = sync_all(&*connector(&config(), "wordpress"), &bob(&sim), "pages").await;

    let ids: Vec<_> = synced
        .records
        .iter()
        .map(|r| r.external_id.as_str())
        .collect();
    assert_eq!(ids.len(), 3);
    assert!(ids.iter().all(|id| ["6", "7", "8"].contains(id)), "{ids:?}");
    assert!(synced.records.iter().all(|r| r.payload["type"] == "page"));
}

#[tokio::test]
async fn unknown_stream_and_foreign_cursor_are_permanent() {
    let sim = spawn([acme(1)]).await;
    let wordpress = connector(&config(), "wordpress");

    let stream = wordpress
        .sync_page(&bob(&sim), "comments", None)
        .await
        .unwrap_err();
    let cursor = wordpress
        .sync_page(&bob(&sim), "posts", Some(&json!({"offset": 3})))
        .await
        .unwrap_err();

    assert!(matches!(stream, Error::UnknownStream { .. }), "{stream:?}");
    assert!(matches!(cursor, Error::InvalidCursor { .. }), "{cursor:?}");
    assert_eq!(stream.class(), ErrorClass::Permanent);
    assert_eq!(cursor.class(), ErrorClass::Permanent);
    assert_eq!(sim.requests("acme"), 0);
}

#[tokio::test]
async fn oauth_credentials_are_refused_without_a_request() {
    let credentials = Credentials::OAuth1 {
        token: SecretString::from("t"),
        token_secret: SecretString::from("s"),
    };

    let error = connector(&config(), "wordpress")
        .validate(&credentials)
        .await
        .unwrap_err();

    assert_eq!(error.class(), ErrorClass::Permanent);
    assert_eq!(
        error.to_string(),
        "the wordpress connector takes application password credentials, not OAuth 1.0a"
    );
}

#[tokio::test]
async fn subscriber_role_may_sync_public_posts() {
    let sim = spawn([acme(3)]).await;
    let credentials = Credentials::app_password(sim.site_url("acme"), "sue", PASSWORD);

    let synced = sync_all(&*connector(&config(), "wordpress"), &credentials, "posts").await;

    assert_eq!(synced.records.len(), 3);
}

#[tokio::test]
async fn site_in_a_subdirectory_keeps_its_path() {
    let sim =
        spawn(
            [SiteConfig::new("blog").user(fleet_sim::UserConfig::administrator("bob", PASSWORD))],
        )
        .await;
    let credentials =
        Credentials::app_password(format!("{}/", sim.site_url("blog")), "bob", PASSWORD);

    let account = connector(&config(), "wordpress")
        .validate(&credentials)
        .await
        .unwrap();

    assert_eq!(account.id, sim.site_url("blog"));
}
