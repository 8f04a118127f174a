//! One setup is one trace: a gateway and a worker export their spans over
//! OTLP/HTTP to a collector in this test, and the caller's trace holds the
//! gateway's request span, a span of every step and the provider requests,
//! each linked to its parent.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use fleet_events::ConnectionId;
use fleet_sim::{SiteConfig, UserConfig};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use prost::Message as _;

use crate::helpers::{SITE, USER, World, eventually};

const PASSWORD: &str = "Tr4c Ex9p Or7t Sp2n Qm5k Lw8z";
/// The caller's trace and span, sent to the gateway as `traceparent`.
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

/// A span as the collector received it.
#[derive(Debug, Clone)]
struct Received {
    service: String,
    name: String,
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    attributes: BTreeMap<String, String>,
    /// The attributes of the span's events (its log lines), flattened.
    event_values: Vec<String>,
}

/// An OTLP/HTTP trace collector on a free loopback port.
#[derive(Clone, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<Received>>>,
}

impl Collector {
    /// Starts serving `POST /v1/traces`; returns its base URL.
    async fn start(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let app = axum::Router::new()
            .route("/v1/traces", post(export))
            .with_state(self.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        base
    }

    fn in_trace(&self, trace_id: &str) -> Vec<Received> {
        let spans = self.spans.lock().unwrap();
        spans
            .iter()
            .filter(|span| span.trace_id == trace_id)
            .cloned()
            .collect()
    }

    fn all(&self) -> Vec<Received> {
        self.spans.lock().unwrap().clone()
    }
}

async fn export(State(collector): State<Collector>, body: Bytes) -> Vec<u8> {
    let request = ExportTraceServiceRequest::decode(body).unwrap();
    let mut received = Vec::new();
    for resource in request.resource_spans {
        let service = resource
            .resource
            .map(|resource| attributes(&resource.attributes))
            .and_then(|attributes| attributes.get("service.name").cloned())
            .unwrap_or_default();
        for span in resource.scope_spans.into_iter().flat_map(|s| s.spans) {
            received.push(Received {
                service: service.clone(),
                name: span.name,
                trace_id: hex(&span.trace_id),
                span_id: hex(&span.span_id),
                parent_span_id: hex(&span.parent_span_id),
                attributes: attributes(&span.attributes),
                event_values: span
                    .events
                    .iter()
                    .flat_map(|event| {
                        std::iter::once(event.name.clone())
                            .chain(attributes(&event.attributes).into_values())
                    })
                    .collect(),
            });
        }
    }
    collector.spans.lock().unwrap().extend(received);
    ExportTraceServiceResponse::default().encode_to_vec()
}

fn attributes(values: &[KeyValue]) -> BTreeMap<String, String> {
    values
        .iter()
        .map(|kv| {
            let value = match kv.value.as_ref().and_then(|v: &AnyValue| v.value.as_ref()) {
                Some(any_value::Value::StringValue(s)) => s.clone(),
                Some(any_value::Value::IntValue(i)) => i.to_string(),
                Some(any_value::Value::BoolValue(b)) => b.to_string(),
                Some(any_value::Value::DoubleValue(d)) => d.to_string(),
                other => format!("{other:?}"),
            };
            (kv.key.clone(), value)
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `span` is the gateway's request span.
fn is_request(span: &Received) -> bool {
    span.service == "fleet-gateway" && span.attributes.contains_key("http.route")
}

/// Whether the trace is complete: the gateway's request, every step, a
/// provider request, and every span's parent exported too (or the caller's).
fn complete(spans: &[Received]) -> bool {
    let steps: BTreeSet<&str> = spans
        .iter()
        .filter(|span| span.name == "step")
        .filter_map(|span| span.attributes.get("step").map(String::as_str))
        .collect();
    let ids: BTreeSet<&str> = spans.iter().map(|span| span.span_id.as_str()).collect();
    spans.iter().any(is_request)
        && spans.iter().any(|span| span.name == "provider.request")
        && ["validate", "save", "sync", "status"]
            .iter()
            .all(|step| steps.contains(step))
        && spans.iter().all(|span| {
            span.parent_span_id == CALLER_SPAN || ids.contains(span.parent_span_id.as_str())
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_setup_is_one_trace_from_the_gateway_request_through_every_step() {
    let collector = Collector::default();
    let endpoint = collector.start().await;
    let site = SiteConfig::new(SITE)
        .user(UserConfig::administrator(USER, PASSWORD))
        .posts(3);
    let world = World::start(site).await;
    let env = vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(), endpoint),
        ("OTEL_BSP_SCHEDULE_DELAY".to_owned(), "200".to_owned()),
    ];
    let worker = world.spawn_worker_with("worker", &[], &env).await;
    let (_gateway, gateway) = world.spawn_gateway("gateway", &env).await;

    let created = reqwest::Client::new()
        .post(format!("{gateway}/api/connections"))
        .bearer_auth(world.token())
        .header("traceparent", format!("00-{TRACE_ID}-{CALLER_SPAN}-01"))
        .json(&serde_json::json!({
            "connector": "wordpress",
            "credentials": {
                "site_url": world.sim.site_url(SITE),
                "username": USER,
                "application_password": PASSWORD,
            },
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 202);
    let body: serde_json::Value = created.json().await.unwrap();
    let connection = ConnectionId::parse(body["id"].as_str().unwrap()).unwrap();
    world.synced(&connection).await;

    let spans = eventually("the whole setup's spans", || async {
        let spans = collector.in_trace(TRACE_ID);
        complete(&spans).then_some(spans)
    })
    .await;

    let request = spans.iter().find(|span| is_request(span)).unwrap();
    assert_eq!(request.name, "POST /api/connections");
    assert_eq!(request.parent_span_id, CALLER_SPAN);
    assert_eq!(request.attributes["http.route"], "/api/connections");
    assert_eq!(request.attributes["http.response.status_code"], "202");
    let validate = spans
        .iter()
        .find(|span| span.attributes.get("step").is_some_and(|s| s == "validate"))
        .unwrap();
    assert_eq!(validate.service, "fleet-worker");
    assert_eq!(validate.attributes["tenant"], world.tenant.as_str());
    assert_eq!(validate.attributes["connection"], connection.to_string());
    assert!(
        spans
            .iter()
            .any(|span| span.name == "step" && span.parent_span_id == request.span_id),
        "no step is the request's child: {spans:#?}"
    );
    let provider = spans
        .iter()
        .find(|span| span.name == "provider.request")
        .unwrap();
    assert_eq!(provider.attributes["http.request.method"], "GET");
    assert!(
        provider
            .attributes
            .contains_key("http.response.status_code")
    );

    // Nothing exported, in any trace, holds the password or a URL query.
    for span in collector.all() {
        for value in span.attributes.values().chain(&span.event_values) {
            assert!(
                !value.contains(PASSWORD) && !value.contains("Tr4c"),
                "a secret in {span:#?}"
            );
            assert!(
                !(value.contains("://") && value.contains('?')),
                "a URL query in {span:#?}"
            );
        }
    }

    // The worker's JSON log lines inside a step name the trace, the
    // tenant and the connection.
    let log = worker.log();
    let line = log
        .lines()
        .filter(|line| line.contains("Step handled the event."))
        .find(|line| line.contains(&format!("\"trace_id\":\"{TRACE_ID}\"")))
        .unwrap_or_else(|| panic!("no log line of the trace:\n{log}"));
    let line: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(line["span"]["tenant"], world.tenant.as_str());
    assert_eq!(line["span"]["connection"], connection.to_string());
    assert_eq!(line["span_id"].as_str().unwrap().len(), 16);
}
