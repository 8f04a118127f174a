//! Per-tenant limits: one tenant cannot use up what all tenants share.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use fleet_gateway::limits::LimitsConfig;
use fleet_sim::Fault;
use tower::ServiceExt as _;

use crate::helpers::{PASSWORD, TestGateway, gateway_config, token};

async fn start_with_limits(limits: LimitsConfig) -> TestGateway {
    TestGateway::start_with(fleet_gateway::Config {
        limits,
        ..gateway_config()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_over_its_request_rate_gets_429_with_retry_after_and_others_do_not() {
    let gateway = start_with_limits(LimitsConfig {
        requests_per_second: 1,
        request_burst: 5,
        ..LimitsConfig::default()
    })
    .await;
    let list = |tenant: &str| {
        Request::builder()
            .method(Method::GET)
            .uri("/api/connections")
            .header(header::AUTHORIZATION, format!("Bearer {}", token(tenant)))
            .body(Body::empty())
            .unwrap()
    };
    for _ in 0..5 {
        let reply = gateway.app.clone().oneshot(list("mallory")).await.unwrap();
        assert_eq!(reply.status(), StatusCode::OK);
    }

    let limited = gateway.app.clone().oneshot(list("mallory")).await.unwrap();
    let other = gateway.app.clone().oneshot(list("acme")).await.unwrap();

    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.headers()[header::RETRY_AFTER], "1");
    assert_eq!(
        other.status(),
        StatusCode::OK,
        "another tenant is not limited"
    );
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connecting_accounts_has_a_smaller_limit_of_its_own() {
    let gateway = start_with_limits(LimitsConfig {
        changes_per_minute: 1,
        change_burst: 2,
        ..LimitsConfig::default()
    })
    .await;
    let body = serde_json::json!({
        "connector": "wordpress",
        "credentials": {"site_url": gateway.sim.site_url("blog"), "username": crate::helpers::USER, "application_password": PASSWORD},
    });
    for _ in 0..2 {
        let created = gateway
            .call(
                Method::POST,
                "/api/connections",
                Some("mallory"),
                Some(body.clone()),
            )
            .await;
        assert_eq!(created.status, StatusCode::ACCEPTED, "{:?}", created.body);
    }

    let third = gateway
        .call(
            Method::POST,
            "/api/connections",
            Some("mallory"),
            Some(body),
        )
        .await;
    let reading = gateway
        .call(Method::GET, "/api/connections", Some("mallory"), None)
        .await;

    assert_eq!(third.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(third.body["error"]["code"], "too_many_requests");
    assert!(
        third.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("retry in 60 s"),
        "{:?}",
        third.body
    );
    assert_eq!(reading.status, StatusCode::OK, "reading is not a change");
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_sync_requests_at_once_make_one_sync() {
    let gateway = TestGateway::start().await;
    let id = gateway.connect("acme", "wordpress", "blog", PASSWORD).await;
    let first = gateway.until_state("acme", &id, "synced").await;
    // The next sync's first request to the site takes a while, so every
    // request below arrives while it is queued or running.
    gateway
        .sim
        .inject_site("blog", Fault::Slow { delay_ms: 2000 }, 1);

    let mut replies = Vec::new();
    for _ in 0..20 {
        let reply = gateway
            .call(
                Method::POST,
                &format!("/api/connections/{id}/sync"),
                Some("acme"),
                None,
            )
            .await;
        assert_eq!(reply.status, StatusCode::ACCEPTED, "{:?}", reply.body);
        replies.push(reply.body);
    }

    let started: Vec<_> = replies.iter().filter(|r| r["coalesced"] == false).collect();
    assert_eq!(started.len(), 1, "{replies:?}");
    let run = &replies[0]["run"];
    assert!(
        replies.iter().all(|r| &r["run"] == run),
        "every request names the one sync: {replies:?}"
    );
    fleet_testkit::eventually(crate::helpers::DEADLINE, "the sync to run", || async {
        let now = gateway.until_state("acme", &id, "synced").await;
        (now["last_sync_at"] != first["last_sync_at"]).then_some(())
    })
    .await;
    // Once it is done, "Sync now" starts a new one.
    let next = gateway
        .call(
            Method::POST,
            &format!("/api/connections/{id}/sync"),
            Some("acme"),
            None,
        )
        .await;
    assert_eq!(next.body["coalesced"], false, "{:?}", next.body);
    assert_ne!(&next.body["run"], run);
    gateway.stop().await;
}
