//! `fleet bridge`: the WebSocket and SSE status feed, until SIGTERM or SIGINT.

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::Config;

/// What `fleet bridge` was asked to run.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Address to listen on; overrides FLEET_BRIDGE__LISTEN.
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
}

/// Connects to NATS and Postgres, binds the listener and serves until
/// `shutdown`; sessions are told to reconnect elsewhere (4010) on the way out.
pub(crate) async fn run(
    args: Args,
    config: Config,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let auth = config.auth.context(
        "token settings are required to run the bridge: FLEET_AUTH__KEY, or FLEET_AUTH__ALGORITHM with FLEET_AUTH__PUBLIC_KEY or FLEET_AUTH__JWKS_URL (see docs/security.md)",
    )?;
    let database = config
        .database
        .context("FLEET_DATABASE__URL is required to run the bridge")?;
    let mut settings = config.bridge;
    if let Some(listen) = args.listen {
        settings.listen = listen;
    }
    let listen = settings.listen;
    match fleet_bridge::raise_open_files_limit() {
        Ok(open_files) => info!(?open_files, "Open-files limit raised to the hard limit."),
        Err(e) => {
            warn!(error.message = %e, "Could not raise the open-files limit; sessions are capped by the soft limit.")
        }
    }
    let client = fleet_bus::connect(&config.nats).await?;
    let js = async_nats::jetstream::new(client.clone());
    let store = fleet_store::Store::connect(&database).await?;
    let readiness = crate::ops::nats(fleet_serve::ops::Readiness::new(), &client);
    let readiness = crate::ops::postgres(readiness, &store);
    let metrics = crate::ops::metrics()?;
    let (bridge, _handle) = fleet_bridge::Bridge::build(settings, &auth, &js, store).await?;
    let bridge = bridge.with_ops(readiness, Some(metrics));
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("failed to listen on {listen}"))?;
    info!(%listen, "Fleet bridge listening.");
    bridge.run(listener, shutdown).await?;
    client
        .drain()
        .await
        .context("failed to drain the NATS connection")?;
    Ok(())
}
