//! `fleet events tail`: connection status events as they happen.

use std::io::Write as _;

use anyhow::Context as _;
use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use fleet_events::{ConnectionId, Envelope, StatusChanged, TenantId};
use futures::StreamExt as _;

use crate::config::Config;

/// What `fleet events` was asked to do.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Print status events as they are published, until interrupted.
    Tail {
        /// Only this tenant's.
        #[arg(long)]
        tenant: Option<String>,
        /// Only this connection's.
        #[arg(long)]
        connection: Option<String>,
        /// Start with the last N events already stored.
        #[arg(long, default_value_t = 0)]
        last: u64,
        /// Stop after this many events.
        #[arg(long)]
        limit: Option<u64>,
        /// One JSON envelope per line instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Runs `fleet events` against the configured NATS server.
pub(crate) async fn run(
    args: Args,
    shutdown: tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    let Command::Tail {
        tenant,
        connection,
        last,
        limit,
        json,
    } = args.command;
    let tenant = tenant
        .as_deref()
        .map(TenantId::parse)
        .transpose()
        .context("--tenant")?;
    let connection = connection
        .as_deref()
        .map(ConnectionId::parse)
        .transpose()
        .context("--connection")?;
    let subject = match (&tenant, &connection) {
        (Some(tenant), Some(connection)) => fleet_events::subject::status(tenant, connection),
        (Some(tenant), None) => fleet_events::subject::status_for_tenant(tenant),
        (None, None) => fleet_events::subject::STATUS_ALL.to_owned(),
        // A connection id is unique across tenants; any tenant's will do.
        (None, Some(connection)) => format!("connector.status.*.{connection}"),
    };
    let nats = Config::nats_from_env()?;
    let client = fleet_bus::connect(&nats).await?;
    let js = async_nats::jetstream::new(client.clone());
    let mut stream = js
        .get_stream(fleet_bus::STATUS_STREAM)
        .await
        .context("failed to open the status stream")?;
    let deliver_policy = if last == 0 {
        DeliverPolicy::New
    } else {
        let end = stream
            .info()
            .await
            .context("failed to read the status stream")?
            .state
            .last_sequence;
        DeliverPolicy::ByStartSequence {
            start_sequence: end.saturating_sub(last - 1).max(1),
        }
    };
    let consumer = stream
        .create_consumer(pull::OrderedConfig {
            filter_subject: subject,
            deliver_policy,
            ..Default::default()
        })
        .await
        .context("failed to follow the status stream")?;
    let mut messages = consumer
        .messages()
        .await
        .context("failed to follow the status stream")?;
    let mut seen = 0_u64;
    let mut out = std::io::stdout();
    while limit.is_none_or(|limit| seen < limit) {
        let message = tokio::select! {
            () = shutdown.cancelled() => break,
            message = messages.next() => match message {
                Some(message) => message.context("the status stream failed")?,
                None => break,
            },
        };
        seen += 1;
        if json {
            writeln!(out, "{}", String::from_utf8_lossy(&message.payload))?;
        } else {
            match Envelope::<StatusChanged>::decode(&message.payload) {
                Ok(event) => writeln!(
                    out,
                    "{}  {}  {}  {:<16}  {}",
                    event.occurred_at.format("%Y-%m-%d %H:%M:%S%.3f"),
                    event.tenant,
                    event.connection,
                    event.data.status.state().as_str(),
                    serde_json::to_string(&event.data.status)?,
                )?,
                Err(e) => writeln!(out, "{}  (not a status event: {e})", message.subject)?,
            }
        }
        out.flush()?;
    }
    client
        .drain()
        .await
        .context("failed to drain the NATS connection")?;
    Ok(())
}
