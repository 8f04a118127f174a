//! `fleet streams status`: each durable consumer's backlog, read twice to
//! show which way it moves.

use std::io::Write as _;
use std::time::Duration;

use anyhow::Context as _;
use fleet_events::Step;
use serde_json::json;

use crate::config::Config;

/// What `fleet streams` was asked to do.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Per step consumer: pending, in flight (ack pending), redelivered,
    /// waiting pulls, and the pending trend over a short sample; plus the
    /// streams' message counts.
    Status {
        /// Seconds between the two readings the trend comes from; 0 reads
        /// once and shows no trend.
        #[arg(long, default_value_t = 2)]
        sample_seconds: u64,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

struct Reading {
    consumer: String,
    stream: String,
    pending: u64,
    ack_pending: usize,
    redelivered: usize,
    waiting: usize,
}

/// Runs `fleet streams` against the configured NATS server.
pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    let Command::Status {
        sample_seconds,
        json,
    } = args.command;
    let nats = Config::nats_from_env()?;
    let client = fleet_bus::connect(&nats).await?;
    let js = async_nats::jetstream::new(client.clone());
    let first = read(&js).await?;
    let second = if sample_seconds > 0 {
        tokio::time::sleep(Duration::from_secs(sample_seconds)).await;
        Some(read(&js).await?)
    } else {
        None
    };
    let mut streams = Vec::new();
    for name in [
        fleet_bus::STEPS_STREAM,
        fleet_bus::STATUS_STREAM,
        fleet_bus::DLQ_STREAM,
        fleet_bus::HEALTH_STREAM,
    ] {
        let mut stream = js
            .get_stream(name)
            .await
            .with_context(|| format!("failed to open stream {name}"))?;
        let info = stream
            .info()
            .await
            .with_context(|| format!("failed to read stream {name}"))?;
        streams.push((name, info.state.messages, info.state.bytes));
    }
    client
        .drain()
        .await
        .context("failed to drain the NATS connection")?;

    let latest = second.as_ref().unwrap_or(&first);
    let trend = |i: usize| {
        second.as_ref().map(|second| {
            (second[i].pending as f64 - first[i].pending as f64) / sample_seconds as f64
        })
    };
    if json {
        let consumers: Vec<_> = latest
            .iter()
            .enumerate()
            .map(|(i, r)| {
                json!({
                    "consumer": r.consumer,
                    "stream": r.stream,
                    "pending": r.pending,
                    "ack_pending": r.ack_pending,
                    "redelivered": r.redelivered,
                    "waiting": r.waiting,
                    "pending_per_second": trend(i),
                })
            })
            .collect();
        let streams: Vec<_> = streams
            .iter()
            .map(|(name, messages, bytes)| json!({"stream": name, "messages": messages, "bytes": bytes}))
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({"consumers": consumers, "streams": streams}))?
        );
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{:<10}  {:<18}  {:>9}  {:>11}  {:>11}  {:>7}  TREND",
        "CONSUMER", "STREAM", "PENDING", "ACK PENDING", "REDELIVERED", "WAITING"
    )?;
    for (i, r) in latest.iter().enumerate() {
        let trend = match trend(i) {
            None => "-".to_owned(),
            Some(rate) if rate > 0.0 => format!("growing {rate:+.1}/s"),
            Some(rate) if rate < 0.0 => format!("draining {rate:+.1}/s"),
            Some(_) => "steady".to_owned(),
        };
        writeln!(
            out,
            "{:<10}  {:<18}  {:>9}  {:>11}  {:>11}  {:>7}  {trend}",
            r.consumer, r.stream, r.pending, r.ack_pending, r.redelivered, r.waiting
        )?;
    }
    writeln!(out)?;
    writeln!(out, "{:<18}  {:>10}  {:>14}", "STREAM", "MESSAGES", "BYTES")?;
    for (name, messages, bytes) in &streams {
        writeln!(out, "{name:<18}  {messages:>10}  {bytes:>14}")?;
    }
    Ok(())
}

async fn read(js: &async_nats::jetstream::Context) -> anyhow::Result<Vec<Reading>> {
    let mut readings = Vec::new();
    for step in Step::ALL {
        let config = fleet_bus::WorkerConfig::for_step(step);
        let stream = js
            .get_stream(&config.stream)
            .await
            .with_context(|| format!("failed to open stream {}", config.stream))?;
        let info = stream
            .consumer_info(&config.consumer)
            .await
            .with_context(|| format!("failed to read consumer {}", config.consumer))?;
        readings.push(Reading {
            consumer: config.consumer,
            stream: config.stream,
            pending: info.num_pending,
            ack_pending: info.num_ack_pending,
            redelivered: info.num_redelivered,
            waiting: info.num_waiting,
        });
    }
    Ok(readings)
}
