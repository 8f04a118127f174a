use std::time::{Duration, Instant};

use fleet_bus::HandlerError;
use fleet_events::{ConnectionStatus, Envelope, Step, ValidateRequested};

use crate::helpers::{
    Act, Scripted, TestBus, count_on, next_delivery, take_and_die, validate_event, validate_worker,
};

#[tokio::test]
async fn a_handled_message_is_acked_and_leaves_the_work_queue() {
    let bus = TestBus::start(|_| {}).await;
    let (handler, mut seen) = Scripted::new([Act::Succeed]);
    let worker = bus.run_worker(validate_worker(), handler);

    bus.publish(&validate_event()).await;

    assert_eq!(next_delivery(&mut seen).await.attempt, 1);
    worker.until("acked", |s| s.acked == 1).await;
    bus.until_steps_empty("the handled message leaves the work queue")
        .await;
}

#[tokio::test]
async fn a_transient_failure_is_redelivered_after_the_retry_delay_and_reported() {
    let bus = TestBus::start(|_| {}).await;
    let (handler, mut seen) = Scripted::new([
        Act::Fail(HandlerError::transient("provider returned 503")),
        Act::Succeed,
    ]);
    let worker = bus.run_worker(validate_worker(), handler);

    bus.publish(&validate_event()).await;
    let first = next_delivery(&mut seen).await;
    let failed_at = Instant::now();
    let second = next_delivery(&mut seen).await;

    assert_eq!((first.attempt, second.attempt), (1, 2));
    assert!(
        failed_at.elapsed() >= Duration::from_millis(150),
        "redelivered after the table's 200 ms"
    );
    worker
        .until("acked", |s| s.acked == 1 && s.retried == 1)
        .await;
    let statuses = bus.statuses(1).await;
    let ConnectionStatus::Retrying {
        attempt, reason, ..
    } = &statuses[0].data.status
    else {
        panic!("expected retrying, got {:?}", statuses[0].data.status);
    };
    assert_eq!((*attempt, reason.as_str()), (1, "provider returned 503"));
}

#[tokio::test]
async fn a_retry_after_longer_than_the_table_delays_the_redelivery() {
    let bus = TestBus::start(|_| {}).await;
    let rate_limited = HandlerError::Transient {
        reason: "provider returned 429".into(),
        retry_after: Some(Duration::from_millis(1200)),
    };
    let (handler, mut seen) = Scripted::new([Act::Fail(rate_limited), Act::Succeed]);
    let _worker = bus.run_worker(validate_worker(), handler);

    bus.publish(&validate_event()).await;
    next_delivery(&mut seen).await;
    let failed_at = Instant::now();
    next_delivery(&mut seen).await;

    assert!(
        failed_at.elapsed() >= Duration::from_millis(1100),
        "waited {:?}",
        failed_at.elapsed()
    );
}

#[tokio::test]
async fn a_permanent_failure_is_terminated_and_reported_as_failed() {
    let bus = TestBus::start(|_| {}).await;
    let (handler, mut seen) =
        Scripted::new([Act::Fail(HandlerError::permanent("connection was deleted"))]);
    let worker = bus.run_worker(validate_worker(), handler);

    bus.publish(&validate_event()).await;
    next_delivery(&mut seen).await;
    worker.until("terminated", |s| s.terminated == 1).await;

    bus.until_steps_empty("a terminated message leaves the work queue")
        .await;
    let statuses = bus.statuses(1).await;
    assert_eq!(
        statuses[0].data.status,
        ConnectionStatus::Failed {
            reason: "connection was deleted".into(),
            retryable: false
        }
    );
    assert!(seen.try_recv().is_err(), "no redelivery");
}

#[tokio::test]
async fn an_undecodable_message_is_dead_lettered_and_the_worker_keeps_going() {
    let bus = TestBus::start(|_| {}).await;
    let (handler, mut seen) = Scripted::new([Act::Succeed]);
    let worker = bus.run_worker(validate_worker(), handler);

    bus.publish_raw("connector.validate.acme.c1", b"{not json")
        .await;
    bus.publish(&validate_event()).await;

    next_delivery(&mut seen).await;
    worker
        .until("one handled, one dead-lettered", |s| {
            s.acked == 1 && s.dead_lettered == 1
        })
        .await;
    let letters = bus.dead_letters(1).await;
    let letter = &letters[0];
    assert_eq!(letter.subject(), "connector.dlq.validate.acme.c1");
    assert_eq!(letter.data.step, Step::Validate);
    assert!(
        letter
            .data
            .reason
            .starts_with("undecodable connector.validate.requested"),
        "{}",
        letter.data.reason
    );
    assert_eq!(letter.data.original, b"{not json");
    assert_eq!(letter.data.original_subject, "connector.validate.acme.c1");
    bus.until_steps_empty("the handled message leaves the work queue")
        .await;
}

