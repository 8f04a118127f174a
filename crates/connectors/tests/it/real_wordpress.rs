//! The WordPress connector against a real WordPress (Debian's package,
//! started by testkit): ties in modification time, edits, trashing and
//! deletion, plain permalinks and a wrong password.

use std::collections::BTreeSet;

use fleet_connectors::{Credentials, Error, ErrorClass};
use fleet_testkit::{WordPress, WordPressOptions};

use crate::helpers::{assert_match_schema, config, connector, sync_all, sync_from};

fn credentials(site: &WordPress) -> Credentials {
    Credentials::app_password(site.base_url(), site.username(), site.app_password())
}

/// The ids of the site's published posts, as WordPress itself counts them.
async fn published(site: &WordPress) -> BTreeSet<u64> {
    let printed = site
        .php(
            "echo json_encode(get_posts(['post_status' => 'publish', 'numberposts' => -1, \
             'fields' => 'ids']));",
        )
        .await;
    serde_json::from_str::<Vec<u64>>(&printed)
        .unwrap()
        .into_iter()
        .collect()
}

fn ids(records: &[fleet_connectors::Record]) -> Vec<u64> {
    records
        .iter()
        .map(|r| r.external_id.parse().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_sharing_one_second_edits_and_removals_sync_exactly() {
    let site = WordPress::start().await;
    let wordpress = connector(&config(), "wordpress");
    // An import: 150 posts modified in the same second, across the page
    // boundaries of a sync.
    site.create_posts(150, "publish", Some("2024-06-01 10:00:00"))
        .await;
    // The install's "Hello world!" post, out of the incremental window.
    site.set_modified(&[1], "2024-01-01 00:00:00").await;

    let first = sync_all(&*wordpress, &credentials(&site), "posts").await;

    let read: BTreeSet<u64> = ids(&first.records).into_iter().collect();
    assert_eq!(read, published(&site).await);
    assert_eq!(first.records.len(), read.len(), "no post read twice");
    assert!(first.gaps.is_empty());
    assert_match_schema(&*wordpress, "posts", &first.records);

    // Edits, a trashed, a draft and a deleted post, then an incremental
    // pass from before the edits.
    let since = chrono::Utc::now() - chrono::TimeDelta::seconds(1);
    let posts: Vec<u64> = read.iter().copied().collect();
    site.update_post_title(posts[3], "Edited").await;
    site.trash_post(posts[4]).await;
    site.set_post_status(posts[5], "draft").await;
    site.delete_post(posts[6]).await;
    let start = wordpress.incremental_start("posts", since);

    let changed = sync_from(&*wordpress, &credentials(&site), "posts", start).await;
    let full = sync_all(&*wordpress, &credentials(&site), "posts").await;

    assert_eq!(ids(&changed.records), [posts[3]]);
    assert_eq!(changed.records[0].payload["title"]["rendered"], "Edited");
    let now: BTreeSet<u64> = published(&site).await;
    assert_eq!(changed.totals.last(), Some(&Some(now.len() as u64)));
    assert_eq!(ids(&full.records).into_iter().collect::<BTreeSet<_>>(), now);
    assert_eq!(now.len(), read.len() - 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_with_plain_permalinks_connects_and_syncs_through_rest_route() {
    let site = WordPress::start_with(WordPressOptions {
        plain_permalinks: true,
    })
    .await;
    let wordpress = connector(&config(), "wordpress");
    site.create_posts(120, "publish", None).await;

    let account = wordpress.validate(&credentials(&site)).await.unwrap();
    let synced = sync_all(&*wordpress, &credentials(&site), "posts").await;

    assert_eq!(account.id, site.base_url());
    let read: BTreeSet<u64> = ids(&synced.records).into_iter().collect();
    assert_eq!(read, published(&site).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_sites_posts_and_pages_match_their_schemas() {
    let site = WordPress::start().await;
    let wordpress = connector(&config(), "wordpress");
    site.create_posts(3, "publish", None).await;

    for stream in ["posts", "pages"] {
        let synced = sync_all(&*wordpress, &credentials(&site), stream).await;

        // The install's "Sample Page" is a published page.
        assert!(!synced.records.is_empty(), "{stream}");
        assert_match_schema(&*wordpress, stream, &synced.records);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_application_password_says_to_check_it() {
    let site = WordPress::start().await;
    let wrong = Credentials::app_password(
        site.base_url(),
        site.username(),
        "abcd abcd abcd abcd abcd abcd",
    );

    let error = connector(&config(), "wordpress")
        .validate(&wrong)
        .await
        .unwrap_err();

    assert_eq!(error.class(), ErrorClass::ReauthRequired);
    assert!(
        matches!(
            error,
            Error::AuthorizationStripped { .. } | Error::AppPasswordRejected { .. }
        ),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains("application password"), "{message}");
    assert!(!message.contains("abcd"), "{message}");
}
