use std::collections::HashSet;

use fleet_connectors::{Credentials, Error, ErrorClass};
use fleet_sim::SiteChange;

use crate::helpers::{PASSWORD, acme, bob, config, connector, spawn, sync_all, sync_from};

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
async fn subscribers_page_by_id_through_the_nested_paginator() {
    let sim = spawn([acme(0).fluentcrm(230, 4)]).await;

    let synced = sync_all(
        &*connector(&config(), "fluentcrm"),
        &bob(&sim),
        "subscribers",
    )
    .await;

    assert_eq!(synced.pages, 3);
    // The last page says what the whole stream holds.
    assert_eq!(synced.totals, [None, None, Some(230)]);
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

/// The ids of `records`, as numbers.
fn ids(records: &[fleet_connectors::Record]) -> Vec<u64> {
    records
        .iter()
        .map(|r| r.external_id.parse().unwrap())
        .collect()
}

#[tokio::test]
async fn contacts_removed_and_added_during_a_sync_skip_nothing_that_remains() {
    let sim = spawn([acme(0).fluentcrm(250, 1)]).await;
    // Before the second page: 10 contacts already read are deleted,
    // which would shift every later one 10 places back under page
    // numbers, and 3 new ones arrive at the end.
    for id in 5..15 {
        sim.change_site_on_request("acme", 2, SiteChange::DeleteSubscriber { id });
    }
    sim.change_site_on_request("acme", 2, SiteChange::CreateSubscribers { count: 3 });

    let synced = sync_all(
        &*connector(&config(), "fluentcrm"),
        &bob(&sim),
        "subscribers",
    )
    .await;

    let read: HashSet<u64> = ids(&synced.records).into_iter().collect();
    let present: HashSet<u64> = sim.subscribers("acme").iter().map(|(id, _)| *id).collect();
    assert!(
        present.is_subset(&read),
        "missing: {:?}",
        present.difference(&read)
    );
    assert_eq!(present.len(), 243);
    assert_eq!(synced.records.len(), read.len(), "no contact is read twice");
    assert!(synced.gaps.is_empty(), "{:?}", synced.gaps);
    assert_eq!(synced.totals.last(), Some(&Some(243)));
}

#[tokio::test]
async fn an_incremental_pass_reads_contacts_changed_since_in_site_time_and_the_whole_total() {
    // Five hours behind UTC: FluentCRM's `updated_at` is site time, so a
    // filter in UTC would miss every change of the last five hours.
    let sim = spawn([acme(0).fluentcrm(230, 2).utc_offset_minutes(-300)]).await;
    let fluentcrm = connector(&config(), "fluentcrm");
    let since = chrono::Utc::now();
    for id in [7, 150, 229] {
        sim.change_site("acme", &SiteChange::EditSubscriber { id });
    }
    sim.change_site("acme", &SiteChange::DeleteSubscriber { id: 3 });
    // An import: 120 contacts sharing one second, across a page boundary.
    let created = sim.change_site("acme", &SiteChange::CreateSubscribers { count: 120 });
    let start = fluentcrm.incremental_start("subscribers", since);
    let before = sim.requests("acme");

    let synced = sync_from(&*fluentcrm, &bob(&sim), "subscribers", start).await;

    let mut want = vec![7, 150, 229];
    want.extend(created);
    assert_eq!(ids(&synced.records), want);
    // The total of the whole stream, for the caller to see the deletion.
    assert_eq!(synced.totals.last(), Some(&Some(349)));
    assert!(synced.gaps.is_empty());
    // The site's offset, two pages of changes, and the total.
    assert_eq!(sim.requests("acme") - before, 4);
    let (_, updated_at) = sim.subscribers("acme")[5];
    assert_eq!(
        synced.records[0].updated_at,
        Some(updated_at.and_utc()),
        "dated by updated_at as the site shows it"
    );
}

#[tokio::test]
async fn lists_are_read_whole_every_time() {
    let fluentcrm = connector(&config(), "fluentcrm");

    assert!(
        fluentcrm
            .incremental_start("lists", chrono::Utc::now())
            .is_none()
    );
    assert!(
        fluentcrm
            .incremental_start("subscribers", chrono::Utc::now())
            .is_some()
    );
}

#[tokio::test]
async fn a_site_with_plain_permalinks_discovers_its_rest_route_once_per_pass() {
    let sim = spawn([acme(0).fluentcrm(230, 1).plain_permalinks()]).await;
    let fluentcrm = connector(&config(), "fluentcrm");
    let synced = sync_all(&*fluentcrm, &bob(&sim), "subscribers").await;
    let plain = sim.requests("acme");

    let pretty_sim = spawn([acme(0).fluentcrm(230, 1)]).await;
    let pretty = sync_all(&*fluentcrm, &bob(&pretty_sim), "subscribers").await;

    assert_eq!(synced.records.len(), 230);
    assert_eq!(synced.pages, pretty.pages);
    assert!(synced.pages > 1, "several pages: {}", synced.pages);
    // The first page finds `?rest_route=` (a 404 at /wp-json, then the front
    // page's Link header); the cursor carries it to the later pages.
    assert_eq!(plain - pretty_sim.requests("acme"), 2);
}
