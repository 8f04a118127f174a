//! The operations endpoints every fleet process serves: `GET /healthz`
//! (alive), `GET /readyz` (its dependencies answer) and `GET /metrics`
//! (Prometheus text format).
//!
//! Readiness is a list of named [`Readiness`] probes, run concurrently on
//! each request, each within [`PROBE_TIMEOUT`]. The answer names the probes
//! and whether each passed, never why one failed: the reason (an address, a
//! server's error) is logged for the operator, since these endpoints often
//! share a port with a public API.
//!
//! [`Metrics::install`] installs the process's one Prometheus recorder for
//! the `metrics` facade the libraries record to. Names and labels follow
//! Prometheus' conventions; no label carries a tenant, a connection or
//! anything a provider sent, so the number of series stays bounded.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};
use serde_json::{Map, Value, json};
use tracing::warn;

/// How long one readiness probe may take before it counts as failed.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// How often the recorder's histograms are drained and idle series
/// trimmed, whether or not anyone scrapes.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Histogram buckets, in seconds, for every `*_seconds` histogram: from a
/// fast step (a few milliseconds) to a long sync (minutes).
const SECONDS_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    300.0, 900.0,
];

type Check = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// One named dependency check.
struct Probe {
    name: &'static str,
    check: Box<dyn Fn() -> Check + Send + Sync>,
}

/// How long one run of the probes answers `/readyz`: the endpoint may be
/// public, and a flood of requests must not become a flood of database,
/// Vault and NATS calls.
pub const REPORT_FOR: Duration = Duration::from_secs(1);

/// What `/readyz` checks: the process's dependencies, by name.
#[derive(Clone, Default)]
pub struct Readiness {
    probes: Arc<Vec<Probe>>,
    /// The last report and when it was made; callers during a run wait for
    /// it instead of starting their own.
    last: Arc<tokio::sync::Mutex<Option<(std::time::Instant, Report)>>>,
}

impl std::fmt::Debug for Readiness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<_> = self.probes.iter().map(|p| p.name).collect();
        f.debug_struct("Readiness").field("probes", &names).finish()
    }
}

impl Readiness {
    /// No probes: ready while the process serves requests.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the probe `name`: `check` passes with `Ok`, fails with the
    /// reason, which is logged and not shown.
    ///
    /// # Panics
    ///
    /// When called on a clone of a `Readiness` that is in use; add every
    /// probe before serving.
    #[must_use]
    pub fn with<F, Fut>(mut self, name: &'static str, check: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        let probes = Arc::get_mut(&mut self.probes).expect("probes are added before serving");
        probes.push(Probe {
            name,
            check: Box::new(move || Box::pin(check())),
        });
        self
    }

    /// Which probes passed: the report of a run at most [`REPORT_FOR`] old,
    /// or of a new run.
    pub async fn check(&self) -> Report {
        let mut last = self.last.lock().await;
        if let Some((at, report)) = last.as_ref()
            && at.elapsed() < REPORT_FOR
        {
            return report.clone();
        }
        let report = self.run().await;
        *last = Some((std::time::Instant::now(), report.clone()));
        report
    }

    /// Runs every probe at once and says which passed.
    async fn run(&self) -> Report {
        let checks = self.probes.iter().map(|probe| async move {
            let passed = match tokio::time::timeout(PROBE_TIMEOUT, (probe.check)()).await {
                Ok(Ok(())) => true,
                Ok(Err(reason)) => {
                    warn!(probe = probe.name, reason, "Readiness probe failed.");
                    false
                }
                Err(_) => {
                    warn!(
                        probe = probe.name,
                        timeout_ms = PROBE_TIMEOUT.as_millis() as u64,
                        "Readiness probe timed out."
                    );
                    false
                }
            };
            (probe.name, passed)
        });
        Report {
            checks: futures::future::join_all(checks).await,
        }
    }
}

/// The answer of a readiness check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Each probe's name and whether it passed.
    pub checks: Vec<(&'static str, bool)>,
}

impl Report {
    /// Whether every probe passed.
    pub fn ready(&self) -> bool {
        self.checks.iter().all(|(_, passed)| *passed)
    }
}

/// The process's Prometheus recorder.
#[derive(Clone)]
pub struct Metrics {
    handle: PrometheusHandle,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// Installs the Prometheus recorder as the process's `metrics`
    /// recorder, the first time; later calls return the same one. Must run
    /// inside a Tokio runtime: it starts the recorder's upkeep.
    ///
    /// # Errors
    ///
    /// When another `metrics` recorder is installed already.
    pub fn install() -> Result<Self, BuildError> {
        static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
        if let Some(handle) = HANDLE.get() {
            return Ok(Self {
                handle: handle.clone(),
            });
        }
        let handle = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), SECONDS_BUCKETS)?
            .install_recorder()?;
        let handle = HANDLE.get_or_init(|| handle).clone();
        let upkeep = handle.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(UPKEEP_EVERY);
            loop {
                ticks.tick().await;
                upkeep.run_upkeep();
            }
        });
        Ok(Self { handle })
    }

    /// The current value of every series, in Prometheus' text format.
    pub fn render(&self) -> String {
        self.handle.render()
    }
}

/// What the operations routes answer from.
#[derive(Debug, Clone)]
struct Ops {
    readiness: Readiness,
    metrics: Option<Metrics>,
}

/// `GET /healthz`, `GET /readyz` and, with `metrics`, `GET /metrics`, as a
/// router to merge into a server's own or to serve alone.
pub fn router<S>(readiness: Readiness, metrics: Option<Metrics>) -> Router<S> {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(Ops { readiness, metrics })
}

async fn readyz(State(ops): State<Ops>) -> Response {
    let report = ops.readiness.check().await;
    let checks: Map<String, Value> = report
        .checks
        .iter()
        .map(|(name, passed)| {
            let state = if *passed { "ok" } else { "unavailable" };
            ((*name).to_owned(), Value::from(state))
        })
        .collect();
    let ready = report.ready();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        axum::Json(json!({ "ready": ready, "checks": checks })),
    )
        .into_response()
}

async fn metrics_text(State(ops): State<Ops>) -> Response {
    match ops.metrics {
        Some(metrics) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            metrics.render(),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "metrics are not enabled\n").into_response(),
    }
}

/// `method` as a label or span name: the standard methods by name, any
/// other a client made up as `other`.
pub fn method_label(method: &axum::http::Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}

/// Middleware that counts every request in `fleet_http_requests_total`
/// (by `route`, `method` and `status`) and times it in
/// `fleet_http_request_duration_seconds` (by `route`). The route is the
/// matched route's template (`/api/connections/{id}`), or `unmatched`, so
/// no path a client made up becomes a series.
pub async fn count_requests(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let method = method_label(request.method());
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    metrics::histogram!("fleet_http_request_duration_seconds", "route" => route.clone())
        .record(started.elapsed().as_secs_f64());
    metrics::counter!(
        "fleet_http_requests_total",
        "route" => route,
        "method" => method,
        "status" => response.status().as_u16().to_string(),
    )
    .increment(1);
    response
}
