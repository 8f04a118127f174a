//! `fleet dlq`: list, show, replay and purge dead letters.

use std::io::{IsTerminal as _, Write as _};

use anyhow::Context as _;
use base64::Engine as _;
use fleet_bus::dead_letters::{DeadLetters, Entry, Filter, Replayed};
use fleet_events::{ConnectionId, Step, TenantId};
use serde_json::{Value, json};

use crate::config::Config;

/// What `fleet dlq` was asked to do.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// List dead letters, oldest first.
    List {
        #[command(flatten)]
        select: Select,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// One JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one dead letter with its original message.
    Show {
        /// The dead letter's sequence, as `list` shows it.
        sequence: u64,
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Publish each selected dead letter's original message again to the
    /// step that gave up, as a new message, then delete the dead letter.
    Replay {
        #[command(flatten)]
        select: Select,
        /// Say what would be replayed, and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// One JSON object per dead letter instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Delete the selected dead letters.
    Purge {
        #[command(flatten)]
        select: Select,
        /// Delete every dead letter when no filter is given.
        #[arg(long)]
        all: bool,
        /// Say what would be deleted, and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// One JSON object per dead letter instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Which dead letters: every filter given must match.
#[derive(Debug, clap::Args)]
struct Select {
    /// The original message's tenant.
    #[arg(long)]
    tenant: Option<String>,
    /// Its connection.
    #[arg(long)]
    connection: Option<String>,
    /// The step that gave up: validate, save, sync, status, meter or webhook.
    #[arg(long)]
    step: Option<Step>,
    /// Text the reason contains (ignoring case).
    #[arg(long)]
    reason: Option<String>,
    /// Only this dead letter; repeat for several.
    #[arg(long = "seq", value_name = "SEQUENCE")]
    sequences: Vec<u64>,
}

impl Select {
    fn filter(&self) -> anyhow::Result<Filter> {
        Ok(Filter {
            tenant: self
                .tenant
                .as_deref()
                .map(TenantId::parse)
                .transpose()
                .context("--tenant")?,
            connection: self
                .connection
                .as_deref()
                .map(ConnectionId::parse)
                .transpose()
                .context("--connection")?,
            step: self.step,
            reason: self.reason.clone(),
            sequences: self.sequences.clone(),
        })
    }

    fn is_empty(&self) -> bool {
        self.tenant.is_none()
            && self.connection.is_none()
            && self.step.is_none()
            && self.reason.is_none()
            && self.sequences.is_empty()
    }
}

/// Runs `fleet dlq` against the configured NATS server (the admin user, or
/// any user allowed to read and delete from the dead-letter stream and to
/// publish to the steps).
pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    let nats = Config::nats_from_env()?;
    let client = fleet_bus::connect(&nats).await?;
    let dlq = DeadLetters::open(async_nats::jetstream::new(client.clone())).await?;
    let result = match args.command {
        Command::List {
            select,
            limit,
            json,
        } => list(&dlq, &select.filter()?, limit, json).await,
        Command::Show { sequence, json } => show(&dlq, sequence, json).await,
        Command::Replay {
            select,
            dry_run,
            json,
        } => {
            let entries = dlq.list(&select.filter()?, usize::MAX).await?;
            each(&entries, dry_run, json, "replay", |entry| async {
                Ok(match dlq.replay(entry).await? {
                    Replayed::Sent { sequence } => {
                        format!("replayed as {sequence} on {}", original_subject(entry))
                    }
                    Replayed::AlreadySent => "already replayed; dead letter deleted".to_owned(),
                })
            })
            .await
        }
        Command::Purge {
            select,
            all,
            dry_run,
            json,
        } => {
            anyhow::ensure!(
                all || !select.is_empty(),
                "purge needs a filter (--tenant, --connection, --step, --reason, --seq) or --all"
            );
            let entries = dlq.list(&select.filter()?, usize::MAX).await?;
            each(&entries, dry_run, json, "purge", |entry| async {
                Ok(if dlq.delete(entry.sequence).await? {
                    "deleted".to_owned()
                } else {
                    "already gone".to_owned()
                })
            })
            .await
        }
    };
    client
        .drain()
        .await
        .context("failed to drain the NATS connection")?;
    result
}

async fn list(dlq: &DeadLetters, filter: &Filter, limit: usize, json: bool) -> anyhow::Result<()> {
    let entries = dlq.list(filter, limit).await?;
    if json {
        let rows: Vec<Value> = entries.iter().map(|e| summary(e, false)).collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    if entries.is_empty() {
        println!("No dead letters match.");
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{:>8}  {:<20}  {:<8}  {:<16}  {:<36}  {:>5}  REASON",
        "SEQ", "STORED", "STEP", "TENANT", "CONNECTION", "DELIV"
    )?;
    for entry in &entries {
        let row = summary(entry, false);
        let text = |key: &str| row[key].as_str().unwrap_or("?").to_owned();
        writeln!(
            out,
            "{:>8}  {:<20}  {:<8}  {:<16}  {:<36}  {:>5}  {}",
            entry.sequence,
            entry.stored_at.format("%Y-%m-%d %H:%M:%S"),
            text("step"),
            text("tenant"),
            text("connection"),
            row["delivery_count"].as_u64().unwrap_or(0),
            one_line(&text("reason"), 100),
        )?;
    }
    writeln!(out, "{} dead letter(s).", entries.len())?;
    Ok(())
}

async fn show(dlq: &DeadLetters, sequence: u64, json: bool) -> anyhow::Result<()> {
    let entry = dlq
        .get(sequence)
        .await?
        .with_context(|| format!("no dead letter has sequence {sequence}"))?;
    let row = summary(&entry, true);
    if json {
        println!("{}", serde_json::to_string_pretty(&row)?);
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    for key in [
        "sequence",
        "stored_at",
        "step",
        "tenant",
        "connection",
        "connector",
        "delivery_count",
        "original_subject",
        "original_sequence",
        "reason",
    ] {
        let value = match &row[key] {
            Value::String(text) => text.clone(),
            Value::Null => "-".to_owned(),
            other => other.to_string(),
        };
        writeln!(out, "{key:>18}: {value}")?;
    }
    writeln!(
        out,
        "{:>18}:\n{}",
        "original",
        serde_json::to_string_pretty(&row["original"])?
    )?;
    Ok(())
}

/// Runs `act` on every entry (or only says it would, with `dry_run`),
/// printing one line per entry and a count at the end, and progress on a
/// terminal when there are many.
async fn each<'a, F, Fut>(
    entries: &'a [Entry],
    dry_run: bool,
    json: bool,
    verb: &str,
    act: F,
) -> anyhow::Result<()>
where
    F: Fn(&'a Entry) -> Fut,
    Fut: Future<Output = anyhow::Result<String>>,
{
    let progress = entries.len() >= 20 && std::io::stderr().is_terminal() && !json;
    let (mut done, mut failed) = (0_usize, 0_usize);
    for (n, entry) in entries.iter().enumerate() {
        let outcome = if dry_run {
            Ok(format!("would {verb}"))
        } else {
            act(entry).await
        };
        let (ok, text) = match outcome {
            Ok(text) => (true, text),
            Err(e) => (false, format!("{e:#}")),
        };
        if ok {
            done += 1;
        } else {
            failed += 1;
        }
        if json {
            let mut row = summary(entry, false);
            row["ok"] = ok.into();
            row["outcome"] = text.into();
            println!("{}", serde_json::to_string(&row)?);
        } else if !progress || !ok {
            println!("{:>8}  {}  {text}", entry.sequence, original_subject(entry));
        }
        if progress {
            eprint!("\r{verb}: {}/{}", n + 1, entries.len());
        }
    }
    if progress {
        eprintln!();
    }
    if !json {
        let mode = if dry_run { " (dry run)" } else { "" };
        println!(
            "{verb}{mode}: {done} of {} dead letter(s){}.",
            entries.len(),
            if failed > 0 {
                format!(", {failed} failed")
            } else {
                String::new()
            }
        );
    }
    anyhow::ensure!(failed == 0, "{failed} dead letter(s) could not {verb}");
    Ok(())
}

fn original_subject(entry: &Entry) -> &str {
    entry
        .letter
        .as_ref()
        .map_or(entry.subject.as_str(), |l| l.data.original_subject.as_str())
}

/// A dead letter as JSON; with `original`, its original message too
/// (as JSON when it is, else base64).
fn summary(entry: &Entry, original: bool) -> Value {
    let Some(letter) = &entry.letter else {
        return json!({
            "sequence": entry.sequence,
            "stored_at": entry.stored_at,
            "subject": entry.subject,
            "reason": "the stored message is not a dead letter",
        });
    };
    let mut row = json!({
        "sequence": entry.sequence,
        "stored_at": entry.stored_at,
        "step": letter.data.step,
        "tenant": letter.tenant,
        "connection": letter.connection,
        "connector": letter.connector,
        "delivery_count": letter.data.delivery_count,
        "reason": letter.data.reason,
        "original_subject": letter.data.original_subject,
        "original_sequence": letter.data.stream_sequence,
    });
    if original {
        row["original"] = serde_json::from_slice::<Value>(&letter.data.original)
            .unwrap_or_else(|_| {
                json!({ "base64": base64::engine::general_purpose::STANDARD.encode(&letter.data.original) })
            });
    }
    row
}

/// `text` on one line, cut to `max` characters.
fn one_line(text: &str, max: usize) -> String {
    let line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() <= max {
        return line;
    }
    let mut cut: String = line.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}
