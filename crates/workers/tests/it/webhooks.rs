//! Webhook deliveries to a receiver that fails for a while, then checks
//! each delivery's signature as docs/api.md tells receivers to.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    routing::post,
};
use fleet_events::{ConnectionId, ConnectionState, ConnectionStatus, Envelope, StatusChanged};
use hmac::{Hmac, Mac as _};
use secrecy::ExposeSecret as _;
use serde_json::Value;
use sha2::Sha256;
use tokio::sync::watch;
use uuid::Uuid;

use crate::helpers::{DEADLINE, PASSWORD, TestFleet};

const KEY: &str = "operator-webhook-key";

#[derive(Debug, Default)]
struct Log {
    requests: u32,
    /// Deliveries that passed every check, in arrival order: (id, body).
    accepted: Vec<(String, Value)>,
    violations: Vec<String>,
}

#[derive(Clone)]
struct Receiver {
    log: watch::Sender<Log>,
    /// Requests answered 503 before the receiver works.
    fail_first: u32,
    /// The endpoint's secret, as the tenant was shown it.
    secret: String,
}

impl Receiver {
    fn serve(&self, listener: tokio::net::TcpListener) {
        let app = Router::new()
            .route("/hook", post(receive))
            .with_state(self.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
    }

    async fn until(&self, what: &str, condition: impl Fn(&Log) -> bool) {
        crate::helpers::until_logged(&self.log, what, condition).await;
    }
}

async fn receive(State(receiver): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let mut requests = 0;
    receiver.log.send_modify(|log| {
        log.requests += 1;
        requests = log.requests;
    });
    if requests <= receiver.fail_first {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    match verify(&receiver.secret, &headers, &body) {
        Ok((id, body)) => {
            receiver
                .log
                .send_modify(|log| log.accepted.push((id, body)));
            StatusCode::NO_CONTENT
        }
        Err(violation) => {
            receiver
                .log
                .send_modify(|log| log.violations.push(violation));
            StatusCode::BAD_REQUEST
        }
    }
}

/// The receiver's side of docs/api.md's recipe: HMAC-SHA256 of
/// `<timestamp>.<raw body>` under the secret, hex, after `v1=`, compared in
/// constant time; a recent timestamp; the id header naming the body's id.
fn verify(secret: &str, headers: &HeaderMap, body: &[u8]) -> Result<(String, Value), String> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .ok_or(format!("no {name} header"))
    };
    let timestamp = header("fleet-webhook-timestamp")?;
    let signature = header("fleet-webhook-signature")?;
    let id = header("fleet-webhook-id")?;
    let at: i64 = timestamp.parse().map_err(|_| "timestamp is not a number")?;
    if (chrono::Utc::now().timestamp() - at).abs() > 300 {
        return Err(format!("timestamp {at} is not recent"));
    }
    let hex = signature
        .strip_prefix("v1=")
        .ok_or(format!("signature {signature} is not v1="))?;
    let sent: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2).unwrap_or("zz"), 16))
        .collect::<Result<_, _>>()
        .map_err(|_| "signature is not hex")?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&sent)
        .map_err(|_| "signature does not match".to_owned())?;
    let body: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    if body["id"] != id.as_str() {
        return Err(format!("id header {id} is not the body's {}", body["id"]));
    }
    Ok((id, body))
}

/// The ids of the status events of `connection` that endpoints receive
/// (connected, then each sync completion), in order, until its `n`th sync.
async fn sent_events(fleet: &TestFleet, connection: &ConnectionId, n: usize) -> Vec<String> {
    fleet
        .status_events_until_nth(connection, ConnectionState::Synced, n)
        .await
        .iter()
        .filter(|event| {
            matches!(
                event.data.status,
                ConnectionStatus::Saving | ConnectionStatus::Synced { .. }
            )
        })
        .map(|event: &Envelope<StatusChanged>| event.id.to_string())
        .collect()
}

