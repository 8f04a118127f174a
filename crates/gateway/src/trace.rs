//! One span per API and OAuth request: the root of a setup's trace.

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use fleet_events::TraceContext;
use tracing::Instrument as _;

/// Runs the request in an `http.request` span (method, route template,
/// response status; never the URL, whose query may hold an OAuth code or
/// state). A caller's W3C `traceparent`/`tracestate` headers make the span
/// part of the caller's trace; the events the request publishes carry the
/// span's context on to the workers.
pub(crate) async fn spans(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let method = fleet_serve::ops::method_label(request.method());
    let span = tracing::info_span!(
        "http.request",
        otel.kind = "server",
        otel.name = %format_args!("{method} {route}"),
        http.request.method = method,
        http.route = route,
        http.response.status_code = tracing::field::Empty,
    );
    if let Some(parent) = incoming(request.headers()) {
        fleet_bus::trace::set_parent(&span, &parent);
    }
    let response = next.run(request).instrument(span.clone()).await;
    span.record("http.response.status_code", response.status().as_u16());
    response
}

/// The caller's trace context, when its headers carry a valid one.
fn incoming(headers: &HeaderMap) -> Option<TraceContext> {
    let text = |name: &str| headers.get(name)?.to_str().ok().map(str::to_owned);
    TraceContext::new(text("traceparent")?, text("tracestate")).ok()
}
