//! (c) The ceiling: a 4-hop chain on JetStream in plain async-nats, with
//! the fleet's durability rules and nothing else.
//!
//! The driver publishes `bench.raw.1` and waits for the stream's ack. Hop
//! `n` pulls from its durable consumer, publishes `bench.raw.<n+1>`, waits
//! for that ack, then acks its message. The fourth hop reports the chain
//! finished and acks. The stream is a file-storage work queue, like the
//! fleet's steps stream.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull, stream};
use bytes::Bytes;
use futures::StreamExt as _;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::warn;
use uuid::Uuid;

use crate::driver::{Bench, Chains};
use crate::inflight::{End, Inflight};
use crate::report::{ScenarioReport, Settings};
use crate::rig::Rig;
use crate::{Error, Plan};

const STREAM: &str = "BENCH_RAW";
/// The subject of each hop.
const HOPS: [&str; 4] = ["bench.raw.1", "bench.raw.2", "bench.raw.3", "bench.raw.4"];
/// As the fleet's consumers (`nats/consumers`).
const MAX_ACK_PENDING: i64 = 4096;
const ACK_WAIT: Duration = Duration::from_secs(30);

const CHAIN: &str = "4 hops on a file-storage work-queue stream in plain async-nats: the driver \
                     publishes hop 1; each hop pulls, publishes the next hop and awaits its ack, \
                     then acks; no headers, no decoding; the driver on one connection and the 4 \
                     hops on another, as in the no-op chain";
const METHOD: &str = "start: just before the driver publishes hop 1; end: the 4th hop's task \
                      received its message (before its ack); the chain id travels as the payload";

/// Measures the raw chain.
pub(crate) async fn run(
    plan: &Plan,
    nats: &fleet_bus::Config,
    bench: &Bench,
) -> Result<ScenarioReport, Error> {
    let rig = Rig::start(nats, vec![STREAM.to_owned()], &bench.shutdown).await?;
    let measured = measure(plan, bench, &rig).await;
    rig.stop().await;
    measured
}

async fn measure(plan: &Plan, bench: &Bench, rig: &Rig) -> Result<ScenarioReport, Error> {
    create(&rig.workers).await?;
    for (index, subject) in HOPS.into_iter().enumerate() {
        let messages = consumer(&rig.workers, index + 1, subject, plan.in_flight).await?;
        let hop = Hop {
            js: rig.workers.clone(),
            next: HOPS.get(index + 1).copied(),
            inflight: bench.inflight.clone(),
        };
        let (stop, tasks) = (rig.stop.clone(), rig.tasks.clone());
        rig.spawn(hop.run(messages, stop, tasks));
    }
    let chains = Arc::new(RawChains {
        js: rig.driver.clone(),
    });
    let throughput = bench
        .measure(chains.clone(), plan.throughput(plan.in_flight))
        .await?;
    let alone = bench.measure(chains, plan.alone()).await?;
    Ok(ScenarioReport {
        chain: CHAIN,
        method: METHOD,
        settings: Settings {
            worker_concurrency: plan.in_flight,
            database_pool: None,
            records_per_chain: None,
        },
        throughput,
        alone,
        paced: None,
        parts: None,
        postgres_alone: None,
        over_postgres_alone: None,
        workers: Default::default(),
    })
}

async fn create(js: &jetstream::Context) -> Result<(), Error> {
    let config = stream::Config {
        name: STREAM.to_owned(),
        subjects: vec!["bench.raw.>".to_owned()],
        retention: stream::RetentionPolicy::WorkQueue,
        storage: stream::StorageType::File,
        ..Default::default()
    };
    js.create_stream(config)
        .await
        .map_err(|e| Error::jetstream(format!("create stream {STREAM}"), e))?;
    Ok(())
}

/// Creates the durable consumer of hop `hop` (from 1) on `subject`, and
/// pulls up to `prefetch` messages ahead.
async fn consumer(
    js: &jetstream::Context,
    hop: usize,
    subject: &str,
    prefetch: usize,
) -> Result<pull::Stream, Error> {
    let name = format!("hop{hop}");
    let config = pull::Config {
        durable_name: Some(name.clone()),
        filter_subject: subject.to_owned(),
        ack_policy: jetstream::consumer::AckPolicy::Explicit,
        ack_wait: ACK_WAIT,
        max_ack_pending: MAX_ACK_PENDING,
        ..Default::default()
    };
    let what = || format!("create consumer {STREAM}/{name}");
    js.create_consumer_on_stream(config, STREAM)
        .await
        .map_err(|e| Error::jetstream(what(), e))?
        .stream()
        .max_messages_per_batch(prefetch.max(1))
        .messages()
        .await
        .map_err(|e| Error::jetstream(what(), e))
}

/// One hop: each message is handled in its own task, like the fleet's
/// worker runtime does.
#[derive(Debug, Clone)]
struct Hop {
    js: jetstream::Context,
    /// The next hop's subject; `None` for the last hop.
    next: Option<&'static str>,
    inflight: Arc<Inflight>,
}

impl Hop {
    async fn run(self, mut messages: pull::Stream, stop: CancellationToken, tasks: TaskTracker) {
        loop {
            let next = tokio::select! {
                biased;
                () = stop.cancelled() => break,
                next = messages.next() => next,
            };
            match next {
                Some(Ok(message)) => {
                    tasks.spawn(self.clone().handle(message));
                }
                Some(Err(e)) => warn!(error.message = %e, "Pulling raw hop messages failed."),
                None => break,
            }
        }
    }

    async fn handle(self, message: jetstream::Message) {
        if let Err(e) = self.step(&message).await {
            warn!(error.message = %e, subject = %message.subject, "A raw hop failed; the message will be redelivered.");
        }
    }

    async fn step(&self, message: &jetstream::Message) -> Result<(), async_nats::Error> {
        match self.next {
            Some(next) => {
                self.js
                    .publish(next, message.payload.clone())
                    .await?
                    .await?;
            }
            None => {
                let key = Uuid::from_slice(&message.payload)?;
                self.inflight.finish(key, End::Completed);
            }
        }
        message.ack().await
    }
}

/// Starts raw chains: a fresh id as the payload of hop 1.
#[derive(Debug)]
struct RawChains {
    js: jetstream::Context,
}

impl Chains for RawChains {
    type Chain = Bytes;

    async fn prepare(&self) -> Result<(Uuid, Bytes), Error> {
        let key = Uuid::new_v4();
        Ok((key, Bytes::copy_from_slice(key.as_bytes())))
    }

    async fn publish(&self, payload: Bytes) -> Result<(), Error> {
        let what = || format!("publish {}", HOPS[0]);
        self.js
            .publish(HOPS[0], payload)
            .await
            .map_err(|e| Error::jetstream(what(), e))?
            .await
            .map_err(|e| Error::jetstream(what(), e))?;
        Ok(())
    }
}
