use std::time::Duration;

use async_nats::jetstream::consumer::PullConsumer;
use fleet_bus::Schedules;
use fleet_events::{
    ConnectionId, ConnectorId, CorrelationId, Envelope, SyncRequested, SyncTrigger, TenantId,
    subject,
};
use futures::StreamExt as _;

use crate::helpers::{DEADLINE, TestBus, count_on};

fn scheduled_sync() -> Envelope<SyncRequested> {
    Envelope::new(
        TenantId::parse("acme").unwrap(),
        ConnectionId::new(),
        ConnectorId::parse("wordpress").unwrap(),
        CorrelationId::new(),
        SyncRequested {
            trigger: SyncTrigger::Scheduled,
            streams: None,
            cursor: None,
        },
    )
}

/// The sync requests the server produces, as the sync worker sees them.
async fn sync_consumer(bus: &TestBus) -> PullConsumer {
    bus.js
        .get_consumer_from_stream("sync", fleet_bus::STEPS_STREAM)
        .await
        .unwrap()
}

async fn next_request(
    consumer: &PullConsumer,
    within: Duration,
) -> Option<Envelope<SyncRequested>> {
    let mut batch = consumer
        .fetch()
        .max_messages(1)
        .expires(within)
        .messages()
        .await
        .unwrap();
    let message = tokio::time::timeout(within + Duration::from_secs(1), batch.next())
        .await
        .ok()??
        .ok()?;
    message.ack().await.unwrap();
    Some(Envelope::decode(&message.payload).unwrap())
}

#[tokio::test]
async fn a_schedule_produces_a_sync_request_every_interval() {
    let bus = TestBus::start(|_| {}).await;
    let request = scheduled_sync();
    Schedules::new(bus.js.clone())
        .set(&request, Duration::from_secs(1))
        .await
        .unwrap();
    let consumer = sync_consumer(&bus).await;

    let first = next_request(&consumer, DEADLINE)
        .await
        .expect("a first run");
    let second = next_request(&consumer, DEADLINE)
        .await
        .expect("a second run");

    assert_eq!(first.data.trigger, SyncTrigger::Scheduled);
    assert_eq!(
        (first.tenant, first.connection),
        (request.tenant.clone(), request.connection.clone())
    );
    assert_eq!(
        second.id, request.id,
        "every run carries the stored envelope"
    );
    let schedules = count_on(
        &bus.js,
        fleet_bus::STEPS_STREAM,
        &subject::schedule(&request.tenant, &request.connection),
    )
    .await;
    assert_eq!(schedules, 1, "the schedule itself stays in the work queue");
}

#[tokio::test]
async fn setting_a_schedule_again_replaces_it() {
    let bus = TestBus::start(|_| {}).await;
    let schedules = Schedules::new(bus.js.clone());
    let request = scheduled_sync();

    schedules
        .set(&request, Duration::from_secs(3600))
        .await
        .unwrap();
    schedules
        .set(&request, Duration::from_secs(1))
        .await
        .unwrap();

    let on_subject = subject::schedule(&request.tenant, &request.connection);
    assert_eq!(
        count_on(&bus.js, fleet_bus::STEPS_STREAM, &on_subject).await,
        1
    );
    let consumer = sync_consumer(&bus).await;
    assert!(
        next_request(&consumer, DEADLINE).await.is_some(),
        "the 1 s schedule runs, not the hourly one"
    );
}

#[tokio::test]
async fn a_removed_schedule_produces_nothing_more() {
    let bus = TestBus::start(|_| {}).await;
    let schedules = Schedules::new(bus.js.clone());
    let request = scheduled_sync();
    schedules
        .set(&request, Duration::from_secs(1))
        .await
        .unwrap();
    let consumer = sync_consumer(&bus).await;
    next_request(&consumer, DEADLINE)
        .await
        .expect("runs while set");

    schedules
        .remove(&request.tenant, &request.connection)
        .await
        .unwrap();

    // One in flight at the moment of removal may still land; after that,
    // nothing for three intervals.
    let _ = next_request(&consumer, Duration::from_millis(1500)).await;
    assert!(
        next_request(&consumer, Duration::from_secs(3))
            .await
            .is_none()
    );
}

#[tokio::test]
async fn a_schedule_survives_a_server_restart() {
    let mut bus = TestBus::start(|_| {}).await;
    let request = scheduled_sync();
    Schedules::new(bus.js.clone())
        .set(&request, Duration::from_secs(1))
        .await
        .unwrap();

    bus.restart().await;

    let consumer = sync_consumer(&bus).await;
    assert!(next_request(&consumer, DEADLINE).await.is_some());
}

/// Waits for its tenant on every delivery, and says when it was called.
struct AlwaysWaiting {
    called: tokio::sync::mpsc::UnboundedSender<()>,
}

impl fleet_bus::Handler for AlwaysWaiting {
    type Payload = SyncRequested;

    async fn handle(
        &self,
        _event: &Envelope<SyncRequested>,
        _ctx: &mut fleet_bus::Context,
    ) -> Result<(), fleet_bus::HandlerError> {
        let _ = self.called.send(());
        Err(fleet_bus::HandlerError::deferred(
            "the tenant runs its maximum",
            Duration::from_secs(600),
        ))
    }
}

/// A message the server produced from a schedule carries the server's
/// schedule headers, which the server refuses in a client's publish: a
/// scheduled sync deferred on its last attempt is queued again without
/// them, and waits in the work queue.
#[tokio::test]
async fn a_scheduled_sync_deferred_on_its_last_attempt_is_queued_again() {
    let bus = TestBus::start(|defs| defs.set_attempts("sync", 1).unwrap()).await;
    let schedules = Schedules::new(bus.js.clone());
    let request = scheduled_sync();
    let (called, mut calls) = tokio::sync::mpsc::unbounded_channel();
    let mut config = fleet_bus::WorkerConfig::for_step(fleet_events::Step::Sync);
    config.prefetch = 0;
    let worker = bus.run_worker(config, AlwaysWaiting { called });
    schedules
        .set(&request, Duration::from_secs(1))
        .await
        .unwrap();
    tokio::time::timeout(DEADLINE, calls.recv())
        .await
        .expect("the scheduled request in time");
    schedules
        .remove(&request.tenant, &request.connection)
        .await
        .unwrap();

    worker
        .until("queued again", |s| s.retried >= 1 && s.dead_lettered == 0)
        .await;
    let steps = bus.js.get_stream(fleet_bus::STEPS_STREAM).await.unwrap();
    let subject = subject::sync(&request.tenant, &request.connection);
    let waiting = fleet_testkit::eventually(DEADLINE, "the request queued again", || async {
        let message = steps.get_last_raw_message_by_subject(&subject).await.ok()?;
        message.headers.get(fleet_bus::NOT_BEFORE_HEADER)?;
        Some(message)
    })
    .await;
    assert!(
        waiting.headers.get("Nats-Schedule-Next").is_none(),
        "{:?}",
        waiting.headers
    );
}
