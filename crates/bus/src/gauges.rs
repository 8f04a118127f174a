//! The consumer and dead-letter gauges a worker process exports: what is
//! waiting, in flight and redelivered, read from the server itself.

use std::time::Duration;

use async_nats::jetstream;
use fleet_events::Step;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::{DLQ_STREAM, WorkerConfig};

/// How often [`watch`] reads the server's counts.
pub const WATCH_EVERY: Duration = Duration::from_secs(10);

/// Sets, every `every` until `shutdown`, the gauges of each step's durable
/// consumer (`fleet_consumer_pending`, `fleet_consumer_ack_pending`,
/// `fleet_consumer_redelivered`, by `consumer`) and the number of dead
/// letters kept (`fleet_dead_letter_messages`). Every worker process
/// reports the same server-wide numbers: aggregate them with `max`, not
/// `sum`. A read that fails leaves the last values and is tried again.
pub async fn watch(
    js: jetstream::Context,
    steps: Vec<Step>,
    every: Duration,
    shutdown: CancellationToken,
) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        for step in &steps {
            let config = WorkerConfig::for_step(*step);
            match read_consumer(&js, &config.stream, &config.consumer).await {
                Ok(info) => {
                    let consumer = config.consumer;
                    metrics::gauge!("fleet_consumer_pending", "consumer" => consumer.clone())
                        .set(info.num_pending as f64);
                    metrics::gauge!("fleet_consumer_ack_pending", "consumer" => consumer.clone())
                        .set(info.num_ack_pending as f64);
                    metrics::gauge!("fleet_consumer_redelivered", "consumer" => consumer)
                        .set(info.num_redelivered as f64);
                }
                Err(e) => {
                    debug!(error.message = %e, consumer = config.consumer, "Could not read a consumer's counts.")
                }
            }
        }
        match js.get_stream(DLQ_STREAM).await {
            Ok(mut stream) => match stream.info().await {
                Ok(info) => {
                    metrics::gauge!("fleet_dead_letter_messages").set(info.state.messages as f64);
                }
                Err(e) => {
                    debug!(error.message = %e, "Could not read the dead-letter stream's counts.")
                }
            },
            Err(e) => debug!(error.message = %e, "Could not read the dead-letter stream's counts."),
        }
    }
}

async fn read_consumer(
    js: &jetstream::Context,
    stream: &str,
    consumer: &str,
) -> Result<jetstream::consumer::Info, Box<dyn std::error::Error + Send + Sync>> {
    let stream = js.get_stream(stream).await?;
    let mut consumer: jetstream::consumer::PullConsumer = stream.get_consumer(consumer).await?;
    Ok(consumer.info().await?.clone())
}