/// Each id's first arrival, in arrival order, for `connection`.
fn first_arrivals(log: &Log, connection: &ConnectionId) -> Vec<String> {
    let mut seen = Vec::new();
    for (id, body) in &log.accepted {
        if body["connection"] == connection.as_str() && !seen.contains(id) {
            seen.push(id.clone());
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_arrive_signed_in_order_per_connection_after_the_receiver_recovers() {
    let mut config = fleet_workers::webhook::Config::new(KEY.to_owned().into());
    config.poll_interval = Duration::from_millis(50);
    config.min_backoff = Duration::from_millis(100);
    config.max_backoff = Duration::from_millis(300);
    config.max_attempts = 100;
    config.request_timeout = Duration::from_secs(2);
    let fleet = TestFleet::start_with_webhooks(config).await;

    let endpoint = Uuid::new_v4();
    let signer = fleet_connectors::webhook::Signer::new(KEY.to_owned().into());
    let receiver = Receiver {
        log: watch::Sender::new(Log::default()),
        fail_first: 5,
        secret: signer
            .secret(&endpoint.to_string())
            .expose_secret()
            .to_owned(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    receiver.serve(listener);
    fleet
        .deps
        .store
        .create_webhook_endpoint(&fleet.tenant, endpoint, &url, "platform backend", 10)
        .await
        .unwrap()
        .expect("below the limit");

    let (first, _) = fleet.connect(&fleet.credentials(PASSWORD)).await;
    let (second, _) = fleet.connect(&fleet.credentials(PASSWORD)).await;
    sent_events(&fleet, &first, 1).await;
    fleet.sync_now("wordpress", &first).await;
    let expected: BTreeMap<&ConnectionId, Vec<String>> = [
        (&first, sent_events(&fleet, &first, 2).await),
        (&second, sent_events(&fleet, &second, 1).await),
    ]
    .into();
    assert_eq!(expected[&first].len(), 3, "connected and two syncs");
    assert_eq!(expected[&second].len(), 2, "connected and a sync");

    receiver
        .until("every event at the receiver", |log| {
            expected
                .iter()
                .all(|(connection, ids)| first_arrivals(log, connection).len() == ids.len())
        })
        .await;

    let log = receiver.log.borrow();
    assert!(log.violations.is_empty(), "{:?}", log.violations);
    assert!(log.requests > 5, "the first five requests failed");
    for (connection, ids) in &expected {
        assert_eq!(
            &first_arrivals(&log, connection),
            ids,
            "events of {connection} in order"
        );
    }
    let (_, connected) = log
        .accepted
        .iter()
        .find(|(id, _)| *id == expected[&second][0])
        .unwrap();
    assert_eq!(connected["type"], "connection.state_changed");
    assert_eq!(connected["data"]["state"], "connected");
    assert_eq!(connected["tenant"], "acme");
    let (_, synced) = log
        .accepted
        .iter()
        .find(|(id, _)| *id == expected[&second][1])
        .unwrap();
    assert_eq!(synced["type"], "sync.completed");
    assert_eq!(synced["data"]["result"], "synced");
    assert_eq!(synced["data"]["added"], 262);
    assert_eq!(synced["connector"], "wordpress");
    drop(log);

    // The delivery log has every event, delivered, some after retries. The
    // receiver logs a request before it answers, and the sender records the
    // answer after: wait for the log to catch up.
    let list = || async {
        fleet
            .deps
            .store
            .list_webhook_deliveries(&fleet.tenant, endpoint, 50, None)
            .await
            .unwrap()
    };
    let recorded = fleet_testkit::within(DEADLINE, || async {
        let deliveries = list().await;
        deliveries
            .iter()
            .all(|d| d.state == "delivered")
            .then_some(())
    })
    .await;
    let deliveries = list().await;
    assert!(recorded.is_some(), "not all delivered: {deliveries:?}");
    assert_eq!(deliveries.len(), 5);
    assert!(deliveries.iter().any(|d| d.attempts > 1), "{deliveries:?}");

    // A manual redelivery sends the event again, with the same id.
    let again = deliveries.last().unwrap();
    assert!(
        fleet
            .deps
            .store
            .redeliver_webhook(&fleet.tenant, endpoint, again.id)
            .await
            .unwrap()
    );
    let id = again.event_id.to_string();
    receiver
        .until("the redelivered event", |log| {
            log.accepted.iter().filter(|(sent, _)| *sent == id).count() == 2
        })
        .await;
    fleet.stop().await;
}
