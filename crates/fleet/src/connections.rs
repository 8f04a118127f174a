//! `fleet connections`: a tenant's connections through the gateway's API,
//! with a short-lived token the command signs itself, so every rule of the
//! API (limits, coalesced syncs, revocation on disconnect) holds.

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use serde_json::Value;

/// What `fleet connections` was asked to do.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The gateway's base URL.
    #[arg(
        long,
        env = "FLEET_GATEWAY_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    gateway: String,
    /// The tenant whose connections these are.
    #[arg(long)]
    tenant: String,
    /// The issuer's PEM private key, when tokens are signed with EdDSA or
    /// RS256 (as for `fleet token`).
    #[arg(long)]
    private_key_file: Option<PathBuf>,
    /// The key id (`kid`) to sign with, when verifiers use a key set.
    #[arg(long)]
    key_id: Option<String>,
    /// JSON as the API answers instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// The tenant's connections, newest first.
    List,
    /// One connection: state, account, last sync, last error.
    Show {
        /// The connection's id.
        id: String,
    },
    /// Sync now (joins a sync already queued or running).
    Sync {
        /// The connection's id.
        id: String,
    },
    /// Disconnect: stop its syncs, revoke the grant where the provider
    /// allows, delete its credentials and records.
    Disconnect {
        /// The connection's id.
        id: String,
    },
}

/// Signs a five-minute operator token for the tenant and calls the
/// gateway.
pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    let token = crate::token::sign(&crate::token::Request {
        tenant: args.tenant.clone(),
        ttl: Duration::from_secs(300),
        user: Some("fleet connections".to_owned()),
        connections: Vec::new(),
        private_key_file: args.private_key_file.clone(),
        key_id: args.key_id.clone(),
    })?;
    let base = args.gateway.trim_end_matches('/');
    let url =
        reqwest::Url::parse(base).with_context(|| format!("--gateway {base} is not a URL"))?;
    let loopback = url.host_str().is_some_and(|host| {
        host == "localhost"
            || host
                .trim_matches(['[', ']'])
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    });
    // The token opens every connection of the tenant: never in clear text
    // over a network.
    anyhow::ensure!(
        url.scheme() == "https" || (url.scheme() == "http" && loopback),
        "--gateway {base} must be an https:// URL (http:// only on this machine's loopback)"
    );
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .no_proxy()
        .build()
        .context("failed to build the HTTP client")?;
    let (method, path) = match &args.command {
        Command::List => (reqwest::Method::GET, "/api/connections".to_owned()),
        Command::Show { id } => (reqwest::Method::GET, format!("/api/connections/{id}")),
        Command::Sync { id } => (reqwest::Method::POST, format!("/api/connections/{id}/sync")),
        Command::Disconnect { id } => (reqwest::Method::DELETE, format!("/api/connections/{id}")),
    };
    let response = http
        .request(method, format!("{base}{path}"))
        .bearer_auth(&token)
        .send()
        .await
        .with_context(|| format!("the gateway at {base} did not answer"))?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    if !status.is_success() {
        let message = body["error"]["message"]
            .as_str()
            .or_else(|| body["message"].as_str())
            .unwrap_or(text.as_str());
        anyhow::bail!("the gateway answered {status}: {message}");
    }
    if args.json {
        if !body.is_null() {
            println!("{}", serde_json::to_string_pretty(&body)?);
        }
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    match &args.command {
        Command::List => {
            let connections = body["connections"].as_array().cloned().unwrap_or_default();
            if connections.is_empty() {
                writeln!(out, "No connections.")?;
                return Ok(());
            }
            writeln!(
                out,
                "{:<36}  {:<16}  {:<16}  {:>8}  {:<20}  NAME",
                "ID", "CONNECTOR", "STATE", "RECORDS", "LAST SYNC"
            )?;
            for c in &connections {
                writeln!(
                    out,
                    "{:<36}  {:<16}  {:<16}  {:>8}  {:<20}  {}",
                    text_of(&c["id"]),
                    text_of(&c["connector"]),
                    text_of(&c["state"]),
                    c["records_total"].as_u64().unwrap_or(0),
                    short_time(&c["last_sync_at"]),
                    text_of(&c["display_name"]),
                )?;
            }
            writeln!(out, "{} connection(s).", connections.len())?;
        }
        Command::Show { .. } => {
            for key in [
                "id",
                "connector",
                "display_name",
                "state",
                "records_total",
                "last_sync_at",
                "last_error",
                "sync_interval_seconds",
                "created_at",
                "updated_at",
            ] {
                writeln!(out, "{key:>22}: {}", text_of(&body[key]))?;
            }
            let account = &body["account"];
            if account.is_object() {
                writeln!(
                    out,
                    "{:>22}: {} ({})",
                    "account",
                    text_of(&account["name"]),
                    text_of(&account["id"])
                )?;
            }
            writeln!(out, "{:>22}: {}", "status", body["status"])?;
        }
        Command::Sync { id } => {
            let joined = if body["coalesced"].as_bool() == Some(true) {
                "joined the sync already "
            } else {
                ""
            };
            writeln!(
                out,
                "Sync of {id} {joined}{}: run {}.",
                text_of(&body["state"]),
                text_of(&body["run"])
            )?;
        }
        Command::Disconnect { id } => writeln!(out, "Disconnected {id}.")?,
    }
    Ok(())
}

fn text_of(value: &Value) -> String {
    match value {
        Value::Null => "-".to_owned(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// An RFC 3339 time to the second, or `-`.
fn short_time(value: &Value) -> String {
    value
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map_or_else(
            || "-".to_owned(),
            |t| t.format("%Y-%m-%d %H:%M:%S").to_string(),
        )
}
