use std::collections::HashSet;

use fleet_sim::{SimHandle, SiteChange};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, acme, client, get_as_bob, spawn};

/// The contacts page that `query` asks for, as `bob`.
async fn subscribers(sim: &SimHandle, query: &str) -> Value {
    get_as_bob(sim, &format!("/wp-json/fluent-crm/v2/subscribers?{query}"))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["subscribers"]
        .clone()
}

/// The ids of a paginator's contacts.
fn ids(paginator: &Value) -> Vec<u64> {
    paginator["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["id"].as_u64().unwrap())
        .collect()
}

/// `advanced_filters` of one group, URL-encoded.
fn advanced(items: &Value) -> String {
    let filters = json!([items]).to_string();
    format!(
        "filter_type=advanced&advanced_filters={}",
        url::form_urlencoded::byte_serialize(filters.as_bytes()).collect::<String>()
    )
}

#[tokio::test]
async fn subscribers_are_nested_under_their_key_with_numeric_ids() {
    let sim = spawn([acme(0).fluentcrm(230, 4)]).await;

    let body: Value = get_as_bob(
        &sim,
        "/wp-json/fluent-crm/v2/subscribers?per_page=100&page=3&sort_by=id&sort_type=ASC",
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();

    let paginator = &body["subscribers"];
    assert_eq!(paginator["current_page"], 3);
    assert_eq!(paginator["last_page"], 3);
    assert_eq!(paginator["total"], 230);
    assert_eq!(paginator["data"].as_array().unwrap().len(), 30);
    assert_eq!(paginator["data"][0]["id"], 201);
    // Other numeric columns stay strings, as MySQL hands them to PHP.
    assert_eq!(paginator["data"][0]["total_points"], "0");
    assert_eq!(paginator["next_page_url"], Value::Null);
    let updated_at = paginator["data"][0]["updated_at"].as_str().unwrap();
    assert_eq!(updated_at.len(), "2024-01-01 08:00:00".len());
    assert_eq!(&updated_at[10..11], " ");
}

#[tokio::test]
async fn default_page_size_is_15_and_default_order_is_newest_first() {
    let sim = spawn([acme(0).fluentcrm(20, 0)]).await;

    let body: Value = get_as_bob(&sim, "/wp-json/fluent-crm/v2/subscribers")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    assert_eq!(body["subscribers"]["per_page"], 15);
    assert_eq!(body["subscribers"]["data"][0]["id"], 20);
}

#[tokio::test]
async fn page_past_the_end_is_200_with_empty_data() {
    let sim = spawn([acme(0).fluentcrm(30, 2)]).await;

    let response = get_as_bob(
        &sim,
        "/wp-json/fluent-crm/v2/subscribers?per_page=100&page=2",
    )
    .send()
    .await
    .unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["subscribers"]["data"], serde_json::json!([]));
    assert_eq!(body["subscribers"]["last_page"], 1);
}

#[tokio::test]
async fn lists_sort_with_sort_order_and_carry_a_separate_total() {
    let sim = spawn([acme(0).fluentcrm(10, 4)]).await;

    let body: Value = get_as_bob(
        &sim,
        "/wp-json/fluent-crm/v2/lists?sort_by=id&sort_order=ASC",
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();

    assert_eq!(body["pagination"]["total"], 4);
    assert_eq!(body["lists"]["data"][0]["id"], 1);
    assert_eq!(body["lists"]["data"][0]["title"], "Newsletter");
    assert!(body["lists"]["data"][0]["subscribersCount"].is_number());
}

#[tokio::test]
async fn inactive_plugin_is_rest_no_route() {
    let sim = spawn([acme(0)]).await;

    let response = get_as_bob(&sim, "/wp-json/fluent-crm/v2/lists")
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        response.json::<Value>().await.unwrap()["code"],
        "rest_no_route"
    );
}

#[tokio::test]
async fn crm_needs_a_capable_logged_in_user() {
    let sim = spawn([acme(0).fluentcrm(1, 1)]).await;
    let lists = format!("{}/wp-json/fluent-crm/v2/lists", sim.site_url("acme"));

    let anonymous = client().get(&lists).send().await.unwrap();
    let subscriber = client()
        .get(&lists)
        .basic_auth("sue", Some(PASSWORD))
        .send()
        .await
        .unwrap();

    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        anonymous.json::<Value>().await.unwrap()["code"],
        "rest_forbidden"
    );
    assert_eq!(subscriber.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        subscriber.json::<Value>().await.unwrap()["code"],
        "rest_forbidden"
    );
}

