//! The dashboard's files, headers and settings; the page itself is driven
//! in a real browser by tests/browser.

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use fleet_gateway::routes::dashboard::{self, DashboardConfig};
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;

use crate::helpers::TestGateway;

const BRIDGE: &str = "wss://live.example.test:9443/ws";

fn router() -> Router {
    let config = DashboardConfig {
        bridge_url: url::Url::parse(BRIDGE).unwrap(),
    };
    dashboard::router(&config)
}

struct Page {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Page {
    fn header(&self, name: &header::HeaderName) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header"))
            .to_str()
            .unwrap()
    }
}

async fn get(app: &Router, uri: &str, if_none_match: Option<&str>) -> Page {
    let mut request = Request::builder().method(Method::GET).uri(uri);
    if let Some(tag) = if_none_match {
        request = request.header(header::IF_NONE_MATCH, tag);
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Page {
        status,
        headers,
        body: String::from_utf8(bytes.to_vec()).unwrap(),
    }
}

#[tokio::test]
async fn the_page_allows_scripts_only_from_itself_and_connections_only_to_the_bridge() {
    let app = router();
    for path in ["/", "/callback"] {
        let page = get(&app, path, None).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        assert_eq!(
            page.header(&header::CONTENT_TYPE),
            "text/html; charset=utf-8"
        );
        assert!(page.body.contains("<title>Integrations</title>"), "{path}");
        let csp = page.header(&header::CONTENT_SECURITY_POLICY);
        assert!(csp.contains("default-src 'none'"), "{csp}");
        assert!(csp.contains("script-src 'self';"), "{csp}");
        assert!(
            csp.contains("connect-src 'self' wss://live.example.test:9443;"),
            "{csp}"
        );
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert_eq!(page.header(&header::X_CONTENT_TYPE_OPTIONS), "nosniff");
        assert_eq!(page.header(&header::X_FRAME_OPTIONS), "DENY");
        assert_eq!(page.header(&header::REFERRER_POLICY), "no-referrer");
    }
}

#[tokio::test]
async fn every_file_the_page_names_is_served_with_its_content_type() {
    let app = router();
    let page = get(&app, "/", None).await;
    let expected = [
        ("/dashboard/app.js", "text/javascript; charset=utf-8"),
        ("/dashboard/style.css", "text/css; charset=utf-8"),
        (
            "/dashboard/vendor/uPlot.iife.min.js",
            "text/javascript; charset=utf-8",
        ),
        ("/dashboard/vendor/uPlot.min.css", "text/css; charset=utf-8"),
    ];
    for (path, content_type) in expected {
        assert!(
            page.body.contains(&format!("\"{path}\"")),
            "the page does not load {path}"
        );
        let file = get(&app, path, None).await;
        assert_eq!(file.status, StatusCode::OK, "{path}");
        assert_eq!(file.header(&header::CONTENT_TYPE), content_type, "{path}");
        assert_eq!(file.header(&header::X_CONTENT_TYPE_OPTIONS), "nosniff");
        assert!(!file.body.is_empty(), "{path} is empty");
    }
}

#[tokio::test]
async fn the_module_the_script_imports_is_served_as_javascript() {
    let app = router();
    let script = get(&app, "/dashboard/app.js", None).await;
    assert!(
        script.body.contains("from './views.js'"),
        "app.js no longer imports views.js"
    );
    let views = get(&app, "/dashboard/views.js", None).await;
    assert_eq!(views.status, StatusCode::OK);
    assert_eq!(
        views.header(&header::CONTENT_TYPE),
        "text/javascript; charset=utf-8"
    );
    assert!(
        views
            .header(&header::CONTENT_SECURITY_POLICY)
            .contains("script-src 'self';")
    );
}

#[tokio::test]
async fn a_browser_revalidates_files_and_gets_304_while_they_are_unchanged() {
    let app = router();
    for path in [
        "/",
        "/dashboard/app.js",
        "/dashboard/style.css",
        "/dashboard/views.js",
        "/dashboard/vendor/uPlot.iife.min.js",
    ] {
        let first = get(&app, path, None).await;
        assert_eq!(first.header(&header::CACHE_CONTROL), "no-cache", "{path}");
        let tag = first.header(&header::ETAG).to_owned();

        let again = get(&app, path, Some(&tag)).await;
        assert_eq!(again.status, StatusCode::NOT_MODIFIED, "{path}");
        assert!(again.body.is_empty());
        assert_eq!(again.header(&header::ETAG), tag);

        let stale = get(&app, path, Some("\"0000000000000000\"")).await;
        assert_eq!(stale.status, StatusCode::OK, "{path}");
    }
}

#[tokio::test]
async fn config_json_gives_the_page_the_configured_bridge_url() {
    let settings = get(&router(), "/dashboard/config.json", None).await;
    assert_eq!(settings.status, StatusCode::OK);
    assert_eq!(settings.header(&header::CONTENT_TYPE), "application/json");
    assert_eq!(settings.header(&header::CACHE_CONTROL), "no-store");
    let body: serde_json::Value = serde_json::from_str(&settings.body).unwrap();
    assert_eq!(body["bridge_url"], BRIDGE);
}

#[tokio::test]
async fn an_unknown_dashboard_file_is_404() {
    let app = router();
    for path in [
        "/dashboard/admin.js",
        "/dashboard/index.html",
        "/dashboard/..%2FCargo.toml",
        "/dashboard/vendor/uPlot.LICENSE",
        "/dashboard/vendor/..%2Fapp.js",
    ] {
        let missing = get(&app, path, None).await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND, "{path}");
        let body: serde_json::Value = serde_json::from_str(&missing.body).unwrap();
        assert_eq!(body["error"]["code"], "not_found", "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_serves_the_dashboard_without_a_token_and_the_api_only_with_one() {
    let gateway = TestGateway::start().await;
    let page = gateway
        .send(Request::get("/").body(Body::empty()).unwrap())
        .await;
    assert_eq!(page.status, StatusCode::OK);
    let settings = gateway
        .send(
            Request::get("/dashboard/config.json")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(settings.body["bridge_url"], "ws://127.0.0.1:18081/ws");
    let api = gateway
        .call(Method::GET, "/api/connections", None, None)
        .await;
    assert_eq!(api.status, StatusCode::UNAUTHORIZED);
    gateway.stop().await;
}
