//! `fleet gateway`: the HTTP API, until SIGTERM or SIGINT.

use std::sync::Arc;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::config::Config;

/// What `fleet gateway` was asked to run.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Address to listen on.
    #[arg(long, env = "FLEET_GATEWAY_LISTEN", default_value = "0.0.0.0:8080")]
    listen: std::net::SocketAddr,
}

/// Connects to NATS, Vault and Postgres and serves the API until
/// `shutdown`, finishing the requests in flight. The workers provision the
/// streams; until they have, creates answer 503.
pub(crate) async fn run(
    args: Args,
    config: Config,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let auth = config.auth.context(
        "token settings are required to run the gateway: FLEET_AUTH__KEY, or FLEET_AUTH__ALGORITHM with FLEET_AUTH__PUBLIC_KEY or FLEET_AUTH__JWKS_URL (see docs/security.md)",
    )?;
    let (verifier, refresher) = fleet_auth::Verifier::connect(&auth)
        .await
        .context("unusable token settings (FLEET_AUTH__*)")?;
    // Keeps a key set (FLEET_AUTH__JWKS_URL) current; returns at once for a
    // static key.
    tokio::spawn(refresher.run(shutdown.clone()));
    let connectors = Arc::new(fleet_connectors::Registry::new(&config.connectors)?);
    let webhooks = match &config.webhooks {
        Some(webhooks) => Some(fleet_gateway::routes::webhooks::Webhooks {
            signer: fleet_connectors::webhook::Signer::new(webhooks.signing_key.clone()),
            sender: fleet_connectors::webhook::Sender::new(
                &config.connectors,
                webhooks.request_timeout,
            )
            .context("failed to build the webhook URL rule")?,
        }),
        None => None,
    };
    config.gateway.oauth.check(connectors.catalog())?;
    config.gateway.limits.check()?;
    let vault = config
        .vault
        .context("FLEET_VAULT__ADDR and FLEET_VAULT__AUTH__* are required to run the gateway")?;
    let database = config
        .database
        .context("FLEET_DATABASE__URL is required to run the gateway")?;
    let client = fleet_bus::connect(&config.nats).await?;
    let js = async_nats::jetstream::new(client.clone());
    let secrets = fleet_secrets::Client::connect(vault).await?;
    let renewer = secrets.renewer();
    let renewal = shutdown.clone();
    tokio::spawn(async move {
        if let Err(e) = renewer.run(renewal).await {
            tracing::error!(error.message = %e, error.cause_chain = ?e, "Vault token renewal stopped.");
        }
    });
    let oauth_states = fleet_gateway::PendingStates::open(&js, config.gateway.oauth.state_ttl())
        .await
        .context("failed to open the OAuth state bucket")?;
    let store = fleet_store::Store::connect(&database).await?;
    let readiness = crate::ops::nats(fleet_serve::ops::Readiness::new(), &client);
    let readiness = crate::ops::vault(readiness, &secrets);
    let readiness = crate::ops::postgres(readiness, &store);
    let ops = fleet_gateway::Ops {
        readiness,
        metrics: Some(crate::ops::metrics()?),
    };
    let parts = fleet_gateway::Parts {
        store,
        secrets,
        publisher: fleet_bus::Publisher::new(js.clone()),
        schedules: fleet_bus::Schedules::new(js),
        verifier,
        connectors,
        oauth_states,
        ops,
        webhooks,
    };
    let state = fleet_gateway::AppState::new(config.gateway, parts);
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("failed to listen on {}", args.listen))?;
    info!(listen = %args.listen, "Fleet gateway listening.");
    fleet_gateway::serve(listener, state, shutdown).await?;
    client
        .drain()
        .await
        .context("failed to drain the NATS connection")?;
    Ok(())
}
