//! Shared set-up: a nats-server with the fleet's streams, test events, and
//! scripted handlers.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull};
use fleet_bus::{
    Context, Definitions, Delivery, Handler, HandlerError, Worker, WorkerConfig, WorkerHandle,
};
use fleet_events::{
    ConnectionId, ConnectorId, CorrelationId, DeadLetter, Envelope, Payload, SetupOrigin,
    StatusChanged, Step, TenantId, ValidateRequested,
};
use fleet_testkit::NatsServer;
use futures::StreamExt as _;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Wait limit for anything the tests expect to happen.
pub(crate) const DEADLINE: Duration = Duration::from_secs(10);

/// A nats-server with the fleet's streams and consumers provisioned.
pub(crate) struct TestBus {
    server: NatsServer,
    pub(crate) js: jetstream::Context,
    pub(crate) definitions: Definitions,
}

impl TestBus {
    /// Starts a server and provisions the built-in definitions, changed by
    /// `customise` first (short ack waits, few deliveries).
    pub(crate) async fn start(customise: impl FnOnce(&mut Definitions)) -> Self {
        let server = NatsServer::start().await;
        let js = server.jetstream().await;
        let mut definitions = Definitions::builtin();
        customise(&mut definitions);
        definitions
            .provision(&js)
            .await
            .expect("provisioning succeeds");
        Self {
            server,
            js,
            definitions,
        }
    }

    /// Restarts the server (same port and store) and reconnects.
    pub(crate) async fn restart(&mut self) {
        self.server.restart().await;
        self.js = self.server.jetstream().await;
    }

    /// Runs `handler` as the validate worker with `config` until the
    /// returned guard is dropped.
    pub(crate) fn run_worker<H: Handler>(&self, config: WorkerConfig, handler: H) -> RunningWorker {
        let (worker, handle) = Worker::build(config, self.js.clone(), handler);
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(worker.run(shutdown.clone()));
        RunningWorker {
            handle,
            shutdown,
            task: Some(task),
        }
    }

    /// Publishes raw bytes on `subject` and waits for the stream's ack.
    pub(crate) async fn publish_raw(&self, subject: &str, bytes: &'static [u8]) {
        self.js
            .publish(subject.to_owned(), bytes.into())
            .await
            .expect("publish sent")
            .await
            .expect("publish acked");
    }

    /// Publishes `event` with its own id as dedupe id.
    pub(crate) async fn publish<P: Payload>(&self, event: &Envelope<P>) {
        fleet_bus::Publisher::new(self.js.clone())
            .publish(event, &event.id.to_string())
            .await
            .expect("publish acked");
    }

    /// Reads the events of type `P` on `filter` from `stream`, from the
    /// start, until `count` arrived or the deadline passed.
    pub(crate) async fn read<P: Payload>(
        &self,
        stream: &str,
        filter: &str,
        count: usize,
    ) -> Vec<Envelope<P>> {
        let consumer = self
            .js
            .create_consumer_on_stream(
                pull::OrderedConfig {
                    filter_subject: filter.to_owned(),
                    ..Default::default()
                },
                stream,
            )
            .await
            .expect("ordered consumer");
        let mut messages = consumer.messages().await.expect("messages");
        let mut events = Vec::new();
        let _ = tokio::time::timeout(DEADLINE, async {
            while events.len() < count {
                let Some(Ok(message)) = messages.next().await else {
                    break;
                };
                events.push(Envelope::<P>::decode(&message.payload).expect("event decodes"));
            }
        })
        .await;
        events
    }

    /// The dead letters stored so far (waiting for `count` of them).
    pub(crate) async fn dead_letters(&self, count: usize) -> Vec<Envelope<DeadLetter>> {
        self.read(fleet_bus::DLQ_STREAM, fleet_events::subject::DLQ_ALL, count)
            .await
    }