#[tokio::test]
async fn a_message_out_of_attempts_is_dead_lettered_instead_of_left_in_the_queue() {
    let bus = TestBus::start(|defs| defs.set_attempts("validate", 2).unwrap()).await;
    let (handler, mut seen) =
        Scripted::new([Act::Fail(HandlerError::transient("provider returned 503"))]);
    let worker = bus.run_worker(validate_worker(), handler);
    let event = validate_event();

    bus.publish(&event).await;
    assert_eq!(next_delivery(&mut seen).await.attempt, 1);
    let last = next_delivery(&mut seen).await;
    assert!(last.is_last_attempt());
    worker
        .until("dead-lettered", |s| s.dead_lettered == 1)
        .await;

    let letter = &bus.dead_letters(1).await[0];
    assert_eq!(
        letter.data.reason,
        "gave up after 2 attempts: provider returned 503"
    );
    assert_eq!(letter.data.delivery_count, 2);
    assert_eq!(
        letter.correlation_id, event.correlation_id,
        "a decoded event keeps its flow"
    );
    bus.until_steps_empty("JetStream alone would keep it in the work queue")
        .await;
}

/// A bus whose validate consumer gives one attempt (ack wait 1 s), and a
/// validate event whose only attempt was taken by a worker that died:
/// the bus, the event and its stream sequence.
async fn killed_on_its_only_attempt() -> (TestBus, Envelope<ValidateRequested>, u64) {
    let bus = TestBus::start(|defs| {
        defs.set_attempts("validate", 1).unwrap();
        defs.set_ack_wait("validate", Duration::from_secs(1))
            .unwrap();
    })
    .await;
    let event = validate_event();
    bus.publish(&event).await;
    let (delivered, sequence) = take_and_die(&bus.js).await;
    assert_eq!(delivered, 1);
    (bus, event, sequence)
}

/// A worker killed during a message's last attempt leaves it unsettled;
/// JetStream alone would then keep it and tell no one. The fleet's
/// consumers limit attempts, not deliveries, so the message comes back once
/// more, and the runtime starts it over as a new message that continues
/// the original: same stream sequence for its ids, attempts counted on.
#[tokio::test]
async fn a_last_attempt_that_never_finished_is_started_over_as_a_redelivery_would_be() {
    let (bus, _, sequence) = killed_on_its_only_attempt().await;

    let (handler, mut seen) = Scripted::new([Act::Succeed]);
    let abandoned = handler.abandoned.clone();
    let worker = bus.run_worker(validate_worker(), handler);

    // Delivery 2 was past the attempts: the copy's first delivery is the
    // message's attempt 3, under the original's sequence, and its last.
    let delivery = next_delivery(&mut seen).await;
    assert_eq!(delivery.attempt, 3);
    assert_eq!(delivery.stream_sequence, sequence);
    assert!(delivery.is_last_attempt());
    worker.until("acked", |s| s.acked == 1).await;
    bus.until_steps_empty("the copy was handled and the original terminated")
        .await;
    // The restart reported no status: the killed attempt may have done its
    // work and lost only its ack, and a `retrying` would come after the
    // chain's later statuses.
    assert_eq!(
        count_on(&bus.js, fleet_bus::STATUS_STREAM, "connector.status.>").await,
        0
    );
    assert!(abandoned.lock().unwrap().is_empty());
    assert_eq!(worker.handle.stats().dead_lettered, 0);
}

/// The marks by which a copy continues an earlier message are the
/// runtime's: a publisher's message that names a later sequence than its
/// own as its origin runs under its own.
#[tokio::test]
async fn an_origin_mark_naming_no_earlier_message_is_ignored() {
    let bus = TestBus::start(|_| {}).await;
    let event = validate_event();
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(fleet_bus::ORIGIN_SEQUENCE_HEADER, "999999");
    let stored = bus
        .js
        .publish_with_headers(event.subject(), headers, event.to_json().into())
        .await
        .expect("publish sent")
        .await
        .expect("publish acked");

    let (handler, mut seen) = Scripted::new([Act::Succeed]);
    let _worker = bus.run_worker(validate_worker(), handler);

    let delivery = next_delivery(&mut seen).await;
    assert_eq!(delivery.stream_sequence, stored.sequence);
}

