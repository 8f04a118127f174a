//! Usage metering against a stub of Lago's events API that checks every
//! request against Lago's published shape (`POST /api/v1/events`, bearer
//! key, `{"event": {transaction_id, external_subscription_id, code,
//! timestamp, properties}}`) and, like Lago, keeps transaction ids unique.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use axum::{
    Json, Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::post,
};
use fleet_bus::{RetryPolicy, dead_letters::DeadLetters};
use fleet_events::{ConnectionState, ConnectionStatus, Envelope, StatusChanged, Step};
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::helpers::{DEADLINE, Metering, PASSWORD, TestFleet};

const API_KEY: &str = "lago-test-key-4f1c";
const METRIC: &str = "synced_connections";
const SUBSCRIPTION: &str = "sub_acme_2026";

/// What the stub answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// As Lago does: stores a new event, refuses a known transaction id
    /// with 422 `value_already_exist`.
    Lago,
    /// 503 with `Retry-After: 1` for this many more requests, then as Lago.
    Unavailable(u32),
    /// 422 for a billable metric Lago does not know.
    UnknownMetric,
}

/// One request the stub received.
#[derive(Debug, Clone)]
struct Received {
    at: Instant,
    transaction_id: String,
    status: StatusCode,
}

#[derive(Debug, Default)]
struct Log {
    /// Every request, in order.
    requests: Vec<Received>,
    /// The events stored, by transaction id, with how often each was stored.
    stored: BTreeMap<String, (Value, u32)>,
    /// Requests that do not have Lago's shape, and why.
    violations: Vec<String>,
}

#[derive(Clone)]
struct Stub {
    log: watch::Sender<Log>,
    mode: watch::Sender<Mode>,
}

impl Stub {
    fn new(mode: Mode) -> Self {
        Self {
            log: watch::Sender::new(Log::default()),
            mode: watch::Sender::new(mode),
        }
    }