    /// The status events stored so far (waiting for `count` of them).
    pub(crate) async fn statuses(&self, count: usize) -> Vec<Envelope<StatusChanged>> {
        self.read(
            fleet_bus::STATUS_STREAM,
            fleet_events::subject::STATUS_ALL,
            count,
        )
        .await
    }

    /// Messages still in the steps work queue.
    pub(crate) async fn steps_left(&self) -> u64 {
        let mut stream = self
            .js
            .get_stream(fleet_bus::STEPS_STREAM)
            .await
            .expect("stream");
        stream.info().await.expect("stream info").state.messages
    }

    /// Waits until the steps stream holds no message: a worker's ack is
    /// sent without waiting for the server, which removes the message
    /// from the work queue a moment later.
    pub(crate) async fn until_steps_empty(&self, why: &str) {
        let empty = fleet_testkit::within(DEADLINE, || async {
            (self.steps_left().await == 0).then_some(())
        })
        .await;
        if empty.is_none() {
            let left = self.steps_left().await;
            panic!("{left} messages left in the work queue: {why}");
        }
    }
}

/// A worker running in the background; stops it on drop.
pub(crate) struct RunningWorker {
    pub(crate) handle: WorkerHandle,
    shutdown: CancellationToken,
    task: Option<tokio::task::JoinHandle<Result<(), fleet_bus::Error>>>,
}

impl RunningWorker {
    /// Cancels the worker and waits for `run` to return.
    pub(crate) async fn stop(mut self) -> Result<(), fleet_bus::Error> {
        self.shutdown.cancel();
        let task = self.task.take().expect("running");
        tokio::time::timeout(DEADLINE, task)
            .await
            .expect("worker stops in time")
            .expect("worker task")
    }

    /// Waits until the worker's counters satisfy `done`.
    pub(crate) async fn until(&self, what: &str, done: impl Fn(fleet_bus::WorkerStats) -> bool) {
        let reached = fleet_testkit::within(DEADLINE, || async {
            done(self.handle.stats()).then_some(())
        })
        .await;
        assert!(
            reached.is_some(),
            "timed out waiting until {what}: {:?}",
            self.handle.stats()
        );
    }
}

impl Drop for RunningWorker {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A validate event for a fresh connection of tenant `acme`.
pub(crate) fn validate_event() -> Envelope<ValidateRequested> {
    Envelope::new(
        TenantId::parse("acme").unwrap(),
        ConnectionId::new(),
        ConnectorId::parse("wordpress").unwrap(),
        CorrelationId::new(),
        ValidateRequested {
            origin: SetupOrigin::Manual,
            staged_version: 1,
        },
    )
}

/// A manual sync request for a fresh connection of tenant `acme`.
pub(crate) fn sync_event() -> Envelope<fleet_events::SyncRequested> {
    Envelope::new(
        TenantId::parse("acme").unwrap(),
        ConnectionId::new(),
        ConnectorId::parse("wordpress").unwrap(),
        CorrelationId::new(),
        fleet_events::SyncRequested {
            trigger: fleet_events::SyncTrigger::Manual,
            streams: None,
            cursor: None,
        },
    )
}

/// Worker settings for the validate step with a fast retry table.
pub(crate) fn validate_worker() -> WorkerConfig {
    let mut config = WorkerConfig::for_step(Step::Validate);
    config.retry = fleet_bus::RetryPolicy::new(vec![Duration::from_millis(200)], 0.0);
    config.grace = Duration::from_secs(5);
    config
}

/// What a scripted handler does on one delivery.
#[derive(Debug, Clone)]
pub(crate) enum Act {
    /// Succeed.
    Succeed,
    /// Fail with this error.
    Fail(HandlerError),
    /// Work this long, then succeed.
    Work(Duration),
    /// Emit a status and a save request, then succeed.
    EmitThenSucceed,
    /// Emit a status and a save request, then fail transiently.
    EmitThenFail,
}

/// A handler that plays a script, one act per delivery (the last repeats),
/// and reports each delivery it saw.
pub(crate) struct Scripted {
    acts: Mutex<VecDeque<Act>>,
    seen: mpsc::UnboundedSender<Delivery>,
    /// The deliveries the runtime gave up without running the handler.
    pub(crate) abandoned: std::sync::Arc<Mutex<Vec<Delivery>>>,
}

impl Scripted {
    pub(crate) fn new(
        acts: impl IntoIterator<Item = Act>,
    ) -> (Self, mpsc::UnboundedReceiver<Delivery>) {
        let (seen, rx) = mpsc::unbounded_channel();
        (
            Self {
                acts: Mutex::new(acts.into_iter().collect()),
                seen,
                abandoned: std::sync::Arc::default(),
            },
            rx,
        )
    }

