use std::collections::HashSet;

use fleet_connectors::{Credentials, Error, ErrorClass};

use crate::helpers::{PASSWORD, acme, bob, config, connector, spawn, sync_all};

#[tokio::test]
async fn validate_proves_that_fluentcrm_answers() {
    let sim = spawn([acme(0).fluentcrm(3, 1)]).await;

    let account = connector(&config(), "fluentcrm")
        .validate(&bob(&sim))
        .await
        .unwrap();

    assert_eq!(account.id, sim.site_url("acme"));
    assert_eq!(sim.requests("acme"), 2);
}

#[tokio::test]
async fn validate_on_a_site_without_fluentcrm_says_the_plugin_is_inactive() {
    let sim = spawn([acme(0)]).await;

    let error = connector(&config(), "fluentcrm")
        .validate(&bob(&sim))
        .await
        .unwrap_err();

    assert_eq!(error.class(), ErrorClass::Permanent);
    let message = error.to_string();
    assert!(message.starts_with("FluentCRM at http://"), "{message}");
    assert!(
        message.contains("/wp-json/fluent-crm/v2/lists"),
        "{message}"
    );
    assert!(message.contains("the plugin is inactive"), "{message}");
}

#[tokio::test]
async fn subscribers_page_through_the_nested_paginator_with_string_ids() {
    let sim = spawn([acme(0).fluentcrm(230, 4)]).await;

    let synced = sync_all(
        &*connector(&config(), "fluentcrm"),
        &bob(&sim),
        "subscribers",
    )
    .await;

    assert_eq!(synced.pages, 3);
    assert_eq!(synced.totals, [Some(230); 3]);
    let ids: Vec<_> = synced
        .records
        .iter()
        .map(|r| r.external_id.clone())
        .collect();
    let expected: Vec<_> = (1..=230).map(|id| id.to_string()).collect();
    assert_eq!(ids, expected);
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 230);
    let first = &synced.records[0];
    assert_eq!(first.payload["email"], "contact1@example.test");
    let updated_at = first.payload["updated_at"]
        .as_str()
        .unwrap()
        .replace(' ', "T");
    assert_eq!(
        first
            .updated_at
            .unwrap()
            .format("%Y-%m-%dT%H:%M:%S")
            .to_string(),
        updated_at
    );
}

#[tokio::test]
async fn lists_sync_in_one_page() {
    let sim = spawn([acme(0).fluentcrm(10, 4)]).await;

    let synced = sync_all(&*connector(&config(), "fluentcrm"), &bob(&sim), "lists").await;

    assert_eq!(synced.pages, 1);
    assert_eq!(synced.totals, [Some(4)]);
    let ids: Vec<_> = synced
        .records
        .iter()
        .map(|r| r.external_id.as_str())
        .collect();
    assert_eq!(ids, ["1", "2", "3", "4"]);
}

#[tokio::test]
async fn empty_crm_gives_no_records_and_finishes() {
    let sim = spawn([acme(0).fluentcrm(0, 0)]).await;

    let page = connector(&config(), "fluentcrm")
        .sync_page(&bob(&sim), "subscribers", None)
        .await
        .unwrap();

    assert!(page.records.is_empty());
    assert_eq!((page.next, page.total), (None, Some(0)));
}

#[tokio::test]
async fn user_without_crm_access_is_forbidden() {
    let sim = spawn([acme(0).fluentcrm(1, 1)]).await;
    let credentials = Credentials::app_password(sim.site_url("acme"), "sue", PASSWORD);

    let error = connector(&config(), "fluentcrm")
        .validate(&credentials)
        .await
        .unwrap_err();

    assert_eq!(error.class(), ErrorClass::Permanent);
    assert!(matches!(error, Error::Forbidden { .. }), "{error:?}");
    assert!(
        error
            .to_string()
            .contains("refused user 'sue' (rest_forbidden"),
        "{error}"
    );
}
