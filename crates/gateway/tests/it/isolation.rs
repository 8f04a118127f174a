use axum::http::{Method, StatusCode};

use crate::helpers::{PASSWORD, TestGateway};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_tenant_never_sees_or_touches_another_tenants_connection() {
    let gateway = TestGateway::start().await;
    let id = gateway.connect("acme", "wordpress", "blog", PASSWORD).await;
    gateway.until_state("acme", &id, "synced").await;

    let list = gateway
        .call(Method::GET, "/api/connections", Some("globex"), None)
        .await;
    assert_eq!(list.body["connections"].as_array().unwrap().len(), 0);
    for (method, path) in [
        (Method::GET, format!("/api/connections/{id}")),
        (Method::GET, format!("/api/connections/{id}/records")),
        (Method::POST, format!("/api/connections/{id}/sync")),
        (Method::DELETE, format!("/api/connections/{id}")),
    ] {
        let reply = gateway
            .call(method.clone(), &path, Some("globex"), None)
            .await;
        assert_eq!(
            reply.status,
            StatusCode::NOT_FOUND,
            "{method} {path}: {:?}",
            reply.body
        );
    }
    let still = gateway
        .call(
            Method::GET,
            &format!("/api/connections/{id}"),
            Some("acme"),
            None,
        )
        .await;
    assert_eq!(still.status, StatusCode::OK, "globex's delete did nothing");
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_api_route_needs_a_valid_token() {
    let gateway = TestGateway::start().await;
    for (method, path) in [
        (Method::GET, "/api/connectors"),
        (Method::GET, "/api/connections"),
        (Method::POST, "/api/connections"),
        (Method::GET, "/api/connections/x"),
        (Method::POST, "/api/connections/x/sync"),
        (Method::DELETE, "/api/connections/x"),
        (Method::GET, "/api/connections/x/records"),
    ] {
        let reply = gateway.call(method.clone(), path, None, None).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{method} {path}");
        assert!(
            reply.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("Bearer")
        );
    }
    let forged = axum::http::Request::get("/api/connections")
        .header("authorization", "Bearer not.a.token")
        .body(axum::body::Body::empty())
        .unwrap();
    assert_eq!(gateway.send(forged).await.status, StatusCode::UNAUTHORIZED);
    gateway.stop().await;
}
