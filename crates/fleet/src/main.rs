//! `fleet`: the one connector-fleet binary.
//!
//! It only parses the command line, sets up tracing and hands over to the
//! library crates; logic that grows here belongs in a library.

mod bench;
mod bridge;
mod config;
mod gateway;
mod signal;
mod sim;
mod telemetry;
mod worker;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

/// Connects a SaaS platform's customers to their third-party accounts:
/// OAuth flows, credentials in Vault, scheduled syncs and live status.
#[derive(Debug, Parser)]
#[command(name = "fleet", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create or update the JetStream streams and consumers from nats/ on
    /// the configured server, then exit.
    Provision,
    /// Run workflow steps (validate, save, sync, status) until SIGTERM.
    /// Any number of processes may run side by side.
    Worker(worker::Args),
    /// Serve the HTTP API (connectors, connections, records, OpenAPI)
    /// until SIGTERM.
    Gateway(gateway::Args),
    /// Serve live connection status to dashboards over WebSocket (/ws)
    /// and Server-Sent Events (/events) until SIGTERM. Any number of
    /// processes may run behind a load balancer.
    Bridge(bridge::Args),
    /// Serve the offline demo provider: a simulated WordPress site with
    /// FluentCRM, for trying the fleet without a real account.
    Sim(sim::Args),
    /// Print a tenant bearer token signed with FLEET_AUTH__KEY, for local
    /// use and scripts (the platform issues its own in production).
    Token {
        /// The tenant the token is for.
        #[arg(long)]
        tenant: String,
        /// Hours until it expires.
        #[arg(long, default_value_t = 24)]
        hours: u64,
    },
    /// Write the JSON Schema of every event to a directory (default: stdout
    /// as one JSON object keyed by file name).
    Schemas {
        /// Directory to write `<event type>.json` files into.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Measure setup chains per second and end-to-end latency (raw
    /// JetStream ceiling, the runtime with no-op steps, the full chain) and
    /// print one JSON report. Creates and deletes its own streams, so it
    /// refuses a server that already has them; scripts/bench starts fresh
    /// servers.
    Bench(bench::Args),
}

/// mimalloc instead of the system allocator: the steps allocate and free
/// many small buffers per message (envelopes, headers, JSON), and glibc's
/// malloc and free took about a quarter of the fleet process's CPU under
/// load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    telemetry::init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            telemetry::report_exit(&error.into());
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            telemetry::report_exit(&error);
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Provision => provision().await,
        Command::Worker(args) => {
            let config = config::Config::from_env()?;
            worker::run(args, config, signal::shutdown_token()).await
        }
        Command::Gateway(args) => {
            let config = config::Config::from_env()?;
            gateway::run(args, config, signal::shutdown_token()).await
        }
        Command::Bridge(args) => {
            let config = config::Config::from_env()?;
            bridge::run(args, config, signal::shutdown_token()).await
        }
        Command::Sim(args) => sim::run(args, signal::shutdown_token()).await,
        Command::Token { tenant, hours } => print_token(&tenant, hours),
        Command::Schemas { out } => write_schemas(out),
        Command::Bench(args) => {
            let config = config::Config::from_env()?;
            // Boxed: the scenarios' state is large, and lives once.
            Box::pin(bench::run(args, config, signal::shutdown_token())).await
        }
    }
}

async fn provision() -> anyhow::Result<()> {
    let config = config::Config::from_env()?;
    let client = fleet_bus::connect(&config.nats).await?;
    let js = async_nats::jetstream::new(client.clone());
    config.nats.definitions()?.provision(&js).await?;
    client
        .drain()
        .await
        .context("failed to drain the NATS connection")?;
    Ok(())
}

fn print_token(tenant: &str, hours: u64) -> anyhow::Result<()> {
    let config = config::Config::from_env()?;
    let auth = config
        .auth
        .context("FLEET_AUTH__KEY is required to sign a token")?;
    let tenant = fleet_events::TenantId::parse(tenant)?;
    let ttl = std::time::Duration::from_secs(hours.saturating_mul(3600));
    let verifier = fleet_auth::Verifier::new(&auth)?;
    println!(
        "{}",
        verifier.issue(&fleet_auth::Claims::for_tenant(tenant, ttl))
    );
    Ok(())
}

fn write_schemas(out: Option<PathBuf>) -> anyhow::Result<()> {
    let schemas = fleet_events::schemas();
    let Some(dir) = out else {
        let all: serde_json::Map<String, serde_json::Value> = schemas.into_iter().collect();
        println!("{}", serde_json::to_string_pretty(&all)?);
        return Ok(());
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("failed to create {}", dir.display()))?;
    for (name, schema) in schemas {
        let path = dir.join(name);
        let text = serde_json::to_string_pretty(&schema)? + "\n";
        std::fs::write(&path, text)
            .with_context(|| format!("failed to write {}", path.display()))?;
    }
    Ok(())
}
