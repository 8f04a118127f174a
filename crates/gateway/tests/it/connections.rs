use axum::http::{Method, StatusCode};

use crate::helpers::{PASSWORD, TestGateway};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wordpress_site_connected_through_the_api_ends_synced_with_its_records() {
    let gateway = TestGateway::start().await;

    let id = gateway.connect("acme", "wordpress", "blog", PASSWORD).await;

    let connection = gateway.until_state("acme", &id, "synced").await;
    assert_eq!(connection["records_total"], 124);
    assert_eq!(connection["last_error"], serde_json::Value::Null);
    assert!(connection["account"]["name"].as_str().is_some());
    let text = connection.to_string();
    assert!(!text.contains(PASSWORD), "no secret in the API");

    let mut seen = std::collections::BTreeSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let uri = match &cursor {
            Some(c) => format!("/api/connections/{id}/records?stream=posts&limit=50&cursor={c}"),
            None => format!("/api/connections/{id}/records?stream=posts&limit=50"),
        };
        let page = gateway.call(Method::GET, &uri, Some("acme"), None).await;
        assert_eq!(page.status, StatusCode::OK, "{:?}", page.body);
        for record in page.body["records"].as_array().unwrap() {
            assert!(
                seen.insert(record["external_id"].as_str().unwrap().to_owned()),
                "no duplicate"
            );
        }
        match page.body["next"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 120, "every post, once");
    let control = gateway
        .call(
            Method::GET,
            &format!("/api/connections/{id}/records?stream=posts%00"),
            Some("acme"),
            None,
        )
        .await;
    assert_eq!(
        control.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        control.body
    );
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fluentcrm_site_connected_through_the_api_ends_synced() {
    let gateway = TestGateway::start().await;

    let id = gateway.connect("acme", "fluentcrm", "crm", PASSWORD).await;

    let connection = gateway.until_state("acme", &id, "synced").await;
    assert_eq!(connection["records_total"], 43);
    let subscribers = gateway
        .call(
            Method::GET,
            &format!("/api/connections/{id}/records?stream=subscribers&limit=1000"),
            Some("acme"),
            None,
        )
        .await;
    assert_eq!(subscribers.body["records"].as_array().unwrap().len(), 40);
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_application_password_ends_invalid_with_a_readable_error() {
    let gateway = TestGateway::start().await;

    let id = gateway
        .connect("acme", "wordpress", "blog", "wxyz WXYZ 9876 abcd ABCD 4321")
        .await;

    let connection = gateway.until_state("acme", &id, "invalid").await;
    let error = connection["last_error"].as_str().unwrap();
    assert!(error.contains("password"), "{error}");
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_now_runs_another_sync_and_delete_removes_the_connection() {
    let gateway = TestGateway::start().await;
    let id = gateway.connect("acme", "wordpress", "blog", PASSWORD).await;
    let first = gateway.until_state("acme", &id, "synced").await;

    let sync = gateway
        .call(
            Method::POST,
            &format!("/api/connections/{id}/sync"),
            Some("acme"),
            None,
        )
        .await;
    assert_eq!(sync.status, StatusCode::ACCEPTED);
    fleet_testkit::eventually(crate::helpers::DEADLINE, "a second sync", || async {
        let now = gateway.until_state("acme", &id, "synced").await;
        (now["last_sync_at"] != first["last_sync_at"]).then_some(())
    })
    .await;

    let deleted = gateway
        .call(
            Method::DELETE,
            &format!("/api/connections/{id}"),
            Some("acme"),
            None,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let gone = gateway
        .call(
            Method::GET,
            &format!("/api/connections/{id}"),
            Some("acme"),
            None,
        )
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    let list = gateway
        .call(Method::GET, "/api/connections", Some("acme"), None)
        .await;
    assert_eq!(list.body["connections"].as_array().unwrap().len(), 0);
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_synced_connection_s_health_shows_its_last_success_and_runs_to_its_tenant_only() {
    let gateway = TestGateway::start().await;
    let id = gateway.connect("acme", "wordpress", "blog", PASSWORD).await;
    gateway.until_state("acme", &id, "synced").await;
    let run_ended = |body: &serde_json::Value| body["recent_runs"][0]["outcome"] == "succeeded";
    let health = fleet_testkit::eventually(
        crate::helpers::DEADLINE,
        "the health report to show the run ended",
        || async {
            let health = gateway
                .call(
                    Method::GET,
                    &format!("/api/connections/{id}/health"),
                    Some("acme"),
                    None,
                )
                .await;
            assert_eq!(health.status, StatusCode::OK, "{}", health.body);
            run_ended(&health.body).then_some(health.body)
        },
    )
    .await;

    assert_eq!(health["id"], id.as_str());
    assert_eq!(health["state"], "synced");
    assert_eq!(health["degraded"], false);
    assert_eq!(health["consecutive_failures"], 0);
    assert!(health["last_ok_at"].is_string(), "{health}");
    assert!(health["last_failure"].is_null());
    assert!(
        health["token"].is_null(),
        "an application password does not expire"
    );
    let runs = health["recent_runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["trigger"], "setup");
    assert_eq!(runs[0]["records"], 124);
    assert!(!health.to_string().contains(PASSWORD));

    let list = gateway
        .call(Method::GET, "/api/connections", Some("acme"), None)
        .await;
    let listed = &list.body["connections"][0];
    assert_eq!(listed["health"]["degraded"], false);
    assert_eq!(listed["health"]["last_ok_at"], health["last_ok_at"]);
    let one = gateway
        .call(
            Method::GET,
            &format!("/api/connections/{id}"),
            Some("acme"),
            None,
        )
        .await;
    assert_eq!(one.body["health"], listed["health"]);

    let other = gateway
        .call(
            Method::GET,
            &format!("/api/connections/{id}/health"),
            Some("globex"),
            None,
        )
        .await;
    assert_eq!(other.status, StatusCode::NOT_FOUND);
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_records_of_every_connection_come_in_the_order_stored_filtered_by_connector_and_stream()
{
    let gateway = TestGateway::start().await;
    let blog = gateway.connect("acme", "wordpress", "blog", PASSWORD).await;
    let crm = gateway.connect("acme", "fluentcrm", "crm", PASSWORD).await;
    let blog_total = gateway.until_state("acme", &blog, "synced").await["records_total"]
        .as_u64()
        .unwrap();
    let crm_total = gateway.until_state("acme", &crm, "synced").await["records_total"]
        .as_u64()
        .unwrap();
    let walk = |query: &'static str| {
        let gateway = &gateway;
        async move {
            let mut records = Vec::new();
            let mut next: Option<String> = None;
            loop {
                let uri = match &next {
                    Some(cursor) => format!("/api/records?{query}&limit=100&cursor={cursor}"),
                    None => format!("/api/records?{query}&limit=100"),
                };
                let page = gateway.call(Method::GET, &uri, Some("acme"), None).await;
                assert_eq!(page.status, StatusCode::OK, "{uri}: {}", page.body);
                records.extend(page.body["records"].as_array().unwrap().clone());
                match page.body["next"].as_str() {
                    Some(cursor) => next = Some(cursor.to_owned()),
                    None => return records,
                }
            }
        }
    };

    let every = walk("include_deleted=false").await;
    assert_eq!(every.len() as u64, blog_total + crm_total);
    let keys: std::collections::BTreeSet<(String, String, String)> = every
        .iter()
        .map(|r| {
            let text = |k: &str| r[k].as_str().unwrap().to_owned();
            (text("connection"), text("stream"), text("external_id"))
        })
        .collect();
    assert_eq!(keys.len(), every.len(), "each record once");
    let stored: Vec<chrono::DateTime<chrono::Utc>> = every
        .iter()
        .map(|r| r["stored_at"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(
        stored.windows(2).all(|w| w[0] <= w[1]),
        "in the order stored"
    );

    let subscribers = walk("connector=fluentcrm&stream=subscribers").await;
    assert_eq!(subscribers.len(), 40);
    assert!(
        subscribers
            .iter()
            .all(|r| r["connection"] == crm.as_str() && r["connector"] == "fluentcrm")
    );
    assert!(!every.iter().any(|r| r.to_string().contains(PASSWORD)));

    for (query, field) in [
        ("connector=acme-crm-typo", "connector"),
        ("connector=wordpress&stream=subscribers", "stream"),
        ("cursor=not-a-cursor", "cursor"),
        ("limit=0", "limit"),
        ("stream=posts%00", "stream"),
    ] {
        let reply = gateway
            .call(
                Method::GET,
                &format!("/api/records?{query}"),
                Some("acme"),
                None,
            )
            .await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{query}");
        let message = reply.body["error"]["message"].as_str().unwrap();
        assert!(message.contains(field), "{query}: {message}");
    }
    let typo = gateway
        .call(
            Method::GET,
            "/api/records?conector=wordpress",
            Some("acme"),
            None,
        )
        .await;
    assert!(typo.status.is_client_error(), "{}", typo.body);
    let other = gateway
        .call(Method::GET, "/api/records", Some("globex"), None)
        .await;
    assert_eq!(other.body["records"].as_array().unwrap().len(), 0);
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_describes_every_route() {
    let gateway = TestGateway::start().await;

    let doc = gateway
        .call(Method::GET, "/api/openapi.json", None, None)
        .await;

    assert_eq!(doc.status, StatusCode::OK);
    let paths = doc.body["paths"].as_object().unwrap();
    for path in [
        "/api/connectors",
        "/api/connections",
        "/api/connections/{id}",
        "/api/connections/{id}/sync",
        "/api/connections/{id}/records",
        "/api/connections/{id}/health",
        "/api/records",
    ] {
        assert!(
            paths.contains_key(path),
            "{path} missing from {:?}",
            paths.keys()
        );
    }
    let schemas = doc.body["components"]["schemas"].as_object().unwrap();
    for name in [
        "Record.wordpress.posts",
        "Record.wordpress.pages",
        "Record.fluentcrm.subscribers",
        "Record.fluentcrm.lists",
        "Record.google-analytics.daily_metrics",
        "Record.meta.ad_insights",
        "Record.linkedin.follower_statistics",
        "Record.trello.boards",
        "Record.trello.cards",
        "Record.generic-oauth2.account",
    ] {
        let schema = schemas
            .get(name)
            .unwrap_or_else(|| panic!("{name} missing from {:?}", schemas.keys()));
        assert_eq!(schema["type"], "object", "{name}");
        assert!(
            schema["properties"]
                .as_object()
                .is_some_and(|p| !p.is_empty()),
            "{name}"
        );
    }
    assert_eq!(
        schemas["Record.wordpress.posts"]["properties"]["modified_gmt"]["description"]
            .as_str()
            .map(|d| d.contains("UTC")),
        Some(true)
    );
    let records = doc.body["paths"]["/api/records"]["get"]["description"]
        .as_str()
        .unwrap_or_default();
    assert!(records.contains("Record.<connector>.<stream>"), "{records}");
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catalog_lists_every_connector_with_its_form() {
    let gateway = TestGateway::start().await;

    let reply = gateway
        .call(Method::GET, "/api/connectors", Some("acme"), None)
        .await;

    assert_eq!(reply.status, StatusCode::OK);
    let connectors = reply.body["connectors"].as_array().unwrap();
    let wordpress = connectors.iter().find(|c| c["id"] == "wordpress").unwrap();
    assert_eq!(wordpress["auth"], "app_password");
    let fields: Vec<&str> = wordpress["form"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["site_url", "username", "application_password"]);
    let analytics = connectors
        .iter()
        .find(|c| c["id"] == "google-analytics")
        .unwrap();
    assert_eq!(analytics["auth"], "oauth2");
    assert_eq!(
        analytics["streams"][0]["schema"],
        "Record.google-analytics.daily_metrics"
    );
    assert_eq!(wordpress["streams"][1]["schema"], "Record.wordpress.pages");
    gateway.stop().await;
}
