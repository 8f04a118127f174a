//! `fleet`: the one connector-fleet binary.
//!
//! It only parses the command line, sets up tracing and hands over to the
//! library crates; logic that grows here belongs in a library.

#[cfg(feature = "bench")]
mod bench;
mod bridge;
mod catalog;
mod config;
mod connections;
mod dlq;
mod events;
mod gateway;
mod ops;
mod signal;
mod sim;
mod streams;
mod telemetry;
mod token;
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
    /// Print a tenant bearer token, for local use and scripts (the
    /// platform issues its own in production): signed with FLEET_AUTH__KEY
    /// (HS256), or with --private-key-file when FLEET_AUTH__ALGORITHM is
    /// EdDSA or RS256 (and --key-id when verifiers use the key set at
    /// FLEET_AUTH__JWKS_URL). Its audience and issuer are
    /// FLEET_AUTH__AUDIENCE and FLEET_AUTH__ISSUER.
    Token(TokenArgs),
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
    /// servers. Only in a binary built with the `bench` feature.
    #[cfg(feature = "bench")]
    Bench(bench::Args),
    /// Print the reports of two builds' `fleet bench` runs side by side,
    /// with the ratio of each headline figure (this run / baseline), as
    /// `scripts/bench --baseline <rev>` does. Only in a binary built with
    /// the `bench` feature.
    #[cfg(feature = "bench")]
    BenchCompare(bench::CompareArgs),
    /// A tenant's connections through the gateway's API: `list`, `show`,
    /// `sync`, `disconnect` (signs a five-minute token with FLEET_AUTH__*).
    Connections(connections::Args),
    /// Each step consumer's backlog (pending, in flight, redelivered) and
    /// its trend, and the streams' sizes: `status`.
    Streams(streams::Args),
    /// Status events as they happen: `tail` (filter by --tenant,
    /// --connection).
    Events(events::Args),
    /// Inspect, replay and purge dead letters: `list`, `show`, `replay`,
    /// `purge` (filter by --tenant, --connection, --step, --reason, --seq).
    Dlq(dlq::Args),
    /// Catalog files: `import` turns Nango's provider definitions into
    /// them (`fleet catalog import --nango providers.yaml [--only id,id]
    /// [--out dir] [--userinfo-url url]`).
    Catalog(catalog::Args),
    /// GET a URL and exit 0 on a 2xx answer, 1 otherwise: the probe of
    /// container health checks (`fleet healthcheck http://127.0.0.1:8080/readyz`).
    Healthcheck(ops::HealthcheckArgs),
}

/// What `fleet token` was asked for.
#[derive(Debug, clap::Args)]
struct TokenArgs {
    /// The tenant the token is for.
    #[arg(long)]
    tenant: String,
    /// Hours until it expires; at most FLEET_AUTH__MAX_LIFETIME_SECONDS
    /// (24 h by default).
    #[arg(long, default_value_t = 24)]
    hours: u64,
    /// Who holds it (the `sub` claim), shown on the dashboard.
    #[arg(long)]
    user: Option<String>,
    /// Narrow the token to this connection; repeat for several. Without
    /// it the token covers all of the tenant's connections.
    #[arg(long = "connection", value_name = "CONNECTION_ID")]
    connections: Vec<String>,
    /// The issuer's PEM (PKCS#8) private key, for FLEET_AUTH__ALGORITHM
    /// EdDSA or RS256.
    #[arg(long)]
    private_key_file: Option<PathBuf>,
    /// The id (`kid`) under which the issuer's key set lists the private
    /// key, put in the token's header; required when FLEET_AUTH__JWKS_URL
    /// is set.
    #[arg(long)]
    key_id: Option<String>,
}

/// mimalloc instead of the system allocator: the steps allocate and free
/// many small buffers per message (envelopes, headers, JSON), and glibc's
/// malloc and free took about a quarter of the fleet process's CPU under
/// load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let _telemetry = telemetry::init();
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
        Command::Token(args) => print_token(args),
        Command::Dlq(args) => dlq::run(args).await,
        Command::Connections(args) => connections::run(args).await,
        Command::Streams(args) => streams::run(args).await,
        Command::Events(args) => events::run(args, signal::shutdown_token()).await,
        Command::Healthcheck(args) => ops::healthcheck(args).await,
        Command::Schemas { out } => write_schemas(out),
        Command::Catalog(args) => catalog::run(args),
        #[cfg(feature = "bench")]
        Command::BenchCompare(args) => bench::compare(args),
        #[cfg(feature = "bench")]
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

fn print_token(args: TokenArgs) -> anyhow::Result<()> {
    let token = token::sign(&token::Request {
        tenant: args.tenant,
        ttl: std::time::Duration::from_secs(args.hours.saturating_mul(3600)),
        user: args.user,
        connections: args.connections,
        private_key_file: args.private_key_file,
        key_id: args.key_id,
    })?;
    println!("{token}");
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