    fn next_act(&self) -> Act {
        let mut acts = self.acts.lock().unwrap();
        if acts.len() > 1 {
            acts.pop_front().unwrap()
        } else {
            acts.front().cloned().unwrap_or(Act::Succeed)
        }
    }
}

impl Handler for Scripted {
    type Payload = ValidateRequested;

    async fn handle(
        &self,
        event: &Envelope<ValidateRequested>,
        ctx: &mut Context,
    ) -> Result<(), HandlerError> {
        self.seen.send(ctx.delivery()).unwrap();
        match self.next_act() {
            Act::Succeed => Ok(()),
            Act::Fail(error) => Err(error),
            Act::Work(duration) => {
                tokio::time::sleep(duration).await;
                Ok(())
            }
            Act::EmitThenSucceed => emit_chain(event, ctx).await,
            Act::EmitThenFail => {
                emit_chain(event, ctx).await?;
                Err(HandlerError::transient("failed after emitting"))
            }
        }
    }

    async fn abandoned(
        &self,
        _event: &Envelope<ValidateRequested>,
        delivery: Delivery,
        _reason: &str,
    ) {
        self.abandoned.lock().unwrap().push(delivery);
    }
}

/// Takes the next delivery of the validate consumer and drops it unsettled,
/// as a worker killed in the middle of it would; returns its delivery count
/// and stream sequence.
pub(crate) async fn take_and_die(js: &jetstream::Context) -> (u64, u64) {
    let consumer: jetstream::consumer::PullConsumer = js
        .get_consumer_from_stream("validate", fleet_bus::STEPS_STREAM)
        .await
        .expect("the validate consumer");
    let mut batch = consumer
        .fetch()
        .max_messages(1)
        .expires(DEADLINE)
        .messages()
        .await
        .expect("a fetch");
    let message = batch
        .next()
        .await
        .expect("a message in time")
        .expect("a message");
    let info = message.info().expect("JetStream metadata");
    (info.delivered as u64, info.stream_sequence)
}

async fn emit_chain(
    event: &Envelope<ValidateRequested>,
    ctx: &mut Context,
) -> Result<(), HandlerError> {
    ctx.status(event, fleet_events::ConnectionStatus::Validating)
        .await?;
    let save = fleet_events::SaveRequested {
        staged_version: event.data.staged_version,
        account: fleet_events::AccountInfo {
            id: "1".into(),
            name: "Acme Blog".into(),
        },
    };
    ctx.emit(event, save).await?;
    Ok(())
}

/// Receives the next delivery the handler saw, or fails the test.
pub(crate) async fn next_delivery(rx: &mut mpsc::UnboundedReceiver<Delivery>) -> Delivery {
    tokio::time::timeout(DEADLINE, rx.recv())
        .await
        .expect("a delivery in time")
        .expect("handler alive")
}

/// How many messages of the steps stream are on subjects matching `filter`.
pub(crate) async fn count_on(js: &jetstream::Context, stream: &str, filter: &str) -> u64 {
    use futures::TryStreamExt as _;
    let stream = js.get_stream(stream).await.expect("stream");
    let subjects: Vec<(String, usize)> = stream
        .info_with_subjects(filter)
        .await
        .expect("stream info")
        .try_collect()
        .await
        .expect("subject counts");
    subjects.into_iter().map(|(_, n)| n as u64).sum()
}
