use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use serde_json::json;

use crate::helpers::{PASSWORD, TestGateway, USER, token};

async fn create(gateway: &TestGateway, body: serde_json::Value) -> crate::helpers::Reply {
    gateway
        .call(Method::POST, "/api/connections", Some("acme"), Some(body))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_4xx_that_says_what_to_fix() {
    let gateway = TestGateway::start().await;
    let site = gateway.sim.site_url("blog");

    let missing = create(
        &gateway,
        json!({"connector": "wordpress", "credentials": {"site_url": site, "username": USER}}),
    )
    .await;
    assert_eq!(missing.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(missing.body["error"]["field"], "application_password");

    let unknown = create(&gateway, json!({"connector": "myspace", "credentials": {}})).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert!(
        unknown.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("GET /api/connectors")
    );

    let not_a_url = create(&gateway, json!({"connector": "wordpress", "credentials": {"site_url": "blog", "username": USER, "application_password": PASSWORD}})).await;
    assert_eq!(not_a_url.body["error"]["field"], "site_url");

    let oauth = create(
        &gateway,
        json!({"connector": "google-analytics", "credentials": {}}),
    )
    .await;
    assert_eq!(oauth.body["error"]["field"], "connector");
    assert!(
        oauth.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("consent page")
    );

    let malformed = create(&gateway, json!({"connector": "wordpress", "credentials": {"site_url": site, "username": USER, "application_password": "short"}})).await;
    assert_eq!(malformed.body["error"]["field"], "application_password");

    let typo = create(
        &gateway,
        json!({"connector": "wordpress", "credentails": {}}),
    )
    .await;
    assert_eq!(
        typo.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{:?}",
        typo.body
    );

    let bad_cursor = gateway.connect("acme", "wordpress", "blog", PASSWORD).await;
    let reply = gateway
        .call(
            Method::GET,
            &format!("/api/connections/{bad_cursor}/records?cursor=garbage"),
            Some("acme"),
            None,
        )
        .await;
    assert_eq!(reply.body["error"]["field"], "cursor");
    let reply = gateway
        .call(
            Method::GET,
            &format!("/api/connections/{bad_cursor}/records?limit=0"),
            Some("acme"),
            None,
        )
        .await;
    assert_eq!(reply.body["error"]["field"], "limit");
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_http_site_is_refused_unless_the_operator_allows_it() {
    // The test gateway allows http (the simulator serves http); the rule
    // itself: an http URL with the default config is refused.
    let gateway = TestGateway::start().await;
    let reply = create(
        &gateway,
        json!({"connector": "wordpress", "credentials": {"site_url": "ftp://example.com", "username": USER, "application_password": PASSWORD}}),
    )
    .await;
    assert_eq!(reply.body["error"]["field"], "site_url");
    assert!(
        reply.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("https")
    );
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_body_or_a_wrong_content_type_is_refused() {
    let gateway = TestGateway::start().await;
    let big = "x".repeat(200 * 1024);
    let oversized = Request::builder()
        .method(Method::POST)
        .uri("/api/connections")
        .header(header::AUTHORIZATION, format!("Bearer {}", token("acme")))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(
            json!({"connector": "wordpress", "display_name": big, "credentials": {}}).to_string(),
        ))
        .unwrap();
    assert_eq!(
        gateway.send(oversized).await.status,
        StatusCode::PAYLOAD_TOO_LARGE
    );

    let form = Request::builder()
        .method(Method::POST)
        .uri("/api/connections")
        .header(header::AUTHORIZATION, format!("Bearer {}", token("acme")))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from("connector=wordpress"))
        .unwrap();
    let reply = gateway.send(form).await;
    assert_eq!(reply.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(
        reply.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("application/json"),
        "{:?}",
        reply.body
    );
    gateway.stop().await;
}
