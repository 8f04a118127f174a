//! `fleet catalog`: tools for catalog files.

use std::{collections::BTreeSet, fs, path::PathBuf};

use anyhow::{Context as _, bail};
use fleet_connectors::catalog::nango::{self, MAX_INPUT_BYTES};

/// What `fleet catalog` was asked for.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Turn entries of Nango's provider definitions (`providers.yaml` of
    /// the npm package `@nangohq/providers`) into catalog files, checked as
    /// start-up checks them. Prints one line per entry skipped with what it
    /// lacks, and a count per auth mode.
    Import(ImportArgs),
}

/// What `fleet catalog import` was asked for.
#[derive(Debug, clap::Args)]
struct ImportArgs {
    /// The definitions file (`providers.yaml`).
    #[arg(long, value_name = "PROVIDERS_YAML")]
    nango: PathBuf,
    /// Import only these entries (ids, comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "ID,ID")]
    only: Vec<String>,
    /// The directory the `<id>.toml` files are written to (created when
    /// missing); the catalog directory of FLEET_CONNECTORS__CATALOG_DIR.
    #[arg(long, default_value = ".")]
    out: PathBuf,
    /// For a provider for which Nango declares no endpoint to validate
    /// against: an OAuth 2.0 entry's `oauth2.userinfo_url` (an endpoint
    /// that answers the access token with the account), or the
    /// `verify_url` of an API-key, Basic or client-credentials entry (one
    /// that answers 2xx to valid credentials); settings as `{name}`. With
    /// `--only` naming one provider.
    #[arg(long, visible_alias = "verify-url", value_name = "URL")]
    userinfo_url: Option<String>,
}

pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        Command::Import(args) => import(&args),
    }
}

fn import(args: &ImportArgs) -> anyhow::Result<()> {
    let size = fs::metadata(&args.nango)
        .with_context(|| format!("failed to read {}", args.nango.display()))?
        .len();
    if size > MAX_INPUT_BYTES as u64 {
        bail!(
            "{} is {size} bytes, more than the {MAX_INPUT_BYTES} read",
            args.nango.display()
        );
    }
    let yaml = fs::read_to_string(&args.nango)
        .with_context(|| format!("failed to read {}", args.nango.display()))?;
    let only: BTreeSet<String> = args.only.iter().map(|id| id.trim().to_owned()).collect();
    if args.userinfo_url.is_some() && only.len() != 1 {
        bail!("--userinfo-url goes with --only naming one provider, whose endpoint it is");
    }
    let userinfo_url = args.userinfo_url.as_deref();
    let import = nango::import_with(&yaml, (!only.is_empty()).then_some(&only), userinfo_url)
        .with_context(|| format!("failed to import {}", args.nango.display()))?;
    fs::create_dir_all(&args.out)
        .with_context(|| format!("failed to create {}", args.out.display()))?;
    for entry in &import.imported {
        let path = args.out.join(format!("{}.toml", entry.id));
        fs::write(&path, &entry.text)
            .with_context(|| format!("failed to write {}", path.display()))?;
        println!(
            "imported {} ({}) -> {}",
            entry.id,
            entry.auth_mode,
            path.display()
        );
        for note in &entry.notes {
            println!("  note: {note}");
        }
    }
    for entry in &import.skipped {
        println!(
            "skipped {} ({}): {}",
            entry.id, entry.auth_mode, entry.reason
        );
    }
    println!("auth mode: imported (ready to validate) / skipped");
    for (mode, count) in import.counts() {
        println!(
            "  {mode}: {} ({}) / {}",
            count.imported, count.ready, count.skipped
        );
    }
    Ok(())
}
