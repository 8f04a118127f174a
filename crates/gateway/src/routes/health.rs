//! Liveness for load balancers and orchestrators.

use axum::Router;
use axum::routing::get;

use crate::AppState;

/// `GET /healthz`: 200 while the process serves requests.
pub fn router() -> Router<AppState> {
    Router::new().route("/healthz", get(|| async { "ok" }))
}
