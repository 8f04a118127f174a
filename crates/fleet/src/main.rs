//! `fleet`: the one connector-fleet binary.
//!
//! It only parses the command line, sets up tracing and hands over to the
//! library crates; logic that grows here belongs in a library.

mod telemetry;

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
    /// Write the JSON Schema of every event to a directory (default: stdout
    /// as one JSON object keyed by file name).
    Schemas {
        /// Directory to write `<event type>.json` files into.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    telemetry::init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            telemetry::report_exit(&error);
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Schemas { out } => write_schemas(out),
    }
}

fn write_schemas(out: Option<PathBuf>) -> anyhow::Result<()> {
    let schemas = fleet_events::schemas();
    let Some(dir) = out else {
        let all: serde_json::Map<String, serde_json::Value> = schemas
            .into_iter()
            .map(|(name, schema)| (name.to_owned(), schema))
            .collect();
        println!("{}", serde_json::to_string_pretty(&all)?);
        return Ok(());
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("failed to create {}", dir.display()))?;
    for (name, schema) in schemas {
        let path = dir.join(name);
        let text = serde_json::to_string_pretty(&schema)? + "\n";
        std::fs::write(&path, text).with_context(|| format!("failed to write {}", path.display()))?;
    }
    Ok(())
}