/// A message that never finishes, round after round (it kills every worker
/// it reaches), is dead-lettered with a `failed` status once its restarts
/// are used up, and the step is told so it can let go of what it holds.
#[tokio::test]
async fn a_message_whose_attempts_never_finish_is_dead_lettered_after_its_restarts() {
    let (bus, event, _) = killed_on_its_only_attempt().await;

    // With one restart: the first worker starts the message over, and is
    // stopped in the middle of the copy's only attempt; the next worker
    // gives it up.
    let mut config = validate_worker();
    config.restarts = 1;
    config.grace = Duration::from_millis(100);
    let (handler, mut seen) = Scripted::new([Act::Work(Duration::from_secs(60))]);
    let worker = bus.run_worker(config.clone(), handler);
    assert_eq!(next_delivery(&mut seen).await.attempt, 3);
    worker.stop().await.unwrap();
    let (handler, mut seen) = Scripted::new([Act::Succeed]);
    let abandoned = handler.abandoned.clone();
    let worker = bus.run_worker(config, handler);
    worker
        .until("dead-lettered", |s| s.dead_lettered == 1)
        .await;

    let letter = &bus.dead_letters(1).await[0];
    assert_eq!(
        letter.data.reason,
        "gave up: its last attempt never finished (its worker stopped or lost the server) in \
         each of its 2 rounds of attempts; the last was attempt 3"
    );
    assert_eq!(letter.connection, event.connection);
    let statuses = bus.statuses(1).await;
    let last = &statuses.last().expect("statuses").data.status;
    assert_eq!(
        *last,
        ConnectionStatus::Failed {
            reason: letter.data.reason.clone(),
            retryable: true,
        }
    );
    assert_eq!(abandoned.lock().unwrap().len(), 1);
    assert!(seen.try_recv().is_err(), "the handler never ran");
    bus.until_steps_empty("a given-up message leaves the work queue")
        .await;
}

#[tokio::test]
async fn deferred_work_waits_without_a_status_and_never_runs_out_of_deliveries() {
    let bus = TestBus::start(|defs| defs.set_attempts("validate", 2).unwrap()).await;
    let wait = || HandlerError::deferred("the tenant runs its maximum", Duration::from_secs(1));
    let (handler, mut seen) = Scripted::new([
        Act::Fail(wait()),
        Act::Fail(wait()),
        Act::Fail(wait()),
        Act::Succeed,
    ]);
    let worker = bus.run_worker(validate_worker(), handler);

    bus.publish(&validate_event()).await;
    let mut attempts = Vec::new();
    let mut gaps = Vec::new();
    let mut last = tokio::time::Instant::now();
    for _ in 0..4 {
        attempts.push(next_delivery(&mut seen).await.attempt);
        gaps.push(last.elapsed());
        last = tokio::time::Instant::now();
    }

    // Deferred on its last delivery, it was queued again as a new message
    // that continues it (attempts counted on), marked to wait: the copy's
    // first delivery went back unhandled, and the handler saw it again,
    // on the copy's last attempt, only once the wait was over.
    assert_eq!(attempts, [1, 2, 4, 6]);
    assert!(
        gaps[1..]
            .iter()
            .all(|gap| *gap >= Duration::from_millis(900)),
        "every deferral waited: {gaps:?}"
    );
    worker
        .until("acked", |s| s.acked == 1 && s.dead_lettered == 0)
        .await;
    bus.until_steps_empty("the handled message leaves the work queue")
        .await;
    assert_eq!(
        count_on(&bus.js, fleet_bus::STATUS_STREAM, "connector.status.>").await,
        0
    );
}

#[tokio::test]
async fn a_long_handler_is_not_redelivered_while_it_runs() {
    let bus = TestBus::start(|defs| {
        defs.set_ack_wait("validate", Duration::from_secs(1))
            .unwrap()
    })
    .await;
    let (handler, mut seen) = Scripted::new([Act::Work(Duration::from_millis(2500))]);
    let worker = bus.run_worker(validate_worker(), handler);

    bus.publish(&validate_event()).await;
    next_delivery(&mut seen).await;
    worker.until("acked", |s| s.acked == 1).await;

    assert!(
        seen.try_recv().is_err(),
        "in-progress acks kept the message from being redelivered"
    );
}

