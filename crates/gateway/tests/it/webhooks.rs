//! `/api/webhooks`: endpoints under the outbound-address rule, their
//! secrets, their delivery log and redelivery, per tenant.

use axum::http::{Method, StatusCode};
use fleet_events::ConnectionId;
use secrecy::ExposeSecret as _;
use serde_json::json;

use crate::helpers::{DEADLINE, PASSWORD, TestGateway, WEBHOOK_KEY, claims, sign};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_urls_must_be_https_on_the_public_internet() {
    let gateway = TestGateway::start().await;
    let long = format!("https://hooks.example.com/{}", "a".repeat(2048));
    for (url, why) in [
        (long.as_str(), "longer than 2048 bytes"),
        ("http://hooks.example.com/fleet", "https"),
        ("https://127.0.0.1/hook", "private or internal"),
        ("https://169.254.169.254/latest", "private or internal"),
        ("https://[::1]:8443/hook", "private or internal"),
        ("https://user:pw@hooks.example.com/", "credentials"),
        ("not a url", "absolute URL"),
    ] {
        let reply = gateway
            .call(
                Method::POST,
                "/api/webhooks",
                Some("acme"),
                Some(json!({"url": url})),
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{url}: {:?}",
            reply.body
        );
        assert_eq!(reply.body["error"]["field"], "url", "{url}");
        let message = reply.body["error"]["message"].as_str().unwrap();
        assert!(message.contains(why), "{url}: {message}");
    }
    let list = gateway
        .call(Method::GET, "/api/webhooks", Some("acme"), None)
        .await;
    assert_eq!(list.body["webhooks"], json!([]));
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_creates_lists_reads_the_log_of_redelivers_and_deletes_its_endpoint() {
    let gateway = TestGateway::start().await;
    let created = gateway
        .call(
            Method::POST,
            "/api/webhooks",
            Some("acme"),
            Some(json!({"url": "https://hooks.example.com/fleet", "description": "backend"})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    let signer = fleet_connectors::webhook::Signer::new(WEBHOOK_KEY.to_owned().into());
    assert_eq!(
        created.body["secret"],
        signer.secret(&id).expose_secret(),
        "the endpoint's signing secret, shown once"
    );
    let list = gateway
        .call(Method::GET, "/api/webhooks", Some("acme"), None)
        .await;
    assert_eq!(list.body["webhooks"].as_array().unwrap().len(), 1);
    assert_eq!(
        list.body["webhooks"][0]["url"],
        "https://hooks.example.com/fleet"
    );
    assert!(list.body["webhooks"][0].get("secret").is_none());

    // The connection's state change and sync completion are filed for the
    // endpoint (no delivery loop runs here, so they stay pending).
    let connection = gateway.connect("acme", "wordpress", "blog", PASSWORD).await;
    gateway.until_state("acme", &connection, "synced").await;
    let path = format!("/api/webhooks/{id}/deliveries");
    let log = fleet_testkit::eventually(DEADLINE, "two deliveries in the log", || async {
        let log = gateway.call(Method::GET, &path, Some("acme"), None).await;
        assert_eq!(log.status, StatusCode::OK, "{:?}", log.body);
        (log.body["deliveries"].as_array().unwrap().len() == 2).then_some(log.body)
    })
    .await;
    let types: Vec<&str> = log["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["sync.completed", "connection.state_changed"],
        "newest first"
    );
    assert_eq!(log["deliveries"][0]["connection"], connection.as_str());
    assert_eq!(log["deliveries"][0]["state"], "pending");
    let older = log["deliveries"][1]["id"].as_i64().unwrap();
    let one = gateway
        .call(Method::GET, &format!("{path}?limit=1"), Some("acme"), None)
        .await;
    assert_eq!(one.body["deliveries"].as_array().unwrap().len(), 1);
    let next = one.body["next"].as_i64().unwrap();
    let second = gateway
        .call(
            Method::GET,
            &format!("{path}?limit=1&before={next}"),
            Some("acme"),
            None,
        )
        .await;
    assert_eq!(second.body["deliveries"][0]["id"], older);

    let redeliver = |delivery: String| format!("{path}/{delivery}/redeliver");
    let again = gateway
        .call(
            Method::POST,
            &redeliver(older.to_string()),
            Some("acme"),
            None,
        )
        .await;
    assert_eq!(again.status, StatusCode::ACCEPTED, "{:?}", again.body);
    let unknown = gateway
        .call(
            Method::POST,
            &redeliver("999999".into()),
            Some("acme"),
            None,
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);

    // Another tenant sees none of it.
    let theirs = gateway.call(Method::GET, &path, Some("globex"), None).await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND);
    let theirs = gateway
        .call(
            Method::POST,
            &redeliver(older.to_string()),
            Some("globex"),
            None,
        )
        .await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND);
    let theirs = gateway
        .call(Method::GET, "/api/webhooks", Some("globex"), None)
        .await;
    assert_eq!(theirs.body["webhooks"], json!([]));
    let theirs = gateway
        .call(
            Method::DELETE,
            &format!("/api/webhooks/{id}"),
            Some("globex"),
            None,
        )
        .await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND);

    // A token narrowed to some connections may not manage webhooks.
    let mut narrowed = claims("acme");
    narrowed.connections = Some(vec![ConnectionId::parse(&connection).unwrap()]);
    let forbidden = gateway
        .call_with(Method::GET, "/api/webhooks", Some(&sign(&narrowed)), None)
        .await;
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);

    let deleted = gateway
        .call(
            Method::DELETE,
            &format!("/api/webhooks/{id}"),
            Some("acme"),
            None,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let gone = gateway.call(Method::GET, &path, Some("acme"), None).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    gateway.stop().await;
}
