use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{PASSWORD, acme, client, get_as_bob, spawn};

#[tokio::test]
async fn subscribers_are_nested_under_their_key_with_string_ids() {
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
    assert_eq!(paginator["data"][0]["id"], "201");
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
    assert_eq!(body["subscribers"]["data"][0]["id"], "20");
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
    assert_eq!(body["lists"]["data"][0]["id"], "1");
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
