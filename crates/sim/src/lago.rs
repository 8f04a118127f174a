//! Lago's events API, for the offline demo's usage metering.
//!
//! | method and path | effect |
//! | --- | --- |
//! | `POST /lago/api/v1/events` | Lago's "create event": bearer [`API_KEY`], `{"event": {transaction_id, external_subscription_id, code, timestamp?, properties?}}`; stores it, or 422 `value_already_exist` for a known `transaction_id`, as Lago keeps them unique |
//! | `GET /_sim/lago/events` | the events stored, oldest first (`{"events": [...]}`) |
//!
//! A request without the key is a 401 and one without Lago's shape a 400
//! naming what is wrong, with Lago's error body, so a fleet misconfigured
//! against the demo fails as it would against Lago.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use axum::{
    Json, Router,
    body::Bytes,
    extract::State as AxumState,
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde_json::{Value, json};

use crate::state::State;

/// The API key the demo's Lago accepts (not a secret: the demo's own).
pub const API_KEY: &str = "demo-lago-key";

/// The most events kept; older ones are forgotten with their transaction
/// ids.
const MAX_EVENTS: usize = 10_000;

/// The events Lago stored.
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    inner: Mutex<Events>,
}

#[derive(Debug, Default)]
struct Events {
    stored: VecDeque<Value>,
    transaction_ids: HashSet<String>,
    /// Events ever stored, for their `lago_id`.
    created: u64,
}

impl Ledger {
    fn lock(&self) -> std::sync::MutexGuard<'_, Events> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

pub(crate) fn router() -> Router<Arc<State>> {
    Router::new()
        .route("/lago/api/v1/events", post(create_event))
        .route("/_sim/lago/events", get(list_events))
}

async fn list_events(AxumState(state): AxumState<Arc<State>>) -> Json<Value> {
    Json(json!({"events": state.lago_events()}))
}

impl State {
    /// The usage events stored, oldest first.
    pub(crate) fn lago_events(&self) -> Vec<Value> {
        self.lago.lock().stored.iter().cloned().collect()
    }
}

async fn create_event(
    AxumState(state): AxumState<Arc<State>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if auth != Some(&format!("Bearer {API_KEY}")) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"status": 401, "error": "Unauthorized"})),
        )
            .into_response();
    }
    let event = match check(&headers, &body) {
        Ok(event) => event,
        Err(reason) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"status": 400, "error": "BadRequest", "message": reason})),
            )
                .into_response();
        }
    };
    let transaction_id = event["transaction_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let mut events = state.lago.lock();
    if !events.transaction_ids.insert(transaction_id.clone()) {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"status": 422, "error": "Unprocessable Entity",
                "code": "validation_errors",
                "error_details": {"transaction_id": ["value_already_exist"]}})),
        )
            .into_response();
    }
    if events.stored.len() == MAX_EVENTS
        && let Some(oldest) = events.stored.pop_front()
        && let Some(id) = oldest["transaction_id"].as_str()
    {
        events.transaction_ids.remove(id);
    }
    events.stored.push_back(event.clone());
    events.created += 1;
    let lago_id = format!("00000000-0000-4000-8000-{:012x}", events.created);
    let answer = json!({"event": {
        "lago_id": lago_id,
        "transaction_id": transaction_id,
        "external_subscription_id": event["external_subscription_id"],
        "code": event["code"],
        "timestamp": event["timestamp"],
        "properties": event.get("properties").cloned().unwrap_or_else(|| json!({})),
        "created_at": chrono::Utc::now(),
    }});
    (StatusCode::OK, Json(answer)).into_response()
}

/// The event of a request with Lago's shape, or what is wrong with it.
fn check(headers: &HeaderMap, body: &[u8]) -> Result<Value, String> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    if !content_type.is_some_and(|t| t.starts_with("application/json")) {
        return Err(format!(
            "content type is {content_type:?}, not application/json"
        ));
    }
    let body: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let event = body
        .as_object()
        .filter(|top| top.len() == 1)
        .and_then(|top| top.get("event"))
        .and_then(Value::as_object)
        .ok_or("the body is not {\"event\": {...}}")?;
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
        return Err(format!("event.{unknown} is not a field of an event"));
    }
    for name in ["transaction_id", "external_subscription_id", "code"] {
        if event
            .get(name)
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return Err(format!("event.{name} is not a non-empty string"));
        }
    }
    if let Some(timestamp) = event.get("timestamp")
        && !(timestamp.is_i64() || timestamp.is_f64() || timestamp.is_string())
    {
        return Err("event.timestamp is not a Unix time".to_owned());
    }
    if event.get("properties").is_some_and(|p| !p.is_object()) {
        return Err("event.properties is not an object".to_owned());
    }
    Ok(Value::Object(event.clone()))
}
