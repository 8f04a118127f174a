//! The integrations dashboard: a static page served beside the API.
//!
//! | route | serves |
//! | --- | --- |
//! | `GET /`, `GET /callback` | the page (`/callback` is where OAuth flows end) |
//! | `GET /dashboard/app.js`, `GET /dashboard/views.js`, `GET /dashboard/style.css` | its scripts (`views.js`: the data views) and styles |
//! | `GET /dashboard/vendor/uPlot.iife.min.js`, `GET /dashboard/vendor/uPlot.min.css` | the charting library of the data views ([uPlot](https://github.com/leeoniya/uPlot) 1.6.32 from npm, MIT, vendored in `dashboard/vendor/`) |
//! | `GET /dashboard/config.json` | its settings: the bridge's WebSocket URL |
//!
//! The files live in `crates/gateway/dashboard/` and are compiled into the
//! binary, so a gateway serves exactly the dashboard it was built with:
//! no build step, no CDN, nothing to deploy beside it. They are answered
//! with `Cache-Control: no-cache` and an `ETag` of their content, so a
//! browser revalidates each load (a 304 when nothing changed) and never
//! runs a script older than the page.
//!
//! The page runs in the browser with the tenant's token, so it is served
//! with a Content-Security-Policy that allows scripts, styles and requests
//! only from this gateway, plus WebSocket connections to the bridge's
//! origin, and refuses to be framed.

use std::hash::{DefaultHasher, Hash as _, Hasher as _};
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, HeaderMap, HeaderName, HeaderValue,
    IF_NONE_MATCH, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Deserializer};
use url::Url;

use crate::Error;

/// The dashboard's settings (`FLEET_GATEWAY__DASHBOARD__*`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct DashboardConfig {
    /// The bridge's WebSocket URL as browsers reach it (`ws://` or
    /// `wss://`, ending in `/ws`). The page connects there for live status,
    /// and the Content-Security-Policy allows connections to its origin.
    #[serde(deserialize_with = "websocket_url")]
    pub bridge_url: Url,
}

impl Default for DashboardConfig {
    fn default() -> Self {
        Self {
            bridge_url: Url::parse("ws://127.0.0.1:18081/ws")
                .expect("the default bridge URL parses"),
        }
    }
}

/// Accepts only absolute `ws://` and `wss://` URLs: a browser opens
/// nothing else as a WebSocket, and the CSP needs the origin.
fn websocket_url<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Url, D::Error> {
    let text = String::deserialize(deserializer)?;
    let url = Url::parse(&text).map_err(|e| {
        serde::de::Error::custom(format!(
            "{text:?} is not a URL ({e}); write it like wss://bridge.example.com/ws"
        ))
    })?;
    match url.scheme() {
        "ws" | "wss" => Ok(url),
        other => Err(serde::de::Error::custom(format!(
            "the bridge URL must start with ws:// or wss://, not {other}://"
        ))),
    }
}

/// The routes. They take the dashboard's settings rather than the
/// gateway's state: the page needs none of the API's services, so it can
/// be served (and tested) on its own.
pub fn router<S>(config: &DashboardConfig) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let site = Arc::new(Site::new(config));
    Router::new()
        .route("/", get(page))
        .route("/callback", get(page))
        .route("/dashboard/config.json", get(settings))
        .route("/dashboard/{file}", get(asset))
        .route("/dashboard/vendor/{file}", get(vendor))
        .with_state(site)
}

/// One embedded file.
#[derive(Debug)]
struct File {
    body: &'static str,
    content_type: &'static str,
    etag: HeaderValue,
}

impl File {
    fn new(body: &'static str, content_type: &'static str) -> Self {
        let mut hasher = DefaultHasher::new();
        body.hash(&mut hasher);
        let etag = HeaderValue::from_str(&format!("\"{:016x}\"", hasher.finish()))
            .expect("a quoted hex number is a valid header value");
        Self {
            body,
            content_type,
            etag,
        }
    }

    /// Whether the request's `If-None-Match` names this file's content.
    fn matches(&self, request: &HeaderMap) -> bool {
        let Some(tags) = request.get(IF_NONE_MATCH).and_then(|v| v.to_str().ok()) else {
            return false;
        };
        let ours = self.etag.as_bytes();
        tags.split(',')
            .map(str::trim)
            .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag).as_bytes() == ours)
    }
}

/// The files and headers, built once per router.
#[derive(Debug)]
struct Site {
    index: File,
    script: File,
    views: File,
    style: File,
    chart_script: File,
    chart_style: File,
    settings: String,
    csp: HeaderValue,
}