    /// Serves Lago's events API on `listener` until the test ends.
    fn serve(&self, listener: tokio::net::TcpListener) {
        let app = Router::new()
            .route("/api/v1/events", post(create_event))
            .with_state(self.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
    }

    async fn until(&self, what: &str, condition: impl Fn(&Log) -> bool) {
        crate::helpers::until_logged(&self.log, what, condition).await;
    }
}

/// Lago's "create event" endpoint, checking the request's shape first.
async fn create_event(State(stub): State<Stub>, headers: HeaderMap, body: Bytes) -> Response {
    let checked = check(&headers, &body);
    let transaction_id = checked.as_ref().map_or_else(
        |_| String::new(),
        |event| event["transaction_id"].as_str().unwrap().to_owned(),
    );
    let mut status = StatusCode::OK;
    let mut unavailable = false;
    stub.mode.send_modify(|mode| match *mode {
        Mode::Unavailable(0) => *mode = Mode::Lago,
        Mode::Unavailable(left) => {
            unavailable = true;
            *mode = if left == 1 {
                Mode::Lago
            } else {
                Mode::Unavailable(left - 1)
            };
        }
        Mode::Lago | Mode::UnknownMetric => {}
    });
    let mode = *stub.mode.borrow();
    let response = match checked {
        Err(violation) => {
            status = StatusCode::BAD_REQUEST;
            stub.log.send_modify(|log| log.violations.push(violation));
            (status, Json(json!({"status": 400, "error": "BadRequest"}))).into_response()
        }
        Ok(_) if unavailable => {
            status = StatusCode::SERVICE_UNAVAILABLE;
            (
                status,
                [(header::RETRY_AFTER, "1")],
                "Lago is down for maintenance",
            )
                .into_response()
        }
        Ok(_) if mode == Mode::UnknownMetric => {
            status = StatusCode::UNPROCESSABLE_ENTITY;
            let answer = json!({"status": 422, "error": "Unprocessable Entity",
                "code": "validation_errors", "error_details": {"code": ["metric_not_found"]}});
            (status, Json(answer)).into_response()
        }
        Ok(event) => {
            let mut duplicate = false;
            stub.log.send_modify(|log| {
                let entry = log
                    .stored
                    .entry(transaction_id.clone())
                    .or_insert_with(|| (event.clone(), 0));
                duplicate = entry.1 > 0;
                if !duplicate {
                    entry.1 += 1;
                }
            });
            if duplicate {
                status = StatusCode::UNPROCESSABLE_ENTITY;
                let answer = json!({"status": 422, "error": "Unprocessable Entity",
                    "code": "validation_errors",
                    "error_details": {"transaction_id": ["value_already_exist"]}});
                (status, Json(answer)).into_response()
            } else {
                let answer = json!({"event": {
                    "lago_id": "1a901a90-1a90-1a90-1a90-1a901a901a90",
                    "transaction_id": transaction_id,
                    "external_subscription_id": event["external_subscription_id"],
                    "code": event["code"],
                    "timestamp": "2026-01-01T00:00:00Z",
                    "properties": event["properties"],
                    "created_at": "2026-01-01T00:00:00Z",
                }});
                (status, Json(answer)).into_response()
            }
        }
    };
    stub.log.send_modify(|log| {
        log.requests.push(Received {
            at: Instant::now(),
            transaction_id,
            status,
        });
    });
    response
}

/// The request's `event` when it has the shape of Lago's API reference,
/// else what is wrong with it.
fn check(headers: &HeaderMap, body: &[u8]) -> Result<Value, String> {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if auth != Some(&format!("Bearer {API_KEY}")) {
        return Err(format!("authorization header is {auth:?}"));
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    if !content_type.is_some_and(|t| t.starts_with("application/json")) {
        return Err(format!("content type is {content_type:?}"));
    }
    let body: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let Some(top) = body.as_object().filter(|top| top.len() == 1) else {
        return Err(format!("body is not {{\"event\": ...}}: {body}"));
    };
    let event = top
        .get("event")
        .and_then(Value::as_object)
        .ok_or("no event object")?;
    const KNOWN: [&str; 7] = [
        "transaction_id",
        "external_subscription_id",
        "external_customer_id",
        "code",
        "timestamp",
        "precise_total_amount_cents",
        "properties",
    ];
    if let Some(unknown) = event.keys().find(|key| !KNOWN.contains(&key.as_str())) {
        return Err(format!("unknown event field {unknown}"));
    }
    let string = |name: &str| {
        event
            .get(name)
            .and_then(Value::as_str)
            .filter(|value| !value.is_empty())
            .ok_or(format!("{name} is not a non-empty string"))
    };
    string("transaction_id")?;
    string("external_subscription_id")?;
    string("code")?;
    let timestamp = event
        .get("timestamp")
        .and_then(Value::as_i64)
        .ok_or("timestamp is not integer Unix seconds")?;
    let now = chrono::Utc::now().timestamp();
    if !(now - 600..=now + 5).contains(&timestamp) {
        return Err(format!(
            "timestamp {timestamp} is not a recent Unix time in seconds"
        ));
    }
    let properties = event
        .get("properties")
        .and_then(Value::as_object)
        .ok_or("properties is not an object")?;
    for name in ["records", "api_calls"] {
        if !properties.get(name).is_some_and(Value::is_u64) {
            return Err(format!("properties.{name} is not a count"));
        }
    }
    Ok(Value::Object(event.clone()))
}

fn metering(url: &str, retry: RetryPolicy) -> Metering {
    let mut config =
        fleet_workers::meter::Config::new(url.parse().unwrap(), API_KEY.to_owned().into());
    config.billable_metric_code = METRIC.to_owned();
    config
        .subscriptions
        .insert("acme".to_owned(), SUBSCRIPTION.to_owned());
    config.request_timeout = Duration::from_secs(2);
    Metering {
        lago: fleet_workers::meter::Lago::new(config).unwrap(),
        retry,
    }
}

/// Quick retries, so that Lago's `Retry-After: 1` is the longer wait.
fn quick() -> RetryPolicy {
    RetryPolicy::new(vec![Duration::from_millis(200)], 0.2)
}

/// The `synced` statuses of `connection`'s first `n` runs.
async fn synced_runs(
    fleet: &TestFleet,
    connection: &fleet_events::ConnectionId,
    n: usize,
) -> Vec<ConnectionStatus> {
    fleet
        .statuses_until_nth(connection, ConnectionState::Synced, n)
        .await
        .into_iter()
        .map(|changed| changed.status)
        .filter(|status| status.state() == ConnectionState::Synced)
        .collect()
}

/// Waits until the meter consumer has nothing pending or unacknowledged.
async fn meter_drained(fleet: &TestFleet) {
    let consumer: async_nats::jetstream::consumer::PullConsumer = fleet
        .js
        .get_consumer_from_stream("meter", fleet_bus::STATUS_STREAM)
        .await
        .unwrap();
    fleet_testkit::eventually(DEADLINE, "the meter consumer to drain", || {
        let mut consumer = consumer.clone();
        async move {
            let info = consumer.info().await.unwrap();
            (info.num_pending == 0 && info.num_ack_pending == 0).then_some(())
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_completed_sync_is_reported_to_lago_once_in_its_published_event_shape() {
    let stub = Stub::new(Mode::Lago);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    stub.serve(listener);
    let fleet = TestFleet::start_metered(metering(&url, quick())).await;

    let (connection, _) = fleet.connect(&fleet.credentials(PASSWORD)).await;
    synced_runs(&fleet, &connection, 1).await;
    fleet.sync_now("wordpress", &connection).await;
    let runs = synced_runs(&fleet, &connection, 2).await;
    stub.until("two usage events", |log| log.stored.len() == 2)
        .await;
    meter_drained(&fleet).await;

    let log = stub.log.borrow();
    assert!(log.violations.is_empty(), "{:?}", log.violations);
    for run in &runs {
        let ConnectionStatus::Synced { counts, run_id, .. } = run else {
            unreachable!()
        };
        let transaction_id = run_id.expect("a run id").to_string();
        let (event, times) = &log.stored[&transaction_id];
        assert_eq!(*times, 1);
        assert_eq!(event["external_subscription_id"], SUBSCRIPTION);
        assert_eq!(event["code"], METRIC);
        assert_eq!(event["properties"]["records"], counts.seen);
        assert_eq!(event["properties"]["api_calls"], counts.requests);
        assert_eq!(event["properties"]["connection"], connection.as_str());
        assert_eq!(event["properties"]["connector"], "wordpress");
        assert!(counts.requests >= 2, "two streams, a request each at least");
    }
    // Only completed syncs are billed: validating, saving, syncing are not.
    assert_eq!(log.requests.len(), 2, "{:?}", log.requests);
    drop(log);
    assert_eq!(fleet.stats(Step::Meter).dead_lettered, 0);
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lago_outage_delays_usage_events_and_each_arrives_once_afterwards() {
    // Lago is down: nothing listens on its port yet.
    let port = fleet_testkit::free_port();
    let url = format!("http://127.0.0.1:{port}");
    let stub = Stub::new(Mode::Unavailable(4));
    let fleet = TestFleet::start_metered(metering(&url, quick())).await;

    let (first, _) = fleet.connect(&fleet.credentials(PASSWORD)).await;
    let (second, _) = fleet.connect(&fleet.credentials(PASSWORD)).await;
    let mut expected = Vec::new();
    for connection in [&first, &second] {
        let runs = synced_runs(&fleet, connection, 1).await;
        expected.extend(runs.iter().map(|run| run.run_id().unwrap().to_string()));
    }
    // Refused while down: retried, not lost and not dead-lettered.
    let retried = || fleet.stats(Step::Meter).retried;
    fleet_testkit::eventually(DEADLINE, "retries while Lago is down", || async {
        (retried() >= 4).then_some(())
    })
    .await;

    // Lago comes back answering 503 with Retry-After for a while.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    stub.serve(listener);
    stub.until("both usage events", |log| log.stored.len() == 2)
        .await;
    meter_drained(&fleet).await;

    let log = stub.log.borrow();
    assert!(log.violations.is_empty(), "{:?}", log.violations);
    expected.sort();
    let stored: Vec<&String> = log.stored.keys().collect();
    assert_eq!(stored, expected.iter().collect::<Vec<_>>());
    assert!(log.stored.values().all(|(_, times)| *times == 1));
    let unavailable: Vec<&Received> = log
        .requests
        .iter()
        .filter(|r| r.status == StatusCode::SERVICE_UNAVAILABLE)
        .collect();
    assert_eq!(unavailable.len(), 4);
    // Lago's Retry-After (1 s) wins over the step's 200 ms backoff.
    for refused in unavailable {
        let next = log
            .requests
            .iter()
            .find(|r| r.transaction_id == refused.transaction_id && r.at > refused.at)
            .expect("a retry after a 503");
        assert!(
            next.at - refused.at >= Duration::from_millis(900),
            "retried {:?} after a Retry-After of 1 s",
            next.at - refused.at
        );
    }
    drop(log);
    assert_eq!(fleet.stats(Step::Meter).dead_lettered, 0);
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_usage_event_lago_refuses_is_dead_lettered_with_lagos_reason() {
    let stub = Stub::new(Mode::UnknownMetric);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    stub.serve(listener);
    let fleet = TestFleet::start_metered(metering(&url, quick())).await;

    let (connection, _) = fleet.connect(&fleet.credentials(PASSWORD)).await;
    synced_runs(&fleet, &connection, 1).await;
    meter_drained(&fleet).await;

    let dlq = DeadLetters::open(fleet.js.clone()).await.unwrap();
    let filter = fleet_bus::dead_letters::Filter {
        step: Some(Step::Meter),
        connection: Some(connection.clone()),
        ..Default::default()
    };
    let letters = dlq.list(&filter, 10).await.unwrap();
    assert_eq!(letters.len(), 1, "{letters:?}");
    let letter = letters[0].letter.as_ref().unwrap();
    assert!(letter.data.reason.contains("422"), "{}", letter.data.reason);
    assert!(
        letter.data.reason.contains("metric_not_found"),
        "{}",
        letter.data.reason
    );
    let original = Envelope::<StatusChanged>::decode(&letter.data.original).unwrap();
    assert_eq!(original.data.status.state(), ConnectionState::Synced);
    assert_eq!(
        stub.log.borrow().requests.len(),
        1,
        "a refusal is not retried"
    );
    assert!(stub.log.borrow().violations.is_empty());
    fleet.stop().await;
}
