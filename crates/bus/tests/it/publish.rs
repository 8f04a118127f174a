use fleet_bus::{EVENT_TYPE_HEADER, Publisher};
use fleet_events::{Payload as _, TraceContext, ValidateRequested};

use crate::helpers::{TestBus, validate_event};

#[tokio::test]
async fn the_same_msg_id_published_twice_is_stored_once() {
    let bus = TestBus::start(|_| {}).await;
    let publisher = Publisher::new(bus.js.clone());
    let event = validate_event();

    let first = publisher.publish(&event, "cause:0").await.unwrap();
    let again = publisher.publish(&event, "cause:0").await.unwrap();

    assert!(!first.duplicate);
    assert!(again.duplicate, "the stream drops the second copy");
    assert_eq!(again.sequence, first.sequence);
    assert_eq!(bus.steps_left().await, 1);
}

#[tokio::test]
async fn a_published_event_carries_its_type_and_trace_context_in_headers() {
    let bus = TestBus::start(|_| {}).await;
    let mut event = validate_event();
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    event.trace =
        Some(TraceContext::new(traceparent.to_owned(), Some("vendor=1".to_owned())).unwrap());

    Publisher::new(bus.js.clone())
        .publish(&event, "id-1")
        .await
        .unwrap();

    let stream = bus.js.get_stream(fleet_bus::STEPS_STREAM).await.unwrap();
    let stored = stream
        .get_last_raw_message_by_subject(&event.subject())
        .await
        .unwrap();
    let headers = stored.headers;
    assert_eq!(
        headers.get(EVENT_TYPE_HEADER).unwrap().as_str(),
        ValidateRequested::TYPE
    );
    assert_eq!(headers.get("traceparent").unwrap().as_str(), traceparent);
    assert_eq!(headers.get("tracestate").unwrap().as_str(), "vendor=1");
    assert_eq!(headers.get("Nats-Msg-Id").unwrap().as_str(), "id-1");
}