/// A worker that pulls only for free handlers never holds a message it
/// cannot start: the second message waits in the stream, not in the
/// process, while the first runs past the ack wait, and so is handled once,
/// on its first delivery. Pulled ahead instead, it would wait unheartbeated
/// past its ack wait and be delivered again while still held.
#[tokio::test]
async fn pulling_on_demand_holds_no_message_past_its_ack_wait() {
    let bus = TestBus::start(|defs| {
        defs.set_ack_wait("validate", Duration::from_secs(1))
            .unwrap()
    })
    .await;
    let (handler, mut seen) = Scripted::new([
        Act::Work(Duration::from_millis(2500)),
        Act::Work(Duration::from_millis(2500)),
    ]);
    let mut config = validate_worker();
    config.concurrency = 1;
    config.prefetch = 0;
    let worker = bus.run_worker(config, handler);

    bus.publish(&validate_event()).await;
    bus.publish(&validate_event()).await;
    let first = next_delivery(&mut seen).await;
    let second = next_delivery(&mut seen).await;
    worker.until("both acked", |s| s.acked == 2).await;

    assert_ne!(first.stream_sequence, second.stream_sequence);
    assert_eq!(
        (first.attempt, second.attempt),
        (1, 1),
        "neither message was delivered again"
    );
    assert!(seen.try_recv().is_err(), "each message was handled once");
}

/// A handler that finds a later delivery of its message at work leaves the
/// message to it: no ack, no nak, no status.
#[tokio::test]
async fn a_superseded_delivery_is_left_unsettled_and_reports_nothing() {
    let bus = TestBus::start(|defs| {
        defs.set_ack_wait("validate", Duration::from_secs(1))
            .unwrap()
    })
    .await;
    let (handler, mut seen) = Scripted::new([
        Act::Fail(HandlerError::superseded("delivery 2 runs it")),
        Act::Succeed,
    ]);
    let worker = bus.run_worker(validate_worker(), handler);

    bus.publish(&validate_event()).await;
    let abandoned = next_delivery(&mut seen).await;
    // Left unsettled, the message comes back only when its ack wait ends.
    let again = next_delivery(&mut seen).await;
    worker
        .until("acked", |s| s.acked == 1 && s.superseded == 1)
        .await;

    assert_eq!((abandoned.attempt, again.attempt), (1, 2));
    let stats = worker.handle.stats();
    assert_eq!((stats.retried, stats.terminated), (0, 0), "{stats:?}");
    assert_eq!(
        count_on(&bus.js, fleet_bus::STATUS_STREAM, "connector.status.>").await,
        0,
        "the superseded delivery reported no status"
    );
}

#[tokio::test]
async fn a_redelivered_step_publishes_its_next_events_once() {
    let bus = TestBus::start(|_| {}).await;
    let (handler, mut seen) = Scripted::new([Act::EmitThenFail, Act::EmitThenSucceed]);
    let worker = bus.run_worker(validate_worker(), handler);

    bus.publish(&validate_event()).await;
    next_delivery(&mut seen).await;
    next_delivery(&mut seen).await;
    worker.until("acked", |s| s.acked == 1).await;

    assert_eq!(
        count_on(&bus.js, fleet_bus::STEPS_STREAM, "connector.save.>").await,
        1
    );
    let states: Vec<_> = bus
        .statuses(2)
        .await
        .into_iter()
        .map(|e| e.data.status.state())
        .collect();
    assert_eq!(
        states.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        ["validating", "retrying"]
    );
}

#[tokio::test]
async fn shutdown_lets_in_flight_work_finish_then_returns() {
    let bus = TestBus::start(|_| {}).await;
    let (handler, mut seen) = Scripted::new([Act::Work(Duration::from_millis(500))]);
    let worker = bus.run_worker(validate_worker(), handler);

    bus.publish(&validate_event()).await;
    next_delivery(&mut seen).await;
    let handle = worker.handle.clone();
    worker.stop().await.expect("run returns Ok");

    assert_eq!(
        handle.stats().acked,
        1,
        "the in-flight message finished and was acked"
    );
    bus.until_steps_empty("the handled message leaves the work queue")
        .await;
}

#[tokio::test]
async fn work_still_running_after_the_grace_period_is_handed_to_another_worker() {
    let bus = TestBus::start(|_| {}).await;
    let mut impatient = validate_worker();
    impatient.grace = Duration::from_millis(200);
    let (slow, mut slow_seen) = Scripted::new([Act::Work(Duration::from_secs(30))]);
    let first = bus.run_worker(impatient, slow);

    bus.publish(&validate_event()).await;
    next_delivery(&mut slow_seen).await;
    let stopped_at = Instant::now();
    first.stop().await.unwrap();
    assert!(stopped_at.elapsed() < Duration::from_secs(5));

    let (fast, mut fast_seen) = Scripted::new([Act::Succeed]);
    let second = bus.run_worker(validate_worker(), fast);
    assert_eq!(next_delivery(&mut fast_seen).await.attempt, 2);
    second.until("acked", |s| s.acked == 1).await;
}