#[tokio::test]
async fn advanced_filters_select_contacts_after_an_id_and_changed_since_a_time() {
    let sim = spawn([acme(0).fluentcrm(230, 0).utc_offset_minutes(120)]).await;
    sim.change_site("acme", &SiteChange::EditSubscriber { id: 5 });
    sim.change_site("acme", &SiteChange::EditSubscriber { id: 150 });
    let (_, edited_at) = sim.subscribers("acme")[4];

    let after = subscribers(
        &sim,
        &format!(
            "per_page=100&sort_by=id&sort_type=ASC&{}",
            advanced(&json!([{"source": ["subscriber", "id"], "operator": ">", "value": "100"}]))
        ),
    )
    .await;
    let changed = subscribers(
        &sim,
        &format!(
            "per_page=100&sort_by=id&sort_type=ASC&{}",
            advanced(&json!([
                {"source": ["subscriber", "updated_at"], "operator": ">=",
                 "value": edited_at.format("%Y-%m-%d %H:%M:%S").to_string()},
                {"source": ["subscriber", "id"], "operator": ">", "value": "10"},
            ]))
        ),
    )
    .await;

    assert_eq!(after["total"], 130);
    assert_eq!(ids(&after), (101..=200).collect::<Vec<_>>());
    // Site-local time, and both items of the group hold.
    assert_eq!(ids(&changed), [150]);
    assert_eq!(
        changed["data"][0]["updated_at"],
        edited_at.format("%Y-%m-%d %H:%M:%S").to_string()
    );
}

#[tokio::test]
async fn contacts_that_tie_on_the_sort_column_come_in_no_defined_order_across_pages() {
    let sim = spawn([acme(0).fluentcrm(0, 0)]).await;
    sim.change_site("acme", &SiteChange::CreateSubscribers { count: 90 });

    let mut seen = Vec::new();
    for page in 1..=3 {
        let paginator = subscribers(
            &sim,
            &format!("per_page=30&page={page}&sort_by=updated_at&sort_type=ASC"),
        )
        .await;
        seen.extend(ids(&paginator));
    }

    // What paging by a column with ties does: some contacts come twice,
    // so others never come.
    let distinct: HashSet<_> = seen.iter().collect();
    assert_eq!(seen.len(), 90);
    assert!(distinct.len() < 90, "{}", distinct.len());
}

#[tokio::test]
async fn contacts_and_lists_are_created_edited_and_deleted() {
    let sim = spawn([acme(0).fluentcrm(3, 2)]).await;

    let created = sim.change_site("acme", &SiteChange::CreateSubscribers { count: 2 });
    let edited = sim.change_site("acme", &SiteChange::EditSubscriber { id: 1 });
    let deleted = sim.change_site("acme", &SiteChange::DeleteSubscriber { id: 2 });
    let lists = sim.change_site("acme", &SiteChange::CreateLists { count: 1 });
    sim.change_site("acme", &SiteChange::DeleteList { id: 1 });

    assert_eq!(
        (created, edited, deleted, lists),
        (vec![4, 5], vec![1], vec![2], vec![3])
    );
    let contacts: Vec<u64> = sim.subscribers("acme").iter().map(|(id, _)| *id).collect();
    assert_eq!(contacts, [1, 3, 4, 5]);
    let listed = subscribers(&sim, "per_page=10&sort_by=id&sort_type=ASC").await;
    assert_eq!(ids(&listed), [1, 3, 4, 5]);
    assert!(
        listed["data"][0]["last_name"]
            .as_str()
            .unwrap()
            .ends_with("(edited)")
    );
    let lists: Vec<u64> = sim.crm_lists("acme").iter().map(|(id, _)| *id).collect();
    assert_eq!(lists, [2, 3]);
}

#[tokio::test]
async fn the_rest_index_says_the_sites_utc_offset() {
    let sim = spawn([acme(0).fluentcrm(1, 1).utc_offset_minutes(-300)]).await;

    let index: Value = get_as_bob(&sim, "/wp-json/")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    assert_eq!(index["gmt_offset"], "-5");
    assert!(
        index["namespaces"]
            .as_array()
            .unwrap()
            .contains(&json!("fluent-crm/v2"))
    );
}

#[tokio::test]
async fn each_contact_carries_the_lists_it_is_on_and_no_list_holds_everyone() {
    let sim = spawn([acme(0).fluentcrm(30, 4)]).await;

    let page = subscribers(&sim, "per_page=100&sort_by=id&sort_type=ASC").await;

    let contacts = page["data"].as_array().unwrap();
    assert_eq!(contacts.len(), 30);
    let mut members = std::collections::HashMap::<u64, usize>::new();
    for contact in contacts {
        let lists = contact["lists"].as_array().expect("a lists array");
        assert!(
            !lists.is_empty(),
            "contact {} is on no list of four",
            contact["id"]
        );
        for list in lists {
            assert!(
                list["title"].as_str().is_some_and(|t| !t.is_empty()),
                "{list}"
            );
            *members.entry(list["id"].as_u64().unwrap()).or_default() += 1;
        }
        assert_eq!(contact["tags"], json!([]));
    }
    assert_eq!(members.len(), 4, "every list has members: {members:?}");
    assert!(members.values().all(|&n| n < 30), "{members:?}");
    let mut sizes: Vec<usize> = members.values().copied().collect();
    sizes.sort_unstable();
    sizes.dedup();
    assert!(sizes.len() > 1, "the lists differ in size: {members:?}");
}