impl Site {
    fn new(config: &DashboardConfig) -> Self {
        let bridge_origin = config.bridge_url.origin().ascii_serialization();
        let csp = format!(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self' {bridge_origin}; form-action 'self'; base-uri 'none'; \
             frame-ancestors 'none'"
        );
        Self {
            index: File::new(
                include_str!("../../dashboard/index.html"),
                "text/html; charset=utf-8",
            ),
            script: File::new(
                include_str!("../../dashboard/app.js"),
                "text/javascript; charset=utf-8",
            ),
            views: File::new(
                include_str!("../../dashboard/views.js"),
                "text/javascript; charset=utf-8",
            ),
            style: File::new(
                include_str!("../../dashboard/style.css"),
                "text/css; charset=utf-8",
            ),
            chart_script: File::new(
                include_str!("../../dashboard/vendor/uPlot.iife.min.js"),
                "text/javascript; charset=utf-8",
            ),
            chart_style: File::new(
                include_str!("../../dashboard/vendor/uPlot.min.css"),
                "text/css; charset=utf-8",
            ),
            settings: serde_json::json!({ "bridge_url": config.bridge_url.as_str() }).to_string(),
            // An origin is ASCII without control characters, so the
            // policy is always a valid header value.
            csp: HeaderValue::from_str(&csp).unwrap_or(HeaderValue::from_static(
                "default-src 'none'; frame-ancestors 'none'",
            )),
        }
    }

    /// Headers every dashboard response carries.
    fn security_headers(&self) -> [(HeaderName, HeaderValue); 4] {
        [
            (CONTENT_SECURITY_POLICY, self.csp.clone()),
            (X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
            (X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
            (REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
        ]
    }

    /// `file`, or a 304 when the browser's copy is current.
    fn serve(&self, file: &File, request: &HeaderMap) -> Response {
        let caching = [
            (CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (ETAG, file.etag.clone()),
        ];
        if file.matches(request) {
            return (StatusCode::NOT_MODIFIED, self.security_headers(), caching).into_response();
        }
        (
            self.security_headers(),
            caching,
            [(CONTENT_TYPE, HeaderValue::from_static(file.content_type))],
            file.body,
        )
            .into_response()
    }
}

/// `GET /` and `GET /callback`: the page; its script reads the path.
async fn page(State(site): State<Arc<Site>>, request: HeaderMap) -> Response {
    site.serve(&site.index, &request)
}

/// `GET /dashboard/{file}`: the page's script and styles.
async fn asset(
    State(site): State<Arc<Site>>,
    Path(name): Path<String>,
    request: HeaderMap,
) -> Result<Response, Error> {
    let file = match name.as_str() {
        "app.js" => &site.script,
        "views.js" => &site.views,
        "style.css" => &site.style,
        _ => return Err(Error::NotFound(format!("no dashboard file {name:?}"))),
    };
    Ok(site.serve(file, &request))
}

/// `GET /dashboard/vendor/{file}`: the vendored charting library.
async fn vendor(
    State(site): State<Arc<Site>>,
    Path(name): Path<String>,
    request: HeaderMap,
) -> Result<Response, Error> {
    let file = match name.as_str() {
        "uPlot.iife.min.js" => &site.chart_script,
        "uPlot.min.css" => &site.chart_style,
        _ => {
            let path = format!("vendor/{name}");
            return Err(Error::NotFound(format!("no dashboard file {path:?}")));
        }
    };
    Ok(site.serve(file, &request))
}

/// `GET /dashboard/config.json`: the page's settings, never cached, so a
/// changed bridge URL applies at the next load.
async fn settings(State(site): State<Arc<Site>>) -> Response {
    (
        site.security_headers(),
        [(CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        site.settings.clone(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: &str) -> Result<DashboardConfig, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn the_bridge_url_must_be_a_websocket_url() {
        assert_eq!(
            config(r#"{"bridge_url": "wss://bridge.example.com/ws"}"#)
                .unwrap()
                .bridge_url
                .as_str(),
            "wss://bridge.example.com/ws"
        );
        let http = config(r#"{"bridge_url": "https://bridge.example.com/ws"}"#).unwrap_err();
        assert!(http.to_string().contains("ws://"), "{http}");
        let relative = config(r#"{"bridge_url": "/ws"}"#).unwrap_err();
        assert!(relative.to_string().contains("not a URL"), "{relative}");
        assert_eq!(
            config("{}").unwrap().bridge_url.as_str(),
            "ws://127.0.0.1:18081/ws"
        );
    }

    #[test]
    fn the_policy_allows_the_bridge_origin_and_nothing_else_outside() {
        let site =
            Site::new(&config(r#"{"bridge_url": "wss://live.example.com:8443/ws"}"#).unwrap());
        let csp = site.csp.to_str().unwrap();
        assert!(
            csp.contains("connect-src 'self' wss://live.example.com:8443;"),
            "{csp}"
        );
        assert!(csp.contains("script-src 'self';"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    }
}
