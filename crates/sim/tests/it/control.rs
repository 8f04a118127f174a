use std::time::{Duration, Instant};

use fleet_sim::Fault;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{PASSWORD, acme, client, get_as_bob, spawn};

#[tokio::test]
async fn faults_injected_over_http_hit_the_next_requests_only() {
    let sim = spawn([acme(1)]).await;

    let injected = client()
        .post(format!("{}/_sim/faults", sim.base_url()))
        .json(&json!({"site": "acme", "fault": {"kind": "rate_limited", "retry_after_secs": 7}, "times": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(injected.status(), StatusCode::NO_CONTENT);

    for _ in 0..2 {
        let response = get_as_bob(&sim, "/wp-json/wp/v2/posts")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()["retry-after"], "7");
    }
    let response = get_as_bob(&sim, "/wp-json/wp/v2/posts")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(sim.requests("acme"), 3);
}

#[tokio::test]
async fn global_faults_apply_to_every_site_and_can_be_cleared() {
    let sim = spawn([acme(1)]).await;
    sim.inject_global(
        Fault::Unavailable {
            retry_after_secs: Some(30),
        },
        5,
    );

    let down = get_as_bob(&sim, "/wp-json/wp/v2/posts")
        .send()
        .await
        .unwrap();
    let cleared = client()
        .delete(format!("{}/_sim/faults", sim.base_url()))
        .send()
        .await
        .unwrap();
    let up = get_as_bob(&sim, "/wp-json/wp/v2/posts")
        .send()
        .await
        .unwrap();

    assert_eq!(down.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(down.headers()["retry-after"], "30");
    assert_eq!(cleared.status(), StatusCode::NO_CONTENT);
    assert_eq!(up.status(), StatusCode::OK);
}

#[tokio::test]
async fn slow_fault_delays_the_answer() {
    let sim = spawn([acme(1)]).await;
    sim.inject_site("acme", Fault::Slow { delay_ms: 300 }, 1);

    let started = Instant::now();
    let response = get_as_bob(&sim, "/wp-json/wp/v2/posts")
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn redirect_fault_answers_301_with_the_location() {
    let sim = spawn([acme(1)]).await;
    sim.inject_site(
        "acme",
        Fault::Redirect {
            location: "https://elsewhere.test/".to_owned(),
        },
        1,
    );

    let response = get_as_bob(&sim, "/wp-json/wp/v2/posts")
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::MOVED_PERMANENTLY);
    assert_eq!(response.headers()["location"], "https://elsewhere.test/");
}

#[tokio::test]
async fn stripped_authorization_looks_logged_out() {
    let sim = spawn([acme(0)]).await;
    sim.inject_site("acme", Fault::StripAuthorization, 1);

    let response = get_as_bob(&sim, "/wp-json/wp/v2/users/me")
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.json::<serde_json::Value>().await.unwrap()["code"],
        "rest_not_logged_in"
    );
}

#[tokio::test]
async fn revoking_over_http_makes_the_password_fail() {
    let sim = spawn([acme(0)]).await;

    let revoked = client()
        .post(format!(
            "{}/_sim/sites/acme/users/bob/revoke",
            sim.base_url()
        ))
        .send()
        .await
        .unwrap();
    let unknown = client()
        .post(format!(
            "{}/_sim/sites/acme/users/nobody/revoke",
            sim.base_url()
        ))
        .send()
        .await
        .unwrap();
    let response = get_as_bob(&sim, "/wp-json/wp/v2/users/me")
        .send()
        .await
        .unwrap();

    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        response.json::<serde_json::Value>().await.unwrap()["code"],
        "incorrect_password"
    );
}

#[tokio::test]
async fn site_added_over_http_is_served_and_bad_names_are_refused() {
    let sim = spawn([]).await;
    let sites = format!("{}/_sim/sites", sim.base_url());

    let added = client()
        .post(&sites)
        .json(&json!({"name": "acme", "posts": 3, "users": [{"username": "bob", "application_passwords": [PASSWORD]}]}))
        .send()
        .await
        .unwrap();
    let refused = client()
        .post(&sites)
        .json(&json!({"name": "a/b"}))
        .send()
        .await
        .unwrap();
    let response = get_as_bob(&sim, "/wp-json/wp/v2/posts")
        .send()
        .await
        .unwrap();

    assert_eq!(added.status(), StatusCode::CREATED);
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert_eq!(response.headers()["x-wp-total"], "3");
}

#[tokio::test]
async fn a_change_posted_over_http_shows_in_the_site_and_an_unknown_site_is_404() {
    let sim = spawn([acme(3)]).await;

    let created = client()
        .post(format!("{}/_sim/sites/acme/changes", sim.base_url()))
        .json(&json!({"op": "create", "collection": "posts", "count": 2}))
        .send()
        .await
        .unwrap();
    let unknown = client()
        .post(format!("{}/_sim/sites/nowhere/changes", sim.base_url()))
        .json(&json!({"op": "create", "collection": "posts", "count": 1}))
        .send()
        .await
        .unwrap();
    let malformed = client()
        .post(format!("{}/_sim/sites/acme/changes", sim.base_url()))
        .json(&json!({"op": "explode"}))
        .send()
        .await
        .unwrap();
    let listing = get_as_bob(&sim, "/wp-json/wp/v2/posts")
        .send()
        .await
        .unwrap();

    assert_eq!(created.status(), StatusCode::OK);
    let ids = created.json::<serde_json::Value>().await.unwrap()["ids"].clone();
    assert_eq!(ids.as_array().map(Vec::len), Some(2), "{ids}");
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert!(malformed.status().is_client_error());
    assert_eq!(listing.headers()["x-wp-total"], "5");
    let posts: Vec<serde_json::Value> = listing.json().await.unwrap();
    for id in ids.as_array().unwrap() {
        assert!(
            posts.iter().any(|post| &post["id"] == id),
            "post {id} is listed"
        );
    }
}

#[tokio::test]
async fn dropping_the_last_handle_stops_the_server() {
    let sim = spawn([acme(0)]).await;
    let url = format!("{}/wp-json/wp/v2/posts", sim.site_url("acme"));
    let copy = sim.clone();
    drop(sim);
    assert_eq!(
        client().get(&url).send().await.unwrap().status(),
        StatusCode::OK
    );

    drop(copy);

    let deadline = Instant::now() + Duration::from_secs(5);
    // A fresh client per try, so no pooled connection outlives the server.
    while client().get(&url).send().await.is_ok() {
        assert!(Instant::now() < deadline, "the simulator still answers");
        tokio::task::yield_now().await;
    }
}
