use std::collections::HashSet;

use chrono::NaiveDateTime;
use fleet_connectors::{Credentials, Error, ErrorClass};
use fleet_sim::{Collection, SiteChange, SiteConfig};
use secrecy::SecretString;
use serde_json::json;

use crate::helpers::{PASSWORD, acme, bob, config, connector, spawn, sync_all, sync_from};

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
async fn a_request_without_credentials_says_to_check_them_or_the_header() {
    let sim = spawn([acme(0)]).await;
    sim.inject_site("acme", fleet_sim::Fault::StripAuthorization, 1);

    let error = connector(&config(), "wordpress")
        .validate(&bob(&sim))
        .await
        .unwrap_err();

    assert_eq!(error.class(), ErrorClass::ReauthRequired);
    assert!(
        matches!(error, Error::AuthorizationStripped { .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains("rest_not_logged_in"), "{message}");
    assert!(
        message.contains("check the user name and the application password"),
        "{message}"
    );
    assert!(
        message.contains("strips the Authorization header"),
        "{message}"
    );
}

#[tokio::test]
async fn syncing_posts_pages_through_all_250_in_id_order_without_duplicates() {
    let sim = spawn([acme(250).utc_offset_minutes(120)]).await;

    let synced = sync_all(&*connector(&config(), "wordpress"), &bob(&sim), "posts").await;

    assert_eq!(synced.pages, 3);
    assert_eq!(synced.totals, [Some(250); 3]);
    assert!(synced.gaps.is_empty());
    let ids: Vec<u64> = synced
        .records
        .iter()
        .map(|r| r.external_id.parse().unwrap())
        .collect();
    assert_eq!(ids, (1..=250).collect::<Vec<_>>());
    // Dated by `modified_gmt` read as UTC, not by the site-local `modified`.
    let first = &synced.records[0];
    let modified_gmt: NaiveDateTime = first.payload["modified_gmt"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(first.updated_at, Some(modified_gmt.and_utc()));
}

#[tokio::test]
async fn posts_imported_in_one_second_are_all_read_even_across_pages() {
    let sim = spawn([acme(25)]).await;
    let import = SiteChange::Create {
        collection: Collection::Posts,
        count: 150,
        modified_gmt: Some("2024-06-01T10:00:00".parse().unwrap()),
    };
    sim.change_site("acme", &import);

    let synced = sync_all(&*connector(&config(), "wordpress"), &bob(&sim), "posts").await;

    let ids: HashSet<_> = synced
        .records
        .iter()
        .map(|r| r.external_id.clone())
        .collect();
    assert_eq!(ids.len(), 175);
    assert_eq!(synced.records.len(), 175);
    assert!(synced.gaps.is_empty());
}

#[tokio::test]
async fn posts_removed_and_added_during_a_sync_skip_nothing_that_remains() {
    let sim = spawn([acme(300)]).await;
    // Before the second page: 12 posts already read are trashed, deleted
    // or unpublished, which shifts every later post 12 places back, and
    // 3 new posts arrive at the end.
    for id in 1..=4 {
        sim.change_site_on_request("acme", 2, SiteChange::Trash { id });
    }
    for id in 5..=8 {
        sim.change_site_on_request("acme", 2, SiteChange::Delete { id });
    }
    for id in 9..=12 {
        sim.change_site_on_request("acme", 2, SiteChange::Unpublish { id });
    }
    let create = SiteChange::Create {
        collection: Collection::Posts,
        count: 3,
        modified_gmt: None,
    };
    sim.change_site_on_request("acme", 2, create);

    let synced = sync_all(&*connector(&config(), "wordpress"), &bob(&sim), "posts").await;

    let read: HashSet<u64> = synced
        .records
        .iter()
        .map(|r| r.external_id.parse().unwrap())
        .collect();
    let published: HashSet<u64> = sim
        .published("acme", Collection::Posts)
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert!(
        published.is_subset(&read),
        "missing: {:?}",
        published.difference(&read)
    );
    assert_eq!(published.len(), 291);
    assert_eq!(synced.records.len(), read.len(), "no post is read twice");
    assert!(synced.gaps.is_empty());
}

#[tokio::test]
async fn more_removals_than_the_pass_can_step_back_over_are_reported_as_a_gap() {
    let sim = spawn([acme(3000)]).await;
    let wordpress = connector(&config(), "wordpress");
    let mut cursor = None;
    for _ in 0..9 {
        let page = wordpress
            .sync_page(&bob(&sim), "posts", cursor.as_ref())
            .await
            .unwrap();
        assert_eq!(page.gap, None);
        cursor = page.next;
    }
    // 800 of the 860 posts already read go: the last one read moves 800
    // places back, more than eight steps back span.
    for id in 1..=800 {
        sim.change_site("acme", &SiteChange::Delete { id });
    }

    let page = wordpress
        .sync_page(&bob(&sim), "posts", cursor.as_ref())
        .await
        .unwrap();

    let gap = page.gap.expect("a gap");
    assert!(gap.contains("posts were removed"), "{gap}");
    assert!(
        page.next.is_some(),
        "the gap is reported before the last page"
    );
}

#[tokio::test]
async fn a_site_with_plain_permalinks_is_reached_through_rest_route() {
    let sim = spawn([acme(120).plain_permalinks()]).await;
    let wordpress = connector(&config(), "wordpress");

    let account = wordpress.validate(&bob(&sim)).await.unwrap();
    let synced = sync_all(&*wordpress, &bob(&sim), "posts").await;

    assert_eq!(account.id, sim.site_url("acme"));
    assert_eq!(synced.records.len(), 120);
    // Discovered once per call, then carried by the cursor: page two goes
    // straight to ?rest_route=.
    assert_eq!(synced.pages, 2);
}

#[tokio::test]
async fn a_trashed_or_unpublished_post_leaves_the_stream() {
    let sim = spawn([acme(10)]).await;
    sim.change_site("acme", &SiteChange::Trash { id: 3 });
    sim.change_site("acme", &SiteChange::Unpublish { id: 4 });
    sim.change_site("acme", &SiteChange::Delete { id: 5 });

    let synced = sync_all(&*connector(&config(), "wordpress"), &bob(&sim), "posts").await;

    let ids: Vec<_> = synced
        .records
        .iter()
        .map(|r| r.external_id.as_str())
        .collect();
    assert_eq!(ids, ["1", "2", "6", "7", "8", "9", "10"]);
    assert_eq!(synced.totals, [Some(7)]);
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
async fn cursor_past_the_last_post_finishes_the_stream() {
    let sim = spawn([acme(30)]).await;

    let page = connector(&config(), "wordpress")
        .sync_page(
            &bob(&sim),
            "posts",
            Some(&json!({"offset": 900, "last_id": 999})),
        )
        .await
        .unwrap();

    assert!(page.records.is_empty());
    assert_eq!(page.next, None);
    assert_eq!(page.gap, None);
}

#[tokio::test]
async fn an_incremental_pass_reads_what_changed_since_with_an_overlap_and_the_whole_total() {
    let sim = spawn([acme(120).utc_offset_minutes(-300)]).await;
    let wordpress = connector(&config(), "wordpress");
    let since = chrono::Utc::now();
    for id in [7, 70, 99] {
        sim.change_site("acme", &SiteChange::Edit { id });
    }
    let created = sim.change_site(
        "acme",
        &SiteChange::Create {
            collection: Collection::Posts,
            count: 2,
            modified_gmt: None,
        },
    );
    let start = wordpress.incremental_start("posts", since);

    let synced = sync_from(&*wordpress, &bob(&sim), "posts", start).await;

    let got: Vec<_> = synced
        .records
        .iter()
        .map(|r| r.external_id.parse::<u64>().unwrap())
        .collect();
    let mut want = vec![7, 70, 99];
    want.extend(created);
    assert_eq!(got, want);
    // The last page says what the whole stream holds, for the caller to
    // compare with what it stored.
    assert_eq!(synced.totals.last(), Some(&Some(122)));
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
        .sync_page(&bob(&sim), "posts", Some(&json!({"page": 3})))
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

/// Serves every request with `body` and the headers WordPress sends for a
/// listing that counts `total` items.
async fn short_listing(body: &'static str, total: u32) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
                let mut request = vec![0_u8; 8192];
                let _ = socket.read(&mut request).await;
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-wp-total: {total}\r\n\
                     x-wp-totalpages: 1\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    format!("http://{address}")
}

#[tokio::test]
async fn a_short_page_from_a_site_that_counts_more_is_a_gap_not_the_end() {
    // Two posts listed, ten counted: a plugin hid some after the query.
    let site = short_listing(
        r#"[{"id":1,"modified_gmt":"2024-01-01T00:00:00"},{"id":2,"modified_gmt":"2024-01-01T00:00:00"}]"#,
        10,
    )
    .await;
    let credentials = Credentials::app_password(site, "bob", PASSWORD);

    let synced = sync_all(&*connector(&config(), "wordpress"), &credentials, "posts").await;

    assert_eq!(synced.records.len(), 2);
    assert_eq!(synced.gaps.len(), 1, "the pass must not promise it saw all");
    assert!(
        synced.gaps[0].contains("counts 10 posts but listed 2"),
        "{:?}",
        synced.gaps
    );
}
