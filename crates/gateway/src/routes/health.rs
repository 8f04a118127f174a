//! Liveness, readiness and metrics, for load balancers, orchestrators and
//! Prometheus: `GET /healthz`, `GET /readyz` and `GET /metrics`
//! ([`fleet_serve::ops`]).

use axum::Router;

use crate::AppState;

/// The operations routes, answered from what [`Parts`](crate::Parts) gave.
pub fn router(state: &AppState) -> Router<AppState> {
    let ops = &state.inner.ops;
    fleet_serve::ops::router(ops.readiness.clone(), ops.metrics.clone())
}
