use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{PASSWORD, acme, client, get_as_bob, spawn};

#[tokio::test]
async fn posts_carry_totals_links_and_utc_fields() {
    let sim = spawn([acme(250).utc_offset_minutes(120)]).await;

    let response = get_as_bob(
        &sim,
        "/wp-json/wp/v2/posts?per_page=100&page=2&orderby=id&order=asc",
    )
    .send()
    .await
    .unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    assert_eq!(headers["x-wp-total"], "250");
    assert_eq!(headers["x-wp-totalpages"], "3");
    let link = headers["link"].to_str().unwrap();
    assert!(link.contains("page=1>; rel=\"prev\""), "{link}");
    assert!(link.contains("page=3>; rel=\"next\""), "{link}");
    let posts: Vec<Value> = response.json().await.unwrap();
    assert_eq!(posts.len(), 100);
    assert_eq!(posts[0]["id"], 101);
    assert_eq!(posts[0]["title"]["rendered"], "Post 101");
    assert_eq!(posts[0]["meta"], serde_json::json!([]));
    // Site-local `modified` is two hours ahead of `modified_gmt`; neither has an offset.
    let modified_gmt = posts[0]["modified_gmt"].as_str().unwrap();
    let modified = posts[0]["modified"].as_str().unwrap();
    assert_eq!(modified_gmt.len(), "2024-01-01T08:00:00".len());
    assert_ne!(modified, modified_gmt);
}

#[tokio::test]
async fn page_past_the_end_is_400_rest_post_invalid_page_number() {
    let sim = spawn([acme(250)]).await;

    let response = get_as_bob(&sim, "/wp-json/wp/v2/posts?per_page=100&page=4")
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "rest_post_invalid_page_number");
    assert_eq!(body["data"]["status"], 400);
}

#[tokio::test]
async fn empty_collection_is_200_with_an_empty_array_and_zero_totals() {
    let sim = spawn([acme(0)]).await;

    let response = get_as_bob(&sim, "/wp-json/wp/v2/pages?page=5")
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-wp-total"], "0");
    assert_eq!(response.headers()["x-wp-totalpages"], "0");
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        serde_json::json!([])
    );
}

#[tokio::test]
async fn per_page_over_100_is_rest_invalid_param() {
    let sim = spawn([acme(5)]).await;

    let response = get_as_bob(&sim, "/wp-json/wp/v2/posts?per_page=101")
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "rest_invalid_param");
    assert!(body["data"]["details"]["per_page"].is_object());
}

#[tokio::test]
async fn modified_after_filters_on_site_local_time() {
    let sim = spawn([acme(20).utc_offset_minutes(120)]).await;
    let all: Vec<Value> = get_as_bob(
        &sim,
        "/wp-json/wp/v2/posts?per_page=100&orderby=modified&order=asc",
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let pivot = all[9]["modified"].as_str().unwrap();

    let newer: Vec<Value> = get_as_bob(
        &sim,
        &format!(
            "/wp-json/wp/v2/posts?per_page=100&orderby=modified&order=asc&modified_after={pivot}"
        ),
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();

    assert!(!newer.is_empty() && newer.len() < all.len());
    assert!(
        newer
            .iter()
            .all(|post| post["modified"].as_str().unwrap() > pivot)
    );
}

#[tokio::test]
async fn users_me_with_context_edit_shows_private_fields() {
    let sim = spawn([acme(0)]).await;

    let me: Value = get_as_bob(&sim, "/wp-json/wp/v2/users/me?context=edit")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    assert_eq!(me["username"], "bob");
    assert_eq!(me["roles"], serde_json::json!(["administrator"]));
    assert!(me["registered_date"].as_str().unwrap().ends_with("+00:00"));
}

#[tokio::test]
async fn users_me_without_credentials_is_rest_not_logged_in() {
    let sim = spawn([acme(0)]).await;

    let response = client()
        .get(format!("{}/wp-json/wp/v2/users/me", sim.site_url("acme")))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.json::<Value>().await.unwrap()["code"],
        "rest_not_logged_in"
    );
}

#[tokio::test]
async fn wrong_password_and_unknown_user_fail_every_route() {
    let sim = spawn([acme(3)]).await;
    let posts = format!("{}/wp-json/wp/v2/posts", sim.site_url("acme"));

    let wrong_password = client()
        .get(&posts)
        .basic_auth("bob", Some("nope"))
        .send()
        .await
        .unwrap();
    let unknown_user = client()
        .get(&posts)
        .basic_auth("eve", Some(PASSWORD))
        .send()
        .await
        .unwrap();

    assert_eq!(wrong_password.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        wrong_password.json::<Value>().await.unwrap()["code"],
        "incorrect_password"
    );
    assert_eq!(unknown_user.status(), StatusCode::UNAUTHORIZED);
    let body: Value = unknown_user.json().await.unwrap();
    assert_eq!(body["code"], "invalid_username");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("<strong>Error:</strong>")
    );
}

#[tokio::test]
async fn password_is_accepted_without_its_spaces_and_by_email() {
    let sim = spawn([acme(0)]).await;
    let me = format!("{}/wp-json/wp/v2/users/me", sim.site_url("acme"));

    let without_spaces = client()
        .get(&me)
        .basic_auth("bob", Some(PASSWORD.replace(' ', "")))
        .send()
        .await
        .unwrap();
    let by_email = client()
        .get(&me)
        .basic_auth("bob@example.test", Some(PASSWORD))
        .send()
        .await
        .unwrap();

    assert_eq!(without_spaces.status(), StatusCode::OK);
    assert_eq!(by_email.status(), StatusCode::OK);
}

#[tokio::test]
async fn unknown_route_is_rest_no_route() {
    let sim = spawn([acme(0)]).await;

    let response = get_as_bob(&sim, "/wp-json/wp/v2/comments")
        .send()
        .await
        .unwrap();
    let deeper = get_as_bob(&sim, "/wp-json/acme/v1/things")
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        response.json::<Value>().await.unwrap()["code"],
        "rest_no_route"
    );
    assert_eq!(
        deeper.json::<Value>().await.unwrap()["code"],
        "rest_no_route"
    );
}

#[tokio::test]
async fn unknown_site_is_a_plain_404_page() {
    let sim = spawn([acme(0)]).await;

    let response = client()
        .get(format!("{}/wp-json/wp/v2/posts", sim.site_url("nowhere")))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
}
